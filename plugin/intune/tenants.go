package intune

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/fnv"
	"os"
	"regexp"
	"strings"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// The tenants group: many customer tenants read with one app registration,
// as a managed service provider does. Microsoft's model for it is a
// multi-tenant app that each customer consents to once; the app then gets a
// token from each tenant with the same credential ("Convert an app to be
// multitenant", learn.microsoft.com/entra/identity-platform/howto-convert-app-to-be-multi-tenant).
const (
	fieldTenants              = "tenants"
	fieldTenantsIDs           = "ids"
	fieldTenantsFile          = "file"
	fieldTenantsMaxConcurrent = "max_concurrent"
	fieldTenantsShardIndex    = "shard_index"
	fieldTenantsShardCount    = "shard_count"
)

// maxConcurrentTenants bounds how many tenants sync at once. Graph allows
// an app 130,000 requests per 10 s across all tenants (Microsoft Graph
// throttling limits, "Global limit"): 128 tenants at Intune's 100 requests
// a second each stay under it by construction.
const maxConcurrentTenants = 128

var (
	tenantsMaxConcurrentRule = newRule(fmt.Sprintf(`root = if this < 1 || this > %d { [ "tenants.max_concurrent must be between 1 and %d, got %%v".format(this) ] }`, maxConcurrentTenants, maxConcurrentTenants), fieldTenants, fieldTenantsMaxConcurrent)
	tenantsShardCountRule    = newRule(`root = if this < 1 { [ "tenants.shard_count must be at least 1, got %v".format(this) ] }`, fieldTenants, fieldTenantsShardCount)

	// tenantsShard is part of both inputs' rule. The other checks of the
	// group are in parse: Benthos lints a list field's default as a Go
	// []string, whose length bloblang cannot take.
	tenantsShard = `if this.tenants.shard_count.or(1) >= 1 && (this.tenants.shard_index.or(0) < 0 || this.tenants.shard_index.or(0) >= this.tenants.shard_count.or(1)) { "tenants.shard_index must be at least 0 and below tenants.shard_count (%v), got %v".format(this.tenants.shard_count.or(1), this.tenants.shard_index.or(0)) }`
)

func tenantsRules() []*rule { return []*rule{tenantsMaxConcurrentRule, tenantsShardCountRule} }

func tenantsField() *service.ConfigField {
	return service.NewObjectField(fieldTenants,
		service.NewStringListField(fieldTenantsIDs).
			Description("The tenants to read, each an id (a GUID) or a domain name.").
			Example([]string{"00000000-0000-0000-0000-000000000001", "contoso.onmicrosoft.com"}).
			Default([]string{}),
		service.NewStringField(fieldTenantsFile).
			Description("A file listing the tenants to read, one per line; blank lines and what follows `#` are ignored. A tenant may be followed by a certificate of its own, used instead of the app's credential for it: `certificate=<PEM file>`, `client_id=<app id>` when the certificate is another app registration's (with its key, or `private_key=<PEM file>`) and `password_env=<variable>` for an encrypted key. It is read again before every sync, so a customer added to it is read from the next sync on, without a restart.").
			Example("/etc/intune-benthos/tenants.txt").
			Default(""),
		service.NewIntField(fieldTenantsMaxConcurrent).
			Description(fmt.Sprintf("How many tenants are read at once (1 to %d). Each has its own share of Graph's budget, since Intune's limits are per app per tenant.", maxConcurrentTenants)).
			Default(8).
			LintRule(tenantsMaxConcurrentRule.mapping),
		service.NewIntField(fieldTenantsShardIndex).
			Description("With `shard_count` above 1, this process reads only the tenants whose hash modulo `shard_count` is `shard_index`: replica i of N reads its share, and every tenant is read by exactly one replica.").
			Default(0),
		service.NewIntField(fieldTenantsShardCount).
			Description("How many processes share the tenants (see `shard_index`).").
			Default(1).
			LintRule(tenantsShardCountRule.mapping),
	).Description("Many tenants read with the one app registration above (a multi-tenant app each customer consented to), instead of `tenant_id`. Each tenant gets its own sync id, checkpoint, state and throttle; one that fails (consent revoked, no Intune licence) stops no other, and the last line names it. Every message carries `intune_tenant_id`.").
		Advanced()
}

// tenantsConfig is the parsed group; zero when tenants are not used.
type tenantsConfig struct {
	ids           []string
	file          string
	maxConcurrent int
	shardIndex    int
	shardCount    int
}

// enabled tells whether the input reads a list of tenants rather than
// tenant_id.
func (t tenantsConfig) enabled() bool { return len(t.ids) > 0 || t.file != "" }

func (t *tenantsConfig) parse(conf *service.ParsedConfig) error {
	if !conf.Contains(fieldTenants) {
		t.maxConcurrent, t.shardCount = 1, 1
		return nil
	}
	var err error
	if t.ids, err = conf.FieldStringList(fieldTenants, fieldTenantsIDs); err != nil {
		return err
	}
	if t.file, err = conf.FieldString(fieldTenants, fieldTenantsFile); err != nil {
		return err
	}
	t.file = strings.TrimSpace(t.file)
	if t.maxConcurrent, err = conf.FieldInt(fieldTenants, fieldTenantsMaxConcurrent); err != nil {
		return err
	}
	if t.shardIndex, err = conf.FieldInt(fieldTenants, fieldTenantsShardIndex); err != nil {
		return err
	}
	if t.shardCount, err = conf.FieldInt(fieldTenants, fieldTenantsShardCount); err != nil {
		return err
	}
	if len(t.ids) > 0 && t.file != "" {
		return fmt.Errorf("set %s.%s or %s.%s, not both", fieldTenants, fieldTenantsIDs, fieldTenants, fieldTenantsFile)
	}
	if len(t.ids) > 0 {
		// Checked at start: a typo in the config is not a runtime error.
		if _, err := t.list(); err != nil {
			return err
		}
	}
	if t.file != "" {
		// The file must be there at start; it is read again at every sync.
		if _, err := t.list(); err != nil {
			return err
		}
	}
	return nil
}

