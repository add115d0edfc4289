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

// sqlStateError is what lib/pq and pgx errors look like to the classifier.
type sqlStateError struct{ code, msg string }

func (e sqlStateError) Error() string    { return "pq: " + e.msg }
func (e sqlStateError) SQLState() string { return e.code }

// refusingTable is a destination that refuses any batch holding a poisoned
// device, as PostgreSQL refuses a batch statement with one bad row, and
// everything while it is down.
type refusingTable struct {
	mu       sync.Mutex
	poison   map[string]bool
	down     bool
	rows     map[string]int
	dead     map[string]string // id -> intune_rejection
	statemts int
}

var registerRefusing sync.Once
var refusingByLabel sync.Map

func refusingOutputs(t *testing.T, label string, poison ...string) *refusingTable {
	registerRefusing.Do(func() {
		spec := service.NewConfigSpec().Field(service.NewStringField("label")).Field(service.NewBoolField("dead"))
		err := service.RegisterBatchOutput("intune_test_refusing", spec,
			func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
				l, _ := conf.FieldString("label")
				dead, _ := conf.FieldBool("dead")
				tb, _ := refusingByLabel.Load(l)
				return &refusingWriter{tb: tb.(*refusingTable), dead: dead}, service.BatchPolicy{}, 1, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	})
	tb := &refusingTable{poison: map[string]bool{}, rows: map[string]int{}, dead: map[string]string{}}
	for _, id := range poison {
		tb.poison[id] = true
	}
	refusingByLabel.Store(label, tb)
	return tb
}

type refusingWriter struct {
	tb   *refusingTable
	dead bool
}

func (w *refusingWriter) Connect(context.Context) error { return nil }
func (w *refusingWriter) Close(context.Context) error   { return nil }

func (w *refusingWriter) WriteBatch(_ context.Context, b service.MessageBatch) error {
	tb := w.tb
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if w.dead {
		for _, m := range b {
			id, _ := m.MetaGet(metaDeviceID)
			reason, _ := m.MetaGet(metaRejection)
			tb.dead[id] = reason
		}
		return nil
	}
	tb.statemts++
	if tb.down {
		return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	for _, m := range b {
		if id, _ := m.MetaGet(metaDeviceID); tb.poison[id] {
			return sqlStateError{"22P05", "unsupported Unicode escape sequence"}
		}
	}
	for _, m := range b {
		id, _ := m.MetaGet(metaDeviceID)
		tb.rows[id]++
	}
	return nil
}

// runDeadLetterStream syncs sim's tenant through intune_dead_letter to the
// test outputs labelled label, to the end of the sync, and returns the logs.
func runDeadLetterStream(t *testing.T, sim *graphsim.Server, url, label string) *bufLogger {
	t.Helper()
	logs := &bufLogger{}
	b := service.NewStreamBuilder()
	b.SetPrintLogger(logs)
	if err := b.AddInputYAML(inputYAML(sim, url, "")); err != nil {
		t.Fatal(err)
	}
	if err := b.AddOutputYAML(fmt.Sprintf(`intune_dead_letter:
  output:
    intune_test_refusing: { label: %q, dead: false }
  dead_letter:
    intune_test_refusing: { label: %q, dead: true }
  batching: { count: 500, period: 100ms }
  max_in_flight: 4
`, label, label)); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := stream.Run(ctx); err != nil {
		t.Fatalf("%v\n%s", err, logs)
	}
	return logs
}

// A device the destination refuses for its content goes to the dead letter,
// named in the log with the error; the rest of its batch is written.
func TestARefusedDeviceGoesToTheDeadLetterAndTheRestOfItsBatchIsWritten(t *testing.T) {
	resetSyncFailure()
	const devices = 5000
	sim, url := startSim(t, graphsim.Config{Devices: devices, PageSize: 1000})
	bad := []string{sim.DeviceID(1234), sim.DeviceID(1240), sim.DeviceID(4999)}
	tb := refusingOutputs(t, t.Name(), bad...)
	logs := runDeadLetterStream(t, sim, url, t.Name())
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) != devices-len(bad) || len(tb.dead) != len(bad) {
		t.Fatalf("%d rows and %d dead letters, want %d and %d", len(tb.rows), len(tb.dead), devices-len(bad), len(bad))
	}
	for _, id := range bad {
		if !strings.Contains(tb.dead[id], "22P05") || tb.rows[id] != 0 {
			t.Errorf("device %s: dead letter %q, %d rows", id, tb.dead[id], tb.rows[id])
		}
		if !strings.Contains(logs.String(), "refused device "+id+" for its content") {
			t.Errorf("device %s is not named in the log", id)
		}
	}
	for id, n := range tb.rows {
		if n != 1 {
			t.Fatalf("device %s written %d times", id, n)
		}
	}
	if got := DeadLettered(); got != int64(len(bad)) {
		t.Errorf("DeadLettered() = %d", got)
	}
	if syncs, messages := Delivered(); syncs != 1 || messages != devices {
		t.Errorf("Delivered() = %d syncs, %d messages", syncs, messages)
	}
	if !strings.Contains(logs.String(), "3 refused by the destination for their content, in its dead letter") {
		t.Errorf("the sync's last line does not count the dead letters:\n%s", logs)
	}
	// Isolating three devices in 10 batches of 500 costs a few dozen
	// statements, not one per device.
	if tb.statemts > 80 {
		t.Errorf("%d statements", tb.statemts)
	}
}

// An error of the destination's state is never a dead letter: the batch is
// refused whole and sent again once the destination is back.
func TestATransientErrorIsRetriedNeverDeadLettered(t *testing.T) {
	resetSyncFailure()
	const devices = 3000
	sim, url := startSim(t, graphsim.Config{Devices: devices, PageSize: 500})
	tb := refusingOutputs(t, t.Name())
	tb.down = true
	time.AfterFunc(time.Second, func() { tb.mu.Lock(); tb.down = false; tb.mu.Unlock() })
	runDeadLetterStream(t, sim, url, t.Name())
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if len(tb.rows) != devices || len(tb.dead) != 0 || DeadLettered() != 0 {
		t.Fatalf("%d rows, %d dead letters; want %d and none", len(tb.rows), len(tb.dead), devices)
	}
}
