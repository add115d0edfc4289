package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// certificateAndKeyPEM is a throw-away self-signed certificate for key and
// the key, PEM encoded, made at run time.
func certificateAndKeyPEM(t *testing.T, key crypto.Signer) (*x509.Certificate, string) {
	t.Helper()
	cert, err := graphsim.NewCertificate("intune-benthos e2e", key, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := graphsim.PrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	return cert, string(graphsim.CertificatePEM(cert)) + string(keyPEM)
}

// TestShippedConfigWithACertificateFromTheEnvironment runs config/stdout.yaml
// with the certificate and key in INTUNE_CLIENT_CERTIFICATE, as a container
// gets them from a secret, and no client secret.
func TestShippedConfigWithACertificateFromTheEnvironment(t *testing.T) {
	for name, key := range map[string]crypto.Signer{
		"RSA":   must(rsa.GenerateKey(rand.Reader, 2048)),
		"ECDSA": must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)),
	} {
		t.Run(name, func(t *testing.T) {
			const n = 1234
			cert, pemText := certificateAndKeyPEM(t, key)
			sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 5, ClientCertificate: cert})
			env = append(env, "INTUNE_CLIENT_SECRET=", "INTUNE_CLIENT_CERTIFICATE="+pemText)
			res := runBinary(t, env, "-c", config("stdout.yaml"), "--log.level", "trace")
			if res.exitCode != 0 {
				t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
			}
			lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
			if len(lines) != n || lines[n-1] != string(sim.EmittedDevice(n-1, false, false)) {
				t.Fatalf("%d devices on stdout, want %d", len(lines), n)
			}
			if strings.Contains(res.stderr, "PRIVATE KEY") || strings.Contains(res.stderr, "client_assertion=") {
				t.Errorf("the key or an assertion reached the log:\n%s", res.stderr)
			}
		})
	}
}

func TestWrongCertificateExitsNonZeroWithEntrasError(t *testing.T) {
	registered, _ := certificateAndKeyPEM(t, must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)))
	_, other := certificateAndKeyPEM(t, must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)))
	_, env := simEnv(t, graphsim.Config{Devices: 10, ClientCertificate: registered})
	path := filepath.Join(t.TempDir(), "app.pem")
	if err := os.WriteFile(path, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, "INTUNE_CLIENT_SECRET=", "INTUNE_CLIENT_CERTIFICATE="+path)
	res := runBinary(t, env, "-c", config("stdout.yaml"))
	if res.exitCode == 0 {
		t.Fatalf("exit 0 with a certificate the app does not have\n%s", res.stderr)
	}
	for _, want := range []string{"AADSTS700027", "check client_certificate", "intune-benthos: sync did not complete"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("%q missing from stderr:\n%s", want, res.stderr)
		}
	}
	if res.stdout != "" {
		t.Errorf("devices on stdout after a refused token:\n%.200s", res.stdout)
	}
}

// TestShippedConfigUnderAzureWorkloadIdentity sets only what Azure Workload
// Identity's webhook sets in a pod: no secret, no INTUNE_ credential.
func TestShippedConfigUnderAzureWorkloadIdentity(t *testing.T) {
	const n = 300
	sim, env := simEnv(t, graphsim.Config{Devices: n, FederatedToken: "projected.service-account.token"})
	c := sim.Config()
	tokenFile := filepath.Join(t.TempDir(), "azure-identity-token")
	if err := os.WriteFile(tokenFile, []byte("projected.service-account.token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env = append(env, "INTUNE_CLIENT_SECRET=", "INTUNE_TENANT_ID=", "INTUNE_CLIENT_ID=",
		"AZURE_FEDERATED_TOKEN_FILE="+tokenFile, "AZURE_TENANT_ID="+c.TenantID, "AZURE_CLIENT_ID="+c.ClientID)
	res := runBinary(t, env, "-c", config("stdout.yaml"))
	if res.exitCode != 0 {
		t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
	}
	if got := strings.Count(res.stdout, "\n"); got != n {
		t.Fatalf("%d devices on stdout, want %d", got, n)
	}
}

func TestTwoCredentialsAreRefusedNamingBoth(t *testing.T) {
	_, env := simEnv(t, graphsim.Config{Devices: 10})
	env = append(env, "INTUNE_MANAGED_IDENTITY=true")
	for _, args := range [][]string{{"lint", config("stdout.yaml")}, {"-c", config("stdout.yaml")}} {
		res := runBinary(t, env, args...)
		if res.exitCode == 0 {
			t.Fatalf("%v: exit 0 with a client secret and a managed identity", args)
		}
		if out := res.stdout + res.stderr; !strings.Contains(out, "set one credential, not client_secret and managed_identity") {
			t.Errorf("%v: the conflict is not named:\n%s", args, out)
		}
	}
}
