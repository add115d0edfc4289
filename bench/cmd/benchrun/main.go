// Command benchrun is the benchmark harness behind `make bench`: it starts
// graphsim, runs the intune-benthos binary and its peers against it, side by
// side and interleaved, checks that each wrote every device, and writes
// RESULTS.md and results.svg.
//
// Run it from bench/ (the Makefile does): go run ./cmd/benchrun -repo .. [flags]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// scenario is one graphsim tenant and the samples of every program on it.
type scenario struct {
	devices  int
	latency  time.Duration
	idle     bool // the empty tenant: idle footprint
	dest     bool // the destination scenario: shipped configs to rows, beside their floors
	programs []program
	samples  map[string][]sample
}

func (sc *scenario) title() string {
	switch {
	case sc.dest:
		return fmt.Sprintf("Destinations: %s devices, Graph to rows", thousands(sc.devices))
	case sc.idle:
		return "Idle: empty tenant (0 devices)"
	case sc.latency > 0:
		return fmt.Sprintf("%s devices, %s page latency", thousands(sc.devices), sc.latency)
	default:
		return fmt.Sprintf("%s devices", thousands(sc.devices))
	}
}

// pages is the number of pages graphsim serves for the tenant.
func (sc *scenario) pages() int {
	return max(1, (sc.devices+pageSize-1)/pageSize)
}

type options struct {
	repo, benchDir, goBin  string
	sizes                  []int
	runs                   int
	latency                time.Duration
	latencySize            int
	skip                   string
	destinations           int
	pgServer               string
	idle                   bool
	timeout                time.Duration
	resultsPath, svgPath   string
	invocation             string
	started, finished      time.Time
	loadBefore, loadAfter  string
	buildNote, commandLine string
	apps                   appsOptions
	details                detailsOptions
	state                  stateOptions
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == appsTruthCommand {
		if err := appsTruthMain(os.Args[2:]); err != nil {
			fatalf("%s: %v", appsTruthCommand, err)
		}
		return
	}
	var o options
	var sizes string
	flag.StringVar(&o.repo, "repo", "..", "repository root (holds bin/intune-benthos and bin/graphsim, built by make build)")
	flag.StringVar(&o.benchDir, "bench-dir", ".", "the bench/ module (where the peers are built)")
	flag.StringVar(&o.goBin, "go", "go", "go command used to build the peers")
	flag.StringVar(&sizes, "sizes", "10000,100000,1000000", "tenant sizes without latency, comma-separated")
	flag.IntVar(&o.runs, "runs", 3, "runs of each program per size; the tables show the median")
	flag.DurationVar(&o.latency, "latency", 250*time.Millisecond, "page latency of the latency scenario")
	flag.IntVar(&o.latencySize, "latency-size", 100000, "tenant size of the latency scenario (0: skip it)")
	flag.StringVar(&o.skip, "skip", "", "programs to leave out, comma-separated: intune-file, intune-drop, floor, msgraph, http_client, intune-flatten, sqlite.yaml, sqlite-floor, postgres.yaml, pg-copy-floor; of the detected-apps scenario per_app, per_device, auto, naive-apps")
	flag.IntVar(&o.destinations, "destinations", 100000, "tenant size of the destination scenario: shipped configs to rows beside their floors (0: skip it)")
	flag.StringVar(&o.pgServer, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server of the destination scenario (a DSN naming the database postgres; the scenario creates intune_bench)")
	flag.BoolVar(&o.idle, "idle", true, "measure the idle footprint against an empty tenant")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Minute, "longest a single program run may take")
	flag.IntVar(&o.apps.devices, "apps-devices", 10000, "devices of the detected-apps scenario: intune_detected_apps per strategy against a throttled graphsim, beside a naive per-app loop (0: skip it)")
	flag.IntVar(&o.apps.apps, "apps", 20000, "detected apps of the detected-apps scenario")
	flag.IntVar(&o.apps.perDevice, "apps-per-device", 150, "graphsim -apps-per-device of the detected-apps scenario")
	flag.DurationVar(&o.apps.latency, "apps-latency", 50*time.Millisecond, "graphsim's latency before every page in the detected-apps scenario")
	flag.StringVar(&o.apps.throttle, "apps-throttle", "2000/20s", "graphsim -throttle of the detected-apps scenario (Intune's 2,000 requests per 20 s per app)")
	flag.IntVar(&o.apps.naive, "apps-naive", 2000, "apps the naive sequential loop walks, its loop extrapolated linearly to every app (0: every app)")
	flag.IntVar(&o.apps.runs, "apps-runs", 1, "runs of each program of the detected-apps scenario (minutes each); the table shows the median")
	flag.BoolVar(&o.apps.only, "apps-only", false, "run the detected-apps scenario alone and replace only its section of -results (and not -svg)")
	flag.IntVar(&o.details.devices, "details-devices", 100000, "devices of the details scenario: config/sqlite.yaml with details against graphsim throttled like Intune, a first sync and one an hour later (0: skip it; the first sync takes devices ÷ 100 seconds)")
	flag.IntVar(&o.details.changes, "details-changes", 1000, "devices that change a trigger property between the details scenario's two syncs")
	flag.DurationVar(&o.details.latency, "details-latency", 50*time.Millisecond, "graphsim's latency before every answer in the details scenario")
	flag.StringVar(&o.details.throttle, "details-throttle", "2000/20s", "graphsim -throttle of the details scenario (Intune's 2,000 requests per 20 s per app)")
	flag.StringVar(&o.details.apiVersion, "details-api-version", "v1.0", "INTUNE_API_VERSION of the details scenario")
	var detailsMemorySizes string
	flag.StringVar(&detailsMemorySizes, "details-memory-sizes", "10000,100000,1000000", "tenant sizes of the details scenario's memory runs, unthrottled (empty: none)")
	flag.BoolVar(&o.details.only, "details-only", false, "run the details scenario alone and replace only its section of -results (and not -svg)")
	var stateSizes, stateDevices, stateConfigs string
	flag.BoolVar(&o.state.only, "state-only", false, "run the state scenario alone (the shipped apps configs twice, against -state-sizes devices) and replace only its section of -results")
	flag.StringVar(&stateSizes, "state-sizes", "10000,100000", "tenant sizes (devices) of the state scenario")
	flag.StringVar(&stateDevices, "state-devices", "10000,100000,1000000", "tenant sizes of the state scenario's device runs (details, state in PostgreSQL; empty: none)")
	flag.IntVar(&o.state.apps, "state-apps", 60000, "detected apps of the state scenario")
	flag.IntVar(&o.state.perDevice, "state-apps-per-device", 150, "graphsim -apps-per-device of the state scenario")
	flag.StringVar(&stateConfigs, "state-configs", "apps-sqlite.yaml,apps-postgres.yaml", "shipped configs of the state scenario")
	flag.StringVar(&o.resultsPath, "results", "RESULTS.md", "where to write the Markdown results")
	flag.StringVar(&o.svgPath, "svg", "results.svg", "where to write the chart")
	flag.Parse()

	var err error
	if o.sizes, err = parseSizes(sizes); err != nil {
		fatalf("-sizes: %v", err)
	}
	if o.details.memorySizes, err = parseSizes(detailsMemorySizes); err != nil {
		fatalf("-details-memory-sizes: %v", err)
	}
	if o.runs < 1 {
		fatalf("-runs must be at least 1")
	}
	if o.state.sizes, err = parseSizes(stateSizes); err != nil {
		fatalf("-state-sizes: %v", err)
	}
	if o.state.devices, err = parseSizes(stateDevices); err != nil {
		fatalf("-state-devices: %v", err)
	}
	o.state.configs = strings.Split(stateConfigs, ",")
	o.commandLine = invocation()
	if o.state.only {
		if err := runStateOnly(&o); err != nil {
			fatalf("%v", err)
		}
		return
	}
	if err := run(&o); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "\nbench: FAILED: "+format+"\n", args...)
	os.Exit(1)
}

