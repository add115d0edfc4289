package intune

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"
)

// deviceState is what a sync compares with: each device the last complete
// sync delivered, with its content hash and where its details are, plus
// the details a sync that stopped since journaled. It is held compactly,
// 36 bytes a device (36 MB for 1,000,000), sorted by id, outside the Go
// heap where the system allows (offHeapEntries): the collector would
// otherwise let the heap grow to twice their size before it ran. The
// details themselves (clocks, trigger hash, values) stay in the cache and
// are read, a chunk at a time, when a page needs them (valueReader). A
// tenant's size costs memory only for its ids and hashes.
type deviceState struct {
	guids     []deviceEntry          // sorted by id
	freeGUIDs func()                 // gives guids' memory back
	other     map[string]deviceEntry // ids that are not GUIDs
	// seen marks what the running sync listed: guids by index, other by id.
	seen      bitset
	otherSeen map[string]bool
	values    *valueReader
	// release lets the state's generation go and frees its entries. No
	// entry may be read after it: the sync calls it once every goroutine
	// that reads the state has ended.
	release func()
}

// deviceEntry is one device of the state: no pointer (it lives outside
// the Go heap), 4-byte aligned.
type deviceEntry struct {
	g              [16]byte
	hashLo, hashHi uint32 // the content hash, with entryHasHash
	fetchedAt      uint32 // Unix seconds, as detailsRecord's: which of two records is newer
	// srcFlags is the number of the values source the details are in, and
	// the entry's flags in its top bits; off is where, in that source, the
	// details' fields start (appendDetailsFields).
	srcFlags uint32
	off      uint32
}

const (
	entryHasHash    = 1 << 31
	entryHasDetails = 1 << 30
	entrySourceMask = 1<<30 - 1
)

func (e *deviceEntry) hasHash() bool    { return e.srcFlags&entryHasHash != 0 }
func (e *deviceEntry) hasDetails() bool { return e.srcFlags&entryHasDetails != 0 }
func (e *deviceEntry) hash() uint64     { return uint64(e.hashHi)<<32 | uint64(e.hashLo) }
func (e *deviceEntry) source() uint32   { return e.srcFlags & entrySourceMask }

func (e *deviceEntry) setHash(h uint64) {
	e.hashLo, e.hashHi = uint32(h), uint32(h>>32)
	e.srcFlags |= entryHasHash
}

// emptyDeviceState is the state of a first sync: nothing known.
func emptyDeviceState() *deviceState {
	return &deviceState{other: map[string]deviceEntry{}, otherSeen: map[string]bool{}, values: &valueReader{},
		freeGUIDs: func() {}, release: func() {}}
}

// free gives the entries' memory back; the state holds none after it.
func (s *deviceState) free() {
	s.guids = nil
	s.freeGUIDs()
	s.freeGUIDs = func() {}
}

// len is the number of devices the last complete sync delivered.
func (s *deviceState) len() int { return s.count((*deviceEntry).hasHash) }

// detailsCount is the number of devices whose details are known.
func (s *deviceState) detailsCount() int { return s.count((*deviceEntry).hasDetails) }

func (s *deviceState) count(has func(*deviceEntry) bool) int {
	n := 0
	s.each(func(e *deviceEntry, _ string, _ bool) {
		if has(e) {
			n++
		}
	})
	return n
}

// find returns id's entry (nil when the state has none), and its place:
// an index in guids, or -1 for a text id.
func (s *deviceState) find(id string) (*deviceEntry, int) {
	if g, ok := parseGUID(id); ok {
		i, found := slices.BinarySearchFunc(s.guids, g, func(e deviceEntry, g [16]byte) int { return bytes.Compare(e.g[:], g[:]) })
		if !found {
			return nil, 0
		}
		return &s.guids[i], i
	}
	e, ok := s.other[id]
	if !ok {
		return nil, -1
	}
	return &e, -1
}

// see marks id as listed by the running sync, and returns its entry.
func (s *deviceState) see(id string) *deviceEntry {
	e, i := s.find(id)
	if e == nil {
		return nil
	}
	if i >= 0 {
		s.seen.set(i)
	} else {
		s.otherSeen[id] = true
	}
	return e
}

// each calls fn with every entry, its text id ("" for a GUID) and whether
// the running sync listed it.
func (s *deviceState) each(fn func(e *deviceEntry, id string, seen bool)) {
	for i := range s.guids {
		fn(&s.guids[i], "", s.seen.has(i))
	}
	for id, e := range s.other {
		fn(&e, id, s.otherSeen[id])
	}
}

