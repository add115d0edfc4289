package intune

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// appsYAML is intune_detected_apps' config against a simulator at url.
func appsYAML(sim *graphsim.Server, url string, extra ...string) string {
	return strings.Replace(inputYAML(sim, url, "", extra...), "intune_managed_devices:", "intune_detected_apps:", 1)
}

// pairOf names a (device, app) pair.
type pairOf struct{ deviceID, deviceName, appID string }

// appsSync is what one sync of intune_detected_apps delivered.
type appsSync struct {
	apps  map[string]int // app id -> times emitted
	pairs map[pairOf]int
	logs  string
}

// runAppsSync runs one sync and checks every message's metadata.
func runAppsSync(t *testing.T, conf string) appsSync {
	t.Helper()
	got, logs, failure := runSync(t, conf)
	if failure != nil {
		t.Fatalf("the sync failed: %v\n%s", failure, logs)
	}
	s := appsSync{apps: map[string]int{}, pairs: map[pairOf]int{}, logs: logs}
	for _, m := range got {
		switch m.meta[contract.Entity] {
		case contract.EntityDetectedApp:
			id := deviceID(t, m.body)
			if m.meta[contract.AppID] != id {
				t.Errorf("app %s has intune_app_id %v", id, m.meta[contract.AppID])
			}
			s.apps[id]++
		case contract.EntityDeviceApp:
			var p struct{ DeviceID, DeviceName, AppID string }
			if err := json.Unmarshal(m.body, &p); err != nil {
				t.Fatalf("pair %s: %v", m.body, err)
			}
			if m.meta[contract.AppID] != p.AppID || m.meta[contract.DeviceID] != p.DeviceID {
				t.Errorf("pair %s has intune_app_id %v and intune_device_id %v", m.body, m.meta[contract.AppID], m.meta[contract.DeviceID])
			}
			s.pairs[pairOf{p.DeviceID, p.DeviceName, p.AppID}]++
		default:
			t.Fatalf("message without intune_entity: %s %v", m.body, m.meta)
		}
		if m.meta[contract.SyncID] == nil || m.meta[contract.Operation] != contract.OpUpsert {
			t.Errorf("message %s lacks the sync's metadata: %v", m.body, m.meta)
		}
	}
	return s
}

// checkExactlyGraphsimsInventory compares a sync with the simulator's
// ground truth: every app and every pair once, nothing else.
func checkExactlyGraphsimsInventory(t *testing.T, sim *graphsim.Server, s appsSync) {
	t.Helper()
	wantApps := sim.DetectedApps()
	if len(s.apps) != len(wantApps) {
		t.Errorf("%d distinct apps emitted, graphsim holds %d", len(s.apps), len(wantApps))
	}
	for _, a := range wantApps {
		if n := s.apps[a.ID]; n != 1 {
			t.Errorf("app %s emitted %d times", a.ID, n)
			break
		}
	}
	wantPairs := sim.DeviceAppPairs()
	if len(s.pairs) != len(wantPairs) {
		t.Errorf("%d distinct pairs emitted, graphsim holds %d", len(s.pairs), len(wantPairs))
	}
	for _, p := range wantPairs {
		if n := s.pairs[pairOf{p.DeviceID, p.DeviceName, p.AppID}]; n != 1 {
			t.Errorf("pair %+v emitted %d times", p, n)
			break
		}
	}
}

func TestDetectedAppsEmitsEveryAppAndPairOnceWhateverTheStrategy(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 150, DetectedApps: 1500, AppsPerDevice: 40, Seed: 7})
	for _, strategy := range []string{strategyPerApp, strategyPerDevice, strategyAuto} {
		t.Run(strategy, func(t *testing.T) {
			s := runAppsSync(t, appsYAML(sim, url, "  strategy: "+strategy, "  max_requests_per_second: 2000"))
			checkExactlyGraphsimsInventory(t, sim, s)
		})
	}
}

