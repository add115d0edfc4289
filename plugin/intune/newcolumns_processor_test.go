package intune

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/internal/testdb"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// A table for each database this processor serves: its driver, DSN, a
// connection, and the placeholder of its first two parameters.
type testTable struct {
	driver, dsn string
	db          *sql.DB
	p1, p2      string
}

func sqliteTable(t *testing.T) testTable {
	dsn := "file:" + filepath.Join(t.TempDir(), "intune.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return testTable{"sqlite", dsn, db, "?", "?"}
}

func postgresTable(t *testing.T) testTable {
	dsn, db := testdb.FreshPostgres(t)
	return testTable{"postgres", dsn, db, "$1", "$2"}
}

func eachDatabase(t *testing.T, test func(t *testing.T, tt testTable)) {
	t.Run("sqlite", func(t *testing.T) { test(t, sqliteTable(t)) })
	t.Run("postgres", func(t *testing.T) { test(t, postgresTable(t)) })
}

func (tt testTable) create(t *testing.T) {
	t.Helper()
	if _, err := tt.db.Exec(schema.CreateTable(tt.driver, "managed_devices", "")); err != nil {
		t.Fatal(err)
	}
}

func (tt testTable) store(t *testing.T, devices ...[]byte) {
	t.Helper()
	for _, d := range devices {
		id := decodeID(t, d)
		if _, err := tt.db.Exec("INSERT INTO managed_devices (id, _raw) VALUES ("+tt.p1+", "+tt.p2+")", id, string(d)); err != nil {
			t.Fatal(err)
		}
	}
}

func decodeID(t *testing.T, device []byte) string {
	t.Helper()
	var d struct{ ID string }
	if err := json.Unmarshal(device, &d); err != nil || d.ID == "" {
		t.Fatalf("no id in %s: %v", device, err)
	}
	return d.ID
}

func (tt testTable) newProcessor(t *testing.T, addColumns bool) (*newColumnsProcessor, *warnings) {
	t.Helper()
	conf := fmt.Sprintf("driver: %s\ndsn: %q\nadd_columns: %v\n", tt.driver, tt.dsn, addColumns)
	parsed, err := newColumnsSpec().ParseYAML(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newNewColumnsProcessor(parsed, service.MockResources())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close(context.Background()) })
	w := &warnings{}
	p.report.warnf = w.warnf
	return p, w
}

func process(t *testing.T, p service.Processor, device []byte, syncID string) {
	t.Helper()
	msg := deviceMessage(device, syncID, contract.OpUpsert)
	out, err := p.Process(context.Background(), msg)
	if err != nil || len(out) != 1 || out[0] != msg {
		t.Fatalf("Process: %v, %v", out, err)
	}
	if b, _ := out[0].AsBytes(); string(b) != string(device) {
		t.Fatal("the processor changed the message")
	}
}

// columnValues reads one column of every row, by id, as text.
func (tt testTable) columnValues(t *testing.T, column string) map[string]any {
	t.Helper()
	rows, err := tt.db.Query(`SELECT id, ` + schema.QuoteIdent(column) + ` FROM managed_devices`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]any{}
	for rows.Next() {
		var id string
		var v any
		if err := rows.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		out[id] = v
	}
	return out
}