// idOf is the text of an entry's id, as each gives it.
func idOf(e *deviceEntry, id string) string {
	if id == "" {
		return formatGUID(e.g)
	}
	return id
}

// details returns an entry's details record, read from the cache (its
// values a slice of what was read); false when it has none or they cannot
// be read (the caller fetches them again).
func (s *deviceState) details(ctx context.Context, e *deviceEntry) (detailsRecord, bool, error) {
	if e == nil || !e.hasDetails() {
		return detailsRecord{}, false, nil
	}
	data, err := s.values.read(ctx, e.source(), e.off)
	if err != nil {
		return detailsRecord{}, false, err
	}
	rec, _, err := readDetailsFields(data)
	if err != nil {
		return detailsRecord{}, false, fmt.Errorf("details at %d of %q: %w", e.off, s.values.key(e.source()), err)
	}
	return rec, true, nil
}

// deviceStateBuilder gathers a state's entries as the cache gives them,
// then sorts them and folds each device's into one (build).
type deviceStateBuilder struct {
	s           *deviceState
	entries     []deviceEntry // outside the Go heap (offHeapEntries)
	freeEntries func()
}

func newDeviceStateBuilder(capacity int) *deviceStateBuilder {
	entries, free := offHeapEntries(capacity)
	return &deviceStateBuilder{s: emptyDeviceState(), entries: entries, freeEntries: free}
}

// push appends e to the entries, moving them to a larger block when full.
func (b *deviceStateBuilder) push(e deviceEntry) {
	if len(b.entries) == cap(b.entries) {
		b.resize(max(2*cap(b.entries), 4096))
	}
	b.entries = append(b.entries, e)
}

// free gives back the entries gathered so far (a load that failed).
func (b *deviceStateBuilder) free() {
	b.entries = nil
	b.freeEntries()
	b.freeEntries = func() {}
}

// resize moves the entries to a block of room for n.
func (b *deviceStateBuilder) resize(n int) {
	moved, free := offHeapEntries(n)
	moved = append(moved, b.entries...)
	b.freeEntries()
	b.entries, b.freeEntries = moved, free
}

// source adds a value source and returns its number.
func (b *deviceStateBuilder) source(src valueSource) uint32 {
	b.s.values.sources = append(b.s.values.sources, src)
	return uint32(len(b.s.values.sources) - 1)
}

// add adds what one record says of a device: its hash (hasHash) and its
// details (rec non-nil, its fields at off in source src).
func (b *deviceStateBuilder) add(g [16]byte, id string, hash uint64, hasHash bool, rec *detailsRecord, src uint32, off int) error {
	e := deviceEntry{g: g}
	if hasHash {
		e.setHash(hash)
	}
	if rec != nil {
		if src > entrySourceMask || off < 0 || uint64(off) > 1<<32-1 {
			return fmt.Errorf("details at %d of values source %d: past what the state can address", off, src)
		}
		e.srcFlags |= entryHasDetails | src
		e.fetchedAt, e.off = clampSeconds(rec.fetchedAt), uint32(off)
	}
	if id == "" {
		b.push(e)
		return nil
	}
	old, ok := b.s.other[id]
	if ok {
		e = foldEntries(old, e)
	}
	b.s.other[id] = e
	return nil
}

func clampSeconds(t int64) uint32 { return uint32(min(max(t, 0), 1<<32-1)) }

// foldEntries is one device's entry from an earlier and a later record:
// the later hash, and the details fetched last (the later on a tie: a
// journal read after the snapshot that holds its records changes
// nothing).
func foldEntries(earlier, later deviceEntry) deviceEntry {
	out := earlier
	if later.hasHash() {
		out.setHash(later.hash())
	}
	if later.hasDetails() && (!earlier.hasDetails() || later.fetchedAt >= earlier.fetchedAt) {
		out.srcFlags = out.srcFlags&entryHasHash | later.srcFlags&^entryHasHash
		out.fetchedAt, out.off = later.fetchedAt, later.off
	}
	return out
}

// build sorts the entries by id and folds each device's into one.
func (b *deviceStateBuilder) build() *deviceState {
	slices.SortStableFunc(b.entries, func(x, y deviceEntry) int { return bytes.Compare(x.g[:], y.g[:]) })
	out := b.entries[:0]
	for _, e := range b.entries {
		if n := len(out); n > 0 && out[n-1].g == e.g {
			out[n-1] = foldEntries(out[n-1], e)
			continue
		}
		out = append(out, e)
	}
	b.entries = out
	if cap(out) > len(out)+len(out)/4+4096 {
		// Duplicates folded (an older release's records, or a journal), or
		// the counts promised more: the state is kept at its own size.
		b.resize(len(out))
	}
	b.s.guids, b.s.freeGUIDs = b.entries, b.freeEntries
	b.entries, b.freeEntries = nil, func() {}
	b.s.seen = newBitset(len(b.s.guids))
	return b.s
}