// tenantPattern is what a tenant id may be: a GUID or a domain name. It
// goes into the token URL's path, so nothing else gets through.
var tenantPattern = regexp.MustCompile(`^(?i:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+)$`)

// tenantEntry is one tenant of a round: its id, and, from the tenants
// file, a certificate of its own instead of the app's credential.
type tenantEntry struct {
	id          string
	clientID    string // the tenant's own app registration, instead of client_id
	certificate string // a PEM file: the certificate, and its key unless privateKey names one
	privateKey  string // a PEM file holding the key
	passwordEnv string // the environment variable holding the key's password
}

// key tells entries apart for tenantInputs: the same tenant with another
// certificate is another input.
func (e tenantEntry) key() string {
	return strings.ToLower(e.id) + "\x00" + e.clientID + "\x00" + e.certificate + "\x00" + e.privateKey + "\x00" + e.passwordEnv
}

// list is the tenants of this round: the configured ids or the file's, in
// their order, without repeats, this shard's only.
func (t tenantsConfig) list() ([]tenantEntry, error) {
	var entries []tenantEntry
	for _, id := range t.ids {
		entries = append(entries, tenantEntry{id: id})
	}
	where := fieldTenants + "." + fieldTenantsIDs
	if t.file != "" {
		raw, err := os.ReadFile(t.file)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", fieldTenants, fieldTenantsFile, err)
		}
		if entries, err = parseTenantsFile(raw, t.file); err != nil {
			return nil, err
		}
		where = t.file
	}
	all, err := cleanTenants(entries, where)
	if err != nil {
		return nil, err
	}
	mine := all[:0:0]
	for _, e := range all {
		if tenantShard(e.id, t.shardCount) == t.shardIndex {
			mine = append(mine, e)
		}
	}
	return mine, nil
}

// parseTenantsFile reads one tenant per line, optionally followed by a
// certificate of its own: certificate=<PEM file> [private_key=<PEM file>]
// [password_env=<variable>]. '#' starts a comment.
func parseTenantsFile(raw []byte, name string) ([]tenantEntry, error) {
	var entries []tenantEntry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		e := tenantEntry{id: fields[0]}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			if !ok || v == "" {
				return nil, fmt.Errorf("%s line %d: %q is not key=value (client_id=, certificate=, private_key=, password_env=)", name, n, f)
			}
			switch k {
			case "client_id":
				e.clientID = v
			case "certificate":
				e.certificate = v
			case "private_key":
				e.privateKey = v
			case "password_env":
				e.passwordEnv = v
			default:
				return nil, fmt.Errorf("%s line %d: unknown %q (client_id=, certificate=, private_key=, password_env=)", name, n, k)
			}
		}
		if e.certificate == "" && (e.privateKey != "" || e.passwordEnv != "" || e.clientID != "") {
			return nil, fmt.Errorf("%s line %d: client_id, private_key and password_env go with certificate=", name, n)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(entries) == 0 {
		return nil, fmt.Errorf("%s lists no tenant", name)
	}
	return entries, nil
}

// cleanTenants checks each id and drops repeats (compared without case, as
// Entra ID does), keeping the first.
func cleanTenants(entries []tenantEntry, where string) ([]tenantEntry, error) {
	seen := make(map[string]bool, len(entries))
	out := make([]tenantEntry, 0, len(entries))
	for _, e := range entries {
		e.id = strings.TrimSpace(e.id)
		if !tenantPattern.MatchString(e.id) {
			return nil, fmt.Errorf("%s: %q is not a tenant id (a GUID) or domain name", where, e.id)
		}
		key := strings.ToLower(e.id)
		if !seen[key] {
			seen[key] = true
			out = append(out, e)
		}
	}
	return out, nil
}

// tenantShard is the shard a tenant belongs to among count: FNV-1a of its
// lower-cased id, so that every process, whatever its order of tenants,
// agrees on it.
func tenantShard(id string, count int) int {
	if count <= 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(strings.ToLower(id)))
	return int(h.Sum32() % uint32(count))
}

// tenantCertificate loads the certificate the tenants file gives a tenant,
// as client_certificate loads the app's.
func tenantCertificate(e tenantEntry) (credentialConfig, error) {
	cred := credentialConfig{kind: credentialCertificate}
	certPEM, _, err := pemOrFile("certificate", e.certificate)
	if err != nil {
		return cred, err
	}
	keyPEM := certPEM
	if e.privateKey != "" {
		if keyPEM, _, err = pemOrFile("private_key", e.privateKey); err != nil {
			return cred, err
		}
	}
	password := ""
	if e.passwordEnv != "" {
		var ok bool
		if password, ok = os.LookupEnv(e.passwordEnv); !ok {
			return cred, fmt.Errorf("password_env: %s is not set", e.passwordEnv)
		}
	}
	if strings.Contains(string(keyPEM), "PRIVATE KEY") {
		cred.keyTexts = append(cred.keyTexts, string(keyPEM))
	}
	cred.keyTexts = append(cred.keyTexts, password)
	if cred.certificate.Certificates, cred.certificate.Key, err = graph.LoadCertificateAndKey(certPEM, keyPEM, password); err != nil {
		return cred, err
	}
	return cred, nil
}
