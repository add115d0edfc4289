// Command pgfloor is the PostgreSQL floor of the destination benchmark: what
// PostgreSQL itself takes to hold the devices, without Graph. It creates the
// same table as config/postgres.yaml's (a typed column per property, the
// whole device as jsonb with the same compression, primary key on id) as
// plain columns, and loads every device of -devices with ONE COPY in one
// transaction, the fastest way into PostgreSQL, flattening in Go.
package main

import (
	"database/sql"
	"flag"
	"fmt"
	"log"
	"os"
	"strings"

	"github.com/lib/pq"

	"github.com/intune-benthos/intune-benthos/bench/internal/devices"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

func main() {
	dsn := flag.String("dsn", "", "the (empty) database")
	file := flag.String("devices", "", "the devices, one per line")
	flag.Parse()
	log.SetFlags(0)
	n, err := run(*dsn, *file)
	if err != nil {
		log.Fatalf("pgfloor: %v", err)
	}
	fmt.Fprintf(os.Stderr, "pgfloor: %d devices\n", n)
}

func run(dsn, file string) (int, error) {
	devs, err := devices.Read(file)
	if err != nil {
		return 0, err
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.Exec(createTable()); err != nil {
		return 0, err
	}
	names := []string{}
	for _, c := range schema.Columns() {
		names = append(names, c.Name)
	}
	names = append(names, schema.RawColumn, schema.SyncIDColumn, schema.SyncedAtColumn)
	tx, err := db.Begin()
	if err != nil {
		return 0, err
	}
	stmt, err := tx.Prepare(pq.CopyIn("managed_devices", names...))
	if err != nil {
		return 0, err
	}
	for _, d := range devs {
		vals, err := devices.Values(d)
		if err != nil {
			return 0, err
		}
		vals = append(vals, string(d), "floor", "2026-11-30T00:00:00Z")
		if _, err := stmt.Exec(vals...); err != nil {
			return 0, err
		}
	}
	if _, err := stmt.Exec(); err != nil {
		return 0, err
	}
	if err := stmt.Close(); err != nil {
		return 0, err
	}
	return len(devs), tx.Commit()
}

// createTable is config/postgres.yaml's table with plain columns.
func createTable() string {
	var b strings.Builder
	b.WriteString("CREATE TABLE managed_devices (\n")
	for _, c := range schema.Columns() {
		fmt.Fprintf(&b, "  %s %s%s,\n", c.Name, c.Type("postgres"), map[bool]string{true: " PRIMARY KEY"}[c.Property == "id"])
	}
	b.WriteString("  _raw jsonb NOT NULL, _sync_id text, _synced_at timestamptz, _deleted boolean NOT NULL DEFAULT false\n);\n")
	// The same compression as the shipped table, where the server has it.
	b.WriteString("DO $$ BEGIN ALTER TABLE managed_devices ALTER COLUMN _raw SET COMPRESSION lz4; EXCEPTION WHEN others THEN NULL; END $$;")
	return b.String()
}