func (tt testTable) columnType(t *testing.T, column string) string {
	t.Helper()
	var typ string
	var err error
	if tt.driver == "sqlite" {
		err = tt.db.QueryRow(`SELECT type FROM pragma_table_xinfo('managed_devices') WHERE name = ?`, column).Scan(&typ)
	} else {
		err = tt.db.QueryRow(`SELECT data_type FROM information_schema.columns WHERE table_name = 'managed_devices' AND column_name = $1`, column).Scan(&typ)
	}
	if err == sql.ErrNoRows {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

var newProperties = []graphsim.ExtraProperty{
	{Name: "contosoAssetTag", Value: `"TAG-{index}"`},
	{Name: "configurationManagerClientHealthState", Value: `{"serialNumber":"S{index}","tpmVersion":"2.0"}`},
	{Name: "warrantyEndDateTime", Value: `"2027-01-31T00:00:00Z"`},
	{Name: "batteryLevelPercentage", Value: `{index}`},
	{Name: "cpuLoad", Value: `0.{index}5`},
	{Name: "autopilotEnrolled", Value: `true`},
	{Name: "order", Value: `"keyword-{index}"`},
	{Name: "notYetKnown", Value: `null`},
}

func TestNewColumnsAddsAGeneratedColumnPerNewPropertyFilledForEveryRow(t *testing.T) {
	eachDatabase(t, func(t *testing.T, tt testTable) {
		tt.create(t)
		sim := graphsim.New(graphsim.Config{Devices: 60, Seed: 8, ExtraProperties: newProperties})
		// 50 devices stored before the processor ever ran (add_columns off).
		for i := 0; i < 50; i++ {
			tt.store(t, sim.Device(i))
		}
		p, w := tt.newProcessor(t, true)
		process(t, p, sim.Device(50), "s1")
		process(t, p, sim.Device(51), "s1")
		tt.store(t, sim.Device(50), sim.Device(51))

		wantTypes := map[string]map[string]string{
			"sqlite":   {"contoso_asset_tag": "TEXT", "configuration_manager_client_health_state": "TEXT", "warranty_end_date_time": "TEXT", "battery_level_percentage": "INTEGER", "cpu_load": "REAL", "autopilot_enrolled": "INTEGER", "order": "TEXT"},
			"postgres": {"contoso_asset_tag": "text", "configuration_manager_client_health_state": "jsonb", "warranty_end_date_time": "timestamp with time zone", "battery_level_percentage": "bigint", "cpu_load": "numeric", "autopilot_enrolled": "boolean", "order": "text"},
		}[tt.driver]
		for col, typ := range wantTypes {
			if got := tt.columnType(t, col); got != typ {
				t.Errorf("column %s is %q, want %q", col, got, typ)
			}
		}
		if got := tt.columnType(t, "not_yet_known"); got != "" {
			t.Errorf("a property with only nulls got a %s column", got)
		}
		// Every row, those stored before the columns existed included.
		tags, batteries, hardware, order := tt.columnValues(t, "contoso_asset_tag"), tt.columnValues(t, "battery_level_percentage"), tt.columnValues(t, "configuration_manager_client_health_state"), tt.columnValues(t, "order")
		if len(tags) != 52 {
			t.Fatalf("%d rows", len(tags))
		}
		for i := 0; i < 52; i++ {
			id := sim.DeviceID(i)
			if tags[id] != fmt.Sprintf("TAG-%d", i) || fmt.Sprint(batteries[id]) != fmt.Sprint(i) || order[id] != fmt.Sprintf("keyword-%d", i) {
				t.Fatalf("row %d: tag %v, battery %v, order %v", i, tags[id], batteries[id], order[id])
			}
			if h := fmt.Sprint(hardware[id]); !strings.Contains(h, fmt.Sprintf(`"S%d"`, i)) {
				t.Fatalf("row %d: configuration_manager_client_health_state %s", i, h)
			}
		}
		// A row written later is filled by the database.
		tt.store(t, sim.Device(52))
		if got := tt.columnValues(t, "contoso_asset_tag")[sim.DeviceID(52)]; got != "TAG-52" {
			t.Fatalf("a new row has %v", got)
		}

		lines := w.all()
		if len(lines) != 1 {
			t.Fatalf("want one WARN line for the sync, got %q", lines)
		}
		for _, want := range []string{"sync s1", "contosoAssetTag (string; column contoso_asset_tag", "configurationManagerClientHealthState (json; column configuration_manager_client_health_state", "notYetKnown (null so far; no column until a device has a value)", "kept whole in _raw"} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("%q does not say %q", lines[0], want)
			}
		}

		// The next sync names them again, as columns that exist; a value
		// for the null property gives it its column.
		late := []byte(strings.Replace(string(sim.Device(53)), `"notYetKnown":null`, `"notYetKnown":"now"`, 1))
		process(t, p, late, "s2")
		if lines = w.all(); len(lines) != 2 || !strings.Contains(lines[1], "sync s2") || !strings.Contains(lines[1], "contosoAssetTag (string; column contoso_asset_tag)") {
			t.Fatalf("second sync: %q", lines)
		}
		if tt.columnType(t, "not_yet_known") == "" {
			t.Error("notYetKnown got no column once it had a value")
		}
	})
}

