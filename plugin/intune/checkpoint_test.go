package intune

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// runWithCheckpoints runs the input with a file-backed checkpoint cache in
// dir. With stopAfter > 0 the stream is stopped, as a crash or a deploy
// would, once that many devices were consumed.
func runWithCheckpoints(t *testing.T, inputConf, dir string, stopAfter int) (ids []string, pages []int, syncIDs map[string]bool, logs string) {
	t.Helper()
	st := streamTest{input: inputConf + "\n  checkpoint_cache: checkpoints", caches: []string{fileCache("checkpoints", dir)}}
	if stopAfter > 0 {
		st.until = func(got []received) bool { return len(got) == stopAfter }
	}
	res := st.run(t)
	syncIDs = map[string]bool{}
	for _, m := range res.got {
		ids = append(ids, deviceID(t, m.body))
		pages = append(pages, m.meta[contract.Page].(int))
		syncIDs[m.meta[contract.SyncID].(string)] = true
	}
	return ids, pages, syncIDs, res.logs.String()
}

func TestRestartedSyncResumesAfterTheLastDeliveredPage(t *testing.T) {
	const devices, pageSize, stopAfter = 5000, 500, 1730
	sim, url := startSim(t, graphsim.Config{Devices: devices, Seed: 21, PageSize: pageSize})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "")

	first, _, firstSync, _ := runWithCheckpoints(t, conf, dir, stopAfter)
	if len(first) < stopAfter || len(first) >= devices {
		t.Fatalf("the first run consumed %d devices, want to stop mid-sync after %d", len(first), stopAfter)
	}
	if files, _ := os.ReadDir(dir); len(files) != 2 {
		t.Fatalf("checkpoint files after the stop: %d, want 2 (the cursor and its head copy)", len(files))
	}

	second, secondPages, secondSync, logs := runWithCheckpoints(t, conf, dir, 0)
	if SyncFailure() != nil {
		t.Fatalf("the resumed sync failed: %v\n%s", SyncFailure(), logs)
	}
	if fmt.Sprint(secondSync) != fmt.Sprint(firstSync) {
		t.Errorf("the resumed sync has id %v, want the interrupted one's %v", secondSync, firstSync)
	}
	delivered := len(first) / pageSize // pages fully consumed (and acknowledged) before the stop
	if secondPages[0] != delivered+1 {
		t.Errorf("the restart began at page %d, want %d (the page after the last delivered one)\n%s", secondPages[0], delivered+1, logs)
	}
	seen := map[string]int{}
	for _, id := range append(first, second...) {
		seen[id]++
	}
	repeated := 0
	for i := 0; i < devices; i++ {
		n := seen[sim.DeviceID(i)]
		if n == 0 {
			t.Fatalf("device %d was never delivered", i)
		}
		repeated += n - 1
	}
	if len(seen) != devices || repeated >= pageSize {
		t.Errorf("%d distinct devices (want %d), %d delivered twice (want less than one page of %d)", len(seen), devices, repeated, pageSize)
	}
	if !strings.Contains(logs, "resumes after page") {
		t.Errorf("no resume line in the logs:\n%s", logs)
	}

	// The completed sync deleted its checkpoint: the next one is new.
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("%d checkpoint files after a complete sync, want none", len(files))
	}
	third, thirdPages, thirdSync, _ := runWithCheckpoints(t, conf, dir, 0)
	if len(third) != devices || thirdPages[0] != 1 || thirdSync[first[0]] || fmt.Sprint(thirdSync) == fmt.Sprint(firstSync) {
		t.Errorf("after a complete sync: %d devices from page %d, sync %v; want all %d from page 1 in a new sync", len(third), thirdPages[0], thirdSync, devices)
	}
}

