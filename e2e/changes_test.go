package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

func removedIDs(sim *graphsim.Server, indices []int) []string {
	var out []string
	for _, i := range indices {
		out = append(out, sim.DeviceID(i))
	}
	sort.Strings(out)
	return out
}

func every(from, n, step int) []int {
	var out []int
	for i := 0; i < n; i++ {
		out = append(out, from+i*step)
	}
	return out
}

// The PostgreSQL config soft-deletes by default: rows of devices that left
// Intune stay, marked _deleted = true; INTUNE_DELETE_MODE=hard deletes them.
func TestPostgresConfigAppliesDeletions(t *testing.T) {
	const n = 5000
	dsn, db := freshDatabase(t)
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 51})
	env = append(env, "INTUNE_PG_DSN="+dsn)
	run := func(extra ...string) {
		t.Helper()
		if res := runBinary(t, append(env, extra...), "-c", config("postgres.yaml")); res.exitCode != 0 {
			t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
		}
	}
	run()
	removed := every(7, 20, 233)
	sim.Remove(removed...)
	run()
	rows, err := db.Query(`SELECT id FROM managed_devices WHERE _deleted ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var deleted []string
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		deleted = append(deleted, id)
	}
	rows.Close()
	var total int
	_ = db.QueryRow(`SELECT count(*) FROM managed_devices`).Scan(&total)
	if total != n || fmt.Sprint(deleted) != fmt.Sprint(removedIDs(sim, removed)) {
		t.Fatalf("%d rows, %d marked deleted %v; want %d rows and the 20 removed devices marked", total, len(deleted), deleted, n)
	}

	more := []int{1, 2, 3}
	sim.Remove(more...)
	run("INTUNE_DELETE_MODE=hard")
	_ = db.QueryRow(`SELECT count(*) FROM managed_devices`).Scan(&total)
	var stillMarked int
	_ = db.QueryRow(`SELECT count(*) FROM managed_devices WHERE _deleted`).Scan(&stillMarked)
	if total != n-3 || stillMarked != 20 {
		t.Errorf("after hard deletes: %d rows (%d marked); want %d rows, the 20 earlier ones still marked", total, stillMarked, n-3)
	}
}

func TestKafkaConfigSendsNullTombstonesForRemovedDevices(t *testing.T) {
	const n, topic = 3000, "intune.managed_devices"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 52})
	env = append(env, "INTUNE_KAFKA_BROKERS="+cluster.ListenAddrs()[0], "INTUNE_EMIT=changes")
	for run := 1; run <= 2; run++ {
		if run == 2 {
			sim.Remove(every(4, 20, 149)...)
		}
		if res := runBinaryTimeout(t, 30*time.Second, env, "-c", config("kafka.yaml")); res.exitCode != 0 {
			t.Fatalf("run %d: exit %d\n%s", run, res.exitCode, res.stderr+res.stdout)
		}
	}
	consumer := consumerFromStart(t, cluster, topic)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var records, nulls int
	var tombstoned []string
	for records < n+20 {
		fetches := consumer.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", records, n+20)
		}
		fetches.EachRecord(func(r *kgo.Record) {
			records++
			if r.Value == nil {
				nulls++
				tombstoned = append(tombstoned, strings.TrimPrefix(string(r.Key), sim.Config().TenantID+"/"))
			}
		})
	}
	sort.Strings(tombstoned)
	if nulls != 20 || fmt.Sprint(tombstoned) != fmt.Sprint(removedIDs(sim, every(4, 20, 149))) {
		t.Errorf("%d null-value records for %v; want 20, one per removed device", nulls, tombstoned)
	}
}

// scrape reads the binary's Prometheus endpoint into sums by metric name
// and label filter (e.g. `intune_graph_requests{status="429"`).
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		return nil
	}
	defer res.Body.Close()
	sums := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "intune_") {
			continue
		}
		space := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[space+1:], 64)
		if err != nil {
			continue
		}
		series := line[:space]
		name := series
		if i := strings.IndexByte(series, '{'); i >= 0 {
			name = series[:i]
			for _, label := range strings.Split(strings.Trim(series[i:], "{}"), ",") {
				if strings.HasPrefix(label, "status=") || strings.HasPrefix(label, "operation=") || strings.HasPrefix(label, "property=") {
					sums[name+"{"+label] += v
				}
			}
		}
		sums[name] += v
	}
	return sums
}

func TestMetricsAreServedAfterASync(t *testing.T) {
	const n, pageSize = 2500, 500
	_, env := simEnv(t, graphsim.Config{Devices: n, Seed: 53, PageSize: pageSize, Faults: []graphsim.Fault{
		{Page: 2, Attempt: 1, Kind: graphsim.Fault429, RetryAfter: "0.2"},
		{Page: 3, Attempt: 1, Kind: graphsim.Fault429},
		{Page: 3, Attempt: 2, Kind: graphsim.Fault429, RetryAfter: "0.1"},
		{Page: 5, Attempt: 1, Kind: graphsim.Fault503},
	}})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	started := time.Now().Unix()
	cmd, lines, stderr := startBinary(t, env, "-c", config("stdout.yaml"),
		"--set", "http.address="+addr, "--set", "shutdown_delay=20s")
	count := 0
	for range lines {
		if count++; count == n {
			break // stdout stays open while the process lingers
		}
	}
	if count != n {
		t.Fatalf("%d devices on stdout, want %d\n%s", count, n, stderr)
	}
	// The process lingers for shutdown_delay, serving /metrics.
	var m map[string]float64
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if m = scrape(t, "http://"+addr+"/metrics"); m["intune_last_success_timestamp"] > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	checks := map[string]func(float64) bool{
		`intune_graph_requests{status="200"`:        func(v float64) bool { return v == n/pageSize },
		`intune_graph_requests{status="429"`:        func(v float64) bool { return v == 3 },
		`intune_graph_requests{status="503"`:        func(v float64) bool { return v == 1 },
		"intune_graph_throttled":                    func(v float64) bool { return v == 3 },
		"intune_graph_throttle_wait_ms":             func(v float64) bool { return v >= 300 },
		"intune_graph_retries":                      func(v float64) bool { return v == 4 },
		"intune_token_renewals":                     func(v float64) bool { return v >= 1 },
		`intune_token_requests{status="200"`:        func(v float64) bool { return v >= 1 },
		"intune_pages":                              func(v float64) bool { return v == n/pageSize },
		`intune_devices_emitted{operation="upsert"`: func(v float64) bool { return v == n },
		"intune_sync_duration_count":                func(v float64) bool { return v == 1 },
		"intune_last_success_timestamp":             func(v float64) bool { return v >= float64(started) },
	}
	for series, ok := range checks {
		if v, found := m[series]; !found || !ok(v) {
			t.Errorf("%s = %v (found %v)", series, v, found)
		}
	}
	// The shipped Grafana dashboard only charts series the binary serves.
	dashboard, err := os.ReadFile(config("grafana-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(dashboard, &doc); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range doc.Panels {
		for _, target := range p.Targets {
			exprs = append(exprs, target.Expr)
		}
	}
	if len(exprs) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	for _, name := range regexp.MustCompile(`intune_[a-z_]+`).FindAllString(strings.Join(exprs, " "), -1) {
		if _, ok := m[name]; !ok {
			t.Errorf("config/grafana-dashboard.json charts %s, which /metrics does not serve", name)
		}
	}
	if t.Failed() {
		t.Logf("scraped: %v\n%s", m, stderr)
	}
}
