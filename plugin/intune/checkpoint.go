package intune

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Jeffail/checkpoint"
	"github.com/benthosdev/benthos/v4/public/service"
)

// syncCursor is where a sync stands once every device of its first Page
// pages has been acknowledged by the outputs.
type syncCursor struct {
	SyncID    string `json:"sync_id"`
	StartedAt string `json:"sync_started_at"`
	// FirstURL identifies the listing (graph URL, version, select, filter,
	// page size): a cursor is only resumed by the same query.
	FirstURL string `json:"first_url"`
	// NextURL is the nextLink of page Page: where a resumed sync continues.
	// Empty once the last page was acknowledged.
	NextURL string `json:"next_url"`
	Page    int    `json:"page"`
	Devices int    `json:"devices"`
	// Strategy and LastUnit are where a sync of intune_detected_apps
	// stands: every app (per_app) or device (per_device) whose id sorts up
	// to LastUnit has had its pairs delivered.
	Strategy string `json:"strategy,omitempty"`
	LastUnit string `json:"last_unit,omitempty"`
	// Saved orders the two copies a store keeps (see checkpointStore): the
	// later one wins. Zero in a cursor an earlier release wrote.
	Saved int64 `json:"saved_unix_nano,omitempty"`
	// Final marks the empty cursor tracked after everything a sync emits:
	// once it is reached, the sync is delivered.
	Final bool `json:"-"`
}

// resumable tells a cursor a restart can continue from: a nextLink to read
// (devices) or a last unit delivered (apps).
func (c syncCursor) resumable() bool { return c.NextURL != "" || c.LastUnit != "" }

// checkpointStore keeps the cursor of one query in a Benthos cache, under
// two keys: K_head, written first, and K. A cache may tear a value when the
// process dies while writing it (Benthos' file cache truncates the file,
// then writes it: a SIGKILL in between leaves it empty), so a cursor is
// never only in the key being written; load takes the later of the copies
// that read whole. The state manifest does the same (state_chunks.go).
type checkpointStore struct {
	res   *service.Resources
	cache string
	key   string

	mu        sync.Mutex
	lastSaved int64
}

// newCheckpointStore is the store of the checkpoint_cache named cache,
// keeping one query's cursor under key; nil when cache is empty.
func newCheckpointStore(mgr *service.Resources, cache, key string) (*checkpointStore, error) {
	if cache == "" {
		return nil, nil
	}
	if !mgr.HasCache(cache) {
		return nil, fmt.Errorf("%s: cache resource %q is not defined", fieldCheckpointCache, cache)
	}
	return &checkpointStore{res: mgr, cache: cache, key: key}, nil
}

// keys are where the cursor is written, in the order of writing. K alone
// is where a release before the head key kept it.
func (s *checkpointStore) keys() [2]string { return [2]string{s.key + "_head", s.key} }

// load returns the stored cursor, or nil when there is none. A copy that
// does not decode (torn by a kill) is passed over while the other one
// reads; only when no copy does is it an error.
func (s *checkpointStore) load(ctx context.Context) (*syncCursor, error) {
	var best *syncCursor
	var firstErr error
	for _, key := range s.keys() {
		raw, err := cacheGet(ctx, s.res, s.cache, key)
		if keyMissing(err) {
			continue
		}
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("reading checkpoint %q from cache %q: %w", key, s.cache, err)
			}
			continue
		}
		var cur syncCursor
		if err := json.Unmarshal(raw, &cur); err != nil || cur.SyncID == "" || !cur.resumable() {
			if firstErr == nil {
				firstErr = fmt.Errorf("checkpoint %q in cache %q is not one this input wrote (%d bytes; a write cut short leaves it empty)", key, s.cache, len(raw))
			}
			continue
		}
		if best == nil || cur.Saved > best.Saved {
			best = &cur
		}
	}
	if best == nil {
		return nil, firstErr
	}
	s.mu.Lock()
	s.lastSaved = max(s.lastSaved, best.Saved)
	s.mu.Unlock()
	return best, nil
}

