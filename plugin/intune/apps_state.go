package intune

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/benthosdev/benthos/v4/public/service"
)

// The apps input's snapshot in a chunked state (state_chunks.go): what the
// last complete sync emitted, as records of a kind byte and
//
//   - appsDefineApp, appsDefineDevice: an id (length-prefixed), which
//     gets the next index of its kind, counting from 0;
//   - appsAppRecord: an app's index (uvarint) and the hash of its message;
//   - appsPairRecord: a device's index, an app's index (uvarint each) and
//     the hash of the pair's message.
//
// An id is defined before a record uses it, and once, so a pair costs about
// 14 bytes (10 M pairs: about 140 MB, in 35 chunks). The manifest's counts
// are the apps defined, the devices defined, the app records and the pair
// records, so that a reader allocates once.
const (
	appsStateKind    = "apps"
	appsDefineApp    = 'a'
	appsDefineDevice = 'e'
	appsAppRecord    = 'A'
	appsPairRecord   = 'P'
)

// appsSnapshot is the last complete sync's apps and pairs, compact: each id
// once, and a pair as two indexes and a hash in one sorted slice (16 bytes
// a pair, 160 MB for 10 M), with a bit per entry that the sync running
// against it sets when it sees the entry again. What is unset at the end
// has left.
type appsSnapshot struct {
	apps      idTable
	appHash   []uint64
	appListed bitset // the app had a record, not only pairs
	devices   idTable
	pairs     []pairEntry // sorted by key, one per key

	appSeen  bitset
	pairSeen bitset
}

// pairEntry is a pair: its device's index in the high 32 bits of key, its
// app's in the low ones.
type pairEntry struct {
	key  uint64
	hash uint64
}

func pairKeyOf(device, app uint32) uint64 { return uint64(device)<<32 | uint64(app) }

type bitset []uint64

