package intune

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/cenkalti/backoff/v4"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// The Graph access group: the fields every input reading Graph shares, who
// it is (tenant, app, credential, cloud) and how its requests go (hosts,
// retries, timeouts, TLS), with their rules, their parsing and the client
// they build, as Benthos' kafka/sasl.go is for Kafka's inputs.
const (
	fieldTenantID       = "tenant_id"
	fieldClientID       = "client_id"
	fieldCloud          = "cloud"
	fieldLoginURL       = "login_url"
	fieldGraphURL       = "graph_url"
	fieldBackoff        = "backoff"
	fieldRequestTimeout = "request_timeout"
	fieldMaxPageBytes   = "max_page_bytes"
	fieldTLS            = "tls"
)

// The group's rules (see rule).
var (
	cloudRule          = oneOfRule(graph.CloudNames(), fieldCloud)
	backoffRule        = durationsNotNegativeRule(fieldBackoff, "initial_interval", "max_interval", "max_elapsed_time")
	requestTimeoutRule = newRule(`root = if this.parse_duration().catch(0) <= 0 { [ "request_timeout must be a positive duration such as 60s, got %v".format(this) ] }`, fieldRequestTimeout)
	maxPageBytesRule   = newRule(`root = if this <= 0 { [ "max_page_bytes must be a positive number of bytes, got %v".format(this) ] }`, fieldMaxPageBytes)
)

// graphAccessRules are the group's field rules, in the order checked. The
// one-credential rule involves several fields: each input puts
// credentialsLet and credentialConflict into its spec's rule.
func graphAccessRules() []*rule {
	return append(append(credentialRules(), tenantsRules()...), cloudRule, backoffRule, requestTimeoutRule, maxPageBytesRule)
}

// defaultRequestTimeout is graph.DefaultRequestTimeout as a config writes
// it ("60s", not Go's "1m0s").
var defaultRequestTimeout = fmt.Sprintf("%ds", int(graph.DefaultRequestTimeout/time.Second))

// graphIdentityFields are who the input is: they come first in a spec.
func graphIdentityFields() []*service.ConfigField {
	fields := []*service.ConfigField{
		service.NewStringField(fieldTenantID).
			Description("The Entra ID tenant: its id (a GUID) or one of its domain names. Required, except with `managed_identity` or `tenants`.").
			Example("${INTUNE_TENANT_ID}").
			Optional(),
		service.NewStringField(fieldClientID).
			Description("The application (client) id of the app registration. Required, except with `managed_identity`, where it selects a user-assigned identity.").
			Example("${INTUNE_CLIENT_ID}").
			Optional(),
	}
	fields = append(fields, credentialFields()...)
	return append(fields,
		// Not a StringEnumField: its lint message ("value mars is not a
		// valid option for this field") does not say which field.
		service.NewStringField(fieldCloud).
			LintRule(cloudRule.mapping).
			Description("The Microsoft cloud of the tenant: `global` (including GCC), `usgov` (GCC High), `usgov_dod` (DoD) or `china` (21Vianet). It sets the login host, the Graph host and the token scope.").
			Default("global"),
		tenantsField(),
	)
}

// graphRequestFields are how the input's requests go: advanced fields,
// after the input's own.
func graphRequestFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringField(fieldLoginURL).
			Description("Replaces the cloud's login host, e.g. for a proxy or a simulator. The token URL becomes `{login_url}/{tenant_id}/oauth2/v2.0/token`; the scope stays the cloud's Graph host. `http://` is accepted for loopback hosts only.").
			Example("http://127.0.0.1:8080").
			Default("").
			Advanced(),
		service.NewStringField(fieldGraphURL).
			Description("Replaces the cloud's Graph host, e.g. for a proxy or a simulator. Requests go to `{graph_url}/{version}/deviceManagement/...`, and only nextLinks on this scheme and host are followed. `http://` is accepted for loopback hosts only.").
			Example("http://127.0.0.1:8080").
			Default("").
			Advanced(),
		service.NewBackOffField(fieldBackoff, true, &backoff.ExponentialBackOff{
			InitialInterval: graph.DefaultRetryPolicy().InitialInterval,
			MaxInterval:     graph.DefaultRetryPolicy().MaxInterval,
			MaxElapsedTime:  graph.DefaultRetryPolicy().MaxElapsedTime,
		}).
			Description("How failed requests are retried. 429, 500, 502, 503, 504, network errors, timeouts and truncated or malformed bodies are retried on the same page, after Graph's `Retry-After` when it sends one and otherwise after an exponential backoff with full jitter (a random wait up to `initial_interval` doubled per attempt, capped at `max_interval`). `max_elapsed_time` bounds how long one page is retried before the sync gives up (`0s` retries forever). Other errors fail at once.").
			LintRule(backoffRule.mapping).
			Advanced(),
		service.NewDurationField(fieldRequestTimeout).
			Description("How long one HTTP request (token or page, body included) may take before it is abandoned and retried.").
			Default(defaultRequestTimeout).
			LintRule(requestTimeoutRule.mapping).
			Advanced(),
		service.NewIntField(fieldMaxPageBytes).
			Description("The largest response body accepted, in bytes. A larger page is an error (retried, then fatal) instead of a risk to the process' memory.").
			Default(graph.DefaultMaxPageBytes).
			LintRule(maxPageBytesRule.mapping).
			Advanced(),
		service.NewTLSToggledField(fieldTLS).
			Description("Custom TLS settings for the login and Graph hosts, e.g. the CA of a TLS-inspecting proxy. Certificates are always verified unless `skip_cert_verify` is set. `HTTPS_PROXY` and `NO_PROXY` are honoured."),
	}
}

