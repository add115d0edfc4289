package graph

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

const testClientID = "11111111-1111-1111-1111-111111111111"

func newTestCertificateTokens(t *testing.T, e *tokenEndpoint, c CertificateConfig) *CertificateTokens {
	t.Helper()
	c.ClientID, c.TokenURL, c.Scope = testClientID, e.url(), "https://graph.microsoft.com/.default"
	p, err := NewCertificateTokens(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// assertionsSent fetches two tokens (invalidating the first) and returns
// the assertions the token endpoint received, after checking the rest of
// each form.
func assertionsSent(t *testing.T, e *tokenEndpoint, p TokenProvider) []string {
	t.Helper()
	ctx := context.Background()
	first, err := p.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := p.Token(ctx); again != first {
		t.Fatalf("second Token %q is not the cached %q", again, first)
	}
	p.Invalidate(first)
	if _, err := p.Token(ctx); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range e.sent() {
		if f.Get("grant_type") != "client_credentials" || f.Get("client_id") != testClientID ||
			f.Get("scope") != "https://graph.microsoft.com/.default" ||
			f.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" ||
			f.Has("client_secret") || len(f["client_assertion"]) != 1 {
			t.Errorf("form %v", f)
		}
		out = append(out, f.Get("client_assertion"))
	}
	if len(out) != 2 {
		t.Fatalf("%d token requests, want 2", len(out))
	}
	return out
}

// checkClaims checks Microsoft's claims: aud, iss = sub = client id, a GUID
// jti, nbf = iat = now, exp ten minutes later.
func checkClaims(t *testing.T, d decodedJWT, aud string, before, after time.Time) {
	t.Helper()
	if d.claims["aud"] != aud || d.claims["iss"] != testClientID || d.claims["sub"] != testClientID {
		t.Errorf("claims %v", d.claims)
	}
	if jti, _ := d.claims["jti"].(string); uuid.Validate(jti) != nil || len(jti) != 36 {
		t.Errorf("jti %q is not a GUID", jti)
	}
	iat, nbf, exp := d.unixClaim(t, "iat"), d.unixClaim(t, "nbf"), d.unixClaim(t, "exp")
	if iat != nbf || iat < before.Unix() || iat > after.Unix() || exp != iat+600 {
		t.Errorf("iat %d nbf %d exp %d, want now (%d..%d) and now+600", iat, nbf, exp, before.Unix(), after.Unix())
	}
	if len(d.claims) != 7 {
		t.Errorf("claims %v: want exactly aud, exp, iss, jti, nbf, sub, iat", d.claims)
	}
}

func TestCertificateAssertionPS256(t *testing.T) {
	key := testRSAKey()
	cert := testCert(t, "intune-benthos test", key, nil, nil)
	e := newTokenEndpoint(t)
	p := newTestCertificateTokens(t, e, CertificateConfig{Certificates: []*x509.Certificate{cert}, Key: key})
	if p.Algorithm() != "PS256" {
		t.Errorf("default algorithm %s", p.Algorithm())
	}
	before := time.Now()
	assertions := assertionsSent(t, e, p)
	after := time.Now()

	s256 := sha256.Sum256(cert.Raw)
	var jtis []any
	for _, a := range assertions {
		d := decodeJWT(t, a)
		want := map[string]any{"alg": "PS256", "typ": "JWT", "x5t#S256": base64.RawURLEncoding.EncodeToString(s256[:])}
		if !equalJSON(d.header, want) {
			t.Errorf("header %v, want %v", d.header, want)
		}
		checkClaims(t, d, e.url(), before, after)
		digest := sha256.Sum256(d.signingInput)
		// VerifyPSS with PSSSaltLengthEqualsHash insists on a 32-byte salt.
		if err := rsa.VerifyPSS(&key.PublicKey, crypto.SHA256, digest[:], d.signature, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash}); err != nil {
			t.Errorf("PS256 signature: %v", err)
		}
		jtis = append(jtis, d.claims["jti"])
	}
	if jtis[0] == jtis[1] {
		t.Errorf("jti %v reused", jtis[0])
	}
}

func TestCertificateAssertionRS256(t *testing.T) {
	key := testRSAKey()
	cert := testCert(t, "intune-benthos test", key, nil, nil)
	e := newTokenEndpoint(t)
	p := newTestCertificateTokens(t, e, CertificateConfig{Certificates: []*x509.Certificate{cert}, Key: key, Algorithm: "RS256"})
	before := time.Now()
	assertions := assertionsSent(t, e, p)
	after := time.Now()
	s1 := sha1.Sum(cert.Raw) //nolint:gosec // x5t
	for _, a := range assertions {
		d := decodeJWT(t, a)
		want := map[string]any{"alg": "RS256", "typ": "JWT", "x5t": base64.RawURLEncoding.EncodeToString(s1[:])}
		if !equalJSON(d.header, want) {
			t.Errorf("header %v, want %v", d.header, want)
		}
		checkClaims(t, d, e.url(), before, after)
		digest := sha256.Sum256(d.signingInput)
		if err := rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], d.signature); err != nil {
			t.Errorf("RS256 signature: %v", err)
		}
	}
	if p.Thumbprint() != strings.ToUpper(hex.EncodeToString(s1[:])) {
		t.Errorf("thumbprint %s", p.Thumbprint())
	}
}