// The state's records in a chunk (state_chunks.go) are each a kind byte,
// then:
//
//   - deviceRecord: the id (appendIDKey), a flags byte (deviceRecordHash,
//     deviceRecordDetails), the 8-byte hash if it has one, and the
//     details if it has them (appendDetailsFields);
//   - snapshotHashRecord and snapshotDetailsRecord: what the release
//     before wrote, a device's hash and its details in records of their
//     own; still read.
//
// The manifest's counts are those of the three kinds: hash records,
// details records, device records.
const (
	deviceRecord        = 'D'
	deviceRecordHash    = 1 << 0
	deviceRecordDetails = 1 << 1
)

// addChunk adds the records of one chunk, source src.
func (b *deviceStateBuilder) addChunk(chunk []byte, src uint32) error {
	rest := chunk
	for n := 1; len(rest) > 0; n++ {
		if err := b.addRecord(chunk, &rest, src); err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
	}
	return nil
}

// addRecord adds the record *rest starts with, and moves *rest past it.
func (b *deviceStateBuilder) addRecord(chunk []byte, rest *[]byte, src uint32) error {
	kind := (*rest)[0]
	g, id, after, err := readIDKey((*rest)[1:])
	if err != nil {
		return err
	}
	hash, hasHash, hasDetails := uint64(0), false, false
	switch kind {
	case deviceRecord:
		if len(after) == 0 {
			return errors.New("truncated")
		}
		flags := after[0]
		after = after[1:]
		hasHash, hasDetails = flags&deviceRecordHash != 0, flags&deviceRecordDetails != 0
		if hasHash {
			if len(after) < 8 {
				return errors.New("truncated")
			}
			hash, after = binary.LittleEndian.Uint64(after), after[8:]
		}
	case snapshotHashRecord:
		if len(after) < 8 {
			return errors.New("truncated")
		}
		hash, hasHash, after = binary.LittleEndian.Uint64(after), true, after[8:]
	case snapshotDetailsRecord:
		hasDetails = true
	default:
		return fmt.Errorf("an unknown record kind %q", kind)
	}
	if !hasDetails {
		*rest = after
		return b.add(g, id, hash, hasHash, nil, src, 0)
	}
	off := len(chunk) - len(after)
	rec, after, err := readDetailsFields(after)
	if err != nil {
		return err
	}
	*rest = after
	return b.add(g, id, hash, hasHash, &rec, src, off)
}

// addJournalPiece adds the records of one journal piece, source src.
func (b *deviceStateBuilder) addJournalPiece(raw []byte, src uint32) error {
	if !hasPrefix(raw, detailsJournalMagic) {
		return errors.New("not a piece this input wrote")
	}
	rest := raw[len(detailsJournalMagic):]
	n, w := binary.Uvarint(rest)
	if w <= 0 {
		return errors.New("details are truncated")
	}
	rest = rest[w:]
	// Added once the whole piece reads: a piece cut short adds nothing.
	var records []detailsAt
	for i := uint64(0); i < n; i++ {
		g, id, fields, err := readIDKey(rest)
		var rec detailsRecord
		if err == nil {
			rec, rest, err = readDetailsFields(fields)
		}
		if err != nil {
			return fmt.Errorf("details record %d: %w", i+1, err)
		}
		records = append(records, detailsAt{g, id, rec, len(raw) - len(fields)})
	}
	if len(rest) > 0 {
		return errors.New("data after its records")
	}
	return b.addDetails(records, src)
}

// detailsAt is a device's details record whose fields start at off in
// their source.
type detailsAt struct {
	g   [16]byte
	id  string
	rec detailsRecord
	off int
}

// addDetails adds records, each's fields in source src.
func (b *deviceStateBuilder) addDetails(records []detailsAt, src uint32) error {
	for _, r := range records {
		if err := b.add(r.g, r.id, 0, false, &r.rec, src, r.off); err != nil {
			return err
		}
	}
	return nil
}