func newBitset(n int) bitset             { return make(bitset, (n+63)/64) }
func (b bitset) set(i int)               { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool          { return b[i/64]&(1<<(i%64)) != 0 }
func (b bitset) grow(n int) bitset       { return append(b, make(bitset, max(0, (n+63)/64-len(b)))...) }
func (s *appsSnapshot) pairCount() int   { return len(s.pairs) }
func (s *appsSnapshot) appCount() int    { return len(s.apps.ids) }
func (s *appsSnapshot) deviceCount() int { return len(s.devices.ids) }

func newAppsSnapshot(apps, devices, pairs int) *appsSnapshot {
	return &appsSnapshot{
		apps:    newIDTable(apps),
		appHash: make([]uint64, 0, apps),
		devices: newIDTable(devices),
		pairs:   make([]pairEntry, 0, pairs),
	}
}

// idTable numbers ids from 0 in the order they are defined.
type idTable struct {
	index map[string]uint32
	ids   []string
}

func newIDTable(capacity int) idTable {
	return idTable{index: make(map[string]uint32, capacity), ids: make([]string, 0, capacity)}
}

// define returns id's number, giving it the next one the first time
// (added).
func (t *idTable) define(id string) (i uint32, added bool) {
	if i, ok := t.index[id]; ok {
		return i, false
	}
	i = uint32(len(t.ids))
	t.index[id] = i
	t.ids = append(t.ids, id)
	return i, true
}

func (s *appsSnapshot) defineApp(id string) uint32 {
	i, added := s.apps.define(id)
	if added {
		s.appHash = append(s.appHash, 0)
	}
	return i
}

func (s *appsSnapshot) defineDevice(id string) uint32 {
	i, _ := s.devices.define(id)
	return i
}

// seal sorts the pairs, keeps one record of each (a sync emits a pair
// once), and readies the bits a sync sets.
func (s *appsSnapshot) seal() {
	slices.SortFunc(s.pairs, func(a, b pairEntry) int { return cmp.Compare(a.key, b.key) })
	kept := s.pairs[:0]
	for i, p := range s.pairs {
		if i > 0 && s.pairs[i-1].key == p.key {
			continue
		}
		kept = append(kept, p)
	}
	s.pairs = slices.Clip(kept)
	s.appListed = s.appListed.grow(len(s.apps.ids))
	s.appSeen = newBitset(len(s.apps.ids))
	s.pairSeen = newBitset(len(s.pairs))
}

// seeApp marks the app as seen again and tells whether its message is the
// same as the last complete sync's.
func (s *appsSnapshot) seeApp(appID string, hash uint64) (unchanged bool) {
	i, ok := s.apps.index[appID]
	if !ok || !s.appListed.has(int(i)) {
		return false
	}
	s.appSeen.set(int(i))
	return s.appHash[i] == hash
}

// seePair marks the pair as seen again and tells whether its message is
// the same as the last complete sync's.
func (s *appsSnapshot) seePair(deviceID, appID string, hash uint64) (unchanged bool) {
	d, ok := s.devices.index[deviceID]
	if !ok {
		return false
	}
	a, ok := s.apps.index[appID]
	if !ok {
		return false
	}
	key := pairKeyOf(d, a)
	i, found := slices.BinarySearchFunc(s.pairs, key, func(p pairEntry, k uint64) int { return cmp.Compare(p.key, k) })
	if !found {
		return false
	}
	s.pairSeen.set(i)
	return s.pairs[i].hash == hash
}

// eachUnseenPairWhere calls fn with each pair not seen again whose
// device's id device says true for (every one, device nil), in key order.
func (s *appsSnapshot) eachUnseenPairWhere(device func(id string) bool, fn func(deviceID, appID string) error) error {
	var take bitset // per device index, once asked
	if device != nil {
		take = newBitset(len(s.devices.ids))
		for i, id := range s.devices.ids {
			if device(id) {
				take.set(i)
			}
		}
	}
	for i, p := range s.pairs {
		d := int(p.key >> 32)
		if s.pairSeen.has(i) || take != nil && !take.has(d) {
			continue
		}
		if err := fn(s.devices.ids[d], s.apps.ids[uint32(p.key)]); err != nil {
			return err
		}
	}
	return nil
}

// eachUnseenPairOf calls fn with each pair of the device not seen again.
func (s *appsSnapshot) eachUnseenPairOf(deviceID string, fn func(deviceID, appID string) error) error {
	d, ok := s.devices.index[deviceID]
	if !ok {
		return nil
	}
	first := pairKeyOf(d, 0)
	i, _ := slices.BinarySearchFunc(s.pairs, first, func(p pairEntry, k uint64) int { return cmp.Compare(p.key, k) })
	for ; i < len(s.pairs) && s.pairs[i].key>>32 == uint64(d); i++ {
		if !s.pairSeen.has(i) {
			if err := fn(deviceID, s.apps.ids[uint32(s.pairs[i].key)]); err != nil {
				return err
			}
		}
	}
	return nil
}

// eachUnseenApp calls fn with each listed app not seen again.
func (s *appsSnapshot) eachUnseenApp(fn func(appID string) error) error {
	for i, id := range s.apps.ids {
		if s.appListed.has(i) && !s.appSeen.has(i) {
			if err := fn(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// readChunk adds one chunk's records to s.
func (s *appsSnapshot) readChunk(b []byte) error {
	r := uvarintReader{b: b}
	for n := 1; len(r.b) > 0 && r.err == nil; n++ {
		kind := r.b[0]
		r.b = r.b[1:]
		switch kind {
		case appsDefineApp:
			s.defineApp(string(r.bytes()))
		case appsDefineDevice:
			s.defineDevice(string(r.bytes()))
		case appsAppRecord:
			i, hash := r.uvarint(), r.uint64()
			if r.err == nil && i >= uint64(len(s.apps.ids)) {
				return fmt.Errorf("record %d: app %d is not defined", n, i)
			}
			if r.err == nil {
				s.appHash[i] = hash
				s.appListed = s.appListed.grow(int(i) + 1)
				s.appListed.set(int(i))
			}
		case appsPairRecord:
			d, a, hash := r.uvarint(), r.uvarint(), r.uint64()
			if r.err == nil && (d >= uint64(len(s.devices.ids)) || a >= uint64(len(s.apps.ids))) {
				return fmt.Errorf("record %d: device %d or app %d is not defined", n, d, a)
			}
			s.pairs = append(s.pairs, pairEntry{key: pairKeyOf(uint32(d), uint32(a)), hash: hash})
		default:
			return fmt.Errorf("record %d: an unknown kind %q", n, kind)
		}
		if r.err != nil {
			return fmt.Errorf("record %d: %w", n, r.err)
		}
	}
	return nil
}

// appsSnapshotFromLegacy converts the single-value snapshot of releases
// before the chunked state, which kept "app <id>" and "pair <device id>
// <app id>" as text keys.
func appsSnapshotFromLegacy(old *snapshot) (*appsSnapshot, error) {
	s := newAppsSnapshot(0, 0, old.len())
	var bad string
	old.hashes.each(func(g [16]byte, id string, hash uint64) {
		key := old.hashes.idOf(g, id)
		switch {
		case strings.HasPrefix(key, pairKeyPrefix):
			d, a, ok := strings.Cut(strings.TrimPrefix(key, pairKeyPrefix), " ")
			if !ok {
				bad = key
				return
			}
			s.pairs = append(s.pairs, pairEntry{key: pairKeyOf(s.defineDevice(d), s.defineApp(a)), hash: hash})
		case strings.HasPrefix(key, appKeyPrefix):
			i := s.defineApp(strings.TrimPrefix(key, appKeyPrefix))
			s.appHash[i] = hash
			s.appListed = s.appListed.grow(int(i) + 1)
			s.appListed.set(int(i))
		default:
			bad = key
		}
	})
	if bad != "" {
		return nil, fmt.Errorf("not an apps snapshot: key %.80q", bad)
	}
	s.seal()
	return s, nil
}

// The single-value snapshot of older releases: its keys.
const (
	appKeyPrefix  = "app "
	pairKeyPrefix = "pair "
)

// appsStateWriter writes a sync's apps and pairs as they are emitted, so
// that the sync holds its own snapshot nowhere but in the cache: its
// memory is the ids it defined, not the pairs.
type appsStateWriter struct {
	w       *stateWriter
	apps    idTable
	devices idTable
	counts  [4]uint64 // apps defined, devices defined, app records, pair records
}

func (w *appsStateWriter) appRef(id string) uint32 {
	return w.ref(&w.apps, appsDefineApp, id, &w.counts[0])
}

func (w *appsStateWriter) deviceRef(id string) uint32 {
	return w.ref(&w.devices, appsDefineDevice, id, &w.counts[1])
}

// ref is id's number in table, written as a record of kind the first time.
func (w *appsStateWriter) ref(table *idTable, kind byte, id string, defined *uint64) uint32 {
	i, added := table.define(id)
	if added {
		w.w.buf = append(w.w.buf, kind)
		w.w.buf = binary.AppendUvarint(w.w.buf, uint64(len(id)))
		w.w.buf = append(w.w.buf, id...)
		*defined++
	}
	return i
}

// app records an app's message.
func (w *appsStateWriter) app(ctx context.Context, appID string, hash uint64) error {
	a := w.appRef(appID)
	w.w.buf = append(w.w.buf, appsAppRecord)
	w.w.buf = binary.AppendUvarint(w.w.buf, uint64(a))
	w.w.buf = binary.LittleEndian.AppendUint64(w.w.buf, hash)
	w.counts[2]++
	return w.w.endRecord(ctx)
}

// pair records a pair's message.
func (w *appsStateWriter) pair(ctx context.Context, deviceID, appID string, hash uint64) error {
	d, a := w.deviceRef(deviceID), w.appRef(appID)
	w.w.buf = append(w.w.buf, appsPairRecord)
	w.w.buf = binary.AppendUvarint(w.w.buf, uint64(d))
	w.w.buf = binary.AppendUvarint(w.w.buf, uint64(a))
	w.w.buf = binary.LittleEndian.AppendUint64(w.w.buf, hash)
	w.counts[3]++
	return w.w.endRecord(ctx)
}

// appsStateStore keeps the apps input's snapshot in state_cache.
type appsStateStore struct {
	chunks *chunkedState
}

func newAppsStateStore(mgr *service.Resources, cache, key string) (*appsStateStore, error) {
	if cache == "" {
		return nil, nil
	}
	if !mgr.HasCache(cache) {
		return nil, fmt.Errorf("%s: cache resource %q is not defined", fieldStateCache, cache)
	}
	return &appsStateStore{chunks: newChunkedState(mgr, cache, key)}, nil
}

// previous reads the last complete sync's snapshot: nil on a first run.
func (s *appsStateStore) previous(ctx context.Context) (*appsSnapshot, error) {
	var snap *appsSnapshot
	_, legacy, err := s.chunks.read(ctx, appsStateKind, func(m *stateManifest, chunk []byte) error {
		if snap == nil {
			var c [4]uint64
			copy(c[:], m.counts)
			snap = newAppsSnapshot(int(min(c[0], 1<<24)), int(min(c[1], 1<<24)), int(min(c[3], 1<<30)))
		}
		return snap.readChunk(chunk)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the apps snapshot: %w", err)
	}
	if legacy != nil {
		old, err := decodeSnapshot(legacy)
		if err == nil {
			snap, err = appsSnapshotFromLegacy(old)
		}
		if err != nil {
			return nil, fmt.Errorf("apps snapshot %q in cache %q: %w", s.chunks.key, s.chunks.cache, err)
		}
		return snap, nil
	}
	if snap != nil {
		snap.seal()
	}
	return snap, nil
}

// begin starts the snapshot of a new sync.
func (s *appsStateStore) begin(ctx context.Context) *appsStateWriter {
	return &appsStateWriter{w: s.chunks.begin(ctx), apps: newIDTable(0), devices: newIDTable(0)}
}

// saveDelivered makes the snapshot w wrote the last complete sync's, once
// every message of the sync was acknowledged. A snapshot that cannot be
// saved is logged, and is the process' failure for a one-shot sync: the
// next sync would repeat this one's changes and deletions.
func (s *appsStateStore) saveDelivered(syncID string, w *appsStateWriter, log *service.Logger, oneShot bool) bool {
	ctx := context.Background()
	err := w.w.commit(ctx, appsStateKind, w.counts[:])
	if err == nil || errors.Is(err, errStateOvertaken) {
		return true
	}
	w.w.abandon(ctx)
	err = fmt.Errorf("sync %s delivered everything, but saving the apps snapshot %q to cache %q failed: %w; the next sync repeats its changes and deletions", syncID, s.chunks.key, s.chunks.cache, err)
	log.Errorf("%v", err)
	if oneShot {
		recordFailure(err)
	}
	return false
}
