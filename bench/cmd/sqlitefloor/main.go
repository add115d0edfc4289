// Command sqlitefloor is the SQLite floor of the destination benchmark: what
// the C SQLite library itself takes to hold the devices, without Graph. In
// the same database as the shipped configs' (WAL, 4 KB pages), in ONE
// transaction it upserts every device of -devices into the same table as
// config/sqlite.yaml's (a typed column per property, the whole device, id
// the key), each column extracted by json_extract from the device, through
// mattn/go-sqlite3 (cgo, SQLite's own C source).
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	_ "github.com/mattn/go-sqlite3"

	"github.com/intune-benthos/intune-benthos/bench/internal/devices"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

func main() {
	path := flag.String("db", "", "the SQLite file to create")
	file := flag.String("devices", "", "the devices, one per line")
	flag.Parse()
	log.SetFlags(0)
	n, err := run(*path, *file)
	if err != nil {
		log.Fatalf("sqlitefloor: %v", err)
	}
	fmt.Fprintf(os.Stderr, "sqlitefloor: %d devices\n", n)
}

func run(path, file string) (int, error) {
	devs, err := devices.Read(file)
	if err != nil {
		return 0, err
	}
	db, err := sql.Open("sqlite3", "file:"+path+"?_journal_mode=WAL&_synchronous=NORMAL")
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var ddl, cols, vals, sets []string
	for _, c := range schema.Columns() {
		typ := c.Type("sqlite")
		if c.Property == "id" {
			typ += " PRIMARY KEY"
		}
		ddl = append(ddl, c.Name+" "+typ)
		cols = append(cols, c.Name)
		vals = append(vals, schema.SQLiteExpr(c.Kind, c.Property))
		if c.Property != "id" {
			sets = append(sets, c.Name+" = excluded."+c.Name)
		}
	}
	create := "CREATE TABLE managed_devices (" + strings.Join(ddl, ", ") +
		", _raw TEXT NOT NULL, _sync_id TEXT, _synced_at TEXT, _deleted INTEGER NOT NULL DEFAULT 0)"
	if _, err := db.Exec(create); err != nil {
		return 0, err
	}
	// The shipped expressions read _raw; here they read the bound device.
	insert := "INSERT INTO managed_devices (" + strings.Join(cols, ", ") + ", _raw, _sync_id, _synced_at) VALUES (" +
		strings.ReplaceAll(strings.Join(vals, ", "), "_raw", "?1") + ", ?1, 'floor', '2026-11-30T00:00:00Z') " +
		"ON CONFLICT (id) DO UPDATE SET " + strings.Join(sets, ", ") + ", _raw = excluded._raw"
	tx, err := db.Begin()
	if err != nil {
		return 0, err
	}
	stmt, err := tx.Prepare(insert)
	if err != nil {
		return 0, err
	}
	for _, d := range devs {
		if _, err := stmt.Exec(string(d)); err != nil {
			return 0, err
		}
	}
	if err := stmt.Close(); err != nil {
		return 0, err
	}
	return len(devs), tx.Commit()
}