func TestCertificateAssertionECDSA(t *testing.T) {
	for _, tc := range []struct {
		curve elliptic.Curve
		alg   string
		hash  crypto.Hash
		size  int
	}{
		{elliptic.P256(), "ES256", crypto.SHA256, 32},
		{elliptic.P384(), "ES384", crypto.SHA384, 48},
		{elliptic.P521(), "ES512", crypto.SHA512, 66},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			key := testECKeys[tc.curve]()
			cert := testCert(t, "ec", key, nil, nil)
			e := newTokenEndpoint(t)
			p := newTestCertificateTokens(t, e, CertificateConfig{Certificates: []*x509.Certificate{cert}, Key: key})
			before := time.Now()
			assertions := assertionsSent(t, e, p)
			after := time.Now()
			s256 := sha256.Sum256(cert.Raw)
			for _, a := range assertions {
				d := decodeJWT(t, a)
				want := map[string]any{"alg": tc.alg, "typ": "JWT", "x5t#S256": base64.RawURLEncoding.EncodeToString(s256[:])}
				if !equalJSON(d.header, want) {
					t.Errorf("header %v, want %v", d.header, want)
				}
				checkClaims(t, d, e.url(), before, after)
				// JWS wants r||s, each the curve's size, not ASN.1.
				if len(d.signature) != 2*tc.size {
					t.Fatalf("signature of %d bytes, want %d", len(d.signature), 2*tc.size)
				}
				h := tc.hash.New()
				h.Write(d.signingInput)
				r, s := new(big.Int).SetBytes(d.signature[:tc.size]), new(big.Int).SetBytes(d.signature[tc.size:])
				if !ecdsa.Verify(&key.PublicKey, h.Sum(nil), r, s) {
					t.Error("signature does not verify")
				}
			}
		})
	}
}

func TestCertificateAssertionChainAndAudience(t *testing.T) {
	caKey, key := testOtherRSAKey(), testRSAKey()
	ca := testCert(t, "test ca", caKey, nil, nil)
	leaf := testCert(t, "leaf", key, ca, caKey)
	e := newTokenEndpoint(t)
	p := newTestCertificateTokens(t, e, CertificateConfig{
		Certificates: []*x509.Certificate{leaf, ca}, Key: key,
		SendCertificateChain: true, Audience: "https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
	})
	if _, err := p.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	d := decodeJWT(t, e.sent()[0].Get("client_assertion"))
	x5c, _ := d.header["x5c"].([]any)
	if len(x5c) != 2 || x5c[0] != base64.StdEncoding.EncodeToString(leaf.Raw) || x5c[1] != base64.StdEncoding.EncodeToString(ca.Raw) {
		t.Errorf("x5c %v", d.header["x5c"])
	}
	if d.claims["aud"] != "https://login.microsoftonline.com/tenant/oauth2/v2.0/token" {
		t.Errorf("aud %v", d.claims["aud"])
	}
}