// TestDetectedAppsWaitOutEveryRetryAfter runs against a tenant whose budget
// is a tenth of the pace the input is allowed: Graph answers 429s, and
// after each one no request may arrive before its Retry-After has passed.
func TestDetectedAppsWaitOutEveryRetryAfter(t *testing.T) {
	// export sends a handful of requests: a budget of one per second
	// throttles it.
	budget := map[string]int{strategyPerApp: 40, strategyPerDevice: 40, strategyExport: 1}
	for _, strategy := range []string{strategyPerApp, strategyPerDevice, strategyExport} {
		t.Run(strategy, func(t *testing.T) {
			sim, url := startSim(t, graphsim.Config{
				Devices: 120, DetectedApps: 600, AppsPerDevice: 30, Seed: 11, ReadWrite: true,
				Throttle: graphsim.Throttle{Requests: budget[strategy], Window: time.Second},
			})
			t.Cleanup(func() { sim.Close() })
			s := runAppsSync(t, appsYAML(sim, url, "  strategy: "+strategy, "  max_requests_per_second: 400", "  max_concurrency: 16",
				"  backoff:", "    initial_interval: 10ms"))
			checkExactlyGraphsimsInventory(t, sim, s)
			checkNoRequestDuringRetryAfter(t, sim)
		})
	}
}

// checkNoRequestDuringRetryAfter reads graphsim's request log: after each
// 429, no request may arrive before its Retry-After has passed.
func checkNoRequestDuringRetryAfter(t *testing.T, sim *graphsim.Server) {
	t.Helper()
	log := sim.Requests()
	throttled := 0
	for i, r := range log {
		if r.Status != http.StatusTooManyRequests {
			continue
		}
		throttled++
		if r.RetryAfter <= 0 {
			t.Fatalf("graphsim sent a 429 without Retry-After: %+v", r)
		}
		// Requests already on their way when the 429 was answered arrive
		// within a moment of it; none may be sent during the pause.
		grace := 50 * time.Millisecond
		for _, later := range log[i+1:] {
			if later.Token {
				continue
			}
			since := later.At.Sub(r.At)
			if since > grace && since < r.RetryAfter {
				t.Fatalf("a request arrived %s after a 429 whose Retry-After was %s", since, r.RetryAfter)
			}
		}
	}
	if throttled == 0 {
		t.Fatal("graphsim answered no 429: the test did not throttle the input")
	}
	t.Logf("%d requests, %d answered 429", len(log), throttled)
}

// TestDetectedAppsAutoTakesTheStrategyWithFewerRequests runs auto on both
// shapes of tenant and checks which relationship it read.
func TestDetectedAppsAutoTakesTheStrategyWithFewerRequests(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  graphsim.Config
		want string
	}{
		{"many apps on few devices", graphsim.Config{Devices: 15, DetectedApps: 2000, AppsPerDevice: 150, Seed: 3}, strategyPerDevice},
		{"few apps on many devices", graphsim.Config{Devices: 1500, DetectedApps: 40, AppsPerDevice: 20, Seed: 5}, strategyPerApp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim, url := startSim(t, tc.cfg)
			s := runAppsSync(t, appsYAML(sim, url))
			checkExactlyGraphsimsInventory(t, sim, s)
			if !strings.Contains(s.logs, "joining "+tc.want) {
				t.Fatalf("auto did not choose %s:\n%s", tc.want, s.logs)
			}
			kinds := map[string]int{}
			for _, r := range sim.Requests() {
				kinds[r.Kind]++
			}
			perApp, perDevice := kinds[graphsim.KindAppDevices], kinds[graphsim.KindDeviceApps]
			if (tc.want == strategyPerApp) != (perDevice == 0) || (tc.want == strategyPerApp) == (perApp == 0) {
				t.Errorf("requests by kind: %v", sortedKinds(kinds))
			}
		})
	}
}

