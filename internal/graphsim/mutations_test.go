package graphsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
)

// listing walks a full listing and returns its devices by id, failing on
// a duplicate or a wrong @odata.count.
func listing(t *testing.T, e *env, query string) (ids []string, raw map[string][]byte) {
	t.Helper()
	raw = map[string][]byte{}
	u := devicesPath
	if query != "" {
		u += "?" + query
	}
	var count *int64
	for _, body := range walk(t, e, u) {
		pg := decodePage(t, body)
		if count == nil {
			count = pg.Count
		} else if pg.Count == nil || *pg.Count != *count {
			t.Fatalf("%q: @odata.count changed from %d to %v", query, *count, pg.Count)
		}
		for _, v := range pg.Value {
			var d struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(v, &d); err != nil {
				t.Fatal(err)
			}
			if raw[d.ID] != nil {
				t.Fatalf("%q: device %s listed twice", query, d.ID)
			}
			raw[d.ID] = v
			ids = append(ids, d.ID)
		}
	}
	if count == nil || *count != int64(len(ids)) {
		t.Fatalf("%q: @odata.count %v, %d devices listed", query, count, len(ids))
	}
	return ids, raw
}

// idsOf maps indexes to ids, keeping only those for which keep is true.
func idsOf(s *Server, indexes []int, keep func(int) bool) []string {
	var out []string
	for _, i := range indexes {
		if keep == nil || keep(i) {
			out = append(out, s.DeviceID(i))
		}
	}
	return out
}

