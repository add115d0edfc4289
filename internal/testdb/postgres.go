// Package testdb gives tests a database of their own on the PostgreSQL
// server every development and CI machine of this project runs.
package testdb

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	_ "github.com/lib/pq" // the tests read and write with their own connections
)

// PostgresServer is the server the tests use: INTUNE_TEST_PG_DSN, or the
// one on this machine. Its DSN must name the database postgres.
func PostgresServer() string {
	if dsn := os.Getenv("INTUNE_TEST_PG_DSN"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// FreshPostgres creates an empty database for one test, dropped when it
// ends, and returns its DSN and a connection to it. Without a server the
// test is skipped on a laptop and fails in CI (CI=true), where a skipped
// integration test would hide a gap.
func FreshPostgres(t testing.TB) (string, *sql.DB) {
	t.Helper()
	server := PostgresServer()
	admin, err := sql.Open("postgres", server)
	if err == nil {
		err = admin.Ping()
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required in CI (%s): %v", server, err)
		}
		t.Skipf("no PostgreSQL at %s (set INTUNE_TEST_PG_DSN): %v", server, err)
	}
	t.Cleanup(func() { admin.Close() })
	suffix := make([]byte, 6)
	_, _ = rand.Read(suffix)
	name := "intune_test_" + hex.EncodeToString(suffix)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	dsn := strings.Replace(server, "/postgres?", "/"+name+"?", 1)
	if dsn == server {
		t.Fatalf("cannot derive a database DSN from %s: it must end in /postgres?...", server)
	}
	db, err := sql.Open("postgres", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dsn, db
}
