package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DefaultManagedIdentityEndpoint is the token endpoint of the Azure Instance
// Metadata Service (IMDS), which every Azure VM and scale set reaches at
// this link-local address.
const DefaultManagedIdentityEndpoint = "http://169.254.169.254/metadata/identity/oauth2/token"

// imdsAPIVersion is the IMDS version whose token answer is documented in
// "How to use managed identities for Azure resources on an Azure VM to
// acquire an access token".
const imdsAPIVersion = "2018-02-01"

// SourceManagedIdentity marks an Error answered by the managed identity
// endpoint (IMDS).
const SourceManagedIdentity Source = "managed identity"

// ManagedIdentityConfig is what a managed identity token needs.
type ManagedIdentityConfig struct {
	// Endpoint is IMDS' token endpoint; "" means
	// DefaultManagedIdentityEndpoint.
	Endpoint string
	// Resource is the Graph host the token is for, without "/.default"
	// (IMDS speaks Entra ID v1: Cloud.GraphURL, e.g.
	// https://graph.microsoft.com).
	Resource string
	// ClientID selects a user-assigned identity; "" is the system-assigned
	// one (or the only user-assigned one, when the VM has no other).
	ClientID string
	// HTTPClient sends the token requests, never through a proxy: IMDS is
	// link-local and refuses proxied requests. When its Transport is an
	// *http.Transport (or nil), a copy without a proxy is used; another
	// RoundTripper is used as it is. nil means a client like NewHTTPClient's
	// with a 30 s timeout and no proxy.
	HTTPClient *http.Client
}

// ManagedIdentityTokens fetches tokens of an Azure managed identity from
// IMDS and caches them like ClientSecretTokens. IMDS' 429 and 5xx answers
// are retried like Entra ID's (honouring Retry-After); its 404 and 410,
// which it sends while the identity is being set up, are returned as
// *TransportError so that they are retried too.
type ManagedIdentityTokens struct {
	url    string
	client *http.Client
	cache  tokenCache
}

// NewManagedIdentityTokens builds a token provider for c.
func NewManagedIdentityTokens(c ManagedIdentityConfig) (*ManagedIdentityTokens, error) {
	endpoint := c.Endpoint
	if endpoint == "" {
		endpoint = DefaultManagedIdentityEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("managed identity: endpoint %q is not an http(s) URL", endpoint)
	}
	if c.Resource == "" {
		return nil, errors.New("managed identity: no resource (the Graph host, e.g. https://graph.microsoft.com)")
	}
	q := u.Query()
	q.Set("api-version", imdsAPIVersion)
	q.Set("resource", c.Resource)
	if c.ClientID != "" {
		q.Set("client_id", c.ClientID)
	}
	u.RawQuery = q.Encode()
	client := c.HTTPClient
	if client == nil {
		client = NewHTTPClient(30*time.Second, nil)
	}
	t := &ManagedIdentityTokens{url: u.String(), client: WithoutProxy(client)}
	t.cache.fetch = t.fetch
	return t, nil
}

// Token implements TokenProvider.
func (t *ManagedIdentityTokens) Token(ctx context.Context) (string, error) {
	return t.cache.token(ctx)
}

// Invalidate implements TokenProvider.
func (t *ManagedIdentityTokens) Invalidate(token string) { t.cache.invalidate(token) }

// maxIMDSBody bounds a token answer, as the oauth2 library bounds Entra's.
const maxIMDSBody = 1 << 20

func (t *ManagedIdentityTokens) fetch(ctx context.Context) (*oauth2.Token, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return nil, fmt.Errorf("managed identity: %w", err)
	}
	req.Header.Set("Metadata", "true")
	resp, err := t.client.Do(req)
	if err != nil {
		return nil, &TransportError{Err: fmt.Errorf("requesting a managed identity token: %w", err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxIMDSBody))
	if err != nil {
		return nil, &TransportError{Err: fmt.Errorf("reading the managed identity token: %w", err)}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, imdsError(resp.StatusCode, resp.Header, body)
	}
	var doc struct {
		AccessToken string     `json:"access_token"`
		ExpiresIn   flexNumber `json:"expires_in"`
		ExpiresOn   flexNumber `json:"expires_on"`
		TokenType   string     `json:"token_type"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		// Like the oauth2 library's unreadable answer: retried.
		return nil, &TransportError{Err: fmt.Errorf("managed identity: the token answer is not JSON: %w", err)}
	}
	if doc.AccessToken == "" {
		return nil, errors.New("managed identity: token response holds no access_token")
	}
	tok := &oauth2.Token{AccessToken: doc.AccessToken, TokenType: doc.TokenType}
	switch {
	case doc.ExpiresIn > 0:
		tok.Expiry = time.Now().Add(time.Duration(doc.ExpiresIn) * time.Second)
	case doc.ExpiresOn > 0:
		tok.Expiry = time.Unix(int64(doc.ExpiresOn), 0)
	}
	return tok, nil
}

// imdsError types a non-200 answer of IMDS, whose errors are shaped like
// Entra ID's ({"error":..,"error_description":..}), without error_codes: the
// AADSTS code, when Entra ID's own error is passed on, is read from the
// description.
func imdsError(status int, header http.Header, body []byte) error {
	e := ParseEntraError(status, header, body)
	e.Source = SourceManagedIdentity
	e.RetryAfter, e.HasRetryAfter = parseRetryAfter(header.Get("Retry-After"), time.Now())
	if e.AADSTS == 0 && strings.HasPrefix(e.Message, "AADSTS") {
		digits := e.Message[len("AADSTS"):]
		if end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' }); end > 0 {
			e.AADSTS, _ = strconv.Atoi(digits[:end])
		}
	}
	if status == http.StatusNotFound || status == http.StatusGone {
		// IMDS documents both as "not ready yet, retry"; the retry policy
		// retries transport errors, and the *Error is not wrapped so that
		// its 404 does not make the error final.
		return &TransportError{Err: fmt.Errorf("%s (IMDS answers this while the identity is being set up)", e.Error())}
	}
	return e
}

// flexNumber is a JSON number of seconds that IMDS sends as a string
// ("3599") and other managed identity endpoints as a number.
type flexNumber int64

func (n *flexNumber) UnmarshalJSON(b []byte) error {
	b = bytes.Trim(b, `"`)
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("not a number of seconds: %q", b)
	}
	*n = flexNumber(v)
	return nil
}

// WithoutProxy returns c with a transport that never uses a proxy, when it
// can make one: when c's Transport is an *http.Transport or nil. A client
// whose transport wraps another (to count requests, say) should be made
// proxy-less before it is wrapped.
func WithoutProxy(c *http.Client) *http.Client {
	var base *http.Transport
	switch rt := c.Transport.(type) {
	case nil:
		base = http.DefaultTransport.(*http.Transport)
	case *http.Transport:
		if rt.Proxy == nil {
			return c
		}
		base = rt
	default:
		return c
	}
	transport := base.Clone()
	transport.Proxy = nil
	copied := *c
	copied.Transport = transport
	return &copied
}
