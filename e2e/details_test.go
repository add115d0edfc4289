package e2e

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// detailColumns are the columns of the properties details fetch by default
// in each version (the secrets are left out: see TestSecretsStayNullUnless
// Named), with the property each holds.
var detailColumns = map[string]map[string]string{
	"v1.0": {
		"physical_memory_in_bytes": "physicalMemoryInBytes", "ethernet_mac_address": "ethernetMacAddress",
		"notes": "notes", "udid": "udid", "iccid": "iccid", "enrollment_profile_name": "enrollmentProfileName",
	},
	"beta": {
		"physical_memory_in_bytes": "physicalMemoryInBytes", "ethernet_mac_address": "ethernetMacAddress",
		"notes": "notes", "udid": "udid", "iccid": "iccid", "enrollment_profile_name": "enrollmentProfileName",
		"hardware_information": "hardwareInformation", "role_scope_tag_ids": "roleScopeTagIds",
		"windows_active_malware_count": "windowsActiveMalwareCount", "bootstrap_token_escrowed": "bootstrapTokenEscrowed",
	},
}

// detailsEnv turns the shipped configs' details on, for a version.
func detailsEnv(env []string, version string) []string {
	return append(env, "INTUNE_DETAILS=true", "INTUNE_API_VERSION="+version)
}

// checkDetailColumns compares, for every device, each detail column as the
// database typed it with graphsim's real value (JSON values compared as
// JSON, numbers digit for digit), and checks the fetch time and that the
// secrets are NULL.
func checkDetailColumns(t *testing.T, tb shippedTable, sim *graphsim.Server, version string, n int) {
	t.Helper()
	cols := detailColumns[version]
	names := make([]string, 0, len(cols))
	for c := range cols {
		names = append(names, c)
	}
	json := jsonText(tb.dest)
	selects := make([]string, len(names))
	for k, c := range names {
		selects[k] = json(c)
	}
	q := "SELECT id, _details_fetched_at IS NOT NULL, activation_lock_bypass_code IS NULL, remote_assistance_session_url IS NULL, " +
		strings.Join(selects, ", ") + " FROM managed_devices"
	rows, err := tb.db.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string][]sql.NullString{}
	for rows.Next() {
		var id string
		var fetched, noCode, noURL bool
		vals := make([]sql.NullString, len(names))
		dest := []any{&id, &fetched, &noCode, &noURL}
		for k := range vals {
			dest = append(dest, &vals[k])
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
		if !fetched || !noCode || !noURL {
			t.Fatalf("device %s: details fetched %v, activation_lock_bypass_code NULL %v, remote_assistance_session_url NULL %v", id, fetched, noCode, noURL)
		}
		got[id] = vals
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("%d rows, want %d", len(got), n)
	}
	filled := map[string]int{}
	for i := 0; i < n; i++ {
		truth := rawMembers(t, sim.DeviceDetails(i, version == "beta"))
		vals, ok := got[sim.DeviceID(i)]
		if !ok {
			t.Fatalf("device %d has no row", i)
		}
		for k, c := range names {
			want := truth[cols[c]]
			if !sameDetail(t, vals[k], want) {
				t.Fatalf("device %d: %s = %v, graphsim's real %s is %s", i, c, vals[k], cols[c], want)
			}
			if vals[k].Valid {
				filled[c]++
			}
		}
	}
	for _, c := range []string{"physical_memory_in_bytes", "ethernet_mac_address", "udid", "iccid"} {
		if filled[c] == 0 {
			t.Errorf("no device has a %s: the check proves nothing", c)
		}
	}
}

// jsonText is the expression that reads a column as JSON text in dest's
// dialect, so that numbers, strings, booleans and objects compare alike.
func jsonText(dest string) func(col string) string {
	if dest == "sqlite" {
		return func(col string) string {
			return fmt.Sprintf("CASE WHEN %[1]s IS NULL THEN NULL WHEN typeof(%[1]s) = 'text' AND json_valid(%[1]s) AND substr(%[1]s, 1, 1) IN ('{', '[') THEN %[1]s ELSE json_quote(%[1]s) END", col)
		}
	}
	return func(col string) string { return fmt.Sprintf("to_jsonb(%s)::text", col) }
}

