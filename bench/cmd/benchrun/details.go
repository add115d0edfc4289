package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// The details scenario measures what `details` cost against a tenant that
// throttles like Intune (2,000 requests per 20 s per app) and answers
// every request after a latency: the shipped config/sqlite.yaml, details
// on, first into an empty database (every device's details fetched), then
// "an hour later" (INTUNE_DETAILS_CLOCK_SHIFT=1h, the clock details are
// aged by) after a share of the devices changed a trigger property. It
// counts what graphsim served (GET /_graphsim/stats) and checks the table
// against graphsim's truth.

// detailsSeed is graphsim's seed in the scenario, which the harness renders
// the truth with.
const detailsSeed = 1

type detailsOptions struct {
	devices    int
	changes    int
	latency    time.Duration
	throttle   string
	apiVersion string
	only       bool
	// memorySizes are the tenant sizes of the memory runs: details of
	// every device against an unthrottled graphsim, kept in a file cache.
	memorySizes []int
}

type detailsScenario struct {
	o        detailsOptions
	throttle graphsim.Throttle
	first    detailsRun
	second   detailsRun
	// throttledAt is when the first sync started.
	throttledAt time.Time
	memory      []detailsMemory
	started     time.Time
	finished    time.Time
	load        [2]string
	command     string
	build       string
}

// detailsRun is one sync of the scenario: the process' measures and what
// graphsim counted during it.
type detailsRun struct {
	sample
	stats graphsim.Stats // what graphsim served during the run
}

func newDetailsScenario(o detailsOptions) (*detailsScenario, error) {
	if o.devices <= 0 && len(o.memorySizes) == 0 {
		return nil, nil
	}
	t, err := graphsim.ParseThrottle(o.throttle)
	if err != nil {
		return nil, err
	}
	return &detailsScenario{o: o, throttle: t}, nil
}

func (sc *detailsScenario) title() string {
	return fmt.Sprintf("Details: %s devices (%s), Intune's throttle, %s latency", thousands(sc.o.devices), sc.o.apiVersion, sc.o.latency)
}

func (sc *detailsScenario) simArgs() []string {
	return []string{"-addr", "127.0.0.1:0", "-seed", fmt.Sprint(detailsSeed), "-devices", fmt.Sprint(sc.o.devices), "-latency", sc.o.latency.String(), "-throttle", sc.o.throttle}
}

func runDetailsScenario(ctx context.Context, ps *paths, simBin string, sc *detailsScenario, timeout time.Duration) error {
	sc.started, sc.load[0] = time.Now(), loadAverage()
	if sc.o.devices > 0 {
		if err := runDetailsThrottled(ctx, ps, simBin, sc, timeout); err != nil {
			return err
		}
	}
	for _, n := range sc.o.memorySizes {
		m, err := runDetailsMemory(ctx, ps, simBin, sc.o.apiVersion, n, timeout)
		if err != nil {
			return fmt.Errorf("memory at %d devices: %v", n, err)
		}
		fmt.Printf("  memory %9s devices: first sync wall %7.1fs cpu %6.1fs peak RSS %6.1f MB; state %6.1f MB; second sync wall %6.1fs peak RSS %6.1f MB, %d details due again\n",
			thousands(n), m.first.wall, m.first.cpu, float64(m.first.rssKB)/1024, float64(m.stateBytes)/(1<<20), m.second.wall, float64(m.second.rssKB)/1024, m.refetched)
		sc.memory = append(sc.memory, m)
	}
	sc.finished, sc.load[1] = time.Now(), loadAverage()
	return nil
}

