package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// The state scenario measures what the change state costs as the tenant
// grows: the shipped apps configs (state in their own database) run twice
// against an unthrottled graphsim, with apps upgraded and uninstalled and
// devices retired between the runs. What users see is the peak RSS of each
// run, its wall and CPU, the size of the state in the database, and that
// the second run sends only the changes and deletions.

type stateOptions struct {
	only      bool
	sizes     []int // devices of the apps runs
	devices   []int // devices of the device runs
	apps      int   // detected apps of the tenant
	perDevice int
	configs   []string
}

// stateRun is one run of one config.
type stateRun struct {
	sample
	listed, upserts, deleted int // the input's own count, from its last line
	rows                     int // device_apps after the run
	stateBytes               int64
}

type stateResult struct {
	config  string
	devices int
	pairs   int // graphsim's, as the first run listed them
	runs    [2]stateRun
}

const (
	stateBegin        = "<!-- benchrun state: begin -->"
	stateEnd          = "<!-- benchrun state: end -->"
	stateDevicesBegin = "<!-- benchrun state devices: begin -->"
	stateDevicesEnd   = "<!-- benchrun state devices: end -->"
)

// delivered is the apps input's last line for a sync.
var delivered = regexp.MustCompile(`delivered: (\d+) apps and (\d+) \(device, app\) pairs listed, (\d+) upserts and (\d+) deletions emitted`)

func runStateOnly(o *options) error {
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	ps := &paths{repo: repo, binary: filepath.Join(repo, "bin", "intune-benthos"), pgServer: o.pgServer}
	simBin := filepath.Join(repo, "bin", "graphsim")
	for _, b := range []string{ps.binary, simBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%v: run `make build` first", err)
		}
	}
	if ps.tmp, err = os.MkdirTemp("", "intune-bench-state-"); err != nil {
		return err
	}
	defer os.RemoveAll(ps.tmp)
	build := buildNote(o.repo)
	started, loadBefore := time.Now(), loadAverage()
	ctx := context.Background()
	var devices []deviceStateResult
	for _, n := range o.state.devices {
		r, err := runStateDevices(ctx, ps, simBin, n, o.timeout)
		if err != nil {
			return fmt.Errorf("state scenario, devices, %d devices: %w", n, err)
		}
		fmt.Printf("bench: state devices %d: %+v\n", n, r)
		devices = append(devices, r)
	}
	var results []stateResult
	for _, n := range o.state.sizes {
		for _, cfg := range o.state.configs {
			r, err := runStateApps(ctx, ps, simBin, o.state, cfg, n, o.timeout)
			if err != nil {
				return fmt.Errorf("state scenario, %s, %d devices: %w", cfg, n, err)
			}
			fmt.Printf("bench: state %s %d devices: %+v\n", cfg, n, r)
			results = append(results, r)
		}
	}
	note := fmt.Sprintf("Run %s to %s UTC (load average %s before, %s after), `bin/intune-benthos` and `bin/graphsim` from `make build`, %s; `%s`.",
		started.UTC().Format("2006-01-02 15:04"), time.Now().UTC().Format("15:04"), loadBefore, loadAverage(), build, o.commandLine)
	existing, err := os.ReadFile(o.resultsPath)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	md := string(existing)
	if len(results) > 0 {
		md = spliceSection(md, renderState(o.state, results, note), stateBegin, stateEnd)
	}
	if len(devices) > 0 {
		md = spliceSection(md, renderStateDevices(devices, note), stateDevicesBegin, stateDevicesEnd)
	}
	return os.WriteFile(o.resultsPath, []byte(md), 0o644)
}

