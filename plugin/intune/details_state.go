package intune

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/cespare/xxhash/v2"
)

// detailsRecord is what the input keeps of one device's details.
type detailsRecord struct {
	fetchedAt int64  // when they were fetched, Unix seconds
	refreshAt int64  // when an age refresh is due, Unix seconds (see refreshAfter)
	trigger   uint64 // hash of the trigger properties' listed values when they were fetched
	selected  uint64 // hash of the properties the GET selected
	// values is the GET's answer without its annotations:
	// {"physicalMemoryInBytes":17179869184,"notes":null,...}, each value
	// exactly as Graph wrote it.
	values []byte
}

// detailsSet is what the input knows of its devices' details: read by the
// sync, written by the workers that fetch them.
type detailsSet struct {
	mu    sync.Mutex
	m     byID[detailsRecord]
	bytes int // of every record's values, for the encoding's size
}

func newDetailsSet(capacity int) *detailsSet {
	return &detailsSet{m: newByID[detailsRecord](capacity)}
}

func (d *detailsSet) get(id string) (detailsRecord, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m.get(id)
}

// put makes rec id's details: what was just fetched replaces what was
// known, whatever the clocks said then.
func (d *detailsSet) put(id string, rec detailsRecord) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old, _ := d.m.get(id)
	d.bytes += len(rec.values) - len(old.values)
	d.m.put(id, rec)
}

func (d *detailsSet) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m.len()
}

func (d *detailsSet) encodedSize() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return 10 + d.m.len()*60 + d.bytes
}

// appendRecords writes the set as the cache formats hold it: the count of
// records, then each record: its id (appendIDKey), fetchedAt and refreshAt
// (uvarint), trigger and selected (8 bytes each), and the length-prefixed
// values.
func (d *detailsSet) appendRecords(out []byte) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	out = binary.AppendUvarint(out, uint64(d.m.len()))
	d.m.each(func(g [16]byte, id string, rec detailsRecord) { out = appendDetailsRecord(out, g, id, rec) })
	return out
}

func appendDetailsRecord(out []byte, g [16]byte, id string, rec detailsRecord) []byte {
	return appendDetailsFields(appendIDKey(out, g, id), rec)
}

// appendDetailsFields writes a record's fields after its id.
func appendDetailsFields(out []byte, rec detailsRecord) []byte {
	out = binary.AppendUvarint(out, uint64(max(rec.fetchedAt, 0)))
	out = binary.AppendUvarint(out, uint64(max(rec.refreshAt, 0)))
	out = binary.LittleEndian.AppendUint64(out, rec.trigger)
	out = binary.LittleEndian.AppendUint64(out, rec.selected)
	out = binary.AppendUvarint(out, uint64(len(rec.values)))
	return append(out, rec.values...)
}

// readDetailsRecords reads what appendRecords wrote, and returns what
// follows it.
func readDetailsRecords(b []byte) (*detailsSet, []byte, error) {
	n, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, nil, errors.New("details are truncated")
	}
	b = b[w:]
	d := newDetailsSet(int(min(n, uint64(len(b)/40))))
	for i := uint64(0); i < n; i++ {
		g, id, rec, rest, err := readDetailsRecord(b)
		if err != nil {
			return nil, nil, fmt.Errorf("details record %d: %w", i+1, err)
		}
		d.m.put(d.m.idOf(g, id), rec)
		d.bytes += len(rec.values)
		b = rest
	}
	return d, b, nil
}

// readDetailsRecord reads one record appendDetailsRecord wrote. Its values
// are a slice of b.
func readDetailsRecord(b []byte) (g [16]byte, id string, rec detailsRecord, rest []byte, err error) {
	g, id, rest, err = readIDKey(b)
	if err != nil {
		return g, id, rec, nil, err
	}
	rec, rest, err = readDetailsFields(rest)
	return g, id, rec, rest, err
}

// readDetailsFields reads what appendDetailsFields wrote. The values are
// a slice of b.
func readDetailsFields(b []byte) (rec detailsRecord, rest []byte, err error) {
	r := uvarintReader{b: b}
	rec.fetchedAt, rec.refreshAt = int64(r.uvarint()), int64(r.uvarint())
	rec.trigger, rec.selected = r.uint64(), r.uint64()
	rec.values = r.bytes()
	if r.err != nil {
		return rec, nil, errors.New("truncated")
	}
	return rec, r.b, nil
}

