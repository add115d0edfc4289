package intune

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/internal/testdb"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// legacyTables are the tables of the shipped configs, with the columns
// that identify a row in the release before tenant_id.
var legacyTables = []struct{ name, key string }{
	{"managed_devices", "id"},
	{"managed_devices_rejected", "id, sync_id"},
	{"detected_apps", "id"},
	{"device_apps", "device_id, app_id"},
}

const legacyTenant = "8c2f0c3e-1111-4222-8333-944445555666"

// fillLegacyTables creates the previous release's tables (testdata) and
// writes rows into them as its configs did, plus a column a user's
// intune_new_columns added and an index.
func fillLegacyTables(t *testing.T, driver string, db *sql.DB) {
	t.Helper()
	ddl, err := os.ReadFile(filepath.Join("testdata", "release-0", driver+".sql"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(string(ddl)); err != nil {
		t.Fatalf("the previous release's tables: %v", err)
	}
	ph := func(n int) string {
		if driver == "sqlite" {
			return "?"
		}
		return fmt.Sprintf("$%d", n)
	}
	sim := graphsim.New(graphsim.Config{Devices: 300, Seed: 5})
	for i := 0; i < 300; i++ {
		deleted := any(i%50 == 0)
		if driver == "sqlite" {
			deleted = map[bool]int{true: 1, false: 0}[i%50 == 0]
		}
		if _, err := db.Exec(fmt.Sprintf(`INSERT INTO managed_devices (id, _raw, _sync_id, _synced_at, _deleted) VALUES (%s, %s, %s, %s, %s)`, ph(1), ph(2), ph(3), ph(4), ph(5)),
			sim.DeviceID(i), string(sim.EmittedDevice(i, false, false)), "sync-1", "2026-12-01T10:00:00Z", deleted); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := db.Exec(fmt.Sprintf(`INSERT INTO managed_devices_rejected (id, sync_id, rejected_at, error, device) VALUES (%s, %s, %s, %s, %s)`, ph(1), ph(2), ph(3), ph(4), ph(5)),
			fmt.Sprintf("bad-%d", i), "sync-1", "2026-12-01T10:00:00Z", "SQLITE_TOOBIG", `{"id":"bad"}`); err != nil {
			t.Fatal(err)
		}
	}
	for a := 0; a < 40; a++ {
		if _, err := db.Exec(fmt.Sprintf(`INSERT INTO detected_apps (id, _raw, _sync_id, _synced_at) VALUES (%s, %s, %s, %s)`, ph(1), ph(2), ph(3), ph(4)),
			fmt.Sprintf("app-%02d", a), fmt.Sprintf(`{"id":"app-%02d","displayName":"App %d","version":"1.%d","sizeInByte":%d,"deviceCount":5}`, a, a, a, a*1000), "sync-1", "2026-12-01T10:00:00Z"); err != nil {
			t.Fatal(err)
		}
		for d := 0; d < 5; d++ {
			if _, err := db.Exec(fmt.Sprintf(`INSERT INTO device_apps (device_id, app_id, device_name, _sync_id, _synced_at) VALUES (%s, %s, %s, %s, %s)`, ph(1), ph(2), ph(3), ph(4), ph(5)),
				sim.DeviceID((a*7+d)%300), fmt.Sprintf("app-%02d", a), fmt.Sprintf("PC-%d", d), "sync-1", "2026-12-01T10:00:00Z"); err != nil {
				t.Fatal(err)
			}
		}
	}
	extra := `ALTER TABLE managed_devices ADD COLUMN extra_prop TEXT GENERATED ALWAYS AS (json_extract(_raw, '$.deviceName') || '!') VIRTUAL`
	if driver == "postgres" {
		extra = `ALTER TABLE managed_devices ADD COLUMN extra_prop text GENERATED ALWAYS AS ((_raw->>'deviceName') || '!') STORED`
	}
	for _, stmt := range []string{extra, `CREATE INDEX managed_devices_by_name ON managed_devices (device_name)`} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
}

// tableRows is every row of a table but its tenant_id, in key order, as
// text: what a user would compare before and after.
func tableRows(t *testing.T, db *sql.DB, table, key string) []string {
	t.Helper()
	rows, err := db.Query(fmt.Sprintf(`SELECT * FROM %s ORDER BY %s`, table, key))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, c := range cols {
			if c == schema.TenantIDColumn {
				continue
			}
			v := vals[i]
			if raw, ok := v.([]byte); ok {
				v = string(raw)
			}
			fmt.Fprintf(&b, "%s=%v|", c, v)
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// migrateTables starts the processor over the four tables, as the
// shipped configs do, and returns its start-up error.
func migrateTables(t *testing.T, driver, dsn, tenant string) error {
	t.Helper()
	conf := fmt.Sprintf("driver: %s\ndsn: %q\ntables: [ managed_devices, managed_devices_rejected, detected_apps, device_apps ]\nlegacy_tenant_id: %q", driver, dsn, tenant)
	parsed, err := migrateTablesSpec().ParseYAML(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newMigrateTablesProcessor(parsed, service.MockResources())
	if err == nil {
		t.Cleanup(func() { _ = p.Close(context.Background()) })
	}
	return err
}

func testLegacyTablesMigrate(t *testing.T, driver, dsn string, db *sql.DB) {
	fillLegacyTables(t, driver, db)
	before := map[string][]string{}
	for _, tb := range legacyTables {
		before[tb.name] = tableRows(t, db, tb.name, tb.key)
	}

	// Nothing tells the rows' tenant: refuse to start, name the table.
	if err := migrateTables(t, driver, dsn, ""); err == nil || !strings.Contains(err.Error(), "managed_devices") || !strings.Contains(err.Error(), "INTUNE_TENANT_ID") {
		t.Fatalf("without a legacy tenant: %v, want an error naming the table and INTUNE_TENANT_ID", err)
	}

	if err := migrateTables(t, driver, dsn, legacyTenant); err != nil {
		t.Fatal(err)
	}
	for _, tb := range legacyTables {
		after := tableRows(t, db, tb.name, tb.key)
		if !reflect.DeepEqual(after, before[tb.name]) {
			t.Errorf("%s: %d rows before, %d after; or their values changed (first before %.200q, after %.200q)", tb.name, len(before[tb.name]), len(after), first(before[tb.name]), first(after))
		}
		var other int
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM %s WHERE tenant_id <> '%s'`, tb.name, legacyTenant)).Scan(&other); err != nil || other != 0 {
			t.Errorf("%s: %d rows without the legacy tenant (%v)", tb.name, other, err)
		}
	}

	// The key is (tenant_id, id): another tenant's device of the same id is
	// a row of its own, the same tenant's conflicts.
	ph := "?, ?, ?"
	if driver == "postgres" {
		ph = "$1, $2, $3"
	}
	insert := fmt.Sprintf(`INSERT INTO managed_devices (tenant_id, id, _raw) VALUES (%s)`, ph)
	var id string
	if err := db.QueryRow(`SELECT id FROM managed_devices LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(insert, "another-tenant", id, `{"id":"x"}`); err != nil {
		t.Errorf("another tenant's device with the same id: %v", err)
	}
	if _, err := db.Exec(insert, legacyTenant, id, `{"id":"x"}`); err == nil {
		t.Error("the same tenant's device twice: accepted, want the key to refuse it")
	}
	// What the user added survives: the generated column and the index.
	var extra string
	if err := db.QueryRow(`SELECT extra_prop FROM managed_devices WHERE tenant_id = '` + legacyTenant + `' LIMIT 1`).Scan(&extra); err != nil || !strings.HasSuffix(extra, "!") {
		t.Errorf("the added generated column: %q, %v", extra, err)
	}
	indexQuery := `SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'managed_devices_by_name'`
	if driver == "postgres" {
		indexQuery = `SELECT count(*) FROM pg_indexes WHERE indexname = 'managed_devices_by_name'`
	}
	var indexes int
	if err := db.QueryRow(indexQuery).Scan(&indexes); err != nil || indexes != 1 {
		t.Errorf("the index: %d, %v", indexes, err)
	}

	// Start again: tables with tenant_id are left as they are.
	want := tableRows(t, db, "managed_devices", "tenant_id, id")
	if err := migrateTables(t, driver, dsn, ""); err != nil {
		t.Errorf("second start: %v", err)
	}
	if got := tableRows(t, db, "managed_devices", "tenant_id, id"); !reflect.DeepEqual(got, want) {
		t.Error("the second start changed managed_devices")
	}
}

func first(rows []string) string {
	if len(rows) == 0 {
		return ""
	}
	return rows[0]
}

func TestSQLiteTablesOfThePreviousReleaseMigrateInPlace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "intune.db")
	dsn := schema.SQLiteDSN(path)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	testLegacyTablesMigrate(t, "sqlite", dsn, db)
}

func TestPostgresTablesOfThePreviousReleaseMigrateInPlace(t *testing.T) {
	dsn, db := testdb.FreshPostgres(t)
	testLegacyTablesMigrate(t, "postgres", dsn, db)
}

// A new database gets the tables from the outputs: nothing to migrate.
func TestNoTablesNothingToMigrate(t *testing.T) {
	dsn := schema.SQLiteDSN(filepath.Join(t.TempDir(), "intune.db"))
	if err := migrateTables(t, "sqlite", dsn, ""); err != nil {
		t.Fatal(err)
	}
}

// A table of an earlier release, whose device columns SQLite computed from
// _raw, gets them as plain columns with every value kept, the user's own
// generated column and index too; intune_sqlite then writes them, and a
// second start changes nothing.
func TestSQLiteGeneratedDeviceColumnsOfAnEarlierReleaseBecomePlain(t *testing.T) {
	dsn := schema.SQLiteDSN(filepath.Join(t.TempDir(), "intune.db"))
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fillLegacyTables(t, "sqlite", db)
	// What users build on the table: a view for reports, an audit trigger.
	if _, err := db.Exec(`CREATE VIEW active_devices AS SELECT id, device_name FROM managed_devices WHERE _deleted = 0;
		CREATE TABLE audit (id TEXT, name TEXT);
		CREATE TRIGGER audit_renames AFTER UPDATE OF _raw ON managed_devices BEGIN INSERT INTO audit VALUES (NEW.id, NEW.device_name); END;`); err != nil {
		t.Fatal(err)
	}
	before := tableRows(t, db, "managed_devices", "id")
	start := func() {
		t.Helper()
		conf := fmt.Sprintf("driver: sqlite\ndsn: %q\ntables: [ managed_devices, managed_devices_rejected ]\nlegacy_tenant_id: %q\nplain_device_columns: true", dsn, legacyTenant)
		parsed, err := migrateTablesSpec().ParseYAML(conf, nil)
		if err != nil {
			t.Fatal(err)
		}
		p, err := newMigrateTablesProcessor(parsed, service.MockResources())
		if err != nil {
			t.Fatal(err)
		}
		_ = p.Close(context.Background())
	}
	start()
	if after := tableRows(t, db, "managed_devices", "id"); !reflect.DeepEqual(after, before) {
		t.Fatalf("%d rows before, %d after, or their values changed (first before %.300q, after %.300q)", len(before), len(after), first(before), first(after))
	}
	generated := map[string]bool{}
	rows, err := db.Query(`SELECT name, hidden IN (2, 3) FROM pragma_table_xinfo('managed_devices')`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		var gen bool
		if err := rows.Scan(&name, &gen); err != nil {
			t.Fatal(err)
		}
		generated[name] = gen
	}
	rows.Close()
	plain := 0
	for _, c := range schema.Columns() {
		gen, ok := generated[c.Name]
		if ok && gen {
			t.Errorf("%s is still generated", c.Name)
		}
		if ok && !gen && c.Property != "id" {
			plain++
		}
	}
	if plain < 50 || !generated["extra_prop"] {
		t.Fatalf("%d device columns plain, extra_prop generated: %v", plain, generated["extra_prop"])
	}
	var indexes int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'managed_devices_by_name'`).Scan(&indexes); err != nil || indexes != 1 {
		t.Errorf("the index: %d, %v", indexes, err)
	}

	// intune_sqlite writes the plain columns now.
	var id string
	if err := db.QueryRow(`SELECT id FROM managed_devices ORDER BY id LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	out, err := newSQLiteOutput(mustParseSQLiteOutput(t, dsn), service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer out.Close(context.Background())
	msg := sqliteDeviceMessage(id, "sync-2", []byte(`{"id":"`+id+`","deviceName":"renamed","isEncrypted":true}`))
	msg.MetaSetMut(contract.TenantID, legacyTenant)
	if err := out.WriteBatch(context.Background(), service.MessageBatch{msg}); err != nil {
		t.Fatal(err)
	}
	var name, extra string
	var encrypted int
	if err := db.QueryRow(`SELECT device_name, is_encrypted, extra_prop FROM managed_devices WHERE id = ?`, id).Scan(&name, &encrypted, &extra); err != nil || name != "renamed" || encrypted != 1 || extra != "renamed!" {
		t.Fatalf("after a write: %q %d %q, %v", name, encrypted, extra, err)
	}
	var active, audited int
	if err := db.QueryRow(`SELECT (SELECT count(*) FROM active_devices), (SELECT count(*) FROM audit WHERE id = ? AND name = 'renamed')`, id).Scan(&active, &audited); err != nil || active != 300-6 || audited != 1 {
		t.Fatalf("the view reads %d devices (want %d), the trigger wrote %d rows (want 1): %v", active, 300-6, audited, err)
	}

	want := tableRows(t, db, "managed_devices", "id")
	start()
	if got := tableRows(t, db, "managed_devices", "id"); !reflect.DeepEqual(got, want) {
		t.Error("the second start changed managed_devices")
	}
}

func mustParseSQLiteOutput(t *testing.T, dsn string) *service.ParsedConfig {
	t.Helper()
	conf, err := sqliteOutputSpec().ParseYAML(fmt.Sprintf("dsn: %q\n", dsn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return conf
}
