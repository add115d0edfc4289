package intune

import (
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

// The fields of intune_detected_apps besides the Graph access group.
const (
	fieldStrategy = "strategy"
)

// The strategies that join apps and devices (see appsStrategy).
const (
	strategyAuto      = "auto"
	strategyPerApp    = "per_app"
	strategyPerDevice = "per_device"
)

// The rules of intune_detected_apps (see rule).
var (
	strategyRule = oneOfRule([]string{strategyAuto, strategyPerApp, strategyPerDevice, strategyExport}, fieldStrategy)
)

// appsInputRules lists every rule of the input in the order they are checked.
func appsInputRules() []*rule {
	return withSharedRules(strategyRule, intervalRule, maxConcurrencyRule, requestsPerSecondRule, emitRule)
}

func appsInputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Reads Intune's discovered apps (software inventory) from Microsoft Graph: one message per app, and one per (device, app) pair.").
		Description(`
Lists `+"`deviceManagement/detectedApps`"+` and joins every app to the devices it was found on, with
the read-only application permission `+"`DeviceManagementManagedDevices.Read.All`"+`. Graph offers the
join one app or one device at a time (`+"`$expand`"+` returns nothing), so a sync sends one request per
app or per device, many at once, within Intune's budget of 2,000 requests per 20 seconds per app
per tenant:

- `+"`per_app`"+`: each app's `+"`managedDevices`"+` (v1.0), one request per app (more for an app on over
  1,000 devices);
- `+"`per_device`"+`: each device's `+"`detectedApps`"+` (beta), one request per device;
- `+"`auto`"+` (the default): lists the apps and the devices first, then takes the strategy that needs
  fewer requests. A tenant with many apps and few devices goes per device, the reverse per app;
- `+"`export`"+` (opt-in): one export of Intune's `+"`AppInvRawData`"+` report instead of a request per app or
  device. The input creates the export job, polls it (after 1 second, then doubling up to every 30
  seconds) and downloads the ZIP that Intune writes to Azure storage without the Graph token: the
  link carries its own signature, and only `+"`https://`"+` links are followed (`+"`http://`"+` on loopback
  hosts only). A few requests whatever the tenant's size, but creating the job needs the application
  permission `+"`DeviceManagementManagedDevices.ReadWrite.All`"+`; every other strategy, the default
  included, needs only `+"`DeviceManagementManagedDevices.Read.All`"+`. The apps are still listed from
  `+"`detectedApps`"+`. The ZIP (at most 1 GiB) is held in memory while its pairs are emitted, and an
  interrupted export starts over.

Requests are paced at `+"`max_requests_per_second`"+`, at most `+"`max_concurrency`"+` at once. When
Graph answers 429 (or 503), every request waits for its `+"`Retry-After`"+`, not only the one refused,
since the budget is the app's; the pace and the concurrency then back off and grow back while Graph
answers. Progress is logged with the requests done and left and the time left.

Each app is emitted as Graph sent it; each pair as `+"`{\"deviceId\": ..., \"deviceName\": ..., \"appId\": ...}`"+`.
With `+"`interval`"+` empty the input performs one sync and then ends; a sync that did not complete
makes `+"`intune-benthos`"+` exit with status 1.

### Metadata

| field | value |
|---|---|
| `+"`intune_entity`"+` | `+"`detected_app`"+` or `+"`device_app`"+` |
| `+"`intune_app_id`"+` | the app's id |
| `+"`intune_device_id`"+` | the device's id (pairs only) |
| `+"`intune_tenant_id`"+` | the tenant the message came from: `+"`tenant_id`"+`, or one of `+"`tenants`"+` as listed |
| `+"`intune_sync_id`"+` | unique id of the sync that read it |
| `+"`intune_sync_started_at`"+` | start of that sync, RFC 3339 (UTC) |
| `+"`intune_operation`"+` | `+"`upsert`"+`, or `+"`delete`"+` for what left the tenant (with `+"`state_cache`"+`) |`).
		Fields(graphIdentityFields()...).
		Fields(
			service.NewStringField(fieldStrategy).
				Description("How apps are joined to devices: `auto`, `per_app`, `per_device` or `export` (see above). `auto` never chooses `export`, which needs `DeviceManagementManagedDevices.ReadWrite.All`; the others are read-only.").
				Default(strategyAuto).
				LintRule(strategyRule.mapping),
			service.NewStringField(fieldInterval).
				Description("Empty for one sync after which the input ends; a duration such as `24h` to sync at every interval.").
				Example("24h").
				Default("").
				LintRule(intervalRule.mapping),
			maxConcurrencyField(""),
			requestsPerSecondField(),
			service.NewStringField(fieldCheckpointCache).
				Description("The name of a cache resource in which the input stores, as the pairs of each app (or device) are acknowledged, the last app (or device) delivered with every one before it. A one-shot sync restarted after a crash or a stop lists the apps again and resumes the join after it instead of from the start; a completed sync deletes its checkpoint. A resumed sync emits no deletions. Empty disables checkpoints.").
				Example("intune_state").
				Default(""),
			service.NewStringField(fieldEmit).
				Description("`all` emits every app and pair on every sync; `changes` only those new or changed since the last complete sync (needs `state_cache`).").
				Default("all").
				LintRule(emitRule.mapping),
			service.NewStringField(fieldStateCache).
				Description("The name of a cache resource holding the last complete sync's apps and pairs (their keys and content hashes). With it, each complete sync also emits a deletion (`intune_operation: delete`) for every app and every pair that was in the previous complete sync and is gone now, so a table keyed by device and app keeps exactly the tenant's pairs. A sync that did not complete emits no deletion and leaves the state as it was.").
				Example("intune_apps_state").
				Default(""),
		).
		Fields(graphRequestFields()...).
		Fields(service.NewAutoRetryNacksToggleField()).
		LintRule(inputRule.mapping).
		Example("Software inventory into stdout", "Every app and every (device, app) pair, once.", `
input:
  intune_detected_apps:
    tenant_id: ${INTUNE_TENANT_ID}
    client_id: ${INTUNE_CLIENT_ID}
    client_secret: ${INTUNE_CLIENT_SECRET}
output:
  stdout:
    codec: lines
`)
}

// appsConfig is the parsed configuration of intune_detected_apps.
type appsConfig struct {
	graphAccess
	pacing
	strategy        string
	interval        time.Duration
	emitChanges     bool
	stateCache      string
	checkpointCache string
}

// parseAppsConfig checks every rule, then reads the fields.
func parseAppsConfig(conf *service.ParsedConfig) (appsConfig, error) {
	var c appsConfig
	if err := checkAll(conf, appsInputRules()...); err != nil {
		return c, err
	}
	if err := c.graphAccess.parse(conf); err != nil {
		return c, err
	}
	var err error
	if c.strategy, err = conf.FieldString(fieldStrategy); err != nil {
		return c, err
	}
	if c.interval, err = intervalField(conf); err != nil {
		return c, err
	}
	if err := c.pacing.parse(conf); err != nil {
		return c, err
	}
	emit, err := conf.FieldString(fieldEmit)
	if err != nil {
		return c, err
	}
	c.emitChanges = emit == "changes"
	if c.stateCache, err = conf.FieldString(fieldStateCache); err != nil {
		return c, err
	}
	c.checkpointCache, err = conf.FieldString(fieldCheckpointCache)
	return c, err
}