func TestNewColumnsOnlyReportsWhenAddColumnsIsOff(t *testing.T) {
	eachDatabase(t, func(t *testing.T, tt testTable) {
		tt.create(t)
		sim := graphsim.New(graphsim.Config{Devices: 2, Seed: 8, ExtraProperties: newProperties[:2]})
		p, w := tt.newProcessor(t, false)
		process(t, p, sim.Device(0), "s1")
		if tt.columnType(t, "contoso_asset_tag") != "" {
			t.Fatal("a column was added with add_columns: false")
		}
		if lines := w.all(); len(lines) != 1 || !strings.Contains(lines[0], "contosoAssetTag (string; no column (add_columns is off))") {
			t.Fatalf("lines %q", lines)
		}
	})
}

func TestNewColumnsWaitsForTheOutputToCreateTheTable(t *testing.T) {
	eachDatabase(t, func(t *testing.T, tt testTable) {
		sim := graphsim.New(graphsim.Config{Devices: 1, Seed: 8, ExtraProperties: newProperties[:1]})
		p, _ := tt.newProcessor(t, true)
		go func() {
			time.Sleep(300 * time.Millisecond)
			tt.create(t)
		}()
		process(t, p, sim.Device(0), "s1")
		if tt.columnType(t, "contoso_asset_tag") != "TEXT" && tt.columnType(t, "contoso_asset_tag") != "text" {
			t.Fatal("no column once the table appeared")
		}
	})
}

func TestNewColumnsExplainsATableWithoutRaw(t *testing.T) {
	eachDatabase(t, func(t *testing.T, tt testTable) {
		if _, err := tt.db.Exec(`CREATE TABLE managed_devices (id text PRIMARY KEY, device_name text)`); err != nil {
			t.Fatal(err)
		}
		sim := graphsim.New(graphsim.Config{Devices: 1, Seed: 8, ExtraProperties: newProperties[:1]})
		p, w := tt.newProcessor(t, true)
		var logged []string
		p.warnf = func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) }
		process(t, p, sim.Device(0), "s1")
		if len(logged) != 1 || !strings.Contains(logged[0], "has no _raw column") || !strings.Contains(logged[0], "RENAME TO managed_devices_old") {
			t.Fatalf("logged %q", logged)
		}
		if lines := w.all(); len(lines) != 1 || !strings.Contains(lines[0], "table could not be read") {
			t.Fatalf("report %q", lines)
		}
	})
}

// When the output never creates the table (its init_statement failed, which
// Benthos only warns about), the processor creates it as the shipped
// configs do, rather than leaving every write to fail until a restart.
func TestNewColumnsCreatesTheTableTheOutputFailedToCreate(t *testing.T) {
	defer func(d time.Duration) { waitForTable = d }(waitForTable)
	waitForTable = 300 * time.Millisecond
	eachDatabase(t, func(t *testing.T, tt testTable) {
		sim := graphsim.New(graphsim.Config{Devices: 1, Seed: 8, ExtraProperties: newProperties[:1]})
		p, _ := tt.newProcessor(t, true)
		var warned []string
		p.warnf = func(format string, args ...any) { warned = append(warned, fmt.Sprintf(format, args...)) }
		process(t, p, sim.Device(0), "s1")
		if tt.columnType(t, "device_name") == "" || tt.columnType(t, "contoso_asset_tag") == "" {
			t.Fatal("no table, or no column for the new property")
		}
		if len(warned) != 1 || !strings.Contains(warned[0], "created it as the shipped configs do") {
			t.Fatalf("warned %q", warned)
		}
	})
}
