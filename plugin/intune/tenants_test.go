package intune

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTenantsFileListsEachTenantOnceWithoutComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.txt")
	body := "# customers\n\n00000000-0000-0000-0000-000000000001\ncontoso.onmicrosoft.com   # Contoso\n00000000-0000-0000-0000-000000000001\nCONTOSO.onmicrosoft.com\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := tenantsConfig{file: path, shardCount: 1, maxConcurrent: 1}.list()
	if err != nil {
		t.Fatal(err)
	}
	if want := "00000000-0000-0000-0000-000000000001 contoso.onmicrosoft.com"; strings.Join(entryIDs(got), " ") != want {
		t.Errorf("tenants %q, want %q", got, want)
	}

	// Re-read at every round: an added customer is read from the next one.
	if err := os.WriteFile(path, []byte(body+"fabrikam.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _ = (tenantsConfig{file: path, shardCount: 1}).list(); len(got) != 3 {
		t.Errorf("after adding a line: %q, want 3 tenants", got)
	}
}

func TestTenantsFileRefusesWhatIsNotATenant(t *testing.T) {
	for body, want := range map[string]string{
		"":                                "lists no tenant",
		"# only a comment\n":              "lists no tenant",
		"a b\n":                           `line 1: "b" is not key=value`,
		"../../evil\n":                    `"../../evil" is not a tenant id`,
		"contoso.com\nhttp://x.y/z\n":     `"http://x.y/z" is not a tenant id`,
		"00000000-0000-0000-0000-00000\n": "is not a tenant id",
	} {
		path := filepath.Join(t.TempDir(), "tenants.txt")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := tenantsConfig{file: path, shardCount: 1}.list()
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
			t.Errorf("file %q: error %v, want one naming the file and saying %q", body, err, want)
		}
	}
	if _, err := (tenantsConfig{file: "/no/such/tenants.txt", shardCount: 1}).list(); err == nil || !strings.Contains(err.Error(), "tenants.file") {
		t.Errorf("missing file: %v, want an error naming tenants.file", err)
	}
}

// Replicas 0..N-1 of N each read a share: together every tenant exactly
// once, whatever N, so going from 3 replicas to 4 skips none.
func TestShardsTakeEveryTenantExactlyOnce(t *testing.T) {
	ids := make([]string, 500)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-0000-0000-%012d", i)
	}
	for _, n := range []int{1, 2, 3, 4, 7} {
		seen := map[string]int{}
		smallest, largest := len(ids), 0
		for shard := 0; shard < n; shard++ {
			mine, err := tenantsConfig{ids: ids, shardIndex: shard, shardCount: n}.list()
			if err != nil {
				t.Fatal(err)
			}
			smallest, largest = min(smallest, len(mine)), max(largest, len(mine))
			for _, e := range mine {
				seen[e.id]++
			}
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Fatalf("%d shards: tenant %s read %d times, want once", n, id, seen[id])
			}
		}
		// A fair hash: no replica gets far more than its share.
		if n > 1 && float64(largest) > 1.5*float64(len(ids))/float64(n) {
			t.Errorf("%d shards: sizes from %d to %d of %d tenants", n, smallest, largest, len(ids))
		}
	}
	// The case of an id does not move it to another shard.
	if tenantShard("Contoso.onmicrosoft.com", 7) != tenantShard("contoso.onmicrosoft.com", 7) {
		t.Error("the shard depends on the id's case")
	}
}

func entryIDs(entries []tenantEntry) []string {
	ids := make([]string, len(entries))
	for i, e := range entries {
		ids[i] = e.id
	}
	return ids
}

func TestTenantsFileGivesATenantItsOwnCertificate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tenants.txt")
	body := "contoso.com client_id=22222222-2222-2222-2222-222222222222 certificate=/etc/c.pem private_key=/etc/c.key password_env=C_PASS # own app\nfabrikam.com\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := tenantsConfig{file: path, shardCount: 1}.list()
	if err != nil {
		t.Fatal(err)
	}
	want := []tenantEntry{{id: "contoso.com", clientID: "22222222-2222-2222-2222-222222222222", certificate: "/etc/c.pem", privateKey: "/etc/c.key", passwordEnv: "C_PASS"}, {id: "fabrikam.com"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("entries %+v, want %+v", got, want)
	}
	for line, wantErr := range map[string]string{
		"contoso.com cert=/x.pem\n":        `unknown "cert"`,
		"contoso.com certificate\n":        "is not key=value",
		"contoso.com private_key=/x.key\n": "go with certificate=",
	} {
		if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := (tenantsConfig{file: path, shardCount: 1}).list(); err == nil || !strings.Contains(err.Error(), wantErr) || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v, want an error at line 1 saying %q", line, err, wantErr)
		}
	}
}

// The exit status' count of devices without fresh details adds up every
// tenant's last delivered sync, and a tenant's next sync replaces its own.
func TestDetailsMissingAddsUpTheTenants(t *testing.T) {
	resetSyncFailure()
	defer resetSyncFailure()
	recordDetailsMissing("t1", 3)
	recordDetailsMissing("t2", 4)
	if got := DetailsMissing(); got != 7 {
		t.Errorf("%d devices without details, want 7", got)
	}
	recordDetailsMissing("t1", 0)
	if got := DetailsMissing(); got != 4 {
		t.Errorf("after t1's next sync: %d, want 4", got)
	}
}
