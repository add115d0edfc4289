package intune

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

// replayInput sends a message the outputs refused (a nack: the database is
// down, the broker restarting) again, until it is delivered or the stream
// stops, as auto_replay_nacks promises.
//
// It replaces Benthos v4.27's AutoRetryNacks, which wedges a pipeline whose
// output fails for a while: after a message's second retry its list sleeps
// (up to a second, per message) while holding the lock every acknowledgement
// needs (internal/autoretry, tryShift under Shift's lock), so once a batch of
// hundreds is nacked, acks queue behind sleeps and the pipeline crawls to a
// stop. Here nothing sleeps under the lock and acks never wait:
//
//   - one backoff for all messages, since a refusal is nearly always the
//     destination's state, not the message's: it starts at replayFirstWait,
//     doubles with each round of refusals up to replayMaxWait, and a
//     delivery resets it;
//   - refused messages go out again before any new one is read, and while
//     they wait for the backoff no new message is read once the destination
//     refuses everything (replayHoldAfter refusals in a row; an odd refused
//     device must not stall the sync): what is held while the destination
//     is away is bounded by what was in flight, never a growing backlog;
//   - the end of the input is passed on only when nothing is in flight or
//     waiting to be sent again, so a one-shot sync that met an outage still
//     delivers everything before the stream ends.
//
// Delivery is at least once: a message refused after the database applied
// it (a timeout on the commit) is written again, which the shipped outputs'
// upserts make harmless.
type replayInput struct {
	child   service.Input
	log     *service.Logger
	metrics *inputMetrics

	mu           sync.Mutex
	pending      []*sentMessage // refused, to send again, oldest first
	inFlight     int            // handed out, acknowledged neither way yet
	rounds       int            // rounds of refusals since the last delivery
	refusedInRow int            // refusals since the last delivery
	retryAt      time.Time      // no message is sent again before this
	reading      bool           // a read of the child is under way
	childDone    bool           // the child said ErrEndOfInput

	reads      chan childRead  // the child's next message (capacity 1)
	wake       chan struct{}   // an acknowledgement arrived (capacity 1)
	readCtx    context.Context // reads of the child; cancelled by Close
	readCancel context.CancelFunc
}

// The shared backoff between rounds of refusals.
const (
	replayFirstWait = 100 * time.Millisecond
	replayMaxWait   = 5 * time.Second
	replayHoldAfter = 8 // refusals in a row after which no new message is read until one is delivered
)

// sentMessage is a message as the child gave it (never mutated: each send
// is a copy) and the child's acknowledgement.
type sentMessage struct {
	msg *service.Message
	ack service.AckFunc
}

type childRead struct {
	sent *sentMessage
	err  error
}

func newReplayInput(child service.Input, log *service.Logger, metrics *inputMetrics) *replayInput {
	ctx, cancel := context.WithCancel(context.Background())
	return &replayInput{
		child: child, log: log, metrics: metrics,
		reads: make(chan childRead, 1), wake: make(chan struct{}, 1),
		readCtx: ctx, readCancel: cancel,
	}
}

func (r *replayInput) Connect(ctx context.Context) error {
	err := r.child.Connect(ctx)
	if errors.Is(err, service.ErrEndOfInput) {
		// Messages may still be in flight or waiting: Read ends the input
		// once they are delivered.
		r.mu.Lock()
		r.childDone = true
		r.mu.Unlock()
		return nil
	}
	return err
}

func (r *replayInput) Read(ctx context.Context) (*service.Message, service.AckFunc, error) {
	for {
		r.mu.Lock()
		wait := time.Until(r.retryAt)
		if len(r.pending) > 0 && wait > 0 && (r.refusedInRow >= replayHoldAfter || r.childDone) {
			r.mu.Unlock()
			if err := sleep(ctx, wait); err != nil {
				return nil, nil, err
			}
			continue
		}
		if len(r.pending) > 0 && wait <= 0 {
			sent := r.pending[0]
			r.pending = r.pending[1:]
			r.inFlight++
			r.mu.Unlock()
			r.metrics.replayed.Incr(1)
			return sent.msg.Copy(), r.acknowledge(sent), nil
		}
		if r.childDone {
			done := r.inFlight == 0
			r.mu.Unlock()
			if done {
				return nil, nil, service.ErrEndOfInput
			}
			if err := r.waitForAck(ctx); err != nil {
				return nil, nil, err
			}
			continue
		}
		if !r.reading {
			r.reading = true
			go r.readChild()
		}
		// A refused message waiting for its turn is sent when the turn comes,
		// even if the child's read is still waiting for Graph.
		turn := time.NewTimer(wait)
		if len(r.pending) == 0 {
			turn.Stop()
		}
		r.mu.Unlock()

		select {
		case <-turn.C:
		case res := <-r.reads:
			turn.Stop()
			r.mu.Lock()
			r.reading = false
			switch {
			case errors.Is(res.err, service.ErrEndOfInput):
				r.childDone = true
				r.mu.Unlock()
				continue
			case res.err != nil:
				r.mu.Unlock()
				return nil, nil, res.err
			}
			r.inFlight++
			r.mu.Unlock()
			return res.sent.msg.Copy(), r.acknowledge(res.sent), nil
		case <-r.wake:
			// A refusal may be waiting: look again. A read that completes
			// meanwhile waits in r.reads.
			turn.Stop()
		case <-ctx.Done():
			turn.Stop()
			return nil, nil, ctx.Err()
		}
	}
}

// readChild reads the child's next message in the background, so that Read
// can answer a refusal while the child waits for Graph's next page.
func (r *replayInput) readChild() {
	msg, ack, err := r.child.Read(r.readCtx)
	r.reads <- childRead{sent: &sentMessage{msg: msg, ack: ack}, err: err}
}

// acknowledge is the AckFunc of one send of sent: a delivery is passed on
// to the child, a refusal queues sent to be sent again.
func (r *replayInput) acknowledge(sent *sentMessage) service.AckFunc {
	var once atomic.Bool
	return func(ctx context.Context, err error) error {
		if once.Swap(true) {
			return nil // Benthos acknowledges once; a second call must not count twice
		}
		r.mu.Lock()
		r.inFlight--
		if err == nil {
			r.rounds, r.refusedInRow = 0, 0
			r.mu.Unlock()
			r.signal()
			return sent.ack(ctx, nil)
		}
		r.pending = append(r.pending, sent)
		r.refusedInRow++
		now := time.Now()
		newRound := !now.Before(r.retryAt)
		if newRound {
			r.rounds++
			r.retryAt = now.Add(replayWait(r.rounds))
		}
		waiting, wait := len(r.pending), time.Until(r.retryAt)
		r.mu.Unlock()
		if newRound {
			r.log.Warnf("The outputs refused a device (%v); %d waiting to be sent again in %s", err, waiting, wait.Round(time.Millisecond))
		}
		r.signal()
		return nil
	}
}

// replayWait is the pause before the n-th round of sending refused messages
// again.
func replayWait(n int) time.Duration {
	wait := replayFirstWait
	for i := 1; i < n && wait < replayMaxWait; i++ {
		wait *= 2
	}
	return min(wait, replayMaxWait)
}

func (r *replayInput) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *replayInput) waitForAck(ctx context.Context) error {
	select {
	case <-r.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *replayInput) Close(ctx context.Context) error {
	r.readCancel()
	return r.child.Close(ctx)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
