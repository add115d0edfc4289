package intune

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// emitted is what one stream run handed downstream, by operation.
type emitted struct {
	byOp    map[string][]string // operation -> device ids (or sync ids for markers)
	bodies  map[string][]string // operation -> bodies
	order   []string            // operations in arrival order
	failure error
	logs    string
}

// runStateful runs a one-shot stream with a file-backed state cache in dir
// (so the state outlives the stream, as it outlives a process).
func runStateful(t *testing.T, inputConf, dir string) emitted {
	t.Helper()
	res := streamTest{input: inputConf + "\n  state_cache: state", caches: []string{fileCache("state", dir)}}.run(t)
	out := emitted{byOp: map[string][]string{}, bodies: map[string][]string{}, failure: res.failure, logs: res.logs.String()}
	for _, m := range res.got {
		var doc struct {
			ID     string `json:"id"`
			SyncID string `json:"sync_id"`
		}
		if err := json.Unmarshal(m.body, &doc); err != nil {
			t.Errorf("message is not JSON: %s", m.body)
		}
		key := m.meta[contract.Operation].(string)
		out.byOp[key] = append(out.byOp[key], doc.ID+doc.SyncID)
		out.bodies[key] = append(out.bodies[key], string(m.body))
		out.order = append(out.order, key)
	}
	return out
}

func ids(sim *graphsim.Server, indices []int) []string {
	var out []string
	for _, i := range indices {
		out = append(out, sim.DeviceID(i))
	}
	sort.Strings(out)
	return out
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func span(from, n, step int) []int {
	var out []int
	for i := 0; i < n; i++ {
		out = append(out, from+i*step)
	}
	return out
}

func TestEmitChangesSendsOnlyWhatChangedAndTombstonesForRemovals(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 5000, Seed: 41})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "", "  emit: changes")

	first := runStateful(t, conf, dir)
	if first.failure != nil || len(first.byOp[contract.OpUpsert]) != 5000 || len(first.byOp[contract.OpDelete]) != 0 {
		t.Fatalf("first sync: %d upserts, %d deletions, failure %v; want every device as new\n%s",
			len(first.byOp[contract.OpUpsert]), len(first.byOp[contract.OpDelete]), first.failure, first.logs)
	}

	changed, removed := span(3, 50, 97), span(10, 20, 241)
	touched := span(1, 200, 23) // check-ins only: lastSyncDateTime moves
	sim.Change(changed...)
	sim.Touch(touched...)
	sim.Remove(removed...)
	added := sim.Add(10)

	second := runStateful(t, conf, dir)
	if second.failure != nil {
		t.Fatalf("second sync failed: %v\n%s", second.failure, second.logs)
	}
	wantUpserts := append(ids(sim, changed), ids(sim, span(added, 10, 1))...)
	// A removed device may also have been changed: it is gone either way.
	var stillThere []string
	gone := map[string]bool{}
	for _, id := range ids(sim, removed) {
		gone[id] = true
	}
	for _, id := range wantUpserts {
		if !gone[id] {
			stillThere = append(stillThere, id)
		}
	}
	if got := sorted(second.byOp[contract.OpUpsert]); fmt.Sprint(got) != fmt.Sprint(sorted(stillThere)) {
		t.Errorf("second sync upserts %d devices, want the %d changed and added ones\n got %v\nwant %v", len(got), len(stillThere), got, sorted(stillThere))
	}
	if got := sorted(second.byOp[contract.OpDelete]); fmt.Sprint(got) != fmt.Sprint(ids(sim, removed)) {
		t.Errorf("second sync deletes %v, want %v", got, ids(sim, removed))
	}
	if len(stillThere) != 60 || len(second.byOp[contract.OpDelete]) != 20 {
		t.Errorf("%d upserts and %d deletions; the acceptance case is 60 and 20", len(second.byOp[contract.OpUpsert]), len(second.byOp[contract.OpDelete]))
	}
	for _, body := range second.bodies[contract.OpDelete] {
		var doc map[string]any
		_ = json.Unmarshal([]byte(body), &doc)
		if len(doc) != 2 || fmt.Sprint(doc["@removed"]) != "map[reason:deleted]" {
			t.Fatalf("tombstone body %s, want {\"id\":...,\"@removed\":{\"reason\":\"deleted\"}}", body)
		}
	}

	third := runStateful(t, conf, dir)
	if third.failure != nil || len(third.order) != 0 {
		t.Errorf("a sync with nothing changed emitted %v (failure %v)", third.order, third.failure)
	}
}

