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
// sync delivered, with its content hash and what is known of its details,
// plus the details a sync that stopped since journaled. It is held
// compactly, 56 bytes a device (56 MB for 1,000,000), sorted by id; the
// details' values stay in the cache, and are read, a chunk at a time,
// when a page needs them (valueReader). A tenant's size costs memory only
// for its ids, hashes and clocks.
type deviceState struct {
	guids []deviceEntry          // sorted by id
	other map[string]deviceEntry // ids that are not GUIDs
	// seen marks what the running sync listed: guids by index, other by id.
	seen      bitset
	otherSeen map[string]bool
	// selected are the selected-properties hashes entries name by index.
	selected []uint64
	values   *valueReader
	release  func() // lets the state's generation go
}

// deviceEntry is one device of the state.
type deviceEntry struct {
	g         [16]byte
	hash      uint64 // with hasHash
	trigger   uint64
	fetchedAt uint32 // Unix seconds, as detailsRecord's
	refreshAt uint32
	// src, off and n name where the details' values are: bytes off to
	// off+n of values source src.
	src, off, n uint32
	sel         uint16 // index in selected
	flags       uint8
}

const (
	entryHasHash    = 1 << 0
	entryHasDetails = 1 << 1
)

func (e *deviceEntry) hasHash() bool    { return e.flags&entryHasHash != 0 }
func (e *deviceEntry) hasDetails() bool { return e.flags&entryHasDetails != 0 }

// emptyDeviceState is the state of a first sync: nothing known.
func emptyDeviceState() *deviceState {
	return &deviceState{other: map[string]deviceEntry{}, otherSeen: map[string]bool{}, values: &valueReader{}, release: func() {}}
}

// len is the number of devices the last complete sync delivered.
func (s *deviceState) len() int {
	n := 0
	s.each(func(e *deviceEntry, _ string, _ bool) {
		if e.hasHash() {
			n++
		}
	})
	return n
}

