package graph

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// imdsServer is an httptest IMDS that records the requests it was sent and
// answers with respond (a token with string expires_in when nil).
type imdsServer struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []*http.Request
	respond func(w http.ResponseWriter)
}

func newIMDS(t *testing.T) *imdsServer {
	t.Helper()
	s := &imdsServer{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.reqs = append(s.reqs, r)
		s.mu.Unlock()
		if s.respond != nil {
			s.respond(w)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write([]byte(`{"access_token":"mi-token","client_id":"c","expires_in":"3599","expires_on":"1506484173","ext_expires_in":"3599","not_before":"1506480273","resource":"https://graph.microsoft.com","token_type":"Bearer"}`))
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *imdsServer) endpoint() string { return s.srv.URL + "/metadata/identity/oauth2/token" }

func (s *imdsServer) requests() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.reqs...)
}

func newTestManagedIdentity(t *testing.T, c ManagedIdentityConfig) *ManagedIdentityTokens {
	t.Helper()
	p, err := NewManagedIdentityTokens(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestManagedIdentityRequest(t *testing.T) {
	for _, clientID := range []string{"", "22222222-2222-2222-2222-222222222222"} {
		s := newIMDS(t)
		p := newTestManagedIdentity(t, ManagedIdentityConfig{Endpoint: s.endpoint(), Resource: "https://graph.microsoft.com", ClientID: clientID})
		ctx := context.Background()
		for range 2 {
			if tok, err := p.Token(ctx); err != nil || tok != "mi-token" {
				t.Fatalf("token %q, %v", tok, err)
			}
		}
		reqs := s.requests()
		if len(reqs) != 1 {
			t.Fatalf("%d requests, want 1 (cached)", len(reqs))
		}
		r := reqs[0]
		q := r.URL.Query()
		if r.Method != http.MethodGet || r.URL.Path != "/metadata/identity/oauth2/token" || r.Header.Get("Metadata") != "true" {
			t.Errorf("%s %s, Metadata %q", r.Method, r.URL.Path, r.Header.Get("Metadata"))
		}
		want := url.Values{"api-version": {"2018-02-01"}, "resource": {"https://graph.microsoft.com"}}
		if clientID != "" {
			want.Set("client_id", clientID)
		}
		if q.Encode() != want.Encode() {
			t.Errorf("query %s, want %s", q.Encode(), want.Encode())
		}
		if r.Header.Get("Authorization") != "" {
			t.Error("an Authorization header was sent to IMDS")
		}
		// expires_in, a string, wins over expires_on.
		if exp := time.Until(p.cache.cached.Expiry); exp < 3590*time.Second || exp > 3600*time.Second {
			t.Errorf("expiry in %s, want about 3599 s", exp)
		}
	}
}

func TestManagedIdentityExpiry(t *testing.T) {
	on := time.Now().Add(time.Hour).Truncate(time.Second)
	for name, tc := range map[string]struct {
		body string
		want time.Duration // from now; 0 = no expiry
	}{
		"number expires_in":  {`{"access_token":"a","expires_in":600}`, 600 * time.Second},
		"only expires_on":    {`{"access_token":"a","expires_on":"` + strconv.FormatInt(on.Unix(), 10) + `"}`, time.Until(on)},
		"number expires_on":  {`{"access_token":"a","expires_on":` + strconv.FormatInt(on.Unix(), 10) + `}`, time.Until(on)},
		"neither: no expiry": {`{"access_token":"a"}`, 0},
	} {
		t.Run(name, func(t *testing.T) {
			s := newIMDS(t)
			s.respond = func(w http.ResponseWriter) { _, _ = w.Write([]byte(tc.body)) }
			p := newTestManagedIdentity(t, ManagedIdentityConfig{Endpoint: s.endpoint(), Resource: "https://graph.microsoft.com"})
			if _, err := p.Token(context.Background()); err != nil {
				t.Fatal(err)
			}
			got := p.cache.cached.Expiry
			if tc.want == 0 {
				if !got.IsZero() {
					t.Errorf("expiry %v, want none", got)
				}
				return
			}
			if d := time.Until(got) - tc.want; d < -5*time.Second || d > 5*time.Second {
				t.Errorf("expiry in %s, want %s", time.Until(got), tc.want)
			}
		})
	}
}

func TestManagedIdentityErrors(t *testing.T) {
	imds := func(status int, body string, header map[string]string) func(http.ResponseWriter) {
		return func(w http.ResponseWriter) {
			for k, v := range header {
				w.Header().Set(k, v)
			}
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	for name, tc := range map[string]struct {
		respond   func(http.ResponseWriter)
		retryable bool
		check     func(t *testing.T, err error)
	}{
		"identity not found": {imds(400, `{"error":"invalid_request","error_description":"Identity not found"}`, nil), false, func(t *testing.T, err error) {
			var e *Error
			if !errors.As(err, &e) || e.Source != SourceManagedIdentity || e.Code != "invalid_request" || e.Message != "Identity not found" ||
				err.Error() != "managed identity: HTTP 400 invalid_request: Identity not found" {
				t.Errorf("%#v: %v", err, err)
			}
		}},
		"entra refusal passed on": {imds(400, `{"error":"invalid_resource","error_description":"AADSTS500011: The resource principal named x was not found."}`, nil), false, func(t *testing.T, err error) {
			var e *Error
			if !errors.As(err, &e) || e.AADSTS != 500011 {
				t.Errorf("%#v", err)
			}
		}},
		"throttled": {imds(429, `{"error":"too_many_requests","error_description":"slow down"}`, map[string]string{"Retry-After": "3"}), true, func(t *testing.T, err error) {
			var e *Error
			if !errors.As(err, &e) || e.StatusCode != 429 || !e.HasRetryAfter || e.RetryAfter != 3*time.Second {
				t.Errorf("%#v", err)
			}
		}},
		"500":              {imds(500, `{"error":"unknown","error_description":"oops"}`, nil), true, nil},
		"503 not JSON":     {imds(503, `<html>busy</html>`, nil), true, nil},
		"404 not ready":    {imds(404, `{"error":"not_found","error_description":"IMDS is updating"}`, nil), true, nil},
		"410 setting up":   {imds(410, `{"error":"gone","error_description":"retry later"}`, nil), true, nil},
		"200 not JSON":     {imds(200, `<html>captive portal</html>`, nil), true, nil},
		"200 no token":     {imds(200, `{"token_type":"Bearer"}`, nil), false, nil},
		"403 from a proxy": {imds(403, `Forbidden`, nil), false, nil},
	} {
		t.Run(name, func(t *testing.T) {
			s := newIMDS(t)
			s.respond = tc.respond
			p := newTestManagedIdentity(t, ManagedIdentityConfig{Endpoint: s.endpoint(), Resource: "https://graph.microsoft.com"})
			_, err := p.Token(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			if isRetryable(err) != tc.retryable {
				t.Errorf("retryable %v, want %v: %v", isRetryable(err), tc.retryable, err)
			}
			if tc.check != nil {
				tc.check(t, err)
			}
		})
	}

	s := newIMDS(t)
	p := newTestManagedIdentity(t, ManagedIdentityConfig{Endpoint: s.endpoint(), Resource: "https://graph.microsoft.com"})
	s.srv.Close()
	_, err := p.Token(context.Background())
	var terr *TransportError
	if !errors.As(err, &terr) || !strings.Contains(err.Error(), "requesting a managed identity token") {
		t.Errorf("closed IMDS: %#v", err)
	}
}

// TestManagedIdentityBypassesProxy sends the token request directly even
// when the configured client has a proxy: IMDS is link-local.
func TestManagedIdentityBypassesProxy(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		http.Error(w, "proxy says no", http.StatusForbidden)
	}))
	defer proxy.Close()
	proxyURL, _ := url.Parse(proxy.URL)
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = http.ProxyURL(proxyURL)
	client := &http.Client{Transport: transport, Timeout: 5 * time.Second}

	// The client goes through the proxy for anything else.
	s := newIMDS(t)
	if resp, err := client.Get(s.endpoint()); err != nil || resp.StatusCode != http.StatusForbidden || proxied.Load() != 1 {
		t.Fatalf("the test proxy is not used: %v", err)
	}
	p := newTestManagedIdentity(t, ManagedIdentityConfig{Endpoint: s.endpoint(), Resource: "https://graph.microsoft.com", HTTPClient: client})
	if _, err := p.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if proxied.Load() != 1 || len(s.requests()) != 1 {
		t.Errorf("%d proxied, %d direct", proxied.Load(), len(s.requests()))
	}
	if transport.Proxy == nil {
		t.Error("the caller's transport was changed")
	}
	if p.client.Timeout != 5*time.Second {
		t.Errorf("timeout %s not kept", p.client.Timeout)
	}

	// Without a client, the default one has no proxy either.
	def := newTestManagedIdentity(t, ManagedIdentityConfig{Resource: "https://graph.microsoft.com"})
	if tr, ok := def.client.Transport.(*http.Transport); !ok || tr.Proxy != nil || def.client.Timeout == 0 {
		t.Errorf("default client %#v", def.client)
	}
	if !strings.HasPrefix(def.url, DefaultManagedIdentityEndpoint+"?") {
		t.Errorf("default endpoint %s", def.url)
	}
}

func TestNewManagedIdentityTokensRefuses(t *testing.T) {
	for want, c := range map[string]ManagedIdentityConfig{
		"no resource":                   {},
		`endpoint "ftp://x" is not an`:  {Endpoint: "ftp://x", Resource: "r"},
		`endpoint "169.254.169.254" is`: {Endpoint: "169.254.169.254", Resource: "r"},
	} {
		if _, err := NewManagedIdentityTokens(c); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%+v: %v, want %q", c, err, want)
		}
	}
}
