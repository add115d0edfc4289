package intune

import (
	"context"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"
)

// batch is what a background sync hands to Read: a few messages' bodies
// that share their acknowledgement tracking.
type batch interface {
	size() int
}

func (p pageItem) size() int { return len(p.bodies) }
func (a appsItem) size() int { return len(a.bodies) }

// background is the plumbing both inputs share: Connect starts a sync
// goroutine that hands batches over an unbuffered channel (so at most one
// batch is fetched ahead), Read takes them one message at a time, Close
// stops the goroutine and waits for it.
type background[T batch] struct {
	connMu sync.Mutex
	items  chan T // closed when the sync goroutine is done
	cancel context.CancelFunc
	done   chan struct{}

	// Read's cursor into the current batch.
	readMu sync.Mutex
	cur    T
	next   int
}

// start runs run in its own goroutine, once. It does no network I/O
// itself: a wrong secret is a sync failure with a clear message, not a
// connection Benthos would retry forever.
func (b *background[T]) start(run func(ctx context.Context, items chan<- T, done chan<- struct{})) {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if b.items != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.items = make(chan T)
	b.cancel = cancel
	b.done = make(chan struct{})
	go run(ctx, b.items, b.done)
}

// read returns the current batch and the index of its next message,
// waiting for the next batch when the current one is drained.
func (b *background[T]) read(ctx context.Context, emit func(cur T, i int) (*service.Message, service.AckFunc)) (*service.Message, service.AckFunc, error) {
	b.connMu.Lock()
	items := b.items
	b.connMu.Unlock()
	if items == nil {
		return nil, nil, service.ErrNotConnected
	}
	b.readMu.Lock()
	defer b.readMu.Unlock()
	for b.next >= b.cur.size() {
		select {
		case item, open := <-items:
			if !open {
				return nil, nil, service.ErrEndOfInput
			}
			b.cur, b.next = item, 0
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	b.next++
	msg, ack := emit(b.cur, b.next-1)
	return msg, ack, nil
}

// stop ends the sync goroutine and waits for it, within ctx.
func (b *background[T]) stop(ctx context.Context) error {
	b.connMu.Lock()
	cancel, done := b.cancel, b.done
	b.connMu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// handOver gives item to Read, or returns interrupted() once ctx ends.
func handOver[T any](ctx context.Context, items chan<- T, item T, interrupted func() error) error {
	select {
	case items <- item:
		return nil
	case <-ctx.Done():
		return interrupted()
	}
}
