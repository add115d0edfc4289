package intune

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/cespare/xxhash/v2"
)

// chunkedState keeps one snapshot in a cache as a generation of chunks,
// each a few MB, so that no value grows with the tenant past what every
// cache takes (PostgreSQL refuses a field over 1 GB, SQLite a value over
// 1,000,000,000 bytes, Redis over 512 MB), and a manifest that names them.
//
// The keys, for a state key K:
//
//   - K_<gen>_<n>: chunk n of generation gen, a run of whole records;
//   - K_head, then K: the manifest (format, generation, each chunk's
//     length and hash, the writer's counts), with its own hash.
//
// A save writes every chunk of a new generation, then the manifest, first
// to K_head then to K, then deletes the previous generation's chunks. The
// switch is the write of K_head: before it completes, a reader finds the
// previous manifest (K_head torn or old, K old) and its chunks, all still
// there; after, the new one. K is the same manifest again, so that a write
// cut short (the file cache writes in place) leaves one whole copy; and it
// is the key that releases before chunks kept their whole snapshot under,
// which a reader still takes when no manifest is there (legacy).
type chunkedState struct {
	res        *service.Resources
	cache      string
	key        string
	chunkBytes int

	mu       sync.Mutex
	reserved uint64 // the highest generation a writer of this process took
	// pins counts, by generation, the readers that will read its chunks
	// again (readPinned): a save leaves those chunks, and its manifest's
	// floor below them, for a later save to delete.
	pins map[uint64]int
}

// defaultChunkBytes is a chunk's size: small beside any cache's limit, few
// enough writes (100 for 100 MB) that each costs nothing, and small enough
// that the buffer a writer fills and the chunks a reader holds
// (valueReader) weigh little: at 4 MB, a 1,000,000-device sync peaked 25 MB
// higher.
const defaultChunkBytes = 1 << 20

// envStateChunkBytes sets another chunk size, for tests that want many.
const envStateChunkBytes = "INTUNE_STATE_CHUNK_BYTES"

func newChunkedState(res *service.Resources, cache, key string) *chunkedState {
	size := defaultChunkBytes
	if v, err := strconv.Atoi(os.Getenv(envStateChunkBytes)); err == nil && v > 0 {
		size = v
	}
	return &chunkedState{res: res, cache: cache, key: key, chunkBytes: size}
}

func (s *chunkedState) headKey() string { return s.key + "_head" }

func (s *chunkedState) chunkKey(gen uint64, n int) string {
	return s.key + "_" + strconv.FormatUint(gen, 10) + "_" + strconv.Itoa(n)
}

// stateManifest says what one saved generation is.
type stateManifest struct {
	kind   string   // whose snapshot: "devices", "apps"
	gen    uint64   // which generation of chunks
	floor  uint64   // the lowest generation whose chunks may be left
	counts []uint64 // the writer's own, to size what reads it
	chunks []chunkInfo
}

type chunkInfo struct {
	size int
	hash uint64
}

var stateManifestMagic = []byte("intune-state/3\n")

func (m *stateManifest) encode() []byte {
	out := append([]byte(nil), stateManifestMagic...)
	out = binary.AppendUvarint(out, uint64(len(m.kind)))
	out = append(out, m.kind...)
	out = binary.AppendUvarint(out, m.gen)
	out = binary.AppendUvarint(out, m.floor)
	out = binary.AppendUvarint(out, uint64(len(m.counts)))
	for _, c := range m.counts {
		out = binary.AppendUvarint(out, c)
	}
	out = binary.AppendUvarint(out, uint64(len(m.chunks)))
	for _, c := range m.chunks {
		out = binary.AppendUvarint(out, uint64(c.size))
		out = binary.LittleEndian.AppendUint64(out, c.hash)
	}
	return binary.LittleEndian.AppendUint64(out, xxhash.Sum64(out))
}

// decodeManifest reads a manifest; ok is false for a value that is not one
// (a release's single value, or nothing).
func decodeManifest(raw []byte) (m *stateManifest, ok bool, err error) {
	if !hasPrefix(raw, stateManifestMagic) {
		return nil, false, nil
	}
	if len(raw) < len(stateManifestMagic)+8 || xxhash.Sum64(raw[:len(raw)-8]) != binary.LittleEndian.Uint64(raw[len(raw)-8:]) {
		return nil, true, errors.New("the state manifest is damaged (its hash does not match)")
	}
	r := uvarintReader{b: raw[len(stateManifestMagic) : len(raw)-8]}
	m = &stateManifest{}
	m.kind = string(r.bytes())
	m.gen = r.uvarint()
	m.floor = r.uvarint()
	m.counts = make([]uint64, min(r.uvarint(), 64))
	for i := range m.counts {
		m.counts[i] = r.uvarint()
	}
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		size := r.uvarint()
		m.chunks = append(m.chunks, chunkInfo{size: int(size), hash: r.uint64()})
	}
	if r.err != nil || len(r.b) != 0 {
		return nil, true, errors.New("the state manifest is damaged")
	}
	return m, true, nil
}

