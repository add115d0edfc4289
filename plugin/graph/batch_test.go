package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// batchServer answers $batch requests: each item's status comes from
// script (by path, consumed one answer per attempt; 200 once it runs out),
// answers are written in reverse order, and a 200 body carries an Int64
// that float64 cannot hold.
type batchServer struct {
	t      *testing.T
	mu     sync.Mutex
	script map[string][]int
	seen   map[string]int // attempts per path
	posts  int
	sizes  []int
}

func (s *batchServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/beta/$batch" || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "unexpected request "+r.Method+" "+r.URL.Path, http.StatusBadRequest)
		return
	}
	var req struct {
		Requests []struct{ ID, Method, URL string } `json:"requests"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.posts++
	s.sizes = append(s.sizes, len(req.Requests))
	var parts []string
	for k := len(req.Requests) - 1; k >= 0; k-- {
		item := req.Requests[k]
		s.seen[item.URL]++
		status := http.StatusOK
		if script := s.script[item.URL]; len(script) > 0 {
			status, s.script[item.URL] = script[0], script[1:]
		}
		switch status {
		case http.StatusOK:
			parts = append(parts, fmt.Sprintf(`{"id":%q,"status":200,"headers":{"Content-Type":"application/json"},"body":{"url":%q,"physicalMemoryInBytes":9007199254740993}}`, item.ID, item.URL))
		case http.StatusTooManyRequests:
			parts = append(parts, fmt.Sprintf(`{"id":%q,"status":429,"headers":{"Retry-After":"0.05"},"body":{"error":{"code":"TooManyRequests","message":"slow down","innerError":{"request-id":"inner-429"}}}}`, item.ID))
		default:
			parts = append(parts, fmt.Sprintf(`{"id":%q,"status":%d,"headers":{},"body":{"error":{"code":"Code%d","message":"item failed"}}}`, item.ID, status, status))
		}
	}
	s.mu.Unlock()
	w.Header().Set("request-id", "outer-request")
	fmt.Fprintf(w, `{"responses":[%s]}`, strings.Join(parts, ","))
}

func newBatchServer(t *testing.T, script map[string][]int) (*Client, *batchServer) {
	s := &batchServer{t: t, script: script, seen: map[string]int{}}
	c, _ := newTestClient(t, s)
	return c, s
}

func TestBatchPlacesAnswersByIDAndKeepsBodiesExact(t *testing.T) {
	c, _ := newBatchServer(t, map[string][]int{"/b": {http.StatusNotFound}})
	answers, err := c.Batch(context.Background(), "beta", []string{"/a", "/b", "/c"})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"/a", "", "/c"} {
		if want == "" {
			continue
		}
		if !answers[i].OK() || !strings.Contains(string(answers[i].Body), `"url":"`+want+`"`) ||
			!strings.Contains(string(answers[i].Body), "9007199254740993") {
			t.Errorf("answer %d = %d %s, want 200 for %s with its Int64 exact", i, answers[i].Status, answers[i].Body, want)
		}
	}
	nf := answers[1]
	if !nf.IsNotFound() || nf.Err == nil || nf.Err.Code != "Code404" || nf.Err.RequestID != "outer-request" {
		t.Errorf("answer to /b = %+v (err %v), want Graph's 404 with the batch's request-id", nf, nf.Err)
	}
}

func TestBatchItemThrottledPausesTheThrottle(t *testing.T) {
	c, _ := newBatchServer(t, map[string][]int{"/a": {http.StatusTooManyRequests}})
	c.Throttle = NewThrottle(1000, 4)
	answers, err := c.Batch(context.Background(), "beta", []string{"/a", "/b"})
	if err != nil {
		t.Fatal(err)
	}
	if answers[0].Status != http.StatusTooManyRequests || answers[0].Err == nil || !answers[0].Err.HasRetryAfter || answers[0].Err.RetryAfter != 50*time.Millisecond {
		t.Fatalf("answer to /a = %+v (%v), want 429 with Retry-After 50ms", answers[0], answers[0].Err)
	}
	s := c.Throttle.Stats()
	if s.Throttled != 1 || s.Requests != 2 || s.Paused < 40*time.Millisecond {
		t.Errorf("throttle stats %+v, want 2 requests counted, 1 throttled, a pause of about 50ms", s)
	}
}

func TestBatchRefusesAnAnswerThatLacksAnItem(t *testing.T) {
	var calls int
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls++
		if calls == 1 {
			fmt.Fprint(w, `{"responses":[{"id":"1","status":200,"body":{}}]}`)
			return
		}
		fmt.Fprint(w, `{"responses":[{"id":"2","status":200,"body":{"n":2}},{"id":"1","status":200,"body":{"n":1}}]}`)
	}))
	answers, err := c.Batch(context.Background(), "v1.0", []string{"/a", "/b"})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 || string(answers[1].Body) != `{"n":2}` {
		t.Errorf("calls %d, answers %+v: want the incomplete answer sent again", calls, answers)
	}
}

func TestBatchGetsRetriesTransientItemsAndSettlesEachOnce(t *testing.T) {
	script := map[string][]int{
		"/d/3":  {http.StatusTooManyRequests},
		"/d/7":  {http.StatusServiceUnavailable, http.StatusInternalServerError},
		"/d/11": {http.StatusNotFound},
		"/d/12": {http.StatusForbidden},
	}
	c, srv := newBatchServer(t, script)
	c.Throttle = NewThrottle(100000, 8)
	var retries int
	var retryMu sync.Mutex
	c.OnRetry = func(ev RetryEvent) { retryMu.Lock(); retries += ev.Items; retryMu.Unlock() }
	g := c.NewBatchGets("beta", 3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	const n = 45
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[string][]BatchResult{}
	for i := 0; i < n; i++ {
		path := fmt.Sprintf("/d/%d", i)
		wg.Add(1)
		g.Get(path, func(r BatchResult) {
			mu.Lock()
			results[path] = append(results[path], r)
			mu.Unlock()
			wg.Done()
		})
	}
	// Queued before the workers start, so that the batches are full
	// whatever the scheduler does (a worker sends what is waiting, even a
	// single request, and that is timing, not what this test checks).
	go g.Run(ctx)
	wg.Wait()
	for i := 0; i < n; i++ {
		path := fmt.Sprintf("/d/%d", i)
		rs := results[path]
		if len(rs) != 1 {
			t.Fatalf("%s settled %d times", path, len(rs))
		}
		r := rs[0]
		switch path {
		case "/d/11", "/d/12":
			if r.Err != nil || r.Answer.OK() || r.Answer.Err == nil {
				t.Errorf("%s: %+v, want its final error answer", path, r)
			}
		case "/d/3":
			if r.Err != nil || !r.Answer.OK() || srv.seen[path] != 2 {
				t.Errorf("%s: %+v after %d attempts, want 200 at the second", path, r, srv.seen[path])
			}
		case "/d/7":
			if r.Err != nil || !r.Answer.OK() || srv.seen[path] != 3 {
				t.Errorf("%s: %+v after %d attempts, want 200 at the third", path, r, srv.seen[path])
			}
		default:
			if r.Err != nil || !r.Answer.OK() || !strings.Contains(string(r.Answer.Body), path) {
				t.Errorf("%s: %+v, want its 200", path, r)
			}
		}
	}
	if retries != 3 {
		t.Errorf("%d requests reported as retried, want 3", retries)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	sent := 0
	for _, size := range srv.sizes {
		sent += size
		if size > BatchLimit {
			t.Errorf("a batch of %d requests", size)
		}
	}
	if sent != n+3 {
		t.Errorf("%d requests sent in batches, want %d and 3 retries", sent, n)
	}
	if srv.posts > n/BatchLimit+1+3 {
		t.Errorf("%d batches for %d requests and 3 retries", srv.posts, n)
	}
}

func TestBatchGetsGivesUpWithinTheRetryPolicy(t *testing.T) {
	always500 := make([]int, 100000) // more than the policy's time allows
	for i := range always500 {
		always500[i] = http.StatusInternalServerError
	}
	c, _ := newBatchServer(t, map[string][]int{"/x": always500})
	c.Retry = RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, MaxElapsedTime: 30 * time.Millisecond}
	g := c.NewBatchGets("beta", 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Run(ctx)
	done := make(chan BatchResult, 1)
	g.Get("/x", func(r BatchResult) { done <- r })
	select {
	case r := <-done:
		if !errors.Is(r.Err, ErrBatchItemGaveUp) || !strings.Contains(r.Err.Error(), "Code500") {
			t.Errorf("result %+v, want a give-up naming Graph's error", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the item was never settled")
	}
}

// TestThrottleShareLeavesPagesTheirTurn: while batches keep the budget
// busy, a single request (a page) is let through as soon as a token and a
// slot are free, ahead of the batch waiting for its twenty.
func TestThrottleShareLeavesPagesTheirTurn(t *testing.T) {
	th := NewThrottle(100, 2)
	th.tokens = 10 // less than a batch of 20 needs
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	started := time.Now()
	shareDone := make(chan time.Duration, 1)
	go func() {
		if err := th.AcquireShare(ctx, 20); err != nil {
			t.Error(err)
		}
		shareDone <- time.Since(started)
		th.Release(false, 0)
	}()
	time.Sleep(5 * time.Millisecond)
	if err := th.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	page := time.Since(started)
	th.Release(false, 0)
	share := <-shareDone
	if page > 50*time.Millisecond || share < page {
		t.Errorf("page went after %s, batch after %s: want the page first, at once", page, share)
	}
}

// TestThrottleSharesGoInTheOrderTheyAsked: batches waiting for the
// budget are let through first come, first served, so that the work taken
// first (the first page's GETs) is not overtaken by later work forever.
func TestThrottleSharesGoInTheOrderTheyAsked(t *testing.T) {
	th := NewThrottle(1000, 64)
	th.tokens = 0
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := th.AcquireShare(ctx, 20); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			th.Release(false, 0)
		}(i)
		time.Sleep(2 * time.Millisecond) // each asks after the one before
	}
	wg.Wait()
	for k, i := range order {
		if k != i {
			t.Fatalf("shares went in the order %v", order)
		}
	}
}

// TestBatchGetsFailFastOnceABatchGaveUp: when a batch itself keeps
// failing until the policy gives up, the batches after it fail with its
// error at once instead of each waiting out the policy's time.
func TestBatchGetsFailFastOnceABatchGaveUp(t *testing.T) {
	var posts atomic.Int64
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	c.Retry = RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 2 * time.Millisecond, MaxElapsedTime: 50 * time.Millisecond}
	g := c.NewBatchGets("v1.0", 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go g.Run(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := 0; i < 100; i++ {
		wg.Add(1)
		g.Get(fmt.Sprintf("/d/%d", i), func(r BatchResult) {
			mu.Lock()
			errs = append(errs, r.Err)
			mu.Unlock()
			wg.Done()
		})
	}
	started := time.Now()
	wg.Wait()
	for _, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "502") {
			t.Fatalf("result %v, want the batch's 502", err)
		}
	}
	if elapsed := time.Since(started); elapsed > 5*time.Second {
		t.Errorf("100 requests took %s to fail", elapsed)
	}
	if n := posts.Load(); n > 60 {
		t.Errorf("%d batches posted: the ones after the first that gave up must not be sent", n)
	}
}
