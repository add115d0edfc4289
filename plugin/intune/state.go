package intune

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"
)

// stateStore keeps the snapshot of the last complete sync in a Benthos cache
// and in memory between the syncs of one process.
type stateStore struct {
	res    *service.Resources
	cache  string
	key    string
	fp     fingerprinter
	chunks *chunkedState

	mu     sync.Mutex
	loaded bool
	last   *snapshot // nil: no complete sync yet
}

// newStateStore is the store of the state_cache named cache, keeping one
// query's snapshot under key; nil when cache is empty.
func newStateStore(mgr *service.Resources, cache, key string, fp fingerprinter) (*stateStore, error) {
	if cache == "" {
		return nil, nil
	}
	if !mgr.HasCache(cache) {
		return nil, fmt.Errorf("%s: cache resource %q is not defined", fieldStateCache, cache)
	}
	return &stateStore{res: mgr, cache: cache, key: key, fp: fp, chunks: newChunkedState(mgr, cache, key)}, nil
}

// previous returns the last complete sync's snapshot, reading the cache the
// first time. No snapshot (a first run) is not an error.
func (s *stateStore) previous(ctx context.Context) (*snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.loaded {
		return s.last, nil
	}
	var snap *snapshot
	_, legacy, err := s.chunks.read(ctx, snapshotKind, func(m *stateManifest, chunk []byte) error {
		if snap == nil {
			snap = newSnapshotFor(m)
		}
		return snap.readChunk(chunk)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the device snapshot: %w", err)
	}
	if legacy != nil {
		if snap, err = decodeSnapshot(legacy); err != nil {
			return nil, fmt.Errorf("device snapshot %q in cache %q: %w", s.key, s.cache, err)
		}
	}
	s.loaded, s.last = true, snap
	return snap, nil
}

// save makes snap the last complete sync's, in the cache first: the memory
// copy only moves once the cache holds it.
func (s *stateStore) save(ctx context.Context, snap *snapshot) error {
	w := s.chunks.begin(ctx)
	counts, err := snap.writeTo(ctx, w)
	if err == nil {
		err = w.commit(ctx, snapshotKind, counts)
	}
	if errors.Is(err, errStateOvertaken) {
		return nil
	}
	if err != nil {
		w.abandon(ctx)
		return fmt.Errorf("saving the device snapshot %q to cache %q: %w", s.key, s.cache, err)
	}
	s.mu.Lock()
	s.loaded, s.last = true, snap
	s.mu.Unlock()
	return nil
}

// saveDelivered saves the snapshot of a sync whose every message was
// acknowledged. A snapshot that cannot be saved is logged, and is the
// process' failure for a one-shot sync: the next sync would repeat this
// one's changes and deletions.
func (s *stateStore) saveDelivered(syncID string, snap *snapshot, log *service.Logger, oneShot bool) bool {
	err := s.save(context.Background(), snap)
	if err == nil {
		return true
	}
	err = fmt.Errorf("sync %s delivered everything, but %w; the next sync repeats its changes and deletions", syncID, err)
	log.Errorf("%v", err)
	if oneShot {
		recordFailure(err)
	}
	return false
}
