package graphsim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// entityPrefix is what a single-device GET's answer starts with: its
// context, then the device's properties.
func entityPrefix(version, sel string) string {
	ctx := "https://graph.microsoft.com/" + version + "/$metadata#deviceManagement/managedDevices"
	if sel != "" {
		ctx += "(" + sel + ")"
	}
	return `{"@odata.context":"` + ctx + `/$entity",`
}

// devicePath is the path of device i in the version.
func devicePath(e *env, version string, i int) string {
	return "/" + version + "/deviceManagement/managedDevices/" + e.sim.DeviceID(i)
}

func TestGetWithoutSelectIsTheListedDevice(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, Seed: 7})
	for i := 0; i < 30; i++ {
		for _, c := range []struct {
			version string
			listed  []byte
		}{{"v1.0", e.sim.Device(i)}, {"beta", e.sim.BetaDevice(i)}} {
			path := devicePath(e, c.version, i)
			if i%2 == 1 {
				path = "/" + c.version + "/deviceManagement/managedDevices('" + e.sim.DeviceID(i) + "')"
			}
			for _, q := range []string{"", "?$select=*", "?$select="} {
				resp, body := e.get(t, path+q, e.token)
				want := entityPrefix(c.version, "") + string(c.listed[1:])
				if resp.StatusCode != http.StatusOK || string(body) != want {
					t.Fatalf("%s%s: %d\n%s\nwant\n%s", path, q, resp.StatusCode, body, want)
				}
				if ct := resp.Header.Get("Content-Type"); ct != graphContentType || resp.Header.Get("request-id") == "" {
					t.Fatalf("headers %v", resp.Header)
				}
			}
		}
	}
}

func TestGetWithSelectShowsOnlyTheSelectedWithRealValues(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, Seed: 7})
	for i := 0; i < 30; i++ {
		for _, beta := range []bool{false, true} {
			version, names := "v1.0", v1ListDefaults
			if beta {
				version, names = "beta", betaListDefaults
			}
			details := e.sim.DeviceDetails(i, beta)
			// Every list-default property: exactly DeviceDetails, with
			// the context naming them, and no id.
			resp, body := e.get(t, devicePath(e, version, i)+"?$select="+names, e.token)
			if want := entityPrefix(version, names) + string(details[1:]); resp.StatusCode != http.StatusOK || string(body) != want {
				t.Fatalf("%s device %d: %d\n%s\nwant\n%s", version, i, resp.StatusCode, body, want)
			}
			// Selected in any order and case, with listed properties:
			// resource order, real values for the list-default ones,
			// listed values for the others.
			resp, body = e.get(t, devicePath(e, version, i)+"?$select=Notes,deviceName,id,physicalMemoryInBytes,notes", e.token)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if keys := strings.Join(topLevelKeys(t, body), ","); keys != "@odata.context,id,deviceName,notes,physicalMemoryInBytes" {
				t.Fatalf("keys %s", keys)
			}
			got, listed, real := rawFields(t, body), rawFields(t, e.sim.Device(i)), rawFields(t, details)
			if !bytes.Equal(got["id"], listed["id"]) || !bytes.Equal(got["deviceName"], listed["deviceName"]) ||
				!bytes.Equal(got["notes"], real["notes"]) || !bytes.Equal(got["physicalMemoryInBytes"], real["physicalMemoryInBytes"]) {
				t.Fatalf("device %d: %s", i, body)
			}
			if !strings.HasPrefix(string(body), entityPrefix(version, "id,deviceName,notes,physicalMemoryInBytes")) {
				t.Fatalf("context of %s", body)
			}
		}
	}
	// $select of listed properties only: listed values, no details needed.
	_, body := e.get(t, devicePath(e, "beta", 4)+"?$select=chassisType", e.token)
	if want := entityPrefix("beta", "chassisType") + `"chassisType":` + string(rawFields(t, e.sim.BetaDevice(4))["chassisType"]) + "}"; string(body) != want {
		t.Errorf("got %s, want %s", body, want)
	}
}

