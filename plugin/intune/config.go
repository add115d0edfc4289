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

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// inputConfig is the parsed, validated configuration of the input.
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

// parseInputConfig checks every rule, then reads the fields group by group.
// The rules come first: a value a rule refuses gets the rule's words, the
// same as lint's.
func parseInputConfig(conf *service.ParsedConfig) (inputConfig, error) {
	var c inputConfig
	if err := checkAll(conf, inputRules()...); err != nil {
		return c, err
	}
	for _, parse := range []func(*service.ParsedConfig) error{
		c.parseIdentity, // tenant, client and credential
		c.parseEndpoints,
		c.parseQuery,
		c.parseRequests,
		c.parseChanges,
	} {
		if err := parse(conf); err != nil {
			return c, err
		}
	}
	return c, nil
}

// parseIdentity reads tenant_id, client_id and the credential, which decides
// whether the first two are needed.
func (c *inputConfig) parseIdentity(conf *service.ParsedConfig) error {
	var err error
	if c.tenantID, err = optionalString(conf, fieldTenantID); err != nil {
		return err
	}
	if c.clientID, err = optionalString(conf, fieldClientID); err != nil {
		return err
	}
	return c.parseCredential(conf)
}

// parseEndpoints reads the cloud and the hosts that may replace its own.
func (c *inputConfig) parseEndpoints(conf *service.ParsedConfig) error {
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

// parseQuery reads what is listed and how often.
func (c *inputConfig) parseQuery(conf *service.ParsedConfig) error {
	var err error
	if c.query.APIVersion, err = conf.FieldString(fieldAPIVersion); err != nil {
		return err
	}
	if c.query.Select, err = conf.FieldStringList(fieldSelect); err != nil {
		return err
	}
	if c.query.Filter, err = conf.FieldString(fieldFilter); err != nil {
		return err
	}
	if c.query.Top, err = conf.FieldInt(fieldPageSize); err != nil {
		return err
	}
	interval, err := conf.FieldString(fieldInterval)
	if err != nil || interval == "" {
		return err
	}
	// intervalRule has checked it parses.
	c.interval, err = time.ParseDuration(interval)
	return err
}

// parseRequests reads how requests are sent, retried and checkpointed.
func (c *inputConfig) parseRequests(conf *service.ParsedConfig) error {
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
	c.checkpointCache, err = conf.FieldString(fieldCheckpointCache)
	return err
}

// parseChanges reads the change-tracking fields.
func (c *inputConfig) parseChanges(conf *service.ParsedConfig) error {
	emit, err := conf.FieldString(fieldEmit)
	if err != nil {
		return err
	}
	c.emitChanges = emit == "changes"
	if c.stateCache, err = conf.FieldString(fieldStateCache); err != nil {
		return err
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
