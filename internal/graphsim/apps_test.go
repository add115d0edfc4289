package graphsim

import (
	"encoding/json"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

const appsPath = "/v1.0/deviceManagement/detectedApps"

// appsEnv is a small tenant with apps: 300 devices, 3000 apps, 60 apps on
// a Windows device on average.
func appsEnv(t *testing.T, mod func(*Config), setup ...func(*Server)) *env {
	cfg := Config{Devices: 300, DetectedApps: 3000, AppsPerDevice: 60, Seed: 7}
	if mod != nil {
		mod(&cfg)
	}
	return newEnv(t, cfg, setup...)
}

// collect walks a collection from first and returns its items and the
// number of requests, failing on a changing or wrong @odata.count.
func collect(t *testing.T, e *env, first string) ([]json.RawMessage, int) {
	t.Helper()
	var items []json.RawMessage
	var count *int64
	pages := walk(t, e, first)
	for _, body := range pages {
		pg := decodePage(t, body)
		if pg.Count == nil || count != nil && *pg.Count != *count {
			t.Fatalf("%s: @odata.count %v then %v", first, count, pg.Count)
		}
		count = pg.Count
		items = append(items, pg.Value...)
	}
	if int64(len(items)) != *count {
		t.Fatalf("%s: @odata.count %d, %d items", first, *count, len(items))
	}
	return items, len(pages)
}

type appJSON struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	Version     string `json:"version"`
	SizeInByte  int64  `json:"sizeInByte"`
	DeviceCount int    `json:"deviceCount"`
	Publisher   string `json:"publisher"`
	Platform    string `json:"platform"`
}

func decodeApp(t *testing.T, raw json.RawMessage) DetectedApp {
	t.Helper()
	var a appJSON
	if err := decodeStrict(raw, &a); err != nil {
		t.Fatalf("app %s: %v", raw, err)
	}
	return DetectedApp{ID: a.ID, DisplayName: a.DisplayName, Version: a.Version, Publisher: a.Publisher,
		Platform: a.Platform, SizeInByte: a.SizeInByte, DeviceCount: a.DeviceCount}
}

func TestAppSpread(t *testing.T) {
	s := New(Config{Devices: 300, DetectedApps: 3000, AppsPerDevice: 60, Seed: 7})
	apps := s.DetectedApps()
	if len(apps) != 3000 {
		t.Fatalf("%d apps", len(apps))
	}
	windows := 0
	for i := 0; i < 300; i++ {
		if s.OperatingSystem(i) == "Windows" {
			windows++
		}
	}
	ids := map[string]bool{}
	keys := map[string]bool{}
	versions := map[string]int{}
	everywhere, single, winApps, pairs, big := 0, 0, 0, 0, 0
	for _, a := range apps {
		if a.DeviceCount < 1 || len(a.ID) != 64 || ids[a.ID] {
			t.Fatalf("app %+v", a)
		}
		ids[a.ID] = true
		key := a.DisplayName + "\x00" + a.Version + "\x00" + a.Platform
		if keys[key] {
			t.Fatalf("(name, version) twice: %+v", a)
		}
		keys[key] = true
		versions[a.DisplayName+"\x00"+a.Platform]++
		pairs += a.DeviceCount
		if a.SizeInByte > math.MaxInt32 {
			big++
		}
		if a.Platform != "windows" {
			continue
		}
		winApps++
		pairs := a.DeviceCount
		if pairs*10 > windows*9 {
			everywhere++
		}
		if pairs == 1 {
			single++
		}
	}
	if everywhere < 3 || everywhere > 15 {
		t.Errorf("%d apps on more than 90%% of the %d Windows devices, want a handful", everywhere, windows)
	}
	if single*3 < winApps {
		t.Errorf("%d of %d Windows apps on one device, want a long tail", single, winApps)
	}
	if big == 0 {
		t.Error("no app above 2^31 bytes")
	}
	multi := 0
	for _, n := range versions {
		if n >= 3 {
			multi++
		}
	}
	if multi < 3 {
		t.Errorf("%d titles with 3 versions or more", multi)
	}
	got := s.DeviceAppPairs()
	if len(got) != pairs {
		t.Errorf("%d pairs, device counts sum to %d", len(got), pairs)
	}
	held := 0
	for _, p := range got {
		i, ok := s.indexFromID(p.DeviceID)
		if !ok {
			t.Fatalf("pair %+v", p)
		}
		if s.OperatingSystem(i) == "Windows" {
			held++
		}
	}
	if mean := float64(held) / float64(windows); math.Abs(mean-60) > 3 {
		t.Errorf("%.1f apps per Windows device, want 60", mean)
	}

	again := New(Config{Devices: 300, DetectedApps: 3000, AppsPerDevice: 60, Seed: 7}).DetectedApps()
	if !slices.Equal(again, apps) {
		t.Error("same seed, other apps")
	}
	if other := New(Config{Devices: 300, DetectedApps: 3000, AppsPerDevice: 60, Seed: 8}).DetectedApps(); slices.Equal(other, apps) {
		t.Error("other seed, same apps")
	}
}