// runStateApps runs cfg twice against a fresh graphsim of n devices and a
// fresh database.
func runStateApps(ctx context.Context, ps *paths, simBin string, so stateOptions, cfg string, n int, timeout time.Duration) (stateResult, error) {
	res := stateResult{config: cfg, devices: n}
	s, err := startSimArgs(simBin, []string{"-addr", "127.0.0.1:0", "-seed", "1", "-devices", fmt.Sprint(n),
		"-apps", fmt.Sprint(so.apps), "-apps-per-device", fmt.Sprint(so.perDevice)}, ps.tmp, "graphsim-state.log")
	if err != nil {
		return res, err
	}
	defer s.stop()
	var driver, dsn string
	if strings.Contains(cfg, "postgres") {
		if dsn, err = freshDatabase(ps.pgServer); err != nil {
			return res, err
		}
		driver = "postgres"
	} else {
		db := filepath.Join(ps.tmp, "state.db")
		for _, suffix := range []string{"", "-wal", "-shm"} {
			_ = os.Remove(db + suffix)
		}
		driver, dsn = "sqlite", schema.SQLiteDSN(db)
	}
	env := append(graphEnv(s.url), "INTUNE_MAX_REQUESTS_PER_SECOND=1000000", "INTUNE_PG_DSN="+dsn, "INTUNE_SQLITE_DSN="+dsn)
	argv := []string{ps.binary, "-c", filepath.Join(ps.repo, "config", cfg), "--set", "http.address=127.0.0.1:0"}
	for k := range res.runs {
		if k == 1 {
			// A thousand devices upgrade an app and uninstall another
			// (graphsim's ChangeApps), and a hundred others are retired.
			var changed, retired []int
			for i := 0; i < 1000; i++ {
				changed = append(changed, i*(n/1000))
			}
			for i := 0; i < 100; i++ {
				retired = append(retired, i*(n/100)+1)
			}
			if err := postJSON(s.url+"/_graphsim/mutate", map[string]any{"change_apps": changed, "remove": retired}); err != nil {
				return res, err
			}
		}
		logPath := filepath.Join(ps.tmp, fmt.Sprintf("state-%s-%d-%d.log", cfg, n, k))
		run := &res.runs[k]
		if run.sample, err = measure(ctx, argv, env, nil, logPath, timeout); err != nil {
			return res, err
		}
		raw, err := os.ReadFile(logPath)
		if err != nil {
			return res, err
		}
		m := delivered.FindStringSubmatch(string(raw))
		if m == nil {
			return res, fmt.Errorf("run %d logged no delivered sync:\n%s", k+1, tail(logPath, 20))
		}
		run.listed, _ = strconv.Atoi(m[2])
		run.upserts, _ = strconv.Atoi(m[3])
		run.deleted, _ = strconv.Atoi(m[4])
		if run.rows, run.stateBytes, err = stateTableSizes(driver, dsn); err != nil {
			return res, err
		}
		if run.rows != run.listed {
			return res, fmt.Errorf("run %d: device_apps holds %d pairs, the sync listed %d", k+1, run.rows, run.listed)
		}
	}
	res.pairs = res.runs[0].listed
	if r := res.runs[1]; r.upserts+r.deleted >= res.pairs/10 || r.deleted == 0 {
		return res, fmt.Errorf("the second run sent %d upserts and %d deletions for %d pairs: want only the changes", r.upserts, r.deleted, res.pairs)
	}
	return res, nil
}

// stateTableSizes counts device_apps' rows and the bytes of intune_state.
func stateTableSizes(driver, dsn string) (int, int64, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	var rows int
	var bytes sql.NullInt64
	if err := db.QueryRow(`SELECT count(*) FROM device_apps`).Scan(&rows); err != nil {
		return 0, 0, err
	}
	if err := db.QueryRow(`SELECT sum(length(value)) FROM intune_state`).Scan(&bytes); err != nil {
		return 0, 0, err
	}
	return rows, bytes.Int64, nil
}

func renderState(so stateOptions, results []stateResult, note string) string {
	var b strings.Builder
	b.WriteString(stateBegin + "\n")
	b.WriteString("## State: the software inventory against the tenant's size\n\n")
	fmt.Fprintf(&b, "What keeping the change state costs as the tenant grows: each shipped apps config, unchanged (`emit: changes`, its state in its own database, `strategy: auto`), runs twice into an empty database against graphsim **without throttle or latency** (`-apps %s -apps-per-device %d`, `INTUNE_MAX_REQUESTS_PER_SECOND=1000000`). Between the runs a thousand devices upgrade an app and uninstall another, and a hundred devices are retired. After each run the harness checks that `device_apps` holds exactly the pairs the sync listed. **State** is the size of `intune_state` after the run: the last complete sync's snapshot in chunks of 1 MB (each pair about 14 bytes). The second run must send only the changes and the deletions.\n\n", thousands(so.apps), so.perDevice)
	b.WriteString("| config | devices | pairs | first run wall | CPU | peak RSS | state | second run wall | CPU | peak RSS | upserts | deletions |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		a, z := r.runs[0], r.runs[1]
		fmt.Fprintf(&b, "| `%s` | %s | %s | %.1f s | %.1f s | %.0f MB | %.1f MB | %.1f s | %.1f s | %.0f MB | %s | %s |\n",
			r.config, thousands(r.devices), thousands(r.pairs), a.wall, a.cpu, float64(a.rssKB)/1024, float64(z.stateBytes)/1e6,
			z.wall, z.cpu, float64(z.rssKB)/1024, thousands(z.upserts), thousands(z.deleted))
	}
	b.WriteString("\n" + note + "\n" + stateEnd + "\n")
	return b.String()
}

