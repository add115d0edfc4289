package intune

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

func TestMergeDetailsReplacesEveryPlaceholder(t *testing.T) {
	placeholders := map[string]bool{"physicalMemoryInBytes": true, "notes": true, "udid": true, "hardwareInformation": true}
	body := []byte(`{"id":"d1","deviceName":"PC \"one\"","physicalMemoryInBytes":0,"notes":null,"udid":null,"totalStorageSpaceInBytes":9007199254740993}`)
	for name, tc := range map[string]struct{ values, want string }{
		"fetched": {
			values: `{"physicalMemoryInBytes":17179869185,"notes":"line\nbreak \u00fc","hardwareInformation":{"tpmVersion":"2.0"}}`,
			want:   `{"id":"d1","deviceName":"PC \"one\"","physicalMemoryInBytes":17179869185,"notes":"line\nbreak \u00fc","udid":null,"totalStorageSpaceInBytes":9007199254740993,"hardwareInformation":{"tpmVersion":"2.0"}}`,
		},
		"none known": {
			want: `{"id":"d1","deviceName":"PC \"one\"","physicalMemoryInBytes":null,"notes":null,"udid":null,"totalStorageSpaceInBytes":9007199254740993}`,
		},
	} {
		var values []byte
		if tc.values != "" {
			values = []byte(tc.values)
		}
		got, err := mergeDetails([]byte("prefix"), body, values, placeholders)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != "prefix"+tc.want {
			t.Errorf("%s:\ngot  %s\nwant prefix%s", name, got, tc.want)
		}
		if !json.Valid(got[len("prefix"):]) {
			t.Errorf("%s: not JSON: %s", name, got)
		}
	}
	if _, err := mergeDetails(nil, []byte(`{"id":`), nil, placeholders); err == nil {
		t.Error("a truncated device was merged")
	}
}

