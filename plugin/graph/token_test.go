package graph

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestTokenCacheRenewsTwoMinutesBeforeExpiry(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	fetches := 0
	c := tokenCache{
		now: func() time.Time { return now },
		fetch: func(context.Context) (*oauth2.Token, error) {
			fetches++
			return &oauth2.Token{AccessToken: "t" + string(rune('0'+fetches)), Expiry: now.Add(10 * time.Minute)}, nil
		},
	}
	ctx := context.Background()
	get := func() string {
		tok, err := c.token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if got := get(); got != "t1" {
		t.Fatalf("first token %q", got)
	}
	start := now
	now = start.Add(8*time.Minute - time.Second) // 2 min 1 s before expiry: kept
	if got := get(); got != "t1" || fetches != 1 {
		t.Fatalf("token %q after %d fetches, want the cached t1", got, fetches)
	}
	now = start.Add(8 * time.Minute) // 2 min before expiry: renewed
	if got := get(); got != "t2" || fetches != 2 {
		t.Fatalf("token %q after %d fetches, want a new t2", got, fetches)
	}
	c.invalidate("t1") // not the cached one: no effect
	if got := get(); got != "t2" || fetches != 2 {
		t.Fatalf("invalidating an old token dropped the cached one: %q", got)
	}
	c.invalidate("t2")
	if got := get(); got != "t3" || fetches != 3 {
		t.Fatalf("token %q after invalidation", got)
	}
}

func TestTokenCacheKeepsNothingOnError(t *testing.T) {
	boom := errors.New("boom")
	c := tokenCache{fetch: func(context.Context) (*oauth2.Token, error) { return nil, boom }}
	if _, err := c.token(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	if c.cached != nil {
		t.Fatal("a failed fetch left a token")
	}
}

// TestClientSecretTokensUnchanged pins what the refactoring onto tokenCache
// must not change: the form sent, caching, and the typing of errors.
func TestClientSecretTokensUnchanged(t *testing.T) {
	e := newTokenEndpoint(t)
	p := NewClientSecretTokens(ClientSecretConfig{ClientID: "app", ClientSecret: "s3cret", TokenURL: e.url(), Scope: "https://graph.microsoft.com/.default"})
	ctx := context.Background()
	for range 2 {
		if tok, err := p.Token(ctx); err != nil || tok != "at-1" {
			t.Fatalf("token %q, %v", tok, err)
		}
	}
	sent := e.sent()
	if len(sent) != 1 {
		t.Fatalf("%d token requests, want 1 (cached)", len(sent))
	}
	f := sent[0]
	if f.Get("grant_type") != "client_credentials" || f.Get("client_id") != "app" || f.Get("client_secret") != "s3cret" ||
		f.Get("scope") != "https://graph.microsoft.com/.default" || f.Has("client_assertion") {
		t.Errorf("form %v", f)
	}

	e.respond = entraAnswer(http.StatusUnauthorized, "7000215", "invalid_client", nil)
	p.Invalidate("at-1")
	_, err := p.Token(ctx)
	var gerr *Error
	if !errors.As(err, &gerr) || gerr.Source != SourceEntra || gerr.AADSTS != 7000215 || isRetryable(err) {
		t.Errorf("error %#v", err)
	}
}

// checkTokenErrorTyping runs the error cases every provider must type like
// ClientSecretTokens: an Entra refusal is a final *Error with its AADSTS
// code, a 503 with Retry-After a retryable one that carries it, and a
// server that does not answer a *TransportError.
func checkTokenErrorTyping(t *testing.T, e *tokenEndpoint, p TokenProvider) {
	t.Helper()
	ctx := context.Background()

	e.respond = entraAnswer(http.StatusUnauthorized, "700027", "invalid_client", nil)
	_, err := p.Token(ctx)
	var gerr *Error
	if !errors.As(err, &gerr) || gerr.Source != SourceEntra || gerr.StatusCode != 401 || gerr.Code != "invalid_client" ||
		gerr.AADSTS != 700027 || gerr.TraceID != "t" || isRetryable(err) {
		t.Errorf("401: %#v", err)
	}

	e.respond = entraAnswer(http.StatusServiceUnavailable, "90033", "temporarily_unavailable", map[string]string{"Retry-After": "2.5"})
	_, err = p.Token(ctx)
	if !errors.As(err, &gerr) || gerr.StatusCode != 503 || !gerr.HasRetryAfter || gerr.RetryAfter != 2500*time.Millisecond || !isRetryable(err) {
		t.Errorf("503: %#v", err)
	}

	e.respond = func(w http.ResponseWriter, _ int) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"late"}`))
	}
	if tok, err := p.Token(ctx); err != nil || tok != "late" {
		t.Fatalf("after the errors: %q, %v", tok, err)
	}
	p.Invalidate("late")

	e.srv.Close()
	_, err = p.Token(ctx)
	var terr *TransportError
	if !errors.As(err, &terr) || !isRetryable(err) || !strings.Contains(err.Error(), "requesting a token") {
		t.Errorf("closed server: %#v", err)
	}
}
