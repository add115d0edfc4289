package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// nationalClouds are the hosts Microsoft documents per cloud ("National
// cloud deployments", learn.microsoft.com/graph/deployments), written out
// here rather than read from plugin/graph so that a wrong row there fails.
var nationalClouds = []struct{ name, login, graph string }{
	{"global", "login.microsoftonline.com", "graph.microsoft.com"},
	{"usgov", "login.microsoftonline.us", "graph.microsoft.us"},
	{"usgov_dod", "login.microsoftonline.us", "dod-graph.microsoft.us"},
	{"china", "login.chinacloudapi.cn", "microsoftgraph.chinacloudapi.cn"},
}

// cloudServerTLS is a throw-away CA and a server certificate it issued for
// every cloud's hosts, made at run time.
func cloudServerTLS(t *testing.T) (caPEM []byte, serverCert tls.Certificate) {
	t.Helper()
	caKey := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "intune-benthos test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER := must(x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey))
	ca := must(x509.ParseCertificate(caDER))
	var hosts []string
	for _, c := range nationalClouds {
		hosts = append(hosts, c.login, c.graph)
	}
	key := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: hosts[0]}, DNSNames: hosts,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der := must(x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey))
	return graphsim.CertificatePEM(ca),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// seenRequest is what the stand-in for a cloud's hosts was asked.
type seenRequest struct{ host, method, path, scope string }

// TestEachCloudUsesItsLoginHostGraphHostAndScope runs the binary with only
// `cloud` set, as a user in that cloud would: its requests reach this
// machine through HTTPS_PROXY, behind a certificate the tls field trusts,
// so the hosts it dials, the token URL, the scope and the Graph URL are
// what it would use against Microsoft.
func TestEachCloudUsesItsLoginHostGraphHostAndScope(t *testing.T) {
	caPEM, serverCert := cloudServerTLS(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cloud := range nationalClouds {
		t.Run(cloud.name, func(t *testing.T) {
			const n = 1500
			sim := graphsim.New(graphsim.Config{Devices: n, PageSize: 1000, ScopeHost: "https://" + cloud.graph})
			var mu sync.Mutex
			var seen []seenRequest
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				req := seenRequest{host: r.Host, method: r.Method, path: r.URL.Path}
				if r.Method == http.MethodPost {
					body, _ := io.ReadAll(r.Body)
					form, _ := url.ParseQuery(string(body))
					req.scope = form.Get("scope")
					r.Body = io.NopCloser(bytes.NewReader(body))
				}
				mu.Lock()
				seen = append(seen, req)
				mu.Unlock()
				sim.ServeHTTP(w, r)
			}))
			srv.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}}
			srv.StartTLS()
			defer srv.Close()
			proxy := &connectProxy{target: srv.Listener.Addr().String()}
			proxySrv := httptest.NewServer(proxy)
			defer proxySrv.Close()

			c := sim.Config()
			conf := writeConfig(t, inputConfig{login: simLogin(sim, ""), input: fmt.Sprintf("    cloud: %s\n    backoff:\n      max_elapsed_time: 3s\n    tls:\n      enabled: true\n      root_cas_file: %s", cloud.name, caFile)})
			res := runBinary(t, []string{"HTTPS_PROXY=" + proxySrv.URL, "NO_PROXY=", "no_proxy="}, "-c", conf)
			if res.exitCode != 0 {
				t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
			}
			if lines := strings.Count(res.stdout, "\n"); lines != n {
				t.Fatalf("%d devices on stdout, want %d", lines, n)
			}

			proxy.mu.Lock()
			tunnels := slices.Compact(slices.Sorted(slices.Values(proxy.asked)))
			proxy.mu.Unlock()
			wantTunnels := slices.Compact(slices.Sorted(slices.Values([]string{cloud.login + ":443", cloud.graph + ":443"})))
			if !slices.Equal(tunnels, wantTunnels) {
				t.Errorf("tunnels to %v, want %v", tunnels, wantTunnels)
			}
			mu.Lock()
			defer mu.Unlock()
			tokens, pages := 0, 0
			for _, r := range seen {
				switch {
				case r.method == http.MethodPost:
					tokens++
					if r.host != cloud.login || r.path != "/"+c.TenantID+"/oauth2/v2.0/token" {
						t.Errorf("token request to https://%s%s, want https://%s/%s/oauth2/v2.0/token", r.host, r.path, cloud.login, c.TenantID)
					}
					if want := "https://" + cloud.graph + "/.default"; r.scope != want {
						t.Errorf("scope %q, want %q", r.scope, want)
					}
				default:
					pages++
					if r.host != cloud.graph || r.path != "/v1.0/deviceManagement/managedDevices" {
						t.Errorf("page request to https://%s%s, want https://%s/v1.0/deviceManagement/managedDevices", r.host, r.path, cloud.graph)
					}
				}
			}
			if tokens != 1 || pages != 2 {
				t.Errorf("%d token and %d page requests, want 1 and 2", tokens, pages)
			}
		})
	}
}
