package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	_ "github.com/lib/pq"
	_ "modernc.org/sqlite" // pure Go, so that the harness builds without cgo

	"github.com/intune-benthos/intune-benthos/bench/internal/devices"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// The destination scenario measures what users run: a shipped config from
// start to exit, Graph to rows, beside the destination's own floor measured
// in the same run (the same devices loaded the fastest way the database
// has, read from a file: no Graph at all), and the flattening's CPU beside
// the input's.

// destinationPrograms are the programs of the destination scenario, in the
// order they run; the floors of a config follow it.
func destinationPrograms() []program {
	return []program{
		programNamed("intune-drop"), // the input's own CPU
		{
			name: "intune-flatten",
			what: "the same with the warehouse configs' flattening, `intune_flatten` (`nested: json`, `_raw` included), before the `drop` output",
			command: func(p *paths, url, out string) ([]string, error) {
				cfg, err := writeConfig(p.tmp, "intune-flatten.yaml", intuneInput(url)+
					"pipeline:\n  processors:\n    - intune_flatten: { nested: json }\noutput:\n  drop: {}\n")
				return []string{p.binary, "-c", cfg}, err
			},
		},
		{
			name:  "sqlite.yaml",
			what:  "the shipped `config/sqlite.yaml`, unchanged, from start to exit into an empty SQLite file: Graph to rows, the whole device kept",
			floor: "sqlite-floor",
			before: func(p *paths) ([]string, error) {
				db := filepath.Join(p.tmp, "e2e.db")
				for _, suffix := range []string{"", "-wal", "-shm"} {
					_ = os.Remove(db + suffix)
				}
				return append(graphEnv(p.url), "INTUNE_SQLITE_DSN="+schema.SQLiteDSN(db), noDetails), nil
			},
			command: func(p *paths, url, out string) ([]string, error) {
				return shippedConfig(p, "sqlite.yaml"), nil
			},
			verify: func(p *paths, want int) error {
				return verifyTable(p, "sqlite", "file:"+filepath.Join(p.tmp, "e2e.db"), want)
			},
		},
		{
			name: "sqlite-floor",
			what: "the SQLite floor (`bench/cmd/sqlitefloor`): the C SQLite library (mattn/go-sqlite3, cgo) upserting the same devices, read from a file, in ONE transaction into the same table with plain typed columns, each extracted by `json_extract` from the device, plus the whole device",
			before: func(p *paths) ([]string, error) {
				_ = os.Remove(filepath.Join(p.tmp, "floor.db"))
				return nil, nil
			},
			command: func(p *paths, url, out string) ([]string, error) {
				return []string{p.sqliteFloor, "-db", filepath.Join(p.tmp, "floor.db"), "-devices", p.devicesFile}, nil
			},
			verify: func(p *paths, want int) error {
				return verifyTable(p, "sqlite", "file:"+filepath.Join(p.tmp, "floor.db"), want)
			},
		},
		{
			name:  "postgres.yaml",
			what:  "the shipped `config/postgres.yaml`, unchanged, from start to exit into an empty database: Graph to rows, the whole device kept (jsonb)",
			floor: "pg-copy-floor",
			before: func(p *paths) ([]string, error) {
				dsn, err := freshDatabase(p.pgServer)
				return append(graphEnv(p.url), "INTUNE_PG_DSN="+dsn, noDetails), err
			},
			command: func(p *paths, url, out string) ([]string, error) {
				return shippedConfig(p, "postgres.yaml"), nil
			},
			verify: func(p *paths, want int) error { return verifyTable(p, "postgres", benchDatabase(p.pgServer), want) },
		},
		{
			name: "pg-copy-floor",
			what: "the PostgreSQL floor (`bench/cmd/pgfloor`): ONE `COPY` of the same devices, read from a file and flattened in Go, into the same table with plain typed columns plus the whole device as jsonb (same compression), primary key on id",
			before: func(p *paths) ([]string, error) {
				_, err := freshDatabase(p.pgServer)
				return nil, err
			},
			command: func(p *paths, url, out string) ([]string, error) {
				return []string{p.pgFloor, "-dsn", benchDatabase(p.pgServer), "-devices", p.devicesFile}, nil
			},
			verify: func(p *paths, want int) error { return verifyTable(p, "postgres", benchDatabase(p.pgServer), want) },
		},
	}
}

// noDetails leaves details out of the destination scenario, which measures
// Graph to rows: the details scenario measures them, against a throttled
// tenant.
const noDetails = "INTUNE_DETAILS=false"

