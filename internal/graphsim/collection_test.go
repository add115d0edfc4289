package graphsim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUnauthorized(t *testing.T) {
	e := newEnv(t, Config{Devices: 10})
	const path = "/v1.0/deviceManagement/managedDevices"
	cases := []struct {
		name, header, message string
	}{
		{"no header", "", "Access token is empty."},
		{"empty bearer", "Bearer ", "Access token is empty."},
		{"basic scheme", "Basic dXNlcjpwYXNz", "Access token is empty."},
		{"unknown token", "Bearer eyJ0eXAiAAAA", "Access token validation failure. Invalid audience."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, body := do(t, req)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d", resp.StatusCode)
			}
			ge := decodeGraphError(t, resp, body)
			if ge.Error.Code != "InvalidAuthenticationToken" || ge.Error.Message != tc.message {
				t.Errorf("error %+v", ge.Error)
			}
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		})
	}

	t.Run("expired", func(t *testing.T) {
		sim := New(Config{Devices: 10, TokenLifetime: time.Minute})
		clock := time.Date(2026, 11, 28, 1, 2, 3, 0, time.UTC)
		var mu sync.Mutex
		sim.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
		token := sim.issueToken()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("fresh token refused: %d %s", rec.Code, rec.Body)
		}
		mu.Lock()
		clock = clock.Add(time.Minute)
		mu.Unlock()
		rec = httptest.NewRecorder()
		sim.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Fatalf("expired token: status %d", rec.Code)
		}
		ge := decodeGraphError(t, rec.Result(), rec.Body.Bytes())
		if ge.Error.Message != "Lifetime validation failed, the token is expired." || ge.Error.InnerError.Date != "2026-11-28T01:03:03" {
			t.Errorf("error %+v", ge.Error)
		}
	})
}

func TestForbidden(t *testing.T) {
	e := newEnv(t, Config{Devices: 10, Forbidden: true})
	resp, body := e.get(t, "/v1.0/deviceManagement/managedDevices", e.token)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ge := decodeGraphError(t, resp, body)
	if ge.Error.Code != "Forbidden" {
		t.Errorf("code %q", ge.Error.Code)
	}
	if !strings.HasPrefix(ge.Error.Message, "{\r\n  \"_version\": 3,\r\n  \"Message\": \"Application is not authorized") {
		t.Errorf("message is not Intune's nested JSON: %q", ge.Error.Message)
	}
	var inner struct {
		Version              int     `json:"_version"`
		Message              string  `json:"Message"`
		CustomApiErrorPhrase *string `json:"CustomApiErrorPhrase"`
		RetryAfter           any     `json:"RetryAfter"`
		ErrorSourceService   *string `json:"ErrorSourceService"`
		HttpHeaders          string  `json:"HttpHeaders"`
	}
	if err := json.Unmarshal([]byte(ge.Error.Message), &inner); err != nil {
		t.Fatalf("nested message is not JSON: %v", err)
	}
	if inner.Version != 3 || !strings.Contains(inner.Message, "DeviceManagementManagedDevices.Read.All") ||
		!strings.Contains(inner.Message, "Activity ID: "+resp.Header.Get("request-id")) || inner.HttpHeaders != "{}" || inner.RetryAfter != nil {
		t.Errorf("nested %+v", inner)
	}
	if st := e.sim.Stats(); st.PageRequests != 1 || st.PagesServed != 0 {
		t.Errorf("stats %+v", st)
	}
}

