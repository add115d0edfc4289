package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/internal/testdb"
)

// freshDatabase creates an empty database for one test (see testdb).
func freshDatabase(t *testing.T) (string, *sql.DB) { return testdb.FreshPostgres(t) }

func TestPostgresConfigKeepsOneTypedRowPerDeviceAndAppliesChanges(t *testing.T) {
	const n = 10000
	dsn, db := freshDatabase(t)
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 13})
	env = append(env, "INTUNE_PG_DSN="+dsn)

	changed := []int{0, 1, 2, 999, 1000, 5003, 9999}
	for run := 1; run <= 2; run++ {
		if run == 2 {
			sim.Change(changed...)
		}
		res := runBinary(t, env, "-c", config("postgres.yaml"))
		if res.exitCode != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, res.exitCode, res.stderr)
		}
		var rows, syncs int
		if err := db.QueryRow(`SELECT count(*), count(DISTINCT _sync_id) FROM managed_devices`).Scan(&rows, &syncs); err != nil {
			t.Fatal(err)
		}
		if rows != n || syncs != 1 {
			t.Fatalf("run %d: %d rows from %d syncs, want %d rows all from this run's sync", run, rows, syncs, n)
		}
	}

	// Every device's values, as PostgreSQL typed them, against what graphsim
	// serves now (the changed devices in their new revision).
	got, err := db.Query(`SELECT id, device_name, os_version, compliance_state, is_encrypted,
		total_storage_space_in_bytes, free_storage_space_in_bytes,
		to_char(last_sync_date_time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		device_action_results::text, jsonb_typeof(device_action_results) FROM managed_devices`)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	type row struct {
		name, osVersion, compliance, lastSync, actions, actionsType sql.NullString
		encrypted                                                   sql.NullBool
		total, free                                                 sql.NullInt64
	}
	rows := map[string]row{}
	for got.Next() {
		var id string
		var r row
		if err := got.Scan(&id, &r.name, &r.osVersion, &r.compliance, &r.encrypted, &r.total, &r.free, &r.lastSync, &r.actions, &r.actionsType); err != nil {
			t.Fatal(err)
		}
		rows[id] = r
	}
	bigInts := 0
	for i := 0; i < n; i++ {
		d := decodeDevice(t, sim.EmittedDevice(i, false, false))
		r, ok := rows[d["id"].(string)]
		if !ok {
			t.Fatalf("device %d has no row", i)
		}
		if r.name.String != d["deviceName"] || r.osVersion.String != d["osVersion"] || r.compliance.String != d["complianceState"] {
			t.Fatalf("device %d: row (%s, %s, %s), want (%v, %v, %v)", i, r.name.String, r.osVersion.String, r.compliance.String, d["deviceName"], d["osVersion"], d["complianceState"])
		}
		if fmt.Sprint(r.total.Int64) != fmt.Sprint(d["totalStorageSpaceInBytes"]) || fmt.Sprint(r.free.Int64) != fmt.Sprint(d["freeStorageSpaceInBytes"]) {
			t.Fatalf("device %d: storage (%d, %d), want (%v, %v) exactly", i, r.total.Int64, r.free.Int64, d["totalStorageSpaceInBytes"], d["freeStorageSpaceInBytes"])
		}
		if r.total.Int64 > 1<<53 {
			bigInts++
		}
		if r.encrypted.Valid != (d["isEncrypted"] != nil) || (r.encrypted.Valid && r.encrypted.Bool != d["isEncrypted"]) {
			t.Fatalf("device %d: is_encrypted %v, want %v", i, r.encrypted, d["isEncrypted"])
		}
		if r.lastSync.String != strings.TrimSuffix(strings.Split(fmt.Sprint(d["lastSyncDateTime"]), ".")[0], "Z")+"Z" {
			t.Fatalf("device %d: last_sync_date_time %s, want %v", i, r.lastSync.String, d["lastSyncDateTime"])
		}
		if r.actionsType.String != "array" || !sameJSON(t, r.actions.String, d["deviceActionResults"]) {
			t.Fatalf("device %d: device_action_results %s (%s), want the jsonb array %v", i, r.actions.String, r.actionsType.String, d["deviceActionResults"])
		}
	}
	if bigInts == 0 {
		t.Error("no device had an Int64 above 2^53: the exactness check proved nothing")
	}
}

// A batch that carries the same device twice (a page delivered again after
// a restart) must not fail: the last copy wins.
func TestPostgresConfigSurvivesDuplicateIdsInOneBatch(t *testing.T) {
	dsn, db := freshDatabase(t)
	device := func(name string) string {
		b, _ := json.Marshal(map[string]any{"id": "dup-1", "deviceName": name, "totalStorageSpaceInBytes": json.Number("9007199254740993")})
		return string(b)
	}
	// The shipped output and pipeline, fed from stdin instead of Graph.
	conf := withInput(t, config("postgres.yaml"), stdinInput())
	res := runBinaryWithStdin(t, []string{"INTUNE_PG_DSN=" + dsn},
		device("first")+"\n"+`{"id":"other","deviceName":"x"}`+"\n"+device("last")+"\n", "-c", conf)
	if res.exitCode != 0 {
		t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
	}
	var count int
	var name string
	var total int64
	if err := db.QueryRow(`SELECT count(*) FROM managed_devices`).Scan(&count); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT device_name, total_storage_space_in_bytes FROM managed_devices WHERE id = 'dup-1'`).Scan(&name, &total); err != nil {
		t.Fatal(err)
	}
	if count != 2 || name != "last" || total != 9007199254740993 {
		t.Errorf("%d rows, dup-1 = (%s, %d); want 2 rows and the last copy with its exact size", count, name, total)
	}
}

// The SQLite config takes the same duplicate in one batch: the last copy wins.
func TestSQLiteConfigSurvivesDuplicateIdsInOneBatch(t *testing.T) {
	dsn := "file:" + t.TempDir() + "/dup.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	conf := withInput(t, config("sqlite.yaml"), stdinInput())
	res := runBinaryWithStdin(t, []string{"INTUNE_SQLITE_DSN=" + dsn},
		`{"id":"dup-1","deviceName":"first"}`+"\n"+`{"id":"other"}`+"\n"+`{"id":"dup-1","deviceName":"last"}`+"\n", "-c", conf)
	if res.exitCode != 0 {
		t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
	}
	rows := dumpTable(t, dsn)
	if len(rows) != 2 || rows["dup-1"]["device_name"] != "last" {
		t.Errorf("rows %v; want 2, dup-1 named last", rows)
	}
}
