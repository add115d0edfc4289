package graphsim

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// newTenantsEnv serves the tenants of cfg on a test server.
func newTenantsEnv(t *testing.T, cfg TenantsConfig) (*Tenants, *httptest.Server) {
	t.Helper()
	ts, err := NewTenants(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(ts)
	t.Cleanup(func() {
		srv.Close()
		_ = ts.Close()
	})
	return ts, srv
}

// tenantEnv is tenant i of ts, served by srv, with a token of its own.
func tenantEnv(t *testing.T, ts *Tenants, srv *httptest.Server, i int) *env {
	t.Helper()
	e := &env{sim: ts.Tenant(i), ts: srv}
	e.takeToken(t, ts.TenantIDs()[i])
	return e
}

// listIDs reads a tenant's whole managedDevices listing and returns the
// devices' ids.
func listIDs(t *testing.T, e *env) []string {
	t.Helper()
	var ids []string
	for _, body := range walk(t, e, devicesPath+"?$select=id") {
		for _, raw := range decodePage(t, body).Value {
			var d struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, d.ID)
		}
	}
	return ids
}

func TestTenantsOwnDevices(t *testing.T) {
	ts, srv := newTenantsEnv(t, TenantsConfig{
		Count:   3,
		Base:    Config{Devices: 25, PageSize: 10, Seed: 5},
		Devices: []int{25, 12},
	})
	ids := ts.TenantIDs()
	if len(ids) != 3 || ts.Len() != 3 {
		t.Fatalf("tenant ids %v", ids)
	}
	for i, id := range ids {
		if id != TenantID(i) || ts.Tenant(i).Config().TenantID != id || ts.Tenant(i).Config().Seed != 5+int64(i) {
			t.Errorf("tenant %d: id %q, config %q seed %d", i, id, ts.Tenant(i).Config().TenantID, ts.Tenant(i).Config().Seed)
		}
		if n, ok := ts.Index(strings.ToUpper(id)); !ok || n != i {
			t.Errorf("Index(%q) = %d, %v", id, n, ok)
		}
	}
	want := []int{25, 12, 25}
	seen := map[string]int{}
	for i := range 3 {
		e := tenantEnv(t, ts, srv, i)
		got := listIDs(t, e)
		if len(got) != want[i] {
			t.Fatalf("tenant %d listed %d devices, want %d", i, len(got), want[i])
		}
		for k, id := range got {
			if id != ts.Tenant(i).DeviceID(k) {
				t.Fatalf("tenant %d device %d: %s, want %s", i, k, id, ts.Tenant(i).DeviceID(k))
			}
			if j, dup := seen[id]; dup {
				t.Fatalf("device %s listed by tenants %d and %d", id, j, i)
			}
			seen[id] = i
		}
		if st := ts.Tenant(i).Stats(); st.TokensIssued != 1 || st.PagesServed != int64((want[i]+9)/10) {
			t.Errorf("tenant %d stats %+v", i, st)
		}
	}
	if st := ts.Stats(); st.TokensIssued != 3 || st.PagesServed != 3+2+3 {
		t.Errorf("all tenants' stats %+v", st)
	}
}

