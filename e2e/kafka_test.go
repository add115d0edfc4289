package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// TestKafkaConfigPublishesOneRecordPerDeviceKeyedByID runs config/kafka.yaml
// against an in-process Kafka-protocol broker (kfake) and reads the topic
// back with a franz-go consumer, as a SIEM or CMDB consumer would.
func TestKafkaConfigPublishesOneRecordPerDeviceKeyedByID(t *testing.T) {
	const n, topic = 2345, "intune.managed_devices"
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 19})
	env = append(env, "INTUNE_KAFKA_BROKERS="+cluster.ListenAddrs()[0])

	res := runBinary(t, env, "-c", config("kafka.yaml"))
	if res.exitCode != 0 {
		t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
	}

	consumer := consumerFromStart(t, cluster, topic)
	want := map[string]string{}
	for i := 0; i < n; i++ {
		want[sim.DeviceID(i)] = string(sim.EmittedDevice(i, false, false))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := map[string]bool{}
	var syncID string
	for len(seen) < n {
		fetches := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d records before the deadline", len(seen), n)
		}
		fetches.EachError(func(topic string, partition int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, partition, err) })
		fetches.EachRecord(func(r *kgo.Record) {
			key := strings.TrimPrefix(string(r.Key), sim.Config().TenantID+"/")
			if key == string(r.Key) {
				t.Fatalf("record key %q does not start with the tenant", r.Key)
			}
			body, ok := want[key]
			if !ok {
				t.Fatalf("record key %q is not a device id", key)
			}
			if seen[key] {
				t.Fatalf("device %s published twice", key)
			}
			seen[key] = true
			if string(r.Value) != body {
				t.Fatalf("record %s: value is not the device as Graph sent it:\n got %s\nwant %s", key, r.Value, body)
			}
			headers := map[string]string{}
			for _, h := range r.Headers {
				headers[h.Key] = string(h.Value)
			}
			for _, h := range []string{"intune_sync_id", "intune_sync_started_at", "intune_page", "intune_api_version"} {
				if headers[h] == "" {
					t.Fatalf("record %s lacks header %s (headers %v)", key, h, headers)
				}
			}
			if syncID == "" {
				syncID = headers["intune_sync_id"]
			} else if headers["intune_sync_id"] != syncID {
				t.Fatalf("records from two syncs in one run")
			}
		})
	}
}

// tenantKey is the Kafka key of a record of sim's tenant: the tenant, then
// the device's (or app's, or pair's) own key.
func tenantKey(sim *graphsim.Server, key string) string { return sim.Config().TenantID + "/" + key }
