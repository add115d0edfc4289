package schema

import (
	"fmt"
	"strings"
)

// CreateTable is the statement that creates the table in PostgreSQL or
// SQLite (dest) if it does not exist: id, a column for every property of
// the table, then _raw and the sync's columns. In PostgreSQL each property's
// column is computed from _raw (generated); in SQLite it is a plain column
// that the output intune_sqlite writes, computed in Go, because the SQLite
// the distribution links runs json_extract as C translated to Go, a quarter
// of a sync's CPU when every column called it (bench/RESULTS.md). The
// PostgreSQL statement creates the helper functions first. Each line is
// indented by indent, for YAML block scalars.
func CreateTable(dest, table, indent string) string {
	return createTable(dest, table, Columns(), "device", true, dest != "sqlite", indent)
}

// AddedColumns are the columns a managed_devices table of dest ("postgres"
// or "sqlite") has besides those of properties that releases added after
// the table could have been created, with their types: the processor that
// keeps tables complete adds them to an older table (see intune_new_columns).
func AddedColumns(dest string) map[string]string {
	return map[string]string{DetailsFetchedAtColumn: map[string]string{"postgres": "timestamptz", "sqlite": "TEXT"}[dest]}
}

// CreateDetectedAppsTable is CreateTable for the detected_apps table of
// intune_detected_apps: its columns computed from the app in _raw, and no
// _deleted column (an app that left the tenant is deleted).
func CreateDetectedAppsTable(dest, indent string) string {
	return createTable(dest, "detected_apps", DetectedAppColumns(), "app", false, true, indent)
}

// TenantIDType is the tenant_id column's type in dest: never NULL, so that
// it can lead a primary key; the empty string in a row whose tenant
// nothing told.
func TenantIDType(dest string) string {
	if dest == "postgres" {
		return "text NOT NULL DEFAULT ''"
	}
	return "TEXT NOT NULL DEFAULT ''"
}

// createTable writes the statement; generated says whether the columns of
// properties are computed by the database from _raw.
func createTable(dest, table string, columns []Column, what string, softDelete, generated bool, indent string) string {
	var b strings.Builder
	if dest == "postgres" {
		for _, line := range strings.Split(PostgresFunctions, "\n") {
			b.WriteString(indent + line + "\n")
		}
	}
	fmt.Fprintf(&b, "%sCREATE TABLE IF NOT EXISTS %s (\n", indent, table)
	fmt.Fprintf(&b, "%s  %s %s,\n", indent, TenantIDColumn, TenantIDType(dest))
	for _, c := range columns {
		if c.Property == "id" {
			fmt.Fprintf(&b, "%s  id %s NOT NULL,\n", indent, c.Type(dest))
			continue
		}
		if !generated {
			fmt.Fprintf(&b, "%s  %s %s,\n", indent, c.Name, c.Type(dest))
			continue
		}
		fmt.Fprintf(&b, "%s  %s %s GENERATED ALWAYS AS (%s) STORED,\n", indent, c.Name, c.Type(dest), c.Expr(dest))
	}
	types := map[string][4]string{
		"postgres": {"jsonb NOT NULL", "text", "timestamptz", "boolean NOT NULL DEFAULT false"},
		"sqlite":   {"TEXT NOT NULL", "TEXT", "TEXT", "INTEGER NOT NULL DEFAULT 0"},
	}[dest]
	fmt.Fprintf(&b, "%s  %s %s, -- the whole %s, exactly as Graph sent it\n", indent, RawColumn, types[0], what)
	fmt.Fprintf(&b, "%s  %s %s,\n", indent, SyncIDColumn, types[1])
	if softDelete {
		fmt.Fprintf(&b, "%s  %s %s,\n", indent, SyncedAtColumn, types[2])
		fmt.Fprintf(&b, "%s  %s %s,\n", indent, DetailsFetchedAtColumn, AddedColumns(dest)[DetailsFetchedAtColumn])
		fmt.Fprintf(&b, "%s  %s %s,\n", indent, DeletedColumn, types[3])
	} else {
		fmt.Fprintf(&b, "%s  %s %s,\n", indent, SyncedAtColumn, types[2])
	}
	fmt.Fprintf(&b, "%s  PRIMARY KEY (%s, id)\n", indent, TenantIDColumn)
	fmt.Fprintf(&b, "%s);", indent)
	if dest == "postgres" {
		// lz4 compresses the device several times faster than the default
		// pglz (measured: a sync of 100,000 devices 11.5 s -> 9.4 s). It
		// needs PostgreSQL 14 built with lz4; elsewhere nothing changes.
		fmt.Fprintf(&b, "\n%sDO $$ BEGIN\n", indent)
		fmt.Fprintf(&b, "%s  IF (SELECT attcompression FROM pg_attribute WHERE attrelid = '%s'::regclass AND attname = '%s') = '' THEN\n", indent, table, RawColumn)
		fmt.Fprintf(&b, "%s    ALTER TABLE %s ALTER COLUMN %s SET COMPRESSION lz4;\n", indent, table, RawColumn)
		fmt.Fprintf(&b, "%s  END IF;\n", indent)
		fmt.Fprintf(&b, "%sEXCEPTION WHEN others THEN NULL;\n", indent)
		fmt.Fprintf(&b, "%sEND $$;", indent)
	}
	return b.String()
}
