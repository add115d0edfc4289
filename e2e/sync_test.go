package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// result is what one run of the binary left behind.
type result struct {
	stdout, stderr string
	exitCode       int
}

// logs is everything the run printed: Benthos logs to stdout unless the
// output is stdout, then to stderr.
func (r result) logs() string { return r.stdout + r.stderr }

// runBinary runs intune-benthos with args and extra environment variables.
func runBinary(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runBinaryWithStdin(t, env, "", args...)
}

// runBinaryWithStdin is runBinary with stdin fed from a string.
func runBinaryWithStdin(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	return runBinaryFull(t, 3*time.Minute, env, stdin, args...)
}

// runBinaryTimeout is runBinary that kills the process after timeout.
func runBinaryTimeout(t *testing.T, timeout time.Duration, env []string, args ...string) result {
	t.Helper()
	return runBinaryFull(t, timeout, env, "", args...)
}

// runBinaryIn is runBinary in the working directory dir.
func runBinaryIn(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	return runBinaryDir(t, dir, 3*time.Minute, env, "", args...)
}

// runBinaryFull runs the binary in a working directory of its own, empty,
// as a fresh clone would be for what the configs write.
func runBinaryFull(t *testing.T, timeout time.Duration, env []string, stdin string, args ...string) result {
	t.Helper()
	return runBinaryDir(t, t.TempDir(), timeout, env, stdin, args...)
}

func runBinaryDir(t *testing.T, dir string, timeout time.Duration, env []string, stdin string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	code := 0
	if errors.As(err, &exitErr) {
		code = exitErr.ExitCode()
	} else if err != nil {
		t.Fatalf("running %v: %v", args, err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), exitCode: code}
}

// simEnv serves a simulated tenant and returns the environment that points
// the shipped configs at it.
func simEnv(t *testing.T, cfg graphsim.Config) (*graphsim.Server, []string) {
	t.Helper()
	sim := graphsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c := sim.Config()
	return sim, []string{
		"INTUNE_TENANT_ID=" + c.TenantID,
		"INTUNE_CLIENT_ID=" + c.ClientID,
		"INTUNE_CLIENT_SECRET=" + c.ClientSecret,
		"INTUNE_LOGIN_URL=" + srv.URL,
		"INTUNE_GRAPH_URL=" + srv.URL,
		// Where the shipped configs keep the last complete sync's state.
		"INTUNE_STATE_DIR=" + t.TempDir(),
		// The shipped configs fetch details (INTUNE_DETAILS is true there),
		// one GET per device at Intune's pace: the tests of something
		// else leave them off (what they check is the same either way);
		// details_test.go turns them on.
		"INTUNE_DETAILS=false",
	}
}

// envLogin is the input's tenant, client, secret and endpoints from the
// environment simEnv returns, as the shipped configs take them.
const envLogin = `    tenant_id: ${INTUNE_TENANT_ID}
    client_id: ${INTUNE_CLIENT_ID}
    client_secret: ${INTUNE_CLIENT_SECRET}
    login_url: ${INTUNE_LOGIN_URL}
    graph_url: ${INTUNE_GRAPH_URL}`

// simLogin is the input's tenant, client and secret: sim's own, written
// into the config, with login_url and graph_url set to url unless it is
// empty.
func simLogin(sim *graphsim.Server, url string) string {
	c := sim.Config()
	login := fmt.Sprintf("    tenant_id: %s\n    client_id: %s\n    client_secret: %s", c.TenantID, c.ClientID, c.ClientSecret)
	if url != "" {
		login += fmt.Sprintf("\n    login_url: %s\n    graph_url: %s", url, url)
	}
	return login
}

