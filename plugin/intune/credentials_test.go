package intune

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/youmark/pkcs8"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// Throw-away keys, made at run time once per test binary (RSA generation is
// slow under the race detector). None is ever committed.
var (
	rsaKey      = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	otherRSAKey = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	ecKey       = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func selfSigned(t *testing.T, key crypto.Signer) *x509.Certificate {
	t.Helper()
	cert, err := graphsim.NewCertificate("intune-benthos test", key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func certPEM(cert *x509.Certificate) string { return string(graphsim.CertificatePEM(cert)) }

func keyPEM(t *testing.T, key crypto.Signer) string {
	t.Helper()
	pemKey, err := graphsim.PrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pemKey)
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// indentBlock is text as a YAML literal block at indent.
func indentBlock(text, indent string) string {
	return "|\n" + indent + strings.ReplaceAll(strings.TrimSuffix(text, "\n"), "\n", "\n"+indent)
}

func TestCertificateCredentialCompletesASync(t *testing.T) {
	dir := t.TempDir()
	rsaCert, ecCert := selfSigned(t, rsaKey()), selfSigned(t, ecKey())
	encrypted := must(pkcs8.MarshalPrivateKey(rsaKey(), []byte("key-password-5521"), nil))
	for _, tc := range []struct {
		name  string
		cert  *x509.Certificate
		lines []string
	}{
		{"RSA, PS256 by default, files", rsaCert, []string{
			"  client_certificate:",
			"    certificate: " + writeFile(t, dir, "rsa.crt", certPEM(rsaCert)),
			"    private_key: " + writeFile(t, dir, "rsa.key", keyPEM(t, rsaKey())),
		}},
		{"RSA, RS256, one combined file", rsaCert, []string{
			"  client_certificate:",
			"    certificate: " + writeFile(t, dir, "rsa.pem", certPEM(rsaCert)+keyPEM(t, rsaKey())),
			"    algorithm: RS256",
		}},
		{"RSA, encrypted PKCS#8 key inline", rsaCert, []string{
			"  client_certificate:",
			"    certificate: " + indentBlock(certPEM(rsaCert), "      "),
			"    private_key: " + indentBlock(string(pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: encrypted})), "      "),
			"    password: key-password-5521",
		}},
		{"ECDSA P-256", ecCert, []string{
			"  client_certificate:",
			"    certificate: " + writeFile(t, dir, "ec.crt", certPEM(ecCert)),
			"    private_key: " + writeFile(t, dir, "ec.key", keyPEM(t, ecKey())),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, url := startSim(t, graphsim.Config{Devices: 1200, Seed: 3, PageSize: 500, ClientCertificate: tc.cert})
			got, logs, failure := runSync(t, credentialYAML(sim, url, tc.lines...))
			if failure != nil {
				t.Fatalf("sync failed: %v\n%s", failure, logs)
			}
			if len(got) != 1200 || string(got[1199].body) != string(sim.EmittedDevice(1199, false, false)) {
				t.Fatalf("%d devices, want 1200", len(got))
			}
			if st := sim.Stats(); st.TokensIssued != 1 {
				t.Errorf("%d tokens issued for one sync, want 1", st.TokensIssued)
			}
			if strings.Contains(logs, "PRIVATE KEY") || strings.Contains(logs, "key-password-5521") {
				t.Error("the key or its password reached the log")
			}
		})
	}
}

func TestWrongCertificateFailsWithEntrasCode(t *testing.T) {
	dir := t.TempDir()
	sim, url := startSim(t, graphsim.Config{Devices: 10, ClientCertificate: selfSigned(t, rsaKey())})
	wrong := selfSigned(t, otherRSAKey())
	got, logs, failure := runSync(t, credentialYAML(sim, url,
		"  client_certificate:",
		"    certificate: "+writeFile(t, dir, "wrong.pem", certPEM(wrong)+keyPEM(t, otherRSAKey()))))
	if failure == nil || len(got) != 0 {
		t.Fatalf("%d devices and no failure with a certificate the app does not have", len(got))
	}
	for _, want := range []string{"AADSTS700027", "check client_certificate", "request-id "} {
		if !strings.Contains(logs, want) || !strings.Contains(failure.Error(), want) {
			t.Errorf("%q missing from the log or the failure:\nfailure: %v\nlogs:\n%s", want, failure, logs)
		}
	}
	if strings.Contains(logs, "PRIVATE KEY") {
		t.Error("the key reached the log")
	}
}

// TestFederatedTokenFileIsReadAgainForEveryToken rotates the token file
// between two syncs of one running input, as the kubelet does, and makes
// the simulated Entra ID accept only the new token from then on.
func TestFederatedTokenFileIsReadAgainForEveryToken(t *testing.T) {
	const n = 40
	dir := t.TempDir()
	tokenFile := writeFile(t, dir, "token", "federated-token-one")
	// Tokens of a minute are renewed before every request (two minutes
	// ahead), so every page needs a token request and so the file.
	sim, url := startSim(t, graphsim.Config{Devices: n, PageSize: 15, FederatedToken: "federated-token-one", TokenLifetime: time.Minute})

	run := runIntervalSyncs(t, credentialYAML(sim, url, "  federated_token_file: "+tokenFile, "  interval: 200ms"), func(run *intervalRun, _ string) bool {
		if len(run.order) == 1 && run.perSync[run.order[0]] == n {
			// Rotate: a new file moved into place, the old token refused.
			tmp := writeFile(t, dir, "token.new", "federated-token-two")
			if err := os.Rename(tmp, tokenFile); err != nil {
				t.Error(err)
			}
			sim.SetFederatedToken("federated-token-two")
		}
		return len(run.order) == 3 // the second sync is complete once the third starts
	})
	perSync, order, logs := run.perSync, run.order, run.logs.String()
	if len(order) < 3 || perSync[order[0]] != n || perSync[order[1]] != n {
		t.Fatalf("devices per sync %v in order %v, want two full syncs of %d\n%s", perSync, order, n, logs)
	}
	if strings.Contains(logs, "AADSTS") {
		t.Errorf("a token request failed around the rotation:\n%s", logs)
	}
	if strings.Contains(logs, "federated-token-") {
		t.Errorf("the federated token reached the log:\n%s", logs)
	}
	if st := sim.Stats(); st.TokensIssued < 6 {
		t.Errorf("%d tokens issued, want one per page (at least 6)", st.TokensIssued)
	}
}

func TestFederatedTokenFileFromAzureWorkloadIdentityEnvironment(t *testing.T) {
	dir := t.TempDir()
	sim, url := startSim(t, graphsim.Config{Devices: 25, FederatedToken: "projected-service-account-token"})
	c := sim.Config()
	t.Setenv(envFederatedTokenFile, writeFile(t, dir, "azure-identity-token", "projected-service-account-token"))
	t.Setenv(envTenantID, c.TenantID)
	t.Setenv(envClientID, c.ClientID)
	got, logs, failure := runSync(t, strings.Join([]string{
		"intune_managed_devices:",
		"  login_url: " + url,
		"  graph_url: " + url,
	}, "\n"))
	if failure != nil || len(got) != 25 {
		t.Fatalf("%d devices, failure %v\n%s", len(got), failure, logs)
	}
}

func TestManagedIdentityCompletesASync(t *testing.T) {
	const identity = "44444444-4444-4444-4444-444444444444"
	sim, url := startSim(t, graphsim.Config{Devices: 1500, PageSize: 1000, ManagedIdentityClientID: identity})
	conf := func(clientID string) string {
		return strings.Join([]string{
			"intune_managed_devices:",
			"  client_id: '" + clientID + "'",
			"  graph_url: " + url,
			"  managed_identity:",
			"    enabled: true",
			"    endpoint: " + url + graphsim.ManagedIdentityPath,
			"  backoff:",
			"    max_elapsed_time: 1s",
		}, "\n")
	}
	got, logs, failure := runSync(t, conf(identity))
	if failure != nil || len(got) != 1500 {
		t.Fatalf("%d devices, failure %v\n%s", len(got), failure, logs)
	}
	if st := sim.Stats(); st.TokensIssued != 1 {
		t.Errorf("%d tokens issued, want 1", st.TokensIssued)
	}

	got, logs, failure = runSync(t, conf("55555555-5555-5555-5555-555555555555"))
	if failure == nil || len(got) != 0 {
		t.Fatalf("%d devices and no failure with an identity not assigned to the machine", len(got))
	}
	if !strings.Contains(logs, "check managed_identity") {
		t.Errorf("the failure does not say what to check:\n%s", logs)
	}
}

func TestCredentialLintNamesTheConflictingFields(t *testing.T) {
	base := "intune_managed_devices:\n  tenant_id: t\n  client_id: c\n"
	for conf, want := range map[string]string{
		"  client_secret: s\n  client_certificate:\n    certificate: /etc/app.pem":               "set one credential, not client_secret and client_certificate",
		"  client_secret: s\n  federated_token_file: /t\n  managed_identity:\n    enabled: true": "set one credential, not client_secret and federated_token_file and managed_identity",
		"  federated_token_file: /t\n  client_certificate:\n    certificate: /etc/app.pem":       "set one credential, not client_certificate and federated_token_file",
		"  client_certificate:\n    certificate: /etc/app.pem\n    algorithm: HS256":             "client_certificate.algorithm must be one of",
		"  client_secret: s\n  emit: changes":                                                    "emit: changes needs state_cache",
		"  client_secret: s\n  emit: changes\n  managed_identity:\n    enabled: true":            "set one credential, not client_secret and managed_identity",
	} {
		err := service.NewStreamBuilder().AddInputYAML(base + conf)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s\nerr = %v, want lint %q", conf, err, want)
		}
	}
	for _, conf := range []string{
		"  client_secret: s",
		"  client_certificate:\n    certificate: /etc/app.pem\n    private_key: /etc/app.key",
		"  federated_token_file: /t",
		"  managed_identity:\n    enabled: true",
		"  client_secret: s\n  managed_identity:\n    enabled: false\n  client_certificate:\n    certificate: ''",
	} {
		if err := service.NewStreamBuilder().AddInputYAML(base + conf); err != nil {
			t.Errorf("%s\nlint refused a config with one credential: %v", conf, err)
		}
	}
}