// detailsCount is the number of devices whose details are known.
func (s *deviceState) detailsCount() int {
	n := 0
	s.each(func(e *deviceEntry, _ string, _ bool) {
		if e.hasDetails() {
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

// details returns an entry's details record, its values read from the
// cache; false when it has none or they cannot be read (the caller
// fetches them again).
func (s *deviceState) details(ctx context.Context, e *deviceEntry) (detailsRecord, bool, error) {
	if e == nil || !e.hasDetails() {
		return detailsRecord{}, false, nil
	}
	values, err := s.values.read(ctx, e.src, e.off, e.n)
	if err != nil {
		return detailsRecord{}, false, err
	}
	return detailsRecord{fetchedAt: int64(e.fetchedAt), refreshAt: int64(e.refreshAt), trigger: e.trigger,
		selected: s.selected[e.sel], values: values}, true, nil
}

// deviceStateBuilder gathers a state's entries as the cache gives them,
// then sorts them and folds each device's into one (build).
type deviceStateBuilder struct {
	s       *deviceState
	entries []deviceEntry
	sels    map[uint64]uint16
}

func newDeviceStateBuilder(capacity int) *deviceStateBuilder {
	return &deviceStateBuilder{s: emptyDeviceState(), entries: make([]deviceEntry, 0, capacity), sels: map[uint64]uint16{}}
}

// source adds a value source and returns its number.
func (b *deviceStateBuilder) source(src valueSource) uint32 {
	b.s.values.sources = append(b.s.values.sources, src)
	return uint32(len(b.s.values.sources) - 1)
}

// add adds what one record says of a device: its hash (hasHash) and its
// details (rec non-nil, values at off in source src).
func (b *deviceStateBuilder) add(g [16]byte, id string, hash uint64, hasHash bool, rec *detailsRecord, src uint32, off int) {
	e := deviceEntry{g: g, hash: hash}
	if hasHash {
		e.flags |= entryHasHash
	}
	if rec != nil {
		sel, ok := b.sels[rec.selected]
		if !ok {
			sel = uint16(len(b.s.selected))
			b.sels[rec.selected] = sel
			b.s.selected = append(b.s.selected, rec.selected)
		}
		e.flags |= entryHasDetails
		e.trigger, e.sel = rec.trigger, sel
		e.fetchedAt, e.refreshAt = clampSeconds(rec.fetchedAt), clampSeconds(rec.refreshAt)
		e.src, e.off, e.n = src, uint32(off), uint32(len(rec.values))
	}
	if id == "" {
		b.entries = append(b.entries, e)
		return
	}
	old, ok := b.s.other[id]
	if ok {
		e = foldEntries(old, e)
	}
	b.s.other[id] = e
}

func clampSeconds(t int64) uint32 { return uint32(min(max(t, 0), 1<<32-1)) }

// foldEntries is one device's entry from an earlier and a later record:
// the later hash, and the details fetched last (the later on a tie: a
// journal read after the snapshot that holds its records changes
// nothing).
func foldEntries(earlier, later deviceEntry) deviceEntry {
	out := earlier
	if later.hasHash() {
		out.hash = later.hash
		out.flags |= entryHasHash
	}
	if later.hasDetails() && (!earlier.hasDetails() || later.fetchedAt >= earlier.fetchedAt) {
		out.trigger, out.sel, out.fetchedAt, out.refreshAt = later.trigger, later.sel, later.fetchedAt, later.refreshAt
		out.src, out.off, out.n = later.src, later.off, later.n
		out.flags |= entryHasDetails
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
	if cap(out) > len(out)+len(out)/4+1024 {
		// Duplicates folded (an older release's records, or a journal):
		// the state is kept at its own size.
		out = slices.Clone(out)
	}
	b.s.guids = out
	b.s.seen = newBitset(len(out))
	return b.s
}

// The state's records in a chunk (state_chunks.go) are each a kind byte,
// then:
//
//   - deviceRecord: the id (appendIDKey), a flags byte (entryHasHash,
//     entryHasDetails), the 8-byte hash if it has one, and the details
//     if it has them (appendDetailsFields);
//   - snapshotHashRecord and snapshotDetailsRecord: what the release
//     before wrote, a device's hash and its details in records of their
//     own; still read.
//
// The manifest's counts are those of the three kinds: hash records,
// details records, device records.
const deviceRecord = 'D'

// addChunk adds the records of one chunk, source src.
func (b *deviceStateBuilder) addChunk(chunk []byte, src uint32) error {
	rest := chunk
	for n := 1; len(rest) > 0; n++ {
		kind := rest[0]
		var g [16]byte
		var id string
		var rec detailsRecord
		var err error
		switch kind {
		case deviceRecord:
			g, id, rest, err = readIDKey(rest[1:])
			if err != nil {
				break
			}
			if len(rest) == 0 {
				err = errors.New("truncated")
				break
			}
			flags := rest[0]
			rest = rest[1:]
			var hash uint64
			if flags&entryHasHash != 0 {
				if len(rest) < 8 {
					err = errors.New("truncated")
					break
				}
				hash, rest = binary.LittleEndian.Uint64(rest), rest[8:]
			}
			if flags&entryHasDetails == 0 {
				b.add(g, id, hash, flags&entryHasHash != 0, nil, src, 0)
				break
			}
			if rec, rest, err = readDetailsFields(rest); err == nil {
				b.add(g, id, hash, flags&entryHasHash != 0, &rec, src, valuesOffset(chunk, rest, rec.values))
			}
		case snapshotHashRecord:
			g, id, rest, err = readIDKey(rest[1:])
			if err == nil && len(rest) < 8 {
				err = errors.New("truncated")
			}
			if err == nil {
				b.add(g, id, binary.LittleEndian.Uint64(rest), true, nil, src, 0)
				rest = rest[8:]
			}
		case snapshotDetailsRecord:
			g, id, rec, rest, err = readDetailsRecord(rest[1:])
			if err == nil {
				b.add(g, id, 0, false, &rec, src, valuesOffset(chunk, rest, rec.values))
			}
		default:
			err = fmt.Errorf("an unknown record kind %q", kind)
		}
		if err != nil {
			return fmt.Errorf("record %d: %w", n, err)
		}
	}
	return nil
}

// valuesOffset is where values, the last field of the record that ends
// where rest starts, begins in whole.
func valuesOffset(whole, rest, values []byte) int { return len(whole) - len(rest) - len(values) }

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
	type added struct {
		g   [16]byte
		id  string
		rec detailsRecord
		off int
	}
	var records []added
	for i := uint64(0); i < n; i++ {
		g, id, rec, after, err := readDetailsRecord(rest)
		if err != nil {
			return fmt.Errorf("details record %d: %w", i+1, err)
		}
		records = append(records, added{g, id, rec, valuesOffset(raw, after, rec.values)})
		rest = after
	}
	if len(rest) > 0 {
		return errors.New("data after its records")
	}
	for _, r := range records {
		b.add(r.g, r.id, 0, false, &r.rec, src, r.off)
	}
	return nil
}

// addSnapshot adds a snapshot of the single-value format (an older
// release's). Its details' values are gathered into one source held in
// memory: that format was read whole anyway, and the first save replaces
// it.
func (b *deviceStateBuilder) addSnapshot(snap *snapshot) {
	snap.hashes.each(func(g [16]byte, id string, h uint64) { b.add(g, id, h, true, nil, 0, 0) })
	if snap.details == nil {
		return
	}
	var data []byte
	type added struct {
		g   [16]byte
		id  string
		rec detailsRecord
		off int
	}
	var records []added
	snap.details.m.each(func(g [16]byte, id string, rec detailsRecord) {
		records = append(records, added{g, id, rec, len(data)})
		data = append(data, rec.values...)
	})
	src := b.source(valueSource{key: "(an older release's snapshot)", data: append(data, 0)})
	for _, r := range records {
		b.add(r.g, r.id, 0, false, &r.rec, src, r.off)
	}
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

// valueReaderHeld is how many sources a reader holds: 16 MB of 4 MB
// chunks.
const valueReaderHeld = 4

// read returns n bytes at off in source src.
func (r *valueReader) read(ctx context.Context, src, off, n uint32) ([]byte, error) {
	data, err := r.source(ctx, int(src))
	if err != nil {
		return nil, err
	}
	end := uint64(off) + uint64(n)
	if end > uint64(len(data)) {
		return nil, fmt.Errorf("details at %d to %d past the end of %q (%d bytes)", off, end, r.sources[src].key, len(data))
	}
	return data[off:end:end], nil
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
		flags |= entryHasHash
	}
	if rec != nil {
		flags |= entryHasDetails
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
