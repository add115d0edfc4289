package e2e

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// The change state lives in any Benthos cache: these runs keep it in Redis
// and in PostgreSQL (the sql cache), two syncs apart, in separate processes.
func TestStateSurvivesRestartsInRedisAndSQLCaches(t *testing.T) {
	redisAddr := "127.0.0.1:6379"
	conn, err := net.DialTimeout("tcp", redisAddr, time.Second)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is required in CI at %s: %v", redisAddr, err)
		}
		t.Skipf("no Redis at %s: %v", redisAddr, err)
	}
	conn.Close()
	pgDSN, db := freshDatabase(t)
	if _, err := db.Exec(`CREATE TABLE intune_state (key text PRIMARY KEY, value bytea)`); err != nil {
		t.Fatal(err)
	}
	prefix := fmt.Sprintf("intune-e2e-%d-", time.Now().UnixNano())
	caches := map[string]string{
		"redis": fmt.Sprintf("redis:\n      url: redis://%s\n      prefix: %s", redisAddr, prefix),
		"sql": fmt.Sprintf("sql:\n      driver: postgres\n      dsn: %q\n      table: intune_state\n      key_column: key\n      value_column: value\n"+
			"      set_suffix: ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", pgDSN),
	}
	for name, cache := range caches {
		t.Run(name, func(t *testing.T) {
			sim, env := simEnv(t, graphsim.Config{Devices: 2000, Seed: 61})
			conf := writeConfig(t, inputConfig{
				input:     "    emit: changes\n    state_cache: state",
				resources: "cache_resources:\n  - label: state\n    " + cache,
				output: `output:
  stdout:
    codec: lines
  processors:
    - mapping: 'root = "%s %s".format(@intune_operation, @intune_device_id)'`,
			})
			first := runBinary(t, env, "-c", conf)
			if first.exitCode != 0 || strings.Count(first.stdout, "upsert ") != 2000 {
				t.Fatalf("first sync: exit %d, %d upserts\n%s", first.exitCode, strings.Count(first.stdout, "upsert "), first.stderr)
			}
			sim.Remove(10, 20, 30)
			sim.Change(40)
			second := runBinary(t, env, "-c", conf)
			want := fmt.Sprintf("upsert %s\n", sim.DeviceID(40))
			for _, i := range []int{10, 20, 30} {
				if !strings.Contains(second.stdout, "delete "+sim.DeviceID(i)+"\n") {
					t.Errorf("no deletion of device %d", i)
				}
			}
			if second.exitCode != 0 || !strings.Contains(second.stdout, want) || strings.Count(second.stdout, "\n") != 4 {
				t.Errorf("second sync: exit %d, output:\n%s\nwant one upsert and three deletions\n%s", second.exitCode, second.stdout, second.stderr)
			}
		})
	}
}
