package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// lastLine is the last line the run printed on stderr.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// One device of 20,000 carries a NUL character (valid JSON that PostgreSQL's
// jsonb refuses): it goes to managed_devices_rejected with PostgreSQL's
// error, the 19,999 others to managed_devices, and the run says so in its
// last line and exits 3.
func TestPostgresConfigSendsADeviceItRefusesToTheDeadLetter(t *testing.T) {
	const n, bad = 20000, 12345
	dsn, db := freshDatabase(t)
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 71, ExtraProperties: []graphsim.ExtraProperty{
		{Name: "deviceCategoryDisplayName", Value: `"bad\u0000byte"`, Devices: []int{bad}}}})
	env = append(env, "INTUNE_PG_DSN="+dsn)
	res := runBinary(t, env, "-c", config("postgres.yaml"))
	if res.exitCode != 3 {
		t.Fatalf("exit %d, want 3 (complete, one device dead-lettered)\n%s", res.exitCode, res.logs())
	}
	if rows, ids := countRows(db); rows != n-1 || ids != n-1 {
		t.Fatalf("%d rows, %d ids in managed_devices; want %d", rows, ids, n-1)
	}
	var id, syncID, reason, device string
	if err := db.QueryRow(`SELECT id, sync_id, error, device FROM managed_devices_rejected`).Scan(&id, &syncID, &reason, &device); err != nil {
		t.Fatal(err)
	}
	if id != sim.DeviceID(bad) || syncID == "" || !strings.Contains(reason, "22P05") || device != string(sim.EmittedDevice(bad, false, false)) {
		t.Fatalf("rejected row: id %s (want %s), sync %q, error %q, device as sent: %v", id, sim.DeviceID(bad), syncID, reason, device == string(sim.EmittedDevice(bad, false, false)))
	}
	var count int
	if err := db.QueryRow(`SELECT count(*) FROM managed_devices_rejected`).Scan(&count); err != nil || count != 1 {
		t.Fatalf("%d rejected rows (%v)", count, err)
	}
	if !strings.Contains(res.logs(), "refused device "+id+" for its content") {
		t.Errorf("the refused device is not named in the log:\n%s", res.logs())
	}
	if want := "19999 devices reached their destination, 1 its dead letter"; !strings.Contains(lastLine(res.stderr), want) {
		t.Errorf("last line %q, want it to say %q", lastLine(res.stderr), want)
	}
}

// SQLite holds what PostgreSQL refuses (text is text), so the same device
// lands in the table; a device a constraint of the user's refuses (here a
// trigger, SQLITE_CONSTRAINT) goes to managed_devices_rejected, and the
// others to the table.
func TestSQLiteConfigSendsADeviceItRefusesToTheDeadLetter(t *testing.T) {
	const n = 6000
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 73, ExtraProperties: []graphsim.ExtraProperty{
		{Name: "deviceCategoryDisplayName", Value: `"bad\u0000byte"`, Devices: []int{100}},
		{Name: "deviceCategoryDisplayName", Value: `"quarantined"`, Devices: []int{4321}}}})
	path := filepath.Join(t.TempDir(), "intune.db")
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	env = append(env, "INTUNE_SQLITE_DSN="+dsn)
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(schema.CreateTable("sqlite", "managed_devices", "") + `
		CREATE TRIGGER quarantine BEFORE INSERT ON managed_devices
		WHEN json_extract(NEW._raw, '$.deviceCategoryDisplayName') = 'quarantined'
		BEGIN SELECT RAISE(ABORT, 'device is quarantined'); END;`); err != nil {
		t.Fatal(err)
	}
	res := runBinary(t, env, "-c", config("sqlite.yaml"))
	if res.exitCode != 3 {
		t.Fatalf("exit %d, want 3\n%s", res.exitCode, res.logs())
	}
	if rows, ids := countRows(db); rows != n-1 || ids != n-1 {
		t.Fatalf("%d rows, %d ids; want %d", rows, ids, n-1)
	}
	var id, reason, device string
	if err := db.QueryRow(`SELECT id, error, device FROM managed_devices_rejected`).Scan(&id, &reason, &device); err != nil {
		t.Fatal(err)
	}
	if id != sim.DeviceID(4321) || !strings.Contains(reason, "quarantined") || device != string(sim.EmittedDevice(4321, false, false)) {
		t.Fatalf("rejected: %s %q", id, reason)
	}
	var category string
	if err := db.QueryRow(`SELECT device_category_display_name FROM managed_devices WHERE id = ?`, sim.DeviceID(100)).Scan(&category); err != nil || category != "bad\x00byte" {
		t.Fatalf("the NUL device in SQLite: %q, %v", category, err)
	}
}

// A device too large for Kafka (over max_message_bytes) goes to the
// dead-letter topic, saying which device, why and how large; every other
// device is on the topic. A Kafka batch is not atomic: the records of the
// refused batch that the broker took are sent again while the refused one
// is isolated, so some are on the topic twice (at least once; compaction by
// key keeps one).
func TestKafkaConfigSendsARecordItRefusesToTheDeadLetterTopic(t *testing.T) {
	const n, topic, dlt = 3000, "intune.managed_devices", "intune.managed_devices.rejected"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic, dlt))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	huge := `"` + strings.Repeat("x", 1200000) + `"`
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 79, ExtraProperties: []graphsim.ExtraProperty{
		{Name: "deviceCategoryDisplayName", Value: huge, Devices: []int{77}}}})
	env = append(env, "INTUNE_KAFKA_BROKERS="+cluster.ListenAddrs()[0])
	res := runBinary(t, env, "-c", config("kafka.yaml"))
	if res.exitCode != 3 {
		t.Fatalf("exit %d, want 3\n%s", res.exitCode, res.logs())
	}
	records := func(topic string, want int) []*kgo.Record {
		client, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(topic),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		var out []*kgo.Record
		for deadline := time.Now().Add(5 * time.Second); len(out) < want && time.Now().Before(deadline); {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			client.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
			cancel()
		}
		return out
	}
	keys := map[string]bool{}
	for _, r := range records(topic, 2*n) {
		keys[strings.TrimPrefix(string(r.Key), sim.Config().TenantID+"/")] = true
	}
	if len(keys) != n-1 || keys[sim.DeviceID(77)] {
		t.Fatalf("%d devices on %s (the refused one among them: %v), want the %d others", len(keys), topic, keys[sim.DeviceID(77)], n-1)
	}
	dead := records(dlt, 1)
	if len(dead) != 1 || string(dead[0].Key) != tenantKey(sim, sim.DeviceID(77)) {
		t.Fatalf("dead letters: %d", len(dead))
	}
	var v struct {
		ID, Error string
		Bytes     int
		Device    *string
	}
	if err := json.Unmarshal(dead[0].Value, &v); err != nil || v.ID != sim.DeviceID(77) || !strings.Contains(v.Error, "MESSAGE_TOO_LARGE") || v.Bytes < 1200000 || v.Device != nil {
		t.Fatalf("dead letter %s (%v)", dead[0].Value[:min(300, len(dead[0].Value))], err)
	}
}