// inputConfig is a config that reads intune_managed_devices, for
// writeConfig. login and input are lines at the input's field indentation
// (four spaces); resources and output are top-level YAML.
type inputConfig struct {
	// login is the tenant, the client and its credential, and where to
	// sign in and read: envLogin when empty, or simLogin, or lines of the
	// test's own.
	login string
	// input is more of the input's fields: api_version, emit, state_cache,
	// checkpoint_cache, backoff, tls...
	input string
	// resources follow the input: cache_resources, for one.
	resources string
	// output is the output, with its processors if any: stdout, one device
	// per line, when empty.
	output string
}

// writeConfig writes c to a file of its own and returns its path.
func writeConfig(t *testing.T, c inputConfig) string {
	t.Helper()
	if c.login == "" {
		c.login = envLogin
	}
	if c.output == "" {
		c.output = "output:\n  stdout:\n    codec: lines"
	}
	parts := []string{"input:\n  intune_managed_devices:", c.login}
	for _, part := range []string{c.input, c.resources, c.output} {
		if part != "" {
			parts = append(parts, strings.TrimSuffix(part, "\n"))
		}
	}
	path := filepath.Join(t.TempDir(), "intune.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(parts, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func config(name string) string { return filepath.Join(repoRoot, "config", name) }

// withInput writes a copy of a shipped config whose input is replaced, so
// that its pipeline and output can be fed test data, and returns its path.
func withInput(t *testing.T, path string, input map[string]any) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	if err := yaml.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	conf["input"] = input
	out, err := yaml.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(copyPath, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return copyPath
}

// stdinInput reads devices from stdin, one per line, with the metadata
// intune_managed_devices gives them, so that a shipped pipeline and output
// can be fed devices no simulator serves. A line with "@removed" is a
// deletion.
//
// Stdin is read whole and split into one batch of a message a line, as the
// input hands a page on: the pipeline runs on a thread per core, and lines
// sent as batches of their own may reach the output in either order.
func stdinInput() map[string]any {
	return map[string]any{
		"stdin": map[string]any{"codec": "all-bytes"},
		"processors": []any{
			// The last line's newline would make an empty message.
			map[string]any{"mapping": `root = content().string().trim()`},
			map[string]any{"unarchive": map[string]any{"format": "lines"}},
			map[string]any{"mapping": `meta intune_sync_id = "stdin-sync"
meta intune_sync_started_at = "2026-11-30T12:00:00Z"
meta intune_device_id = this.id
meta intune_operation = if this.exists("@removed") { "delete" } else { "upsert" }
meta intune_api_version = "v1.0"
meta intune_page = 1
root = content()`}},
	}
}

// dumpTable reads every row of managed_devices through the binary's own
// sql_select input, as JSON objects keyed by id.
func dumpTable(t *testing.T, dsn string) map[string]map[string]any {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "dump.yaml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`
input:
  sql_select:
    driver: sqlite
    dsn: %q
    table: managed_devices
    columns: [ "*" ]
output:
  stdout:
    codec: lines
logger:
  level: WARN
`, dsn)), 0o600); err != nil {
		t.Fatal(err)
	}
	res := runBinary(t, nil, "-c", conf)
	if res.exitCode != 0 {
		t.Fatalf("dumping the table: exit %d\n%s", res.exitCode, res.stderr)
	}
	rows := map[string]map[string]any{}
	sc := bufio.NewScanner(strings.NewReader(res.stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var row map[string]any
		if err := dec.Decode(&row); err != nil {
			t.Fatalf("row %q: %v", sc.Text(), err)
		}
		id, _ := row["id"].(string)
		if _, dup := rows[id]; dup {
			t.Fatalf("two rows for id %s", id)
		}
		rows[id] = row
	}
	return rows
}

// decodeDevice decodes what graphsim served, keeping numbers exact.
func decodeDevice(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var d map[string]any
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

// jsonText is how the flattening writes arrays and objects: compact JSON.
func sameJSON(t *testing.T, text any, want any) bool {
	t.Helper()
	s, ok := text.(string)
	if !ok {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var got any
	if err := dec.Decode(&got); err != nil {
		return false
	}
	a, _ := json.Marshal(got)
	b, _ := json.Marshal(want)
	return bytes.Equal(a, b)
}

func TestSQLiteConfigWritesEveryDeviceAndUpsertsOnTheSecondRun(t *testing.T) {
	const n = 2345
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 11})
	dsn := "file:" + filepath.Join(t.TempDir(), "intune.db") + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"
	env = append(env, "INTUNE_SQLITE_DSN="+dsn)

	var syncIDs []string
	changed := []int{0, 7, 1000, 2344}
	before := map[int]string{}
	for run := 1; run <= 2; run++ {
		if run == 2 {
			// Devices that changed in Intune between the syncs: their rows
			// must show the new values (checked below against graphsim).
			for _, i := range changed {
				before[i] = string(sim.Device(i))
			}
			sim.Change(changed...)
			for _, i := range changed {
				if string(sim.Device(i)) == before[i] {
					t.Fatalf("graphsim did not change device %d", i)
				}
			}
		}
		res := runBinary(t, env, "-c", config("sqlite.yaml"))
		if res.exitCode != 0 {
			t.Fatalf("run %d: exit %d\n%s%s", run, res.exitCode, res.stdout, res.stderr)
		}
		rows := dumpTable(t, dsn)
		if len(rows) != n {
			t.Fatalf("run %d: %d rows, want %d", run, len(rows), n)
		}
		seen := map[any]bool{}
		for i := 0; i < n; i++ {
			want := decodeDevice(t, sim.EmittedDevice(i, false, false))
			row, ok := rows[want["id"].(string)]
			if !ok {
				t.Fatalf("run %d: no row for device %d (%s)", run, i, want["id"])
			}
			checkRow(t, i, row, want)
			seen[row["_sync_id"]] = true
		}
		if len(seen) != 1 {
			t.Fatalf("run %d: rows carry %d sync ids, want every row from this run's sync", run, len(seen))
		}
		for id := range seen {
			syncIDs = append(syncIDs, fmt.Sprint(id))
		}
	}
	if syncIDs[0] == syncIDs[1] {
		t.Error("the second run did not update the rows (same _sync_id)")
	}
}

// checkRow compares a row with the device it came from, column by column.
func checkRow(t *testing.T, i int, row, device map[string]any) {
	t.Helper()
	checks := map[string]string{
		"deviceName": "device_name", "operatingSystem": "operating_system", "userPrincipalName": "user_principal_name",
		"azureADDeviceId": "azure_ad_device_id", "wiFiMacAddress": "wi_fi_mac_address", "lastSyncDateTime": "last_sync_date_time",
		"totalStorageSpaceInBytes": "total_storage_space_in_bytes", "freeStorageSpaceInBytes": "free_storage_space_in_bytes",
		"complianceState": "compliance_state", "serialNumber": "serial_number",
	}
	for prop, col := range checks {
		if fmt.Sprint(row[col]) != fmt.Sprint(device[prop]) {
			t.Fatalf("device %d: column %s = %v, want %s = %v", i, col, row[col], prop, device[prop])
		}
	}
	for prop, col := range map[string]string{"isEncrypted": "is_encrypted", "azureADRegistered": "azure_ad_registered"} {
		want := map[any]string{true: "1", false: "0", nil: "<nil>"}[device[prop]]
		if fmt.Sprint(row[col]) != want {
			t.Fatalf("device %d: column %s = %v, want %s", i, col, row[col], want)
		}
	}
	for prop, col := range map[string]string{"deviceActionResults": "device_action_results", "configurationManagerClientEnabledFeatures": "configuration_manager_client_enabled_features", "deviceHealthAttestationState": "device_health_attestation_state"} {
		if device[prop] == nil {
			if row[col] != nil {
				t.Fatalf("device %d: column %s = %v, want NULL", i, col, row[col])
			}
			continue
		}
		if !sameJSON(t, row[col], device[prop]) {
			t.Fatalf("device %d: column %s = %v, want the JSON of %v", i, col, row[col], device[prop])
		}
	}
}

func TestStdoutConfigPrintsEveryDeviceByteForByteAndLeaksNoSecretAtTrace(t *testing.T) {
	const n = 1500
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 5, PageSize: 400})
	res := runBinary(t, env, "-c", config("stdout.yaml"), "--log.level", "trace")
	if res.exitCode != 0 {
		t.Fatalf("exit %d\n%s", res.exitCode, res.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(res.stdout, "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines on stdout, want %d", len(lines), n)
	}
	for i, line := range lines {
		if line != string(sim.EmittedDevice(i, false, false)) {
			t.Fatalf("line %d differs from the device Graph sent:\n got %s\nwant %s", i, line, sim.EmittedDevice(i, false, false))
		}
	}
	if !strings.Contains(res.stderr, "level=trace") && !strings.Contains(res.stderr, "level=debug") {
		t.Fatalf("no debug or trace lines were logged, so the leak check proves nothing:\n%s", res.stderr)
	}
	secrets := append([]string{sim.Config().ClientSecret}, sim.IssuedTokens()...)
	if len(secrets) < 2 {
		t.Fatal("graphsim issued no token")
	}
	for _, s := range secrets {
		if strings.Contains(res.stderr, s) || strings.Contains(res.stdout, s) {
			t.Errorf("a secret or an access token (%.6s...) reached the output", s)
		}
	}
}

func TestWrongSecretExitsNonZeroWithEntrasError(t *testing.T) {
	_, env := simEnv(t, graphsim.Config{Devices: 10})
	const wrong = "wrong-secret-value-98765"
	env = append(env, "INTUNE_CLIENT_SECRET="+wrong)
	res := runBinary(t, env, "-c", config("stdout.yaml"), "--log.level", "trace")
	if res.exitCode == 0 {
		t.Fatalf("exit 0 after a failed sync\n%s", res.stderr)
	}
	for _, want := range []string{"AADSTS7000215", "Invalid client secret provided", "intune-benthos: sync did not complete"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("%q missing from stderr:\n%s", want, res.stderr)
		}
	}
	if strings.Contains(res.stderr+res.stdout, wrong) {
		t.Error("the secret reached the output")
	}
}

func TestMissingPermissionExitsNonZeroNamingIt(t *testing.T) {
	_, env := simEnv(t, graphsim.Config{Devices: 10, Forbidden: true})
	res := runBinary(t, env, "-c", config("stdout.yaml"))
	if res.exitCode == 0 {
		t.Fatalf("exit 0 after a 403\n%s", res.stderr)
	}
	if !strings.Contains(res.stderr, "DeviceManagementManagedDevices.Read.All") || !strings.Contains(res.stderr, "HTTP 403") {
		t.Errorf("stderr does not name the missing permission:\n%s", res.stderr)
	}
}

func TestCLIListsTheInputAndCreatesAStarterConfigThatLints(t *testing.T) {
	res := runBinary(t, nil, "list", "inputs")
	if res.exitCode != 0 || !strings.Contains(res.stdout, "intune_managed_devices") {
		t.Fatalf("list inputs: exit %d\n%s", res.exitCode, res.stdout)
	}
	res = runBinary(t, nil, "create", "intune_managed_devices//")
	if res.exitCode != 0 || !strings.Contains(res.stdout, "client_secret: ${INTUNE_CLIENT_SECRET}") {
		t.Fatalf("create: exit %d\n%s", res.exitCode, res.stdout)
	}
	conf := filepath.Join(t.TempDir(), "starter.yaml")
	if err := os.WriteFile(conf, []byte(res.stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	lint := runBinary(t, []string{"INTUNE_TENANT_ID=t", "INTUNE_CLIENT_ID=c", "INTUNE_CLIENT_SECRET=s"}, "lint", conf)
	if lint.exitCode != 0 {
		t.Fatalf("the starter config does not lint: %s%s", lint.stdout, lint.stderr)
	}
}