func sortedKinds(kinds map[string]int) []string {
	var out []string
	for k, n := range kinds {
		out = append(out, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(out)
	return out
}

// appsTable is what a destination keyed as the shipped configs are holds
// after it applied the messages of some syncs: pairs by "device app", apps
// by id.
type appsTable struct {
	pairs map[string]string
	apps  map[string]bool
}

func newAppsTable() *appsTable {
	return &appsTable{pairs: map[string]string{}, apps: map[string]bool{}}
}

// apply applies a run's messages and counts its upserts and deletions.
func (tb *appsTable) apply(got []received) (upserts, deletes int) {
	for _, m := range got {
		appID, _ := m.meta[contract.AppID].(string)
		deviceID, _ := m.meta[contract.DeviceID].(string)
		deleted := m.meta[contract.Operation] == contract.OpDelete
		if deleted {
			deletes++
		} else {
			upserts++
		}
		switch {
		case m.meta[contract.Entity] == contract.EntityDetectedApp && deleted:
			delete(tb.apps, appID)
		case m.meta[contract.Entity] == contract.EntityDetectedApp:
			tb.apps[appID] = true
		case deleted:
			delete(tb.pairs, deviceID+" "+appID)
		default:
			tb.pairs[deviceID+" "+appID] = string(m.body)
		}
	}
	return upserts, deletes
}

// check compares the table with graphsim's inventory.
func (tb *appsTable) check(t *testing.T, sim *graphsim.Server, when string) {
	t.Helper()
	want := sim.DeviceAppPairs()
	if len(tb.pairs) != len(want) {
		t.Errorf("%s: the table holds %d pairs, graphsim %d", when, len(tb.pairs), len(want))
	}
	for _, p := range want {
		body, ok := tb.pairs[p.DeviceID+" "+p.AppID]
		if !ok {
			t.Errorf("%s: pair %+v missing", when, p)
			break
		}
		var got struct{ DeviceName string }
		if err := json.Unmarshal([]byte(body), &got); err != nil || got.DeviceName != p.DeviceName {
			t.Errorf("%s: pair %+v is %s", when, p, body)
			break
		}
	}
	if len(tb.apps) != len(sim.DetectedApps()) {
		t.Errorf("%s: %d apps kept, graphsim holds %d", when, len(tb.apps), len(sim.DetectedApps()))
	}
}

// TestDetectedAppsStateKeepsATableExact applies two syncs with emit: changes
// to a table keyed by device and app, as the shipped configs do, with a
// tenant that upgraded and uninstalled apps and retired a device between
// them: the table must end with exactly graphsim's pairs, and the second
// sync must send only what changed.
func TestDetectedAppsStateKeepsATableExact(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 60, DetectedApps: 400, AppsPerDevice: 25, Seed: 17})
	dir := t.TempDir()
	conf := appsYAML(sim, url, "  emit: changes", "  state_cache: state", "  max_requests_per_second: 2000")
	table := newAppsTable()
	apply := func() (upserts, deletes int) {
		res := streamTest{input: conf, caches: []string{fileCache("state", dir)}}.run(t)
		if res.failure != nil {
			t.Fatalf("sync failed: %v\n%s", res.failure, res.logs)
		}
		return table.apply(res.got)
	}
	first, deletes := apply()
	table.check(t, sim, "after the first sync")
	if deletes != 0 {
		t.Errorf("the first sync deleted %d", deletes)
	}

	sim.ChangeApps(1, 2, 3)
	sim.Remove(5)
	upserts, deletes := apply()
	table.check(t, sim, "after the second sync")
	if deletes == 0 {
		t.Error("nothing was deleted after uninstalls and a retired device")
	}
	if upserts == 0 || upserts >= first/10 {
		t.Errorf("the second sync sent %d upserts of %d messages: want only what changed", upserts, first)
	}
}

// TestDetectedAppsResumedPerDeviceSyncNamesEveryDeletion stops the sync
// after a change a third of the way through its pairs, as a kill would,
// and runs it again: the resumed sync and the one it resumes together
// leave the table exactly graphsim's, uninstalls on the devices before
// and after the checkpoint and a retired device included, and the resumed
// sync's snapshot is no complete one, so the next sync still compares
// with the last complete sync's and changes nothing.
func TestDetectedAppsResumedPerDeviceSyncNamesEveryDeletion(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 90, DetectedApps: 500, AppsPerDevice: 30, Seed: 41})
	dir := t.TempDir()
	conf := appsYAML(sim, url, "  strategy: per_device", "  emit: changes", "  state_cache: state", "  checkpoint_cache: state",
		"  max_requests_per_second: 2000", "  max_concurrency: 2")
	caches := []string{fileCache("state", dir)}
	table := newAppsTable()
	res := streamTest{input: conf, caches: caches}.run(t)
	if res.failure != nil {
		t.Fatalf("the first sync failed: %v\n%s", res.failure, res.logs)
	}
	table.apply(res.got)
	table.check(t, sim, "after the first sync")

	// Apps 0..29 are on nearly every device: changing them uninstalls
	// and upgrades them on devices on both sides of the checkpoint.
	sim.ChangeApps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19)
	sim.Remove(3, 40, 77)
	stopped := streamTest{input: conf, caches: caches, until: func(got []received) bool { return len(got) > 60 }}.run(t)
	if !stopped.stopped {
		t.Fatalf("the second sync ended by itself:\n%s", stopped.logs)
	}
	table.apply(stopped.got)
	resumed := streamTest{input: conf, caches: caches}.run(t)
	if resumed.failure != nil {
		t.Fatalf("the resumed sync failed: %v\n%s", resumed.failure, resumed.logs)
	}
	if !strings.Contains(resumed.logs.String(), "resumes per_device after") {
		t.Fatalf("the sync did not resume:\n%s", resumed.logs)
	}
	table.apply(resumed.got)
	table.check(t, sim, "after the resumed sync")

	again := streamTest{input: conf, caches: caches}.run(t)
	if again.failure != nil {
		t.Fatalf("the next sync failed: %v\n%s", again.failure, again.logs)
	}
	table.apply(again.got)
	table.check(t, sim, "after the next complete sync")
}