func TestTenantsTokenRoutesToItsTenant(t *testing.T) {
	ts, srv := newTenantsEnv(t, TenantsConfig{Count: 2, Base: Config{Devices: 3}})
	a, b := tenantEnv(t, ts, srv, 0), tenantEnv(t, ts, srv, 1)
	if tokenTenant(a.token) != ts.TenantIDs()[0] || !strings.HasPrefix(a.token, "eyJ0eXAi") {
		t.Fatalf("tenant 0's token names %q", tokenTenant(a.token))
	}
	// Tenant A's token reads A's devices, whatever the test server's
	// other tenants hold.
	if got := listIDs(t, a); got[0] != ts.Tenant(0).DeviceID(0) {
		t.Errorf("A's token listed %v", got)
	}
	if got := listIDs(t, b); got[0] != ts.Tenant(1).DeviceID(0) {
		t.Errorf("B's token listed %v", got)
	}
	// A's token altered to name B reaches B, which never issued it.
	parts := strings.Split(a.token, ".")
	claims, _ := json.Marshal(tokenClaims{Tid: ts.TenantIDs()[1]})
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + parts[2]
	resp, body := a.get(t, devicesPath, forged)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("forged token: %d %s", resp.StatusCode, body)
	}
	if ge := decodeGraphError(t, resp, body); ge.Error.Code != "InvalidAuthenticationToken" {
		t.Errorf("forged token: %+v", ge.Error)
	}
	if ts.Tenant(1).Stats().PagesServed != 1 || ts.Tenant(0).Stats().PagesServed != 1 {
		t.Errorf("pages served: A %d, B %d", ts.Tenant(0).Stats().PagesServed, ts.Tenant(1).Stats().PagesServed)
	}
	// A token that names no tenant, and none at all.
	for token, msg := range map[string]string{"eyJ0eXAiopaque": "Invalid audience", "": "Access token is empty."} {
		resp, body := a.get(t, devicesPath, token)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("token %q: %d %s", token, resp.StatusCode, body)
		}
		if ge := decodeGraphError(t, resp, body); !strings.Contains(ge.Error.Message, msg) {
			t.Errorf("token %q: %+v", token, ge.Error)
		}
	}
	// An unknown tenant gets Entra's AADSTS90002.
	resp, body = a.postToken(t, "99999999-0000-4000-8000-000000000000", a.form())
	if ee := decodeEntraError(t, body); resp.StatusCode != http.StatusBadRequest || ee.Error != "invalid_request" || !slices.Equal(ee.Codes, []int{90002}) {
		t.Errorf("unknown tenant: %d %s", resp.StatusCode, body)
	}
	// The same client id and secret get a token for every tenant: a
	// wrong secret is refused by the tenant.
	form := a.form()
	form.Set("client_secret", "wrong")
	resp, body = a.postToken(t, ts.TenantIDs()[1], form)
	if ee := decodeEntraError(t, body); resp.StatusCode != http.StatusUnauthorized || !slices.Equal(ee.Codes, []int{7000215}) {
		t.Errorf("wrong secret: %d %s", resp.StatusCode, body)
	}
	if st := ts.Tenant(1).Stats(); st.TokenRequests != 2 || st.TokensIssued != 1 {
		t.Errorf("tenant 1 stats %+v", st)
	}
}

func TestTenantsRevoked(t *testing.T) {
	for _, tc := range []struct {
		revocation Revocation
		code       int
		text       string
	}{
		{"", 700016, "was not found in the directory '" + TenantID(2) + "'"},
		{RevocationDisabled, 7000112, "Application '" + DefaultClientID + "'(" + AppDisplayName + ") is disabled."},
	} {
		ts, srv := newTenantsEnv(t, TenantsConfig{Count: 3, Base: Config{Devices: 3}, Revoked: []int{2}, Revocation: tc.revocation})
		if !ts.Revoked(2) || ts.Revoked(1) || ts.Revocation() != cmp.Or(tc.revocation, RevocationDeleted) {
			t.Errorf("Revoked: %v %v %q", ts.Revoked(2), ts.Revoked(1), ts.Revocation())
		}
		tenantEnv(t, ts, srv, 1) // the others still work
		e := &env{sim: ts.Tenant(2), ts: srv}
		resp, body := e.postToken(t, ts.TenantIDs()[2], e.form())
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%q: %d %s", tc.revocation, resp.StatusCode, body)
		}
		ee := decodeEntraError(t, body)
		if ee.Error != "unauthorized_client" || !slices.Equal(ee.Codes, []int{tc.code}) || !strings.Contains(ee.Description, tc.text) ||
			ee.TraceID == "" || ee.TraceID != resp.Header.Get("x-ms-request-id") || ee.CorrelationID == "" || ee.Timestamp == "" ||
			!strings.HasSuffix(ee.URI, "?code="+strconv.Itoa(tc.code)) {
			t.Errorf("%q: %s", tc.revocation, body)
		}
		if st := ts.Tenant(2).Stats(); st.TokenRequests != 1 || st.TokensIssued != 0 {
			t.Errorf("revoked tenant's stats %+v", st)
		}
	}
}