// graphAccess is the parsed group.
type graphAccess struct {
	tenantID string
	tenants  tenantsConfig // many tenants instead of tenantID
	clientID string
	cred     credentialConfig
	cloud    graph.Cloud
	loginURL string
	graphURL *url.URL

	retry          graph.RetryPolicy
	requestTimeout time.Duration
	maxPageBytes   int64
	tls            *tls.Config // nil: the system's roots, default settings
}

// parse reads the group, its rules already checked.
func (c *graphAccess) parse(conf *service.ParsedConfig) error {
	if err := c.parseIdentity(conf); err != nil {
		return err
	}
	if err := c.parseEndpoints(conf); err != nil {
		return err
	}
	return c.parseRequests(conf)
}

// parseIdentity reads tenant_id, client_id and the credential, which decides
// whether the first two are needed.
func (c *graphAccess) parseIdentity(conf *service.ParsedConfig) error {
	var err error
	if c.tenantID, err = optionalString(conf, fieldTenantID); err != nil {
		return err
	}
	if c.clientID, err = optionalString(conf, fieldClientID); err != nil {
		return err
	}
	if err := c.tenants.parse(conf); err != nil {
		return err
	}
	if c.tenants.enabled() && strings.TrimSpace(c.tenantID) != "" {
		return fmt.Errorf("set %s or %s, not both", fieldTenantID, fieldTenants)
	}
	if err := c.parseCredential(conf); err != nil {
		return err
	}
	if c.tenants.enabled() && c.cred.kind == credentialManagedIdentity {
		return fmt.Errorf("%s needs an app registration's credential: a managed identity lives in one tenant", fieldTenants)
	}
	return nil
}

// forTenant is the group reading tenant: the same app and hosts, the token
// from tenant's endpoint, with the app's credential or the certificate the
// tenants file gives the tenant.
func (c graphAccess) forTenant(tenant tenantEntry) (graphAccess, error) {
	c.tenantID = tenant.id
	if tenant.certificate == "" {
		return c, nil
	}
	cred, err := tenantCertificate(tenant)
	if err != nil {
		return c, fmt.Errorf("the certificate of tenant %s: %w", tenant.id, err)
	}
	c.cred = cred
	if tenant.clientID != "" {
		c.clientID = tenant.clientID
	}
	return c, nil
}

// parseEndpoints reads the cloud and the hosts that may replace its own.
func (c *graphAccess) parseEndpoints(conf *service.ParsedConfig) error {
	cloudName, err := conf.FieldString(fieldCloud)
	if err != nil {
		return err
	}
	if c.cloud, err = graph.LookupCloud(cloudName); err != nil {
		return fmt.Errorf("%s: %w", fieldCloud, err)
	}
	loginURL, err := serviceURLField(conf, fieldLoginURL, c.cloud.LoginURL)
	if err != nil {
		return err
	}
	c.loginURL = loginURL.String()
	c.graphURL, err = serviceURLField(conf, fieldGraphURL, c.cloud.GraphURL)
	return err
}

// parseRequests reads how requests are sent and retried.
func (c *graphAccess) parseRequests(conf *service.ParsedConfig) error {
	b, err := conf.FieldBackOff(fieldBackoff)
	if err != nil {
		return err
	}
	c.retry = graph.RetryPolicy{InitialInterval: b.InitialInterval, MaxInterval: b.MaxInterval, MaxElapsedTime: b.MaxElapsedTime}
	if c.requestTimeout, err = conf.FieldDuration(fieldRequestTimeout); err != nil {
		return err
	}
	maxPageBytes, err := conf.FieldInt(fieldMaxPageBytes)
	if err != nil {
		return err
	}
	c.maxPageBytes = int64(maxPageBytes)
	tlsConf, enabled, err := conf.FieldTLSToggled(fieldTLS)
	if err != nil {
		return err
	}
	if enabled {
		c.tls = tlsConf
	}
	return nil
}

