package schema

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// The shipped DSN creates a WAL database with NORMAL syncs; its page size
// is SQLite's default, which the apps config's many small rows want.
func TestSQLiteDSNCreatesAWALDatabase(t *testing.T) {
	db, err := sql.Open("sqlite", SQLiteDSN(filepath.Join(t.TempDir(), "intune.db")))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(CreateTable("sqlite", "managed_devices", "")); err != nil {
		t.Fatal(err)
	}
	var pageSize int
	var mode, sync string
	if err := db.QueryRow("PRAGMA page_size").Scan(&pageSize); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow("PRAGMA synchronous").Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if pageSize != 4096 || mode != "wal" || sync != "1" {
		t.Errorf("page_size %d, journal_mode %s, synchronous %s; want 4096, wal, 1 (NORMAL)", pageSize, mode, sync)
	}
}