// addSnapshot adds a snapshot of the single-value format (an older
// release's). Its details are gathered into one source held in memory:
// that format was read whole anyway, and the first save replaces it.
func (b *deviceStateBuilder) addSnapshot(snap *snapshot) error {
	var err error
	snap.hashes.each(func(g [16]byte, id string, h uint64) {
		if err == nil {
			err = b.add(g, id, h, true, nil, 0, 0)
		}
	})
	if snap.details == nil || err != nil {
		return err
	}
	var data []byte
	var records []detailsAt
	snap.details.m.each(func(g [16]byte, id string, rec detailsRecord) {
		records = append(records, detailsAt{g, id, rec, len(data)})
		data = appendDetailsFields(data, rec)
	})
	return b.addDetails(records, b.source(valueSource{key: "(an older release's snapshot)", data: data}))
}

// valueSource is one cache value details' values are read from: a chunk
// of the state's generation, or a piece of journal. Its size and hash are
// checked on every read: a key written again since (a journal piece's
// number is used again once the journal is cleared) is not what the
// entries point into.
type valueSource struct {
	key  string
	size int
	hash uint64
	data []byte // held in memory (an older release's single value): not read again
}

// valueReader reads details' values from their sources, holding the last
// few it read: a sync lists its devices in about the order the last one
// wrote them, so each source is read about once.
type valueReader struct {
	fetch func(ctx context.Context, key string) ([]byte, error)

	mu      sync.Mutex
	sources []valueSource
	recent  []int // indexes in sources, most recent last
	held    map[int][]byte
	reads   atomic.Int64 // cache reads so far
}

// valueReaderHeld is how many sources a reader holds: 2 MB of 1 MB
// chunks. Reading in about the order of writing, a sync reads each chunk
// once with two (51 reads for 51 chunks of a 1,000,000-device state);
// each more held costs a chunk of memory.
const valueReaderHeld = 2

// read returns source src from off on.
func (r *valueReader) read(ctx context.Context, src, off uint32) ([]byte, error) {
	data, err := r.source(ctx, int(src))
	if err != nil {
		return nil, err
	}
	if uint64(off) >= uint64(len(data)) {
		return nil, fmt.Errorf("details at %d past the end of %q (%d bytes)", off, r.key(src), len(data))
	}
	return data[off:], nil
}

// key names source src in errors.
func (r *valueReader) key(src uint32) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if int(src) < len(r.sources) {
		return r.sources[src].key
	}
	return fmt.Sprintf("values source %d", src)
}

func (r *valueReader) source(ctx context.Context, i int) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if i >= len(r.sources) {
		return nil, fmt.Errorf("no values source %d", i)
	}
	src := r.sources[i]
	if src.data != nil {
		return src.data, nil
	}
	if data, ok := r.held[i]; ok {
		r.recent = append(slices.DeleteFunc(r.recent, func(j int) bool { return j == i }), i)
		return data, nil
	}
	data, err := r.fetch(ctx, src.key)
	r.reads.Add(1)
	if err != nil {
		return nil, fmt.Errorf("reading details' values from %q: %w", src.key, err)
	}
	if len(data) != src.size || xxhash.Sum64(data) != src.hash {
		return nil, fmt.Errorf("%q changed since the state was read (a sync that finished meanwhile replaced it)", src.key)
	}
	if r.held == nil {
		r.held = map[int][]byte{}
	}
	if len(r.recent) >= valueReaderHeld {
		delete(r.held, r.recent[0])
		r.recent = r.recent[1:]
	}
	r.held[i] = data
	r.recent = append(r.recent, i)
	return data, nil
}

// deviceStateWriter writes the running sync's state, a device record as
// each page is handed on, into a new generation (stateWriter).
type deviceStateWriter struct {
	w     *stateWriter
	count uint64
}

// device writes one device's record: its hash, when it has one, and its
// details, when rec is not nil.
func (w *deviceStateWriter) device(ctx context.Context, id string, hash uint64, hasHash bool, rec *detailsRecord) error {
	g, ok := parseGUID(id)
	text := id
	if ok {
		text = ""
	}
	var flags byte
	if hasHash {
		flags |= deviceRecordHash
	}
	if rec != nil {
		flags |= deviceRecordDetails
	}
	buf := append(w.w.buf, deviceRecord)
	buf = appendIDKey(buf, g, text)
	buf = append(buf, flags)
	if hasHash {
		buf = binary.LittleEndian.AppendUint64(buf, hash)
	}
	if rec != nil {
		buf = appendDetailsFields(buf, *rec)
	}
	w.w.buf = buf
	w.count++
	return w.w.endRecord(ctx)
}

func (w *deviceStateWriter) counts() []uint64 { return []uint64{0, 0, w.count} }