func renderStateDevices(devices []deviceStateResult, note string) string {
	var b strings.Builder
	b.WriteString(stateDevicesBegin + "\n")
	b.WriteString("## State: the device list against the tenant's size\n\n")
	b.WriteString("`intune_managed_devices` with `details` (v1.0), `emit: changes` and its state in PostgreSQL (Benthos' `sql` cache, as `config/postgres.yaml` keeps it), into the `drop` output, twice against an unthrottled graphsim with nothing changed between the runs: the first sync fetches every device's details, the second reads the state (hashes and details) and sends nothing. **State** is the size of `intune_state` after the first run.\n\n")
	b.WriteString("| devices | first sync wall | CPU | peak RSS | state | second sync wall | CPU | peak RSS | upserts |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range devices {
		a, z := r.runs[0], r.runs[1]
		fmt.Fprintf(&b, "| %s | %.1f s | %.1f s | %.0f MB | %.1f MB | %.1f s | %.1f s | %.0f MB | %s |\n",
			thousands(r.devices), a.wall, a.cpu, float64(a.rssKB)/1024, float64(r.stateBytes)/1e6, z.wall, z.cpu, float64(z.rssKB)/1024, thousands(r.upserts))
	}
	b.WriteString("\n" + note + "\n" + stateDevicesEnd + "\n")
	return b.String()
}

// deviceStateResult is the device input's two syncs of one tenant size.
type deviceStateResult struct {
	devices    int
	runs       [2]sample
	stateBytes int64
	upserts    int // the second sync's
}

// deviceDelivered is the device input's last line for a sync.
var deviceDelivered = regexp.MustCompile(`delivered: (\d+) devices listed, (\d+) upserts and (\d+) deletions emitted`)

// runStateDevices runs the device input with details and its state in a
// fresh PostgreSQL database twice against graphsim of n devices.
func runStateDevices(ctx context.Context, ps *paths, simBin string, n int, timeout time.Duration) (deviceStateResult, error) {
	res := deviceStateResult{devices: n}
	s, err := startSimArgs(simBin, []string{"-addr", "127.0.0.1:0", "-seed", "1", "-devices", fmt.Sprint(n)}, ps.tmp, "graphsim-state-devices.log")
	if err != nil {
		return res, err
	}
	defer s.stop()
	dsn, err := freshDatabase(ps.pgServer)
	if err != nil {
		return res, err
	}
	cfg, err := writeConfig(ps.tmp, "state-devices.yaml", intuneInput(s.url)+fmt.Sprintf(`    details: { enabled: true }
    max_requests_per_second: 1000000
    emit: changes
    state_cache: state
cache_resources:
  - label: state
    sql:
      driver: postgres
      dsn: %q
      table: intune_state
      key_column: key
      value_column: value
      set_suffix: ON CONFLICT (key) DO UPDATE SET value = excluded.value
      init_statement: CREATE TABLE IF NOT EXISTS intune_state (key text PRIMARY KEY, value bytea)
output:
  drop: {}
`, dsn))
	if err != nil {
		return res, err
	}
	for k := range res.runs {
		logPath := filepath.Join(ps.tmp, fmt.Sprintf("state-devices-%d-%d.log", n, k))
		if res.runs[k], err = measure(ctx, []string{ps.binary, "-c", cfg, "--set", "logger.level=INFO"}, nil, nil, logPath, timeout); err != nil {
			return res, err
		}
		raw, err := os.ReadFile(logPath)
		if err != nil {
			return res, err
		}
		m := deviceDelivered.FindStringSubmatch(string(raw))
		if m == nil {
			return res, fmt.Errorf("run %d logged no delivered sync:\n%s", k+1, tail(logPath, 20))
		}
		if listed, _ := strconv.Atoi(m[1]); listed != n {
			return res, fmt.Errorf("run %d listed %d devices, graphsim has %d", k+1, listed, n)
		}
		if k == 0 {
			db, err := sql.Open("postgres", dsn)
			if err != nil {
				return res, err
			}
			err = db.QueryRow(`SELECT sum(length(value)) FROM intune_state`).Scan(&res.stateBytes)
			db.Close()
			if err != nil {
				return res, err
			}
		} else {
			res.upserts, _ = strconv.Atoi(m[2])
		}
	}
	if res.upserts != 0 {
		return res, fmt.Errorf("the second sync sent %d upserts with nothing changed", res.upserts)
	}
	return res, nil
}