// uvarintReader reads the fields of a record, remembering the first error.
type uvarintReader struct {
	b   []byte
	err error
}

func (r *uvarintReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, w := binary.Uvarint(r.b)
	if w <= 0 {
		r.err = errors.New("truncated")
		return 0
	}
	r.b = r.b[w:]
	return v
}

func (r *uvarintReader) uint64() uint64 {
	if r.err != nil || len(r.b) < 8 {
		r.err = errors.New("truncated")
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *uvarintReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errors.New("truncated")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// current is the manifest a reader takes: K_head's, or K's when K_head is
// torn or older; or, with no manifest anywhere, K's value as a release
// before this format left it (legacy, nil when there is none).
func (s *chunkedState) current(ctx context.Context) (m *stateManifest, legacy []byte, err error) {
	var best *stateManifest
	var firstErr error
	for _, key := range []string{s.headKey(), s.key} {
		raw, err := cacheGet(ctx, s.res, s.cache, key)
		if keyMissing(err) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading the state %q from cache %q: %w", key, s.cache, err)
		}
		m, isManifest, err := decodeManifest(raw)
		switch {
		case err != nil:
			firstErr = fmt.Errorf("state %q in cache %q: %w", key, s.cache, err)
		case isManifest:
			if best == nil || m.gen > best.gen {
				best = m
			}
		case key == s.key && best == nil:
			legacy = raw
		}
	}
	if best != nil {
		return best, nil, nil
	}
	if legacy == nil && firstErr != nil {
		return nil, nil, firstErr
	}
	return nil, legacy, nil
}

// read hands each chunk of the saved snapshot of kind to fn, in order,
// after checking its length and hash. It returns the manifest, or the
// legacy value, or neither on a first run.
func (s *chunkedState) read(ctx context.Context, kind string, fn func(m *stateManifest, chunk []byte) error) (*stateManifest, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readLocked(ctx, kind, func(m *stateManifest, _ int, chunk []byte) error { return fn(m, chunk) })
}

// readPinned reads as read does, giving fn each chunk's number too, and
// pins the generation it read: no save of this process deletes its chunks
// until unpin is called, so that what was read can be read again.
func (s *chunkedState) readPinned(ctx context.Context, kind string, fn func(m *stateManifest, n int, chunk []byte) error) (m *stateManifest, legacy []byte, unpin func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, legacy, err = s.readLocked(ctx, kind, fn)
	if err != nil || m == nil {
		return m, legacy, func() {}, err
	}
	if s.pins == nil {
		s.pins = map[uint64]int{}
	}
	s.pins[m.gen]++
	var once sync.Once
	return m, nil, func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.pins[m.gen]--; s.pins[m.gen] <= 0 {
				delete(s.pins, m.gen)
			}
		})
	}, nil
}

func (s *chunkedState) readLocked(ctx context.Context, kind string, fn func(m *stateManifest, n int, chunk []byte) error) (*stateManifest, []byte, error) {
	m, legacy, err := s.current(ctx)
	if err != nil || m == nil {
		return nil, legacy, err
	}
	if m.kind != kind {
		return nil, nil, fmt.Errorf("state %q in cache %q holds %s, not %s: is the cache key shared with another input?", s.key, s.cache, m.kind, kind)
	}
	for n, c := range m.chunks {
		key := s.chunkKey(m.gen, n)
		raw, err := cacheGet(ctx, s.res, s.cache, key)
		if keyMissing(err) {
			return nil, nil, fmt.Errorf("state %q in cache %q: chunk %d of %d (%q) is missing", s.key, s.cache, n+1, len(m.chunks), key)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading state chunk %q from cache %q: %w", key, s.cache, err)
		}
		if len(raw) != c.size || xxhash.Sum64(raw) != c.hash {
			return nil, nil, fmt.Errorf("state %q in cache %q: chunk %d of %d (%q) is damaged (%d bytes, %d expected, or its hash differs)", s.key, s.cache, n+1, len(m.chunks), key, len(raw), c.size)
		}
		if err := fn(m, n, raw); err != nil {
			return nil, nil, fmt.Errorf("state %q in cache %q, chunk %d: %w", s.key, s.cache, n+1, err)
		}
	}
	return m, nil, nil
}

// stateWriter writes one generation: records are appended to buf, and
// written as a chunk whenever it is full (endRecord). Only its owner uses
// it.
type stateWriter struct {
	s      *chunkedState
	gen    uint64
	buf    []byte
	chunks []chunkInfo
	err    error // the first write that failed: commit refuses then
}

// begin reserves a new generation, above the saved one and any other
// writer's of this process.
func (s *chunkedState) begin(ctx context.Context) *stateWriter {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, _, err := s.current(ctx); err == nil && m != nil {
		// A manifest that cannot be read is no generation to stay above:
		// commit checks again before it switches.
		s.reserved = max(s.reserved, m.gen)
	}
	s.reserved++
	return &stateWriter{s: s, gen: s.reserved, buf: make([]byte, 0, s.chunkBytes+s.chunkBytes/8)}
}