// Both shapes of tenant hold exactly the apps asked for, each on a device.
func TestAppShapes(t *testing.T) {
	for _, cfg := range []Config{
		{Devices: 200, DetectedApps: 20000, Seed: 1},
		{Devices: 20000, DetectedApps: 300, Seed: 1},
		{Devices: 3, DetectedApps: 50, Seed: 1},
		{Devices: 0, DetectedApps: 50, Seed: 1},
	} {
		s := New(cfg)
		apps := s.DetectedApps()
		want := cfg.DetectedApps
		if cfg.Devices == 0 {
			want = 0
		}
		if len(apps) != want {
			t.Errorf("%d devices: %d apps, want %d", cfg.Devices, len(apps), want)
		}
		ix := s.appIndex()
		for a := range apps {
			if apps[a].DeviceCount < 1 || apps[a].DeviceCount != len(ix.devicesOf(a)) {
				t.Fatalf("%d devices: app %d %+v holds %d", cfg.Devices, a, apps[a], len(ix.devicesOf(a)))
			}
		}
		if len(ix.devApp) != len(ix.appDev) {
			t.Errorf("%d devices: %d device->app, %d app->device", cfg.Devices, len(ix.devApp), len(ix.appDev))
		}
	}
}

func TestAppIDRoundTrip(t *testing.T) {
	for _, x := range []uint64{0, 1, 42, math.MaxUint64, 0x9e3779b97f4a7c15} {
		if got := unsplitmix64(splitmix64(x)); got != x {
			t.Errorf("unsplitmix64(splitmix64(%x)) = %x", x, got)
		}
	}
	for _, seed := range []int64{0, 1, -5} {
		for _, a := range []int{0, 1, 999, 123456} {
			id := string(appendAppID(nil, seed, a))
			if got, ok := appIndexFromID(seed, strings.ToUpper(id), a+1); !ok || got != a {
				t.Errorf("seed %d app %d: %s -> %d %v", seed, a, id, got, ok)
			}
			if _, ok := appIndexFromID(seed, id, a); ok {
				t.Errorf("seed %d app %d: accepted beyond the catalogue", seed, a)
			}
			if _, ok := appIndexFromID(seed+1, id, a+1); ok {
				t.Errorf("seed %d app %d: accepted by another seed", seed, a)
			}
		}
	}
}

// pairSet keys pairs for comparison.
func pairSet(pairs []AppPair) map[AppPair]bool {
	m := make(map[AppPair]bool, len(pairs))
	for _, p := range pairs {
		m[p] = true
	}
	return m
}

type deviceRef struct {
	ID         string `json:"id"`
	DeviceName string `json:"deviceName"`
}

// walkByApp reads every pair app by app, checking each app's deviceCount
// against its devices, and returns the pairs and the requests made.
func walkByApp(t *testing.T, e *env, version string, top int) ([]AppPair, int) {
	t.Helper()
	q := ""
	if top > 0 {
		q = "$top=" + strconv.Itoa(top) + "&"
	}
	items, requests := collect(t, e, "/"+version+"/deviceManagement/detectedApps?"+q)
	var pairs []AppPair
	for _, raw := range items {
		a := decodeApp(t, raw)
		devs, n := collect(t, e, "/"+version+"/deviceManagement/detectedApps/"+a.ID+"/managedDevices?"+q+"$select=id,deviceName")
		requests += n
		if len(devs) != a.DeviceCount {
			t.Fatalf("app %s: deviceCount %d, %d devices", a.ID, a.DeviceCount, len(devs))
		}
		for _, raw := range devs {
			var d deviceRef
			if err := decodeStrict(raw, &d); err != nil {
				t.Fatalf("device %s: %v", raw, err)
			}
			pairs = append(pairs, AppPair{DeviceID: d.ID, DeviceName: d.DeviceName, AppID: a.ID})
		}
	}
	return pairs, requests
}

