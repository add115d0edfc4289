package intune

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// runDeadLetterStream syncs sim's tenant through intune_dead_letter to the
// test outputs labelled label, to the end of the sync, and returns the logs.
func runDeadLetterStream(t *testing.T, sim *graphsim.Server, url, label string) *bufLogger {
	t.Helper()
	return streamTest{input: inputYAML(sim, url, ""), timeout: time.Minute, output: fmt.Sprintf(`intune_dead_letter:
  output:
    intune_test_output: { label: %q }
  dead_letter:
    intune_test_output: { label: %q }
  batching: { count: 500, period: 100ms }
  max_in_flight: 4
`, label, label+" dead letter")}.run(t).logs
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

// SQLite says a body its columns cannot read is "malformed JSON" with its
// generic SQLITE_ERROR, which a missing table also gives: only the first
// is the device's fault. Both errors come from SQLite itself.
func TestSQLiteMalformedJSONIsTheDevicesFaultAMissingTableIsNot(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE d (id TEXT PRIMARY KEY, name TEXT GENERATED ALWAYS AS (json_extract(_raw, '$.deviceName')) STORED, _raw TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	_, malformed := db.Exec(`INSERT INTO d (id, _raw) VALUES ('a', 'not json')`)
	_, missing := db.Exec(`INSERT INTO nowhere (id) VALUES ('a')`)
	if malformed == nil || missing == nil {
		t.Fatalf("SQLite took what it should refuse: %v, %v", malformed, missing)
	}
	if reason, content := refusedForContent(malformed); !content || !strings.Contains(reason, "malformed JSON") {
		t.Errorf("%v: content %v, reason %q; want the device's fault", malformed, content, reason)
	}
	if _, content := refusedForContent(missing); content {
		t.Errorf("%v was taken for the device's fault: it would be dead-lettered, not retried", missing)
	}
}
