// Package intune registers the intune_managed_devices Benthos input, which
// reads every Microsoft Intune managed device from Microsoft Graph and emits
// each one as its own message.
package intune

import (
	"github.com/benthosdev/benthos/v4/public/service"
)

// The fields of intune_managed_devices besides the Graph access group
// (graph_access.go).
const (
	fieldAPIVersion      = "api_version"
	fieldSelect          = "select"
	fieldFilter          = "filter"
	fieldPageSize        = "page_size"
	fieldInterval        = "interval"
	fieldCheckpointCache = "checkpoint_cache"

	fieldEmit             = "emit"
	fieldStateCache       = "state_cache"
	fieldIgnoreProperties = "ignore_properties"
	fieldSyncMarkers      = "emit_sync_markers"
)

// defaultIgnoreProperties move on every check-in (or every Exchange sync, or
// as the disk fills) without anything about the device changing; hashing
// them would report most of the tenant as changed on every sync.
var defaultIgnoreProperties = []string{"lastSyncDateTime", "exchangeLastSuccessfulSyncDateTime", "freeStorageSpaceInBytes"}

// apiVersions are the Graph versions that list managed devices.
var apiVersions = []string{"v1.0", "beta"}

// The input's rules, each written once: its lint rule and its start-up
// check (see rule). parseInputConfig runs them in this order.
var (
	apiVersionRule = oneOfRule(apiVersions, fieldAPIVersion)
	// The properties go into $select as they are: a comma or a query
	// character would change the request.
	// Benthos runs a list field's rule on the list and on each item.
	selectRule = newRule(`root = if this.type() == "string" && (this.trim() == "" || this.re_match("[, &?#]")) { [ "select must list one property name per item, got %q".format(this) ] }`, fieldSelect)
	// Graph pages at most 999 or 1000 devices whatever $top asks; 10000
	// only catches a typo.
	pageSizeRule = newRule(`root = if this < 0 || this > 10000 { [ "page_size must be between 0 and 10000, got %v".format(this) ] }`, fieldPageSize)
	intervalRule = newRule(`root = if this != "" && this.parse_duration().catch(0) <= 0 { [ "interval must be empty or a positive duration such as 15m or 1h, got %v".format(this) ] }`, fieldInterval)
	emitRule     = oneOfRule([]string{"all", "changes"}, fieldEmit)

	// emitNeedsState is part of both inputs' rule: only a state cache
	// knows what changed.
	emitNeedsState = `if this.emit.or("all") == "changes" && this.state_cache.or("") == "" { "emit: changes needs state_cache, the cache that remembers the last complete sync" }`

	// inputRule checks what involves several fields, the same in both
	// inputs. A spec has one lint
	// rule (LintRule replaces the previous one), so it holds them all.
	inputRule = newRule(credentialsLet + `
root = [
  ` + credentialConflict + `,
  ` + emitNeedsState + `,
  ` + tenantsShard + `,
].filter(v -> v != null)`)
)

// inputRules lists every rule of the input in the order they are checked.
func inputRules() []*rule {
	return withSharedRules(append([]*rule{apiVersionRule, selectRule, pageSizeRule, intervalRule, emitRule, maxConcurrencyRule, requestsPerSecondRule}, detailsRules()...)...)
}

// withSharedRules is an input's rules: the multi-field rule and the Graph
// access group's first, then its own.
func withSharedRules(own ...*rule) []*rule {
	return append(append([]*rule{inputRule}, graphAccessRules()...), own...)
}

func inputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Reads every Microsoft Intune managed device from Microsoft Graph, one message per device.").
		Description(`
Lists `+"`deviceManagement/managedDevices`"+` with the OAuth2 client-credentials flow of an Entra ID
app registration that holds the application permission `+"`DeviceManagementManagedDevices.Read.All`"+`
(with admin consent). Pages are followed by `+"`@odata.nextLink`"+` exactly as Graph sends them, and the
next page is fetched while the pipeline works on the current one.

Each message body is the device object exactly as Graph sent it: the bytes are never decoded and
re-encoded, so 64-bit integers above 2^53 (`+"`totalStorageSpaceInBytes`"+`) and escaped strings arrive
unchanged. The one exception is what Graph's list leaves at a placeholder default
(`+"`physicalMemoryInBytes`"+` is 0, `+"`notes`"+` null, beta's `+"`hardwareInformation`"+` an object of defaults):
each such property carries its real value, fetched with `+"`details`"+`, or null, never the placeholder.

With `+"`interval`"+` empty the input performs one full sync and then ends, so that the outputs flush
and the process exits. The exit code is 0 only when every page was read: a sync that stopped on an
error (a wrong secret, a missing permission, a `+"`@odata.nextLink`"+` to another host) is logged with
Graph's error code and request ids and makes `+"`intune-benthos`"+` exit with status 1. A sync
that completed but whose destination refused some devices for their content (see the
`+"`intune_dead_letter`"+` output) makes it exit with status 3, and one in which some devices did not get the
fresh details they were due (their GET failed) with status 4. With `+"`tenants`"+`, the last line
names each tenant whose sync did not complete; the status is 5 when some tenants failed and the others
completed, 1 when all failed.
With `+"`interval`"+` set, a full sync starts at every interval and a failed sync is logged and
retried at the next one.

Requests that Graph documents as transient (429, 500, 502, 503, 504, network errors, truncated
bodies) are retried with the same page URL, after `+"`Retry-After`"+` when Graph sends it and with an
exponential backoff otherwise; a sync never starts over at page 1 because one page failed. A token
that Graph refuses is renewed once.

### Metadata

This input adds the following metadata fields to each message:

| field | value |
|---|---|
| `+"`intune_tenant_id`"+` | the tenant the message came from: `+"`tenant_id`"+`, or one of `+"`tenants`"+` as listed |
| `+"`intune_sync_id`"+` | unique id of the full sync that read the device |
| `+"`intune_sync_started_at`"+` | start of that sync, RFC 3339 (UTC) |
| `+"`intune_page`"+` | 1-based number of the Graph page the device came from |
| `+"`intune_api_version`"+` | `+"`v1.0`"+` or `+"`beta`"+` |
| `+"`intune_operation`"+` | `+"`upsert`"+`, `+"`delete`"+` (with `+"`state_cache`"+`), `+"`sync_started`"+` or `+"`sync_completed`"+` (with `+"`emit_sync_markers`"+`) |
| `+"`intune_device_id`"+` | the device's `+"`id`"+` (not set on sync markers) |
| `+"`intune_details`"+` | with `+"`details`"+`: `+"`fetched`"+` by this sync, `+"`kept`"+` from an earlier one, `+"`failed`"+` (older values or null), `+"`gone`"+` (the device was removed since the list) |
| `+"`intune_details_fetched_at`"+` | with `+"`details`"+`: when the details the device carries were fetched, RFC 3339 (UTC); not set when it has none |

You can access these metadata fields using [function interpolation](/docs/configuration/interpolation#bloblang-queries).`).
		Fields(graphIdentityFields()...).
		Fields(
			// Not a StringEnumField: Benthos v4.27's enum linter reads an
			// option as a path, and "v1.0" as the field "v1" then "0".
			service.NewStringField(fieldAPIVersion).
				Description("The Graph API version: `v1.0` or `beta`. `beta` returns more properties but may change without notice.").
				Default("v1.0").
				LintRule(apiVersionRule.mapping),
			service.NewStringListField(fieldSelect).
				Description("Properties to return (`$select`). Empty returns every property.").
				Example([]string{"id", "deviceName", "operatingSystem", "osVersion", "complianceState", "lastSyncDateTime"}).
				Default([]string{}).
				LintRule(selectRule.mapping),
			service.NewStringField(fieldFilter).
				Description("An OData `$filter`, passed to Graph unchanged. Intune supports few filters and may silently ignore the rest; see the README.").
				Example("operatingSystem eq 'Windows'").
				Default(""),
			service.NewIntField(fieldPageSize).
				Description("Devices per page (`$top`). 0 leaves it to Graph, which sends 1000.").
				Default(0).
				LintRule(pageSizeRule.mapping),
			service.NewStringField(fieldInterval).
				Description("Empty for one full sync after which the input ends; a duration such as `1h` to run a full sync at every interval.").
				Example("1h").
				Default("").
				LintRule(intervalRule.mapping),
			detailsField(),
		).
		Fields(graphRequestFields()...).
		Fields(
			maxConcurrencyField(" (detail batches; pages are read one at a time)"),
			requestsPerSecondField(),
		).
		Fields(
			service.NewStringField(fieldCheckpointCache).
				Description("The name of a [cache resource](/docs/components/caches/about) in which the input stores, after every message of a page has been acknowledged, where the sync stands (the next page's URL and the sync id). A one-shot sync that is restarted after a crash or a stop resumes after the last fully delivered page instead of at page 1; a completed sync deletes its checkpoint. Empty disables checkpoints.").
				Example("intune_checkpoints").
				Default(""),
			service.NewStringField(fieldEmit).
				Description("`all` emits every device on every sync; `changes` emits only the devices that are new or whose content changed since the last complete sync (needs `state_cache`).").
				Default("all").
				LintRule(emitRule.mapping),
			service.NewStringField(fieldStateCache).
				Description("The name of a cache resource holding the last complete sync's device ids and content hashes (about 25 bytes per device). With it, each complete sync also emits a deletion (`intune_operation: delete`, body `{\"id\": ..., \"@removed\": {\"reason\": \"deleted\"}}`) for every device that was in the previous complete sync and is gone now. A sync that did not read every page emits no deletion and leaves the state as it was.").
				Example("intune_state").
				Default(""),
			service.NewStringListField(fieldIgnoreProperties).
				Description("Top-level properties left out of the content hash of `emit: changes`: they move on every check-in without the device changing.").
				Default(defaultIgnoreProperties).
				Advanced(),
			service.NewBoolField(fieldSyncMarkers).
				Description("Adds a message with `intune_operation: sync_started` before a sync's devices and one with `intune_operation: sync_completed` (device, upsert and deletion counts, duration) after them, for consumers that rebuild full snapshots.").
				Default(false).
				Advanced(),
			service.NewAutoRetryNacksToggleField(),
		).
		LintRule(inputRule.mapping).
		Example("One sync into stdout", "Reads every device once and prints one JSON object per line, then exits.", `
input:
  intune_managed_devices:
    tenant_id: ${INTUNE_TENANT_ID}
    client_id: ${INTUNE_CLIENT_ID}
    client_secret: ${INTUNE_CLIENT_SECRET}
output:
  stdout:
    codec: lines
`).
		Example("Hourly sync of a few properties", "Every hour, reads the Windows devices' compliance state.", `
input:
  intune_managed_devices:
    tenant_id: ${INTUNE_TENANT_ID}
    client_id: ${INTUNE_CLIENT_ID}
    client_secret: ${INTUNE_CLIENT_SECRET}
    select: [ id, deviceName, complianceState, lastSyncDateTime ]
    filter: "operatingSystem eq 'Windows'"
    interval: 1h
`)
}
