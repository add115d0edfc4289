package graphsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

type batchReq struct {
	ID      string            `json:"id"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Headers map[string]string `json:"headers,omitempty"`
}

type batchItem struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

// batchOf is the body of a batch of reqs.
func batchOf(t *testing.T, reqs ...batchReq) string {
	t.Helper()
	b, err := json.Marshal(map[string][]batchReq{"requests": reqs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// gets is a batch of GETs of the urls, with ids "1", "2", ...
func gets(urls ...string) []batchReq {
	reqs := make([]batchReq, len(urls))
	for k, u := range urls {
		reqs[k] = batchReq{ID: strconv.Itoa(k + 1), Method: "GET", URL: u}
	}
	return reqs
}

// postBatch sends a batch and decodes its 200 answer strictly, by id;
// order is the ids in the order answered.
func postBatch(t *testing.T, e *env, version, body string) (items map[string]batchItem, order []string) {
	t.Helper()
	resp, raw := e.post(t, "/"+version+"/$batch", body, e.token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("batch: %d %s", resp.StatusCode, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != graphContentType || resp.Header.Get("request-id") == "" {
		t.Fatalf("batch headers %v", resp.Header)
	}
	var answer struct {
		Responses []batchItem `json:"responses"`
	}
	if err := decodeStrict(raw, &answer); err != nil {
		t.Fatalf("batch answer: %v: %s", err, raw)
	}
	items = map[string]batchItem{}
	for _, it := range answer.Responses {
		items[it.ID] = it
		order = append(order, it.ID)
	}
	return items, order
}

func TestBatchAnswersEachRequestAsItWouldBeAnsweredAlone(t *testing.T) {
	e := newEnv(t, Config{Devices: 40, Seed: 11, GoneOnGet: []int{5}})
	id := e.sim.DeviceID
	urls := []string{
		"/deviceManagement/managedDevices/" + id(3) + "?$select=" + betaListDefaults,
		"deviceManagement/managedDevices('" + id(7) + "')?$select=physicalMemoryInBytes,hardwareInformation",
		"/deviceManagement/managedDevices/" + id(5),
		"/deviceManagement/managedDevices/" + id(8) + "?$top=1",
		"/deviceManagement/managedDevices/" + id(8),
		"/deviceManagement/managedDevices?$top=2&$select=id,notes",
		"/users",
		"/deviceManagement/managedDevices/" + id(9) + "?$select=id,deviceName",
	}
	reqs := append(gets(urls...), batchReq{ID: "9", Method: "PATCH", URL: "/deviceManagement/managedDevices/" + id(1)})
	e.sim.ResetRequests()
	items, _ := postBatch(t, e, "beta", batchOf(t, reqs...))
	if len(items) != len(reqs) {
		t.Fatalf("%d answers to %d requests", len(items), len(reqs))
	}
	recs := settledRequests(t, e, 1)
	if recs[0].Kind != KindBatch || recs[0].Status != http.StatusOK {
		t.Fatalf("request log %+v", recs)
	}
	want := map[string]int{"1": 200, "2": 200, "3": 404, "4": 400, "5": 200, "6": 200, "7": 404, "8": 200, "9": 405}
	for _, q := range reqs {
		it := items[q.ID]
		if it.Status != want[q.ID] {
			t.Errorf("%s %s: status %d, want %d: %s", q.ID, q.URL, it.Status, want[q.ID], it.Body)
			continue
		}
		if it.Headers["Content-Type"] != graphContentType || it.Headers["Content-Length"] != "" {
			t.Errorf("%s: headers %v", q.ID, it.Headers)
		}
		if q.Method != "GET" {
			continue
		}
		// The same request alone.
		resp, body := e.get(t, "/beta/"+strings.TrimPrefix(q.URL, "/"), e.token)
		if resp.StatusCode != it.Status {
			t.Errorf("%s: alone %d, in the batch %d", q.ID, resp.StatusCode, it.Status)
		}
		if it.Status == http.StatusOK {
			if !bytes.Equal(body, it.Body) {
				t.Errorf("%s: in the batch\n%s\nalone\n%s", q.ID, it.Body, body)
			}
			continue
		}
		alone, inBatch := decodeGraphError(t, resp, body), graphErr{}
		err := decodeStrict(it.Body, &inBatch)
		// Intune's messages quote the request's own id.
		msg := strings.ReplaceAll(alone.Error.Message, alone.Error.InnerError.RequestID, inBatch.Error.InnerError.RequestID)
		if err != nil || inBatch.Error.Code != alone.Error.Code || inBatch.Error.Message != msg || inBatch.Error.InnerError.RequestID == "" {
			t.Errorf("%s: error in the batch %s, alone %s", q.ID, it.Body, body)
		}
	}
	// The whole details, byte for byte, and a value above 2^53 as exact
	// as it was written.
	if wantBody := entityPrefix("beta", betaListDefaults) + string(e.sim.DeviceDetails(3, true)[1:]); string(items["1"].Body) != wantBody {
		t.Errorf("details in the batch\n%s\nwant\n%s", items["1"].Body, wantBody)
	}
	dec := json.NewDecoder(bytes.NewReader(items["2"].Body))
	dec.UseNumber()
	var d struct {
		Memory   json.Number `json:"physicalMemoryInBytes"`
		Hardware struct {
			Total json.Number `json:"totalStorageSpace"`
		} `json:"hardwareInformation"`
	}
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	real := decodeDetails(t, e.sim.DeviceDetails(7, true))
	if m, _ := strconv.ParseInt(string(d.Memory), 10, 64); d.Memory != real.Memory || m <= 1<<53 || m%2 == 0 {
		t.Errorf("physicalMemoryInBytes %s, want %s, an odd value above 2^53", d.Memory, real.Memory)
	}
	st := e.sim.Stats()
	// 1, 2, 5 and 8 answered 200 in the batch and again alone.
	if st.BatchRequests != 1 || st.BatchItems != 9 || st.DeviceGets != 8 || st.DetailGets != 4 {
		t.Errorf("stats %+v", st)
	}
	if got := e.sim.DetailFetches(); len(got) != 2 || got[id(3)] != 2 || got[id(7)] != 2 {
		t.Errorf("DetailFetches %v", got)
	}
}

func TestBatchAnswersComeInAnOrderOfTheirOwn(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, Seed: 2})
	shuffled := 0
	for n := 2; n <= 20; n++ {
		var urls []string
		for i := 0; i < n; i++ {
			urls = append(urls, "/deviceManagement/managedDevices/"+e.sim.DeviceID(i)+"?$select=id")
		}
		body := batchOf(t, gets(urls...)...)
		items, order := postBatch(t, e, "v1.0", body)
		if len(items) != n {
			t.Fatalf("%d answers to %d requests", len(items), n)
		}
		want := make([]string, n)
		for k := range want {
			want[k] = strconv.Itoa(k + 1)
		}
		if !slices.Equal(order, want) {
			shuffled++
		}
		if _, again := postBatch(t, e, "v1.0", body); !slices.Equal(order, again) {
			t.Errorf("the same batch of %d answered in orders %v and %v", n, order, again)
		}
		for k := range want {
			var d struct{ ID string }
			if err := json.Unmarshal(items[want[k]].Body, &d); err != nil || d.ID != e.sim.DeviceID(k) {
				t.Fatalf("answer %s is device %q, want %s", want[k], d.ID, e.sim.DeviceID(k))
			}
		}
	}
	if shuffled < 10 {
		t.Errorf("only %d of 19 batches were answered out of order", shuffled)
	}
}

func TestBatchRefusesWhatGraphRefuses(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, Seed: 2})
	var many []string
	for i := 0; i < 21; i++ {
		many = append(many, "/deviceManagement/managedDevices/"+e.sim.DeviceID(i))
	}
	for body, msg := range map[string]string{
		batchOf(t, gets(many...)...): "Number of requests inside batch exceeds the limit.",
		"not JSON":                   "Invalid batch payload format.",
		`{"requests":[]}`:            "Invalid batch payload format.",
		`{"requests":{"id":"1"}}`:    "Invalid batch payload format.",
		`{"requests":[{"method":"GET","url":"/users"}]}`:                                                   "Request Id is required for every request in a batch.",
		`{"requests":[{"id":"a","method":"GET","url":"/users"},{"id":"A","method":"GET","url":"/users"}]}`: "Request Id A has to be unique in a batch.",
		`{"requests":[{"id":"a","url":"/users"}]}`:                                                         "Invalid batch payload format.",
	} {
		resp, raw := e.post(t, "/v1.0/$batch", body, e.token)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%.60s: %d %s", body, resp.StatusCode, raw)
			continue
		}
		if ge := decodeGraphError(t, resp, raw); ge.Error.Code != "BadRequest" || ge.Error.Message != msg {
			t.Errorf("%.60s: %+v", body, ge.Error)
		}
	}
	if st := e.sim.Stats(); st.BatchItems != 0 || st.BatchRequests != 0 {
		t.Errorf("refused batches counted: %+v", st)
	}
	twenty := batchOf(t, gets(many[:20]...)...)
	if resp, raw := e.post(t, "/v1.0/$batch", twenty, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d %s", resp.StatusCode, raw)
	}
	if resp, raw := e.get(t, "/v1.0/$batch", e.token); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d %s", resp.StatusCode, raw)
	}
	if items, _ := postBatch(t, e, "v1.0", twenty); len(items) != 20 {
		t.Errorf("20 requests: %d answers", len(items))
	}
	items, _ := postBatch(t, e, "v1.0", batchOf(t, gets("/$batch", "https://graph.microsoft.com/v1.0/users", "/beta/deviceManagement/managedDevices")...))
	for id, status := range map[string]int{"1": 400, "2": 400, "3": 404} {
		if items[id].Status != status {
			t.Errorf("request %s: %d %s", id, items[id].Status, items[id].Body)
		}
	}
}

func TestBatchChargesEveryRequestInsideAndNotItself(t *testing.T) {
	var clock *fakeClock
	e := newEnv(t, Config{Devices: 30, Seed: 2, Throttle: Throttle{Requests: 8, Window: time.Hour}}, withClock(&clock))
	var urls []string
	for i := 0; i < 11; i++ {
		urls = append(urls, "/deviceManagement/managedDevices/"+e.sim.DeviceID(i)+"?$select=notes")
	}
	// A budget of 8 holds a batch of 8: the batch itself takes nothing.
	items, _ := postBatch(t, e, "v1.0", batchOf(t, gets(urls[:8]...)...))
	for id, it := range items {
		if it.Status != http.StatusOK {
			t.Fatalf("request %s: %d %s", id, it.Status, it.Body)
		}
	}
	items, _ = postBatch(t, e, "v1.0", batchOf(t, gets(urls[8:]...)...))
	for id, it := range items {
		var ge graphErr
		if it.Status != http.StatusTooManyRequests || it.Headers["Retry-After"] != "450" || decodeStrict(it.Body, &ge) != nil || ge.Error.Code != "TooManyRequests" {
			t.Errorf("request %s: %d %v %s", id, it.Status, it.Headers, it.Body)
		}
	}
	if resp, _ := e.get(t, devicePath(e, "v1.0", 0), e.token); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("direct GET after the budget: %d", resp.StatusCode)
	}
	st := e.sim.Stats()
	if st.Throttled != 4 || st.BatchItems != 11 || st.DetailGets != 8 || st.BatchRequests != 2 {
		t.Errorf("stats %+v", st)
	}
	clock.Advance(450 * time.Second)
	if items, _ := postBatch(t, e, "v1.0", batchOf(t, gets(urls[8])...)); items["1"].Status != http.StatusOK {
		t.Errorf("after Retry-After: %d", items["1"].Status)
	}
	for _, rec := range settledRequests(t, e, len(e.sim.Requests())) {
		if rec.Kind == KindBatch && (rec.Status != http.StatusOK || rec.RetryAfter != 0) {
			t.Errorf("batch record %+v", rec)
		}
	}
}

func TestBatchWaitsTheLatencyOnce(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, Seed: 2, Latency: 100 * time.Millisecond})
	var urls []string
	for i := 0; i < 20; i++ {
		urls = append(urls, "/deviceManagement/managedDevices/"+e.sim.DeviceID(i))
	}
	start := time.Now()
	postBatch(t, e, "v1.0", batchOf(t, gets(urls...)...))
	if d := time.Since(start); d < 100*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("a batch of 20 took %v with a latency of 100ms", d)
	}
}

// A crash test's view: a stalled batch delivers nothing, so nothing of it
// counts; once the stall is cleared, each device's details are fetched
// exactly once.
func TestBatchStallCountsOnlyWhatWasDelivered(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, Seed: 2, StallDetailsAfter: 3})
	var urls []string
	for i := 0; i < 5; i++ {
		urls = append(urls, "/deviceManagement/managedDevices/"+e.sim.DeviceID(i)+"?$select=notes,physicalMemoryInBytes")
	}
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.ts.URL+"/v1.0/$batch", strings.NewReader(batchOf(t, gets(urls...)...)))
	req.Header.Set("Authorization", "Bearer "+e.token)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = errors.New("answered " + resp.Status)
		}
		done <- err
	}()
	// The client is stuck on the fourth GET; it "crashes".
	waitFor(t, func() bool { return e.sim.StalledGets() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("a stalled batch: %v", err)
	}
	waitFor(t, func() bool { return e.sim.StalledGets() == 0 })
	if got := e.sim.DetailFetches(); len(got) != 0 {
		t.Errorf("an undelivered batch counted %v", got)
	}
	e.sim.SetStallDetailsAfter(0)
	items, _ := postBatch(t, e, "v1.0", batchOf(t, gets(urls...)...))
	got := e.sim.DetailFetches()
	for i := 0; i < 5; i++ {
		if items[strconv.Itoa(i+1)].Status != http.StatusOK || got[e.sim.DeviceID(i)] != 1 {
			t.Errorf("device %d: %d, fetched %d times", i, items[strconv.Itoa(i+1)].Status, got[e.sim.DeviceID(i)])
		}
	}
	if st := e.sim.Stats(); st.DeviceGets != 5 || st.DetailGets != 5 || st.BatchRequests != 1 || st.BatchItems != 9 { // the stalled batch ran 4
		t.Errorf("stats %+v", st)
	}
}

// settledRequests returns the request log once it holds n records, each
// complete: a client can read a large answer before the server has
// finished its record.
func settledRequests(t *testing.T, e *env, n int) []RequestRecord {
	t.Helper()
	var recs []RequestRecord
	waitFor(t, func() bool {
		recs = e.sim.Requests()
		return len(recs) == n && !slices.ContainsFunc(recs, func(r RequestRecord) bool { return r.Status == 0 })
	})
	return recs
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