func fields(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestChange(t *testing.T) {
	e := newEnv(t, Config{Devices: 60, PageSize: 7, Seed: 4})
	_, before := listing(t, e, "")
	changed := []int{0, 3, 17, 59}
	e.sim.Change(changed...)
	_, after := listing(t, e, "")
	for i := 0; i < 60; i++ {
		id := e.sim.DeviceID(i)
		if !bytes.Equal(after[id], e.sim.Device(i)) {
			t.Fatalf("device %d: listing and Device differ", i)
		}
		if !slices.Contains(changed, i) {
			if !bytes.Equal(before[id], after[id]) {
				t.Errorf("device %d changed without Change", i)
			}
			continue
		}
		old, cur := fields(t, before[id]), fields(t, after[id])
		for _, k := range []string{"complianceState", "osVersion", "freeStorageSpaceInBytes", "lastSyncDateTime", "deviceName"} {
			if bytes.Equal(old[k], cur[k]) {
				t.Errorf("device %d: %s still %s", i, k, cur[k])
			}
		}
		for _, k := range []string{"id", "serialNumber", "operatingSystem", "enrolledDateTime", "totalStorageSpaceInBytes"} {
			if !bytes.Equal(old[k], cur[k]) {
				t.Errorf("device %d: %s changed from %s to %s", i, k, old[k], cur[k])
			}
		}
		if string(cur["lastSyncDateTime"]) <= string(old["lastSyncDateTime"]) {
			t.Errorf("device %d: lastSyncDateTime went from %s to %s", i, old["lastSyncDateTime"], cur["lastSyncDateTime"])
		}
	}

	// A second change gives a third version; each is deterministic.
	v2 := e.sim.Device(3)
	e.sim.Change(3)
	v3 := e.sim.Device(3)
	if bytes.Equal(v3, v2) || bytes.Equal(v3, before[e.sim.DeviceID(3)]) {
		t.Error("a second change does not give a third version")
	}
	twin := New(Config{Devices: 60, Seed: 4})
	twin.Change(3)
	twin.Change(3)
	if !bytes.Equal(twin.Device(3), v3) {
		t.Error("revisions are not deterministic")
	}
	// Out of range: ignored.
	e.sim.Change(-1, 60, 1000)
	if e.sim.Count() != 60 {
		t.Errorf("count %d", e.sim.Count())
	}
}

func TestTouch(t *testing.T) {
	e := newEnv(t, Config{Devices: 20, PageSize: 6})
	_, before := listing(t, e, "")
	e.sim.Touch(5)
	e.sim.Change(6)
	e.sim.Touch(6)
	_, after := listing(t, e, "")
	for _, i := range []int{5, 6} {
		id := e.sim.DeviceID(i)
		old, cur := fields(t, before[id]), fields(t, after[id])
		if string(cur["lastSyncDateTime"]) <= string(old["lastSyncDateTime"]) {
			t.Errorf("device %d: lastSyncDateTime %s -> %s", i, old["lastSyncDateTime"], cur["lastSyncDateTime"])
		}
		if i == 5 {
			delete(old, "lastSyncDateTime")
			delete(cur, "lastSyncDateTime")
			o, _ := json.Marshal(old)
			c, _ := json.Marshal(cur)
			if !bytes.Equal(o, c) {
				t.Errorf("Touch changed more than lastSyncDateTime:\n%s\n%s", o, c)
			}
		}
	}
	// Touching a changed device moves only its check-in too.
	changed := fields(t, e.sim.Device(6))
	e.sim.Touch(6)
	touched := fields(t, e.sim.Device(6))
	if bytes.Equal(changed["lastSyncDateTime"], touched["lastSyncDateTime"]) {
		t.Error("lastSyncDateTime did not move")
	}
	delete(changed, "lastSyncDateTime")
	delete(touched, "lastSyncDateTime")
	c, _ := json.Marshal(changed)
	tc, _ := json.Marshal(touched)
	if !bytes.Equal(c, tc) {
		t.Errorf("Touch of a changed device changed more than lastSyncDateTime:\n%s\n%s", c, tc)
	}
}

func TestRemoveAndAdd(t *testing.T) {
	const n = 3*osBlock + 17 // the OS index has whole blocks and a partial one
	e := newEnv(t, Config{Devices: n, Seed: 8, PageSize: 1000})
	removed := []int{0, 1, 2, 999, 1000, 1001, osBlock - 1, osBlock, 2*osBlock + 3, n - 1}
	for i := 5000; i < 5300; i++ {
		removed = append(removed, i) // a run longer than a page of $top=250
	}
	e.sim.Remove(removed...)
	e.sim.Remove(1, -3, n+5) // again, and out of range: ignored
	first := e.sim.Add(25)
	if first != n {
		t.Fatalf("Add returned %d, want %d", first, n)
	}
	e.sim.Remove(n + 3)
	removed = append(removed, n+3)

	var all []int
	for i := 0; i < n+25; i++ {
		if !slices.Contains(removed, i) {
			all = append(all, i)
		}
	}
	if got := e.sim.Listed(); !slices.Equal(got, all) {
		t.Fatalf("Listed: %d indexes, want %d", len(got), len(all))
	}
	if e.sim.Count() != len(all) {
		t.Fatalf("Count %d, want %d", e.sim.Count(), len(all))
	}
	// Most listings select only the id: paging is the same, and decoding
	// full devices would dominate the test's time.
	for _, q := range []string{"$select=id", "$select=id&$top=7", "$select=id&$top=250", "$select=id&$top=999999", "$select=id,deviceName&$top=333"} {
		ids, _ := listing(t, e, q)
		if want := idsOf(e.sim, all, nil); !slices.Equal(ids, want) {
			t.Errorf("%q: %d devices, want %d", q, len(ids), len(want))
		}
	}
	for _, os := range osNames {
		for _, top := range []string{"", "&$top=9", "&$top=100"} {
			q := "$select=id&$filter=" + url.QueryEscape("operatingSystem eq '"+os+"'") + top
			ids, _ := listing(t, e, q)
			want := idsOf(e.sim, all, func(i int) bool { return e.sim.OperatingSystem(i) == os })
			if !slices.Equal(ids, want) {
				t.Errorf("%q: %d devices, want %d", q, len(ids), len(want))
			}
		}
	}

	// The added devices are ordinary devices.
	_, body := e.get(t, devicesPath+"?$skiptoken="+string(appendSkipToken(nil, "x", []byte(e.sim.DeviceID(n-2)))), e.token)
	pg := decodePage(t, body)
	if len(pg.Value) != 24 || *pg.Count != int64(len(all)) || pg.NextLink != "" {
		t.Fatalf("tail page: %d devices, count %d, nextLink %q", len(pg.Value), *pg.Count, pg.NextLink)
	}
	for k, i := range all[len(all)-24:] {
		if !bytes.Equal(pg.Value[k], e.sim.Device(i)) {
			t.Errorf("added device %d", i)
		}
	}
	twin := New(Config{Devices: n + 25, Seed: 8})
	if !bytes.Equal(twin.Device(n+1), e.sim.Device(n+1)) {
		t.Error("an added device differs from the same index in a larger tenant")
	}
}

func TestRemoveEverything(t *testing.T) {
	e := newEnv(t, Config{Devices: 12, PageSize: 5})
	all := make([]int, 12)
	for i := range all {
		all[i] = i
	}
	e.sim.Remove(all...)
	pages := walk(t, e, devicesPath)
	want := `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices","@odata.count":0,"value":[]}`
	if len(pages) != 1 || string(pages[0]) != want {
		t.Errorf("pages %q", pages)
	}
	first := e.sim.Add(2)
	if ids, _ := listing(t, e, ""); !slices.Equal(ids, idsOf(e.sim, []int{first, first + 1}, nil)) {
		t.Errorf("after Add: %v", ids)
	}
}

// A listing that started before a removal continues from its skip token,
// which names a position rather than a device that must still exist.
func TestRemoveDuringListing(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, PageSize: 10})
	_, body := e.get(t, devicesPath, e.token)
	next := decodePage(t, body).NextLink
	e.sim.Remove(9, 12) // the last device of page 1, and one of page 2
	resp, body := e.get(t, next, e.token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	pg := decodePage(t, body)
	want := idsOf(e.sim, []int{10, 11, 13, 14, 15, 16, 17, 18, 19, 20}, nil)
	var got []string
	for _, v := range pg.Value {
		got = append(got, string(fields(t, v)["id"][1:37]))
	}
	if !slices.Equal(got, want) || *pg.Count != 28 {
		t.Errorf("page 2 after removals: %v (count %d)", got, *pg.Count)
	}
}

