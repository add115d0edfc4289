package e2e

import (
	"database/sql"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// stateChunk names a chunk of the apps input's state: its generation and
// number (plugin/intune/state_chunks.go).
var stateChunk = regexp.MustCompile(`^intune_detected_apps_state_.*_[0-9a-f]{12}_([0-9]+)_([0-9]+)$`)

// stateChunks counts the apps state's chunks in the database, by
// generation.
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
			gen, _ := strconv.Atoi(m[1])
			gens[gen]++
		}
	}
	return gens
}

// TestAKillDuringTheStateSaveLosesNothing runs an apps config, changes the
// tenant (upgrades, uninstalls, a retired device), and kills the second
// run with SIGKILL while it saves the state: half-way through the new
// snapshot's chunks, or after the switch while the replaced chunks are
// deleted. The rerun must leave the tables exactly graphsim's: no pair
// deleted that the tenant has, no change or deletion lost; and so must
// the sync after it, which reads the state the rerun left.
func TestAKillDuringTheStateSaveLosesNothing(t *testing.T) {
	points := []struct {
		name string
		// now tells, from the chunks per generation, that the run is at
		// the kill point: gen 1 is the first run's snapshot, gen 2 the
		// second's; full is how many chunks gen 1 had.
		now func(gens map[int]int, full int) bool
	}{
		{"while writing the new snapshot", func(gens map[int]int, full int) bool { return gens[2] >= full/2 }},
		{"while deleting the replaced snapshot", func(gens map[int]int, full int) bool { return gens[1] > 0 && gens[1] < full }},
	}
	eachDatabase(t, "apps-sqlite.yaml", "apps-postgres.yaml", func(t *testing.T, tb shippedTable) {
		for _, point := range points {
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
				cmd, _, stderr := startBinary(t, env, "-c", config(tb.config))
				exited := make(chan error, 1)
				go func() { exited <- cmd.Wait() }()
				killed := false
				for !killed {
					select {
					case err := <-exited:
						t.Fatalf("run 2 ended (%v) before the kill point %q:\n%s", err, point.name, stderr)
					default:
					}
					if point.now(stateChunks(t, tb.db), full) {
						if err := cmd.Process.Kill(); err != nil {
							t.Fatal(err)
						}
						killed = true
					}
					time.Sleep(time.Millisecond)
				}
				<-exited

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