// walk follows nextLinks from first and returns the raw pages.
func walk(t *testing.T, e *env, first string) [][]byte {
	t.Helper()
	var pages [][]byte
	next := first
	for next != "" {
		if len(pages) > 10000 {
			t.Fatal("nextLink loop")
		}
		resp, body := e.get(t, next, e.token)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("page %d: status %d: %s", len(pages)+1, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != graphContentType {
			t.Errorf("Content-Type %q", ct)
		}
		if resp.Header.Get("request-id") == "" || resp.Header.Get("client-request-id") == "" || resp.Header.Get("Date") == "" {
			t.Errorf("missing headers: %v", resp.Header)
		}
		pages = append(pages, body)
		next = decodePage(t, body).NextLink
		if next != "" && !strings.HasPrefix(next, e.ts.URL+"/") {
			t.Fatalf("nextLink %q is not on the request's host", next)
		}
	}
	return pages
}

func nextLinkFirst(body []byte) bool {
	return bytes.Index(body, []byte(`"@odata.nextLink":`)) < bytes.Index(body, []byte(`"value":[`))
}

func TestFullWalk(t *testing.T) {
	const n = 2345
	e := newEnv(t, Config{Devices: n, Seed: 42})
	pages := walk(t, e, "/v1.0/deviceManagement/managedDevices")
	if len(pages) != 3 {
		t.Fatalf("%d pages, want 3", len(pages))
	}
	seen := map[string]bool{}
	i := 0
	for p, body := range pages {
		pg := decodePage(t, body)
		if pg.Context != "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices" {
			t.Errorf("context %q", pg.Context)
		}
		if pg.Count == nil || *pg.Count != n {
			t.Errorf("page %d: @odata.count %v", p+1, pg.Count)
		}
		if want := min(1000, n-1000*p); len(pg.Value) != want {
			t.Errorf("page %d: %d devices, want %d", p+1, len(pg.Value), want)
		}
		for _, raw := range pg.Value {
			var d struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(raw, &d); err != nil {
				t.Fatal(err)
			}
			if seen[d.ID] {
				t.Fatalf("duplicate %s", d.ID)
			}
			seen[d.ID] = true
			if d.ID != e.sim.DeviceID(i) {
				t.Fatalf("device %d: id %s, want %s", i, d.ID, e.sim.DeviceID(i))
			}
			// The page holds exactly Device(i).
			if !bytes.Equal(raw, e.sim.Device(i)) {
				t.Fatalf("device %d differs from Device(%d)", i, i)
			}
			i++
		}
	}
	if len(seen) != n {
		t.Errorf("%d devices, want %d", len(seen), n)
	}
	if !nextLinkFirst(pages[0]) {
		t.Error("page 1: nextLink should come before value")
	}
	if nextLinkFirst(pages[1]) || !bytes.Contains(pages[1], []byte(`"@odata.nextLink":`)) {
		t.Error("page 2: nextLink should come after value")
	}
	if bytes.Contains(pages[2], []byte("@odata.nextLink")) {
		t.Error("last page has a nextLink")
	}
	next := decodePage(t, pages[0]).NextLink
	if !strings.Contains(next, "?$skiptoken=LastDeviceName%3d'") || !strings.Contains(next, "'%2cLastDeviceId%3d'"+e.sim.DeviceID(999)+"'") {
		t.Errorf("nextLink %q", next)
	}
	if st := e.sim.Stats(); st.PageRequests != 3 || st.PagesServed != 3 || st.BadRequests != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestFilterSelectWalk(t *testing.T) {
	const n = 3000
	e := newEnv(t, Config{Devices: n, Seed: 7})
	var want []string
	for i := 0; i < n; i++ {
		if e.sim.OperatingSystem(i) == "Windows" {
			want = append(want, e.sim.DeviceID(i))
		}
	}
	q := url.Values{
		"$top":    {"100"},
		"$select": {"operatingSystem,deviceName,id"},
		"$filter": {"operatingSystem eq 'Windows'"},
	}
	pages := walk(t, e, "/v1.0/deviceManagement/managedDevices?"+q.Encode())
	var got []string
	for p, body := range pages {
		pg := decodePage(t, body)
		if pg.Context != "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices(id,deviceName,operatingSystem)" {
			t.Errorf("context %q", pg.Context)
		}
		if pg.Count == nil || *pg.Count != int64(len(want)) {
			t.Errorf("@odata.count %v, want %d", pg.Count, len(want))
		}
		if p < len(pages)-1 && len(pg.Value) != 100 {
			t.Errorf("page %d: %d devices", p+1, len(pg.Value))
		}
		if p%2 == 0 && pg.NextLink != "" && !nextLinkFirst(body) || p%2 == 1 && pg.NextLink != "" && nextLinkFirst(body) {
			t.Errorf("page %d: nextLink on the wrong side", p+1)
		}
		if pg.NextLink != "" {
			for _, opt := range []string{"$top=100", "$select=", "$filter=", "$skiptoken="} {
				if strings.Count(pg.NextLink, opt) != 1 {
					t.Errorf("nextLink %q has %q %d times", pg.NextLink, opt, strings.Count(pg.NextLink, opt))
				}
			}
		}
		for _, raw := range pg.Value {
			// Only the selected properties, in the resource's order.
			dec := json.NewDecoder(bytes.NewReader(raw))
			var keys []string
			var values []string
			dec.Token()
			for dec.More() {
				k, _ := dec.Token()
				v, _ := dec.Token()
				keys = append(keys, k.(string))
				values = append(values, v.(string))
			}
			if strings.Join(keys, ",") != "id,deviceName,operatingSystem" || values[2] != "Windows" {
				t.Fatalf("device %s", raw)
			}
			got = append(got, values[0])
		}
	}
	if len(pages) != (len(want)+99)/100 {
		t.Errorf("%d pages for %d devices", len(pages), len(want))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("filtered walk gave %d devices, want %d (or a different order)", len(got), len(want))
	}

	// Case-insensitive names, operator and value.
	_, body := e.get(t, "/v1.0/deviceManagement/managedDevices?$filter="+url.QueryEscape("OperatingSystem EQ 'windows'")+"&$top=5", e.token)
	if pg := decodePage(t, body); pg.Count == nil || *pg.Count != int64(len(want)) || len(pg.Value) != 5 {
		t.Errorf("case-insensitive filter: count %v, %d devices", pg.Count, len(pg.Value))
	}
	// An operating system the tenant lacks: valid, and empty.
	_, body = e.get(t, "/v1.0/deviceManagement/managedDevices?$filter="+url.QueryEscape("operatingSystem eq 'Linux'"), e.token)
	if pg := decodePage(t, body); len(pg.Value) != 0 || pg.NextLink != "" || *pg.Count != 0 {
		t.Errorf("Linux filter: %s", body)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Config{Devices: 50})
	id := e.sim.DeviceID(3)
	cases := []struct{ query, message string }{
		{"$top=10&$top=20", "Query option '$top' was specified more than once, it must be specified at most once."},
		{"$top=10&$TOP=10", "Query option '$top' was specified more than once, it must be specified at most once."},
		{"$select=id&%24select=id", "Query option '$select' was specified more than once, it must be specified at most once."},
		{"$expand=detectedApps", "Unrecognized query argument specified: '$expand'."},
		{"$skip=10", "Unrecognized query argument specified: '$skip'."},
		{"$top=abc", "Invalid value 'abc' for $top query option found. The $top query option requires a non-negative integer value."},
		{"$top=-1", "Invalid value '-1' for $top query option found. The $top query option requires a non-negative integer value."},
		{"$top=0", "Invalid value '0' for $top query option found. The $top query option requires a positive integer value."},
		{"$top=1000000", "The limit of '999999' for Top query has been exceeded. The value from the incoming request is '1000000'."},
		{"$select=id,bogus", "Could not find a property named 'bogus' on type 'microsoft.graph.managedDevice'."},
		{"$select=chassisType", "Could not find a property named 'chassisType' on type 'microsoft.graph.managedDevice'."},
		{"$filter=" + url.QueryEscape("deviceName eq 'x'"), "Invalid filter clause"},
		{"$filter=" + url.QueryEscape("operatingSystem eq Windows"), "Invalid filter clause"},
		{"$filter=" + url.QueryEscape("operatingSystem eq 'Windows' or operatingSystem eq 'iOS'"), "Invalid filter clause"},
		{"$count=maybe", "Invalid value 'maybe' for $count query option found. Valid values are 'true', 'false'."},
		{"$skiptoken=garbage", "The skip token 'garbage' is not valid."},
		{"$skiptoken=" + url.QueryEscape("LastDeviceName='x',LastDeviceId='"+id[:24]+"0000000000ff'"), ""},
		{"$skiptoken=" + url.QueryEscape("LastDeviceName='x',LastDeviceId='00000000-0000-4000-8000-000000000003'"), ""},
		{"$top=%zz", "The query specified in the URI is not valid."},
	}
	for _, tc := range cases {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := e.get(t, "/v1.0/deviceManagement/managedDevices?"+tc.query, e.token)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d: %.300s", resp.StatusCode, body)
			}
			ge := decodeGraphError(t, resp, body)
			if ge.Error.Code != "BadRequest" || !strings.HasPrefix(ge.Error.Message, tc.message) {
				t.Errorf("error %+v", ge.Error)
			}
		})
	}
	if st := e.sim.Stats(); st.BadRequests != int64(len(cases)) || st.PagesServed != 0 {
		t.Errorf("stats %+v", st)
	}

	// Accepted: $count, $orderby, a non-OData parameter, $select=* and a
	// skip token with the device name mangled or decoded once too often.
	for _, q := range []string{
		"$count=true&$orderby=deviceName&api-version=1",
		"$select=*",
		"$skiptoken=" + url.QueryEscape("LastDeviceName='whatever',LastDeviceId='"+id+"'"),
		"$skiptoken=" + url.QueryEscape(url.QueryEscape("LastDeviceName='x',LastDeviceId='"+strings.ToUpper(id)+"'")),
		"$skiptoken=LastDeviceName='Zo%C3%AB''s%20iPhone',LastDeviceId='" + id + "'",
	} {
		resp, body := e.get(t, "/v1.0/deviceManagement/managedDevices?"+q, e.token)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d: %.300s", q, resp.StatusCode, body)
			continue
		}
		if pg := decodePage(t, body); strings.Contains(q, "skiptoken") && (len(pg.Value) != 46 || !bytes.Equal(pg.Value[0], e.sim.Device(4))) {
			t.Errorf("%s: page does not resume after device 3", q)
		}
	}
}