// walkByDevice reads every pair device by device (beta).
func walkByDevice(t *testing.T, e *env, top int) ([]AppPair, int) {
	t.Helper()
	q := ""
	if top > 0 {
		q = "$top=" + strconv.Itoa(top) + "&"
	}
	items, requests := collect(t, e, "/beta/deviceManagement/managedDevices?"+q+"$select=id,deviceName")
	var pairs []AppPair
	for _, raw := range items {
		var d deviceRef
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		apps, n := collect(t, e, "/beta/deviceManagement/managedDevices/"+d.ID+"/detectedApps?"+q)
		requests += n
		for _, raw := range apps {
			pairs = append(pairs, AppPair{DeviceID: d.ID, DeviceName: d.DeviceName, AppID: decodeApp(t, raw).ID})
		}
	}
	return pairs, requests
}

func TestAppWalksFindEveryPair(t *testing.T) {
	e := appsEnv(t, func(c *Config) { c.Devices, c.DetectedApps, c.AppsPerDevice = 40, 250, 30 })
	want := e.sim.DeviceAppPairs()
	if len(want) < 500 {
		t.Fatalf("only %d pairs", len(want))
	}
	counts := e.sim.PageCounts(7)
	for _, version := range []string{"v1.0", "beta"} {
		got, requests := walkByApp(t, e, version, 7)
		if len(got) != len(want) || !maps.Equal(pairSet(got), pairSet(want)) {
			t.Errorf("%s by app: %d pairs, want %d", version, len(got), len(want))
		}
		if requests != counts.DetectedApps+counts.AppDevices {
			t.Errorf("%s by app: %d requests, PageCounts %+v", version, requests, counts)
		}
	}
	got, requests := walkByDevice(t, e, 7)
	if !slices.Equal(got, want) {
		t.Errorf("by device: %d pairs, want %d in DeviceAppPairs' order", len(got), len(want))
	}
	if requests != counts.ManagedDevices+counts.DeviceApps {
		t.Errorf("by device: %d requests, PageCounts %+v", requests, counts)
	}
	// The default page size pages too.
	e2 := appsEnv(t, func(c *Config) { c.Devices, c.DetectedApps, c.AppsPerDevice, c.AppPageSize = 40, 250, 30, 20 })
	if _, n := collect(t, e2, appsPath); n != 13 {
		t.Errorf("250 apps in pages of 20: %d pages", n)
	}
}

func TestAppDevicesAreTheCollectionsDevices(t *testing.T) {
	e := appsEnv(t, func(c *Config) { c.Devices, c.DetectedApps = 30, 100 })
	a := e.sim.DetectedApps()[0]
	items, _ := collect(t, e, appsPath+"/"+a.ID+"/managedDevices")
	_, raw := listing(t, e, "")
	for _, it := range items {
		var d deviceRef
		if err := json.Unmarshal(it, &d); err != nil {
			t.Fatal(err)
		}
		if string(raw[d.ID]) != string(it) {
			t.Errorf("device %s differs from the managedDevices collection's", d.ID)
		}
	}
}

