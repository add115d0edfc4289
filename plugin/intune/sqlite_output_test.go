package intune

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

const sqliteTestTenant = "00000000-0000-0000-0000-0000000000aa"

// newTestSQLiteOutput connects an intune_sqlite output to a new database
// file and returns it with the database.
func newTestSQLiteOutput(t *testing.T, initStatement string) (*sqliteOutput, *sql.DB, string) {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "t.db") + "?_pragma=busy_timeout(200)&_pragma=journal_mode(WAL)"
	conf, err := sqliteOutputSpec().ParseYAML(fmt.Sprintf("dsn: %q\ninit_statement: %q\n", dsn, initStatement), nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := newSQLiteOutput(conf, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	if err := out.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = out.Close(context.Background()) })
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return out, db, dsn
}

// sqliteDeviceMessage is a device as intune_managed_devices emits it.
func sqliteDeviceMessage(id, syncID string, body []byte) *service.Message {
	msg := service.NewMessage(body)
	msg.MetaSetMut(contract.TenantID, sqliteTestTenant)
	msg.MetaSetMut(contract.DeviceID, id)
	msg.MetaSetMut(contract.SyncID, syncID)
	msg.MetaSetMut(contract.SyncStartedAt, "2026-12-08T01:00:00Z")
	return msg
}

// oddDevices are what Graph can send and a table must survive: wrong
// types, odd dates, escapes, a NUL, null everywhere, a property unknown.
var oddDevices = []string{
	`{"id":"odd-1","isEncrypted":"yes","totalStorageSpaceInBytes":1.5,"enrolledDateTime":"yesterday","lastSyncDateTime":"2026-02-30T00:00:00Z","deviceActionResults":"none","deviceName":{"not": "a string"},"model":12,"manufacturer":true}`,
	`{"id":"odd-2","isEncrypted":null,"totalStorageSpaceInBytes":99999999999999999999,"enrolledDateTime":"2026-11-20T10:00:00.1234567Z","lastSyncDateTime":"2026-11-20T10:00:00+02:00","deviceActionResults":null}`,
	`{"id":"odd-3"}`,
	`{"id":"odd-4","deviceName":"caf\u00e9 \"quoted\" \\ tab\t nul\u0000 \ud83d\ude00","notes":"line\nbreak","roleScopeTagIds":[ "0", "a\"b" ],"hardwareInformation":{ "tpmVersion" : "2.0", "nested": {"x": [1, 2.50, -3e2]} },"physicalMemoryInBytes":-9223372036854775808,"freeStorageSpaceInBytes":9223372036854775807,"jailBroken":"Unknown","futureProperty":{"a":1}}`,
	`{"id":"odd-5","enrolledDateTime":"0001-01-01T00:00:00Z","easActivated":false,"isSupervised":true,"windowsActiveMalwareCount":0,"totalStorageSpaceInBytes":-0,"freeStorageSpaceInBytes":1e3}`,
}

