package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// stateChunk names a chunk of an input's state: its generation and number
// (plugin/intune/state_chunks.go).
var stateChunk = regexp.MustCompile(`^intune_(detected_apps|managed_devices)_state_.*_[0-9a-f]{12}_([0-9]+)_([0-9]+)$`)

// stateChunks counts the state's chunks in the database, by generation.
func stateChunks(t *testing.T, db *sql.DB) map[int]int {
	t.Helper()
	rows, err := db.Query(`SELECT key FROM intune_state`)
	if err != nil {
		return nil // not created yet
	}
	defer rows.Close()
	gens := map[int]int{}
	for rows.Next() {
		var key string
		if err := rows.Scan(&key); err != nil {
			t.Fatal(err)
		}
		if m := stateChunk.FindStringSubmatch(key); m != nil {
			gen, _ := strconv.Atoi(m[2])
			gens[gen]++
		}
	}
	return gens
}

// killPoints are the moments of a save a kill tests: gen 1 is the first
// run's snapshot, gen 2 the second's; full is how many chunks gen 1 had.
var killPoints = []struct {
	name string
	now  func(gens map[int]int, full int) bool
}{
	{"while writing the new snapshot", func(gens map[int]int, full int) bool { return gens[2] >= full/2 }},
	{"while deleting the replaced snapshot", func(gens map[int]int, full int) bool { return gens[1] > 0 && gens[1] < full }},
}

