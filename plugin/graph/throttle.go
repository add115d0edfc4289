package graph

import (
	"context"
	"sync"
	"time"
)

// Throttle is one app's share of Graph's request budget, for a client that
// sends many requests at once. Intune limits requests per app per tenant
// (2,000 per 20 s for its devices service), so the budget is shared by
// every request of the app:
//
//   - requests are paced at a rate, by default the documented limit, so a
//     client alone in its tenant never meets a 429;
//   - a 429 or 503 pauses every request until its Retry-After (or backoff)
//     has passed, lowers the rate by a quarter and halves how many requests
//     may be in flight; the rate and the concurrency grow back while Graph
//     answers (additive increase, multiplicative decrease);
//   - at most MaxConcurrent requests are in flight, however fast Graph is.
//
// A Throttle is safe for concurrent use.
type Throttle struct {
	mu          sync.Mutex
	now         func() time.Time
	maxRate     float64 // requests per second, the budget
	rate        float64 // requests per second now
	tokens      float64 // the pacer's bucket
	burst       float64 // the bucket's size
	refilled    time.Time
	pausedUntil time.Time
	maxLimit    int // in-flight requests at most
	limit       int // in-flight requests allowed now
	inFlight    int
	successes   int // since limit last grew
	changed     chan struct{}
	// The shares waiting, by ticket, in the order they asked (see
	// AcquireShare), and the next ticket.
	waiting []uint64
	tickets uint64
	stats   ThrottleStats
}

// ThrottleStats counts what a Throttle did.
type ThrottleStats struct {
	Requests  int64         // requests let through (each item of a batch counts)
	Throttled int64         // answers that paused every request (429, 503)
	Paused    time.Duration // time every request was held by pauses, in total
}

// minRate keeps a throttled client moving: Graph's Retry-After, not the
// pacer, holds it back when the budget is spent.
const minRate = 1

// NewThrottle paces requests at ratePerSecond with at most maxConcurrent in
// flight. It starts with room for one second of requests and a quarter of
// the concurrency, and grows from there while Graph answers.
func NewThrottle(ratePerSecond float64, maxConcurrent int) *Throttle {
	if ratePerSecond < minRate {
		ratePerSecond = minRate
	}
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	t := &Throttle{
		now:      time.Now,
		maxRate:  ratePerSecond,
		rate:     ratePerSecond,
		burst:    ratePerSecond,
		tokens:   ratePerSecond,
		maxLimit: maxConcurrent,
		limit:    max(1, maxConcurrent/4),
		changed:  make(chan struct{}),
	}
	t.refilled = t.now()
	return t
}

// Acquire waits until a request may be sent: no pause in force, a free
// slot and a token of the pacer. Every Acquire that returns nil must be
// followed by one Release.
func (t *Throttle) Acquire(ctx context.Context) error { return t.acquire(ctx, 1, false) }

// AcquireShare waits until n requests sent together (a JSON batch's items,
// which Graph counts one by one) may go, without eating into what Acquire
// keeps for itself: a slot, when there is more than one, and shareReserve
// of the pacer's tokens. So a client that sends its bulk through
// AcquireShare and its few urgent requests (the pages of a listing)
// through Acquire never starves the latter. The n tokens are taken at
// once, the pacer going into debt if n is more than it holds, which later
// requests repay. Shares are let through in the order they asked, so that
// the work a client took first is sent first. Every AcquireShare that
// returns nil must be followed by one Release.
func (t *Throttle) AcquireShare(ctx context.Context, n int) error { return t.acquire(ctx, n, true) }

// shareReserve is the share of a second's budget that AcquireShare leaves
// to Acquire.
const shareReserve = 0.05