// runDetailsThrottled is the first sync and the one an hour later.
func runDetailsThrottled(ctx context.Context, ps *paths, simBin string, sc *detailsScenario, timeout time.Duration) error {
	fmt.Printf("\n== %s\n", sc.title())
	s, err := startSimArgs(simBin, sc.simArgs(), ps.tmp, "graphsim-details.log")
	if err != nil {
		return err
	}
	defer s.stop()
	db := filepath.Join(ps.tmp, "details.db")
	for _, suffix := range []string{"", "-wal", "-shm"} {
		_ = os.Remove(db + suffix)
	}
	env := append(graphEnv(s.url), "INTUNE_SQLITE_DSN="+schema.SQLiteDSN(db),
		"INTUNE_DETAILS=true", "INTUNE_API_VERSION="+sc.o.apiVersion)
	sc.throttledAt = time.Now()
	if sc.first, err = sc.syncChecked(ctx, ps, s.url, db, env, "first sync", nil, timeout); err != nil {
		return err
	}
	var changed []int
	for i := 0; i < sc.o.changes; i++ {
		changed = append(changed, i*(sc.o.devices/max(1, sc.o.changes)))
	}
	if err := postJSON(s.url+"/_graphsim/mutate", map[string]any{"change": changed}); err != nil {
		return err
	}
	// The bucket refills, as it would have in the hour between the syncs.
	if err := sleepCtx(ctx, sc.throttle.Window+time.Second); err != nil {
		return err
	}
	// Hourly syncs start an hour apart: the second one's clock reads the
	// first one's start plus an hour.
	shift := time.Until(sc.throttledAt.Add(time.Hour)).Round(time.Millisecond)
	env = append(env, "INTUNE_DETAILS_CLOCK_SHIFT="+shift.String())
	sc.second, err = sc.syncChecked(ctx, ps, s.url, db, env, "an hour later", changed, timeout)
	return err
}

// syncChecked runs one sync, prints what it cost and checks the table in
// the SQLite file db against graphsim's truth (changed: the devices
// changed so far).
func (sc *detailsScenario) syncChecked(ctx context.Context, ps *paths, url, db string, env []string, name string, changed []int, timeout time.Duration) (detailsRun, error) {
	run, err := sc.sync(ctx, ps, url, env, "details-"+strings.ReplaceAll(name, " ", "-")+".log", timeout)
	if err != nil {
		return run, fmt.Errorf("%s: %v", name, err)
	}
	fmt.Printf("  %-13s wall %7.1fs  detail GETs %6d  batches %5d  429s %4d  cpu %6.1fs  peak RSS %6.1f MB\n",
		name, run.wall, run.stats.DetailGets, run.stats.BatchRequests, run.stats.Throttled, run.cpu, float64(run.rssKB)/1024)
	if err := verifyDetails(db, sc.o, changed); err != nil {
		return run, fmt.Errorf("after the %s: %v", name, err)
	}
	return run, nil
}

// detailsMemory is what fetching and keeping every device's details costs
// a process, against the tenant's size: a first sync (every device's
// details fetched), the state it leaves, and a second sync (every device's
// details read from the state, none fetched).
type detailsMemory struct {
	devices       int
	first, second sample
	stateBytes    int64
	refetched     int64 // details the second sync fetched: those due by age already
}

// runDetailsMemory runs the input with details, emit: all and a file
// cache as state_cache into the drop output, twice, against an
// unthrottled graphsim of n devices: what it holds, not how Intune paces it.
func runDetailsMemory(ctx context.Context, ps *paths, simBin, version string, n int, timeout time.Duration) (detailsMemory, error) {
	m := detailsMemory{devices: n}
	s, err := startSimArgs(simBin, []string{"-addr", "127.0.0.1:0", "-seed", fmt.Sprint(detailsSeed), "-devices", fmt.Sprint(n)}, ps.tmp, "graphsim-details-memory.log")
	if err != nil {
		return m, err
	}
	defer s.stop()
	state := filepath.Join(ps.tmp, fmt.Sprintf("details-state-%d", n))
	if err := os.MkdirAll(state, 0o700); err != nil {
		return m, err
	}
	defer os.RemoveAll(state)
	cfg, err := writeConfig(ps.tmp, "details-memory.yaml", intuneInput(s.url)+fmt.Sprintf(`    api_version: %s
    details: { enabled: true }
    max_requests_per_second: 1000000
    state_cache: state
cache_resources:
  - label: state
    file: { directory: %q }
output:
  drop: {}
`, version, state))
	if err != nil {
		return m, err
	}
	var starts [2]time.Time
	for k, run := range []*sample{&m.first, &m.second} {
		starts[k] = time.Now()
		if *run, err = measure(ctx, []string{ps.binary, "-c", cfg}, nil, nil, filepath.Join(ps.tmp, fmt.Sprintf("details-memory-%d-%d.log", n, k)), timeout); err != nil {
			return m, err
		}
		if k == 0 {
			entries, err := os.ReadDir(state)
			if err != nil {
				return m, err
			}
			for _, e := range entries {
				if info, err := e.Info(); err == nil {
					m.stateBytes += info.Size()
				}
			}
		}
	}
	st, err := simStats(s.url)
	if err != nil {
		return m, err
	}
	// First refreshes are spread over max_age (7 days) from the fetch:
	// the second sync fetches those that fell due between the two.
	m.refetched = st.DetailGets - int64(n)
	due := int64(float64(n)*starts[1].Sub(starts[0]).Seconds()/(7*24*3600)) + 2
	if m.refetched < 0 || m.refetched > due {
		return m, fmt.Errorf("graphsim served %d devices' details over both syncs, want %d and at most %d due again by age", st.DetailGets, n, due)
	}
	return m, nil
}