// TestCredentialErrorsNeverRepeatAKey pastes keys where paths belong: the
// start-up error names the field and never repeats the value.
func TestCredentialErrorsNeverRepeatAKey(t *testing.T) {
	// A key as container secrets often hold one: base64 DER, no PEM armour.
	base64Key := base64.StdEncoding.EncodeToString(must(x509.MarshalPKCS8PrivateKey(rsaKey())))
	certFile := writeFile(t, t.TempDir(), "app.crt", certPEM(selfSigned(t, rsaKey())))
	for field, conf := range map[string]string{
		"client_certificate.private_key": "client_certificate:\n  certificate: " + certFile + "\n  private_key: " + base64Key,
		"client_certificate.certificate": "client_certificate:\n  certificate: " + base64Key,
	} {
		parsed, err := inputSpec().ParseYAML("tenant_id: t\nclient_id: c\n"+conf, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseInputConfig(parsed)
		if err == nil || !strings.Contains(err.Error(), field+": neither PEM text nor the path of a readable file") {
			t.Errorf("%s: err = %v", field, err)
		}
		if err != nil && strings.Contains(err.Error(), base64Key[:40]) {
			t.Errorf("%s: the key is repeated in the error", field)
		}
	}
}

func TestCredentialConfigErrorsNameTheField(t *testing.T) {
	dir := t.TempDir()
	rsaFile := writeFile(t, dir, "rsa.pem", certPEM(selfSigned(t, rsaKey()))+keyPEM(t, rsaKey()))
	ecFile := writeFile(t, dir, "ec.pem", certPEM(selfSigned(t, ecKey()))+keyPEM(t, ecKey()))
	certOnly := writeFile(t, dir, "cert.pem", certPEM(selfSigned(t, rsaKey())))
	t.Setenv(envFederatedTokenFile, "")
	for conf, want := range map[string]string{
		"tenant_id: t\nclient_id: c":     "no credential: set client_secret, client_certificate.certificate, federated_token_file",
		"client_id: c\nclient_secret: s": "tenant_id: must not be empty",
		"tenant_id: t\nclient_secret: s": "client_id: must not be empty",
		"tenant_id: t\nclient_id: c\nclient_certificate:\n  certificate: " + dir + "/missing.pem":                    "client_certificate.certificate: reading " + dir + "/missing.pem: no such file or directory",
		"tenant_id: t\nclient_id: c\nclient_certificate:\n  certificate: " + certOnly:                                "client_certificate:",
		"tenant_id: t\nclient_id: c\nclient_certificate:\n  certificate: " + ecFile + "\n  algorithm: PS256":         "client_certificate.algorithm: PS256 needs an RSA key",
		"tenant_id: t\nclient_id: c\nclient_certificate:\n  certificate: " + rsaFile + "\n  algorithm: ES256":        "client_certificate.algorithm: ES256 needs an ECDSA key",
		"managed_identity:\n  enabled: true\n  endpoint: http://metadata.example.com/metadata/identity/oauth2/token": "managed_identity.endpoint:",
		"tenant_id: t\nclient_id: c\nclient_secret: s\nclient_certificate:\n  private_key: " + rsaFile:               "client_certificate.private_key: set without client_certificate.certificate",
		"tenant_id: t\nclient_id: c\nfederated_token_file: eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW0ifQ.c2lnbmF0dXJl": "federated_token_file: holds a token, not the path of a file holding one",
	} {
		if err := inputConfigError(t, conf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q:\nerr = %v\nwant %q", conf, err, want)
		}
	}
}
