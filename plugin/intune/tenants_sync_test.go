package intune

import (
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// startTenants serves count simulated tenants for the test's lifetime.
func startTenants(t *testing.T, cfg graphsim.TenantsConfig) (*graphsim.Tenants, string) {
	t.Helper()
	ts, err := graphsim.NewTenants(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ts)
	t.Cleanup(func() { srv.Close(); _ = ts.Close() })
	return ts, srv.URL
}

// tenantsYAML is intune_managed_devices reading every tenant of ts, with
// extra lines (indented under the input) appended.
func tenantsYAML(ts *graphsim.Tenants, url string, extra ...string) string {
	c := ts.Tenant(0).Config()
	lines := []string{
		"intune_managed_devices:",
		"  client_id: " + c.ClientID,
		"  client_secret: " + c.ClientSecret,
		"  login_url: " + url,
		"  graph_url: " + url,
		"  tenants:",
		"    ids: [ " + strings.Join(ts.TenantIDs(), ", ") + " ]",
	}
	return strings.Join(append(lines, extra...), "\n")
}

// An MSP's run: every tenant that consented is read whole, each device
// once, tagged with its tenant; the revoked and the forbidden tenants fail
// on their own, named with Entra's and Graph's error codes, and stop no
// other.
func TestTenantsAreReadSideBySideAndAFailingOneStopsNoOther(t *testing.T) {
	const tenants, devices = 6, 250
	ts, url := startTenants(t, graphsim.TenantsConfig{
		Count:     tenants,
		Base:      graphsim.Config{Devices: devices, PageSize: 100, Latency: 5 * time.Millisecond},
		Revoked:   []int{2},
		Forbidden: []int{4},
	})
	res := streamTest{input: tenantsYAML(ts, url, "    max_concurrent: 3")}.run(t)

	byTenant := map[string]map[string]int{}
	for _, m := range res.got {
		tenant, _ := m.meta[contract.TenantID].(string)
		if byTenant[tenant] == nil {
			byTenant[tenant] = map[string]int{}
		}
		byTenant[tenant][deviceID(t, m.body)]++
	}
	for i, id := range ts.TenantIDs() {
		got := byTenant[id]
		if ts.Revoked(i) || ts.Forbidden(i) {
			if len(got) != 0 {
				t.Errorf("tenant %d (failing) delivered %d devices", i, len(got))
			}
			continue
		}
		if len(got) != devices {
			t.Errorf("tenant %d: %d devices, want %d", i, len(got), devices)
		}
		for d := 0; d < devices; d++ {
			if n := got[ts.Tenant(i).DeviceID(d)]; n != 1 {
				t.Fatalf("tenant %d device %d delivered %d times, want once (with its own tenant's metadata)", i, d, n)
			}
		}
	}
	if len(byTenant) != tenants-2 {
		t.Errorf("messages carry %d tenant ids, want %d: %v", len(byTenant), tenants-2, keys(byTenant))
	}

	n, failures := TenantsOutcome()
	if n != tenants || len(failures) != 2 {
		t.Fatalf("outcome: %d tenants, failures %v; want %d tenants and 2 failures", n, failures, tenants)
	}
	for _, f := range failures {
		switch f.Tenant {
		case ts.TenantIDs()[2]:
			if !strings.Contains(f.Err.Error(), "AADSTS700016") {
				t.Errorf("revoked tenant's error %q does not name AADSTS700016", f.Err)
			}
		case ts.TenantIDs()[4]:
			if !strings.Contains(f.Err.Error(), "403") || !strings.Contains(f.Err.Error(), "request-id") {
				t.Errorf("forbidden tenant's error %q does not give the 403 and its request-id", f.Err)
			}
		default:
			t.Errorf("tenant %s failed: %v", f.Tenant, f.Err)
		}
	}
	if res.failure == nil || !strings.Contains(res.failure.Error(), "2 of 6 tenants did not sync") {
		t.Errorf("sync failure %v, want one naming the 2 tenants of 6 that did not sync", res.failure)
	}
	if c := ts.Tenant(0).Config(); strings.Contains(res.logs.String(), c.ClientSecret) {
		t.Error("the client secret reached the log")
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// intune_detected_apps reads tenants the same way: each tenant's apps and
// pairs tagged with it, a revoked tenant failing alone.
func TestDetectedAppsOfEachTenantCarryTheirTenant(t *testing.T) {
	ts, url := startTenants(t, graphsim.TenantsConfig{
		Count:   3,
		Base:    graphsim.Config{Devices: 40, DetectedApps: 60, AppsPerDevice: 8},
		Revoked: []int{1},
	})
	conf := strings.Replace(tenantsYAML(ts, url), "intune_managed_devices:", "intune_detected_apps:", 1)
	res := streamTest{input: conf}.run(t)
	perTenant := map[string]map[string]int{}
	for _, m := range res.got {
		tenant, _ := m.meta[contract.TenantID].(string)
		entity, _ := m.meta[contract.Entity].(string)
		if perTenant[tenant] == nil {
			perTenant[tenant] = map[string]int{}
		}
		perTenant[tenant][entity]++
	}
	for i, id := range ts.TenantIDs() {
		got := perTenant[id]
		if i == 1 {
			if len(got) != 0 {
				t.Errorf("the revoked tenant delivered %v", got)
			}
			continue
		}
		if got[contract.EntityDetectedApp] == 0 || got[contract.EntityDeviceApp] == 0 {
			t.Errorf("tenant %d delivered %v, want its apps and pairs", i, got)
		}
	}
	if n, failures := TenantsOutcome(); n != 3 || len(failures) != 1 || failures[0].Tenant != ts.TenantIDs()[1] {
		t.Errorf("outcome: %d tenants, failures %v; want tenant 1 of 3 failed", n, failures)
	}
}

// A tenant the file gives a certificate of its own gets its token with it,
// the others with the app's secret; a tenant whose certificate cannot be
// read fails alone, and its key never reaches the log.
func TestTenantsFileCertificateIsUsedForItsTenantOnly(t *testing.T) {
	cert := selfSigned(t, rsaKey())
	ts, url := startTenants(t, graphsim.TenantsConfig{
		Count: 4,
		Base:  graphsim.Config{Devices: 30, ClientCertificate: cert},
	})
	dir := t.TempDir()
	certFile := writeFile(t, dir, "t0.pem", certPEM(cert))
	keyFile := writeFile(t, dir, "t0.key", keyPEM(t, rsaKey()))
	// Tenant 2's certificate is not the one registered: Entra refuses it,
	// which shows that its token is asked with it, not with the secret.
	other := selfSigned(t, ecKey())
	otherFile := writeFile(t, dir, "t2.pem", certPEM(other)+keyPEM(t, ecKey()))
	ids := ts.TenantIDs()
	file := writeFile(t, dir, "tenants.txt", fmt.Sprintf("%s certificate=%s private_key=%s\n%s\n%s certificate=%s\n%s certificate=%s\n",
		ids[0], certFile, keyFile, ids[1], ids[2], otherFile, ids[3], filepath.Join(dir, "missing.pem")))
	c := ts.Tenant(0).Config()
	conf := strings.Join([]string{
		"intune_managed_devices:",
		"  client_id: " + c.ClientID,
		"  client_secret: " + c.ClientSecret,
		"  login_url: " + url,
		"  graph_url: " + url,
		"  tenants:",
		"    file: " + file,
	}, "\n")
	res := streamTest{input: conf}.run(t)
	per := map[string]int{}
	for _, m := range res.got {
		tenant, _ := m.meta[contract.TenantID].(string)
		per[tenant]++
	}
	if per[ids[0]] != 30 || per[ids[1]] != 30 || len(per) != 2 {
		t.Errorf("devices per tenant %v, want 30 of tenants 0 and 1 only", per)
	}
	_, failures := TenantsOutcome()
	if len(failures) != 2 || failures[0].Tenant != ids[2] || !strings.Contains(failures[0].Err.Error(), "AADSTS700027") ||
		failures[1].Tenant != ids[3] || !strings.Contains(failures[1].Err.Error(), "certificate of tenant") {
		t.Errorf("failures %v, want tenant 2 refused by Entra (AADSTS700027) and tenant 3's certificate unreadable", failures)
	}
	if strings.Contains(res.logs.String(), "PRIVATE KEY") {
		t.Error("a private key reached the log")
	}
}

// Two processes whose shards overlap (a rollout from 1 replica to 2) and
// that share the state cache: each tenant is synced by one of them, the
// other skips it, naming the holder; none is synced twice at once.
func TestOverlappingShardsSyncEachTenantOnce(t *testing.T) {
	// The file cache's Add is an O_EXCL create; e2e runs the SQL cache's.
	testOverlappingShards(t, fileCache("state", t.TempDir()))
}

func testOverlappingShards(t *testing.T, cache string) {
	const tenants = 6
	ts, url := startTenants(t, graphsim.TenantsConfig{
		Count: tenants,
		Base:  graphsim.Config{Devices: 40, PageSize: 10, Latency: 100 * time.Millisecond},
	})
	run := func(shard string, out chan<- streamResult) {
		st := streamTest{
			input:  tenantsYAML(ts, url, "    max_concurrent: 6", shard, "  state_cache: state"),
			caches: []string{cache},
		}
		out <- st.run(t)
	}
	results := make(chan streamResult, 2)
	go run("    shard_count: 1", results)
	go run("    shard_index: 1\n    shard_count: 2", results)
	synced := map[string]int{}
	skipped := 0
	for i := 0; i < 2; i++ {
		res := <-results
		seen := map[string]bool{}
		for _, m := range res.got {
			tenant, _ := m.meta[contract.TenantID].(string)
			seen[tenant] = true
		}
		for tenant := range seen {
			synced[tenant]++
		}
		skipped += strings.Count(res.logs.String(), "is syncing it")
	}
	for i, id := range ts.TenantIDs() {
		if synced[id] > 1 {
			t.Errorf("tenant %d synced by both processes at once", i)
		}
	}
	// The second process' share overlaps the first's: whichever came
	// second to a tenant skipped it (or found it done and synced it after).
	t.Logf("%d tenants synced, %d skips", len(synced), skipped)
	if len(synced) < tenants-skipped {
		t.Errorf("%d tenants synced with %d skips, want every tenant synced or skipped", len(synced), skipped)
	}
}
