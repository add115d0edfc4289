package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	_ "modernc.org/sqlite" // the test reads the SQLite table with its own connection

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// shippedTable is config/sqlite.yaml or config/postgres.yaml with a
// database of its own, read back with the test's own connection.
type shippedTable struct {
	dest   string   // "sqlite" or "postgres"
	config string   // the shipped config
	env    []string // what points the config at the database
	db     *sql.DB
}

func eachShippedTable(t *testing.T, test func(t *testing.T, tb shippedTable)) {
	eachDatabase(t, "sqlite.yaml", "postgres.yaml", test)
}

// eachDatabase runs test against a SQLite config and a PostgreSQL config,
// each with a database of its own.
func eachDatabase(t *testing.T, sqliteConfig, postgresConfig string, test func(t *testing.T, tb shippedTable)) {
	t.Run("sqlite", func(t *testing.T) { test(t, sqliteTable(t, sqliteConfig)) })
	t.Run("postgres", func(t *testing.T) {
		dsn, db := freshDatabase(t)
		test(t, shippedTable{"postgres", postgresConfig, []string{"INTUNE_PG_DSN=" + dsn}, db})
	})
}

// sqliteTable is a SQLite config with a database file of its own.
func sqliteTable(t *testing.T, config string) shippedTable {
	t.Helper()
	dsn := "file:" + filepath.Join(t.TempDir(), "intune.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return shippedTable{"sqlite", config, []string{"INTUNE_SQLITE_DSN=" + dsn}, db}
}

// rows reads every row of managed_devices, each column as the driver gives
// it ([]byte as string), by id.
func (tb shippedTable) rows(t *testing.T) map[string]map[string]any {
	t.Helper()
	res, err := tb.db.Query(`SELECT * FROM managed_devices`)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	cols, err := res.Columns()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for res.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := res.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := map[string]any{}
		for i, c := range cols {
			if b, ok := vals[i].([]byte); ok {
				vals[i] = string(b)
			}
			row[c] = vals[i]
		}
		out[fmt.Sprint(row["id"])] = row
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// jsonValue decodes JSON text with exact numbers, for comparing a JSON
// column with what Graph sent.
func jsonValue(t *testing.T, text any) any {
	t.Helper()
	s, ok := text.(string)
	if !ok {
		t.Fatalf("%v (%T) is not JSON text", text, text)
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return v
}

// checkDeviceRow compares every column the schema lists, and _raw, with the
// device Graph sent, and returns how many never-dates it saw as NULL.
func (tb shippedTable) checkDeviceRow(t *testing.T, row map[string]any, device []byte) (nevers int) {
	t.Helper()
	d := decodeDevice(t, device)
	if !reflect.DeepEqual(jsonValue(t, row[schema.RawColumn]), d) {
		t.Fatalf("device %s: _raw is not the device Graph sent:\n%v\n%s", d["id"], row[schema.RawColumn], device)
	}
	if tb.dest == "sqlite" && row[schema.RawColumn] != string(device) {
		t.Fatalf("device %s: SQLite's _raw is not byte for byte what Graph sent", d["id"])
	}
	for _, c := range schema.Columns() {
		got, v := row[c.Name], d[c.Property]
		if v == nil {
			if got != nil {
				t.Fatalf("device %s: %s = %v, want NULL for null", d["id"], c.Name, got)
			}
			continue
		}
		switch c.Kind {
		case schema.KindDateTime:
			s := v.(string)
			if strings.HasPrefix(s, "0001-01-01") {
				nevers++
				if got != nil {
					t.Fatalf("device %s: %s = %v, want NULL for Graph's never (%s)", d["id"], c.Name, got, s)
				}
				continue
			}
			want, _ := time.Parse(time.RFC3339Nano, s)
			if tb.dest == "sqlite" && got != s || tb.dest == "postgres" && !want.Equal(asTime(got)) {
				t.Fatalf("device %s: %s = %v, want %s", d["id"], c.Name, got, s)
			}
		case schema.KindBoolean:
			want := fmt.Sprint(v)
			if tb.dest == "sqlite" {
				want = map[bool]string{true: "1", false: "0"}[v.(bool)]
			}
			if fmt.Sprint(got) != want {
				t.Fatalf("device %s: %s = %v, want %v", d["id"], c.Name, got, v)
			}
		case schema.KindJSON:
			if !reflect.DeepEqual(jsonValue(t, got), v) {
				t.Fatalf("device %s: %s = %v, want the JSON of %v", d["id"], c.Name, got, v)
			}
		default: // strings, and Int64 with every digit
			if fmt.Sprint(got) != fmt.Sprint(v) {
				t.Fatalf("device %s: %s = %v, want %v", d["id"], c.Name, got, v)
			}
		}
	}
	return nevers
}

func asTime(v any) time.Time {
	t, _ := v.(time.Time)
	return t
}

// warnLines are the WARN lines that name properties with no column.
func warnLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "level=warning") && strings.Contains(l, "no column in intune-benthos' managedDevice schema") {
			out = append(out, l)
		}
	}
	return out
}

