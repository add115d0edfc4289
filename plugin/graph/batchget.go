package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// BatchGets sends many independent GETs as JSON batches of up to
// BatchLimit, on a few workers whose pace the client's Throttle sets: a
// queue that callers fill (Get) and workers drain (Run), so that a batch
// fills up with whatever is waiting, whoever asked for it.
//
// Each GET ends with one call of its done function, from a worker:
//   - a 2xx answer;
//   - an answer Graph will not change by being asked again (404, 403,
//     400, ...), for the caller to judge;
//   - or an error: the item was answered 429 or 5xx (or its batch failed)
//     until the client's RetryPolicy gave up, or the batch met an error
//     no retry mends.
//
// An item answered 429 or 503 waits for the throttle's pause (which the
// answer set, see Client.Batch) and goes again; one answered 500, 502 or
// 504 goes again after the policy's backoff. Items to retry go ahead of
// those not yet sent, so that what was asked first is answered first.
type BatchGets struct {
	client  *Client
	version string
	workers int

	mu     sync.Mutex
	queue  []*batchGet // in order of sending; retries at the front
	signal chan struct{}
	// broken is the error that made a batch fail after its retries: the
	// batches after it fail with it at once, rather than each waiting out
	// the policy's time while every page waits for them.
	broken error
}

// ErrBatchItemGaveUp reports an item of a batch that Graph kept answering
// with a transient error until the retry policy's time ran out.
var ErrBatchItemGaveUp = errors.New("giving up on the request")

// BatchResult is how one GET of BatchGets ended.
type BatchResult struct {
	Answer BatchAnswer // when Err is nil
	Err    error
}

type batchGet struct {
	path     string
	done     func(BatchResult)
	attempts int
	first    time.Time // of the first attempt
}

// NewBatchGets sends GETs of version's paths through c, on workers
// concurrent batches at most (the throttle may allow fewer).
func (c *Client) NewBatchGets(version string, workers int) *BatchGets {
	return &BatchGets{client: c, version: version, workers: max(1, workers), signal: make(chan struct{}, 1)}
}

// Get queues a GET of path (relative to the version, "/deviceManagement/...").
// done is called once, from a worker, when the request has ended.
func (g *BatchGets) Get(path string, done func(BatchResult)) {
	g.push(&batchGet{path: path, done: done}, false)
}

func (g *BatchGets) push(item *batchGet, front bool) {
	g.mu.Lock()
	if front {
		g.queue = append([]*batchGet{item}, g.queue...)
	} else {
		g.queue = append(g.queue, item)
	}
	g.mu.Unlock()
	select {
	case g.signal <- struct{}{}:
	default:
	}
}

// take removes up to n waiting items, waiting for at least one.
func (g *BatchGets) take(ctx context.Context, n int) ([]*batchGet, error) {
	for {
		g.mu.Lock()
		k := min(n, len(g.queue))
		if k > 0 {
			items := append([]*batchGet(nil), g.queue[:k]...)
			g.queue = g.queue[k:]
			more := len(g.queue) > 0
			g.mu.Unlock()
			if more {
				// Another worker may take the rest.
				select {
				case g.signal <- struct{}{}:
				default:
				}
			}
			return items, nil
		}
		g.mu.Unlock()
		select {
		case <-g.signal:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Run sends batches until ctx ends. Requests still queued then are never
// answered: whoever waits for them must also watch ctx.
func (g *BatchGets) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for w := 0; w < g.workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				items, err := g.take(ctx, BatchLimit)
				if err != nil {
					return
				}
				g.send(ctx, items)
			}
		}()
	}
	wg.Wait()
}

// send sends one batch and settles each of its items.
func (g *BatchGets) send(ctx context.Context, items []*batchGet) {
	g.mu.Lock()
	broken := g.broken
	g.mu.Unlock()
	if broken != nil {
		for _, it := range items {
			it.done(BatchResult{Err: broken})
		}
		return
	}
	paths := make([]string, len(items))
	now := time.Now()
	for i, it := range items {
		paths[i] = it.path
		it.attempts++
		if it.first.IsZero() {
			it.first = now
		}
	}
	answers, err := g.client.Batch(ctx, g.version, paths)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		// Batch retried what could be retried.
		g.mu.Lock()
		if g.broken == nil {
			g.broken = fmt.Errorf("%w (the requests after it are not sent)", err)
		}
		g.mu.Unlock()
		for _, it := range items {
			it.done(BatchResult{Err: err})
		}
		return
	}
	var retried []error
	var longest time.Duration
	throttled := 0
	for i, it := range items {
		if wait, err := g.settle(ctx, it, answers[i]); err != nil {
			retried, longest = append(retried, err), max(longest, wait)
			if answers[i].Status == http.StatusTooManyRequests {
				throttled++
			}
		}
	}
	if len(retried) > 0 && g.client.OnRetry != nil {
		// One event for the batch: a throttled batch is one log line.
		g.client.OnRetry(RetryEvent{Attempt: items[0].attempts, Wait: longest, Items: len(retried), ThrottledItems: throttled,
			Err: fmt.Errorf("%d of %d requests of a batch will be sent again, the first: %w", len(retried), len(items), retried[0])})
	}
}

// settle ends an item, or sends it again when Graph's answer is transient
// and the retry policy still allows it; it then returns the wait and the
// answer's error.
func (g *BatchGets) settle(ctx context.Context, it *batchGet, a BatchAnswer) (time.Duration, error) {
	if a.OK() || !transientStatus(a.Status) {
		it.done(BatchResult{Answer: a})
		return 0, nil
	}
	policy := g.client.Retry
	wait, ok := policy.next(it.attempts, a.Err, time.Since(it.first))
	if !ok {
		it.done(BatchResult{Err: fmt.Errorf("%s: %w after %d attempts in %s: %w", it.path, ErrBatchItemGaveUp,
			it.attempts, time.Since(it.first).Round(time.Millisecond), a.Err)})
		return 0, nil
	}
	retried := fmt.Errorf("%s: %w", it.path, a.Err)
	if ThrottledStatus(a.Status) && a.Err.HasRetryAfter && g.client.Throttle != nil {
		// The throttle holds every request for the Retry-After the answer
		// set (Client.Batch): the item goes first once it ends.
		g.push(it, true)
		return wait, retried
	}
	time.AfterFunc(wait, func() {
		if ctx.Err() == nil {
			g.push(it, true)
		}
	})
	return wait, retried
}