// killAt starts the binary and kills it with SIGKILL once the database's
// state chunks say it is at point. A run that ends first fails the test.
func killAt(t *testing.T, db *sql.DB, env []string, cfg string, full int, name string, now func(map[int]int, int) bool) {
	t.Helper()
	cmd, _, stderr := startBinary(t, env, "-c", config(cfg))
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for {
		select {
		case err := <-exited:
			t.Fatalf("the run ended (%v) before the kill point %q:\n%s", err, name, stderr)
		default:
		}
		if now(stateChunks(t, db), full) {
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-exited
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAKillDuringTheDeviceStateSaveLosesNothing runs a device config with
// emit: changes, changes and retires devices, and kills the second run
// while it saves the state. The rerun, and the sync after it, must leave
// the table exactly graphsim's: every device, the retired ones marked
// deleted and no other, the changed ones as they are now.
func TestAKillDuringTheDeviceStateSaveLosesNothing(t *testing.T) {
	eachShippedTable(t, func(t *testing.T, tb shippedTable) {
		for _, point := range killPoints {
			t.Run(strings.ReplaceAll(point.name, " ", "_"), func(t *testing.T) {
				if tb.dest == "sqlite" {
					tb = sqliteTable(t, tb.config)
				} else {
					dsn, db := freshDatabase(t)
					tb = shippedTable{tb.dest, tb.config, []string{"INTUNE_PG_DSN=" + dsn}, db}
				}
				const n = 2000
				sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 53})
				env = append(env, tb.env...)
				// Chunks of 64 bytes: hundreds, so that the save takes long
				// enough to be caught in the middle.
				env = append(env, "INTUNE_EMIT=changes", "INTUNE_STATE_CHUNK_BYTES=64")
				if res := runBinary(t, env, "-c", config(tb.config)); res.exitCode != 0 {
					t.Fatalf("run 1: exit %d\n%s", res.exitCode, res.logs())
				}
				full := stateChunks(t, tb.db)[1]
				if full < 500 {
					t.Fatalf("the first snapshot is %d chunks, want hundreds", full)
				}
				changed, retired := []int{5, 600, 1200, 1999}, []int{7, 1500}
				sim.Change(changed...)
				sim.Remove(retired...)
				killAt(t, tb.db, env, tb.config, full, point.name, point.now)
				for run := 3; run <= 4; run++ {
					if res := runBinary(t, env, "-c", config(tb.config)); res.exitCode != 0 {
						t.Fatalf("run %d: exit %d\n%s", run, res.exitCode, res.logs())
					}
					rows := tb.rows(t)
					if len(rows) != n {
						t.Fatalf("run %d: %d rows, want %d", run, len(rows), n)
					}
					gone := map[string]bool{sim.DeviceID(7): true, sim.DeviceID(1500): true}
					for id, row := range rows {
						deleted := fmt.Sprint(row["_deleted"]) == "true" || fmt.Sprint(row["_deleted"]) == "1"
						if deleted != gone[id] {
							t.Errorf("run %d: device %s marked deleted %v, want %v", run, id, deleted, gone[id])
						}
					}
					for _, i := range changed {
						var want struct{ OsVersion, DeviceName string }
						if err := json.Unmarshal(sim.EmittedDevice(i, false, false), &want); err != nil {
							t.Fatal(err)
						}
						row := rows[sim.DeviceID(i)]
						if fmt.Sprint(row["os_version"]) != want.OsVersion || fmt.Sprint(row["device_name"]) != want.DeviceName {
							t.Errorf("run %d: changed device %d is %v / %v, want %q / %q", run, i, row["os_version"], row["device_name"], want.OsVersion, want.DeviceName)
						}
					}
				}
				if gens := stateChunks(t, tb.db); len(gens) != 1 {
					t.Errorf("chunks of %d generations are left, want the last one's only: %v", len(gens), gens)
				}
			})
		}
	})
}

// TestAKillDuringTheStateSaveLosesNothing runs an apps config, changes the
// tenant (upgrades, uninstalls, a retired device), and kills the second
// run with SIGKILL while it saves the state: half-way through the new
// snapshot's chunks, or after the switch while the replaced chunks are
// deleted. The rerun must leave the tables exactly graphsim's: no pair
// deleted that the tenant has, no change or deletion lost; and so must
// the sync after it, which reads the state the rerun left.
func TestAKillDuringTheStateSaveLosesNothing(t *testing.T) {
	eachDatabase(t, "apps-sqlite.yaml", "apps-postgres.yaml", func(t *testing.T, tb shippedTable) {
		for _, point := range killPoints {
			t.Run(strings.ReplaceAll(point.name, " ", "_"), func(t *testing.T) {
				if tb.dest == "sqlite" {
					tb = sqliteTable(t, tb.config) // a database of its own
				} else {
					dsn, db := freshDatabase(t)
					tb = shippedTable{tb.dest, tb.config, []string{"INTUNE_PG_DSN=" + dsn}, db}
				}
				sim, env := simEnv(t, graphsim.Config{Devices: 150, DetectedApps: 800, AppsPerDevice: 40, Seed: 43})
				// Chunks of 64 bytes: over a thousand, so that the saves take
				// long enough to be caught in the middle.
				env = append(env, tb.env...)
				env = append(env, "INTUNE_STATE_CHUNK_BYTES=64", "INTUNE_MAX_REQUESTS_PER_SECOND=2000", "INTUNE_APPS_STRATEGY=per_device")
				if res := runBinary(t, env, "-c", config(tb.config)); res.exitCode != 0 {
					t.Fatalf("run 1: exit %d\n%s", res.exitCode, res.logs())
				}
				checkAppTables(t, 1, tb.db, sim)
				full := stateChunks(t, tb.db)[1]
				if full < 1000 {
					t.Fatalf("the first snapshot is %d chunks, want over a thousand", full)
				}

				sim.ChangeApps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 50, 51)
				sim.Remove(7, 80)
				killAt(t, tb.db, env, tb.config, full, point.name, point.now)

				for run := 3; run <= 4; run++ {
					res := runBinary(t, env, "-c", config(tb.config))
					if res.exitCode != 0 {
						t.Fatalf("run %d: exit %d\n%s", run, res.exitCode, res.logs())
					}
					checkAppTables(t, run, tb.db, sim)
				}
				if gens := stateChunks(t, tb.db); len(gens) != 1 {
					t.Errorf("chunks of %d generations are left, want the last one's only: %v", len(gens), gens)
				}
			})
		}
	})
}