func TestGetRefusesWhatGraphRefuses(t *testing.T) {
	e := newEnv(t, Config{Devices: 10, Seed: 1})
	dev := devicePath(e, "v1.0", 2)
	listResp, listBody := e.get(t, devicesPath+"?$select=hardwareInformation", e.token)
	listMsg := decodeGraphError(t, listResp, listBody).Error.Message
	for q, want := range map[string]string{
		"$select=hardwareInformation":          listMsg,
		"$select=id,roleScopeTagIds":           "Could not find a property named 'roleScopeTagIds' on type 'microsoft.graph.managedDevice'.",
		"$expand=detectedApps":                 "Unrecognized query argument specified: '$expand'.",
		"$top=1":                               notCollection,
		"$skiptoken=x":                         notCollection,
		"$filter=operatingSystem eq 'Windows'": notCollection,
		"$select=id&$select=notes":             "Query option '$select' was specified more than once, it must be specified at most once.",
	} {
		resp, body := e.get(t, dev+"?"+strings.ReplaceAll(q, " ", "%20"), e.token)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, resp.StatusCode, body)
			continue
		}
		if ge := decodeGraphError(t, resp, body); ge.Error.Code != "BadRequest" || ge.Error.Message != want {
			t.Errorf("%s: %+v", q, ge.Error)
		}
	}
	if !strings.Contains(listMsg, "hardwareInformation") {
		t.Errorf("the list's message %q", listMsg)
	}
	// beta has it.
	if resp, body := e.get(t, devicePath(e, "beta", 2)+"?$select=hardwareInformation", e.token); resp.StatusCode != http.StatusOK {
		t.Errorf("beta: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.get(t, dev, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
	if resp, body := e.post(t, "/v1.0/deviceManagement/managedDevices/"+e.sim.DeviceID(2), "{}", e.token); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d %s", resp.StatusCode, body)
	}

	forbidden := newEnv(t, Config{Devices: 10, Forbidden: true})
	resp, body := forbidden.get(t, devicePath(forbidden, "v1.0", 1)+"?$select=notes", forbidden.token)
	if ge := decodeGraphError(t, resp, body); resp.StatusCode != http.StatusForbidden || ge.Error.Code != "Forbidden" || !strings.Contains(ge.Error.Message, `"_version": 3`) {
		t.Errorf("Forbidden: %d %+v", resp.StatusCode, ge.Error)
	}
}

func TestGetAnswers404ForDevicesTheTenantDoesNotHold(t *testing.T) {
	e := newEnv(t, Config{Devices: 40, Seed: 1, GoneOnGet: []int{5}, GoneOnGetEvery: 10})
	e.sim.Remove(6)
	_, listed := listing(t, e, "")
	gone := []int{5, 9, 19, 29, 39}
	for _, i := range gone {
		if listed[e.sim.DeviceID(i)] == nil || !e.sim.GoneOnGet(i) {
			t.Fatalf("device %d: the list must still show a device that vanishes on GET", i)
		}
	}
	if e.sim.GoneOnGet(4) || e.sim.GoneOnGet(10) {
		t.Error("GoneOnGet names devices it should not")
	}
	keys := []string{e.sim.DeviceID(6), e.sim.DeviceID(40), "00000000-0000-0000-0000-000000000000", "nope", `a"b`}
	for _, i := range gone {
		keys = append(keys, e.sim.DeviceID(i))
	}
	e.sim.ResetRequests()
	for _, key := range keys {
		for _, q := range []string{"", "?$select=notes"} {
			resp, body := e.get(t, "/beta/deviceManagement/managedDevices/"+url.PathEscape(key)+q, e.token)
			if resp.StatusCode != http.StatusNotFound {
				t.Fatalf("%s: %d %s", key, resp.StatusCode, body)
			}
			ge := decodeGraphError(t, resp, body)
			var inner map[string]any
			if ge.Error.Code != "ResourceNotFound" || json.Unmarshal([]byte(ge.Error.Message), &inner) != nil || inner["Message"] == nil {
				t.Fatalf("%s: %+v", key, ge.Error)
			}
		}
	}
	for _, rec := range settledRequests(t, e, 2*len(keys)) {
		if rec.Kind != KindManagedDevice || rec.Status != http.StatusNotFound {
			t.Fatalf("record %+v", rec)
		}
	}
	if st := e.sim.Stats(); st.DeviceGets != 0 || st.DetailGets != 0 || len(e.sim.DetailFetches()) != 0 {
		t.Errorf("404s counted: %+v", st)
	}
}

func TestGetLatencyLogAndCounts(t *testing.T) {
	e := newEnv(t, Config{Devices: 10, Seed: 1, Latency: 50 * time.Millisecond})
	e.sim.ResetRequests()
	start := time.Now()
	e.get(t, devicePath(e, "v1.0", 1), e.token)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("answered in %v, under the latency", d)
	}
	e.get(t, devicePath(e, "v1.0", 1)+"?$select=id,deviceName", e.token)
	e.get(t, devicePath(e, "beta", 2)+"?$select=hardwareInformation", e.token)
	e.get(t, devicePath(e, "v1.0", 2)+"?$select=notes,udid", e.token)
	for _, rec := range settledRequests(t, e, 4) {
		if rec.Kind != KindManagedDevice || rec.Status != http.StatusOK || rec.Page != 0 {
			t.Errorf("record %+v", rec)
		}
	}
	st := e.sim.Stats()
	if st.DeviceGets != 4 || st.DetailGets != 2 || st.PageRequests != 0 {
		t.Errorf("stats %+v", st)
	}
	if got := e.sim.DetailFetches(); len(got) != 1 || got[e.sim.DeviceID(2)] != 2 {
		t.Errorf("DetailFetches %v", got)
	}
}