func TestNotFoundAndMethod(t *testing.T) {
	e := newEnv(t, Config{Devices: 5})
	for path, segment := range map[string]string{
		"/v1.0/deviceManagement/managedDevicez": "managedDevicez",
		"/v1.0/users":                           "users",
		"/v2.0/deviceManagement/managedDevices": "v2.0",
		"/v1.0/deviceManagement":                "deviceManagement",
		"/v1.0/deviceManagement/managedDevices/" + e.sim.DeviceID(1) + "/x": e.sim.DeviceID(1),
	} {
		resp, body := e.get(t, path, e.token)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d", path, resp.StatusCode)
			continue
		}
		ge := decodeGraphError(t, resp, body)
		if ge.Error.Code != "ResourceNotFound" || ge.Error.Message != "Resource not found for the segment '"+segment+"'." {
			t.Errorf("%s: %+v", path, ge.Error)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/beta/deviceManagement/managedDevices", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if resp, body := do(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d %s", resp.StatusCode, body)
	}
}

func TestEmptyTenant(t *testing.T) {
	e := newEnv(t, Config{})
	pages := walk(t, e, "/v1.0/deviceManagement/managedDevices")
	if len(pages) != 1 {
		t.Fatalf("%d pages", len(pages))
	}
	want := `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices","@odata.count":0,"value":[]}`
	if string(pages[0]) != want {
		t.Errorf("got %s", pages[0])
	}
}

