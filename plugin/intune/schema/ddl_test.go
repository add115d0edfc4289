package schema

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/internal/testdb"
)

// devices are graphsim devices plus hand-made ones with what Graph can send
// and a table must survive: wrong types, odd dates, null everywhere.
func testDevices(t *testing.T) [][]byte {
	sim := graphsim.New(graphsim.Config{Devices: 400, Seed: 21})
	var out [][]byte
	for i := 0; i < 400; i++ {
		out = append(out, sim.Device(i))
	}
	out = append(out,
		[]byte(`{"id":"odd-1","isEncrypted":"yes","totalStorageSpaceInBytes":1.5,"enrolledDateTime":"yesterday","lastSyncDateTime":"2026-02-30T00:00:00Z","deviceActionResults":"none","deviceName":{"not":"a string"}}`),
		[]byte(`{"id":"odd-2","isEncrypted":null,"totalStorageSpaceInBytes":99999999999999999999,"enrolledDateTime":"2026-11-20T10:00:00.1234567Z","lastSyncDateTime":"2026-11-20T10:00:00+02:00","deviceActionResults":null}`),
		[]byte(`{"id":"odd-3"}`),
	)
	return out
}

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// jsonText is a value a text column holds as JSON text.
type jsonText struct{ v any }

func sameJSONText(got any, want jsonText) bool {
	var s string
	switch g := got.(type) {
	case string:
		s = g
	case []byte:
		s = string(g)
	default:
		return false
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	return d.Decode(&v) == nil && fmt.Sprint(v) == fmt.Sprint(want.v)
}

// wantColumn is what a column must hold for a property's value: NULL for
// null, a missing property, a value of the wrong type and Graph's "never";
// else the value, typed.
func wantColumn(dest string, c Column, v any) (any, bool) {
	if dest == "sqlite" && c.Kind == KindDateTime {
		s, ok := v.(string)
		if !ok || !LooksLikeDateTime([]byte(`"`+s+`"`)) || IsNever([]byte(`"`+s+`"`)) {
			return nil, false
		}
		return s, true
	}
	switch c.Kind {
	case KindString:
		if v == nil {
			return nil, false
		}
		if s, ok := v.(string); ok {
			return s, true
		}
		return jsonText{v}, true // a text column holds any value as its JSON
	case KindBoolean:
		b, ok := v.(bool)
		return b, ok
	case KindInt64:
		n, ok := v.(json.Number)
		if !ok {
			return nil, false
		}
		i, err := n.Int64()
		return i, err == nil
	case KindDateTime:
		s, ok := v.(string)
		if !ok || strings.HasPrefix(s, "0001-01-01") {
			return nil, false
		}
		ts, err := time.Parse(time.RFC3339Nano, s)
		return ts, err == nil
	case KindJSON:
		if v == nil {
			return nil, false
		}
		return jsonText{v}, true
	}
	return nil, false
}

func TestSQLiteExpressionsComputeEveryColumnFromRaw(t *testing.T) {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The expressions intune_new_columns gives the columns it adds, and
	// that tables of releases before intune_sqlite computed every column with.
	if _, err := db.Exec(createTable("sqlite", "managed_devices", Columns(), "device", true, true, "")); err != nil {
		t.Fatal(err)
	}
	checkTable(t, db, "sqlite", "?", func(c Column, got any, want any) bool {
		switch w := want.(type) {
		case jsonText:
			return sameJSONText(got, w)
		case bool:
			return fmt.Sprint(got) == map[bool]string{true: "1", false: "0"}[w]
		case time.Time:
			return got != nil // SQLite keeps the text: compared below
		case map[string]any, []any:
			s, ok := got.(string)
			if !ok {
				return false
			}
			var g any
			d := json.NewDecoder(strings.NewReader(s))
			d.UseNumber()
			return d.Decode(&g) == nil && fmt.Sprint(g) == fmt.Sprint(w)
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
}

func TestPostgresTableComputesEveryColumnFromRaw(t *testing.T) {
	_, db := testdb.FreshPostgres(t)
	if _, err := db.Exec(CreateTable("postgres", "managed_devices", "")); err != nil {
		t.Fatal(err)
	}
	// Twice: the functions and the table are created if missing only.
	if _, err := db.Exec(CreateTable("postgres", "managed_devices", "")); err != nil {
		t.Fatal(err)
	}
	checkTable(t, db, "postgres", "$1", func(c Column, got any, want any) bool {
		switch w := want.(type) {
		case jsonText:
			return sameJSONText(got, w)
		case time.Time:
			g, ok := got.(time.Time)
			return ok && g.Equal(w.Truncate(time.Microsecond)) || ok && g.Equal(w.Round(time.Microsecond))
		case map[string]any, []any:
			b, ok := got.([]byte)
			if !ok {
				return false
			}
			var g any
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			return d.Decode(&g) == nil && fmt.Sprint(g) == fmt.Sprint(w)
		case string:
			b, ok := got.([]byte)
			return ok && string(b) == w || got == w
		}
		return fmt.Sprint(got) == fmt.Sprint(want)
	})
}

// checkTable inserts every test device as _raw and compares each computed
// column with the device's property.
func checkTable(t *testing.T, db *sql.DB, dest, param string, same func(c Column, got, want any) bool) {
	t.Helper()
	devices := testDevices(t)
	for _, d := range devices {
		id := decode(t, d)["id"].(string)
		if _, err := db.Exec("INSERT INTO managed_devices (id, _raw) VALUES ("+strings.Replace(param, "1", "1", 1)+", "+strings.Replace(param, "1", "2", 1)+")", id, string(d)); err != nil {
			t.Fatalf("inserting %s: %v", id, err)
		}
	}
	cols := Columns()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	nevers, typed := 0, 0
	for _, d := range devices {
		dev := decode(t, d)
		row := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := db.QueryRow("SELECT "+strings.Join(names, ", ")+" FROM managed_devices WHERE id = "+param, dev["id"]).Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, c := range cols {
			want, ok := wantColumn(dest, c, dev[c.Property])
			if c.Kind == KindDateTime && strings.HasPrefix(fmt.Sprint(dev[c.Property]), "0001-01-01") {
				nevers++
			}
			if !ok {
				if row[i] != nil {
					t.Fatalf("device %s: %s = %v (%T), want NULL for %v", dev["id"], c.Name, row[i], row[i], dev[c.Property])
				}
				continue
			}
			typed++
			if !same(c, row[i], want) {
				t.Fatalf("device %s: %s = %v (%T), want %v", dev["id"], c.Name, row[i], row[i], want)
			}
			if ts, isTime := want.(time.Time); isTime {
				if s, isText := row[i].(string); isText && s != dev[c.Property] {
					t.Fatalf("device %s: %s = %q, want %q as Graph sent it (%v)", dev["id"], c.Name, s, dev[c.Property], ts)
				}
			}
		}
	}
	if nevers < 100 || typed < 10000 {
		t.Fatalf("only %d never-dates and %d typed values checked", nevers, typed)
	}
}
