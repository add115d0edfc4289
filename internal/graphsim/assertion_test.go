package graphsim

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Throw-away keys for the tests, made once: never written anywhere.
var (
	simRSAKey      = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	simOtherRSAKey = sync.OnceValue(func() *rsa.PrivateKey { k, _ := rsa.GenerateKey(rand.Reader, 2048); return k })
	simECKey       = sync.OnceValue(func() *ecdsa.PrivateKey { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k })
)

func simCert(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	c, err := NewCertificate("graphsim test", key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// assertionSpec is a client assertion to sign, with knobs for every way it
// can be wrong.
type assertionSpec struct {
	alg    string
	key    crypto.Signer
	header map[string]any
	claims map[string]any
}

// validAssertion is what a correct client sends to e's token endpoint,
// with PS256 and x5t#S256.
func (e *env) validAssertion(cert *x509.Certificate, key crypto.Signer) assertionSpec {
	sum := sha256.Sum256(cert.Raw)
	now := time.Now()
	c := e.sim.Config()
	return assertionSpec{
		alg: "PS256",
		key: key,
		header: map[string]any{"alg": "PS256", "typ": "JWT",
			"x5t#S256": base64.RawURLEncoding.EncodeToString(sum[:])},
		claims: map[string]any{
			"aud": e.ts.URL + "/" + c.TenantID + "/oauth2/v2.0/token",
			"iss": c.ClientID, "sub": c.ClientID, "jti": "0b7e3a7c-3a0e-4d8e-9c11-6c1b1a2f4e55",
			"nbf": now.Unix(), "iat": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		},
	}
}

func (a assertionSpec) sign(t *testing.T) string {
	t.Helper()
	h, _ := json.Marshal(a.header)
	c, _ := json.Marshal(a.claims)
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	var sig []byte
	var err error
	digest := sha256.Sum256([]byte(input))
	switch a.alg {
	case "PS256":
		sig, err = a.key.Sign(rand.Reader, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
	case "RS256":
		sig, err = a.key.Sign(rand.Reader, digest[:], crypto.SHA256)
	case "ES256":
		var der []byte
		der, err = a.key.Sign(rand.Reader, digest[:], crypto.SHA256)
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			t.Fatal(err)
		}
		sig = make([]byte, 64)
		rs.R.FillBytes(sig[:32])
		rs.S.FillBytes(sig[32:])
	default:
		sig = []byte("unsigned")
	}
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// assertionForm is a token request authenticated by assertion.
func (e *env) assertionForm(assertion string) url.Values {
	f := e.form()
	f.Del("client_secret")
	f.Set("client_assertion_type", JWTBearer)
	f.Set("client_assertion", assertion)
	return f
}

// tokenFrom returns the access token of a successful answer.
func tokenFrom(t *testing.T, resp *http.Response, body []byte) string {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token answer %s", body)
	}
	return tok.AccessToken
}

func TestAssertionAccepted(t *testing.T) {
	rsaKey, ecKey := simRSAKey(), simECKey()
	rsaCert, ecCert := simCert(t, rsaKey), simCert(t, ecKey)
	s1 := sha1.Sum(rsaCert.Raw) //nolint:gosec // x5t
	for name, tc := range map[string]struct {
		cert *x509.Certificate
		edit func(*assertionSpec)
	}{
		"PS256 x5t#S256": {rsaCert, func(*assertionSpec) {}},
		"RS256 x5t": {rsaCert, func(a *assertionSpec) {
			a.alg, a.header["alg"] = "RS256", "RS256"
			delete(a.header, "x5t#S256")
			a.header["x5t"] = base64.RawURLEncoding.EncodeToString(s1[:])
		}},
		"ES256": {ecCert, func(a *assertionSpec) { a.alg, a.header["alg"], a.key = "ES256", "ES256", ecKey }},
		"aud as an array": {rsaCert, func(a *assertionSpec) {
			a.claims["aud"] = []string{"https://other.example", a.claims["aud"].(string)}
		}},
		"clock 4 min behind": {rsaCert, func(a *assertionSpec) {
			a.claims["nbf"] = time.Now().Add(4 * time.Minute).Unix()
			a.claims["exp"] = time.Now().Add(14 * time.Minute).Unix()
		}},
		"exp an hour away": {rsaCert, func(a *assertionSpec) { a.claims["exp"] = time.Now().Add(time.Hour).Unix() }},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{ClientCertificate: tc.cert})
			a := e.validAssertion(tc.cert, rsaKey)
			tc.edit(&a)
			resp, body := e.postToken(t, e.sim.Config().TenantID, e.assertionForm(a.sign(t)))
			token := tokenFrom(t, resp, body)
			if resp, body := e.get(t, devicesPath, token); resp.StatusCode != http.StatusOK {
				t.Errorf("Graph refused the token: %d %s", resp.StatusCode, body)
			}
		})
	}
}