// detailsJournal keeps the details fetched since the device state was
// last saved, in pieces of the state cache (keys prefix1, prefix2, ...),
// so that a sync stopped half-way (a crash, a kill, an error) does not
// fetch them again: each sync reads the state, then every piece. A
// delivered sync saves a state holding them all, then deletes the pieces,
// the last one first, so that the pieces left by a crash in between are
// always 1..k: read again, they change nothing (foldEntries keeps the
// details fetched last). The state's entries point into the pieces for
// their values (valueSource): a piece written again under the same key
// since is noticed by its size and hash, and those details fetched again.
type detailsJournal struct {
	res    *service.Resources
	cache  string
	prefix string
	mu     sync.Mutex
	next   int // the number of the next piece
}

// detailsJournalMagic starts every piece.
var detailsJournalMagic = []byte("intune-details/1\n")

func newDetailsJournal(state *stateStore) *detailsJournal {
	return &detailsJournal{res: state.res, cache: state.cache, prefix: state.key + "_details_", next: 1}
}

func (j *detailsJournal) key(n int) string { return j.prefix + strconv.Itoa(n) }

// load adds every piece to into, and says how many there were. A piece
// that cannot be read (the file cache writes in place: a kill can leave one
// cut short) is skipped and told to skip: the journal only saves GETs.
func (j *detailsJournal) load(ctx context.Context, into *deviceStateBuilder, skip func(error)) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	n := 1
	for ; ; n++ {
		key := j.key(n)
		raw, err := cacheGet(ctx, j.res, j.cache, key)
		if keyMissing(err) {
			break
		}
		if err != nil {
			return n - 1, fmt.Errorf("reading the details journal %q from cache %q: %w", key, j.cache, err)
		}
		src := into.source(valueSource{key: key, size: len(raw), hash: xxhash.Sum64(raw)})
		if err := into.addJournalPiece(raw, src); err != nil {
			skip(fmt.Errorf("details journal %q in cache %q: %w; skipped, its devices' details are fetched again", key, j.cache, err))
		}
	}
	j.next = n
	return n - 1, nil
}

// last is the number of the last piece written so far.
func (j *detailsJournal) last() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next - 1
}

// write adds a piece holding set.
func (j *detailsJournal) write(ctx context.Context, set *detailsSet) error {
	raw := set.appendRecords(append(make([]byte, 0, len(detailsJournalMagic)+set.encodedSize()), detailsJournalMagic...))
	j.mu.Lock()
	defer j.mu.Unlock()
	key := j.key(j.next)
	if err := cacheSet(ctx, j.res, j.cache, key, raw); err != nil {
		return fmt.Errorf("saving the details journal %q to cache %q: %w", key, j.cache, err)
	}
	j.next++
	return nil
}

// clear deletes every piece, the last one first, once a saved state
// holds pieces 1 to upTo. When more were written since (by the next sync,
// in interval mode), it deletes none: they stay for that sync's state
// to hold and its clear to delete, and read again they change nothing.
func (j *detailsJournal) clear(ctx context.Context, upTo int) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.next-1 > upTo {
		return nil
	}
	for ; j.next > 1; j.next-- {
		key := j.key(j.next - 1)
		if err := cacheDelete(ctx, j.res, j.cache, key); err != nil && !keyMissing(err) {
			return fmt.Errorf("deleting the details journal %q from cache %q: %w", key, j.cache, err)
		}
	}
	return nil
}

// journalEntry is one fetched record on its way to the journal.
type journalEntry struct {
	id  string
	rec detailsRecord
}

// journalWriter writes the records it is sent to the journal, a piece a
// second at most, so that a fetch never waits for the cache; stop writes
// what is left.
type journalWriter struct {
	journal *detailsJournal
	entries chan journalEntry
	done    chan struct{}
	warn    func(error)
}

func startJournalWriter(journal *detailsJournal, warn func(error)) *journalWriter {
	w := &journalWriter{journal: journal, entries: make(chan journalEntry, 4096), done: make(chan struct{}), warn: warn}
	go w.run()
	return w
}

func (w *journalWriter) run() {
	defer close(w.done)
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	piece := newDetailsSet(0)
	var once sync.Once
	flush := func() {
		if piece.len() == 0 {
			return
		}
		// The cache has its own timeouts; a journal that cannot be written
		// costs GETs after a crash, not data.
		if err := w.journal.write(context.Background(), piece); err != nil {
			once.Do(func() {
				w.warn(fmt.Errorf("%w; details fetched since the last saved state would be fetched again after a crash", err))
			})
		}
		piece = newDetailsSet(0)
	}
	for {
		select {
		case e, open := <-w.entries:
			if !open {
				flush()
				return
			}
			piece.put(e.id, e.rec)
			if piece.len() >= 1000 {
				flush()
			}
		case <-ticker.C:
			flush()
		}
	}
}

// stop writes what is left and waits for it. No entry may be sent after.
func (w *journalWriter) stop() {
	close(w.entries)
	<-w.done
}