func TestStallDetails(t *testing.T) {
	e := newEnv(t, Config{Devices: 10, Seed: 1, StallDetailsAfter: 2})
	sel := "?$select=notes"
	for i := 0; i < 2; i++ {
		if resp, _ := e.get(t, devicePath(e, "v1.0", i)+sel, e.token); resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %d: %d", i, resp.StatusCode)
		}
	}
	// A 404 neither counts nor hangs.
	if resp, _ := e.get(t, "/v1.0/deviceManagement/managedDevices/nope", e.token); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("404: %d", resp.StatusCode)
	}
	// The third hangs until its client gives up...
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+devicePath(e, "v1.0", 2)+sel, nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("a stalled GET was answered %d", resp.StatusCode)
	}
	waitFor(t, func() bool { return e.sim.StalledGets() == 0 })
	// ... or until the stall is cleared.
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, e.ts.URL+devicePath(e, "v1.0", 3)+sel, nil)
		req.Header.Set("Authorization", "Bearer "+e.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	// Once it hangs, clear.
	waitFor(t, func() bool { return e.sim.StalledGets() == 1 })
	select {
	case code := <-done:
		t.Fatalf("answered %d while stalled", code)
	case <-time.After(50 * time.Millisecond):
	}
	for body, status := range map[string]int{`{}`: 400, `{"stall_after":-1}`: 400, `{"stall":1}`: 400} {
		if resp, b := e.post(t, "/_graphsim/details", body, ""); resp.StatusCode != status {
			t.Errorf("%s: %d %s", body, resp.StatusCode, b)
		}
	}
	if resp, body := e.post(t, "/_graphsim/details", `{"stall_after":0}`, ""); resp.StatusCode != http.StatusOK || string(body) != `{"stall_after":0}` {
		t.Fatalf("clear: %d %s", resp.StatusCode, body)
	}
	select {
	case code := <-done:
		if code != http.StatusOK {
			t.Errorf("after the stall: %d", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still stalled after it was cleared")
	}
	got := e.sim.DetailFetches()
	if len(got) != 3 || got[e.sim.DeviceID(2)] != 0 || got[e.sim.DeviceID(3)] != 1 {
		t.Errorf("DetailFetches %v", got)
	}
	// Setting it again counts from then on.
	e.sim.SetStallDetailsAfter(1)
	if resp, _ := e.get(t, devicePath(e, "v1.0", 4), e.token); resp.StatusCode != http.StatusOK {
		t.Errorf("first after setting: %d", resp.StatusCode)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	req, _ = http.NewRequestWithContext(ctx2, http.MethodGet, e.ts.URL+devicePath(e, "v1.0", 5), nil)
	req.Header.Set("Authorization", "Bearer "+e.token)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("second after setting was answered %d", resp.StatusCode)
	}
	e.sim.SetStallDetailsAfter(0)
}

func TestDeviceFaultsAnswerSomeDevicesGETsAsGraphFailsThem(t *testing.T) {
	e := newEnv(t, Config{Devices: 20, Seed: 3})
	if err := e.sim.SetDeviceFault(FaultSlow, 1); err == nil {
		t.Error("a fault that is not a status was accepted")
	}
	if err := e.sim.SetDeviceFault(Fault403, 3, 4); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetDeviceFault(Fault503, 5); err != nil {
		t.Fatal(err)
	}
	for i, want := range map[int]int{2: 200, 3: 403, 4: 403, 5: 503} {
		resp, body := e.get(t, devicePath(e, "v1.0", i)+"?$select=notes", e.token)
		if resp.StatusCode != want {
			t.Errorf("device %d: %d %s, want %d", i, resp.StatusCode, body, want)
		}
	}
	if ids, _ := listing(t, e, ""); len(ids) != 20 {
		t.Errorf("the list shows %d devices: a device's faults are its GETs'", len(ids))
	}
	_ = e.sim.SetDeviceFault("", 3)
	if resp, _ := e.get(t, devicePath(e, "v1.0", 3)+"?$select=notes", e.token); resp.StatusCode != 200 {
		t.Errorf("cleared device 3: %d", resp.StatusCode)
	}
}