// The columns intune_sqlite computes in Go are those SQLite computed from
// _raw with the expressions of the generated columns (schema.SQLiteExpr,
// what tables of earlier releases hold and what intune_new_columns adds),
// value for value and type for type, for graphsim's devices and odd ones.
// The one difference is documented: a text column given true or false holds
// that JSON text, where json_extract gave 1 or 0 (a number, an object or an
// array is its JSON text in both).
func TestSQLiteOutputComputesWhatSQLiteExpressionsCompute(t *testing.T) {
	out, db, _ := newTestSQLiteOutput(t, schema.CreateTable("sqlite", "managed_devices", ""))
	var gen []string
	for _, c := range schema.Columns() {
		if c.Property != "id" {
			gen = append(gen, fmt.Sprintf("%s %s GENERATED ALWAYS AS (%s) STORED", schema.QuoteIdent(c.Name), c.Type("sqlite"), schema.SQLiteExpr(c.Kind, c.Property)))
		}
	}
	if _, err := db.Exec(`CREATE TABLE expected (id TEXT PRIMARY KEY, ` + strings.Join(gen, ", ") + `, _raw TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	sim := graphsim.New(graphsim.Config{Devices: 500, Seed: 29})
	var batch service.MessageBatch
	for i := 0; i < 500; i++ {
		batch = append(batch, sqliteDeviceMessage(sim.DeviceID(i), "s1", sim.EmittedDevice(i, i%2 == 0, i%3 == 0)))
	}
	for i, d := range oddDevices {
		batch = append(batch, sqliteDeviceMessage(fmt.Sprintf("odd-%d", i+1), "s1", []byte(d)))
	}
	if err := out.WriteBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	for _, msg := range batch {
		id, _ := msg.MetaGet(contract.DeviceID)
		body, _ := msg.AsBytes()
		if _, err := db.Exec(`INSERT INTO expected (id, _raw) VALUES (?, ?)`, id, string(body)); err != nil {
			t.Fatal(err)
		}
	}
	compared, asJSONText := 0, 0
	for _, c := range schema.Columns() {
		col := schema.QuoteIdent(c.Name)
		// Where the generated column and the written one differ in value
		// or in type.
		rows, err := db.Query(fmt.Sprintf(`SELECT e.id, quote(e.%[1]s), quote(m.%[1]s), json_type(e._raw, '$.%[2]s'), m._raw -> '$.%[2]s'
			FROM expected e JOIN managed_devices m ON m.id = e.id
			WHERE e.%[1]s IS NOT m.%[1]s OR typeof(e.%[1]s) <> typeof(m.%[1]s)`, col, c.Property))
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var id, want, got string
			var jsonType, asJSON sql.NullString
			if err := rows.Scan(&id, &want, &got, &jsonType, &asJSON); err != nil {
				t.Fatal(err)
			}
			if c.Kind == schema.KindString && jsonType.String != "text" && got == quoteSQL(asJSON.String) {
				asJSONText++
				continue
			}
			t.Errorf("device %s, %s: SQLite computes %s, intune_sqlite wrote %s", id, c.Name, want, got)
		}
		rows.Close()
		compared++
	}
	var rows, named, typed int
	if err := db.QueryRow(`SELECT count(*), count(device_name), count(total_storage_space_in_bytes) FROM managed_devices WHERE tenant_id = ? AND _sync_id = 's1' AND _deleted = 0`, sqliteTestTenant).Scan(&rows, &named, &typed); err != nil {
		t.Fatal(err)
	}
	if rows != len(batch) || named < 500 || typed < 500 || compared != len(schema.Columns()) {
		t.Fatalf("%d rows (%d named, %d with storage), %d columns compared; want %d rows", rows, named, typed, compared, len(batch))
	}
	if asJSONText != 1 { // odd-1's manufacturer
		t.Errorf("%d text columns given a value that is not a string, want 1", asJSONText)
	}
}

func quoteSQL(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// A device written again is updated in place, undeleted, and its sync's
// columns are the new sync's; details absent are NULL.
func TestSQLiteOutputUpdatesADeviceInPlace(t *testing.T) {
	out, db, _ := newTestSQLiteOutput(t, schema.CreateTable("sqlite", "managed_devices", ""))
	ctx := context.Background()
	first := sqliteDeviceMessage("d1", "s1", []byte(`{"id":"d1","deviceName":"old","osVersion":"10"}`))
	first.MetaSetMut(contract.DetailsFetchedAt, "2026-12-01T00:00:00Z")
	if err := out.WriteBatch(ctx, service.MessageBatch{first}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE managed_devices SET _deleted = 1`); err != nil {
		t.Fatal(err)
	}
	if err := out.WriteBatch(ctx, service.MessageBatch{sqliteDeviceMessage("d1", "s2", []byte(`{"id":"d1","deviceName":"new"}`))}); err != nil {
		t.Fatal(err)
	}
	var n, deleted int
	var name, syncID string
	var osVersion, fetched sql.NullString
	if err := db.QueryRow(`SELECT count(*), max(device_name), max(os_version), max(_sync_id), max(_deleted), max(_details_fetched_at) FROM managed_devices`).Scan(&n, &name, &osVersion, &syncID, &deleted, &fetched); err != nil {
		t.Fatal(err)
	}
	if n != 1 || name != "new" || osVersion.Valid || syncID != "s2" || deleted != 0 || fetched.Valid {
		t.Fatalf("%d rows: %q %v %q deleted=%d fetched=%v", n, name, osVersion, syncID, deleted, fetched)
	}
}