func rawMembers(t *testing.T, obj []byte) map[string]json.RawMessage {
	t.Helper()
	m := map[string]json.RawMessage{}
	if err := json.Unmarshal(obj, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// sameDetail compares a column's JSON text (NULL for SQL NULL) with a JSON
// value: null matches NULL, numbers compare by their digits.
func sameDetail(t *testing.T, got sql.NullString, want json.RawMessage) bool {
	t.Helper()
	if !got.Valid {
		return want == nil || string(want) == "null"
	}
	norm := func(b []byte) string {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("not JSON: %s", b)
		}
		out, _ := json.Marshal(v)
		return string(out)
	}
	g := got.String
	if g == "1" || g == "0" { // SQLite's booleans are integers
		switch string(want) {
		case "true":
			return g == "1"
		case "false":
			return g == "0"
		}
	}
	return norm([]byte(g)) == norm(want)
}

// TestShippedTablesHoldEveryDevicesRealDetails runs config/sqlite.yaml and
// config/postgres.yaml with details against graphsim, in v1.0 and in beta:
// every device's detail columns hold graphsim's real values.
func TestShippedTablesHoldEveryDevicesRealDetails(t *testing.T) {
	const n = 300
	for _, version := range []string{"v1.0", "beta"} {
		t.Run(version, func(t *testing.T) {
			eachShippedTable(t, func(t *testing.T, tb shippedTable) {
				sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 61, PageSize: 100})
				res := runBinary(t, append(detailsEnv(env, version), tb.env...), "-c", config(tb.config))
				if res.exitCode != 0 {
					t.Fatalf("exit %d\n%s", res.exitCode, res.logs())
				}
				checkDetailColumns(t, tb, sim, version, n)
			})
		})
	}
}

// TestWithoutDetailsListDefaultColumnsAreNullNeverZero: Graph lists
// physicalMemoryInBytes as 0 and beta's hardwareInformation as an object of
// defaults; without details the table says it does not know.
func TestWithoutDetailsListDefaultColumnsAreNullNeverZero(t *testing.T) {
	const n = 200
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 63})
	tb := sqliteTable(t, "sqlite.yaml")
	res := runBinary(t, append(append(env, "INTUNE_DETAILS=false", "INTUNE_API_VERSION=beta"), tb.env...), "-c", config(tb.config))
	if res.exitCode != 0 {
		t.Fatalf("exit %d\n%s", res.exitCode, res.logs())
	}
	var rows, memory, zero, hardware, mac, fetched int
	err := tb.db.QueryRow(`SELECT count(*), count(physical_memory_in_bytes), count(*) FILTER (WHERE physical_memory_in_bytes = 0),
		count(hardware_information), count(ethernet_mac_address), count(_details_fetched_at) FROM managed_devices`).
		Scan(&rows, &memory, &zero, &hardware, &mac, &fetched)
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || memory != 0 || zero != 0 || hardware != 0 || mac != 0 || fetched != 0 {
		t.Errorf("%d rows: %d with a memory (%d of them 0), %d with hardware information, %d with a MAC, %d with details: want NULL everywhere",
			rows, memory, zero, hardware, mac, fetched)
	}
	if st := sim.Stats(); st.BatchRequests != 0 || st.DeviceGets != 0 {
		t.Errorf("details are off, yet %d batches and %d device GETs were sent", st.BatchRequests, st.DeviceGets)
	}
}

// TestKilledDuringDetailsTheRestartFetchesEachDeviceOnce kills config/
// sqlite.yaml outright while Graph holds its detail GETs, then runs it
// again: every device ends up in the table with its real details, and no
// device's details were fetched twice.
func TestKilledDuringDetailsTheRestartFetchesEachDeviceOnce(t *testing.T) {
	const n = 3000
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 64, PageSize: 500})
	tb := sqliteTable(t, "sqlite.yaml")
	env = append(detailsEnv(env, "v1.0"), tb.env...)
	sim.SetStallDetailsAfter(1300)
	cmd, lines, stderr := startBinary(t, env, "-c", config("sqlite.yaml"))
	go func() {
		for range lines {
		}
	}()
	waitFor(t, "detail GETs held by graphsim", time.Minute, func() bool { return sim.StalledGets() > 0 })
	// The journal of fetched details is written every second.
	time.Sleep(2 * time.Second)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	waitFor(t, "graphsim to let go of the killed process' GETs", time.Minute, func() bool { return sim.StalledGets() == 0 })
	sim.SetStallDetailsAfter(0)
	before := len(sim.DetailFetches())
	if before == 0 || before >= n {
		t.Fatalf("%d devices' details fetched before the kill, want some\n%s", before, stderr)
	}

	res := runBinary(t, env, "-c", config("sqlite.yaml"))
	if res.exitCode != 0 {
		t.Fatalf("the restarted run: exit %d\n%s", res.exitCode, res.logs())
	}
	if !strings.Contains(res.logs(), "resumes after page") || !strings.Contains(res.logs(), "pieces of journal left by a sync that stopped") {
		t.Errorf("the second run did not resume with the journal:\n%s", res.logs())
	}
	checkDetailColumns(t, tb, sim, "v1.0", n)
	for i := 0; i < n; i++ {
		if c := sim.DetailFetches()[sim.DeviceID(i)]; c != 1 {
			t.Errorf("device %d: details fetched %d times", i, c)
		}
	}
	t.Logf("%d devices' details fetched before the kill", before)
}

