package intune

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// The destinations tests write to instead of a database: the output
// intune_test_output, and behind it a table that refuses poisoned rows
// (refusingTable) and a database that goes away (flakyDestination).

// errDatabaseDown is what a write to a database that is not there fails
// with.
var errDatabaseDown = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

// testOutputs are the destinations of the output intune_test_output, by
// label, so that each test writes to its own.
var (
	testOutputs        sync.Map // label -> testWriter
	registerTestOutput sync.Once
)

// testOutput makes write the destination of the intune_test_output whose
// label is label. The output's YAML takes batching and max_in_flight (1
// by default), as Benthos' own outputs do.
func testOutput(t *testing.T, label string, write func(service.MessageBatch) error) {
	t.Helper()
	registerTestOutput.Do(func() {
		spec := service.NewConfigSpec().
			Field(service.NewStringField("label")).
			Field(service.NewBatchPolicyField("batching")).
			Field(service.NewIntField("max_in_flight").Default(1))
		err := service.RegisterBatchOutput("intune_test_output", spec,
			func(conf *service.ParsedConfig, _ *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
				label, err := conf.FieldString("label")
				if err != nil {
					return nil, service.BatchPolicy{}, 0, err
				}
				policy, err := conf.FieldBatchPolicy("batching")
				if err != nil {
					return nil, service.BatchPolicy{}, 0, err
				}
				inFlight, err := conf.FieldInt("max_in_flight")
				if err != nil {
					return nil, service.BatchPolicy{}, 0, err
				}
				w, ok := testOutputs.Load(label)
				if !ok {
					return nil, service.BatchPolicy{}, 0, fmt.Errorf("no test output labelled %q", label)
				}
				return w.(testWriter), policy, inFlight, nil
			})
		if err != nil {
			t.Fatal(err)
		}
	})
	testOutputs.Store(label, testWriter(write))
}

type testWriter func(service.MessageBatch) error

func (w testWriter) Connect(context.Context) error { return nil }
func (w testWriter) Close(context.Context) error   { return nil }
func (w testWriter) WriteBatch(_ context.Context, b service.MessageBatch) error {
	return w(b)
}

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

// refusingOutputs registers the table as the test outputs labelled label
// (its rows) and label+" dead letter" (its dead letters).
func refusingOutputs(t *testing.T, label string, poison ...string) *refusingTable {
	tb := &refusingTable{poison: map[string]bool{}, rows: map[string]int{}, dead: map[string]string{}}
	for _, id := range poison {
		tb.poison[id] = true
	}
	testOutput(t, label, tb.write)
	testOutput(t, label+" dead letter", tb.writeDead)
	return tb
}

func (tb *refusingTable) writeDead(b service.MessageBatch) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, m := range b {
		id, _ := m.MetaGet(contract.DeviceID)
		reason, _ := m.MetaGet(contract.Rejection)
		tb.dead[id] = reason
	}
	return nil
}

func (tb *refusingTable) write(b service.MessageBatch) error {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.statemts++
	if tb.down {
		return errDatabaseDown
	}
	for _, m := range b {
		if id, _ := m.MetaGet(contract.DeviceID); tb.poison[id] {
			return sqlStateError{"22P05", "unsupported Unicode escape sequence"}
		}
	}
	for _, m := range b {
		id, _ := m.MetaGet(contract.DeviceID)
		tb.rows[id]++
	}
	return nil
}

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
		id, _ := m.MetaGet(contract.DeviceID)
		d.attempted[id] = true
		if d.down {
			d.duringDown[id] = true
		}
	}
	if d.down {
		d.refused++
		return errDatabaseDown
	}
	for _, m := range batch {
		id, _ := m.MetaGet(contract.DeviceID)
		d.delivered[id]++
		syncID, _ := m.MetaGet(contract.SyncID)
		if d.perSync[syncID] == nil {
			d.perSync[syncID] = map[string]bool{}
		}
		d.perSync[syncID][id] = true
	}
	return nil
}

// flakyOutput registers a flaky destination as the test output labelled
// label and returns it with the output's YAML, which batches as the
// shipped SQL configs do (500 at a time, four in flight).
func flakyOutput(t *testing.T, label string) (*flakyDestination, string) {
	d := &flakyDestination{delivered: map[string]int{}, attempted: map[string]bool{}, duringDown: map[string]bool{}, perSync: map[string]map[string]bool{}}
	testOutput(t, label, d.write)
	return d, fmt.Sprintf("intune_test_output:\n  label: %q\n  batching: { count: 500, period: 100ms }\n  max_in_flight: 4", label)
}
