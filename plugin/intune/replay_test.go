package intune

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// flakyDestination is an output that behaves like a database going away:
// batched, several batches in flight, and every write refused (a nack, as
// sql_raw answers) while it is down.
type flakyDestination struct {
	mu         sync.Mutex
	down       bool
	delivered  map[string]int // id -> deliveries
	attempted  map[string]bool
	duringDown map[string]bool // ids offered while down
	refused    int
	perSync    map[string]map[string]bool // sync id -> ids delivered
}

func (d *flakyDestination) setDown(down bool) {
	d.mu.Lock()
	d.down = down
	d.mu.Unlock()
}

func (d *flakyDestination) write(batch service.MessageBatch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, m := range batch {
		id, _ := m.MetaGet(metaDeviceID)
		d.attempted[id] = true
		if d.down {
			d.duringDown[id] = true
		}
	}
	if d.down {
		d.refused++
		return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	for _, m := range batch {
		id, _ := m.MetaGet(metaDeviceID)
		d.delivered[id]++
		syncID, _ := m.MetaGet(metaSyncID)
		if d.perSync[syncID] == nil {
			d.perSync[syncID] = map[string]bool{}
		}
		d.perSync[syncID][id] = true
	}
	return nil
}

var registerFlaky sync.Once
var flakyByLabel sync.Map // label -> *flakyDestination, so each test has its own

// The output registered for these tests: batches as the shipped SQL
// configs do (500 at a time, four in flight).
func flakyOutput(t *testing.T, label string) *flakyDestination {
	registerFlaky.Do(func() {
		err := service.RegisterBatchOutput("intune_test_flaky", service.NewConfigSpec().Field(service.NewStringField("label")),
			func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
				l, _ := conf.FieldString("label")
				d, _ := flakyByLabel.Load(l)
				return &flakyWriter{d: d.(*flakyDestination)}, service.BatchPolicy{Count: 500, Period: "100ms"}, 4, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	})
	d := &flakyDestination{delivered: map[string]int{}, attempted: map[string]bool{}, duringDown: map[string]bool{}, perSync: map[string]map[string]bool{}}
	flakyByLabel.Store(label, d)
	return d
}

type flakyWriter struct{ d *flakyDestination }

func (w *flakyWriter) Connect(context.Context) error { return nil }
func (w *flakyWriter) WriteBatch(_ context.Context, b service.MessageBatch) error {
	return w.d.write(b)
}
func (w *flakyWriter) Close(context.Context) error { return nil }

// A destination that refuses everything for a while, as a database does
// while it restarts, costs a pause, not the sync: once it is back every
// device arrives and the sync completes. While it is away the input holds
// what was in flight and reads no further: it does not fetch the tenant
// into memory. (Benthos' own AutoRetryNacks wedged here: it sleeps under
// the lock every acknowledgement needs.)
func TestAnOutageOfTheDestinationCostsAPauseNotTheSync(t *testing.T) {
	resetSyncFailure()
	const devices = 30000
	sim, url := startSim(t, graphsim.Config{Devices: devices, PageSize: 1000, Latency: 20 * time.Millisecond})
	dest := flakyOutput(t, t.Name())
	logs := &bufLogger{}
	b := service.NewStreamBuilder()
	b.SetPrintLogger(logs)
	if err := b.AddInputYAML(inputYAML(sim, url, "")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(fmt.Sprintf("intune_test_flaky:\n  label: %q", t.Name())); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	// Down from the first delivery of page 5 for three seconds.
	go func() {
		for {
			dest.mu.Lock()
			n := len(dest.attempted)
			dest.mu.Unlock()
			if n >= 4000 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		dest.setDown(true)
		time.Sleep(3 * time.Second)
		dest.setDown(false)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	started := time.Now()
	if err := stream.Run(ctx); err != nil {
		t.Fatalf("the stream did not end: %v (after %s)\n%s", err, time.Since(started), logs)
	}
	if SyncFailure() != nil {
		t.Fatalf("the sync failed: %v", SyncFailure())
	}
	dest.mu.Lock()
	defer dest.mu.Unlock()
	if dest.refused == 0 {
		t.Fatal("the destination never refused a batch: the test proved nothing")
	}
	twice := 0
	for i := 0; i < devices; i++ {
		n := dest.delivered[sim.DeviceID(i)]
		if n == 0 {
			t.Fatalf("device %d was never delivered", i)
		}
		twice += n - 1
	}
	// At least once, and here exactly once: a refused batch was not applied.
	if twice != 0 {
		t.Errorf("%d devices delivered twice", twice)
	}
	// Bounded: what was offered while the destination was down is what was
	// in flight (four batches of 500) and a page or two read ahead, not the
	// tenant.
	if len(dest.duringDown) > 5000 {
		t.Errorf("%d distinct devices were read while the destination was down: the input kept reading", len(dest.duringDown))
	}
	if !strings.Contains(logs.String(), "The outputs refused a device") {
		t.Errorf("the refusals were not logged:\n%s", logs)
	}
}

// In interval mode an outage during one sync delays that sync, and the next
// one runs and completes as usual.
func TestAnOutageDuringOneIntervalSyncDoesNotBreakTheNext(t *testing.T) {
	resetSyncFailure()
	const devices = 3000
	sim, url := startSim(t, graphsim.Config{Devices: devices, PageSize: 500, Latency: 20 * time.Millisecond})
	dest := flakyOutput(t, t.Name())
	b := service.NewStreamBuilder()
	b.SetPrintLogger(&bufLogger{})
	if err := b.AddInputYAML(inputYAML(sim, url, "", "  interval: 500ms")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(fmt.Sprintf("intune_test_flaky:\n  label: %q", t.Name())); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	dest.setDown(true) // the first sync meets the outage from its first batch
	time.AfterFunc(1500*time.Millisecond, func() { dest.setDown(false) })
	complete := func() int {
		dest.mu.Lock()
		defer dest.mu.Unlock()
		n := 0
		for _, ids := range dest.perSync {
			if len(ids) == devices {
				n++
			}
		}
		return n
	}
	go func() {
		for deadline := time.Now().Add(60 * time.Second); complete() < 2 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		_ = stream.StopWithin(10 * time.Second)
	}()
	_ = stream.Run(context.Background())
	if n := complete(); n < 2 {
		t.Fatalf("%d syncs delivered every device, want 2 (the one that met the outage, and the next)", n)
	}
	dest.mu.Lock()
	defer dest.mu.Unlock()
	if dest.refused == 0 {
		t.Fatal("the destination never refused a batch")
	}
}
