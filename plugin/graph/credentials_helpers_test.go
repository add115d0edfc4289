package graph

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// Throw-away keys, made once per test binary: RSA generation is slow under
// the race detector. Nothing here is ever written to disk or committed.
var (
	testRSAKey      = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	testOtherRSAKey = sync.OnceValue(func() *rsa.PrivateKey { return mustRSA() })
	testECKeys      = map[elliptic.Curve]func() *ecdsa.PrivateKey{
		elliptic.P256(): sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P256()) }),
		elliptic.P384(): sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P384()) }),
		elliptic.P521(): sync.OnceValue(func() *ecdsa.PrivateKey { return mustEC(elliptic.P521()) }),
	}
)

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func mustEC(c elliptic.Curve) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// testCert makes a certificate for key, self-signed when issuer is nil.
func testCert(t *testing.T, cn string, key crypto.Signer, issuer *x509.Certificate, issuerKey crypto.Signer) *x509.Certificate {
	t.Helper()
	cert, err := graphsim.NewCertificate(cn, key, issuer, issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// tokenEndpoint is an httptest token endpoint that records the forms it
// was sent and answers with respond (a fixed token when nil).
type tokenEndpoint struct {
	srv     *httptest.Server
	mu      sync.Mutex
	forms   []url.Values
	respond func(w http.ResponseWriter, n int)
}

func newTokenEndpoint(t *testing.T) *tokenEndpoint {
	t.Helper()
	e := &tokenEndpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		e.mu.Lock()
		e.forms = append(e.forms, r.PostForm)
		n := len(e.forms)
		e.mu.Unlock()
		if e.respond != nil {
			e.respond(w, n)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"token_type":"Bearer","expires_in":3599,"access_token":"at-` + string(rune('0'+n)) + `"}`))
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *tokenEndpoint) url() string { return e.srv.URL + "/tenant/oauth2/v2.0/token" }

func (e *tokenEndpoint) sent() []url.Values {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]url.Values(nil), e.forms...)
}

// entraAnswer makes respond answer status with an Entra error body.
func entraAnswer(status int, aadsts, code string, header map[string]string) func(http.ResponseWriter, int) {
	return func(w http.ResponseWriter, _ int) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{"error":"` + code + `","error_description":"AADSTS` + aadsts + `: refused.\r\nTrace ID: t","error_codes":[` + aadsts + `],"trace_id":"t","correlation_id":"c"}`))
	}
}

// decodedJWT is a compact JWS split and decoded, unchecked.
type decodedJWT struct {
	header, claims map[string]any
	signingInput   []byte
	signature      []byte
}

func decodeJWT(t *testing.T, s string) decodedJWT {
	t.Helper()
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		t.Fatalf("assertion has %d parts", len(parts))
	}
	var d decodedJWT
	for i, dst := range []*map[string]any{&d.header, &d.claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d is not base64url without padding: %v", i, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			t.Fatalf("part %d is not JSON: %v", i, err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("signature is not base64url without padding: %v", err)
	}
	d.signingInput, d.signature = []byte(parts[0]+"."+parts[1]), sig
	return d
}

// unixClaim reads a NumericDate claim, which must be a whole number.
func (d decodedJWT) unixClaim(t *testing.T, name string) int64 {
	t.Helper()
	n, ok := d.claims[name].(json.Number)
	if !ok {
		t.Fatalf("claim %s = %#v, want a number", name, d.claims[name])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("claim %s = %s: %v", name, n, err)
	}
	return v
}