func TestExactPageBoundary(t *testing.T) {
	// 2000 devices in pages of 1000: no third, empty page.
	e := newEnv(t, Config{Devices: 2000, PageSize: 0})
	if pages := walk(t, e, "/v1.0/deviceManagement/managedDevices"); len(pages) != 2 {
		t.Errorf("%d pages", len(pages))
	}
}

func TestBeta(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, ScopeHost: "https://graph.microsoft.us/"})
	resp, body := e.get(t, "/beta/deviceManagement/managedDevices?$top=20", e.token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	pg := decodePage(t, body)
	if pg.Context != "https://graph.microsoft.us/beta/$metadata#deviceManagement/managedDevices" {
		t.Errorf("context %q", pg.Context)
	}
	for i, raw := range pg.Value {
		v1 := e.sim.Device(i)
		// Beta is the v1.0 device with more properties at the end.
		if !bytes.HasPrefix(raw, v1[:len(v1)-1]) {
			t.Fatalf("beta device %d does not extend the v1.0 one", i)
		}
		var d map[string]json.RawMessage
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"hardwareInformation", "roleScopeTagIds", "chassisType", "usersLoggedOn"} {
			if d[k] == nil {
				t.Errorf("beta device %d lacks %s", i, k)
			}
		}
	}
	_, body = e.get(t, "/beta/deviceManagement/managedDevices?$select=chassisType,id&$top=1", e.token)
	if pg := decodePage(t, body); len(pg.Value) != 1 || !strings.HasPrefix(string(pg.Value[0]), `{"id":"`) || !strings.Contains(string(pg.Value[0]), `"chassisType":"`) {
		t.Errorf("beta $select: %s", body)
	}
}