// Graph's beta adds properties no shipped table lists, and Microsoft may add
// one to v1.0 tomorrow: each becomes a column of its own, filled, the whole
// device stays in _raw, typed columns hold what Graph sent (never-dates as
// NULL), and the log names the new properties once per sync.
func TestShippedTablesGiveEveryNewPropertyAColumnAndKeepTheWholeDevice(t *testing.T) {
	eachShippedTable(t, func(t *testing.T, tb shippedTable) {
		const n = 1500
		sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 31, PageSize: 400,
			ExtraProperties: []graphsim.ExtraProperty{{Name: "contosoAssetTag", Value: `"TAG-{index}"`}}})
		env = append(append(env, tb.env...), "INTUNE_API_VERSION=beta")
		// beta's hardwareInformation and roleScopeTagIds have columns of
		// their own: their lists leave them at a default, which details
		// fill (details_test.go), and NULL here without.
		newProps := map[string]string{"contosoAssetTag": "contoso_asset_tag", "chassisType": "chassis_type", "usersLoggedOn": "users_logged_on"}
		columns := map[string]string{"hardwareInformation": "hardware_information", "roleScopeTagIds": "role_scope_tag_ids", "usersLoggedOn": "users_logged_on"}

		for run := 1; run <= 2; run++ {
			res := runBinary(t, env, "-c", config(tb.config))
			if res.exitCode != 0 {
				t.Fatalf("run %d: exit %d\n%s", run, res.exitCode, res.logs())
			}
			warns := warnLines(res.logs())
			if len(warns) != 1 {
				t.Fatalf("run %d: want one WARN line naming the new properties, got %d:\n%s", run, len(warns), strings.Join(warns, "\n"))
			}
			for prop, col := range newProps {
				if !strings.Contains(warns[0], prop+" (") || !strings.Contains(warns[0], "column "+col) {
					t.Errorf("run %d: the WARN line does not name %s and its column %s: %s", run, prop, col, warns[0])
				}
			}
		}

		rows := tb.rows(t)
		if len(rows) != n {
			t.Fatalf("%d rows, want %d", len(rows), n)
		}
		nevers, loggedOn := 0, 0
		for i := 0; i < n; i++ {
			device := sim.EmittedDevice(i, true, false)
			row := rows[sim.DeviceID(i)]
			if row == nil {
				t.Fatalf("device %d has no row", i)
			}
			nevers += tb.checkDeviceRow(t, row, device)
			d := decodeDevice(t, device)
			if row["contoso_asset_tag"] != fmt.Sprintf("TAG-%d", i) || row["chassis_type"] != d["chassisType"] {
				t.Fatalf("device %d: contoso_asset_tag %v, chassis_type %v", i, row["contoso_asset_tag"], row["chassis_type"])
			}
			for _, prop := range []string{"hardwareInformation", "roleScopeTagIds", "usersLoggedOn"} {
				col := columns[prop]
				if d[prop] == nil {
					if row[col] != nil {
						t.Fatalf("device %d: %s = %v, want NULL", i, col, row[col])
					}
					continue
				}
				if prop == "usersLoggedOn" {
					loggedOn++
				}
				if !reflect.DeepEqual(jsonValue(t, row[col]), d[prop]) {
					t.Fatalf("device %d: %s = %v, want %v", i, col, row[col], d[prop])
				}
			}
		}
		if nevers < 100 || loggedOn == 0 {
			t.Fatalf("the data proved little: %d never-dates, %d devices with users logged on", nevers, loggedOn)
		}
	})
}

