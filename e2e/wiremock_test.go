package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// These tests run the binary against WireMock, an HTTP stand-in nobody in
// this project wrote (Jetty underneath, its own chunking, headers and fault
// injection). The pages it serves are recorded from graphsim, so the devices
// are known; everything on the wire is WireMock's.

const wiremockToken = "wiremock-access-token-1"

// wiremock is a running WireMock server.
type wiremock struct {
	base string
}

func startWireMock(t *testing.T) *wiremock {
	t.Helper()
	jar := os.Getenv("INTUNE_WIREMOCK_JAR")
	java, javaErr := exec.LookPath("java")
	if jar == "" || javaErr != nil {
		msg := "WireMock tests need java and INTUNE_WIREMOCK_JAR (make test installs WireMock with npm)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(java, "-jar", jar, "--port", fmt.Sprint(port), "--bind-address", "127.0.0.1", "--disable-banner")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	wm := &wiremock{base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := http.Get(wm.base + "/__admin/health")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return wm
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("WireMock did not start: %v\n%s", err, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (wm *wiremock) admin(t *testing.T, method, path string, body any) []byte {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, wm.base+path, r)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		t.Fatalf("WireMock %s %s: %d %s", method, path, res.StatusCode, out)
	}
	return out
}

func (wm *wiremock) stub(t *testing.T, mapping map[string]any) {
	t.Helper()
	wm.admin(t, http.MethodPost, "/__admin/mappings", mapping)
}

// recordedPage is one page as graphsim answered it, its links rewritten to
// WireMock's address.
type recordedPage struct {
	uri  string // path and query, as the binary will request it
	body []byte
}

// record lists a tenant from graphsim with the query the binary will send
// and returns its pages and devices.
func record(t *testing.T, sim *graphsim.Server, q graph.Query, wmBase string) ([]recordedPage, [][]byte) {
	t.Helper()
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c := sim.Config()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {c.ClientID}, "client_secret": {c.ClientSecret},
		"scope": {"https://graph.microsoft.com/.default"}}
	res, err := http.PostForm(graph.TokenURL(srv.URL, c.TenantID), form)
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&tok)
	res.Body.Close()

	base, _ := url.Parse(srv.URL)
	next := graph.ManagedDevicesURL(base, q)
	var pages []recordedPage
	var devices [][]byte
	for next != "" {
		req, _ := http.NewRequest(http.MethodGet, next, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("recording %s: %d %s", next, res.StatusCode, body)
		}
		page, err := graph.ParsePage(body, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Devices {
			devices = append(devices, append([]byte(nil), d...))
		}
		pages = append(pages, recordedPage{
			uri:  strings.TrimPrefix(next, srv.URL),
			body: bytes.ReplaceAll(body, []byte(srv.URL), []byte(wmBase)),
		})
		next = page.NextLink
	}
	return pages, devices
}