// endRecord ends a record appended to buf: a full buffer is written as
// the next chunk. A write that fails is kept for commit to report, and
// returned.
func (w *stateWriter) endRecord(ctx context.Context) error {
	if len(w.buf) < w.s.chunkBytes || w.err != nil {
		return w.err
	}
	return w.flush(ctx)
}

func (w *stateWriter) flush(ctx context.Context) error {
	if len(w.buf) == 0 || w.err != nil {
		return w.err
	}
	key := w.s.chunkKey(w.gen, len(w.chunks))
	if err := cacheSet(ctx, w.s.res, w.s.cache, key, w.buf); err != nil {
		w.err = fmt.Errorf("saving state chunk %q (%d bytes) to cache %q: %w", key, len(w.buf), w.s.cache, err)
		return w.err
	}
	w.chunks = append(w.chunks, chunkInfo{size: len(w.buf), hash: xxhash.Sum64(w.buf)})
	w.buf = w.buf[:0]
	return nil
}

// errStateOvertaken is commit's answer when a later sync's snapshot was
// saved first: the older one is dropped, not switched to.
var errStateOvertaken = errors.New("a later sync's state was saved first")

// commit writes what is left, switches the state to this generation, and
// deletes the chunks of every generation below it.
//
// Which generations may still have chunks: the manifest's floor says the
// lowest. A save writes the new manifest with the previous one's floor,
// deletes every generation from the floor up, and writes the manifest
// again with its own generation as the floor. A process killed while
// deleting leaves the old floor, and the next save deletes what is left.
func (w *stateWriter) commit(ctx context.Context, kind string, counts []uint64) error {
	if err := w.flush(ctx); err != nil {
		return err
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	old, _, _ := s.current(ctx)
	if old != nil && old.gen >= w.gen {
		w.deleteChunks(ctx, w.gen, 0, len(w.chunks))
		return errStateOvertaken
	}
	m := stateManifest{kind: kind, gen: w.gen, floor: w.gen, counts: counts, chunks: w.chunks}
	if old != nil {
		m.floor = min(old.floor, old.gen)
	}
	if err := s.writeManifest(ctx, &m); err != nil {
		return err
	}
	if m.floor == m.gen {
		w.deleteLeftovers(ctx, w.gen, len(w.chunks), len(w.chunks))
		return nil
	}
	floor := m.gen
	for gen := m.floor; gen < w.gen; gen++ {
		if s.pins[gen] > 0 {
			floor = min(floor, gen)
			continue
		}
		known := 0 // chunks known to be there: probing them is a read each
		if old != nil && gen == old.gen {
			known = len(old.chunks)
		}
		w.deleteLeftovers(ctx, gen, 0, known)
	}
	w.deleteLeftovers(ctx, w.gen, len(w.chunks), len(w.chunks))
	m.floor = floor
	// Written again only to raise the floor: if this fails, the next save
	// deletes the same generations again, and finds nothing.
	_ = s.writeManifest(ctx, &m)
	return nil
}

// writeManifest writes m to both its keys.
func (s *chunkedState) writeManifest(ctx context.Context, m *stateManifest) error {
	raw := m.encode()
	for _, key := range []string{s.headKey(), s.key} {
		if err := cacheSet(ctx, s.res, s.cache, key, raw); err != nil {
			return fmt.Errorf("saving the state manifest %q to cache %q: %w", key, s.cache, err)
		}
	}
	return nil
}

// deleteLeftovers deletes the chunks of gen from chunk keep up: those of
// a replaced generation (keep 0), or those a process killed while writing
// this generation left past the ones its manifest names. Chunks below
// known are there; past them, it reads until a chunk is missing. It
// deletes from the last down, so that whatever a kill leaves always
// starts at chunk keep, and is found again.
func (w *stateWriter) deleteLeftovers(ctx context.Context, gen uint64, keep, known int) {
	n := max(keep, known)
	for ; ; n++ {
		if _, err := cacheGet(ctx, w.s.res, w.s.cache, w.s.chunkKey(gen, n)); err != nil {
			break
		}
	}
	for n--; n >= keep; n-- {
		w.deleteChunks(ctx, gen, n, n+1)
	}
}

// abandon deletes what a writer wrote for a snapshot that will not be
// saved.
func (w *stateWriter) abandon(ctx context.Context) {
	w.deleteChunks(ctx, w.gen, 0, len(w.chunks))
}

// deleteChunks deletes chunks from..to-1 of gen. What cannot be deleted
// is left: no reader follows a chunk no manifest names.
func (w *stateWriter) deleteChunks(ctx context.Context, gen uint64, from, to int) {
	for n := from; n < to; n++ {
		_ = cacheDelete(ctx, w.s.res, w.s.cache, w.s.chunkKey(gen, n))
	}
}
