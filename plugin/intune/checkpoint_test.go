package intune

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/benthosdev/benthos/v4/public/components/io" // the file cache
	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// runWithCheckpoints runs the input with a file-backed checkpoint cache in
// dir. With stopAfter > 0 the stream is stopped, as a crash or a deploy
// would, once that many devices were consumed.
func runWithCheckpoints(t *testing.T, inputConf, dir string, stopAfter int) (ids []string, pages []int, syncIDs map[string]bool, logs string) {
	t.Helper()
	resetSyncFailure()
	logger := &bufLogger{}
	b := service.NewStreamBuilder()
	b.SetPrintLogger(logger)
	if err := b.AddCacheYAML(fmt.Sprintf("label: checkpoints\nfile:\n  directory: %s", dir)); err != nil {
		t.Fatal(err)
	}
	if err := b.AddInputYAML(inputConf + "\n  checkpoint_cache: checkpoints"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var mu sync.Mutex
	syncIDs = map[string]bool{}
	if err := b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		body, _ := m.AsBytes()
		page, _ := m.MetaGetMut(metaPage)
		syncID, _ := m.MetaGetMut(metaSyncID)
		mu.Lock()
		defer mu.Unlock()
		ids = append(ids, deviceID(t, body))
		pages = append(pages, page.(int))
		syncIDs[syncID.(string)] = true
		if stopAfter > 0 && len(ids) == stopAfter {
			cancel()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	_ = stream.Run(ctx)
	// Run returns as soon as ctx is cancelled, leaving the stream running:
	// stop it, so that every message it acknowledges (and so every
	// checkpoint it stores) is counted before the next run starts.
	_ = stream.StopWithin(30 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	return ids, pages, syncIDs, logger.String()
}

func deviceID(t *testing.T, body []byte) string {
	t.Helper()
	const key = `"id":"`
	i := strings.Index(string(body), key)
	if i < 0 {
		t.Fatalf("device without id: %.80s", body)
	}
	rest := string(body[i+len(key):])
	return rest[:strings.IndexByte(rest, '"')]
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
	if files, _ := os.ReadDir(dir); len(files) != 1 {
		t.Fatalf("checkpoint files after the stop: %d, want 1", len(files))
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
	key := storeKey(checkpointKeyPrefix, c.tenantID, first)
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