func TestFederatedTokenAccepted(t *testing.T) {
	const federated = "any string the test chose"
	e := newEnv(t, Config{FederatedToken: federated})
	resp, body := e.postToken(t, e.sim.Config().TenantID, e.assertionForm(federated))
	token := tokenFrom(t, resp, body)
	if resp, _ := e.get(t, devicesPath, token); resp.StatusCode != http.StatusOK {
		t.Errorf("Graph refused the token: %d", resp.StatusCode)
	}
	// The secret still works alongside.
	resp, body = e.postToken(t, e.sim.Config().TenantID, e.form())
	tokenFrom(t, resp, body)
}

func TestAssertionRefused(t *testing.T) {
	key, otherKey := simRSAKey(), simOtherRSAKey()
	cert, otherCert := simCert(t, key), simCert(t, otherKey)
	otherSum := sha256.Sum256(otherCert.Raw)
	const federated = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3VlciJ9.c2ln"
	for name, tc := range map[string]struct {
		cfg    Config
		edit   func(*assertionSpec)
		form   func(url.Values)
		status int
		code   string
		aadsts int
		text   string
	}{
		"no certificate registered": {Config{}, nil, nil, 401, "invalid_client", 700027,
			"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '"},
		"another certificate": {Config{ClientCertificate: cert}, func(a *assertionSpec) {
			a.key, a.header["x5t#S256"] = otherKey, base64.RawURLEncoding.EncodeToString(otherSum[:])
		}, nil, 401, "invalid_client", 700027, "is not registered on application"},
		"signed by another key": {Config{ClientCertificate: cert}, func(a *assertionSpec) { a.key = otherKey }, nil,
			401, "invalid_client", 700027, "Client assertion failed signature validation. [Reason - The provided signature value did not match the expected signature value."},
		"PS256 header, RS256 signature": {Config{ClientCertificate: cert}, func(a *assertionSpec) { a.alg = "RS256" }, nil,
			401, "invalid_client", 700027, "failed signature validation"},
		"alg none": {Config{ClientCertificate: cert}, func(a *assertionSpec) { a.alg, a.header["alg"] = "none", "none" }, nil,
			401, "invalid_client", 700027, "The algorithm 'none' is not supported."},
		"ES256 for an RSA key": {Config{ClientCertificate: cert}, func(a *assertionSpec) { a.header["alg"] = "ES256" }, nil,
			401, "invalid_client", 700027, "does not fit the key of the certificate"},
		"wrong audience": {Config{ClientCertificate: cert}, func(a *assertionSpec) {
			a.claims["aud"] = "https://login.microsoftonline.com/" + DefaultTenantID + "/oauth2/v2.0/token"
		}, nil, 401, "invalid_client", 700023, "Client assertion audience claim does not match Realm issuer."},
		"v1 token url": {Config{ClientCertificate: cert}, func(a *assertionSpec) {
			a.claims["aud"] = strings.Replace(a.claims["aud"].(string), "/v2.0", "", 1)
		}, nil, 401, "invalid_client", 700023, "does not match Realm issuer"},
		"wrong issuer": {Config{ClientCertificate: cert}, func(a *assertionSpec) { a.claims["iss"] = "someone-else" }, nil,
			401, "invalid_client", 700021, "Client assertion application identifier doesn't match 'client_id' parameter."},
		"wrong subject": {Config{ClientCertificate: cert}, func(a *assertionSpec) { delete(a.claims, "sub") }, nil,
			401, "invalid_client", 700021, "doesn't match 'client_id'"},
		"expired": {Config{ClientCertificate: cert}, func(a *assertionSpec) { a.claims["exp"] = time.Now().Add(-time.Second).Unix() }, nil,
			401, "invalid_client", 700024, "Client assertion is not within its valid time range. Current time: "},
		"no exp": {Config{ClientCertificate: cert}, func(a *assertionSpec) { delete(a.claims, "exp") }, nil,
			401, "invalid_client", 700024, "expiry time of assertion (none)"},
		"exp a day away": {Config{ClientCertificate: cert}, func(a *assertionSpec) { a.claims["exp"] = time.Now().Add(24 * time.Hour).Unix() }, nil,
			401, "invalid_client", 700024, "not within its valid time range"},
		"nbf in 10 minutes": {Config{ClientCertificate: cert}, func(a *assertionSpec) { a.claims["nbf"] = time.Now().Add(10 * time.Minute).Unix() }, nil,
			401, "invalid_client", 700024, "not within its valid time range"},
		"not a JWT": {Config{ClientCertificate: cert}, nil, func(f url.Values) { f.Set("client_assertion", "not-a-jwt") },
			401, "invalid_client", 50027, "JWT token is invalid or malformed."},
		"wrong assertion type": {Config{ClientCertificate: cert}, nil, func(f url.Values) {
			f.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
		},
			401, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."},
		"empty assertion": {Config{ClientCertificate: cert}, nil, func(f url.Values) { f.Set("client_assertion", "") },
			401, "invalid_client", 7000218, "'client_assertion' or 'client_secret'"},
		"federated token unknown": {Config{FederatedToken: federated}, nil, func(f url.Values) {
			f.Set("client_assertion", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL2lzc3VlciIsInN1YiI6InN5c3RlbTpzZXJ2aWNlYWNjb3VudDpuczpzYSIsImF1ZCI6ImFwaTovL0F6dXJlQURUb2tlbkV4Y2hhbmdlIn0.c2ln")
		}, 401, "unauthorized_client", 70021,
			"No matching federated identity record found for presented assertion. Assertion Issuer: 'https://issuer'. Assertion Subject: 'system:serviceaccount:ns:sa'. Assertion Audience: 'api://AzureADTokenExchange'."},
		"federated token not configured": {Config{}, nil, func(f url.Values) { f.Set("client_assertion", federated) },
			401, "unauthorized_client", 70021, "No matching federated identity record"},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			a := e.validAssertion(cert, key)
			if tc.edit != nil {
				tc.edit(&a)
			}
			assertion := a.sign(t)
			form := e.assertionForm(assertion)
			if tc.form != nil {
				tc.form(form)
			}
			before := e.sim.Stats().TokensIssued
			resp, body := e.postToken(t, e.sim.Config().TenantID, form)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			ee := decodeEntraError(t, body)
			prefix := "AADSTS" + strconv.Itoa(tc.aadsts) + ": "
			if ee.Error != tc.code || len(ee.Codes) != 1 || ee.Codes[0] != tc.aadsts ||
				!strings.HasPrefix(ee.Description, prefix) || !strings.Contains(ee.Description, tc.text) {
				t.Errorf("error %q %v %q, want %q %d %q", ee.Error, ee.Codes, ee.Description, tc.code, tc.aadsts, tc.text)
			}
			if sent := form.Get("client_assertion"); bytes.Contains(body, []byte(strings.Split(assertion, ".")[2])) || sent != "" && bytes.Contains(body, []byte(sent)) {
				t.Errorf("the answer echoes the assertion: %s", body)
			}
			if e.sim.Stats().TokensIssued != before {
				t.Error("a token was issued")
			}
		})
	}
}

func TestAssertionScopeStillChecked(t *testing.T) {
	cert := simCert(t, simRSAKey())
	e := newEnv(t, Config{ClientCertificate: cert})
	form := e.assertionForm(e.validAssertion(cert, simRSAKey()).sign(t))
	form.Set("scope", "https://graph.microsoft.com")
	resp, body := e.postToken(t, e.sim.Config().TenantID, form)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("AADSTS1002012")) {
		t.Errorf("status %d: %s", resp.StatusCode, body)
	}
}

func TestParseCertificatePEM(t *testing.T) {
	cert := simCert(t, simECKey())
	pemData := []byte("-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n" +
		"-----BEGIN CERTIFICATE-----\n" + base64.StdEncoding.EncodeToString(cert.Raw) + "\n-----END CERTIFICATE-----\n")
	got, err := ParseCertificatePEM(pemData)
	if err != nil || !got.Equal(cert) {
		t.Errorf("%v", err)
	}
	if _, err := ParseCertificatePEM([]byte("nothing")); err == nil || !strings.Contains(err.Error(), `no PEM "CERTIFICATE" block`) {
		t.Errorf("%v", err)
	}
}