// sync runs config/sqlite.yaml once and counts what graphsim served.
func (sc *detailsScenario) sync(ctx context.Context, ps *paths, url string, env []string, logName string, timeout time.Duration) (detailsRun, error) {
	before, err := simStats(url)
	if err != nil {
		return detailsRun{}, err
	}
	argv := shippedConfig(ps, "sqlite.yaml")
	run, err := measure(ctx, argv, env, nil, filepath.Join(ps.tmp, logName), timeout)
	if err != nil {
		return detailsRun{}, err
	}
	after, err := simStats(url)
	if err != nil {
		return detailsRun{}, err
	}
	return detailsRun{sample: run, stats: statsDelta(after, before)}, nil
}

func simStats(url string) (graphsim.Stats, error) {
	var s graphsim.Stats
	resp, err := http.Get(url + "/_graphsim/stats")
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	return s, json.NewDecoder(resp.Body).Decode(&s)
}

func statsDelta(a, b graphsim.Stats) graphsim.Stats {
	return graphsim.Stats{
		TokenRequests: a.TokenRequests - b.TokenRequests, PageRequests: a.PageRequests - b.PageRequests,
		Throttled: a.Throttled - b.Throttled, BatchRequests: a.BatchRequests - b.BatchRequests,
		BatchItems: a.BatchItems - b.BatchItems, DeviceGets: a.DeviceGets - b.DeviceGets, DetailGets: a.DetailGets - b.DetailGets,
	}
}

func postJSON(url string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}

