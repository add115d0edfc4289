// Command intune-benthos is a Benthos distribution with every component of
// Benthos v4.27.0 (but pulsar, whose dependencies cannot be fetched) and the
// intune_managed_devices input. Its CLI is Benthos' own: run, lint, test, list,
// create, echo and blobl all work as documented for Benthos.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/benthosdev/benthos/v4/public/service"

	_ "github.com/benthosdev/benthos/v4/public/components/amqp09"
	_ "github.com/benthosdev/benthos/v4/public/components/amqp1"
	_ "github.com/benthosdev/benthos/v4/public/components/avro"
	_ "github.com/benthosdev/benthos/v4/public/components/aws"
	_ "github.com/benthosdev/benthos/v4/public/components/azure"
	_ "github.com/benthosdev/benthos/v4/public/components/beanstalkd"
	_ "github.com/benthosdev/benthos/v4/public/components/cassandra"
	_ "github.com/benthosdev/benthos/v4/public/components/changelog"
	_ "github.com/benthosdev/benthos/v4/public/components/cockroachdb"
	_ "github.com/benthosdev/benthos/v4/public/components/confluent"
	_ "github.com/benthosdev/benthos/v4/public/components/couchbase"
	_ "github.com/benthosdev/benthos/v4/public/components/crypto"
	_ "github.com/benthosdev/benthos/v4/public/components/dgraph"
	_ "github.com/benthosdev/benthos/v4/public/components/discord"
	_ "github.com/benthosdev/benthos/v4/public/components/elasticsearch"
	_ "github.com/benthosdev/benthos/v4/public/components/gcp"
	_ "github.com/benthosdev/benthos/v4/public/components/hdfs"
	_ "github.com/benthosdev/benthos/v4/public/components/influxdb"
	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/jaeger"
	_ "github.com/benthosdev/benthos/v4/public/components/javascript"
	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/maxmind"
	_ "github.com/benthosdev/benthos/v4/public/components/memcached"
	_ "github.com/benthosdev/benthos/v4/public/components/mongodb"
	_ "github.com/benthosdev/benthos/v4/public/components/mqtt"
	_ "github.com/benthosdev/benthos/v4/public/components/msgpack"
	_ "github.com/benthosdev/benthos/v4/public/components/nanomsg"
	_ "github.com/benthosdev/benthos/v4/public/components/nats"
	_ "github.com/benthosdev/benthos/v4/public/components/nsq"
	_ "github.com/benthosdev/benthos/v4/public/components/opensearch"
	_ "github.com/benthosdev/benthos/v4/public/components/otlp"
	_ "github.com/benthosdev/benthos/v4/public/components/prometheus"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	_ "github.com/benthosdev/benthos/v4/public/components/pusher"
	_ "github.com/benthosdev/benthos/v4/public/components/redis"
	_ "github.com/benthosdev/benthos/v4/public/components/sentry"
	_ "github.com/benthosdev/benthos/v4/public/components/sftp"
	_ "github.com/benthosdev/benthos/v4/public/components/snowflake"
	_ "github.com/benthosdev/benthos/v4/public/components/splunk"
	_ "github.com/benthosdev/benthos/v4/public/components/sql"
	_ "github.com/benthosdev/benthos/v4/public/components/statsd"
	_ "github.com/benthosdev/benthos/v4/public/components/twitter"
	_ "github.com/benthosdev/benthos/v4/public/components/wasm"

	"github.com/intune-benthos/intune-benthos/plugin/intune"
)

func main() {
	service.RunCLI(context.Background())
	// RunCLI returns after a stream ended and its outputs flushed. Benthos
	// would exit 0 even when our input ended because a one-shot sync failed;
	// a sync that did not read every page must not look like success.
	tenants, failures := intune.TenantsOutcome()
	if err := intune.SyncFailure(); err != nil && tenants == 0 {
		fmt.Fprintf(os.Stderr, "intune-benthos: sync did not complete: %v\n", err)
		os.Exit(1)
	}
	// The last line says where the devices went, and with tenants which
	// of them failed; a scheduler reads the status.
	syncs, messages := intune.Delivered()
	if syncs == 0 && tenants == 0 {
		return
	}
	dead := intune.DeadLettered()
	what := "devices"
	switch apps := intune.DeliveredApps(); {
	case apps == messages && apps > 0:
		what = "apps and pairs"
	case apps > 0:
		what = fmt.Sprintf("devices, apps and pairs (%d apps and pairs)", apps)
	}
	missing := ""
	lacking := intune.DetailsMissing()
	if lacking > 0 {
		missing = fmt.Sprintf(", %d devices without the fresh details they were due", lacking)
	}
	done := fmt.Sprintf("%d %s complete", syncs, map[bool]string{true: "sync", false: "syncs"}[syncs == 1])
	if tenants > 0 {
		done = fmt.Sprintf("%d of %d tenants synced", tenants-len(failures), tenants)
	}
	fmt.Fprintf(os.Stderr, "intune-benthos: %s: %d %s reached their destination, %d its dead letter%s%s\n",
		done, messages-dead, what, dead, missing, failedTenants(failures))
	switch {
	case len(failures) > 0 && len(failures) == tenants:
		os.Exit(1)
	case len(failures) > 0:
		// The others' rows are in place: a partial run, not a failed one.
		os.Exit(5)
	case dead > 0:
		os.Exit(3)
	case lacking > 0:
		// Every device was delivered, some with details older than due (or
		// none): not a failed sync, but not one to take for complete.
		os.Exit(4)
	}
}

// maxNamedFailures bounds the tenants the last line names: an MSP's
// scheduler shows it, the log holds every one.
const maxNamedFailures = 10

// failedTenants names the tenants whose sync did not complete, and why.
func failedTenants(failures []intune.TenantFailure) string {
	if len(failures) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; %d failed:", len(failures))
	for i, f := range failures {
		if i == maxNamedFailures {
			fmt.Fprintf(&b, " and %d more (see the log)", len(failures)-i)
			break
		}
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s: %v", f.Tenant, f.Err)
	}
	return b.String()
}
