package intune

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"
)

// stateStore keeps the device state of the last complete sync in a
// Benthos cache: each sync reads it (load) and writes its own as it goes
// (begin), which replaces it once the sync is delivered (saveDelivered).
type stateStore struct {
	res    *service.Resources
	cache  string
	key    string
	fp     fingerprinter
	chunks *chunkedState
}

// newStateStore is the store of the state_cache named cache, keeping one
// query's state under key; nil when cache is empty.
func newStateStore(mgr *service.Resources, cache, key string, fp fingerprinter) (*stateStore, error) {
	if cache == "" {
		return nil, nil
	}
	if !mgr.HasCache(cache) {
		return nil, fmt.Errorf("%s: cache resource %q is not defined", fieldStateCache, cache)
	}
	return &stateStore{res: mgr, cache: cache, key: key, fp: fp, chunks: newChunkedState(mgr, cache, key)}, nil
}

// load reads the last complete sync's state, and then, with journal, the
// details a sync that stopped since journaled (how many pieces, too). No
// state (a first run) is not an error. The state's generation stays in
// the cache until release is called, for its details' values to be read.
func (s *stateStore) load(ctx context.Context, journal *detailsJournal, skip func(error)) (*deviceState, int, error) {
	var b *deviceStateBuilder
	m, legacy, unpin, err := s.chunks.readPinned(ctx, snapshotKind, func(m *stateManifest, n int, chunk []byte) error {
		if b == nil {
			var total uint64
			for _, c := range m.counts {
				total += c
			}
			b = newDeviceStateBuilder(int(min(total, 1<<26)))
		}
		src := b.source(valueSource{key: s.chunks.chunkKey(m.gen, n), size: m.chunks[n].size, hash: m.chunks[n].hash})
		return b.addChunk(chunk, src)
	})
	if b == nil {
		b = newDeviceStateBuilder(0)
	}
	fail := func(err error) (*deviceState, int, error) {
		unpin()
		b.free()
		return nil, 0, err
	}
	if err != nil {
		return fail(fmt.Errorf("reading the device state: %w", err))
	}
	if m == nil && legacy != nil {
		snap, err := decodeSnapshot(legacy)
		if err == nil {
			err = b.addSnapshot(snap)
		}
		if err != nil {
			return fail(fmt.Errorf("device snapshot %q in cache %q: %w", s.key, s.cache, err))
		}
	}
	pieces := 0
	if journal != nil {
		if pieces, err = journal.load(ctx, b, skip); err != nil {
			return fail(err)
		}
	}
	state := b.build()
	state.values.fetch = func(ctx context.Context, key string) ([]byte, error) { return cacheGet(ctx, s.res, s.cache, key) }
	state.release = sync.OnceFunc(func() {
		state.free()
		unpin()
	})
	return state, pieces, nil
}

// begin starts the state of a new sync.
func (s *stateStore) begin(ctx context.Context) *deviceStateWriter {
	return &deviceStateWriter{w: s.chunks.begin(ctx)}
}

// saveDelivered makes the state w wrote the last complete sync's, once
// every message of the sync was acknowledged. A state that cannot be
// saved is logged, and is the process' failure for a one-shot sync: the
// next sync would repeat this one's changes and deletions.
func (s *stateStore) saveDelivered(syncID string, w *deviceStateWriter, log *service.Logger, oneShot bool) bool {
	ctx := context.Background()
	err := w.w.commit(ctx, snapshotKind, w.counts())
	if err == nil || errors.Is(err, errStateOvertaken) {
		return true
	}
	w.w.abandon(ctx)
	err = fmt.Errorf("sync %s delivered everything, but saving the device state %q to cache %q failed: %w; the next sync repeats its changes and deletions", syncID, s.key, s.cache, err)
	log.Errorf("%v", err)
	if oneShot {
		recordFailure(err)
	}
	return false
}
