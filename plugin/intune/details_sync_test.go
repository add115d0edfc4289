package intune

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// detailsYAML are the lines that turn details on, unpaced (graphsim has no
// throttle unless a test gives it one), with more lines of the details
// object (indented by four spaces).
func detailsYAML(details ...string) []string {
	lines := append([]string{"  details:", "    enabled: true"}, details...)
	return append(lines, "  max_requests_per_second: 100000")
}

// wantDevice is device i as the input must emit it: graphsim's listed
// device with each property of fetched carrying its real value and every
// other list-default property null. It is built from graphsim's own
// renderings, member by member, not by the code under test.
func wantDevice(t *testing.T, sim *graphsim.Server, i int, beta bool, fetched map[string]bool) []byte {
	t.Helper()
	real := members(t, sim.EmittedDevice(i, beta, true))
	null := members(t, sim.EmittedDevice(i, beta, false))
	out := []byte{'{'}
	for k, m := range null {
		if k > 0 {
			out = append(out, ',')
		}
		value := m[1]
		if fetched[m[0]] {
			value = real[k][1]
		}
		out = append(out, fmt.Sprintf("%q:", m[0])...)
		out = append(out, value...)
	}
	return append(out, '}')
}

// members are an object's keys and raw values, in order.
func members(t *testing.T, obj []byte) [][2]string {
	t.Helper()
	var out [][2]string
	if err := graph.EachMember(obj, func(key []byte, _ bool, value []byte) {
		out = append(out, [2]string{string(key), string(value)})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// defaultDetails are the properties details fetch by default in version:
// every list-default one but the secrets.
func defaultDetails(version string) map[string]bool {
	out := map[string]bool{}
	for _, c := range schema.ListDefaults(version) {
		if !c.Secret() {
			out[c.Property] = true
		}
	}
	return out
}

func TestDetailsGiveEveryDeviceItsRealValuesInBatches(t *testing.T) {
	for _, version := range []string{"v1.0", "beta"} {
		t.Run(version, func(t *testing.T) {
			const n = 1200
			sim, url := startSim(t, graphsim.Config{Devices: n, Seed: 21, PageSize: 500})
			got, logs, failure := runSync(t, inputYAML(sim, url, "", append(detailsYAML(), "  api_version: "+version)...))
			if failure != nil {
				t.Fatalf("sync failed: %v\n%s", failure, logs)
			}
			if len(got) != n {
				t.Fatalf("%d devices, want %d", len(got), n)
			}
			fetched := defaultDetails(version)
			for i, m := range got {
				if want := wantDevice(t, sim, i, version == "beta", fetched); string(m.body) != string(want) {
					t.Fatalf("device %d:\n got %s\nwant %s", i, m.body, want)
				}
				at, _ := m.meta[contract.DetailsFetchedAt].(string)
				if _, err := time.Parse(time.RFC3339, at); err != nil || m.meta[contract.Details] != "fetched" {
					t.Fatalf("device %d: %s=%v %s=%v", i, contract.Details, m.meta[contract.Details], contract.DetailsFetchedAt, m.meta[contract.DetailsFetchedAt])
				}
			}
			st := sim.Stats()
			if st.DetailGets != n || st.BatchItems != n || st.BatchRequests > n/15 {
				t.Errorf("%d detail GETs in %d batches (%d items) for %d devices: want one GET each, in batches of 15 or more", st.DetailGets, st.BatchRequests, st.BatchItems, n)
			}
			for id, k := range sim.DetailFetches() {
				if k != 1 {
					t.Fatalf("device %s: details fetched %d times", id, k)
				}
			}
			if !strings.Contains(logs, fmt.Sprintf("%d fetched, 0 kept from earlier syncs, 0 failed", n)) {
				t.Errorf("the log does not count the details:\n%s", logs)
			}
		})
	}
}

// TestDetailsAreKeptUntilDue runs three syncs over one state: the second
// fetches only the devices whose trigger properties changed, emitting the
// others with what the first fetched (even where the truth moved since,
// unseen); the third, past max_age, fetches every device again.
func TestDetailsAreKeptUntilDue(t *testing.T) {
	const n = 600
	sim, url := startSim(t, graphsim.Config{Devices: n, Seed: 22, PageSize: 200})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "", append(detailsYAML(), "  state_cache: state")...)
	sync := func() []received {
		t.Helper()
		res := streamTest{input: conf, caches: []string{fileCache("state", dir)}}.run(t)
		if res.failure != nil || len(res.got) != n {
			t.Fatalf("sync: %d devices, %v\n%s", len(res.got), res.failure, res.logs)
		}
		return res.got
	}
	first := sync()
	fetched := defaultDetails("v1.0")
	before := map[int]string{}
	for i := 20; i < 30; i++ {
		before[i] = string(wantDevice(t, sim, i, false, fetched))
	}
	changed := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	sim.Change(changed...)
	sim.ChangeDetails(20, 21, 22, 23, 24, 25, 26, 27, 28, 29)

	second := sync()
	counts := sim.DetailFetches()
	for i, m := range second {
		id := sim.DeviceID(i)
		isChanged := i >= 1 && i <= 10
		wantCount, wantStatus := 1, "kept"
		if isChanged {
			wantCount, wantStatus = 2, "fetched"
		}
		if counts[id] != wantCount || m.meta[contract.Details] != wantStatus {
			t.Fatalf("device %d: fetched %d times, %s=%v; want %d, %s", i, counts[id], contract.Details, m.meta[contract.Details], wantCount, wantStatus)
		}
		switch {
		case i >= 20 && i < 30:
			if string(m.body) != before[i] {
				t.Fatalf("device %d: its unseen new details were emitted, or the kept ones lost:\n got %s\nwant %s", i, m.body, before[i])
			}
		default:
			if want := wantDevice(t, sim, i, false, fetched); string(m.body) != string(want) {
				t.Fatalf("device %d:\n got %s\nwant %s", i, m.body, want)
			}
		}
		if !isChanged && m.meta[contract.DetailsFetchedAt] != first[i].meta[contract.DetailsFetchedAt] {
			t.Fatalf("device %d: kept details fetched at %v, the first sync fetched them at %v", i, m.meta[contract.DetailsFetchedAt], first[i].meta[contract.DetailsFetchedAt])
		}
	}

	t.Setenv(envDetailsClockShift, "169h")
	third := sync()
	for i, m := range third {
		if m.meta[contract.Details] != "fetched" {
			t.Fatalf("device %d: %s=%v past max_age", i, contract.Details, m.meta[contract.Details])
		}
		if want := wantDevice(t, sim, i, false, fetched); string(m.body) != string(want) {
			t.Fatalf("device %d after max_age:\n got %s\nwant %s", i, m.body, want)
		}
	}
}

// TestDetailsAnHourLaterFetchTheChangedAndAnHoursShare: after a first sync
// of 3,000 devices, an hourly sync fetches the devices whose trigger
// properties changed and the 1/168 of the tenant whose first refresh
// falls in that hour, no more.
func TestDetailsAnHourLaterFetchTheChangedAndAnHoursShare(t *testing.T) {
	const n, changes = 3000, 60
	sim, url := startSim(t, graphsim.Config{Devices: n, Seed: 23})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "", append(detailsYAML(), "  state_cache: state")...)
	caches := []string{fileCache("state", dir)}
	if res := (streamTest{input: conf, caches: caches}).run(t); res.failure != nil {
		t.Fatal(res.failure)
	}
	var changed []int
	for i := 0; i < changes; i++ {
		changed = append(changed, i*(n/changes))
	}
	sim.Change(changed...)
	before := sim.Stats().DetailGets
	t.Setenv(envDetailsClockShift, "1h")
	if res := (streamTest{input: conf, caches: caches}).run(t); res.failure != nil {
		t.Fatal(res.failure)
	}
	got := sim.Stats().DetailGets - before
	if limit := int64(changes + n/168 + 2); got < changes || got > limit {
		t.Errorf("the hourly sync fetched %d devices' details, want %d changed plus at most %d due by age", got, changes, limit-changes)
	}
}

func TestDetailsOfDevicesGoneSinceTheListAreNotFailures(t *testing.T) {
	const n = 300
	sim, url := startSim(t, graphsim.Config{Devices: n, Seed: 24, GoneOnGet: []int{3, 77, 299}})
	got, logs, failure := runSync(t, inputYAML(sim, url, "", detailsYAML()...))
	if failure != nil || len(got) != n {
		t.Fatalf("%d devices, %v\n%s", len(got), failure, logs)
	}
	for i, m := range got {
		gone := i == 3 || i == 77 || i == 299
		switch {
		case gone && (m.meta[contract.Details] != "gone" || m.meta[contract.DetailsFetchedAt] != nil):
			t.Errorf("device %d: %v, want gone without a fetch time", i, m.meta)
		case gone && string(m.body) != string(sim.EmittedDevice(i, false, false)):
			t.Errorf("device %d: the list version with nulls expected, got %s", i, m.body)
		case !gone && m.meta[contract.Details] != "fetched":
			t.Errorf("device %d: %v", i, m.meta)
		}
	}
	if st := sim.Stats(); st.BatchItems != n {
		t.Errorf("%d GETs for %d devices: a 404 must not be retried", st.BatchItems, n)
	}
	if !strings.Contains(logs, "3 devices gone since the list") || DetailsMissing() != 0 {
		t.Errorf("missing %d; logs:\n%s", DetailsMissing(), logs)
	}
}

// TestDetailsThatFailAreCountedAndTheDevicesStillDelivered: devices whose
// GET keeps failing are delivered with their list version (placeholders
// null), counted, and named in the log with what to do; the sync is not a
// failed one.
func TestDetailsThatFailAreCountedAndTheDevicesStillDelivered(t *testing.T) {
	for name, tc := range map[string]struct {
		fault graphsim.FaultKind
		hint  string
	}{
		"503 until the retry policy gives up": {graphsim.Fault503, "giving up on the request"},
		"403":                                 {graphsim.Fault403, "grant the app registration"},
	} {
		t.Run(name, func(t *testing.T) {
			const n = 200
			sim, url := startSim(t, graphsim.Config{Devices: n, Seed: 25})
			if err := sim.SetDeviceFault(tc.fault, 5, 6, 150); err != nil {
				t.Fatal(err)
			}
			got, logs, failure := runSync(t, inputYAML(sim, url, "", append(detailsYAML(
				"    properties: [ notes, physicalMemoryInBytes ]"),
				"  backoff:", "    initial_interval: 10ms", "    max_interval: 50ms", "    max_elapsed_time: 1s")...))
			if failure != nil || len(got) != n {
				t.Fatalf("%d devices, %v\n%s", len(got), failure, logs)
			}
			for _, i := range []int{5, 6, 150} {
				if got[i].meta[contract.Details] != "failed" || got[i].meta[contract.DetailsFetchedAt] != nil || string(got[i].body) != string(sim.EmittedDevice(i, false, false)) {
					t.Errorf("device %d: %v %s", i, got[i].meta, got[i].body)
				}
			}
			if DetailsMissing() != 3 || !strings.Contains(logs, "3 failed") || !strings.Contains(logs, "3 devices lack fresh details") || !strings.Contains(logs, tc.hint) {
				t.Errorf("missing %d; logs:\n%s", DetailsMissing(), logs)
			}
		})
	}
}

// TestDetailsOfAnInterruptedSyncAreNotFetchedAgain stops a sync while
// Graph holds its detail GETs, then runs it again: it resumes from its
// checkpoint, takes the details fetched before the stop from the journal,
// and in the end every device was delivered and had its details fetched
// exactly once.
func TestDetailsOfAnInterruptedSyncAreNotFetchedAgain(t *testing.T) {
	const n = 2000
	sim, url := startSim(t, graphsim.Config{Devices: n, Seed: 26, PageSize: 250})
	dir := t.TempDir()
	conf := inputYAML(sim, url, "", append(detailsYAML(), "  state_cache: state", "  checkpoint_cache: state")...)
	caches := []string{fileCache("state", dir)}
	sim.SetStallDetailsAfter(900)
	var stalledSince time.Time
	first := streamTest{input: conf, caches: caches, timeout: time.Minute, poll: func() bool {
		if sim.StalledGets() == 0 {
			return false
		}
		if stalledSince.IsZero() {
			stalledSince = time.Now()
		}
		return time.Since(stalledSince) > 300*time.Millisecond
	}}.run(t)
	if !first.stopped {
		t.Fatalf("the first run was not stopped while its GETs were held:\n%s", first.logs)
	}
	for deadline := time.Now().Add(10 * time.Second); sim.StalledGets() > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	sim.SetStallDetailsAfter(0)
	fetchedBefore := len(sim.DetailFetches())
	if fetchedBefore == 0 || fetchedBefore > 900 {
		t.Fatalf("%d devices' details fetched before the stop, want some, up to the stall's 900", fetchedBefore)
	}

	second := streamTest{input: conf, caches: caches}.run(t)
	if second.failure != nil {
		t.Fatalf("the resumed sync failed: %v\n%s", second.failure, second.logs)
	}
	if !strings.Contains(second.logs.String(), "resumes after page") {
		t.Errorf("the second run did not resume from the checkpoint:\n%s", second.logs)
	}
	delivered := map[string]bool{}
	for _, run := range [][]received{first.got, second.got} {
		for _, m := range run {
			delivered[deviceID(t, m.body)] = true
		}
	}
	fetched := defaultDetails("v1.0")
	for _, m := range second.got {
		id := deviceID(t, m.body)
		i := indexOf(sim, id)
		if want := wantDevice(t, sim, i, false, fetched); string(m.body) != string(want) {
			t.Fatalf("device %d after the restart (%v):\n got %s\nwant %s", i, m.meta[contract.Details], m.body, want)
		}
	}
	counts := sim.DetailFetches()
	for i := 0; i < n; i++ {
		id := sim.DeviceID(i)
		if !delivered[id] {
			t.Errorf("device %d was never delivered", i)
		}
		if counts[id] != 1 {
			t.Errorf("device %d: details fetched %d times", i, counts[id])
		}
	}

	// The resumed sync's state holds the devices listed before the stop
	// too, with their details: a full sync after it fetches none again,
	// and sees no device as gone.
	third := streamTest{input: conf, caches: caches}.run(t)
	if third.failure != nil || len(third.got) != n {
		t.Fatalf("the sync after the resumed one: %d messages, %v\n%s", len(third.got), third.failure, third.logs)
	}
	for _, m := range third.got {
		if m.meta[contract.Details] != "kept" {
			t.Fatalf("device %s after the resumed sync: %s=%v, want kept\n%s", deviceID(t, m.body), contract.Details, m.meta[contract.Details], m.body)
		}
	}
	if len(sim.DetailFetches()) != n || sim.Stats().DetailGets != n {
		t.Errorf("%d detail GETs after three runs, want each of the %d devices' once", sim.Stats().DetailGets, n)
	}
}

// indexOf is the index of the device graphsim gave id.
func indexOf(sim *graphsim.Server, id string) int {
	for i := 0; i < sim.Count(); i++ {
		if sim.DeviceID(i) == id {
			return i
		}
	}
	return -1
}

// TestDetailsWithASelectOfNoListDefaultFetchNothing: select decides what
// is listed; when it names none of the properties details fill, there is
// nothing to fetch, and the log says how to get them.
func TestDetailsWithASelectOfNoListDefaultFetchNothing(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 50, Seed: 27})
	got, logs, failure := runSync(t, inputYAML(sim, url, "", append(detailsYAML(), "  select: [ id, deviceName ]")...))
	if failure != nil || len(got) != 50 {
		t.Fatalf("%d devices, %v\n%s", len(got), failure, logs)
	}
	if st := sim.Stats(); st.BatchRequests != 0 || !strings.Contains(logs, "select names none of the properties") {
		t.Errorf("%d batches sent; logs:\n%s", st.BatchRequests, logs)
	}
}