func TestAppSelectAndContext(t *testing.T) {
	e := appsEnv(t, nil)
	a := e.sim.DetectedApps()[5]
	_, body := e.get(t, appsPath+"/"+a.ID+"/managedDevices?$select=deviceName,id&$top=2", e.token)
	pg := decodePage(t, body)
	if want := "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/detectedApps('" + a.ID + "')/managedDevices(id,deviceName)"; pg.Context != want {
		t.Errorf("context %s", pg.Context)
	}
	for _, v := range pg.Value {
		if keys := topLevelKeys(t, v); !slices.Equal(keys, []string{"id", "deviceName"}) {
			t.Errorf("selected %v", keys)
		}
	}
	_, body = e.get(t, appsPath+"?$select=version,displayName&$top=3", e.token)
	pg = decodePage(t, body)
	if pg.Context != "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/detectedApps(displayName,version)" || len(pg.Value) != 3 {
		t.Errorf("context %s, %d apps", pg.Context, len(pg.Value))
	}
	for _, v := range pg.Value {
		if keys := topLevelKeys(t, v); !slices.Equal(keys, []string{"displayName", "version"}) {
			t.Errorf("selected %v", keys)
		}
	}
	_, body = e.get(t, appsPath+"?$top=1", e.token)
	if keys := topLevelKeys(t, decodePage(t, body).Value[0]); !slices.Equal(keys, detectedAppProps) {
		t.Errorf("app properties %v", keys)
	}
	// $expand=managedDevices is accepted on the list and expands nothing.
	_, body = e.get(t, appsPath+"?$top=2&$expand=managedDevices", e.token)
	pg = decodePage(t, body)
	if len(pg.Value) != 2 || strings.Contains(string(body), `"managedDevices":`) || !strings.Contains(pg.NextLink, "$expand=managedDevices") {
		t.Errorf("expand: %s", body)
	}
	// One app.
	resp, body := e.get(t, "/beta/deviceManagement/detectedApps('"+a.ID+"')", e.token)
	var one map[string]any
	if resp.StatusCode != 200 || json.Unmarshal(body, &one) != nil || one["id"] != a.ID || one["@odata.context"] != "https://graph.microsoft.com/beta/$metadata#deviceManagement/detectedApps/$entity" {
		t.Errorf("one app: %d %s", resp.StatusCode, body)
	}

	for q, msg := range map[string]string{
		appsPath + "?$select=id,nope":                            "Could not find a property named 'nope' on type 'microsoft.graph.detectedApp'.",
		appsPath + "/" + a.ID + "/managedDevices?$select=nope":   "Could not find a property named 'nope' on type 'microsoft.graph.managedDevice'.",
		appsPath + "?$expand=users":                              "Could not find a property named 'users' on type 'microsoft.graph.detectedApp'.",
		appsPath + "/" + a.ID + "/managedDevices?$expand=users":  "Unrecognized query argument specified: '$expand'.",
		appsPath + "?$filter=platform%20eq%20'windows'":          "Invalid filter clause",
		appsPath + "?$top=0":                                     "Invalid value '0' for $top query option found. The $top query option requires a positive integer value.",
		appsPath + "?$skiptoken=LastDetectedAppId%3d'nope'":      "The skip token 'LastDetectedAppId='nope'' is not valid.",
		appsPath + "/" + a.ID + "/managedDevices?$skiptoken=abc": "The skip token 'abc' is not valid.",
	} {
		resp, body := e.get(t, q, e.token)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
			continue
		}
		if ge := decodeGraphError(t, resp, body); ge.Error.Code != "BadRequest" || ge.Error.Message != msg {
			t.Errorf("%s: %+v", q, ge.Error)
		}
	}
}

