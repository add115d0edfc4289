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
	cache  tokenCache
}

// NewClientSecretTokens builds a token provider for c.
func NewClientSecretTokens(c ClientSecretConfig) *ClientSecretTokens {
	t := &ClientSecretTokens{
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
		client: orDefaultClient(c.HTTPClient),
	}
	t.cache.fetch = func(ctx context.Context) (*oauth2.Token, error) {
		return exchange(ctx, t.client, &t.conf)
	}
	return t
}

// Token implements TokenProvider.
func (t *ClientSecretTokens) Token(ctx context.Context) (string, error) { return t.cache.token(ctx) }

// Invalidate implements TokenProvider.
func (t *ClientSecretTokens) Invalidate(token string) { t.cache.invalidate(token) }

// tokenCache holds the token of one provider and fetches a new one when it
// is about to expire or was invalidated. Every provider uses it, so that they
// all renew alike. Token requests are serialised: concurrent callers wait
// for the one request under way instead of sending their own.
type tokenCache struct {
	// fetch asks for a new token; its errors are already typed (*Error,
	// *TransportError, or a plain error that is not retried).
	fetch func(context.Context) (*oauth2.Token, error)
	now   func() time.Time // nil means time.Now; replaced by tests

	mu     sync.Mutex
	cached *oauth2.Token
}

func (c *tokenCache) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	if c.cached != nil && (c.cached.Expiry.IsZero() || now().Add(renewBefore).Before(c.cached.Expiry)) {
		return c.cached.AccessToken, nil
	}
	tok, err := c.fetch(ctx)
	if err != nil {
		return "", err
	}
	c.cached = tok
	return tok.AccessToken, nil
}

func (c *tokenCache) invalidate(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cached != nil && c.cached.AccessToken == token {
		c.cached = nil
	}
}

// exchange sends one client-credentials request of conf through client and
// types what went wrong.
func exchange(ctx context.Context, client *http.Client, conf *clientcredentials.Config) (*oauth2.Token, error) {
	tok, err := conf.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return nil, tokenError(err)
	}
	if tok.AccessToken == "" {
		return nil, errors.New("entra id: token response holds no access_token")
	}
	return tok, nil
}

// orDefaultClient is c, or http.DefaultClient when c is nil.
func orDefaultClient(c *http.Client) *http.Client {
	if c == nil {
		return http.DefaultClient
	}
	return c
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