// A table of an earlier release computes its columns from _raw: the output
// writes the columns that are not generated and SQLite the rest, and a
// column the user added is left alone.
func TestSQLiteOutputWritesATableWhoseColumnsAreGenerated(t *testing.T) {
	out, db, _ := newTestSQLiteOutput(t, `CREATE TABLE managed_devices (
		tenant_id TEXT NOT NULL DEFAULT '', id TEXT NOT NULL,
		device_name TEXT GENERATED ALWAYS AS (json_extract(_raw, '$.deviceName')) STORED,
		is_encrypted INTEGER,
		owner_note TEXT DEFAULT 'mine',
		_raw TEXT NOT NULL, _sync_id TEXT, _synced_at TEXT, _deleted INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (tenant_id, id))`)
	body := []byte(`{"id":"d1","deviceName":"pc","isEncrypted":true}`)
	if err := out.WriteBatch(context.Background(), service.MessageBatch{sqliteDeviceMessage("d1", "s1", body)}); err != nil {
		t.Fatal(err)
	}
	var name, note, raw string
	var encrypted int
	if err := db.QueryRow(`SELECT device_name, is_encrypted, owner_note, _raw FROM managed_devices WHERE tenant_id = ? AND id = 'd1'`, sqliteTestTenant).Scan(&name, &encrypted, &note, &raw); err != nil {
		t.Fatal(err)
	}
	if name != "pc" || encrypted != 1 || note != "mine" || raw != string(body) {
		t.Fatalf("%q %d %q %q", name, encrypted, note, raw)
	}
}

// A device SQLite refuses for its content fails alone, named in a batch
// error; the rest of its batch is committed.
func TestSQLiteOutputRefusesOneDeviceAndCommitsTheRest(t *testing.T) {
	out, db, _ := newTestSQLiteOutput(t, schema.CreateTable("sqlite", "managed_devices", "")+`
		CREATE TRIGGER quarantine BEFORE INSERT ON managed_devices WHEN NEW.device_name = 'quarantined'
		BEGIN SELECT RAISE(ABORT, 'device is quarantined'); END;`)
	batch := service.MessageBatch{
		sqliteDeviceMessage("d0", "s1", []byte(`{"id":"d0","deviceName":"a"}`)),
		sqliteDeviceMessage("d1", "s1", []byte(`{"id":"d1","deviceName":"quarantined"}`)),
		sqliteDeviceMessage("d2", "s1", []byte(`not a device`)),
		sqliteDeviceMessage("d3", "s1", []byte(`{"id":"d3","deviceName":"b"}`)),
	}
	indexer := batch.Index()
	err := out.WriteBatch(context.Background(), batch)
	var berr *service.BatchError
	if !errors.As(err, &berr) {
		t.Fatalf("%v, want a batch error", err)
	}
	failed := map[int]string{}
	berr.WalkMessagesIndexedBy(indexer, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed[i] = err.Error()
		}
		return true
	})
	if len(failed) != 2 || !strings.Contains(failed[1], "quarantined") || !strings.Contains(failed[2], "device d2") {
		t.Fatalf("failed: %v", failed)
	}
	if _, content := refusedForContent(fmt.Errorf("x: %w", errUnreadableDevice)); !content {
		t.Error("a body that is not a device would be retried forever")
	}
	var ids string
	if err := db.QueryRow(`SELECT group_concat(id) FROM (SELECT id FROM managed_devices ORDER BY id)`).Scan(&ids); err != nil || ids != "d0,d3" {
		t.Fatalf("rows %q, %v; want d0,d3", ids, err)
	}
}