// save writes cur to both keys, head first: while one is being written,
// the other holds a whole cursor, this one's or the one before.
func (s *checkpointStore) save(ctx context.Context, cur syncCursor) error {
	s.mu.Lock()
	// Strictly increasing within a process, so two saves in the same
	// nanosecond (or a clock stepped back) still order.
	s.lastSaved = max(s.lastSaved+1, time.Now().UnixNano())
	cur.Saved = s.lastSaved
	s.mu.Unlock()
	raw, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	for _, key := range s.keys() {
		if err := cacheSet(ctx, s.res, s.cache, key, raw); err != nil {
			return fmt.Errorf("saving checkpoint %q to cache %q: %w", key, s.cache, err)
		}
	}
	return nil
}

// clear deletes both copies, K first: a kill in between leaves K_head
// alone, which a restart resumes, as it would have before the clear.
func (s *checkpointStore) clear(ctx context.Context) error {
	keys := s.keys()
	for _, key := range []string{keys[1], keys[0]} {
		err := cacheDelete(ctx, s.res, s.cache, key)
		if err != nil && !keyMissing(err) {
			return fmt.Errorf("deleting checkpoint %q from cache %q: %w", key, s.cache, err)
		}
	}
	return nil
}

// ackTracker turns the unordered acknowledgements of one sync's messages
// into an ordered cursor: a page counts as delivered only when all of its
// devices and every earlier page's devices were acknowledged (the pattern of
// Benthos' cockroachdb_changefeed input, with Jeffail/checkpoint). So a
// restart re-sends at most the pages that were in flight, never skips one.
type ackTracker struct {
	store    *checkpointStore // nil: checkpoints are disabled
	warn     func(error)
	complete func(syncCursor) // called once, when the last page is delivered

	mu      sync.Mutex
	pending *checkpoint.Uncapped[syncCursor]
	saved   int // highest page stored so far
}

func newAckTracker(store *checkpointStore, warn func(error), complete func(syncCursor)) *ackTracker {
	return &ackTracker{store: store, warn: warn, complete: complete, pending: checkpoint.NewUncapped[syncCursor]()}
}

// pageAcks counts down the acknowledgements of one page.
type pageAcks struct {
	tracker   *ackTracker
	remaining atomic.Int64
	resolve   func() *syncCursor
}

// track registers a page of n devices that ends at cur. A page without
// devices is delivered at once.
func (t *ackTracker) track(cur syncCursor, n int) *pageAcks {
	t.mu.Lock()
	p := &pageAcks{tracker: t, resolve: t.pending.Track(cur, 1)}
	t.mu.Unlock()
	p.remaining.Store(int64(n))
	if n == 0 {
		t.delivered(p)
	}
	return p
}

// ack is the AckFunc of each of the page's messages. Only a successful ack
// counts: an error is a message that did not reach the outputs, rejected
// with auto_replay_nacks off (with it on, replay.go passes on deliveries
// only, and a message still refused when the stream stops is never
// acknowledged). Its page then never
// counts as delivered, so a restart re-reads it: at least once, never lost.
func (p *pageAcks) ack(_ context.Context, err error) error {
	if err != nil {
		return nil
	}
	if p.remaining.Add(-1) == 0 {
		p.tracker.delivered(p)
	}
	return nil
}

// delivered moves the cursor forward when p completes a run of delivered
// pages, storing it under the lock so that stores never go backwards.
func (t *ackTracker) delivered(p *pageAcks) {
	t.mu.Lock()
	defer t.mu.Unlock()
	highest := p.resolve()
	if highest == nil || highest.Page <= t.saved {
		return
	}
	t.saved = highest.Page
	if t.store != nil {
		// Acks come from the outputs, which have no context for us; a cache
		// that hangs is bounded by its own timeouts.
		var err error
		switch {
		case highest.Final:
			err = t.store.clear(context.Background())
		case highest.resumable():
			err = t.store.save(context.Background(), *highest)
		}
		// Otherwise every page is delivered but the sync's deletions or
		// markers are not yet: a restart starts a new sync.
		if err != nil {
			t.warn(err)
		}
	}
	if highest.Final && t.complete != nil {
		t.complete(*highest)
	}
}
