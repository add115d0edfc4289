// Package intune registers the intune_managed_devices Benthos input, which
// reads every Microsoft Intune managed device from Microsoft Graph and emits
// each one as its own message.
package intune

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/cenkalti/backoff/v4"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

const (
	fieldTenantID     = "tenant_id"
	fieldClientID     = "client_id"
	fieldClientSecret = "client_secret"
	fieldCloud        = "cloud"
	fieldAPIVersion   = "api_version"
	fieldSelect       = "select"
	fieldFilter       = "filter"
	fieldPageSize     = "page_size"
	fieldInterval     = "interval"
	fieldLoginURL     = "login_url"
	fieldGraphURL     = "graph_url"

	fieldBackoff         = "backoff"
	fieldRequestTimeout  = "request_timeout"
	fieldMaxPageBytes    = "max_page_bytes"
	fieldTLS             = "tls"
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

// Defaults of the resilience fields. Microsoft asks clients to wait a few
// seconds before retrying a 5xx and to honour Retry-After; fifteen minutes
// per page outlasts the throttling windows Intune documents.
const (
	defaultInitialInterval = 2 * time.Second
	defaultMaxInterval     = time.Minute
	defaultMaxElapsedTime  = 15 * time.Minute
	// A page of 1000 devices is a few MB: a minute is generous even on a
	// slow link, and a stalled connection is retried rather than waited on.
	defaultRequestTimeout = "60s"
	// A page of 1000 beta devices is under 10 MB; anything near this is a
	// misbehaving server, and reading it whole would risk the process.
	defaultMaxPageBytes = 64 << 20
)

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
unchanged.

With `+"`interval`"+` empty the input performs one full sync and then ends, so that the outputs flush
and the process exits. The exit code is 0 only when every page was read: a sync that stopped on an
error (a wrong secret, a missing permission, a `+"`@odata.nextLink`"+` to another host) is logged with
Graph's error code and request ids and makes `+"`intune-benthos`"+` exit with status 1.
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
| `+"`intune_sync_id`"+` | unique id of the full sync that read the device |
| `+"`intune_sync_started_at`"+` | start of that sync, RFC 3339 (UTC) |
| `+"`intune_page`"+` | 1-based number of the Graph page the device came from |
| `+"`intune_api_version`"+` | `+"`v1.0`"+` or `+"`beta`"+` |

You can access these metadata fields using [function interpolation](/docs/configuration/interpolation#bloblang-queries).`).
		Fields(
			service.NewStringField(fieldTenantID).
				Description("The Entra ID tenant: its id (a GUID) or one of its domain names. Required, except with `managed_identity`.").
				Example("${INTUNE_TENANT_ID}").
				Optional(),
			service.NewStringField(fieldClientID).
				Description("The application (client) id of the app registration. Required, except with `managed_identity`, where it selects a user-assigned identity.").
				Example("${INTUNE_CLIENT_ID}").
				Optional(),
		).
		Fields(credentialFields()...).
		Fields(
			// Not a StringEnumField: its lint message ("value mars is not a
			// valid option for this field") does not say which field.
			service.NewStringField(fieldCloud).
				LintRule(oneOf(fieldCloud, graph.CloudNames())).
				Description("The Microsoft cloud of the tenant: `global` (including GCC), `usgov` (GCC High), `usgov_dod` (DoD) or `china` (21Vianet). It sets the login host, the Graph host and the token scope.").
				Default("global"),
			// Not a StringEnumField: Benthos v4.27's enum linter reads an
			// option as a path, and "v1.0" as the field "v1" then "0".
			service.NewStringField(fieldAPIVersion).
				Description("The Graph API version: `v1.0` or `beta`. `beta` returns more properties but may change without notice.").
				Default("v1.0").
				LintRule(oneOf(fieldAPIVersion, []string{"v1.0", "beta"})),
			service.NewStringListField(fieldSelect).
				Description("Properties to return (`$select`). Empty returns every property.").
				Example([]string{"id", "deviceName", "operatingSystem", "osVersion", "complianceState", "lastSyncDateTime"}).
				Default([]string{}),
			service.NewStringField(fieldFilter).
				Description("An OData `$filter`, passed to Graph unchanged. Intune supports few filters and may silently ignore the rest; see the README.").
				Example("operatingSystem eq 'Windows'").
				Default(""),
			service.NewIntField(fieldPageSize).
				Description("Devices per page (`$top`). 0 leaves it to Graph, which sends 1000.").
				Default(0).
				LintRule(`root = if this < 0 || this > 10000 { [ "page_size must be between 0 and 10000" ] }`),
			service.NewStringField(fieldInterval).
				Description("Empty for one full sync after which the input ends; a duration such as `1h` to run a full sync at every interval.").
				Example("1h").
				Default("").
				LintRule(`root = if this != "" && this.parse_duration().catch(0) <= 0 { [ "interval must be empty or a positive duration such as 15m or 1h" ] }`),
			service.NewStringField(fieldLoginURL).
				Description("Replaces the cloud's login host, e.g. for a proxy or a simulator. The token URL becomes `{login_url}/{tenant_id}/oauth2/v2.0/token`; the scope stays the cloud's Graph host. `http://` is accepted for loopback hosts only.").
				Example("http://127.0.0.1:8080").
				Default("").
				Advanced(),
			service.NewStringField(fieldGraphURL).
				Description("Replaces the cloud's Graph host, e.g. for a proxy or a simulator. Pages are read from `{graph_url}/{api_version}/deviceManagement/managedDevices`, and only nextLinks on this scheme and host are followed. `http://` is accepted for loopback hosts only.").
				Example("http://127.0.0.1:8080").
				Default("").
				Advanced(),
			service.NewBackOffField(fieldBackoff, true, &backoff.ExponentialBackOff{
				InitialInterval: defaultInitialInterval,
				MaxInterval:     defaultMaxInterval,
				MaxElapsedTime:  defaultMaxElapsedTime,
			}).
				Description("How failed requests are retried. 429, 500, 502, 503, 504, network errors, timeouts and truncated or malformed bodies are retried on the same page, after Graph's `Retry-After` when it sends one and otherwise after an exponential backoff with full jitter (a random wait up to `initial_interval` doubled per attempt, capped at `max_interval`). `max_elapsed_time` bounds how long one page is retried before the sync gives up (`0s` retries forever). Other errors fail at once.").
				LintRule(durationsNotNegative(fieldBackoff, "initial_interval", "max_interval", "max_elapsed_time")).
				Advanced(),
			service.NewDurationField(fieldRequestTimeout).
				Description("How long one HTTP request (token or page, body included) may take before it is abandoned and retried.").
				Default(defaultRequestTimeout).
				LintRule(`root = if this.parse_duration().catch(0) <= 0 { [ "request_timeout must be a positive duration such as 60s, got %v".format(this) ] }`).
				Advanced(),
			service.NewIntField(fieldMaxPageBytes).
				Description("The largest response body accepted, in bytes. A larger page is an error (retried, then fatal) instead of a risk to the process' memory.").
				Default(defaultMaxPageBytes).
				LintRule(`root = if this <= 0 { [ "max_page_bytes must be a positive number of bytes, got %v".format(this) ] }`).
				Advanced(),
			service.NewTLSToggledField(fieldTLS).
				Description("Custom TLS settings for the login and Graph hosts, e.g. the CA of a TLS-inspecting proxy. Certificates are always verified unless `skip_cert_verify` is set. `HTTPS_PROXY` and `NO_PROXY` are honoured."),
			service.NewStringField(fieldCheckpointCache).
				Description("The name of a [cache resource](/docs/components/caches/about) in which the input stores, after every message of a page has been acknowledged, where the sync stands (the next page's URL and the sync id). A one-shot sync that is restarted after a crash or a stop resumes after the last fully delivered page instead of at page 1; a completed sync deletes its checkpoint. Empty disables checkpoints.").
				Example("intune_checkpoints").
				Default(""),
			service.NewStringField(fieldEmit).
				Description("`all` emits every device on every sync; `changes` emits only the devices that are new or whose content changed since the last complete sync (needs `state_cache`).").
				Default("all").
				LintRule(oneOf(fieldEmit, []string{"all", "changes"})),
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
		LintRule(specLintRule).
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

// specLintRule checks what involves several fields. A spec has one lint
// rule: LintRule replaces the previous one.
const specLintRule = credentialKindsLint + `
root = [
  if this.emit.or("all") == "changes" && this.state_cache.or("") == "" { "emit: changes needs state_cache, the cache that remembers the last complete sync" },
  if $credentials.length() > 1 { "set one credential, not %s".format($credentials.join(" and ")) },
].filter(v -> v != null)`

// oneOf is a lint rule accepting only the given values, naming the field.
func oneOf(field string, values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf(`root = if ![%s].contains(this) { [ "%s must be one of %s, got %%v".format(this) ] }`,
		strings.Join(quoted, ", "), field, strings.Join(values, ", "))
}

// durationsNotNegative is a lint rule for an object field whose children
// are durations: each must parse and not be negative.
func durationsNotNegative(object string, fields ...string) string {
	var checks []string
	for _, f := range fields {
		checks = append(checks, fmt.Sprintf(
			`if this.%[1]s.or("0s").parse_duration().catch(-1) < 0 { "%[2]s.%[1]s must be a duration that is not negative, such as 2s, got %%v".format(this.%[1]s) }`,
			f, object))
	}
	return "root = [ " + strings.Join(checks, ", ") + " ].filter(v -> v != null)"
}

// inputConfig is the parsed, validated configuration.
type inputConfig struct {
	tenantID string
	clientID string
	cred     credentialConfig
	cloud    graph.Cloud
	loginURL string
	graphURL *url.URL
	query    graph.Query
	interval time.Duration

	retry           graph.RetryPolicy
	requestTimeout  time.Duration
	maxPageBytes    int64
	tls             *tls.Config // nil: the system's roots, default settings
	checkpointCache string

	emitChanges      bool
	stateCache       string
	ignoreProperties []string
	syncMarkers      bool
}

func inputConfigFromParsed(conf *service.ParsedConfig) (inputConfig, error) {
	var c inputConfig
	var err error
	// tenant_id and client_id are checked by parseCredential: a managed
	// identity needs neither, workload identity may take them from the
	// environment.
	if c.tenantID, err = optionalString(conf, fieldTenantID); err != nil {
		return c, err
	}
	if c.clientID, err = optionalString(conf, fieldClientID); err != nil {
		return c, err
	}
	if err := c.parseCredential(conf); err != nil {
		return c, err
	}
	cloudName, err := conf.FieldString(fieldCloud)
	if err != nil {
		return c, err
	}
	if c.cloud, err = graph.LookupCloud(cloudName); err != nil {
		return c, fmt.Errorf("%s: %w", fieldCloud, err)
	}
	if c.query.APIVersion, err = conf.FieldString(fieldAPIVersion); err != nil {
		return c, err
	}
	if c.query.APIVersion != "v1.0" && c.query.APIVersion != "beta" {
		return c, fmt.Errorf("%s: want v1.0 or beta, got %q", fieldAPIVersion, c.query.APIVersion)
	}
	if c.query.Select, err = conf.FieldStringList(fieldSelect); err != nil {
		return c, err
	}
	for _, p := range c.query.Select {
		if p == "" || strings.ContainsAny(p, ", &?#") {
			return c, fmt.Errorf("%s: %q is not a property name", fieldSelect, p)
		}
	}
	if c.query.Filter, err = conf.FieldString(fieldFilter); err != nil {
		return c, err
	}
	if c.query.Top, err = conf.FieldInt(fieldPageSize); err != nil {
		return c, err
	}
	if c.query.Top < 0 || c.query.Top > 10000 {
		return c, fmt.Errorf("%s: must be between 0 and 10000, got %d", fieldPageSize, c.query.Top)
	}
	interval, err := conf.FieldString(fieldInterval)
	if err != nil {
		return c, err
	}
	if interval != "" {
		if c.interval, err = time.ParseDuration(interval); err != nil || c.interval <= 0 {
			return c, fmt.Errorf("%s: want empty or a positive duration such as 1h, got %q", fieldInterval, interval)
		}
	}

	loginURL, err := conf.FieldString(fieldLoginURL)
	if err != nil {
		return c, err
	}
	if loginURL == "" {
		loginURL = c.cloud.LoginURL
	}
	if _, err := parseServiceURL(loginURL); err != nil {
		return c, fmt.Errorf("%s: %w", fieldLoginURL, err)
	}
	c.loginURL = loginURL

	graphURL, err := conf.FieldString(fieldGraphURL)
	if err != nil {
		return c, err
	}
	if graphURL == "" {
		graphURL = c.cloud.GraphURL
	}
	if c.graphURL, err = parseServiceURL(graphURL); err != nil {
		return c, fmt.Errorf("%s: %w", fieldGraphURL, err)
	}
	if err := c.parseResilience(conf); err != nil {
		return c, err
	}
	return c, nil
}

// parseResilience reads the retry, timeout, size, TLS and checkpoint fields.
func (c *inputConfig) parseResilience(conf *service.ParsedConfig) error {
	b, err := conf.FieldBackOff(fieldBackoff)
	if err != nil {
		return err
	}
	for name, d := range map[string]time.Duration{
		"initial_interval": b.InitialInterval, "max_interval": b.MaxInterval, "max_elapsed_time": b.MaxElapsedTime,
	} {
		if d < 0 {
			return fmt.Errorf("%s.%s: must not be negative, got %s", fieldBackoff, name, d)
		}
	}
	c.retry = graph.RetryPolicy{InitialInterval: b.InitialInterval, MaxInterval: b.MaxInterval, MaxElapsedTime: b.MaxElapsedTime}

	if c.requestTimeout, err = conf.FieldDuration(fieldRequestTimeout); err != nil {
		return err
	}
	if c.requestTimeout <= 0 {
		return fmt.Errorf("%s: must be a positive duration, got %s", fieldRequestTimeout, c.requestTimeout)
	}
	maxPageBytes, err := conf.FieldInt(fieldMaxPageBytes)
	if err != nil {
		return err
	}
	if maxPageBytes <= 0 {
		return fmt.Errorf("%s: must be a positive number of bytes, got %d", fieldMaxPageBytes, maxPageBytes)
	}
	c.maxPageBytes = int64(maxPageBytes)

	tlsConf, enabled, err := conf.FieldTLSToggled(fieldTLS)
	if err != nil {
		return err
	}
	if enabled {
		c.tls = tlsConf
	}
	c.checkpointCache, err = conf.FieldString(fieldCheckpointCache)
	if err != nil {
		return err
	}
	return c.parseChanges(conf)
}

// parseChanges reads the change-tracking fields.
func (c *inputConfig) parseChanges(conf *service.ParsedConfig) error {
	emit, err := conf.FieldString(fieldEmit)
	if err != nil {
		return err
	}
	switch emit {
	case "all":
	case "changes":
		c.emitChanges = true
	default:
		return fmt.Errorf("%s: want all or changes, got %q", fieldEmit, emit)
	}
	if c.stateCache, err = conf.FieldString(fieldStateCache); err != nil {
		return err
	}
	if c.emitChanges && c.stateCache == "" {
		return fmt.Errorf("%s: changes needs %s, the cache that remembers the last complete sync", fieldEmit, fieldStateCache)
	}
	if c.ignoreProperties, err = conf.FieldStringList(fieldIgnoreProperties); err != nil {
		return err
	}
	c.syncMarkers, err = conf.FieldBool(fieldSyncMarkers)
	return err
}

// optionalString is the value of an optional field, "" when it is absent.
func optionalString(conf *service.ParsedConfig, path ...string) (string, error) {
	if !conf.Contains(path...) {
		return "", nil
	}
	return conf.FieldString(path...)
}

// parseServiceURL accepts https:// anywhere and http:// only on loopback
// hosts: the client secret and bearer tokens must not cross a network in
// clear text.
func parseServiceURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("parsing %q: %w", raw, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q must be a scheme, a host and optionally a path, nothing else", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isThisMachine(u.Hostname()) {
			return nil, errors.New("http:// is only accepted for loopback hosts (localhost, 127.0.0.0/8, ::1, 0.0.0.0); use https://")
		}
	default:
		return nil, fmt.Errorf("%q: scheme must be https", raw)
	}
	return u, nil
}

// isThisMachine accepts the loopback names and the unspecified address,
// which a dial reaches on this machine too (servers often print
// "listening on 0.0.0.0:port").
func isThisMachine(host string) bool {
	if graph.IsLoopbackHost(host) {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}