func TestTenantsForbidden(t *testing.T) {
	ts, srv := newTenantsEnv(t, TenantsConfig{
		Count:     2,
		Base:      Config{Devices: 5, DetectedApps: 20, AppsPerDevice: 5, ReadWrite: true},
		Forbidden: []int{1},
	})
	if !ts.Forbidden(1) || ts.Forbidden(0) {
		t.Fatal("Forbidden")
	}
	ok, e := tenantEnv(t, ts, srv, 0), tenantEnv(t, ts, srv, 1) // the forbidden tenant's token is issued
	paths := func(id string) []string {
		return []string{devicesPath, devicesPath + "/" + id, appsPath, "/beta/deviceManagement/managedDevices/" + id + "/detectedApps", exportJobsPath + "('AppInvRawData_x')"}
	}
	for _, p := range paths(ts.Tenant(0).DeviceID(0))[:4] {
		if resp, body := ok.get(t, p, ok.token); resp.StatusCode != http.StatusOK {
			t.Errorf("allowed tenant %s: %d %s", p, resp.StatusCode, body)
		}
	}
	id := ts.Tenant(1).DeviceID(0)
	// Tenant 1's device is not tenant 0's.
	if resp, body := ok.get(t, devicesPath+"/"+id, ok.token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("tenant 0 found tenant 1's device: %d %s", resp.StatusCode, body)
	}
	for _, p := range paths(id) {
		resp, body := e.get(t, p, e.token)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %d %s", p, resp.StatusCode, body)
		}
		ge := decodeGraphError(t, resp, body)
		if ge.Error.Code != "Forbidden" || !strings.Contains(ge.Error.Message, "Application is not authorized to perform this operation") ||
			!strings.Contains(ge.Error.Message, "DeviceManagementManagedDevices.Read.All") || !strings.Contains(ge.Error.Message, resp.Header.Get("request-id")) {
			t.Errorf("%s: %+v", p, ge.Error)
		}
	}
	resp, body := e.post(t, exportJobsPath, `{"reportName":"AppInvRawData","format":"csv"}`, e.token)
	if ge := decodeGraphError(t, resp, body); resp.StatusCode != http.StatusForbidden || !strings.Contains(ge.Error.Message, "DeviceManagementManagedDevices.ReadWrite.All") {
		t.Errorf("export job: %d %s", resp.StatusCode, body)
	}
	// In a batch: 200, each request's 403 inside with its own ids.
	items, _ := postBatch(t, e, "v1.0", batchOf(t, gets("/deviceManagement/managedDevices/"+id+"?$select=notes", "/deviceManagement/managedDevices?$top=2")...))
	for _, k := range []string{"1", "2"} {
		it := items[k]
		var ge graphErr
		if err := decodeStrict(it.Body, &ge); err != nil || it.Status != http.StatusForbidden || ge.Error.Code != "Forbidden" ||
			ge.Error.InnerError.RequestID == "" || !strings.Contains(ge.Error.Message, ge.Error.InnerError.RequestID) {
			t.Errorf("batch item %s: %d %v %s %v", k, it.Status, err, it.Body, it.Headers)
		}
	}
}

func TestTenantsThrottlePerTenant(t *testing.T) {
	ts, srv := newTenantsEnv(t, TenantsConfig{Count: 2, Base: Config{Devices: 3, Throttle: Throttle{Requests: 3, Window: time.Hour}}})
	a, b := tenantEnv(t, ts, srv, 0), tenantEnv(t, ts, srv, 1)
	for k := range 3 {
		if resp, body := a.get(t, devicesPath, a.token); resp.StatusCode != http.StatusOK {
			t.Fatalf("A's request %d: %d %s", k+1, resp.StatusCode, body)
		}
	}
	resp, body := a.get(t, devicesPath, a.token)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("A's fourth request: %d %s", resp.StatusCode, body)
	}
	for k := range 3 {
		if resp, body := b.get(t, devicesPath, b.token); resp.StatusCode != http.StatusOK {
			t.Fatalf("B's request %d, A's budget spent: %d %s", k+1, resp.StatusCode, body)
		}
	}
	if a, b := ts.Tenant(0).Stats().Throttled, ts.Tenant(1).Stats().Throttled; a != 1 || b != 0 {
		t.Errorf("throttled: A %d, B %d", a, b)
	}
}

