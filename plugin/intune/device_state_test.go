package intune

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// savedDeviceState writes n devices with details, as a sync hands them on,
// into a state of the memory cache "mem" kept in small chunks, and
// returns the store, the ids in the order they were written, and the
// state loaded back (released when the test ends).
func savedDeviceState(t *testing.T, n int) (*stateStore, []string, *deviceState) {
	t.Helper()
	ctx := context.Background()
	store, err := newStateStore(memoryCacheResources(t), "mem", "devices", fingerprinter{})
	if err != nil {
		t.Fatal(err)
	}
	store.chunks.chunkBytes = 4096
	w := store.begin(ctx)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012x", i*7919%n, i)
		rec := detailsRecord{fetchedAt: 1_800_000_000 + int64(i), refreshAt: 1_800_600_000, trigger: uint64(i), selected: 5,
			values: []byte(fmt.Sprintf(`{"physicalMemoryInBytes":%d,"notes":"device %d"}`, (i+1)<<30, i))}
		if err := w.device(ctx, ids[i], uint64(i)*31, true, &rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.w.commit(ctx, snapshotKind, w.counts()); err != nil {
		t.Fatal(err)
	}
	state, _, err := store.load(ctx, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(state.release)
	return store, ids, state
}

// A sync reads the details it keeps as its pages come, in about the order
// the last sync wrote them: each chunk of values is read from the cache
// once, however many devices it holds.
func TestDeviceStateReadsEachChunkOfDetailsOnceInListOrder(t *testing.T) {
	const n = 3000
	ctx := context.Background()
	_, ids, state := savedDeviceState(t, n)
	if state.len() != n || state.detailsCount() != n {
		t.Fatalf("the state holds %d devices, %d with details; want %d of each", state.len(), state.detailsCount(), n)
	}
	chunks := len(state.values.sources)
	if chunks < 10 {
		t.Fatalf("%d chunks: the test needs the values spread over many", chunks)
	}
	for i, id := range ids {
		e := state.see(id)
		if e == nil || e.hash() != uint64(i)*31 {
			t.Fatalf("device %s: entry %+v, want hash %d", id, e, uint64(i)*31)
		}
		rec, ok, err := state.details(ctx, e)
		want := fmt.Sprintf(`{"physicalMemoryInBytes":%d,"notes":"device %d"}`, (i+1)<<30, i)
		if err != nil || !ok || string(rec.values) != want || rec.fetchedAt != 1_800_000_000+int64(i) || rec.trigger != uint64(i) || rec.selected != 5 {
			t.Fatalf("device %s: details %+v (%s), %v, %v; want %s", id, rec, rec.values, ok, err, want)
		}
	}
	if reads := state.values.reads.Load(); reads != int64(chunks) {
		t.Errorf("%d cache reads for %d chunks read in the order they were written", reads, chunks)
	}
	if _, ok, _ := state.details(ctx, nil); ok {
		t.Error("a device the state does not hold has details")
	}
}

// When a chunk the entries point into is written again between the load
// and the read (a later sync's save reusing a key), the values are not
// taken from it: the read fails, naming the key, and the caller fetches
// those details again. The other chunks still read.
func TestDeviceStateRefusesValuesFromAChunkThatChanged(t *testing.T) {
	const n = 2000
	ctx := context.Background()
	store, ids, state := savedDeviceState(t, n)
	changed := state.values.sources[1].key
	if err := cacheSet(ctx, store.res, store.cache, changed, []byte("another sync's chunk")); err != nil {
		t.Fatal(err)
	}
	var refused, read int
	for _, id := range ids {
		e, _ := state.find(id)
		_, ok, err := state.details(ctx, e)
		switch {
		case err != nil:
			if ok || e.source() != 1 || !strings.Contains(err.Error(), changed) {
				t.Fatalf("device %s (chunk %d): %v, ok %v", id, e.source(), err, ok)
			}
			refused++
		case e.source() == 1:
			t.Fatalf("device %s: values read from the chunk that changed", id)
		default:
			read++
		}
	}
	if refused == 0 || read != n-refused {
		t.Errorf("%d devices refused, %d read, of %d", refused, read, n)
	}
}