// A locked database refuses the whole batch, which nothing commits; once
// the lock is gone, the same batch is written.
func TestSQLiteOutputFailsTheWholeBatchWhileTheDatabaseIsLocked(t *testing.T) {
	out, db, _ := newTestSQLiteOutput(t, schema.CreateTable("sqlite", "managed_devices", ""))
	ctx := context.Background()
	batch := service.MessageBatch{
		sqliteDeviceMessage("d0", "s1", []byte(`{"id":"d0"}`)),
		sqliteDeviceMessage("d1", "s1", []byte(`{"id":"d1"}`)),
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	err = out.WriteBatch(ctx, batch)
	var berr *service.BatchError
	if err == nil || errors.As(err, &berr) {
		t.Fatalf("%v, want the batch refused whole", err)
	}
	if _, content := refusedForContent(err); content {
		t.Fatalf("%v would be dead-lettered", err)
	}
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if err := out.WriteBatch(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM managed_devices`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v", n, err)
	}
}

// A value its column cannot hold is NULL there, kept in _raw, and named in
// the log once per sync.
func TestSQLiteOutputNamesAValueOfTheWrongTypeOncePerSync(t *testing.T) {
	out, db, _ := newTestSQLiteOutput(t, schema.CreateTable("sqlite", "managed_devices", ""))
	var said []string
	out.report.warnf = func(format string, args ...any) { said = append(said, fmt.Sprintf(format, args...)) }
	var batch service.MessageBatch
	for i := 0; i < 3; i++ {
		batch = append(batch, sqliteDeviceMessage(fmt.Sprint("d", i), "s1", []byte(fmt.Sprintf(`{"id":"d%d","isEncrypted":"yes"}`, i))))
	}
	if err := out.WriteBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	var nulls int
	if err := db.QueryRow(`SELECT count(*) FROM managed_devices WHERE is_encrypted IS NULL AND _raw -> '$.isEncrypted' = '"yes"'`).Scan(&nulls); err != nil || nulls != 3 {
		t.Fatalf("%d rows with NULL and the value in _raw, %v", nulls, err)
	}
	if len(said) != 1 || !strings.Contains(said[0], "isEncrypted") {
		t.Fatalf("logged %q", said)
	}
}

// A refusal that rolls the whole transaction back (RAISE(ROLLBACK)) leaves
// nothing committed: the refused device is named for the dead letter, and
// every other device is failed for sending again, none acknowledged
// unwritten.
func TestSQLiteOutputSendsAgainWhatARolledBackTransactionLost(t *testing.T) {
	out, db, _ := newTestSQLiteOutput(t, schema.CreateTable("sqlite", "managed_devices", "")+`
		CREATE TRIGGER quarantine BEFORE INSERT ON managed_devices WHEN NEW.device_name = 'quarantined'
		BEGIN SELECT RAISE(ROLLBACK, 'device is quarantined'); END;`)
	batch := service.MessageBatch{
		sqliteDeviceMessage("d0", "s1", []byte(`{"id":"d0","deviceName":"a"}`)),
		sqliteDeviceMessage("d1", "s1", []byte(`{"id":"d1","deviceName":"quarantined"}`)),
		sqliteDeviceMessage("d2", "s1", []byte(`{"id":"d2","deviceName":"b"}`)),
	}
	indexer := batch.Index()
	err := out.WriteBatch(context.Background(), batch)
	var berr *service.BatchError
	if !errors.As(err, &berr) {
		t.Fatalf("%v, want a batch error", err)
	}
	content := map[int]bool{}
	berr.WalkMessagesIndexedBy(indexer, func(i int, _ *service.Message, err error) bool {
		if err == nil {
			t.Errorf("device %d is taken as written", i)
			return true
		}
		_, content[i] = refusedForContent(err)
		return true
	})
	if len(content) != 3 || !content[1] || content[0] || content[2] {
		t.Fatalf("refused for content: %v; want device 1 only, the others sent again", content)
	}
	if err := out.WriteBatch(context.Background(), service.MessageBatch{batch[0], batch[2]}); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM managed_devices`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v", n, err)
	}
}