// A column added for a property fills the rows already stored: rows synced
// while adding columns was off get their values as soon as a later sync,
// here of three changed devices only, adds the column.
func TestANewColumnIsFilledForRowsAlreadyStored(t *testing.T) {
	eachShippedTable(t, func(t *testing.T, tb shippedTable) {
		const n = 800
		sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 37, ExtraProperties: []graphsim.ExtraProperty{
			{Name: "contosoAssetTag", Value: `"TAG-{index}"`},
			{Name: "configurationManagerClientHealthState", Value: `{"state":"healthy","errorCode":{index}}`},
		}})
		env = append(env, tb.env...)

		res := runBinary(t, append(env, "INTUNE_ADD_COLUMNS=false"), "-c", config(tb.config))
		if res.exitCode != 0 {
			t.Fatalf("first run: exit %d\n%s", res.exitCode, res.stderr)
		}
		if w := warnLines(res.logs()); len(w) != 1 || !strings.Contains(w[0], "contosoAssetTag (string; no column (add_columns is off))") {
			t.Fatalf("first run warned %q", w)
		}
		if _, ok := tb.rows(t)[sim.DeviceID(0)]["contoso_asset_tag"]; ok {
			t.Fatal("a column was added with INTUNE_ADD_COLUMNS=false")
		}

		sim.Change(5, 6, 7)
		res = runBinary(t, append(env, "INTUNE_EMIT=changes"), "-c", config(tb.config))
		if res.exitCode != 0 {
			t.Fatalf("second run: exit %d\n%s", res.exitCode, res.stderr)
		}
		if !strings.Contains(res.logs(), "3 upserts and 0 deletions emitted") {
			t.Fatalf("the second run should emit the 3 changed devices only:\n%s", res.logs())
		}
		rows := tb.rows(t)
		for i := 0; i < n; i++ {
			row := rows[sim.DeviceID(i)]
			if row["contoso_asset_tag"] != fmt.Sprintf("TAG-%d", i) {
				t.Fatalf("device %d: contoso_asset_tag = %v after the column was added", i, row["contoso_asset_tag"])
			}
			if h := jsonValue(t, row["configuration_manager_client_health_state"]).(map[string]any); fmt.Sprint(h["errorCode"]) != fmt.Sprint(i) {
				t.Fatalf("device %d: configuration_manager_client_health_state = %v", i, h)
			}
		}
	})
}

// The property report is a metric too: every device carrying a property
// with no column is counted, and the columns added.
func TestUnmappedPropertiesAreCountedInMetrics(t *testing.T) {
	const n = 600
	_, env := simEnv(t, graphsim.Config{Devices: n, Seed: 41, ExtraProperties: []graphsim.ExtraProperty{
		{Name: "contosoAssetTag", Value: `"TAG-{index}"`}, {Name: "warrantyEndDateTime", Value: `"2028-01-01T00:00:00Z"`}}})
	env = append(env, "INTUNE_SQLITE_DSN=file:"+filepath.Join(t.TempDir(), "m.db")+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd, _, stderr := startBinary(t, env, "-c", config("sqlite.yaml"), "--set", "http.address="+addr, "--set", "shutdown_delay=20s")
	var m map[string]float64
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if m = scrape(t, "http://"+addr+"/metrics"); m["intune_last_success_timestamp"] > 0 {
			break
		}
	}
	_ = cmd.Process.Kill()
	for series, want := range map[string]float64{
		`intune_unmapped_properties{property="contosoAssetTag"`:     n,
		`intune_unmapped_properties{property="warrantyEndDateTime"`: n,
		"intune_columns_added": 2,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v\n%s", series, m[series], want, stderr)
		}
	}
}