// stubTenant serves the token endpoint and the recorded pages. Graph stubs
// only answer the token the token endpoint issued.
func (wm *wiremock) stubTenant(t *testing.T, sim *graphsim.Server, pages []recordedPage) {
	t.Helper()
	wm.admin(t, http.MethodPost, "/__admin/reset", nil)
	c := sim.Config()
	wm.stub(t, map[string]any{
		"priority": 5,
		"request": map[string]any{
			"method": "POST", "url": "/" + c.TenantID + "/oauth2/v2.0/token",
			"bodyPatterns": []any{map[string]any{"contains": "client_secret=" + c.ClientSecret}},
		},
		"response": map[string]any{"status": 200, "headers": map[string]any{"Content-Type": "application/json; charset=utf-8"},
			"jsonBody": map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": wiremockToken}},
	})
	for i, p := range pages {
		response := map[string]any{"status": 200, "body": string(p.body),
			"headers": map[string]any{"Content-Type": "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8",
				"request-id": fmt.Sprintf("wm-page-%d", i+1)}}
		if i%2 == 1 {
			// Every other page arrives in dribbled chunks.
			response["chunkedDribbleDelay"] = map[string]any{"numberOfChunks": 7, "totalDuration": 70}
		}
		wm.stub(t, map[string]any{
			"priority": 5,
			"request": map[string]any{"method": "GET", "url": p.uri,
				"headers": map[string]any{"Authorization": map[string]any{"equalTo": "Bearer " + wiremockToken}}},
			"response": response,
		})
	}
}

// once answers the first request to uri with response, then lets the
// page's normal stub answer.
func (wm *wiremock) once(t *testing.T, name, uri, method string, response map[string]any) {
	t.Helper()
	wm.stub(t, map[string]any{
		"scenarioName": name, "requiredScenarioState": "Started", "newScenarioState": "answered",
		"priority": 1,
		"request":  map[string]any{"method": method, "url": uri},
		"response": response,
	})
}

func wiremockConfig(t *testing.T, wm *wiremock, sim *graphsim.Server, extra string) string {
	t.Helper()
	return writeConfig(t, inputConfig{login: simLogin(sim, wm.base), input: extra})
}

// withoutPlaceholders is a v1.0 device as the input hands on what the
// stand-in served: byte for byte, except each property v1.0's list leaves
// at a default, which is null.
func withoutPlaceholders(t *testing.T, device []byte) []byte {
	t.Helper()
	placeholder := map[string]bool{}
	for _, c := range schema.ListDefaults("v1.0") {
		placeholder[c.Property] = true
	}
	out := []byte{'{'}
	err := graph.EachMember(device, func(key []byte, _ bool, value []byte) {
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(append(append(out, '"'), key...), '"', ':')
		if placeholder[string(key)] {
			value = []byte("null")
		}
		out = append(out, value...)
	})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '}')
}

func checkDelivered(t *testing.T, res result, devices [][]byte) {
	t.Helper()
	if res.exitCode != 0 {
		t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
	}
	out := strings.TrimSuffix(res.stdout, "\n")
	var lines []string
	if out != "" {
		lines = strings.Split(out, "\n")
	}
	if len(lines) != len(devices) {
		t.Fatalf("%d devices on stdout, want %d\n%s", len(lines), len(devices), res.stderr)
	}
	for i, line := range lines {
		if want := withoutPlaceholders(t, devices[i]); line != string(want) {
			t.Fatalf("device %d is not the bytes the stand-in served (placeholders null):\n got %s\nwant %s", i, line, want)
		}
	}
}

func TestAgainstWireMockEveryDeviceUnchanged(t *testing.T) {
	wm := startWireMock(t)
	for _, tc := range []struct {
		name  string
		sim   graphsim.Config
		query graph.Query
		extra string
	}{
		{name: "empty tenant", sim: graphsim.Config{Devices: 0}, query: graph.Query{APIVersion: "v1.0"}},
		{name: "2345 devices", sim: graphsim.Config{Devices: 2345, Seed: 31}, query: graph.Query{APIVersion: "v1.0"}},
		{name: "3000 devices, select, filter, page_size 100", sim: graphsim.Config{Devices: 3000, Seed: 32},
			query: graph.Query{APIVersion: "v1.0", Select: []string{"id", "deviceName", "operatingSystem", "totalStorageSpaceInBytes"},
				Filter: "operatingSystem eq 'Windows'", Top: 100},
			extra: "    select: [ id, deviceName, operatingSystem, totalStorageSpaceInBytes ]\n    filter: \"operatingSystem eq 'Windows'\"\n    page_size: 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := graphsim.New(tc.sim)
			pages, devices := record(t, sim, tc.query, wm.base)
			wm.stubTenant(t, sim, pages)
			res := runBinary(t, nil, "-c", wiremockConfig(t, wm, sim, tc.extra))
			checkDelivered(t, res, devices)
			if tc.sim.Devices == 3000 && (len(pages) < 10 || len(devices) == 0) {
				t.Errorf("%d pages, %d devices: the filtered listing should span many pages of 100", len(pages), len(devices))
			}
		})
	}
}