func TestCertificateTokensErrorTyping(t *testing.T) {
	key := testRSAKey()
	e := newTokenEndpoint(t)
	p := newTestCertificateTokens(t, e, CertificateConfig{Certificates: []*x509.Certificate{testCert(t, "c", key, nil, nil)}, Key: key})
	checkTokenErrorTyping(t, e, p)
}

// failingSigner is a key in an HSM that is not answering.
type failingSigner struct{ crypto.Signer }

func (f failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("hsm: device not ready")
}

func TestCertificateSignerFailureIsNotSent(t *testing.T) {
	key := testRSAKey()
	e := newTokenEndpoint(t)
	p := newTestCertificateTokens(t, e, CertificateConfig{Certificates: []*x509.Certificate{testCert(t, "c", key, nil, nil)}, Key: failingSigner{key}})
	_, err := p.Token(context.Background())
	var terr *TransportError
	if err == nil || !strings.Contains(err.Error(), "hsm: device not ready") || errors.As(err, &terr) || len(e.sent()) != 0 {
		t.Errorf("error %v, %d requests", err, len(e.sent()))
	}
}

func TestNewCertificateTokensRefuses(t *testing.T) {
	rsaKey, ecKey := testRSAKey(), testECKeys[elliptic.P256()]()
	rsaCert, ecCert := testCert(t, "rsa", rsaKey, nil, nil), testCert(t, "ec", ecKey, nil, nil)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edCert := testCert(t, "ed", edKey, nil, nil)
	ok := CertificateConfig{ClientID: "app", TokenURL: "https://login/t/oauth2/v2.0/token", Certificates: []*x509.Certificate{rsaCert}, Key: rsaKey}
	with := func(f func(*CertificateConfig)) CertificateConfig { c := ok; f(&c); return c }
	for name, tc := range map[string]struct {
		c    CertificateConfig
		want string
	}{
		"no client id":   {with(func(c *CertificateConfig) { c.ClientID = "" }), "no client id"},
		"no token url":   {with(func(c *CertificateConfig) { c.TokenURL = "" }), "no token url"},
		"no certificate": {with(func(c *CertificateConfig) { c.Certificates = nil }), "no certificate"},
		"no key":         {with(func(c *CertificateConfig) { c.Key = nil }), "no private key"},
		"other key":      {with(func(c *CertificateConfig) { c.Key = testOtherRSAKey() }), `does not match the certificate "CN=rsa" (thumbprint `},
		"ES256 for RSA":  {with(func(c *CertificateConfig) { c.Algorithm = "ES256" }), `algorithm "ES256" does not fit an RSA key`},
		"HS256":          {with(func(c *CertificateConfig) { c.Algorithm = "HS256" }), `algorithm "HS256" does not fit an RSA key`},
		"PS256 for EC": {with(func(c *CertificateConfig) {
			c.Certificates, c.Key, c.Algorithm = []*x509.Certificate{ecCert}, ecKey, "PS256"
		}), `algorithm "PS256" does not fit an ECDSA P-256 key: want ES256`},
		"ed25519": {with(func(c *CertificateConfig) {
			c.Certificates, c.Key = []*x509.Certificate{edCert}, edKey
		}), "unsupported key type ed25519.PublicKey"},
	} {
		if _, err := NewCertificateTokens(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	// The algorithm's name is not case-sensitive, and ES256 may be named.
	if p, err := NewCertificateTokens(with(func(c *CertificateConfig) { c.Algorithm = "rs256" })); err != nil || p.Algorithm() != "RS256" {
		t.Errorf("rs256: %v", err)
	}
	if _, err := NewCertificateTokens(with(func(c *CertificateConfig) {
		c.Certificates, c.Key, c.Algorithm = []*x509.Certificate{ecCert}, ecKey, "ES256"
	})); err != nil {
		t.Errorf("ES256: %v", err)
	}
}

// equalJSON compares decoded JSON objects by their encoding.
func equalJSON(a, b map[string]any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