// graphEnv points the shipped configs at graphsim.
func graphEnv(url string) []string {
	return []string{
		"INTUNE_TENANT_ID=" + tenantID, "INTUNE_CLIENT_ID=" + clientID, "INTUNE_CLIENT_SECRET=" + clientSecret,
		"INTUNE_LOGIN_URL=" + url, "INTUNE_GRAPH_URL=" + url,
	}
}

// shippedConfig runs a config of config/ as it is, with Benthos' HTTP
// server on a free port and WARN logs, as every run of the binary here.
func shippedConfig(p *paths, name string) []string {
	return []string{p.binary, "-c", filepath.Join(p.repo, "config", name),
		"--set", "http.address=127.0.0.1:0", "--set", "logger.level=WARN"}
}

// benchDatabase is the database every PostgreSQL run of the scenario uses,
// dropped and created again before each.
func benchDatabase(server string) string {
	return strings.Replace(server, "/postgres?", "/intune_bench?", 1)
}

func freshDatabase(server string) (string, error) {
	admin, err := sql.Open("postgres", server)
	if err != nil {
		return "", err
	}
	defer admin.Close()
	for _, stmt := range []string{"DROP DATABASE IF EXISTS intune_bench WITH (FORCE)", "CREATE DATABASE intune_bench"} {
		if _, err := admin.Exec(stmt); err != nil {
			return "", fmt.Errorf("%s on %s: %v (-pg names the server)", stmt, server, err)
		}
	}
	return benchDatabase(server), nil
}

// expected is what the table must hold, from the devices file: every id,
// how many devices have a date that is not Graph's never, and some exact
// 64-bit sizes.
type expected struct {
	devices  int
	easDates int              // eas_activation_date_time values that are not 0001-01-01
	sizes    map[string]int64 // id -> totalStorageSpaceInBytes, every 997th device
}

// It reads the file a line at a time: a child's peak RSS (ru_maxrss) counts
// the harness' own, since a child starts as a copy of it.
func readExpected(path string) (*expected, error) {
	e := &expected{sizes: map[string]int64{}}
	err := devices.Each(path, func(i int, d []byte) error {
		e.devices++
		var v struct {
			ID    string      `json:"id"`
			EAS   string      `json:"easActivationDateTime"`
			Total json.Number `json:"totalStorageSpaceInBytes"`
		}
		if err := json.Unmarshal(d, &v); err != nil {
			return err
		}
		if v.EAS != "" && !strings.HasPrefix(v.EAS, "0001-01-01") {
			e.easDates++
		}
		if i%997 == 0 {
			size, err := v.Total.Int64()
			e.sizes[v.ID] = size
			return err
		}
		return nil
	})
	return e, err
}

// verifyTable checks a destination after a run: one row per device, the
// whole device in every row, never-dates NULL, 64-bit sizes exact.
func verifyTable(p *paths, driver, dsn string, want int) error {
	e := p.expected
	if e == nil || e.devices != want {
		return fmt.Errorf("the devices file does not hold the %d devices graphsim serves", want)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var rows, ids, raws, eas int
	err = db.QueryRow(`SELECT count(*), count(DISTINCT id), count(_raw), count(eas_activation_date_time) FROM managed_devices`).Scan(&rows, &ids, &raws, &eas)
	if err != nil {
		return fmt.Errorf("reading the table: %v", err)
	}
	if rows != want || ids != want || raws != want || eas != e.easDates {
		return fmt.Errorf("table holds %d rows, %d ids, %d devices in _raw, %d EAS dates; want %d, %d, %d, %d",
			rows, ids, raws, eas, want, want, want, e.easDates)
	}
	for id, size := range e.sizes {
		var got int64
		q := `SELECT total_storage_space_in_bytes FROM managed_devices WHERE id = $1`
		if driver == "sqlite" {
			q = strings.Replace(q, "$1", "?", 1)
		}
		if err := db.QueryRow(q, id).Scan(&got); err != nil || got != size {
			return fmt.Errorf("device %s: total_storage_space_in_bytes %d (%v), want %d", id, got, err, size)
		}
	}
	return nil
}

// dumpDevices writes the scenario's devices to a file for the floors, with
// bench/cmd/floor (not timed).
func dumpDevices(p *paths, url string) error {
	p.devicesFile = filepath.Join(p.tmp, "devices.ndjson")
	cmd := exec.Command(p.floor, peerFlags(url, p.devicesFile)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dumping the devices for the floors: %v\n%s", err, out)
	}
	var err error
	p.expected, err = readExpected(p.devicesFile)
	return err
}

// programNamed is one of the main scenarios' programs.
func programNamed(name string) program {
	for _, p := range programs() {
		if p.name == name {
			return p
		}
	}
	panic("no program " + name)
}
