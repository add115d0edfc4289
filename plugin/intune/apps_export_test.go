package intune

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// The export strategy is not yet among the strategies the config accepts:
// these tests build the input from a parsed config, list the apps and run
// exportPairs on an outbox of their own, acknowledging every message as
// an output would.

// startExportSim serves a simulated tenant whose storage host stops with
// the test.
func startExportSim(t *testing.T, cfg graphsim.Config) (*graphsim.Server, string) {
	t.Helper()
	sim, url := startSim(t, cfg)
	t.Cleanup(func() { _ = sim.Close() })
	return sim, url
}

// newExportTestInput is intune_detected_apps against sim at url, built
// with res (service.MockResources() when nil).
func newExportTestInput(t *testing.T, sim *graphsim.Server, url string, res *service.Resources) *detectedAppsInput {
	t.Helper()
	c := sim.Config()
	conf := strings.Join([]string{
		"tenant_id: " + c.TenantID,
		"client_id: " + c.ClientID,
		"client_secret: " + c.ClientSecret,
		"login_url: " + url,
		"graph_url: " + url,
		"max_requests_per_second: 2000",
		"backoff:",
		"  initial_interval: 10ms",
	}, "\n")
	parsed, err := appsInputSpec().ParseYAML(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res == nil {
		res = service.MockResources()
	}
	in, err := newAppsInput(parsed, res)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// fastExportPlan polls every few milliseconds and emits items of 500
// pairs.
func fastExportPlan() exportPlan {
	p := defaultExportPlan()
	p.poll = graph.ExportPoll{Initial: 2 * time.Millisecond, Max: 10 * time.Millisecond, Timeout: time.Minute}
	p.batch = 500
	return p
}

// exportedSync is what a sync of apps then export pairs delivered.
type exportedSync struct {
	appsSync
	run       *appsRun
	err       error
	items     int  // items of pairs
	largest   int  // pairs in the largest item
	delivered bool // every message was acknowledged and the sync completed
}

// runExportSync lists the apps, keeps those keep returns (all of them
// when nil), and runs the export with plan (exportPairs' own when nil).
func runExportSync(t *testing.T, in *detectedAppsInput, plan *exportPlan, keep func([]appRef) []appRef) exportedSync {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	items := make(chan appsItem)
	run := newAppsRun(time.Now())
	var delivered atomic.Bool
	run.acks = newAckTracker(nil, func(err error) { t.Errorf("ack: %v", err) }, func(syncCursor) { delivered.Store(true) })
	out := &appsOutbox{ctx: ctx, items: items, run: run, metrics: in.metrics}

	got := make(chan exportedSync)
	go func() {
		s := exportedSync{appsSync: appsSync{apps: map[string]int{}, pairs: map[pairOf]int{}}}
		for item := range items {
			for i, body := range item.bodies {
				switch item.entity {
				case contract.EntityDetectedApp:
					s.apps[item.appIDs[i].(string)]++
				case contract.EntityDeviceApp:
					var p struct{ DeviceID, DeviceName, AppID string }
					if err := json.Unmarshal(body, &p); err != nil {
						t.Errorf("pair %s: %v", body, err)
						continue
					}
					if item.appIDs[i] != p.AppID || item.deviceIDs[i] != p.DeviceID {
						t.Errorf("pair %s has intune_app_id %v and intune_device_id %v", body, item.appIDs[i], item.deviceIDs[i])
					}
					s.pairs[pairOf{p.DeviceID, p.DeviceName, p.AppID}]++
				default:
					t.Errorf("item of entity %v", item.entity)
				}
				_ = item.acks.ack(ctx, nil)
			}
			if item.entity == contract.EntityDeviceApp {
				s.items++
				s.largest = max(s.largest, len(item.bodies))
			}
		}
		got <- s
	}()

	apps, err := in.listApps(ctx, out)
	if err == nil {
		if keep != nil {
			apps = keep(apps)
		}
		if plan == nil {
			err = in.exportPairs(ctx, out, run, apps)
		} else {
			err = in.exportPairsWith(ctx, out, run, apps, *plan)
		}
	}
	if err == nil {
		out.finish()
	}
	close(items)
	s := <-got
	s.run, s.err, s.delivered = run, err, delivered.Load()
	return s
}

// settled is get's value once ok accepts it, or after ten seconds:
// graphsim logs a request when its handler returns, which can be after the
// client has read the whole answer and moved on.
func settled[T any](get func() T, ok func(T) bool) T {
	deadline := time.Now().Add(10 * time.Second)
	for {
		v := get()
		if ok(v) || time.Now().After(deadline) {
			return v
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkStorageSawNoToken checks that the storage host was asked, never
// with an Authorization header.
func checkStorageSawNoToken(t *testing.T, sim *graphsim.Server) {
	t.Helper()
	reqs := settled(sim.StorageRequests, func(r []graphsim.StorageRecord) bool { return len(r) > 0 })
	if len(reqs) == 0 {
		t.Fatal("the storage host received no request")
	}
	for _, r := range reqs {
		if r.Authorized {
			t.Fatalf("the storage host received an Authorization header: %+v", r)
		}
	}
}

func TestExportEmitsEveryPairOnceAndKeepsTheTokenFromStorage(t *testing.T) {
	sim, url := startExportSim(t, graphsim.Config{Devices: 100, DetectedApps: 400, AppsPerDevice: 30, Seed: 21, ReadWrite: true})
	in := newExportTestInput(t, sim, url, nil)
	s := runExportSync(t, in, nil, nil) // exportPairs itself: its first poll comes after a second
	if s.err != nil {
		t.Fatal(s.err)
	}
	checkExactlyGraphsimsInventory(t, sim, s.appsSync)
	checkStorageSawNoToken(t, sim)
	pairs := len(sim.DeviceAppPairs())
	if s.run.pairs != pairs || !s.delivered {
		t.Errorf("the sync counted %d pairs of %d, delivered %v", s.run.pairs, pairs, s.delivered)
	}
	if pairs <= 1000 || s.largest > 1000 || s.items < 2 {
		t.Errorf("%d pairs in %d items of at most %d: want items of up to 1,000", pairs, s.items, s.largest)
	}
}

func TestExportOfAJobThatTakesSeveralPollsCompletes(t *testing.T) {
	sim, url := startExportSim(t, graphsim.Config{Devices: 40, DetectedApps: 200, AppsPerDevice: 20, Seed: 22,
		ReadWrite: true, ExportPolls: 4, ExportDelay: 30 * time.Millisecond})
	in := newExportTestInput(t, sim, url, nil)
	plan := fastExportPlan()
	s := runExportSync(t, in, &plan, nil)
	if s.err != nil {
		t.Fatal(s.err)
	}
	checkExactlyGraphsimsInventory(t, sim, s.appsSync)
	checkStorageSawNoToken(t, sim)
	if s.largest > plan.batch {
		t.Errorf("an item of %d pairs, the plan's batch is %d", s.largest, plan.batch)
	}
	jobRequests := settled(func() int {
		n := 0
		for _, r := range sim.Requests() {
			if r.Kind == graphsim.KindExportJob {
				n++
			}
		}
		return n
	}, func(n int) bool { return n >= 1+5 })
	if jobRequests < 1+5 {
		t.Errorf("%d requests about the job: the POST and at least 5 polls were needed", jobRequests)
	}
}

func TestExportWithoutReadWriteNamesThePermissionAndEmitsNoPair(t *testing.T) {
	sim, url := startExportSim(t, graphsim.Config{Devices: 20, DetectedApps: 60, AppsPerDevice: 10, Seed: 23})
	in := newExportTestInput(t, sim, url, nil)
	plan := fastExportPlan()
	s := runExportSync(t, in, &plan, nil)
	if s.err == nil {
		t.Fatal("the export succeeded without DeviceManagementManagedDevices.ReadWrite.All")
	}
	// What the sync reports, as syncOnce words it.
	msg := in.stopped(context.Background(), s.run, "joining apps and devices "+strategyExport, s.err).Error()
	if !strings.Contains(msg, "DeviceManagementManagedDevices.ReadWrite.All") {
		t.Errorf("the error does not name the permission: %s", msg)
	}
	if strings.Contains(msg, "Read.All and give admin consent") {
		t.Errorf("the error suggests the read permission, which the app holds: %s", msg)
	}
	if secret := sim.Config().ClientSecret; strings.Contains(msg, secret) || strings.Contains(msg, "Bearer") {
		t.Errorf("the error shows a credential: %s", msg)
	}
	if len(s.pairs) != 0 || s.run.pairs != 0 {
		t.Errorf("%d pairs emitted", len(s.pairs))
	}
	if len(s.apps) != len(sim.DetectedApps()) {
		t.Errorf("listApps emitted %d apps of %d", len(s.apps), len(sim.DetectedApps()))
	}
	if n := len(sim.StorageRequests()); n != 0 {
		t.Errorf("%d downloads", n)
	}
}

// probeResources captures the Resources of a stream run around a probe
// input, whose logger is the stream's: MockResources logs nowhere.
var (
	probeOnce      sync.Once
	probeMu        sync.Mutex
	probeResources *service.Resources
)

type probeInput struct{}

func (probeInput) Connect(context.Context) error { return nil }
func (probeInput) Read(context.Context) (*service.Message, service.AckFunc, error) {
	return nil, nil, service.ErrEndOfInput
}
func (probeInput) Close(context.Context) error { return nil }

// syncBuffer is a log destination tests read while the input writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// resourcesLoggingTo returns Resources whose logger writes text lines
// (level=WARN msg=...) to logs, at every level from DEBUG.
func resourcesLoggingTo(t *testing.T, logs *syncBuffer) *service.Resources {
	t.Helper()
	probeOnce.Do(func() {
		err := service.RegisterInput("intune_export_test_probe", service.NewConfigSpec(),
			func(_ *service.ParsedConfig, mgr *service.Resources) (service.Input, error) {
				probeMu.Lock()
				probeResources = mgr
				probeMu.Unlock()
				return probeInput{}, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	})
	b := service.NewStreamBuilder()
	b.SetLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err := b.AddInputYAML("intune_export_test_probe: {}"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML("drop: {}"); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	// The input is built when the stream runs; it ends at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := stream.Run(ctx); err != nil {
		t.Fatal(err)
	}
	probeMu.Lock()
	defer probeMu.Unlock()
	if probeResources == nil {
		t.Fatal("the probe input was not built")
	}
	res := probeResources
	probeResources = nil
	return res
}

func TestExportEmitsPairsOfUnlistedAppsAndWarnsOnce(t *testing.T) {
	sim, url := startExportSim(t, graphsim.Config{Devices: 40, DetectedApps: 150, AppsPerDevice: 20, Seed: 24, ReadWrite: true})
	logs := &syncBuffer{}
	in := newExportTestInput(t, sim, url, resourcesLoggingTo(t, logs))
	// As if the first five apps were installed after the listing.
	const unlisted = 5
	var missing map[string]bool
	plan := fastExportPlan()
	s := runExportSync(t, in, &plan, func(apps []appRef) []appRef {
		missing = map[string]bool{}
		for _, a := range apps[:unlisted] {
			missing[a.id] = true
		}
		return apps[unlisted:]
	})
	if s.err != nil {
		t.Fatal(s.err)
	}
	checkExactlyGraphsimsInventory(t, sim, s.appsSync)
	unlistedPairs := 0
	for _, p := range sim.DeviceAppPairs() {
		if missing[p.AppID] {
			unlistedPairs++
		}
	}
	var warnings []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "not hold") {
			warnings = append(warnings, line)
		}
	}
	if len(warnings) != 1 {
		t.Fatalf("%d warnings about unlisted apps, want 1:\n%s", len(warnings), logs.String())
	}
	w := warnings[0]
	if !strings.Contains(w, "level=WARN") || !strings.Contains(w, " "+strconv.Itoa(unlistedPairs)+" pairs") || !strings.Contains(w, " "+strconv.Itoa(unlisted)+" apps") {
		t.Errorf("the warning should count %d pairs of %d apps: %s", unlistedPairs, unlisted, w)
	}
	if strings.Contains(logs.String(), "sig=") {
		t.Errorf("a log line shows the download link's signature:\n%s", logs)
	}
}