// Every shipped config that can run here works from a fresh clone with only
// its environment set: no directory to create, no state to prepare, from
// any working directory; and a second run finds the state the first left.
func TestShippedConfigsRunFromAFreshCloneWithOnlyTheirEnvironment(t *testing.T) {
	const n = 700
	sim, simVars := simEnv(t, graphsim.Config{Devices: n, Seed: 43})
	var graphOnly []string
	for _, v := range simVars {
		if !strings.HasPrefix(v, "INTUNE_STATE_DIR=") {
			graphOnly = append(graphOnly, v)
		}
	}
	pgDSN, pg := freshDatabase(t)
	broker := kafkaBroker(t, "intune.managed_devices")
	for _, tc := range []struct {
		config string
		env    []string
		files  []string // what the run leaves in its working directory
	}{
		{"sqlite.yaml", nil, []string{"intune.db"}},
		{"postgres.yaml", []string{"INTUNE_PG_DSN=" + pgDSN}, nil},
		{"kafka.yaml", []string{"INTUNE_KAFKA_BROKERS=" + broker}, []string{"intune_managed_devices_state_" + sim.Config().TenantID}},
		{"stdout.yaml", nil, nil},
	} {
		t.Run(tc.config, func(t *testing.T) {
			dir := t.TempDir()
			for run := 1; run <= 2; run++ {
				res := runBinaryIn(t, dir, append(append([]string(nil), graphOnly...), tc.env...), "-c", config(tc.config))
				if res.exitCode != 0 {
					t.Fatalf("run %d: exit %d\n%s", run, res.exitCode, res.logs())
				}
				if !strings.Contains(res.logs(), fmt.Sprintf("delivered: %d devices listed", n)) {
					t.Fatalf("run %d did not complete a sync:\n%s", run, res.logs())
				}
			}
			for _, prefix := range tc.files {
				if matches, _ := filepath.Glob(filepath.Join(dir, prefix+"*")); len(matches) == 0 {
					t.Errorf("no %s* in the working directory", prefix)
				}
			}
		})
	}
	var rows int
	if err := pg.QueryRow(`SELECT count(*) FROM managed_devices`).Scan(&rows); err != nil || rows != n {
		t.Errorf("postgres: %d rows, %v", rows, err)
	}
}

// A deletion of a device the table holds: with the state in the database,
// the second run names it and the row is marked.
func TestShippedTablesMarkDeletionsWithTheirStateInTheDatabase(t *testing.T) {
	eachShippedTable(t, func(t *testing.T, tb shippedTable) {
		const n = 500
		sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 47})
		env = append(env, tb.env...)
		if res := runBinary(t, env, "-c", config(tb.config)); res.exitCode != 0 {
			t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
		}
		gone := []string{sim.DeviceID(3), sim.DeviceID(400)}
		sim.Remove(3, 400)
		if res := runBinary(t, env, "-c", config(tb.config)); res.exitCode != 0 || !strings.Contains(res.logs(), "2 deletions emitted") {
			t.Fatalf("exit %d\n%s", res.exitCode, res.logs())
		}
		rows := tb.rows(t)
		deleted := 0
		for id, row := range rows {
			if fmt.Sprint(row["_deleted"]) == "true" || fmt.Sprint(row["_deleted"]) == "1" {
				deleted++
				if id != gone[0] && id != gone[1] {
					t.Errorf("%s marked deleted", id)
				}
			}
		}
		if len(rows) != n || deleted != 2 {
			t.Fatalf("%d rows, %d marked deleted; want %d and 2", len(rows), deleted, n)
		}
	})
}

// consumerFromStart reads topics of cluster from their first record, as a
// consumer that just subscribed would; it is closed with the test.
func consumerFromStart(t *testing.T, cluster *kfake.Cluster, topics ...string) *kgo.Client {
	t.Helper()
	client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

// kafkaBroker starts an in-process Kafka-protocol broker (franz-go's kfake)
// with topic, and returns its address.
func kafkaBroker(t *testing.T, topic string) string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	return cluster.ListenAddrs()[0]
}