func TestTenantsExportAndAdmin(t *testing.T) {
	var ts *Tenants
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { ts.StorageHandler().ServeHTTP(w, r) }))
	t.Cleanup(storage.Close)
	ts, srv := newTenantsEnv(t, TenantsConfig{
		Count: 3,
		Base:  Config{Devices: 10, DetectedApps: 30, AppsPerDevice: 5, ReadWrite: true, StorageURL: storage.URL},
	})
	e := tenantEnv(t, ts, srv, 2)
	resp, body := e.post(t, exportJobsPath, `{"reportName":"AppInvRawData","format":"csv"}`, e.token)
	job := decodeJob(t, resp, body, http.StatusCreated)
	resp, body = e.get(t, exportJobsPath+"('"+job.ID+"')", e.token)
	if job = decodeJob(t, resp, body, http.StatusOK); job.URL == nil || !strings.HasPrefix(*job.URL, storage.URL+"/") {
		t.Fatalf("poll: %s", body)
	}
	rows := download(t, *job.URL, "")
	pairs := ts.Tenant(2).DeviceAppPairs()
	if len(rows) != 1+len(pairs) || len(pairs) == 0 || rows[1][0] != pairs[0].AppID || rows[1][5] != pairs[0].DeviceID {
		t.Fatalf("export: %d rows for %d pairs, first %v", len(rows), len(pairs), rows[1])
	}
	// The job is tenant 2's: tenant 0's token cannot poll it.
	a := tenantEnv(t, ts, srv, 0)
	if resp, _ := a.get(t, exportJobsPath+"('"+job.ID+"')", a.token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("tenant 0 polled tenant 2's job: %d", resp.StatusCode)
	}
	if resp, _ := a.get(t, storage.URL+"/nocontainer/x.zip", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown container: %d", resp.StatusCode)
	}

	// Admin: the list, a tenant's endpoint, the sum of the stats.
	resp, body = a.get(t, "/_graphsim/tenants", "")
	var list []tenantSummary
	if err := decodeStrict(body, &list); err != nil || resp.StatusCode != http.StatusOK || len(list) != 3 || list[1].ID != TenantID(1) {
		t.Fatalf("tenants: %d %s", resp.StatusCode, body)
	}
	resp, body = a.post(t, "/_graphsim/tenants/"+TenantID(1)+"/mutate", `{"add":2}`, "")
	if resp.StatusCode != http.StatusOK || ts.Tenant(1).Count() != 12 || ts.Tenant(0).Count() != 10 {
		t.Errorf("mutate tenant 1: %d %s", resp.StatusCode, body)
	}
	resp, body = a.get(t, "/_graphsim/tenants/2/stats", "")
	var st Stats
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != http.StatusOK || st.ExportJobs != 1 || st.Downloads != 1 {
		t.Errorf("tenant 2's stats: %d %s", resp.StatusCode, body)
	}
	resp, body = a.get(t, "/_graphsim/stats", "")
	if err := json.Unmarshal(body, &st); err != nil || resp.StatusCode != http.StatusOK || st.TokensIssued != 2 || st.ExportJobs != 1 {
		t.Errorf("stats: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/_graphsim/tenants/7/stats", "/_graphsim/mutate"} {
		if resp, body := a.get(t, p, ""); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d %s", p, resp.StatusCode, body)
		}
	}
}

func TestNewTenantsErrors(t *testing.T) {
	for _, tc := range []struct {
		cfg TenantsConfig
		msg string
	}{
		{TenantsConfig{}, "count 0"},
		{TenantsConfig{Count: 2, Revoked: []int{2}}, "revoked tenant 2: no such tenant"},
		{TenantsConfig{Count: 2, Forbidden: []int{-1}}, "forbidden tenant -1"},
		{TenantsConfig{Count: 2, Revoked: []int{1}, Forbidden: []int{1}}, "both revoked and forbidden"},
		{TenantsConfig{Count: 2, Revocation: "gone"}, `revocation "gone"`},
		{TenantsConfig{Count: 1, Devices: []int{1, 2}}, "2 device counts for 1 tenants"},
		{TenantsConfig{Count: 1, Base: Config{Faults: []Fault{{Kind: "418"}}}}, "unknown fault kind"},
	} {
		if _, err := NewTenants(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.msg)
		}
	}
}

func TestNewTenantsIsCheap(t *testing.T) {
	// 50 tenants of 2,000 devices generate nothing until asked.
	start := time.Now()
	ts, err := NewTenants(TenantsConfig{Count: 50, Base: Config{Devices: 2000, DetectedApps: 500}})
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("NewTenants took %s", d)
	}
	ids := ts.TenantIDs()
	if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != 50 || ids[49] != TenantID(49) || !strings.HasSuffix(ids[49], "-000000000031") {
		t.Errorf("tenant ids %v", ids)
	}
}
