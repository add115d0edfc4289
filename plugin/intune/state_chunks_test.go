package intune

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"
)

// newTestChunkedState is a chunked state under key "k" of a memory cache
// "mem", in chunks of size bytes.
func newTestChunkedState(t *testing.T, size int) (*service.Resources, *chunkedState) {
	res := memoryCacheResources(t)
	s := newChunkedState(res, "mem", "k")
	s.chunkBytes = size
	return res, s
}

// saveRecords saves records as one generation of s, a record at a time.
func saveRecords(t *testing.T, s *chunkedState, records ...string) {
	t.Helper()
	ctx := context.Background()
	w := s.begin(ctx)
	for _, r := range records {
		w.buf = append(w.buf, r...)
		if err := w.endRecord(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.commit(ctx, "test", []uint64{uint64(len(records))}); err != nil {
		t.Fatal(err)
	}
}

// readAll is every chunk of the saved state, joined.
func readAll(t *testing.T, s *chunkedState) (string, []byte, error) {
	t.Helper()
	var all bytes.Buffer
	m, legacy, err := s.read(context.Background(), "test", func(_ *stateManifest, chunk []byte) error {
		all.Write(chunk)
		return nil
	})
	if m == nil && err == nil && legacy == nil && all.Len() != 0 {
		t.Fatal("chunks without a manifest")
	}
	return all.String(), legacy, err
}

// cacheHas tells whether the memory cache "mem" holds key.
func cacheHas(t *testing.T, res *service.Resources, key string) bool {
	t.Helper()
	_, err := cacheGet(context.Background(), res, "mem", key)
	if err != nil && !keyMissing(err) {
		t.Fatal(err)
	}
	return err == nil
}

func TestChunkedStateSavesInChunksAndDeletesThePreviousGeneration(t *testing.T) {
	res, s := newTestChunkedState(t, 10)
	first := []string{"aaaaaa", "bbbbbb", "cccccc", "dddddd", "e"}
	saveRecords(t, s, first...)
	got, _, err := readAll(t, s)
	if err != nil || got != strings.Join(first, "") {
		t.Fatalf("read %q, %v", got, err)
	}
	// Records are whole in a chunk: 12 bytes, 12 bytes, 7 bytes.
	if !cacheHas(t, res, "k_1_2") || cacheHas(t, res, "k_1_3") {
		t.Fatal("the first generation is not chunks 0..2")
	}
	saveRecords(t, s, "xxxxxxxxxxxx", "y")
	got, _, err = readAll(t, s)
	if err != nil || got != "xxxxxxxxxxxxy" {
		t.Fatalf("read %q, %v", got, err)
	}
	for n := 0; n < 3; n++ {
		if cacheHas(t, res, fmt.Sprintf("k_1_%d", n)) {
			t.Errorf("chunk %d of the replaced generation is still there", n)
		}
	}
}

func TestChunkedStateAWriteCutShortKeepsThePreviousSnapshot(t *testing.T) {
	ctx := context.Background()
	res, s := newTestChunkedState(t, 4)
	saveRecords(t, s, "old1", "old2")

	// A sync writes some chunks of the next generation, and the process
	// dies before the manifest: the previous snapshot is still whole.
	w := s.begin(ctx)
	w.buf = append(w.buf, "new1"...)
	if err := w.endRecord(ctx); err != nil {
		t.Fatal(err)
	}
	w.buf = append(w.buf, "new2"...)
	if err := w.endRecord(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := newChunkedState(res, "mem", "k")
	restarted.chunkBytes = 4
	if got, _, err := readAll(t, restarted); err != nil || got != "old1old2" {
		t.Fatalf("after a save cut short, read %q, %v", got, err)
	}
	// The next save takes the dead writer's generation and leaves none of
	// its chunks behind.
	saveRecords(t, restarted, "n")
	if got, _, err := readAll(t, restarted); err != nil || got != "n" {
		t.Fatalf("read %q, %v", got, err)
	}
	if cacheHas(t, res, "k_2_1") || cacheHas(t, res, "k_1_0") {
		t.Error("chunks of a dead writer or of the replaced generation are left")
	}
}

func TestChunkedStateReadsTheWholeManifestCopyWhenOneIsTorn(t *testing.T) {
	ctx := context.Background()
	res, s := newTestChunkedState(t, defaultChunkBytes)
	saveRecords(t, s, "one")
	w := s.begin(ctx)
	w.buf = append(w.buf, "two"...)
	if err := w.flush(ctx); err != nil {
		t.Fatal(err)
	}
	m := stateManifest{kind: "test", gen: w.gen, counts: []uint64{1}, chunks: w.chunks}
	raw := m.encode()

	// The file cache writes in place: a kill in the write of the first
	// copy leaves it cut short, and the previous manifest in the second.
	if err := cacheSet(ctx, res, "mem", "k_head", raw[:len(raw)/2]); err != nil {
		t.Fatal(err)
	}
	if got, _, err := readAll(t, s); err != nil || got != "one" {
		t.Fatalf("first copy torn: read %q, %v; want the previous snapshot", got, err)
	}
	// Cut short in the second copy: the first is whole, and the new one.
	if err := cacheSet(ctx, res, "mem", "k_head", raw); err != nil {
		t.Fatal(err)
	}
	if err := cacheSet(ctx, res, "mem", "k", raw[:10]); err != nil {
		t.Fatal(err)
	}
	if got, _, err := readAll(t, s); err != nil || got != "two" {
		t.Fatalf("second copy torn: read %q, %v; want the new snapshot", got, err)
	}
}

func TestChunkedStateRefusesAMissingOrDamagedChunk(t *testing.T) {
	ctx := context.Background()
	res, s := newTestChunkedState(t, 3)
	saveRecords(t, s, "abc", "def")
	if err := cacheSet(ctx, res, "mem", "k_1_1", []byte("deF")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readAll(t, s); err == nil || !strings.Contains(err.Error(), `chunk 2 of 2 ("k_1_1") is damaged`) {
		t.Errorf("a damaged chunk: %v", err)
	}
	if err := cacheDelete(ctx, res, "mem", "k_1_0"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := readAll(t, s); err == nil || !strings.Contains(err.Error(), `chunk 1 of 2 ("k_1_0") is missing`) {
		t.Errorf("a missing chunk: %v", err)
	}
}

func TestChunkedStateGivesTheLegacyValueUntilTheFirstSave(t *testing.T) {
	ctx := context.Background()
	res, s := newTestChunkedState(t, defaultChunkBytes)
	if err := cacheSet(ctx, res, "mem", "k", []byte("intune-snapshot/2\nold")); err != nil {
		t.Fatal(err)
	}
	if _, legacy, err := readAll(t, s); err != nil || string(legacy) != "intune-snapshot/2\nold" {
		t.Fatalf("legacy %q, %v", legacy, err)
	}
	saveRecords(t, s, "new")
	if got, legacy, err := readAll(t, s); err != nil || got != "new" || legacy != nil {
		t.Fatalf("after the first save: %q, legacy %q, %v", got, legacy, err)
	}
}

func TestChunkedStateKeepsTheLaterOfTwoOverlappingSaves(t *testing.T) {
	ctx := context.Background()
	_, s := newTestChunkedState(t, defaultChunkBytes)
	older, later := s.begin(ctx), s.begin(ctx)
	older.buf = append(older.buf, "older"...)
	later.buf = append(later.buf, "later"...)
	if err := later.commit(ctx, "test", nil); err != nil {
		t.Fatal(err)
	}
	if err := older.commit(ctx, "test", nil); !errors.Is(err, errStateOvertaken) {
		t.Fatalf("the older sync's save: %v, want it dropped", err)
	}
	if got, _, err := readAll(t, s); err != nil || got != "later" {
		t.Fatalf("read %q, %v", got, err)
	}
}

func TestChunkedStateRefusesAnotherInputsKind(t *testing.T) {
	_, s := newTestChunkedState(t, defaultChunkBytes)
	saveRecords(t, s, "x")
	_, _, err := s.read(context.Background(), "apps", func(*stateManifest, []byte) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "holds test, not apps") {
		t.Errorf("%v", err)
	}
}

func TestChunkedStateDeletesWhatADeletionCutShortLeft(t *testing.T) {
	ctx := context.Background()
	res, s := newTestChunkedState(t, 1)
	saveRecords(t, s, "a", "b", "c", "d")

	// The switch to generation 2, then a kill while generation 1's chunks
	// were deleted: the manifest still has floor 1, chunks 0 and 1 are
	// left.
	w := s.begin(ctx)
	w.buf = append(w.buf, "x"...)
	if err := w.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.writeManifest(ctx, &stateManifest{kind: "test", gen: w.gen, floor: 1, chunks: w.chunks}); err != nil {
		t.Fatal(err)
	}
	w.deleteChunks(ctx, 1, 2, 4)
	if got, _, err := readAll(t, s); err != nil || got != "x" {
		t.Fatalf("read %q, %v", got, err)
	}

	saveRecords(t, s, "y")
	for _, key := range []string{"k_1_0", "k_1_1", "k_2_0"} {
		if cacheHas(t, res, key) {
			t.Errorf("%s is left", key)
		}
	}
	raw, _ := cacheGet(ctx, res, "mem", "k")
	if m, _, err := decodeManifest(raw); err != nil || m.floor != m.gen {
		t.Errorf("the manifest after a complete clean-up: %+v, %v; want its floor raised to its generation", m, err)
	}
}

// A sync reads the state's details values again while it runs; a save by
// an overlapping sync (interval mode) must not delete the chunks it reads.
func TestChunkedStateKeepsAPinnedGenerationUntilItIsLetGo(t *testing.T) {
	ctx := context.Background()
	res, s := newTestChunkedState(t, 10)
	saveRecords(t, s, "first-1", "first-2", "first-3") // chunks k_1_0, k_1_1
	_, _, unpin, err := s.readPinned(ctx, "test", func(*stateManifest, int, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	saveRecords(t, s, "second")
	if !cacheHas(t, res, "k_1_0") || !cacheHas(t, res, "k_1_1") {
		t.Fatal("a save deleted the chunks of a generation a reader pinned")
	}
	if got, _, err := readAll(t, s); err != nil || got != "second" {
		t.Fatalf("read %q, %v: the pinned generation is not the current one", got, err)
	}
	unpin()
	unpin() // a second call changes nothing
	saveRecords(t, s, "third")
	for _, key := range []string{"k_1_0", "k_1_1", "k_2_0"} {
		if cacheHas(t, res, key) {
			t.Errorf("%s is still there once nothing pins it and a later save ran", key)
		}
	}
	if got, _, err := readAll(t, s); err != nil || got != "third" {
		t.Fatalf("read %q, %v", got, err)
	}
}