func TestAppNotFound(t *testing.T) {
	e := appsEnv(t, nil)
	a := e.sim.DetectedApps()[0]
	dev := e.sim.DeviceAppPairs()[0].DeviceID
	unknownApp := e.sim.AppID(1_000_000)
	unknownDevice := e.sim.DeviceID(100_000)
	for path, key := range map[string]string{
		appsPath + "/" + unknownApp + "/managedDevices":                               unknownApp,
		appsPath + "/" + unknownApp:                                                   unknownApp,
		appsPath + "/nope/managedDevices":                                             "nope",
		"/beta/deviceManagement/managedDevices/" + unknownDevice + "/detectedApps":    unknownDevice,
		"/beta/deviceManagement/managedDevices('nope')/detectedApps":                  "nope",
		"/beta/deviceManagement/detectedApps/" + a.ID + "/managedDevices/" + dev:      dev,
		"/beta/deviceManagement/detectedApps/" + a.ID + "/users":                      "users",
		"/beta/deviceManagement/reports/exportJobs('AppInvRawData_nope')":             "AppInvRawData_nope",
		"/beta/deviceManagement/reports/exportJobs/AppInvRawData_nope":                "AppInvRawData_nope",
		"/beta/deviceManagement/reports/exportJobs/AppInvRawData_nope/x":              "x",
		"/beta/deviceManagement/reports/cachedReports":                                "cachedReports",
		"/beta/deviceManagement/managedDevices/" + dev + "/detectedApps/" + a.ID:      dev,
		"/v1.0/deviceManagement/managedDevices/" + dev + "/detectedApps/x/y":          dev,
		"/v1.0/deviceManagement/managedDevices('" + dev + "')/windowsProtectionState": dev,
	} {
		resp, body := e.get(t, path, e.token)
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
			continue
		}
		if ge := decodeGraphError(t, resp, body); ge.Error.Code != "ResourceNotFound" || ge.Error.Message != "Resource not found for the segment '"+key+"'." {
			t.Errorf("%s: %+v", path, ge.Error)
		}
	}
	// v1.0 has no detectedApps relationship on a device: Graph answers 400.
	for _, path := range []string{
		"/v1.0/deviceManagement/managedDevices/" + dev + "/detectedApps",
		"/v1.0/deviceManagement/managedDevices('" + dev + "')/detectedApps",
	} {
		resp, body := e.get(t, path, e.token)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
			continue
		}
		if ge := decodeGraphError(t, resp, body); ge.Error.Code != "BadRequest" || ge.Error.Message != "Resource not found for the segment 'detectedApps'." {
			t.Errorf("%s: %+v", path, ge.Error)
		}
	}
	// Both key forms work.
	for _, path := range []string{
		"/beta/deviceManagement/managedDevices('" + dev + "')/detectedApps",
		"/v1.0/deviceManagement/detectedApps('" + a.ID + "')/managedDevices",
	} {
		if resp, body := e.get(t, path, e.token); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	// Tokens and methods are checked as on managedDevices.
	if resp, _ := e.get(t, appsPath, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+appsPath, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if resp, _ := do(t, req); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
	f := appsEnv(t, func(c *Config) { c.Forbidden = true })
	if resp, body := f.get(t, appsPath, f.token); resp.StatusCode != http.StatusForbidden {
		t.Errorf("forbidden: %d %s", resp.StatusCode, body)
	}
}

func TestNoAppsByDefault(t *testing.T) {
	e := newEnv(t, Config{Devices: 5})
	pages := walk(t, e, appsPath)
	want := `{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#deviceManagement/detectedApps","@odata.count":0,"value":[]}`
	if len(pages) != 1 || string(pages[0]) != want {
		t.Errorf("got %s", pages)
	}
	if apps, pairs := e.sim.DetectedApps(), e.sim.DeviceAppPairs(); len(apps) != 0 || len(pairs) != 0 {
		t.Errorf("%d apps, %d pairs", len(apps), len(pairs))
	}
	items, _ := collect(t, e, "/beta/deviceManagement/managedDevices/"+e.sim.DeviceID(2)+"/detectedApps")
	if len(items) != 0 {
		t.Errorf("a device holds %d apps", len(items))
	}
	if p := e.sim.PageCounts(0); p != (PageCounts{ManagedDevices: 1, DetectedApps: 1, DeviceApps: 5}) {
		t.Errorf("page counts %+v", p)
	}
	e.sim.ChangeApps(1, 2)
	if len(e.sim.DeviceAppPairs()) != 0 {
		t.Error("ChangeApps gave apps in a tenant without")
	}
}

func TestAppMutations(t *testing.T) {
	e := appsEnv(t, func(c *Config) { c.Devices, c.DetectedApps, c.AppsPerDevice = 40, 300, 30 })
	s := e.sim
	before := s.DeviceAppPairs()
	byDevice := map[string][]string{}
	for _, p := range before {
		byDevice[p.DeviceID] = append(byDevice[p.DeviceID], p.AppID)
	}
	// A device holding an app no other holds.
	counts := map[string]int{}
	for _, a := range s.DetectedApps() {
		counts[a.ID] = a.DeviceCount
	}
	victim := -1
	var lonely string
	for i := 0; i < 40 && victim < 0; i++ {
		for _, a := range byDevice[s.DeviceID(i)] {
			if counts[a] == 1 {
				victim, lonely = i, a
				break
			}
		}
	}
	if victim < 0 {
		t.Fatal("no app on a single device")
	}
	changed := (victim + 1) % 40
	for len(byDevice[s.DeviceID(changed)]) < 3 {
		changed = (changed + 1) % 40
	}
	s.Remove(victim)
	s.ChangeApps(changed)
	first := s.Add(1)
	s.ChangeApps(first)

	after := s.DeviceAppPairs()
	afterByDevice := map[string][]string{}
	for _, p := range after {
		afterByDevice[p.DeviceID] = append(afterByDevice[p.DeviceID], p.AppID)
	}
	if afterByDevice[s.DeviceID(victim)] != nil {
		t.Error("a removed device still holds apps")
	}
	for _, a := range s.DetectedApps() {
		if a.ID == lonely {
			t.Errorf("app %s of the removed device only is still listed", lonely)
		}
	}
	old, cur := byDevice[s.DeviceID(changed)], afterByDevice[s.DeviceID(changed)]
	gone, added := 0, 0
	for _, a := range old {
		if !slices.Contains(cur, a) {
			gone++
		}
	}
	for _, a := range cur {
		if !slices.Contains(old, a) {
			added++
		}
	}
	if gone < 1 || added != 1 || len(cur) != len(old)-1 {
		t.Errorf("changed device: %d apps -> %d, %d gone, %d new", len(old), len(cur), gone, added)
	}
	if n := len(afterByDevice[s.DeviceID(first)]); n < 1 || n > 2 {
		t.Errorf("the added device holds %d apps", n)
	}
	for id, apps := range afterByDevice {
		if id != s.DeviceID(changed) && id != s.DeviceID(first) && !slices.Equal(apps, byDevice[id]) {
			t.Errorf("device %s changed too", id)
		}
	}
	// The collections agree with the ground truth, both ways.
	got, _ := walkByApp(t, e, "v1.0", 0)
	if !maps.Equal(pairSet(got), pairSet(after)) {
		t.Errorf("by app: %d pairs, want %d", len(got), len(after))
	}
	got, _ = walkByDevice(t, e, 0)
	if !slices.Equal(got, after) {
		t.Errorf("by device: %d pairs, want %d", len(got), len(after))
	}
	// Upgrading twice goes on from the first upgrade.
	s.ChangeApps(changed)
	if again := s.DeviceAppPairs(); len(again) != len(after)-1 {
		t.Errorf("second change: %d pairs, want %d", len(again), len(after)-1)
	}
	if resp, _ := e.get(t, "/beta/deviceManagement/managedDevices/"+s.DeviceID(victim)+"/detectedApps", e.token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a removed device's apps: %d", resp.StatusCode)
	}
}

// A listing that started before a removal goes on where it was: the skip
// tokens are keysets.
func TestAppListingAcrossMutation(t *testing.T) {
	e := appsEnv(t, func(c *Config) { c.Devices, c.DetectedApps = 30, 100 })
	_, body := e.get(t, appsPath+"?$top=10", e.token)
	pg := decodePage(t, body)
	last := decodeApp(t, pg.Value[9]).ID
	e.sim.Remove(0, 1, 2)
	_, body = e.get(t, pg.NextLink, e.token)
	next := decodeApp(t, decodePage(t, body).Value[0]).ID
	// The next page starts with the first app listed after the page's last,
	// whether or not that one is still listed.
	index := func(id string) int { a, _ := appIndexFromID(7, id, 1000); return a }
	for _, a := range e.sim.DetectedApps() {
		if index(a.ID) > index(last) {
			if a.ID != next {
				t.Errorf("the next page starts with %s, want %s", next, a.ID)
			}
			return
		}
	}
	t.Error("no app after the first page")
}

func TestChangeAppsOverHTTP(t *testing.T) {
	e := appsEnv(t, func(c *Config) { c.Devices, c.DetectedApps = 30, 100 })
	before := len(e.sim.DeviceAppPairs())
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/_graphsim/mutate", strings.NewReader(`{"change_apps":[3,4]}`))
	if resp, body := do(t, req); resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	if after := len(e.sim.DeviceAppPairs()); after != before-2 {
		t.Errorf("%d pairs, then %d", before, after)
	}
	req, _ = http.NewRequest(http.MethodPost, e.ts.URL+"/_graphsim/mutate", strings.NewReader(`{"change_apps":[30]}`))
	if resp, body := do(t, req); resp.StatusCode != 400 || !strings.Contains(string(body), "change_apps: no device 30") {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
}

func TestAppLatency(t *testing.T) {
	e := appsEnv(t, func(c *Config) { c.Devices, c.DetectedApps, c.Latency = 10, 20, 50*time.Millisecond })
	for _, path := range []string{appsPath, "/beta/deviceManagement/managedDevices/" + e.sim.DeviceID(0) + "/detectedApps"} {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		start := time.Now()
		if resp, _ := do(t, req); resp.StatusCode != 200 || time.Since(start) < 50*time.Millisecond {
			t.Errorf("%s: %d after %v", path, resp.StatusCode, time.Since(start))
		}
	}
}

// The selected devices' $select keeps the collection's property names.
func TestAppDevicesSelectMatchesCollection(t *testing.T) {
	e := appsEnv(t, func(c *Config) { c.Devices, c.DetectedApps = 20, 40 })
	a := e.sim.DetectedApps()[0]
	q := url.Values{"$select": {"id,serialNumber,operatingSystem"}}.Encode()
	items, _ := collect(t, e, "/v1.0/deviceManagement/detectedApps/"+a.ID+"/managedDevices?"+q)
	_, raw := listing(t, e, q)
	for _, it := range items {
		var d deviceRef
		_ = json.Unmarshal(it, &d)
		if string(raw[d.ID]) != string(it) {
			t.Errorf("%s: %s, collection %s", d.ID, it, raw[d.ID])
		}
	}
}