// emit: all sends every device and, with state, the deletions too.
func TestEmitAllWithStateSendsEverythingAndTombstones(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 800, Seed: 42, PageSize: 300})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "")
	if first := runStateful(t, conf, dir); len(first.byOp[contract.OpUpsert]) != 800 {
		t.Fatalf("first sync: %d upserts", len(first.byOp[contract.OpUpsert]))
	}
	sim.Remove(5, 6, 700)
	second := runStateful(t, conf, dir)
	if len(second.byOp[contract.OpUpsert]) != 797 || fmt.Sprint(sorted(second.byOp[contract.OpDelete])) != fmt.Sprint(ids(sim, []int{5, 6, 700})) {
		t.Errorf("%d upserts, deletions %v; want 797 and the 3 removed", len(second.byOp[contract.OpUpsert]), second.byOp[contract.OpDelete])
	}
}

// A sync that stops half-way names no deletion and leaves the snapshot; the
// next complete sync names them.
func TestInterruptedSyncNeverEmitsTombstones(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 3000, Seed: 43, PageSize: 500})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "", "  emit: changes",
		"  backoff:\n    initial_interval: 10ms\n    max_interval: 50ms\n    max_elapsed_time: 500ms")
	if first := runStateful(t, conf, dir); first.failure != nil || len(first.byOp[contract.OpUpsert]) != 3000 {
		t.Fatalf("first sync: %d upserts, failure %v", len(first.byOp[contract.OpUpsert]), first.failure)
	}
	removed := span(2, 20, 131)
	sim.Remove(removed...)
	sim.Change(2999)
	sim.SetFaults([]graphsim.Fault{{Page: 4, Kind: graphsim.Fault503}})

	broken := runStateful(t, conf, dir)
	if broken.failure == nil || !strings.Contains(broken.failure.Error(), "giving up") {
		t.Fatalf("the faulty sync did not fail as abandoned: %v", broken.failure)
	}
	if len(broken.byOp[contract.OpDelete]) != 0 {
		t.Fatalf("a sync that did not read every page emitted %d deletions", len(broken.byOp[contract.OpDelete]))
	}

	sim.SetFaults(nil)
	fixed := runStateful(t, conf, dir)
	if fixed.failure != nil || fmt.Sprint(sorted(fixed.byOp[contract.OpDelete])) != fmt.Sprint(ids(sim, removed)) {
		t.Fatalf("the next complete sync: deletions %v, failure %v; want the 20 removed", fixed.byOp[contract.OpDelete], fixed.failure)
	}
	if len(fixed.byOp[contract.OpUpsert]) != 1 || fixed.byOp[contract.OpUpsert][0] != sim.DeviceID(2999) {
		t.Errorf("upserts %v, want only the changed device", fixed.byOp[contract.OpUpsert])
	}
}

func TestSyncMarkersFrameTheSync(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 450, Seed: 44, PageSize: 200})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "", "  emit_sync_markers: true")
	runStateful(t, conf, dir)
	sim.Remove(0)
	out := runStateful(t, conf, dir)
	if len(out.order) != 449+1+2 || out.order[0] != contract.OpSyncStarted || out.order[len(out.order)-1] != contract.OpSyncCompleted {
		t.Fatalf("operations %d, first %s, last %s; want sync_started, 449 upserts, 1 delete, sync_completed",
			len(out.order), out.order[0], out.order[len(out.order)-1])
	}
	var marker struct {
		SyncID   string  `json:"sync_id"`
		Devices  int     `json:"devices"`
		Upserts  int     `json:"upserts"`
		Deletes  int     `json:"deletes"`
		Duration float64 `json:"duration_seconds"`
	}
	if err := json.Unmarshal([]byte(out.bodies[contract.OpSyncCompleted][0]), &marker); err != nil {
		t.Fatal(err)
	}
	if marker.SyncID == "" || marker.Devices != 449 || marker.Upserts != 449 || marker.Deletes != 1 || marker.Duration <= 0 {
		t.Errorf("sync_completed = %+v", marker)
	}
}

