package graph

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestThrottlePauseHoldsEveryRequest: once one request is answered 429,
// no other request is let through before the pause ends.
func TestThrottlePauseHoldsEveryRequest(t *testing.T) {
	th := NewThrottle(1000, 8)
	ctx := context.Background()
	if err := th.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	const pause = 300 * time.Millisecond
	paused := time.Now()
	th.Release(true, pause)

	var wg sync.WaitGroup
	var earliest atomic.Int64
	earliest.Store(int64(time.Hour))
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := th.Acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			waited := time.Since(paused)
			for {
				old := earliest.Load()
				if int64(waited) >= old || earliest.CompareAndSwap(old, int64(waited)) {
					break
				}
			}
			th.Release(false, 0)
		}()
	}
	wg.Wait()
	if got := time.Duration(earliest.Load()); got < pause {
		t.Errorf("a request went out %s after a 429 that paused every request for %s", got, pause)
	}
	if s := th.Stats(); s.Throttled != 1 || s.Requests != 5 {
		t.Errorf("stats = %+v, want 1 throttled of 5 requests", s)
	}
}

// TestThrottleNeverExceedsItsConcurrency runs many workers through one
// throttle and checks how many requests were in flight at once.
func TestThrottleNeverExceedsItsConcurrency(t *testing.T) {
	const maxConcurrent = 6
	th := NewThrottle(100000, maxConcurrent)
	var inFlight, highest atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 20; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				if err := th.Acquire(context.Background()); err != nil {
					t.Error(err)
					return
				}
				n := inFlight.Add(1)
				for {
					h := highest.Load()
					if n <= h || highest.CompareAndSwap(h, n) {
						break
					}
				}
				time.Sleep(time.Millisecond)
				inFlight.Add(-1)
				th.Release(false, 0)
			}
		}()
	}
	wg.Wait()
	if h := highest.Load(); h > maxConcurrent {
		t.Errorf("%d requests in flight at once, limit %d", h, maxConcurrent)
	}
	if h := highest.Load(); h < maxConcurrent {
		t.Errorf("at most %d requests in flight of %d allowed: the concurrency never grew", h, maxConcurrent)
	}
}

// TestThrottleBacksOffAndRecovers: a 429 halves the concurrency and lowers
// the rate; answers that pass bring both back to their maximum.
func TestThrottleBacksOffAndRecovers(t *testing.T) {
	th := NewThrottle(100, 16)
	for i := 0; i < 200; i++ { // grow to the maximum
		th.inFlight++
		th.Release(false, 0)
	}
	if th.limit != 16 || th.rate != 100 {
		t.Fatalf("after 200 answers: limit %d rate %.1f, want 16 and 100", th.limit, th.rate)
	}
	th.inFlight++
	th.Release(true, 0)
	if th.limit != 8 || th.rate != 75 {
		t.Errorf("after a 429: limit %d rate %.1f, want 8 and 75", th.limit, th.rate)
	}
	for i := 0; i < 200; i++ {
		th.inFlight++
		th.Release(false, 0)
	}
	if th.limit != 16 || th.rate != 100 {
		t.Errorf("after recovering: limit %d rate %.1f, want 16 and 100", th.limit, th.rate)
	}
}

// TestThrottleAcquireEndsWithItsContext: a request waiting out a pause is
// abandoned when its sync is stopped.
func TestThrottleAcquireEndsWithItsContext(t *testing.T) {
	th := NewThrottle(100, 1)
	if err := th.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	th.Release(true, time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := th.Acquire(ctx); err == nil {
		t.Fatal("Acquire returned nil during an hour's pause")
	}
}