func TestDetailsValuesKeepOnlyTheSelectedPropertiesExactly(t *testing.T) {
	answer := []byte(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#deviceManagement/managedDevices(physicalMemoryInBytes,notes)/$entity","id":"x","physicalMemoryInBytes":9007199254740993,"notes":"a\"b"}`)
	got, err := detailsValues(answer, []string{"physicalMemoryInBytes", "notes"})
	if err != nil || string(got) != `{"physicalMemoryInBytes":9007199254740993,"notes":"a\"b"}` {
		t.Errorf("got %s, %v", got, err)
	}
}

func TestScanDeviceHashesOnlyTheTriggers(t *testing.T) {
	triggers := map[string]bool{"osVersion": true}
	a := []byte(`{"id":"d1","osVersion":"10.0.1","lastSyncDateTime":"2026-01-01T00:00:00Z"}`)
	b := []byte(`{"id":"d1","osVersion":"10.0.1","lastSyncDateTime":"2026-02-01T00:00:00Z"}`)
	c := []byte(`{"id":"d1","osVersion":"10.0.2","lastSyncDateTime":"2026-02-01T00:00:00Z"}`)
	idA, ha, err := scanDevice(a, triggers)
	_, hb, _ := scanDevice(b, triggers)
	_, hc, _ := scanDevice(c, triggers)
	if err != nil || idA != "d1" || ha != hb || ha == hc {
		t.Errorf("id %q err %v; a==b %v (want true), a==c %v (want false)", idA, err, ha == hb, ha == hc)
	}
	if _, _, err := scanDevice([]byte(`{"osVersion":"1"}`), triggers); err == nil {
		t.Error("a device without an id was planned")
	}
}

// TestDetailsDueWhenNewChangedOrOld walks each reason a device's details
// are fetched again, and the ones that are not.
func TestDetailsDueWhenNewChangedOrOld(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	r := &detailsRun{conf: detailsConfig{maxAge: 7 * 24 * time.Hour}, selected: 1}
	fresh := detailsRecord{fetchedAt: now.Add(-time.Hour).Unix(), refreshAt: now.Add(time.Hour).Unix(), trigger: 9, selected: 1}
	stale := fresh
	stale.fetchedAt = now.Add(-8 * 24 * time.Hour).Unix()
	scheduled := fresh
	scheduled.refreshAt = now.Add(-time.Minute).Unix()
	otherProps := fresh
	otherProps.selected = 2
	state := stateWithDetails(map[string]detailsRecord{"fresh": fresh, "old": stale, "scheduled": scheduled, "other properties": otherProps})
	due := func(id string, trigger uint64) bool {
		e, _ := state.find(id)
		rec, known, err := state.details(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		return r.due(rec, known, trigger, now.Unix())
	}
	for id, want := range map[string]bool{"fresh": false, "new": true, "old": true, "scheduled": true, "other properties": true} {
		if got := due(id, 9); got != want {
			t.Errorf("%s: due %v, want %v", id, got, want)
		}
	}
	if !due("fresh", 10) {
		t.Error("a changed trigger did not make the details due")
	}
}

// TestFirstRefreshesAreSpreadEvenly: 100,000 devices fetched at once by a
// first sync; an hourly sync an hour later refreshes 1/168 of them (one
// hour of a week), within a handful, not by chance.
func TestFirstRefreshesAreSpreadEvenly(t *testing.T) {
	const n = 100000
	var spread atomic.Uint64
	r := &detailsRun{conf: detailsConfig{maxAge: 7 * 24 * time.Hour}, spread: &spread}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	perHour := make([]int, 7*24)
	for i := 0; i < n; i++ {
		at := r.refreshAfter(start, false)
		h := int(at.Sub(start) / time.Hour)
		if h < 0 || h >= len(perHour) {
			t.Fatalf("refresh %s after the fetch, outside max_age", at.Sub(start))
		}
		perHour[h]++
	}
	for h, got := range perHour {
		if want := n / len(perHour); got < want-3 || got > want+3 {
			t.Errorf("hour %d refreshes %d devices, want %d±3", h, got, want)
		}
	}
	if got := r.refreshAfter(start, true); got != start.Add(7*24*time.Hour) {
		t.Errorf("a refreshed device is next due at %s, want max_age later", got)
	}
}

func TestSnapshotV2HoldsDetailsAndReadsV1(t *testing.T) {
	s := newSnapshot(0)
	s.put("0000002a-0000-4000-8000-00000000002a", 42)
	s.put("Not-A-GUID", 7)
	s.details = newDetailsSet(0)
	rec := detailsRecord{fetchedAt: 1700000000, refreshAt: 1700600000, trigger: 3, selected: 4, values: []byte(`{"notes":"x"}`)}
	s.details.put("0000002a-0000-4000-8000-00000000002a", rec)
	s.details.put("Not-A-GUID", rec)
	back, err := decodeSnapshot(s.encode())
	if err != nil || back.len() != 2 || back.details == nil || back.details.len() != 2 {
		t.Fatalf("decoded %+v, %v", back, err)
	}
	got, ok := back.details.get("0000002a-0000-4000-8000-00000000002a")
	if !ok || got.fetchedAt != rec.fetchedAt || got.refreshAt != rec.refreshAt || got.trigger != 3 || got.selected != 4 || string(got.values) != `{"notes":"x"}` {
		t.Errorf("details record came back as %+v", got)
	}
	// What releases before details wrote.
	v1 := append([]byte("intune-snapshot/1\n"), 0)
	v1 = append(v1, make([]byte, 16)...)
	v1 = append(v1, 7, 0, 0, 0, 0, 0, 0, 0)
	v1 = append(v1, 1, 3, 'a', 'b', 'c', 9, 0, 0, 0, 0, 0, 0, 0)
	old, err := decodeSnapshot(v1)
	if err != nil || old.len() != 2 || old.details != nil {
		t.Fatalf("version 1: %+v, %v", old, err)
	}
	if h, ok := old.get("abc"); !ok || h != 9 {
		t.Errorf("version 1 text id: %d %v", h, ok)
	}
	if _, err := decodeSnapshot(s.encode()[:40]); err == nil {
		t.Error("a truncated snapshot decoded")
	}
}

// TestDetailsJournalPiecesAreReadBackAndCleared writes pieces to a memory
// cache, reads them into a set whose records are newer for one device,
// and clears them.
func TestDetailsJournalPiecesAreReadBackAndCleared(t *testing.T) {
	res := memoryCacheResources(t)
	state, err := newStateStore(res, "mem", "state", fingerprinter{})
	if err != nil {
		t.Fatal(err)
	}
	j := newDetailsJournal(state)
	ctx := context.Background()
	for piece := 0; piece < 3; piece++ {
		set := newDetailsSet(0)
		for i := 0; i < 5; i++ {
			set.put(fmt.Sprintf("dev-%d-%d", piece, i), detailsRecord{fetchedAt: int64(100 + piece), values: []byte(`{"notes":null}`)})
		}
		if err := j.write(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	into := newDeviceStateBuilder(0)
	newer := detailsRecord{fetchedAt: 500, values: []byte(`{"notes":"newer"}`)}
	src := into.source(valueSource{key: "memory", data: appendDetailsFields(nil, newer)})
	if err := into.add([16]byte{}, "dev-1-1", 0, false, &newer, src, 0); err != nil {
		t.Fatal(err)
	}
	reader := newDetailsJournal(state)
	n, err := reader.load(ctx, into, func(err error) { t.Errorf("a piece was skipped: %v", err) })
	loaded := builtState(into, res)
	if err != nil || n != 3 || loaded.detailsCount() != 15 {
		t.Fatalf("read %d pieces, %d records, %v", n, loaded.detailsCount(), err)
	}
	if rec, _ := knownDetails(t, loaded, "dev-1-1"); string(rec.values) != `{"notes":"newer"}` {
		t.Errorf("the journal overwrote a newer record: %s", rec.values)
	}
	if rec, _ := knownDetails(t, loaded, "dev-2-4"); rec.fetchedAt != 102 || string(rec.values) != `{"notes":null}` {
		t.Errorf("a journaled record came back as %+v", rec)
	}
	if err := reader.clear(ctx, 2); err != nil || reader.last() != 3 {
		t.Fatalf("cleared up to piece 2 of 3: %v, %d left", err, reader.last())
	}
	if err := reader.clear(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if n, err := newDetailsJournal(state).load(ctx, newDeviceStateBuilder(0), nil); err != nil || n != 0 {
		t.Errorf("after clear: %d pieces, %v", n, err)
	}
}

// memoryCacheResources are resources with one memory cache, "mem".
func memoryCacheResources(t *testing.T) *service.Resources {
	t.Helper()
	return service.MockResources(service.MockResourcesOptAddCache("mem"))
}

// BenchmarkMergeDetailsPerDevice is what every device now costs on its
// way out, details or not: one pass over its bytes that writes it with its
// placeholders replaced (here v1.0's, with a record of fetched values).
func BenchmarkMergeDetailsPerDevice(b *testing.B) {
	devices := benchDevices(1000)
	placeholders := map[string]bool{}
	for _, c := range schema.ListDefaults("v1.0") {
		placeholders[c.Property] = true
	}
	values := []byte(`{"iccid":null,"udid":null,"notes":"x","ethernetMacAddress":"F0CD6C17A896","physicalMemoryInBytes":17179869184,"enrollmentProfileName":null}`)
	buf := make([]byte, 0, 8<<10)
	size := 0
	for _, d := range devices {
		size += len(d)
	}
	b.SetBytes(int64(size / len(devices)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var err error
		if buf, err = mergeDetails(buf[:0], devices[i%len(devices)], values, placeholders); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDetailsJournalSkipsAPieceItCannotRead(t *testing.T) {
	res := memoryCacheResources(t)
	state, err := newStateStore(res, "mem", "state", fingerprinter{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	j := newDetailsJournal(state)
	for piece := 1; piece <= 3; piece++ {
		set := newDetailsSet(0)
		set.put(fmt.Sprintf("dev-%d", piece), detailsRecord{fetchedAt: 1, values: []byte(`{}`)})
		if err := j.write(ctx, set); err != nil {
			t.Fatal(err)
		}
	}
	// A kill while the file cache wrote piece 2 in place.
	if err := cacheSet(ctx, res, "mem", j.key(2), []byte("intune-details/1\n\x05")); err != nil {
		t.Fatal(err)
	}
	into := newDeviceStateBuilder(0)
	var skipped []error
	reader := newDetailsJournal(state)
	n, err := reader.load(ctx, into, func(err error) { skipped = append(skipped, err) })
	loaded := builtState(into, res)
	if err != nil || n != 3 || loaded.detailsCount() != 2 || len(skipped) != 1 || reader.last() != 3 {
		t.Fatalf("read %d pieces (%d records), skipped %v, %v; next piece %d", n, loaded.detailsCount(), skipped, err, reader.last()+1)
	}
	if _, ok := knownDetails(t, loaded, "dev-2"); ok {
		t.Error("the unreadable piece's record was read")
	}
}

// stateWithDetails is a state that knows recs, their values held in memory.
func stateWithDetails(recs map[string]detailsRecord) *deviceState {
	b := newDeviceStateBuilder(0)
	var data []byte
	offsets := map[string]int{}
	for id, rec := range recs {
		offsets[id] = len(data)
		data = appendDetailsFields(data, rec)
	}
	src := b.source(valueSource{key: "memory", data: data})
	for id, rec := range recs {
		g, ok := parseGUID(id)
		text := id
		if ok {
			text = ""
		}
		if err := b.add(g, text, 0, false, &rec, src, offsets[id]); err != nil {
			panic(err)
		}
	}
	return b.build()
}

// builtState is what b gathered, its values read from the cache "mem".
func builtState(b *deviceStateBuilder, res *service.Resources) *deviceState {
	s := b.build()
	s.values.fetch = func(ctx context.Context, key string) ([]byte, error) { return cacheGet(ctx, res, "mem", key) }
	return s
}

// knownDetails is what s knows of id's details.
func knownDetails(t *testing.T, s *deviceState, id string) (detailsRecord, bool) {
	t.Helper()
	e, _ := s.find(id)
	rec, ok, err := s.details(context.Background(), e)
	if err != nil {
		t.Fatalf("details of %s: %v", id, err)
	}
	return rec, ok
}
