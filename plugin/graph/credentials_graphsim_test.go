package graph

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// TestCredentialsAgainstGraphsim fetches a token with every provider from
// the simulator and lists devices with it: graphsim checks what Entra ID and
// IMDS check, so this is the providers' end-to-end test.
func TestCredentialsAgainstGraphsim(t *testing.T) {
	rsaKey, ecKey := testRSAKey(), testECKeys[elliptic.P256()]()
	rsaCert, ecCert := testCert(t, "graphsim-rsa", rsaKey, nil, nil), testCert(t, "graphsim-ec", ecKey, nil, nil)
	const federated = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJrOHMifQ.c2ln"
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte(federated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	newSim := func(t *testing.T, cert *x509.Certificate) (*graphsim.Server, *httptest.Server) {
		sim := graphsim.New(graphsim.Config{Devices: 3, ClientCertificate: cert, FederatedToken: federated, ManagedIdentityClientID: "33333333-0000-0000-0000-000000000001"})
		ts := httptest.NewServer(sim)
		t.Cleanup(ts.Close)
		return sim, ts
	}
	cert := func(certs []*x509.Certificate, key crypto.Signer, alg string) func(string) (TokenProvider, error) {
		return func(base string) (TokenProvider, error) {
			return NewCertificateTokens(CertificateConfig{
				ClientID: graphsim.DefaultClientID, TokenURL: TokenURL(base, graphsim.DefaultTenantID), Scope: "https://graph.microsoft.com/.default",
				Certificates: certs, Key: key, Algorithm: alg,
			})
		}
	}
	fed := func(path string) func(string) (TokenProvider, error) {
		return func(base string) (TokenProvider, error) {
			return NewFederatedTokens(FederatedConfig{
				ClientID: graphsim.DefaultClientID, TokenURL: TokenURL(base, graphsim.DefaultTenantID), Scope: "https://graph.microsoft.com/.default", TokenFile: path,
			})
		}
	}
	mi := func(clientID string) func(string) (TokenProvider, error) {
		return func(base string) (TokenProvider, error) {
			return NewManagedIdentityTokens(ManagedIdentityConfig{Endpoint: base + graphsim.ManagedIdentityPath, Resource: "https://graph.microsoft.com", ClientID: clientID})
		}
	}
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrongFile, []byte("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJvdGhlciJ9.c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherKey := testOtherRSAKey()
	for name, tc := range map[string]struct {
		registered *x509.Certificate
		provider   func(base string) (TokenProvider, error)
		status     int    // 0: a token that lists devices
		aadsts     int    // of a refusal
		source     Source // of a refusal
	}{
		"certificate PS256":          {rsaCert, cert([]*x509.Certificate{rsaCert}, rsaKey, ""), 0, 0, ""},
		"certificate RS256":          {rsaCert, cert([]*x509.Certificate{rsaCert}, rsaKey, "RS256"), 0, 0, ""},
		"certificate ES256":          {ecCert, cert([]*x509.Certificate{ecCert}, ecKey, ""), 0, 0, ""},
		"federated":                  {nil, fed(file), 0, 0, ""},
		"managed identity":           {nil, mi(""), 0, 0, ""},
		"managed identity by id":     {nil, mi("33333333-0000-0000-0000-000000000001"), 0, 0, ""},
		"certificate not registered": {rsaCert, cert([]*x509.Certificate{testCert(t, "other", otherKey, nil, nil)}, otherKey, ""), 401, 700027, SourceEntra},
		"no certificate registered":  {nil, cert([]*x509.Certificate{rsaCert}, rsaKey, ""), 401, 700027, SourceEntra},
		"federated token unknown":    {nil, fed(wrongFile), 401, 70021, SourceEntra},
		"another managed identity":   {nil, mi("44444444-0000-0000-0000-000000000001"), 400, 0, SourceManagedIdentity},
	} {
		t.Run(name, func(t *testing.T) {
			sim, ts := newSim(t, tc.registered)
			p, err := tc.provider(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := p.Token(context.Background())
			if tc.status != 0 {
				var e *Error
				if !errors.As(err, &e) || e.StatusCode != tc.status || e.AADSTS != tc.aadsts || e.Source != tc.source || isRetryable(err) {
					t.Fatalf("error %#v (%v)", err, err)
				}
				if sim.Stats().TokensIssued != 0 {
					t.Error("a token was issued")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, ts.URL+"/v1.0/deviceManagement/managedDevices", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("Graph answered %d to the token", resp.StatusCode)
			}
		})
	}
}