// TestASecretNoLongerNamedIsNeverEmittedAgain: details fetched with the
// activation lock bypass code, then a config that no longer names it and
// whose GETs all fail: the devices carry their kept notes, and null for
// the code.
func TestASecretNoLongerNamedIsNeverEmittedAgain(t *testing.T) {
	const n = 300
	sim, url := startSim(t, graphsim.Config{Devices: n, Seed: 28})
	var all []int
	for i := 0; i < n; i++ {
		all = append(all, i)
	}
	dir := t.TempDir()
	run := func(props string) []received {
		res := streamTest{input: inputYAML(sim, url, "", append(detailsYAML("    properties: "+props), "  state_cache: state")...),
			caches: []string{fileCache("state", dir)}}.run(t)
		if res.failure != nil || len(res.got) != n {
			t.Fatalf("%d devices, %v\n%s", len(res.got), res.failure, res.logs)
		}
		return res.got
	}
	first := run("[ notes, activationLockBypassCode ]")
	codes := 0
	for _, m := range first {
		if !strings.Contains(string(m.body), `"activationLockBypassCode":null`) {
			codes++
		}
	}
	if codes == 0 {
		t.Fatal("no device has an activation lock bypass code: the test proves nothing")
	}
	if err := sim.SetDeviceFault(graphsim.Fault403, all...); err != nil {
		t.Fatal(err)
	}
	second := run("[ notes ]")
	for i, m := range second {
		if !strings.Contains(string(m.body), `"activationLockBypassCode":null`) || m.meta[contract.Details] != "failed" {
			t.Fatalf("device %d (%v): %s", i, m.meta[contract.Details], m.body)
		}
		want := members(t, sim.DeviceDetails(i, false))
		for _, kv := range want {
			if kv[0] == "notes" && !strings.Contains(string(m.body), `"notes":`+kv[1]) {
				t.Fatalf("device %d: its kept notes %s are gone: %s", i, kv[1], m.body)
			}
		}
	}
}