func TestStateSnapshotRoundTripsInChunksAndStaysSmall(t *testing.T) {
	ctx := context.Background()
	res := memoryCacheResources(t)
	t.Setenv(envStateChunkBytes, "1000000")
	store, err := newStateStore(res, "mem", "k", fingerprinter{})
	if err != nil {
		t.Fatal(err)
	}
	w := store.begin(ctx)
	for i := 0; i < 200000; i++ {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i)
		var rec *detailsRecord
		if i%10 == 0 {
			rec = &detailsRecord{fetchedAt: int64(i), selected: uint64(i % 3), values: []byte(fmt.Sprintf(`{"notes":"n%d"}`, i))}
		}
		if err := w.device(ctx, id, golden(i), true, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.device(ctx, "Not-A-GUID", 7, true, nil); err != nil {
		t.Fatal(err)
	}
	if !store.saveDelivered("s", w, nil, false) {
		t.Fatal("not saved")
	}
	raw, err := cacheGet(ctx, res, "mem", "k")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := decodeManifest(raw)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range m.chunks {
		total += c.size
		if c.size > 1000000+100 {
			t.Errorf("a chunk of %d bytes, over the chunk size", c.size)
		}
	}
	if len(m.chunks) < 5 || total > 6<<20 {
		t.Errorf("200,000 devices take %d bytes in %d chunks, want a few MB in several", total, len(m.chunks))
	}

	fresh, _ := newStateStore(res, "mem", "k", fingerprinter{})
	back, _, err := fresh.load(ctx, nil, nil)
	if err != nil || back.len() != 200001 || back.detailsCount() != 20000 {
		t.Fatalf("read back %d devices, err %v", back.len(), err)
	}
	defer back.release()
	if e, _ := back.find("0000002a-0000-4000-8000-00000000002a"); e == nil || !e.hasHash() || e.hash() != golden(42) || e.hasDetails() {
		t.Errorf("device 42: %+v", e)
	}
	if e, _ := back.find("Not-A-GUID"); e == nil || e.hash() != 7 {
		t.Errorf("text id: %+v", e)
	}
	for _, i := range []int{40, 199990, 0} {
		e, _ := back.find(fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i))
		rec, ok, err := back.details(ctx, e)
		if err != nil || !ok || rec.fetchedAt != int64(i) || rec.selected != uint64(i%3) || string(rec.values) != fmt.Sprintf(`{"notes":"n%d"}`, i) {
			t.Errorf("device %d's details: %+v %v %v", i, rec, ok, err)
		}
	}
}