func parseSizes(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(strings.ReplaceAll(f, "_", "")); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive number of devices", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// invocation is the command to quote in RESULTS.md: make bench and its
// BENCH_ARGS when started by the Makefile, else this command line.
func invocation() string {
	if args, ok := os.LookupEnv("BENCH_ARGS"); ok {
		if args = strings.TrimSpace(args); args != "" {
			return "make bench BENCH_ARGS='" + args + "'"
		}
		return "make bench"
	}
	return "cd bench && go run ./cmd/benchrun " + strings.Join(os.Args[1:], " ")
}

func run(o *options) error {
	progs, err := selectPrograms(programs(), o.skip)
	if err != nil {
		return err
	}
	var destProgs []program
	if o.destinations > 0 {
		if destProgs, err = selectPrograms(destinationPrograms(), o.skip); err != nil {
			return err
		}
	}
	if o.apps.only && o.details.only {
		return fmt.Errorf("-apps-only and -details-only: pick one")
	}
	if o.apps.only {
		progs, destProgs, o.idle, o.details.devices = nil, nil, false, 0
		if o.apps.devices <= 0 {
			return fmt.Errorf("-apps-only with -apps-devices %d: nothing to run", o.apps.devices)
		}
	}
	if o.details.only {
		progs, destProgs, o.idle, o.apps.devices = nil, nil, false, 0
		if o.details.devices <= 0 && len(o.details.memorySizes) == 0 {
			return fmt.Errorf("-details-only with -details-devices %d and no -details-memory-sizes: nothing to run", o.details.devices)
		}
	}
	apps, err := newAppsScenario(o.apps, o.skip)
	if err != nil {
		return err
	}
	details, err := newDetailsScenario(o.details)
	if err != nil {
		return err
	}
	if len(progs) == 0 && len(destProgs) == 0 && apps == nil && details == nil {
		return fmt.Errorf("every program is skipped")
	}
	ps := &paths{
		binary:   filepath.Join(o.repo, "bin", "intune-benthos"),
		pgServer: o.pgServer,
	}
	if ps.repo, err = filepath.Abs(o.repo); err != nil {
		return err
	}
	simBin := filepath.Join(o.repo, "bin", "graphsim")
	for _, b := range []string{ps.binary, simBin} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%v: run `make build` first (make bench does)", err)
		}
	}
	if ps.binary, err = filepath.Abs(ps.binary); err != nil {
		return err
	}
	peers := append(append([]program(nil), progs...), destProgs...)
	if apps != nil {
		peers = append(peers, apps.programs...)
	}
	if err := buildPeers(o, ps, peers); err != nil {
		return err
	}
	o.buildNote = buildNote(o.repo)

	tmp, err := os.MkdirTemp("", "intune-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ps.tmp = tmp

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	var scenarios []*scenario
	if o.idle {
		var idleProgs []program
		for _, p := range progs {
			if p.name == "intune-drop" || p.name == "floor" {
				idleProgs = append(idleProgs, p)
			}
		}
		if len(idleProgs) > 0 {
			scenarios = append(scenarios, &scenario{devices: 0, idle: true, programs: idleProgs})
		}
	}
	if len(progs) > 0 {
		for _, n := range o.sizes {
			scenarios = append(scenarios, &scenario{devices: n, programs: progs})
		}
		if o.latencySize > 0 && o.latency > 0 {
			scenarios = append(scenarios, &scenario{devices: o.latencySize, latency: o.latency, programs: progs})
		}
	}
	if len(destProgs) > 0 {
		scenarios = append(scenarios, &scenario{devices: o.destinations, dest: true, programs: destProgs})
	}

	o.started = time.Now()
	o.loadBefore = loadAverage()
	if len(scenarios) > 0 {
		fmt.Printf("bench: %d scenarios, %d run(s) each, programs: %s\n", len(scenarios), o.runs, programNames(append(append([]program(nil), progs...), destProgs...)))
	}
	if apps != nil {
		fmt.Printf("bench: the detected-apps scenario, %d run(s), programs: %s\n", apps.o.runs, programNames(apps.programs))
	}
	for _, sc := range scenarios {
		if err := runScenario(ctx, o, ps, simBin, sc); err != nil {
			return err
		}
	}
	var appsSection string
	if apps != nil {
		apps.commandLine, apps.buildNote = o.commandLine, "`bin/intune-benthos` and `bin/graphsim` from `make build`, "+o.buildNote
		if o.repo != ".." {
			apps.buildNote = "`bin/intune-benthos` and `bin/graphsim` built by `make build` in `" + ps.repo + "`, " + o.buildNote
		}
		if err := runAppsScenario(ctx, ps, simBin, apps, o.timeout); err != nil {
			return err
		}
		appsSection = renderApps(apps)
	}
	var detailsSection, detailsMemorySection string
	if details != nil {
		details.command, details.build = o.commandLine, "`bin/intune-benthos` and `bin/graphsim` from `make build`, "+o.buildNote
		if err := runDetailsScenario(ctx, ps, simBin, details, o.timeout); err != nil {
			return err
		}
		detailsSection, detailsMemorySection = renderDetails(details), renderDetailsMemory(details)
	}
	o.finished = time.Now()
	o.loadAfter = loadAverage()

	if len(scenarios) == 0 {
		// A scenario alone: its section replaces the previous one, the
		// other scenarios' results stay as they were.
		existing, err := os.ReadFile(o.resultsPath)
		if err != nil && !os.IsNotExist(err) {
			return err
		}
		md := spliceScenarios(string(existing), appsSection, detailsSection, detailsMemorySection)
		if err := os.WriteFile(o.resultsPath, []byte(md), 0o644); err != nil {
			return err
		}
		fmt.Printf("\nbench: done in %s; wrote its section of %s\n", o.finished.Sub(o.started).Round(time.Second), o.resultsPath)
		return nil
	}
	md := spliceScenarios(renderMarkdown(o, scenarios), appsSection, detailsSection, detailsMemorySection)
	if err := os.WriteFile(o.resultsPath, []byte(md), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(o.svgPath, []byte(renderSVG(o, scenarios)), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nbench: done in %s; wrote %s and %s\n", o.finished.Sub(o.started).Round(time.Second), o.resultsPath, o.svgPath)
	return nil
}

// spliceScenarios puts the sections of the scenarios that write one of
// their own (the detected-apps scenario, the details scenario and its
// memory runs; empty when not run) into md, each in place of its previous
// one.
func spliceScenarios(md, apps, details, detailsMemory string) string {
	for _, sec := range []struct{ text, begin, end string }{
		{apps, appsBegin, appsEnd}, {details, detailsBegin, detailsEnd}, {detailsMemory, detailsMemoryBegin, detailsMemoryEnd},
	} {
		if sec.text != "" {
			md = spliceSection(md, sec.text, sec.begin, sec.end)
		}
	}
	return md
}

// buildPeers builds the floor and the msgraph program (when they run) into
// bench/bin; the Go build cache makes this quick after the first time
// (msgraph-sdk-go takes a few minutes to compile cold).
func buildPeers(o *options, ps *paths, progs []program) error {
	binDir, err := filepath.Abs(filepath.Join(o.benchDir, "bin"))
	if err != nil {
		return err
	}
	ps.floor = filepath.Join(binDir, "floor")
	ps.msgraph = filepath.Join(binDir, "msgraph")
	ps.sqliteFloor = filepath.Join(binDir, "sqlitefloor")
	ps.pgFloor = filepath.Join(binDir, "pgfloor")
	ps.naiveApps = filepath.Join(binDir, "naiveapps")
	pkgs := map[string]bool{}
	for _, p := range progs {
		switch p.name {
		case "floor", "msgraph":
			pkgs["./cmd/"+p.name] = true
		case "sqlite-floor":
			pkgs["./cmd/sqlitefloor"] = true
		case "pg-copy-floor":
			pkgs["./cmd/pgfloor"] = true
		case appsNaive:
			pkgs["./cmd/naiveapps"] = true
		}
		if p.before != nil {
			pkgs["./cmd/floor"] = true // dumps the devices the floors load
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	var list []string
	for pkg := range pkgs {
		list = append(list, pkg)
	}
	sort.Strings(list)
	fmt.Printf("bench: building %s (msgraph-sdk-go takes minutes the first time)\n", strings.Join(list, " "))
	cmd := exec.Command(o.goBin, append([]string{"build", "-trimpath", "-o", binDir + "/"}, list...)...)
	cmd.Dir = o.benchDir
	// sqlitefloor is the C SQLite library: cgo, whatever the Makefile says.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the peers: %v", err)
	}
	return nil
}

func runScenario(ctx context.Context, o *options, ps *paths, simBin string, sc *scenario) error {
	fmt.Printf("\n== %s\n", sc.title())
	s, err := startSim(simBin, sc.devices, sc.latency, ps.tmp)
	if err != nil {
		return err
	}
	defer s.stop()
	sc.samples = map[string][]sample{}
	if sc.dest {
		ps.url = s.url
		if err := dumpDevices(ps, s.url); err != nil {
			return err
		}
	}
	// Interleaved: every program once, then every program again, so that
	// noise on the machine spreads over all of them.
	for r := 1; r <= o.runs; r++ {
		for _, p := range sc.programs {
			if err := ctx.Err(); err != nil {
				return err
			}
			smp, err := runOnce(ctx, p, ps, s.url, sc.devices, o.timeout)
			if err != nil {
				return fmt.Errorf("%s, run %d: %v", sc.title(), r, err)
			}
			sc.samples[p.name] = append(sc.samples[p.name], smp)
			fmt.Printf("  run %d/%d %-14s cpu %7.2fs  wall %7.2fs  peak RSS %7.1f MB\n",
				r, o.runs, p.name, smp.cpu, smp.wall, float64(smp.rssKB)/1024)
		}
	}
	return nil
}

// summary is the median of a program's samples, metric by metric.
type summary struct {
	cpu, wall, rssMB, outMB float64
	n                       int
}

func summarize(ss []sample) summary {
	var cpu, wall, rss, out []float64
	for _, s := range ss {
		cpu = append(cpu, s.cpu)
		wall = append(wall, s.wall)
		rss = append(rss, float64(s.rssKB)/1024)
		out = append(out, float64(s.outBytes)/(1<<20))
	}
	return summary{cpu: median(cpu), wall: median(wall), rssMB: median(rss), outMB: median(out), n: len(ss)}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// buildNote says which commit the binaries under test were built from.
func buildNote(repo string) string {
	out, err := exec.Command("git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown commit"
	}
	note := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		note += " (work tree with uncommitted changes)"
	}
	return note
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
