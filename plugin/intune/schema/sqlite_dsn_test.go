package schema

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"
)

// The shipped DSN must give a new database its 64 KB pages: modernc runs
// the _pragma list sorted, and once WAL is on the page size is fixed, so
// an order that set WAL first would leave SQLite's 4 KB silently.
func TestSQLiteDSNCreatesAWALDatabaseOf64KBPages(t *testing.T) {
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
	if pageSize != 65536 || mode != "wal" || sync != "1" {
		t.Errorf("page_size %d, journal_mode %s, synchronous %s; want 65536, wal, 1 (NORMAL)", pageSize, mode, sync)
	}
}