// TestSecretsStayNullUnlessNamedAndNeverReachTheLog: the activation lock
// bypass code and the remote assistance link are fetched only when
// details.properties names them; named, they reach the output and never
// a log line, at TRACE.
func TestSecretsStayNullUnlessNamedAndNeverReachTheLog(t *testing.T) {
	const n = 400
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 65})
	var secrets []string
	for i := 0; i < n; i++ {
		m := rawMembers(t, sim.DeviceDetails(i, false))
		for _, p := range []string{"activationLockBypassCode", "remoteAssistanceSessionUrl"} {
			if v := m[p]; string(v) != "null" {
				var s string
				_ = json.Unmarshal(v, &s)
				secrets = append(secrets, s)
			}
		}
	}
	if len(secrets) < 5 {
		t.Fatalf("graphsim has %d secrets among %d devices: the test proves nothing", len(secrets), n)
	}
	for _, named := range []bool{false, true} {
		props := "[ notes, physicalMemoryInBytes ]"
		if named {
			props = "[ notes, physicalMemoryInBytes, activationLockBypassCode, remoteAssistanceSessionUrl ]"
		}
		out := filepath.Join(t.TempDir(), "out.jsonl")
		conf := writeConfig(t, inputConfig{
			input:  "    details:\n      enabled: true\n      properties: " + props,
			output: "output:\n  file:\n    path: " + out + "\n    codec: lines\nlogger:\n  level: TRACE",
		})
		res := runBinary(t, env, "-c", conf)
		if res.exitCode != 0 {
			t.Fatalf("named %v: exit %d\n%s", named, res.exitCode, res.logs())
		}
		written, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(res.logs(), s) {
				t.Fatalf("a secret reached the log (named %v): %q", named, s)
			}
			if strings.Contains(string(written), s) != named {
				t.Fatalf("secret %q in the output: %v, named: %v", s, !named, named)
			}
		}
	}
}

// TestDetailsThatFailExitFourAndSayHowMany: a sync whose detail GETs fail
// for some devices (403 inside the batch) delivers every device, says how
// many lack fresh details on its last line and exits 4.
func TestDetailsThatFailExitFourAndSayHowMany(t *testing.T) {
	const n = 150
	sim, env := simEnv(t, graphsim.Config{Devices: n, Seed: 66})
	if err := sim.SetDeviceFault(graphsim.Fault403, 7, 8); err != nil {
		t.Fatal(err)
	}
	env = append(env, "INTUNE_DETAILS=true")
	res := runBinary(t, env, "-c", config("stdout.yaml"))
	lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
	if res.exitCode != 4 || len(lines) != n {
		t.Fatalf("exit %d with %d devices, want 4 with all %d\n%s", res.exitCode, len(lines), n, res.stderr)
	}
	last := lastLine(res.stderr)
	if !strings.Contains(last, "2 devices without the fresh details they were due") || !strings.Contains(res.stderr, "DeviceManagementManagedDevices.Read.All") {
		t.Errorf("last line %q; the log must say what to grant:\n%s", last, res.stderr)
	}
	for _, line := range lines {
		if strings.Contains(line, sim.DeviceID(7)) && strings.Contains(line, `"physicalMemoryInBytes":0`) {
			t.Errorf("a device without details carries Graph's placeholder: %s", line)
		}
	}
}