// verifyDetails checks the table against graphsim's truth: one row per
// device, each with a fetch time, and for every 97th device each detail
// equal to the real value graphsim serves on a GET (64-bit integers exact),
// the secrets null. changed are the devices the scenario changed.
func verifyDetails(dsn string, o detailsOptions, changed []int) error {
	db, err := sql.Open("sqlite", "file:"+dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	var rows, fetched int
	if err := db.QueryRow(`SELECT count(*), count(_details_fetched_at) FROM managed_devices`).Scan(&rows, &fetched); err != nil {
		return err
	}
	if rows != o.devices || fetched != o.devices {
		return fmt.Errorf("%d rows, %d with details, want %d of each", rows, fetched, o.devices)
	}
	// graphsim's devices are a function of the seed and the index: the
	// harness renders the truth itself, with the mutations it made.
	truth := graphsim.New(graphsim.Config{Devices: o.devices, Seed: detailsSeed})
	truth.Change(changed...)
	for i := 0; i < o.devices; i += 97 {
		want := map[string]json.RawMessage{}
		if err := json.Unmarshal(truth.DeviceDetails(i, o.apiVersion == "beta"), &want); err != nil {
			return err
		}
		var raw string
		if err := db.QueryRow(`SELECT _raw FROM managed_devices WHERE id = ?`, truth.DeviceID(i)).Scan(&raw); err != nil {
			return fmt.Errorf("device %d: %v", i, err)
		}
		got := map[string]json.RawMessage{}
		if err := json.Unmarshal([]byte(raw), &got); err != nil {
			return err
		}
		for p, w := range want {
			if p == "activationLockBypassCode" || p == "remoteAssistanceSessionUrl" {
				w = json.RawMessage("null") // secrets: fetched only when named
			}
			if !bytes.Equal(got[p], w) {
				return fmt.Errorf("device %d: %s is %s, graphsim's truth %s", i, p, got[p], w)
			}
		}
	}
	return nil
}

const (
	detailsBegin = "<!-- benchrun details scenario: begin -->"
	detailsEnd   = "<!-- benchrun details scenario: end -->"
)

func renderDetails(sc *detailsScenario) string {
	if sc.o.devices <= 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	rate := float64(sc.throttle.Requests) / sc.throttle.Window.Seconds()
	f, s := sc.first, sc.second
	floor := float64(f.stats.DetailGets) / rate
	firstRequests := f.stats.BatchItems + f.stats.PageRequests
	roundTrips := f.stats.BatchRequests + f.stats.PageRequests + f.stats.TokenRequests
	share := float64(sc.o.devices) / 168
	limit := (float64(sc.o.changes) + share) * 1.01

	w("%s\n## %s\n\n", detailsBegin, sc.title())
	w("Graph's list leaves some properties at a default (`physicalMemoryInBytes` 0, `ethernetMacAddress`, `notes`, `udid`, `iccid` null, ")
	w("beta's `hardwareInformation` empty); `details` fetches their real values with one `GET managedDevices/{id}?$select=...` per device, ")
	w("20 to a JSON batch ([operations.md](../docs/operations.md#device-details)). The tenant: graphsim `%s`, which answers every request ", strings.Join(sc.simArgs()[4:], " "))
	w("after %s and throttles the app like Intune: a bucket of %s requests refilled at %.0f/s, **every request inside a batch counted**. ", sc.o.latency, thousands(sc.throttle.Requests), rate)
	w("The program: the shipped `config/sqlite.yaml`, unchanged, with `INTUNE_DETAILS=true`, `INTUNE_API_VERSION=%s`, into an empty SQLite file, ", sc.o.apiVersion)
	w("then again \"an hour later\", as an hourly sync starts an hour after the one before (`INTUNE_DETAILS_CLOCK_SHIFT`, the clock details are aged by, set to the first sync's start plus an hour; `max_age` 7 days) after %s devices changed `osVersion`, a trigger property. ", thousands(sc.o.changes))
	w("graphsim counts what it served (`GET /_graphsim/stats`); after each sync the harness checks the table: one row per device, each with `_details_fetched_at`, ")
	w("and for every 97th device each detail equal to graphsim's truth, 64-bit values exact, `activationLockBypassCode` NULL.\n\n")

	w("| sync | detail requests | pages | HTTP round trips | 429s | wall | throttle floor | wall ÷ floor | CPU | peak RSS |\n")
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range []struct {
		name string
		run  detailsRun
	}{{"first (every device new)", f}, {"an hour later", s}} {
		fl := float64(r.run.stats.DetailGets) / rate
		ratio := "—"
		if fl >= 1 {
			ratio = fmt.Sprintf("%.2f", r.run.wall/fl)
		}
		w("| %s | %s | %s | %s | %s | %.1f s | %.1f s | %s | %.1f s | %.0f MB |\n", r.name, thousands(int(r.run.stats.DetailGets)), thousands(int(r.run.stats.PageRequests)),
			thousands(int(r.run.stats.BatchRequests+r.run.stats.PageRequests+r.run.stats.TokenRequests)), thousands(int(r.run.stats.Throttled)),
			r.run.wall, fl, ratio, r.run.cpu, float64(r.run.rssKB)/1024)
	}
	w("\n**Detail requests** are the GETs inside batches that graphsim answered with details; **HTTP round trips** every request the process sent ")
	w("(batches, pages, tokens); **429s** every request answered 429, inside a batch or not. The **throttle floor** is detail requests ÷ %.0f/s.\n\n", rate)
	w("| acceptance | measured | limit | |\n|---|---:|---:|---|\n")
	w("| first sync: wall ÷ throttle floor | %.3f | ≤ 1.1 | %s |\n", f.wall/floor, pass(f.wall <= 1.1*floor))
	w("| first sync: share of requests answered 429 | %.3f%% | < 1%% | %s |\n", 100*float64(f.stats.Throttled)/float64(max(1, firstRequests)), pass(float64(f.stats.Throttled) < 0.01*float64(firstRequests)))
	w("| first sync: HTTP round trips | %s | ≤ %s (detail requests ÷ 15) | %s |\n", thousands(int(roundTrips)), thousands(int(f.stats.DetailGets/15)), pass(roundTrips <= f.stats.DetailGets/15))
	w("| an hour later: detail requests | %s | ≤ %s (%s changed + %s ÷ 168, + 1%%) | %s |\n", thousands(int(s.stats.DetailGets)), thousands(int(limit)),
		thousands(sc.o.changes), thousands(sc.o.devices), pass(float64(s.stats.DetailGets) <= limit))
	w("\nRun %s to %s (load average %s before, %s after), %s; `%s`.\n%s\n",
		sc.started.UTC().Format("2006-01-02 15:04"), sc.finished.UTC().Format("15:04 MST"), sc.load[0], sc.load[1], sc.build, sc.command, detailsEnd)
	return b.String()
}

const (
	detailsMemoryBegin = "<!-- benchrun details memory: begin -->"
	detailsMemoryEnd   = "<!-- benchrun details memory: end -->"
)

func renderDetailsMemory(sc *detailsScenario) string {
	if len(sc.memory) == 0 {
		return ""
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("%s\n## Details: memory against the tenant's size\n\n", detailsMemoryBegin)
	w("What fetching and keeping every device's details costs the process as the tenant grows: the input with `details` (%s), `emit: all`, ", sc.o.apiVersion)
	w("a file cache as `state_cache`, into the `drop` output, against graphsim **without throttle or latency** (`max_requests_per_second: 1000000`), twice: ")
	w("a first sync that fetches every device's details, and a second that reads them from the state and fetches only those whose first refresh, ")
	w("spread over `max_age`, already fell due (graphsim's count is checked against the time between the syncs). ")
	w("**State** is the cache's files after the first sync: a record per device (its hash and its details) in chunks of 1 MB under a manifest.\n\n")
	w("| devices | first sync wall | CPU | peak RSS | state | second sync wall | CPU | peak RSS | due again |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range sc.memory {
		w("| %s | %.1f s | %.1f s | %.0f MB | %.1f MB | %.1f s | %.1f s | %.0f MB | %d |\n", thousands(m.devices), m.first.wall, m.first.cpu, float64(m.first.rssKB)/1024,
			float64(m.stateBytes)/(1<<20), m.second.wall, m.second.cpu, float64(m.second.rssKB)/1024, m.refetched)
	}
	w("\nRun %s to %s (load average %s before, %s after), %s; `%s`.\n%s\n",
		sc.started.UTC().Format("2006-01-02 15:04"), sc.finished.UTC().Format("15:04 MST"), sc.load[0], sc.load[1], sc.build, sc.command, detailsMemoryEnd)
	return b.String()
}

// spliceSection puts a section framed by begin and end into RESULTS.md: in
// place of the previous one, else before the detected-apps scenario (or
// the idle footprint, or the list of runs), else at the end.
func spliceSection(existing, section, begin, end string) string {
	if i := strings.Index(existing, begin); i >= 0 {
		if j := strings.Index(existing[i:], end); j >= 0 {
			rest := strings.TrimLeft(existing[i+j+len(end):], "\n")
			return existing[:i] + section + "\n" + rest
		}
	}
	for _, h := range []string{appsBegin, "\n## Idle footprint\n", "\n## Every run\n"} {
		if i := strings.Index(existing, h); i >= 0 {
			at := i
			if h[0] == '\n' {
				at++
			}
			return existing[:at] + section + "\n" + existing[at:]
		}
	}
	return strings.TrimRight(existing, "\n") + "\n\n" + section
}