// A checkpoint whose nextLink Graph no longer accepts must not wedge the
// input: the sync starts over at page 1.
func TestUnusableCheckpointStartsOver(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 1200, PageSize: 500})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "")
	in, err := inputSpec().ParseYAML(strings.TrimPrefix(strings.ReplaceAll(conf, "\n  ", "\n"), "intune_managed_devices:\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := parseInputConfig(in)
	if err != nil {
		t.Fatal(err)
	}
	first := graph.ManagedDevicesURL(c.graphURL, c.query)
	key := storeKey(managedDevicesEntity.checkpointKeyPrefix, c.tenantID, first)
	stale := fmt.Sprintf(`{"sync_id":"old","sync_started_at":"2026-01-01T00:00:00Z","first_url":%q,"next_url":%q,"page":1,"devices":500}`,
		first, first+"?$skiptoken=not-a-token")
	if err := os.WriteFile(dir+"/"+key, []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	ids, pages, syncs, logs := runWithCheckpoints(t, conf, dir, 0)
	if SyncFailure() != nil || len(ids) != 1200 || pages[0] != 1 || syncs["old"] {
		t.Fatalf("failure %v, %d devices from page %d, syncs %v; want a new sync of all 1200\n%s", SyncFailure(), len(ids), pages[0], syncs, logs)
	}
	if !strings.Contains(logs, "refused the saved position") {
		t.Errorf("no warning about the refused checkpoint:\n%s", logs)
	}
}

// A process killed while the file cache rewrites a checkpoint leaves that
// copy empty (Benthos' file cache truncates, then writes): the restart
// resumes from the other copy instead of starting over at page 1, which is
// what CI once saw (1,400 of 3,000 devices delivered twice).
func TestTornCheckpointCopyResumesFromTheOther(t *testing.T) {
	ctx := context.Background()
	res := service.MockResources(service.MockResourcesOptAddCache("mem"))
	store, err := newCheckpointStore(res, "mem", "cp")
	if err != nil {
		t.Fatal(err)
	}
	cursor := func(page int) syncCursor {
		return syncCursor{SyncID: "s", FirstURL: "first", NextURL: fmt.Sprintf("next%d", page), Page: page, Devices: 200 * page}
	}
	set := func(key, value string) {
		t.Helper()
		if err := cacheSet(ctx, res, "mem", key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	wantPage := func(what string, page int) {
		t.Helper()
		cur, err := store.load(ctx)
		if err != nil || cur == nil || cur.Page != page {
			t.Fatalf("%s: loaded %+v, %v; want page %d", what, cur, err, page)
		}
	}

	if err := store.save(ctx, cursor(3)); err != nil {
		t.Fatal(err)
	}
	wantPage("both copies whole", 3)

	set("cp", "") // killed while writing the second copy of page 3's cursor
	wantPage("the plain key torn", 3)

	older, _ := cacheGet(ctx, res, "mem", "cp_head")
	if err := store.save(ctx, cursor(4)); err != nil {
		t.Fatal(err)
	}
	set("cp", string(older)) // killed before the second copy of page 4 was written
	wantPage("the plain key one save behind", 4)

	if err := store.save(ctx, cursor(5)); err != nil {
		t.Fatal(err)
	}
	set("cp_head", "") // killed while writing the head copy of the save after page 5's
	wantPage("the head torn", 5)

	set("cp", "")
	if cur, err := store.load(ctx); err == nil || !strings.Contains(err.Error(), `"cp_head"`) {
		t.Fatalf("both copies torn: loaded %+v, %v; want an error naming the checkpoint", cur, err)
	}

	// A release before the head key wrote only "cp", without a save time.
	if err := store.clear(ctx); err != nil {
		t.Fatal(err)
	}
	set("cp", `{"sync_id":"old","first_url":"first","next_url":"next7","page":7,"devices":1400}`)
	wantPage("an earlier release's checkpoint", 7)
	if err := store.save(ctx, cursor(8)); err != nil {
		t.Fatal(err)
	}
	wantPage("saved over an earlier release's checkpoint", 8)

	if err := store.clear(ctx); err != nil {
		t.Fatal(err)
	}
	if cur, err := store.load(ctx); cur != nil || err != nil {
		t.Fatalf("after clear: %+v, %v; want no checkpoint", cur, err)
	}
}

// A sync resumed from a checkpoint did not list, in this process, the
// pages before it: it lists every device's id again at its end, so that a
// device retired in the meantime is named deleted whichever page it was on,
// and no device that is still there.
func TestResumedSyncNamesTheDeletionsOfThePagesItDidNotRead(t *testing.T) {
	const devices, pageSize, stopAfter = 3000, 500, 1730
	sim, url := startSim(t, graphsim.Config{Devices: devices, Seed: 23, PageSize: pageSize})
	checkpoints, state := t.TempDir(), t.TempDir()
	st := streamTest{
		input:  inputYAML(sim, url, "") + "\n  checkpoint_cache: checkpoints\n  state_cache: state",
		caches: []string{fileCache("checkpoints", checkpoints), fileCache("state", state)},
	}
	if res := st.run(t); res.failure != nil || len(res.got) != devices {
		t.Fatalf("first sync: %d messages, %v", len(res.got), res.failure)
	}
	retired := []int{3, 10, 2900} // on the first page, and on the last
	sim.Remove(retired...)
	stopping := st
	stopping.until = func(got []received) bool { return len(got) == stopAfter }
	if res := stopping.run(t); len(res.got) < stopAfter {
		t.Fatalf("the interrupted sync emitted %d messages", len(res.got))
	}
	res := st.run(t)
	if res.failure != nil || !strings.Contains(res.logs.String(), "resumes after page") {
		t.Fatalf("the second run did not resume: %v\n%s", res.failure, res.logs)
	}
	deletedBy := func(got []received) map[string]bool {
		deleted := map[string]bool{}
		for _, m := range got {
			if m.meta[contract.Operation] == contract.OpDelete {
				deleted[m.meta[contract.DeviceID].(string)] = true
			}
		}
		return deleted
	}
	deleted := deletedBy(res.got)
	if len(deleted) != len(retired) {
		t.Fatalf("the resumed sync deleted %d devices, want %d: %v\n%s", len(deleted), len(retired), deleted, res.logs)
	}
	for _, i := range retired {
		if !deleted[sim.DeviceID(i)] {
			t.Errorf("retired device %d is not named deleted", i)
		}
	}
	// The next complete sync lists every device, and names no device that
	// is still there deleted (the retired ones at most again: a resumed
	// sync without details keeps the previous snapshot).
	again := st.run(t)
	if len(again.got) < devices-len(retired) {
		t.Fatalf("the sync after the resumed one emitted %d messages", len(again.got))
	}
	for id := range deletedBy(again.got) {
		if !deleted[id] {
			t.Errorf("the sync after the resumed one names device %s deleted", id)
		}
	}
}