func TestStateOfAnOlderReleaseIsReadAndReplaced(t *testing.T) {
	ctx := context.Background()
	res := memoryCacheResources(t)
	old := newSnapshot(0)
	old.put("0000002a-0000-4000-8000-00000000002a", 42)
	old.details = newDetailsSet(0)
	old.details.put("0000002a-0000-4000-8000-00000000002a", detailsRecord{fetchedAt: 5, values: []byte(`{"notes":"old"}`)})
	if err := cacheSet(ctx, res, "mem", "k", old.encode()); err != nil {
		t.Fatal(err)
	}
	store, _ := newStateStore(res, "mem", "k", fingerprinter{})
	back, _, err := store.load(ctx, nil, nil)
	if err != nil || back.len() != 1 {
		t.Fatalf("the single-value snapshot of an older release: %v", err)
	}
	e, _ := back.find("0000002a-0000-4000-8000-00000000002a")
	if rec, ok, err := back.details(ctx, e); err != nil || !ok || rec.fetchedAt != 5 || string(rec.values) != `{"notes":"old"}` {
		t.Errorf("its details: %+v %v %v", rec, ok, err)
	}
	back.release()

	// The format the release before this one wrote: chunks of hash and
	// details records of their own.
	legacyChunks := newChunkedState(res, "mem", "k3")
	lw := legacyChunks.begin(ctx)
	lw.buf = append(lw.buf, snapshotHashRecord)
	lw.buf = appendIDKey(lw.buf, [16]byte{1}, "")
	lw.buf = binary.LittleEndian.AppendUint64(lw.buf, 11)
	lw.buf = append(lw.buf, snapshotDetailsRecord)
	lw.buf = appendDetailsRecord(lw.buf, [16]byte{1}, "", detailsRecord{fetchedAt: 9, values: []byte(`{"udid":"u"}`)})
	if err := lw.commit(ctx, snapshotKind, []uint64{1, 1}); err != nil {
		t.Fatal(err)
	}
	store3, _ := newStateStore(res, "mem", "k3", fingerprinter{})
	back3, _, err := store3.load(ctx, nil, nil)
	if err != nil || back3.len() != 1 || back3.detailsCount() != 1 {
		t.Fatalf("the chunks of the release before: %v", err)
	}
	e, _ = back3.find(formatGUID([16]byte{1}))
	if rec, ok, err := back3.details(ctx, e); err != nil || !ok || e.hash() != 11 || string(rec.values) != `{"udid":"u"}` {
		t.Errorf("its device: %+v %+v %v %v", e, rec, ok, err)
	}
	back3.release()

	w := store.begin(ctx)
	if err := w.device(ctx, "0000002b-0000-4000-8000-00000000002b", 43, true, nil); err != nil {
		t.Fatal(err)
	}
	if !store.saveDelivered("s", w, nil, false) {
		t.Fatal("not saved")
	}
	fresh, _ := newStateStore(res, "mem", "k", fingerprinter{})
	back, _, err = fresh.load(ctx, nil, nil)
	if e, _ := back.find("0000002b-0000-4000-8000-00000000002b"); err != nil || back.len() != 1 || e == nil {
		t.Fatalf("after the first save: %d devices, %v", back.len(), err)
	}
	if _, err := decodeSnapshot(old.encode()[:30]); err == nil {
		t.Error("a truncated single-value snapshot decoded")
	}
}

func TestFingerprintIgnoresCheckInProperties(t *testing.T) {
	fp := fingerprinter{ignore: map[string]bool{"lastSyncDateTime": true}}
	a := []byte(`{"id":"0f0c1f5e-1111-4e2b-9a61-000000000001","deviceName":"PC","lastSyncDateTime":"2026-01-01T00:00:00Z"}`)
	b := []byte(`{"id":"0f0c1f5e-1111-4e2b-9a61-000000000001","deviceName":"PC","lastSyncDateTime":"2026-02-02T00:00:00Z"}`)
	c := []byte(`{"id":"0f0c1f5e-1111-4e2b-9a61-000000000001","deviceName":"PC2","lastSyncDateTime":"2026-02-02T00:00:00Z"}`)
	idA, ha, errA := fp.fingerprint(a)
	_, hb, _ := fp.fingerprint(b)
	_, hc, _ := fp.fingerprint(c)
	if errA != nil || idA != "0f0c1f5e-1111-4e2b-9a61-000000000001" || ha != hb || ha == hc {
		t.Errorf("id %q err %v; a==b %v (want true), a==c %v (want false)", idA, errA, ha == hb, ha == hc)
	}
	if _, _, err := fp.fingerprint([]byte(`{"deviceName":"no id"}`)); err == nil {
		t.Error("a device without an id was accepted")
	}
}

// golden spreads i over 64 bits (Fibonacci hashing), as a stand-in hash.
func golden(i int) uint64 { return uint64(i) * 0x9e3779b97f4a7c15 }
