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
			Description("A file listing the tenants to read, one per line; blank lines and what follows `#` are ignored. It is read again before every sync, so a customer added to it is read from the next sync on, without a restart.").
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
		if _, err := cleanTenants(t.ids, fieldTenants+"."+fieldTenantsIDs); err != nil {
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

// list is the tenants of this round: the configured ids or the file's, in
// their order, without repeats, this shard's only.
func (t tenantsConfig) list() ([]string, error) {
	ids := t.ids
	where := fieldTenants + "." + fieldTenantsIDs
	if t.file != "" {
		raw, err := os.ReadFile(t.file)
		if err != nil {
			return nil, fmt.Errorf("%s.%s: %w", fieldTenants, fieldTenantsFile, err)
		}
		if ids, err = parseTenantsFile(raw, t.file); err != nil {
			return nil, err
		}
		where = t.file
	}
	all, err := cleanTenants(ids, where)
	if err != nil {
		return nil, err
	}
	mine := all[:0:0]
	for _, id := range all {
		if tenantShard(id, t.shardCount) == t.shardIndex {
			mine = append(mine, id)
		}
	}
	return mine, nil
}

// parseTenantsFile reads one tenant per line; '#' starts a comment.
func parseTenantsFile(raw []byte, name string) ([]string, error) {
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		switch len(fields) {
		case 0:
			continue
		case 1:
			ids = append(ids, fields[0])
		default:
			return nil, fmt.Errorf("%s line %d: one tenant per line, got %q", name, n, strings.TrimSpace(line))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s lists no tenant", name)
	}
	return ids, nil
}

// cleanTenants checks each id and drops repeats (compared without case, as
// Entra ID does), keeping the first spelling.
func cleanTenants(ids []string, where string) ([]string, error) {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if !tenantPattern.MatchString(id) {
			return nil, fmt.Errorf("%s: %q is not a tenant id (a GUID) or domain name", where, id)
		}
		key := strings.ToLower(id)
		if !seen[key] {
			seen[key] = true
			out = append(out, id)
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