// Mutations while pages are served: no race, no crash, valid pages.
func TestMutationsWhileServing(t *testing.T) {
	e := newEnv(t, Config{Devices: 2000, PageSize: 100})
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for k := 0; ; k++ {
			select {
			case <-stop:
				return
			default:
			}
			e.sim.Change(k % 2000)
			e.sim.Touch((k * 7) % 2000)
			e.sim.Remove((k * 13) % 2000)
			if k%50 == 0 {
				e.sim.Add(3)
			}
			e.sim.SetFaults(nil)
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := ""
			if g%2 == 1 {
				q = "?$filter=" + url.QueryEscape("operatingSystem eq 'Windows'") + "&$top=37"
			}
			next := e.ts.URL + devicesPath + q
			for next != "" {
				resp, body, err := fetch(t, e, next, e.token)
				if err != nil || resp.StatusCode != http.StatusOK || !json.Valid(body) {
					t.Errorf("status %d, %v", resp.StatusCode, err)
					return
				}
				next = decodePage(t, body).NextLink
			}
		}()
	}
	for range 20 {
		e.sim.Listed()
		e.sim.Requests()
	}
	wg.Wait()
	close(stop)
	<-stopped
}

func TestAdminMutate(t *testing.T) {
	e := newEnv(t, Config{Devices: 10, PageSize: 4})
	before := e.sim.Device(1)
	post := func(path, body string) (*http.Response, []byte) {
		req, _ := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(body))
		return do(t, req)
	}
	resp, body := post("/_graphsim/mutate", `{"change":[1],"touch":[2],"remove":[3,4],"add":5}`)
	if resp.StatusCode != http.StatusOK || string(body) != `{"count":13,"first_added":10}` {
		t.Fatalf("mutate: %d %s", resp.StatusCode, body)
	}
	if bytes.Equal(before, e.sim.Device(1)) {
		t.Error("device 1 unchanged")
	}
	ids, _ := listing(t, e, "")
	if want := idsOf(e.sim, []int{0, 1, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}, nil); !slices.Equal(ids, want) {
		t.Errorf("listing %v", ids)
	}
	resp, body = post("/_graphsim/mutate", `{}`)
	if resp.StatusCode != http.StatusOK || string(body) != `{"count":13,"first_added":15}` {
		t.Errorf("empty mutation: %d %s", resp.StatusCode, body)
	}

	resp, body = post("/_graphsim/faults", `[{"page":1,"attempt":1,"kind":"503","retry_after":"2"},{"kind":"slow","delay":"1ms"}]`)
	if resp.StatusCode != http.StatusOK || string(body) != `{"faults":2}` {
		t.Fatalf("faults: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.get(t, devicesPath, e.token); resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("scripted 503: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp, _ := e.get(t, devicesPath, e.token); resp.StatusCode != 200 {
		t.Errorf("second attempt: %d", resp.StatusCode)
	}

	for _, tc := range []struct {
		method, path, body string
		status             int
		msg                string
	}{
		{"POST", "/_graphsim/mutate", `{"change":[99]}`, 400, "change: no device 99"},
		{"POST", "/_graphsim/mutate", `{"remove":[-1]}`, 400, "remove: no device -1"},
		{"POST", "/_graphsim/mutate", `{"add":-2}`, 400, "add: -2 is negative"},
		{"POST", "/_graphsim/mutate", `{"delete":[1]}`, 400, `unknown field "delete"`},
		{"POST", "/_graphsim/mutate", `{"change":`, 400, "mutate:"},
		{"POST", "/_graphsim/faults", `[{"kind":"teapot"}]`, 400, `unknown fault kind "teapot"`},
		{"POST", "/_graphsim/faults", `[{"kind":"slow","delay":5}]`, 400, "faults:"},
		{"GET", "/_graphsim/mutate", "", 405, "takes POST"},
		{"POST", "/_graphsim/stats", "", 405, "takes GET"},
		{"POST", "/_graphsim/nothing", "{}", 404, "unknown admin endpoint"},
	} {
		req, _ := http.NewRequest(tc.method, e.ts.URL+tc.path, strings.NewReader(tc.body))
		resp, body := do(t, req)
		var msg struct{ Error string }
		if resp.StatusCode != tc.status || json.Unmarshal(body, &msg) != nil || !strings.Contains(msg.Error, tc.msg) {
			t.Errorf("%s %s %s: %d %s", tc.method, tc.path, tc.body, resp.StatusCode, body)
		}
	}
	if e.sim.Count() != 13 {
		t.Errorf("a refused mutation changed the tenant: count %d", e.sim.Count())
	}
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/_graphsim/stats", nil)
	resp, body = do(t, req)
	var stats Stats
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &stats) != nil || stats != e.sim.Stats() || stats.PageRequests < 3 {
		t.Errorf("stats: %d %s, want %+v", resp.StatusCode, body, e.sim.Stats())
	}
	// Admin requests are not logged.
	for _, rec := range e.sim.Requests() {
		if !rec.Token && rec.Page == 0 {
			t.Errorf("admin request logged: %+v", rec)
		}
	}
}