// newClient builds the Graph client of the group: an HTTP client whose
// responses metrics counts, and the credential's token provider.
func (c graphAccess) newClient(metrics *inputMetrics, onRetry func(graph.RetryEvent)) (*graph.Client, error) {
	httpClient := graph.NewHTTPClient(c.requestTimeout, c.tls)
	httpClient.Transport = countingTransport{next: httpClient.Transport, metrics: metrics}
	tokens, err := c.tokenProvider(httpClient, func(next http.RoundTripper) http.RoundTripper {
		return countingTransport{next: next, metrics: metrics, tokensOnly: true}
	})
	if err != nil {
		return nil, err
	}
	return &graph.Client{
		HTTP:         httpClient,
		Tokens:       tokens,
		Base:         c.graphURL,
		UserAgent:    userAgent,
		MaxPageBytes: c.maxPageBytes,
		Retry:        c.retry,
		OnRetry:      onRetry,
	}, nil
}

// keyScope names the tenant in cache keys. A managed identity needs no
// tenant_id; its client id (empty for a system-assigned one) stands in, so
// that identities sharing a cache keep their states apart.
func (c graphAccess) keyScope() string {
	if c.tenantID == "" && c.cred.kind == credentialManagedIdentity {
		return "managed-identity-" + c.clientID
	}
	return c.tenantID
}

// tokenProvider builds the provider of the configured credential. Token
// requests go through httpClient, except the metadata service's: it is
// link-local and refuses proxied requests, so it gets a client of its own
// without a proxy, whose transport instrumentTokens wraps.
func (c graphAccess) tokenProvider(httpClient *http.Client, instrumentTokens func(http.RoundTripper) http.RoundTripper) (graph.TokenProvider, error) {
	tokenURL := graph.TokenURL(c.loginURL, c.tenantID)
	switch c.cred.kind {
	case credentialSecret:
		return graph.NewClientSecretTokens(graph.ClientSecretConfig{
			ClientID:     c.clientID,
			ClientSecret: c.cred.clientSecret,
			TokenURL:     tokenURL,
			Scope:        c.cloud.Scope(),
			HTTPClient:   httpClient,
		}), nil
	case credentialCertificate:
		cc := c.cred.certificate
		cc.ClientID, cc.TokenURL, cc.Scope, cc.HTTPClient = c.clientID, tokenURL, c.cloud.Scope(), httpClient
		t, err := graph.NewCertificateTokens(cc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldClientCertificate, err)
		}
		return t, nil
	case credentialFederated:
		t, err := graph.NewFederatedTokens(graph.FederatedConfig{
			ClientID:   c.clientID,
			TokenURL:   tokenURL,
			Scope:      c.cloud.Scope(),
			HTTPClient: httpClient,
			TokenFile:  c.cred.federatedTokenFile,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldFederatedTokenFile, err)
		}
		return t, nil
	case credentialManagedIdentity:
		imds := graph.WithoutProxy(graph.NewHTTPClient(c.requestTimeout, nil))
		imds.Transport = instrumentTokens(imds.Transport)
		// IMDS speaks Entra ID v1: the resource is the Graph host itself.
		t, err := graph.NewManagedIdentityTokens(graph.ManagedIdentityConfig{
			Endpoint:   c.cred.managedIdentityEndpoint,
			Resource:   c.cloud.GraphURL,
			ClientID:   c.clientID,
			HTTPClient: imds,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fieldManagedIdentity, err)
		}
		return t, nil
	}
	return nil, fmt.Errorf("no credential kind %q", c.cred.kind)
}

// optionalString is the value of an optional field, "" when it is absent.
func optionalString(conf *service.ParsedConfig, path ...string) (string, error) {
	if !conf.Contains(path...) {
		return "", nil
	}
	return conf.FieldString(path...)
}

// serviceURLField reads a field replacing one of the cloud's hosts; empty
// keeps the cloud's.
func serviceURLField(conf *service.ParsedConfig, field, cloudDefault string) (*url.URL, error) {
	raw, err := conf.FieldString(field)
	if err != nil {
		return nil, err
	}
	if raw == "" {
		raw = cloudDefault
	}
	u, err := parseServiceURL(raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	return u, nil
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