func TestClientRequestIDEcho(t *testing.T) {
	e := newEnv(t, Config{Devices: 1})
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/v1.0/deviceManagement/managedDevices", nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("client-request-id", "0b5e7a8e-0000-4000-8000-00000000abcd")
	resp, _ := do(t, req)
	if resp.Header.Get("client-request-id") != "0b5e7a8e-0000-4000-8000-00000000abcd" {
		t.Errorf("client-request-id %q", resp.Header.Get("client-request-id"))
	}
	if resp.Header.Get("request-id") == "" || len(resp.Header.Get("request-id")) != 36 {
		t.Errorf("request-id %q", resp.Header.Get("request-id"))
	}
}

func TestLatencyHonoursCancellation(t *testing.T) {
	sim := New(Config{Devices: 10, Latency: time.Hour})
	token := sim.issueToken()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, "/v1.0/deviceManagement/managedDevices", nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	sim.ServeHTTP(httptest.NewRecorder(), req)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled request took %v", d)
	}
	if st := sim.Stats(); st.PagesServed != 0 {
		t.Errorf("stats %+v", st)
	}

	sim = New(Config{Devices: 10, Latency: 30 * time.Millisecond})
	token = sim.issueToken()
	req = httptest.NewRequest(http.MethodGet, "/v1.0/deviceManagement/managedDevices", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	start = time.Now()
	rec := httptest.NewRecorder()
	sim.ServeHTTP(rec, req)
	if d := time.Since(start); d < 30*time.Millisecond || rec.Code != http.StatusOK {
		t.Errorf("latency: %v, status %d", d, rec.Code)
	}
}

func TestConcurrentWalks(t *testing.T) {
	e := newEnv(t, Config{Devices: 1500, PageSize: 200})
	var wg sync.WaitGroup
	counts := make([]int, 6)
	for g := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := "/v1.0/deviceManagement/managedDevices"
			if g%2 == 1 {
				first += "?$filter=" + url.QueryEscape("operatingSystem eq 'iOS'")
			}
			next := e.ts.URL + first
			for next != "" {
				resp, err := http.Get(next) // no token: exercises the 401 path concurrently
				if err == nil {
					resp.Body.Close()
				}
				req, _ := http.NewRequest(http.MethodGet, next, nil)
				req.Header.Set("Authorization", "Bearer "+e.token)
				resp, err = http.DefaultClient.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				var pg page
				err = json.NewDecoder(resp.Body).Decode(&pg)
				resp.Body.Close()
				if err != nil {
					t.Error(err)
					return
				}
				counts[g] += len(pg.Value)
				next = pg.NextLink
			}
		}()
	}
	wg.Wait()
	ios := 0
	for i := 0; i < 1500; i++ {
		if e.sim.OperatingSystem(i) == "iOS" {
			ios++
		}
	}
	for g, c := range counts {
		if want := map[bool]int{true: ios, false: 1500}[g%2 == 1]; c != want {
			t.Errorf("walker %d saw %d devices, want %d", g, c, want)
		}
	}
}
