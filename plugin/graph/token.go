package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TokenProvider hands out bearer tokens for Graph requests.
type TokenProvider interface {
	// Token returns a token that is valid for a while yet.
	Token(ctx context.Context) (string, error)
	// Invalidate drops token from the cache after Graph refused it, so that
	// the next Token call fetches a new one.
	Invalidate(token string)
}

// ClientSecretConfig is what the client-credentials flow with a secret needs.
type ClientSecretConfig struct {
	ClientID     string
	ClientSecret string
	// TokenURL is {login}/{tenant}/oauth2/v2.0/token (see TokenURL).
	TokenURL string
	// Scope is the cloud's real Graph host + "/.default" (see Cloud.Scope).
	Scope string
	// HTTPClient sends the token requests; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// TokenURL is the Entra ID v2 token endpoint of tenantID under loginURL.
func TokenURL(loginURL, tenantID string) string {
	return strings.TrimRight(loginURL, "/") + "/" + url.PathEscape(tenantID) + "/oauth2/v2.0/token"
}

// renewBefore is how long before its announced expiry a token is replaced,
// so that a page request never starts with a token about to lapse.
const renewBefore = 2 * time.Minute

// ClientSecretTokens fetches tokens with the OAuth2 client-credentials grant
// (golang.org/x/oauth2/clientcredentials) and caches one until shortly
// before it expires. Entra ID issues no refresh token for this grant: a new
// token is simply requested again.
type ClientSecretTokens struct {
	conf   clientcredentials.Config
	client *http.Client
	now    func() time.Time

	mu     sync.Mutex
	cached *oauth2.Token
}

// NewClientSecretTokens builds a token provider for c.
func NewClientSecretTokens(c ClientSecretConfig) *ClientSecretTokens {
	client := c.HTTPClient
	if client == nil {
		client = http.DefaultClient
	}
	return &ClientSecretTokens{
		conf: clientcredentials.Config{
			ClientID:     c.ClientID,
			ClientSecret: c.ClientSecret,
			TokenURL:     c.TokenURL,
			Scopes:       []string{c.Scope},
			// Entra ID documents the secret as a form parameter; sending it
			// there from the first request avoids the library's auto-detect
			// round trip with HTTP Basic.
			AuthStyle: oauth2.AuthStyleInParams,
		},
		client: client,
		now:    time.Now,
	}
}

// Token implements TokenProvider.
func (t *ClientSecretTokens) Token(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cached != nil && (t.cached.Expiry.IsZero() || t.now().Add(renewBefore).Before(t.cached.Expiry)) {
		return t.cached.AccessToken, nil
	}
	tok, err := t.conf.Token(context.WithValue(ctx, oauth2.HTTPClient, t.client))
	if err != nil {
		return "", tokenError(err)
	}
	if tok.AccessToken == "" {
		return "", errors.New("entra id: token response holds no access_token")
	}
	t.cached = tok
	return tok.AccessToken, nil
}

// Invalidate implements TokenProvider.
func (t *ClientSecretTokens) Invalidate(token string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cached != nil && t.cached.AccessToken == token {
		t.cached = nil
	}
}

// tokenError turns the oauth2 library's error into our typed Error when the
// token endpoint answered, so that the AADSTS code and ids reach the user.
// The library's own message is not used: it embeds the raw response body.
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		e := ParseEntraError(re.Response.StatusCode, re.Response.Header, re.Body)
		e.RetryAfter, e.HasRetryAfter = parseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
		return e
	}
	// No answer from the token endpoint (refused, reset, timed out, or a
	// body that is not a token response): retried like any transport error.
	return &TransportError{Err: fmt.Errorf("requesting a token: %w", err)}
}