// TestDetectedAppsResumeAfterTheLastDeliveredUnit stops a sync a third of
// the way through its pairs and starts it again with the same checkpoint
// cache: the second run continues the same sync after the last app whose
// pairs were delivered, and the two runs together deliver every pair.
func TestDetectedAppsResumeAfterTheLastDeliveredUnit(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 100, DetectedApps: 800, AppsPerDevice: 30, Seed: 31})
	dir := t.TempDir()
	conf := appsYAML(sim, url, "  strategy: per_app", "  checkpoint_cache: checkpoints", "  max_requests_per_second: 2000", "  max_concurrency: 4")
	total := len(sim.DeviceAppPairs())
	seen := map[pairOf]bool{}
	syncIDs := map[any]bool{}
	collect := func(got []received) int {
		pairs := 0
		for _, m := range got {
			syncIDs[m.meta[contract.SyncID]] = true
			if m.meta[contract.Entity] != contract.EntityDeviceApp {
				continue
			}
			var p struct{ DeviceID, DeviceName, AppID string }
			if err := json.Unmarshal(m.body, &p); err != nil {
				t.Fatal(err)
			}
			seen[pairOf{p.DeviceID, p.DeviceName, p.AppID}] = true
			pairs++
		}
		return pairs
	}
	first := streamTest{input: conf, caches: []string{fileCache("checkpoints", dir)}, until: func(got []received) bool {
		return got[len(got)-1].meta[contract.Entity] == contract.EntityDeviceApp && len(got) > len(sim.DetectedApps())+total/3
	}}.run(t)
	if !first.stopped {
		t.Fatalf("the first run ended by itself:\n%s", first.logs)
	}
	collect(first.got)

	second := streamTest{input: conf, caches: []string{fileCache("checkpoints", dir)}}.run(t)
	if second.failure != nil {
		t.Fatalf("the resumed sync failed: %v\n%s", second.failure, second.logs)
	}
	if !strings.Contains(second.logs.String(), "resumes per_app after") {
		t.Fatalf("the second run did not resume:\n%s", second.logs)
	}
	if pairs := collect(second.got); pairs >= total {
		t.Errorf("the second run sent %d pairs of %d: it started over", pairs, total)
	}
	if len(syncIDs) != 1 {
		t.Errorf("%d sync ids over the two runs, want the one resumed sync", len(syncIDs))
	}
	for _, p := range sim.DeviceAppPairs() {
		if !seen[pairOf{p.DeviceID, p.DeviceName, p.AppID}] {
			t.Fatalf("pair %+v was never delivered", p)
		}
	}
}

// TestDetectedAppsExportStrategyThroughTheInput selects export in the
// config: every pair arrives once, from the report's ZIP, and the storage
// host never sees the Graph token.
func TestDetectedAppsExportStrategyThroughTheInput(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 90, DetectedApps: 700, AppsPerDevice: 30, Seed: 37, ReadWrite: true})
	t.Cleanup(func() { sim.Close() })
	s := runAppsSync(t, appsYAML(sim, url, "  strategy: export", "  max_requests_per_second: 2000"))
	checkExactlyGraphsimsInventory(t, sim, s)
	// graphsim logs a download once its handler has returned, which may be
	// a moment after the client read the last byte.
	downloads := sim.StorageRequests()
	for deadline := time.Now().Add(10 * time.Second); len(downloads) == 0 && time.Now().Before(deadline); downloads = sim.StorageRequests() {
		time.Sleep(20 * time.Millisecond)
	}
	if len(downloads) == 0 {
		t.Fatal("nothing was downloaded from the storage host")
	}
	for _, d := range downloads {
		if d.Authorized {
			t.Fatalf("the storage host received an Authorization header: %+v", d)
		}
	}
}
