package e2e

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestAppsConfigsKeepExactlyTheTenantsPairs runs each apps config twice,
// with apps upgraded and uninstalled and a device retired between the
// runs: after each run the tables hold exactly graphsim's apps and pairs.
func TestAppsConfigsKeepExactlyTheTenantsPairs(t *testing.T) {
	eachDatabase(t, "apps-sqlite.yaml", "apps-postgres.yaml", func(t *testing.T, tb shippedTable) {
		sim, env := simEnv(t, graphsim.Config{Devices: 120, DetectedApps: 900, AppsPerDevice: 40, Seed: 23})
		env = append(env, tb.env...)
		for run := 1; run <= 2; run++ {
			if run == 2 {
				sim.ChangeApps(0, 1, 2, 50)
				sim.Remove(7)
			}
			res := runBinary(t, env, "-c", config(tb.config))
			if res.exitCode != 0 {
				t.Fatalf("run %d: exit %d\n%s", run, res.exitCode, res.logs())
			}
			if want := "apps and pairs reached their destination, 0 its dead letter"; !strings.Contains(lastLine(res.stderr), want) {
				t.Errorf("run %d: the last line %q does not say %q", run, lastLine(res.stderr), want)
			}
			checkAppTables(t, run, tb.db, sim)
		}
	})
}

// checkAppTables compares the tables with graphsim's ground truth.
func checkAppTables(t *testing.T, run int, db *sql.DB, sim *graphsim.Server) {
	t.Helper()
	pairs := map[[2]string]string{}
	rows, err := db.Query(`SELECT device_id, app_id, coalesce(device_name, '') FROM device_apps`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var device, app, name string
		if err := rows.Scan(&device, &app, &name); err != nil {
			t.Fatal(err)
		}
		pairs[[2]string{device, app}] = name
	}
	rows.Close()
	want := sim.DeviceAppPairs()
	if len(pairs) != len(want) {
		t.Errorf("run %d: device_apps holds %d pairs, graphsim %d", run, len(pairs), len(want))
	}
	for _, p := range want {
		if name, ok := pairs[[2]string{p.DeviceID, p.AppID}]; !ok || name != p.DeviceName {
			t.Errorf("run %d: pair %+v: in table %v with name %q", run, p, ok, name)
			break
		}
	}
	apps := map[string][2]string{}
	rows, err = db.Query(`SELECT id, display_name, version FROM detected_apps`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, name, version string
		if err := rows.Scan(&id, &name, &version); err != nil {
			t.Fatal(err)
		}
		apps[id] = [2]string{name, version}
	}
	rows.Close()
	wantApps := sim.DetectedApps()
	if len(apps) != len(wantApps) {
		t.Errorf("run %d: detected_apps holds %d apps, graphsim %d", run, len(apps), len(wantApps))
	}
	for _, a := range wantApps {
		if got := apps[a.ID]; got != [2]string{a.DisplayName, a.Version} {
			t.Errorf("run %d: app %s is %v, want %s %s", run, a.ID, got, a.DisplayName, a.Version)
			break
		}
	}
}

// TestAppsKafkaConfigKeysPairsByDeviceAndApp runs config/apps-kafka.yaml
// against an in-process broker and reads both topics back: every app keyed
// by its id, every pair keyed by "<device id>/<app id>", each once.
func TestAppsKafkaConfigKeysPairsByDeviceAndApp(t *testing.T) {
	const appsTopic, pairsTopic = "intune.detected_apps", "intune.device_apps"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, appsTopic, pairsTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	sim, env := simEnv(t, graphsim.Config{Devices: 80, DetectedApps: 500, AppsPerDevice: 30, Seed: 29})
	env = append(env, "INTUNE_KAFKA_BROKERS="+cluster.ListenAddrs()[0])
	if res := runBinary(t, env, "-c", config("apps-kafka.yaml")); res.exitCode != 0 {
		t.Fatalf("exit %d\n%s", res.exitCode, res.logs())
	}

	want := map[string]string{} // key -> topic
	for _, a := range sim.DetectedApps() {
		want[tenantKey(sim, a.ID)] = appsTopic
	}
	for _, p := range sim.DeviceAppPairs() {
		want[tenantKey(sim, p.DeviceID+"/"+p.AppID)] = pairsTopic
	}
	consumer := consumerFromStart(t, cluster, appsTopic, pairsTopic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]bool{}
	for len(seen) < len(want) {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records before the deadline", len(seen), len(want))
		}
		fetches.EachError(func(topic string, partition int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, partition, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			key := string(r.Key)
			if want[key] != r.Topic {
				t.Fatalf("record %q on %s: want topic %q", key, r.Topic, want[key])
			}
			if seen[key] {
				t.Fatalf("record %q published twice", key)
			}
			seen[key] = true
		})
	}
}