func (t *Throttle) acquire(ctx context.Context, n int, share bool) error {
	var ticket uint64
	if share {
		t.mu.Lock()
		ticket = t.tickets
		t.tickets++
		t.waiting = append(t.waiting, ticket)
		t.mu.Unlock()
	}
	for {
		t.mu.Lock()
		now := t.now()
		t.refill(now)
		need, slots := 1.0, t.limit
		if share {
			// More than the bucket can hold would never come: a batch
			// larger than the burst goes when the bucket is full.
			need = min(float64(n)+shareReserve*t.maxRate, t.burst)
			if slots > 1 {
				slots--
			}
		}
		var wait time.Duration // 0: until something changes
		switch {
		case share && t.waiting[0] != ticket: // an earlier share goes first
		case now.Before(t.pausedUntil):
			wait = t.pausedUntil.Sub(now)
		case t.inFlight >= slots:
		case t.tokens < need:
			wait = time.Duration((need - t.tokens) / t.rate * float64(time.Second))
		default:
			t.tokens -= float64(n)
			t.inFlight++
			t.stats.Requests += int64(n)
			if share {
				t.leaveLocked(ticket)
			}
			t.mu.Unlock()
			return nil
		}
		changed := t.changed
		t.mu.Unlock()
		if err := sleep(ctx, wait, changed); err != nil {
			if share {
				t.mu.Lock()
				t.leaveLocked(ticket)
				t.mu.Unlock()
			}
			return err
		}
	}
}

// leaveLocked takes ticket out of the shares waiting, and wakes the next.
func (t *Throttle) leaveLocked(ticket uint64) {
	for k, w := range t.waiting {
		if w == ticket {
			t.waiting = append(t.waiting[:k], t.waiting[k+1:]...)
			break
		}
	}
	t.broadcast()
}

// Release ends a request. throttled says Graph answered 429 or 503: every
// request then waits for pause, which is the answer's Retry-After or the
// backoff the client chose.
func (t *Throttle) Release(throttled bool, pause time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.inFlight--
	if throttled {
		t.throttledLocked(pause)
	} else {
		t.rate = min(t.maxRate, t.rate+t.maxRate/200)
		if t.successes++; t.successes >= t.limit {
			t.limit = min(t.maxLimit, t.limit+1)
			t.successes = 0
		}
	}
	t.broadcast()
}

// Throttled records a 429 (or 503) that came inside an answer that was
// itself a success, such as one item of a JSON batch: every request waits
// for pause, and the pace and the concurrency back off as Release's do.
func (t *Throttle) Throttled(pause time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.throttledLocked(pause)
	t.broadcast()
}

func (t *Throttle) throttledLocked(pause time.Duration) {
	now := t.now()
	t.stats.Throttled++
	if until := now.Add(pause); until.After(t.pausedUntil) {
		t.stats.Paused += until.Sub(maxTime(now, t.pausedUntil))
		t.pausedUntil = until
	}
	t.rate = max(minRate, t.rate*0.75)
	t.limit = max(1, t.limit/2)
	t.successes = 0
	// The budget is spent: what the pacer saved would be spent at once
	// when the pause ends.
	t.tokens = min(t.tokens, 0)
}

// Stats returns what the throttle has done so far.
func (t *Throttle) Stats() ThrottleStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stats
}

// refill adds the tokens earned since the last refill.
func (t *Throttle) refill(now time.Time) {
	if elapsed := now.Sub(t.refilled).Seconds(); elapsed > 0 {
		t.tokens = min(t.burst, t.tokens+elapsed*t.rate)
	}
	t.refilled = now
}

// broadcast wakes every Acquire waiting for a change.
func (t *Throttle) broadcast() {
	close(t.changed)
	t.changed = make(chan struct{})
}

// sleep waits for d (0: no deadline), for changed to close or for ctx.
func sleep(ctx context.Context, d time.Duration, changed <-chan struct{}) error {
	var timeout <-chan time.Time
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		timeout = timer.C
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-changed:
	case <-timeout:
	}
	return nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// waitFor waits d (not at all when d <= 0), or until ctx ends, whose error
// it then returns.
func waitFor(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	return sleep(ctx, d, nil)
}