// TestAgainstWireMockFaults: WireMock's own fault injection (connection
// reset, empty response, malformed chunk, random data then close, delays)
// plus throttling and outages, one per page: every device arrives once.
func TestAgainstWireMockFaults(t *testing.T) {
	wm := startWireMock(t)
	sim := graphsim.New(graphsim.Config{Devices: 2345, Seed: 33})
	pages, devices := record(t, sim, graph.Query{APIVersion: "v1.0", Top: 300}, wm.base)
	if len(pages) < 8 {
		t.Fatalf("%d pages, want 8", len(pages))
	}
	wm.stubTenant(t, sim, pages)
	graphError := func(status int, code string, headers map[string]any) map[string]any {
		headers["Content-Type"] = "application/json"
		return map[string]any{"status": status, "headers": headers,
			"jsonBody": map[string]any{"error": map[string]any{"code": code, "message": "injected by WireMock"}}}
	}
	wm.once(t, "token outage", "/"+sim.Config().TenantID+"/oauth2/v2.0/token", "POST",
		map[string]any{"status": 503, "headers": map[string]any{"Content-Type": "application/json"},
			"jsonBody": map[string]any{"error": "temporarily_unavailable", "error_description": "AADSTS90033: A transient error has occurred.", "error_codes": []int{90033}}})
	wm.once(t, "429", pages[1].uri, "GET", graphError(429, "TooManyRequests", map[string]any{"Retry-After": "1.5"}))
	wm.once(t, "reset", pages[2].uri, "GET", map[string]any{"fault": "CONNECTION_RESET_BY_PEER"})
	wm.once(t, "empty", pages[3].uri, "GET", map[string]any{"fault": "EMPTY_RESPONSE"})
	wm.once(t, "malformed chunk", pages[4].uri, "GET", map[string]any{"fault": "MALFORMED_RESPONSE_CHUNK"})
	wm.once(t, "random data", pages[5].uri, "GET", map[string]any{"fault": "RANDOM_DATA_THEN_CLOSE"})
	wm.once(t, "slow", pages[6].uri, "GET", map[string]any{"status": 200, "body": string(pages[6].body), "fixedDelayMilliseconds": 3000})
	wm.once(t, "503", pages[7].uri, "GET", graphError(503, "ServiceUnavailable", map[string]any{"Retry-After": "0.2"}))

	res := runBinary(t, nil, "-c", wiremockConfig(t, wm, sim,
		"    page_size: 300\n    request_timeout: 1s\n    backoff:\n      initial_interval: 20ms\n      max_interval: 200ms\n      max_elapsed_time: 30s"))
	checkDelivered(t, res, devices)

	// WireMock's journal: page 2 was asked for again no sooner than its
	// Retry-After of 1.5 s.
	var journal struct {
		Requests []struct {
			Request struct {
				URL        string `json:"url"`
				LoggedDate int64  `json:"loggedDate"`
			} `json:"request"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(wm.admin(t, http.MethodGet, "/__admin/requests", nil), &journal); err != nil {
		t.Fatal(err)
	}
	var times []int64
	requests := map[string]int{}
	for _, r := range journal.Requests {
		requests[r.Request.URL]++
		if r.Request.URL == pages[1].uri {
			times = append(times, r.Request.LoggedDate)
		}
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	if len(times) < 2 || times[1]-times[0] < 1500 {
		t.Errorf("page 2 requested at %v (ms): want a retry at least 1500 ms after the 429", times)
	}
	// Every faulty page was asked for again. (A reset or empty answer on a
	// reused connection is retried inside net/http itself, so it is not
	// always in our log; WireMock's journal sees both attempts.)
	for i := 1; i <= 7; i++ {
		if requests[pages[i].uri] < 2 {
			t.Errorf("page %d was requested %d times; its fault was not retried", i+1, requests[pages[i].uri])
		}
	}
	for _, want := range []string{"HTTP 429", "HTTP 503", "temporarily_unavailable", "unexpected EOF", "request timed out"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("no retry logged for %q:\n%s", want, res.stderr)
		}
	}
}
