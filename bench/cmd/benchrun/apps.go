package main

// The detected-apps scenario: intune_detected_apps joining a tenant's
// software inventory (every app, every (device, app) pair) against a
// graphsim that throttles like Intune (a token bucket of 2,000 requests
// per 20 s per app) and waits a realistic latency before every page, with
// each strategy of the input, beside the sequential per-app loop users
// write first (bench/cmd/naiveapps).
//
// Graph requests and 429s are counted by graphsim itself: it runs with -v,
// one log line per request, and each run's lines are those written between
// its start and its end. What the binary emitted is counted from its file
// output and checked against graphsim's ground truth, computed by benchrun
// from the same configuration (internal/graphsim is deterministic).

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/intune-benthos/intune-benthos/bench/internal/naiveapps"
	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// appsOptions are the -apps-* flags.
type appsOptions struct {
	devices   int           // 0: no detected-apps scenario
	apps      int           // detected apps in the tenant
	perDevice int           // graphsim -apps-per-device
	latency   time.Duration // before every Graph page
	throttle  string        // graphsim -throttle
	naive     int           // apps the naive loop walks (0: all)
	runs      int
	only      bool // only this scenario; splice its section into the results
}

// The programs of the scenario, by the names -skip knows.
const (
	appsPerApp    = "per_app"
	appsPerDevice = "per_device"
	appsAuto      = "auto"
	appsNaive     = "naive-apps"
)

func appsPrograms() []program {
	return []program{
		{name: appsPerApp, what: "`intune-benthos`, `intune_detected_apps` input with `strategy: per_app`, `file` output (codec `lines`), every other field at its default (`max_requests_per_second: 100`, `max_concurrency: 16`)"},
		{name: appsPerDevice, what: "the same with `strategy: per_device`"},
		{name: appsAuto, what: "the same with `strategy: auto` (the default)"},
		{name: appsNaive, what: "the sequential loop users write first (`bench/cmd/naiveapps`): x/oauth2 client credentials, list `detectedApps`, then for each app, one request at a time, `GET detectedApps/{id}/managedDevices?$select=id,deviceName` (every page), waiting `Retry-After` on 429"},
	}
}

// appsScenario is the scenario, its ground truth and its samples.
type appsScenario struct {
	o        appsOptions
	throttle graphsim.Throttle
	programs []program
	truth    appsTruth
	samples  map[string][]appsSample

	commandLine, buildNote string
	started, finished      time.Time
	loadBefore, loadAfter  string
}

// appsTruth is what graphsim serves, computed from the same configuration
// as the graphsim the runs talk to (in a child process: computeTruth).
type appsTruth struct {
	Apps, Pairs         int
	AppsHash, PairsHash uint64 // order-independent: sums of FNV-64a
	AppsOver1000        int    // apps on more than a page of devices
	Pages               graphsim.PageCounts
	PerApp, PerDevice   int // Graph requests of each strategy: listings and joins
	AutoChoice          string
	NaiveApps           int // apps the naive loop walks
	NaiveDeviceCount    int // their pairs
	NaiveRequests       int // the naive loop's requests: listing and joins
}

// appsSample is one run.
type appsSample struct {
	sample
	requests, throttled int // Graph requests and 429s, counted by graphsim
	// From the binary's log (-1: not found): its own count of requests
	// and of 429 or 503 answers, and what auto chose.
	clientRequests, clientThrottled int
	chosen                          string
	apps, pairs                     int // emitted, counted in the output
	naive                           *naiveapps.Summary
}

func (sc *appsScenario) title() string {
	return fmt.Sprintf("Detected apps: %s devices, %s apps, throttle %s, %s latency",
		thousands(sc.o.devices), thousands(sc.o.apps), sc.throttle, sc.o.latency)
}

// rate is the throttle's allowed rate, requests per second.
func (sc *appsScenario) rate() float64 {
	return float64(sc.throttle.Requests) / sc.throttle.Window.Seconds()
}

func (sc *appsScenario) simConfig() graphsim.Config {
	return graphsim.Config{
		Devices:       sc.o.devices,
		Seed:          1,
		DetectedApps:  sc.o.apps,
		AppsPerDevice: sc.o.perDevice,
		Throttle:      sc.throttle,
		Latency:       sc.o.latency,
	}
}

func (sc *appsScenario) simArgs() []string {
	cfg := sc.simConfig()
	args := []string{"-addr", "127.0.0.1:0", "-v", "-seed", strconv.FormatInt(cfg.Seed, 10),
		"-devices", strconv.Itoa(cfg.Devices), "-apps", strconv.Itoa(cfg.DetectedApps),
		"-apps-per-device", strconv.Itoa(cfg.AppsPerDevice), "-throttle", sc.throttle.String()}
	if cfg.Latency > 0 {
		args = append(args, "-latency", cfg.Latency.String())
	}
	return args
}

func newAppsScenario(o appsOptions, skip string) (*appsScenario, error) {
	if o.devices <= 0 {
		return nil, nil
	}
	if o.apps < 1 {
		return nil, fmt.Errorf("-apps must be at least 1 with -apps-devices %d", o.devices)
	}
	if o.runs < 1 {
		return nil, fmt.Errorf("-apps-runs must be at least 1")
	}
	t, err := graphsim.ParseThrottle(o.throttle)
	if err != nil {
		return nil, fmt.Errorf("-apps-throttle: %v", err)
	}
	if t.Requests == 0 {
		return nil, fmt.Errorf("-apps-throttle: the scenario measures against a throttle's floor, give one (e.g. 2000/20s)")
	}
	progs, err := selectPrograms(appsPrograms(), skip)
	if err != nil || len(progs) == 0 {
		return nil, err
	}
	return &appsScenario{o: o, throttle: t, programs: progs}, nil
}

// The ground truth is computed in a child process (benchrun itself, run as
// "benchrun apps-truth CONFIG"): a child of this process starts as a vfork
// sharing its memory, so on Linux every program measured afterwards would
// report this process' peak RSS (the tenant's million pairs) as its own
// ru_maxrss.
const appsTruthCommand = "apps-truth"

// appsTruthMain is the child: it reads an appsTruthRequest from its
// argument and writes the truth to stdout.
func appsTruthMain(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: benchrun %s '{\"config\":...,\"naive\":N}'", appsTruthCommand)
	}
	var req appsTruthRequest
	if err := json.Unmarshal([]byte(args[0]), &req); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(computeTruth(req.Config, req.Naive))
}

type appsTruthRequest struct {
	Config graphsim.Config
	Naive  int
}

// computeTruth runs appsTruthMain in a child process.
func (sc *appsScenario) computeTruth() error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	req, err := json.Marshal(appsTruthRequest{Config: sc.simConfig(), Naive: sc.o.naive})
	if err != nil {
		return err
	}
	cmd := exec.Command(self, appsTruthCommand, string(req))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("computing graphsim's ground truth: %v", err)
	}
	if err := json.Unmarshal(out, &sc.truth); err != nil {
		return fmt.Errorf("computing graphsim's ground truth: %v", err)
	}
	return nil
}

// computeTruth builds graphsim's tenant in process: the apps and pairs every
// run must emit, and the requests each way of reading them takes.
func computeTruth(cfg graphsim.Config, naive int) appsTruth {
	s := graphsim.New(cfg)
	var truth appsTruth
	t := &truth
	apps := s.DetectedApps()
	t.Apps = len(apps)
	for _, a := range apps {
		t.AppsHash += hash64(a.ID)
		if a.DeviceCount > graphsim.DefaultAppPageSize {
			t.AppsOver1000++
		}
	}
	pairs := s.DeviceAppPairs()
	t.Pairs = len(pairs)
	for _, p := range pairs {
		t.PairsHash += hash64(p.DeviceID + "\x00" + p.AppID)
	}
	// The input asks $top=1000 of the relationships and lists the apps
	// and the devices at graphsim's defaults, also 1,000.
	t.Pages = s.PageCounts(0)
	t.PerApp = t.Pages.DetectedApps + t.Pages.AppDevices
	t.PerDevice = t.Pages.DetectedApps + t.Pages.ManagedDevices + t.Pages.DeviceApps
	// auto lists the devices whichever it takes.
	t.AutoChoice = appsPerDevice
	if t.PerApp-t.Pages.DetectedApps <= t.Pages.DeviceApps {
		t.AutoChoice = appsPerApp
	}
	t.NaiveApps = len(apps)
	if naive > 0 && naive < len(apps) {
		t.NaiveApps = naive
	}
	t.NaiveRequests = t.Pages.DetectedApps
	for _, a := range apps[:t.NaiveApps] {
		t.NaiveDeviceCount += a.DeviceCount
		t.NaiveRequests += max(1, (a.DeviceCount+graphsim.DefaultAppPageSize-1)/graphsim.DefaultAppPageSize)
	}
	return truth
}

// autoRequests is what auto sends: both listings, then its choice's joins.
func (t appsTruth) autoRequests() int {
	if t.AutoChoice == appsPerApp {
		return t.PerApp + t.Pages.ManagedDevices
	}
	return t.PerDevice
}

// expected is the Graph requests a program needs, 429s aside.
func (t appsTruth) expected(name string) int {
	switch name {
	case appsPerApp:
		return t.PerApp
	case appsPerDevice:
		return t.PerDevice
	case appsAuto:
		return t.autoRequests()
	case appsNaive:
		return t.NaiveRequests
	}
	return 0
}

func hash64(s string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, s)
	return h.Sum64()
}

func runAppsScenario(ctx context.Context, ps *paths, simBin string, sc *appsScenario, timeout time.Duration) error {
	fmt.Printf("\n== %s\n", sc.title())
	t0 := time.Now()
	if err := sc.computeTruth(); err != nil {
		return err
	}
	t := sc.truth
	fmt.Printf("  ground truth (%s): %s apps, %s pairs; requests per_app %s, per_device %s, auto %s (%s)\n",
		time.Since(t0).Round(time.Millisecond), thousands(t.Apps), thousands(t.Pairs),
		thousands(t.PerApp), thousands(t.PerDevice), thousands(t.autoRequests()), t.AutoChoice)

	s, err := startSimArgs(simBin, sc.simArgs(), ps.tmp, "graphsim-apps.log")
	if err != nil {
		return err
	}
	defer s.stop()
	// Build graphsim's inventory before the first run times anything.
	if err := warmApps(ctx, s.url); err != nil {
		return fmt.Errorf("warming graphsim up: %v", err)
	}
	sc.samples = map[string][]appsSample{}
	sc.started = time.Now()
	sc.loadBefore = loadAverage()
	for r := 1; r <= sc.o.runs; r++ {
		for _, p := range sc.programs {
			// graphsim's bucket starts full: give it a window to fill
			// again after the previous run (or the warm-up).
			if err := sleepCtx(ctx, sc.throttle.Window+time.Second); err != nil {
				return err
			}
			smp, err := runAppsOnce(ctx, sc, p, ps, s, timeout)
			if err != nil {
				return fmt.Errorf("%s, %s, run %d: %v", sc.title(), p.name, r, err)
			}
			sc.samples[p.name] = append(sc.samples[p.name], smp)
			fmt.Printf("  run %d/%d %-11s wall %7.2fs  requests %6d  429s %4d  cpu %6.2fs  peak RSS %6.1f MB\n",
				r, sc.o.runs, p.name, smp.wall, smp.requests, smp.throttled, smp.cpu, float64(smp.rssKB)/1024)
		}
	}
	sc.finished = time.Now()
	sc.loadAfter = loadAverage()
	return nil
}

// warmApps gets a token and reads one app and its devices, so that graphsim
// builds its inventory now rather than inside the first timed run.
func warmApps(ctx context.Context, base string) error {
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID},
		"client_secret": {clientSecret}, "scope": {graphScope}}
	resp, err := http.PostForm(base+"/"+tenantID+"/oauth2/v2.0/token", form)
	if err != nil {
		return err
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || tok.AccessToken == "" {
		return fmt.Errorf("no token from graphsim (%v)", err)
	}
	get := func(u string, v any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	var apps struct {
		Value []struct {
			ID string `json:"id"`
		} `json:"value"`
	}
	if err := get(base+"/v1.0/deviceManagement/detectedApps?$top=1", &apps); err != nil {
		return err
	}
	if len(apps.Value) == 0 {
		return errors.New("graphsim lists no detected app")
	}
	var devices json.RawMessage
	return get(base+"/v1.0/deviceManagement/detectedApps/"+url.PathEscape(apps.Value[0].ID)+"/managedDevices?$top=1", &devices)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// appsConfig is binaryCommon's but for the log level: readAppsLog reads the
// input's INFO lines.
func appsConfig(url, strategy, out string) string {
	return fmt.Sprintf(`http: { address: 127.0.0.1:0 }
logger: { level: INFO }
input:
  intune_detected_apps:
    tenant_id: %s
    client_id: %s
    client_secret: %s
    login_url: %s
    graph_url: %s
    strategy: %s
`, tenantID, clientID, clientSecret, url, url, strategy) + fileOutput(out)
}

// runAppsOnce runs one program, counts graphsim's log lines of the run and
// checks what the program read.
func runAppsOnce(ctx context.Context, sc *appsScenario, p program, ps *paths, s *sim, timeout time.Duration) (appsSample, error) {
	out := filepath.Join(ps.tmp, "apps-"+p.name+".out")
	_ = os.Remove(out)
	defer os.Remove(out)
	var argv []string
	if p.name == appsNaive {
		argv = append(append([]string{ps.naiveApps}, graphFlags(s.url)...), "-apps", strconv.Itoa(sc.truth.NaiveApps))
	} else {
		cfg, err := writeConfig(ps.tmp, "apps-"+p.name+".yaml", appsConfig(s.url, p.name, out))
		if err != nil {
			return appsSample{}, err
		}
		argv = []string{ps.binary, "-c", cfg}
	}
	logPath := filepath.Join(ps.tmp, "apps-"+p.name+".log")
	from, err := fileSize(s.log)
	if err != nil {
		return appsSample{}, err
	}
	var naiveOut strings.Builder
	var stdout io.Writer // nil: into the log
	if p.name == appsNaive {
		stdout = &naiveOut
	}
	run, err := measure(ctx, argv, nil, stdout, logPath, timeout)
	if err != nil {
		return appsSample{}, err
	}
	smp := appsSample{sample: run, clientRequests: -1, clientThrottled: -1}

	// graphsim logs a request once it has answered it: let the last lines land.
	time.Sleep(500 * time.Millisecond)
	if smp.requests, smp.throttled, err = countGraphRequests(s.log, from); err != nil {
		return smp, err
	}
	t := sc.truth
	if p.name == appsNaive {
		var n naiveapps.Summary
		if err := json.Unmarshal([]byte(naiveOut.String()), &n); err != nil {
			return smp, fmt.Errorf("reading its summary %q: %v", naiveOut.String(), err)
		}
		smp.naive = &n
		smp.apps, smp.pairs = n.AppsListed, n.Pairs
		if n.AppsListed != t.Apps || n.AppsWalked != t.NaiveApps || n.Pairs != t.NaiveDeviceCount || n.DeviceCountSum != t.NaiveDeviceCount {
			return smp, fmt.Errorf("listed %d apps and read %d pairs of %d apps (deviceCounts %d); graphsim has %d apps and %d pairs on the first %d",
				n.AppsListed, n.Pairs, n.AppsWalked, n.DeviceCountSum, t.Apps, t.NaiveDeviceCount, t.NaiveApps)
		}
		return smp, nil
	}
	smp.clientRequests, smp.clientThrottled, smp.chosen = readAppsLog(logPath)
	apps, pairs, appsHash, pairsHash, err := countAppsOutput(out)
	if err != nil {
		return smp, err
	}
	smp.apps, smp.pairs = apps, pairs
	if apps != t.Apps || pairs != t.Pairs || appsHash != t.AppsHash || pairsHash != t.PairsHash {
		return smp, fmt.Errorf("emitted %d apps and %d pairs (same sets as graphsim's: apps %v, pairs %v); graphsim has %d apps and %d pairs (output %s, log %s)",
			apps, pairs, appsHash == t.AppsHash, pairsHash == t.PairsHash, t.Apps, t.Pairs, out, logPath)
	}
	return smp, nil
}

func fileSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// countGraphRequests counts the Graph requests (paths under /v1.0/ or
// /beta/: not the token endpoint) that graphsim -v logged from offset on,
// and how many it answered 429. A line reads
// "2026/11/30 22:46:01.123456 GET /v1.0/deviceManagement/detectedApps 200 1234B 50.1ms".
func countGraphRequests(path string, offset int64) (requests, throttled int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		if p := fields[3]; !strings.HasPrefix(p, "/v1.0/") && !strings.HasPrefix(p, "/beta/") {
			continue
		}
		requests++
		if fields[4] == "429" {
			throttled++
		}
	}
	return requests, throttled, sc.Err()
}

var (
	appsFinalLine = regexp.MustCompile(`(\d+) requests, (\d+) answered 429 or 503`)
	appsChoice    = regexp.MustCompile(`joining (per_app|per_device)`)
)

// readAppsLog finds, in the binary's INFO log, its own count of requests
// and of 429s or 503s, and what auto chose.
func readAppsLog(path string) (requests, throttled int, chosen string) {
	requests, throttled = -1, -1
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	if m := appsFinalLine.FindAllSubmatch(b, -1); len(m) > 0 {
		last := m[len(m)-1]
		requests, _ = strconv.Atoi(string(last[1]))
		throttled, _ = strconv.Atoi(string(last[2]))
	}
	if m := appsChoice.FindSubmatch(b); m != nil {
		chosen = string(m[1])
	}
	return
}

// countAppsOutput counts the apps and pairs of an output file, one JSON
// object per line: a pair has a deviceId, an app an id. The hashes are
// order-independent sums over ids, to compare with the ground truth's.
func countAppsOutput(path string) (apps, pairs int, appsHash, pairsHash uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	var v struct {
		ID       string `json:"id"`
		DeviceID string `json:"deviceId"`
		AppID    string `json:"appId"`
	}
	line := 0
	for sc.Scan() {
		line++
		v.ID, v.DeviceID, v.AppID = "", "", ""
		if err = json.Unmarshal(sc.Bytes(), &v); err != nil {
			err = fmt.Errorf("%s: line %d: %v", path, line, err)
			return
		}
		switch {
		case v.DeviceID != "" && v.AppID != "":
			pairs++
			pairsHash += hash64(v.DeviceID + "\x00" + v.AppID)
		case v.ID != "":
			apps++
			appsHash += hash64(v.ID)
		default:
			err = fmt.Errorf("%s: line %d is neither an app nor a pair: %.100s", path, line, sc.Bytes())
			return
		}
	}
	err = sc.Err()
	return
}

// appsSummary is the median of a program's samples.
type appsSummary struct {
	wall, cpu, rssMB    float64
	requests, throttled float64
	naiveLoop           float64 // naive: seconds of the per-app loop
	naiveWalked         int
}

func summarizeApps(ss []appsSample) appsSummary {
	var wall, cpu, rss, req, thr, loop []float64
	walked := 0
	for _, s := range ss {
		wall = append(wall, s.wall)
		cpu = append(cpu, s.cpu)
		rss = append(rss, float64(s.rssKB)/1024)
		req = append(req, float64(s.requests))
		thr = append(thr, float64(s.throttled))
		if s.naive != nil {
			loop = append(loop, s.naive.LoopSeconds)
			walked = s.naive.AppsWalked
		}
	}
	return appsSummary{wall: median(wall), cpu: median(cpu), rssMB: median(rss), requests: median(req),
		throttled: median(thr), naiveLoop: median(loop), naiveWalked: walked}
}

// naiveAllApps extrapolates the naive loop to every app: the measured
// wall plus the per-app loop's time per app for the apps it did not walk.
func (sc *appsScenario) naiveAllApps(s appsSummary) (wall float64, extrapolated bool) {
	if s.naiveWalked <= 0 || s.naiveWalked >= sc.truth.Apps {
		return s.wall, false
	}
	return s.wall + s.naiveLoop/float64(s.naiveWalked)*float64(sc.truth.Apps-s.naiveWalked), true
}

const (
	appsBegin = "<!-- benchrun detected-apps scenario: begin -->"
	appsEnd   = "<!-- benchrun detected-apps scenario: end -->"
)

func renderApps(sc *appsScenario) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	t := sc.truth
	rate := sc.rate()

	w("%s\n## %s\n\n", appsBegin, sc.title())
	w("`intune_detected_apps` reads the tenant's software inventory: every detected app, and every (device, app) pair, ")
	w("which Graph gives one app (`detectedApps/{id}/managedDevices`) or one device (beta `managedDevices/{id}/detectedApps`) at a time. ")
	w("The tenant: graphsim `%s`: %s devices, %s detected apps ((name, version) pairs), **%s (device, app) pairs** ",
		strings.Join(sc.simArgs(), " "), thousands(sc.o.devices), thousands(t.Apps), thousands(t.Pairs))
	w("(%.0f per device on average, %d apps on more than one page of 1,000 devices). ", float64(t.Pairs)/float64(max(1, sc.o.devices)), t.AppsOver1000)
	w("graphsim waits **%s before every Graph page** (a round trip to Graph and its own time), and throttles each app ", sc.o.latency)
	w("like Intune: a token bucket of %s requests refilled at %s per %s (**%.0f requests/s**), starting full; past it, 429 with `Retry-After`.\n\n",
		thousands(sc.throttle.Requests), thousands(sc.throttle.Requests), sc.throttle.Window, rate)
	w("**Requests** and **429s** are counted by graphsim (one `-v` log line per request; Graph requests only, not the token endpoint). ")
	w("**Floor** is the strategy's requests (those answered, 429s left out) ÷ %.0f/s, the least time the throttle's rate allows; ", rate)
	w("since the bucket starts full, a client could in theory finish %s requests sooner: graphsim's `Throttle.Floor`, ", thousands(sc.throttle.Requests))
	w("(requests − %s) ÷ %.0f/s, is shown as *bucket floor*. ", thousands(sc.throttle.Requests), rate)
	w("Wall is start to exit of the process (token, listings, joins, every message written, exit). ")
	w("Every run's output was checked against graphsim's ground truth: exactly %s apps and %s pairs, the same ids ",
		thousands(t.Apps), thousands(t.Pairs))
	w("(order-independent hashes of every app id and every (device id, app id)).\n\n")

	w("| program | what it is |\n|---|---|\n")
	for _, p := range sc.programs {
		w("| `%s` | %s |\n", p.name, p.what)
	}
	w("\n| | |\n|---|---|\n")
	w("| date | %s |\n", sc.started.UTC().Format("2006-01-02 15:04 MST"))
	w("| command | `%s` |\n", sc.commandLine)
	w("| binaries | %s |\n", sc.buildNote)
	w("| runs | %d per program, %s |\n", sc.o.runs, map[bool]string{true: "median shown", false: "one run, no median"}[sc.o.runs > 1])
	w("| load average | %s before, %s after |\n", sc.loadBefore, sc.loadAfter)
	w("| duration | %s, %s s between runs for the bucket to fill again |\n\n", sc.finished.Sub(sc.started).Round(time.Second), strconv.Itoa(int((sc.throttle.Window + time.Second).Seconds())))

	w("| strategy | requests | 429s | wall s | floor s (requests ÷ %.0f/s) | **wall / floor** | bucket floor s | messages (apps + pairs) | CPU s | peak RSS MB |\n", rate)
	w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var auto *appsSummary
	for _, p := range sc.programs {
		if p.name == appsNaive {
			continue
		}
		s := summarizeApps(sc.samples[p.name])
		answered := s.requests - s.throttled
		floor := answered / rate
		bucket := sc.throttle.Floor(int(answered)).Seconds()
		name := "`" + p.name + "`"
		if p.name == appsAuto {
			auto = &s
			if ss := sc.samples[p.name]; len(ss) > 0 && ss[0].chosen != "" {
				name += " (chose `" + ss[0].chosen + "`)"
			}
		}
		w("| %s | %s | %s | %.1f | %.1f | **%.2f** | %.1f | %s + %s | %.1f | %.1f |\n", name,
			thousands(int(s.requests)), thousands(int(s.throttled)), s.wall, floor, s.wall/floor, bucket,
			thousands(t.Apps), thousands(t.Pairs), s.cpu, s.rssMB)
	}
	naive, hasNaive := sc.samples[appsNaive]
	var (
		ns                appsSummary // the naive loop's
		naiveAll          float64     // its wall for every app
		naiveExtrapolated bool
	)
	if hasNaive {
		ns = summarizeApps(naive)
		naiveAll, naiveExtrapolated = sc.naiveAllApps(ns)
		s, all := ns, naiveAll
		// The floor of the whole loop, every app: its requests are the
		// per_app strategy's.
		allFloor := float64(t.PerApp) / rate
		reqs, how, msgs := thousands(int(s.requests)), fmt.Sprintf("%.1f", all), thousands(t.Apps)+" + "+thousands(t.NaiveDeviceCount)
		if naiveExtrapolated {
			reqs = fmt.Sprintf("%s (%s for every app)", reqs, thousands(t.PerApp))
			how = fmt.Sprintf("**%.1f**, extrapolated from %s of %s apps (measured %.1f s)", all,
				thousands(s.naiveWalked), thousands(t.Apps), s.wall)
			msgs = fmt.Sprintf("%s listed + %s pairs of the first %s apps", thousands(t.Apps), thousands(t.NaiveDeviceCount), thousands(s.naiveWalked))
		}
		w("| naive sequential per-app loop (`bench/cmd/naiveapps`) | %s | %s | %s | %.1f | %.2f | %.1f | %s | %.1f | %.1f |\n",
			reqs, thousands(int(s.throttled)), how, allFloor, all/allFloor, sc.throttle.Floor(t.PerApp).Seconds(),
			msgs, s.cpu, s.rssMB)
	}
	w("\n")
	w("Requests each strategy needs, from graphsim's page counts: per_app %s (%d page(s) of apps + %s of their devices), ",
		thousands(t.PerApp), t.Pages.DetectedApps, thousands(t.Pages.AppDevices))
	w("per_device %s (%d + %d page(s) of devices + %s of their apps), auto %s (both listings, then `%s`).",
		thousands(t.PerDevice), t.Pages.DetectedApps, t.Pages.ManagedDevices, thousands(t.Pages.DeviceApps), thousands(t.autoRequests()), t.AutoChoice)
	for _, p := range sc.programs {
		for k, s := range sc.samples[p.name] {
			if got := s.requests - s.throttled; got != t.expected(p.name) {
				w(" **Run %d of `%s` had %s requests answered, not %s.**", k+1, p.name, thousands(got), thousands(t.expected(p.name)))
			}
		}
	}
	w("\n\n")
	if naiveExtrapolated {
		s := ns
		w("The naive loop is requests × latency by construction, so it walked only the first %s of the %s apps "+
			"(%s requests, listing included, %s pairs) and its per-app loop (%.1f s, %.1f ms per app) is extrapolated linearly to every app: "+
			"measured wall + %.1f ms × %s apps not walked. Those first apps take %.1f%% more requests per app than all of them "+
			"(%s for all apps: a per-request extrapolation would give %.1f s).\n\n",
			thousands(s.naiveWalked), thousands(t.Apps), thousands(t.NaiveRequests), thousands(t.NaiveDeviceCount),
			s.naiveLoop, 1000*s.naiveLoop/float64(s.naiveWalked), 1000*s.naiveLoop/float64(s.naiveWalked),
			thousands(t.Apps-s.naiveWalked),
			100*(float64(t.NaiveRequests-t.Pages.DetectedApps)/float64(s.naiveWalked)/(float64(t.Pages.AppDevices)/float64(t.Apps))-1),
			thousands(t.PerApp),
			s.wall+s.naiveLoop/float64(t.NaiveRequests-t.Pages.DetectedApps)*float64(t.PerApp-t.NaiveRequests))
	}
	if auto != nil {
		floor := (auto.requests - auto.throttled) / rate
		ratio := auto.wall / floor
		share := 100 * auto.throttled / max(1, auto.requests)
		w("**Acceptance** (`auto`):\n\n")
		w("- within 1.3× of the throttle floor: %.2f× (%.1f s for a floor of %.1f s): **%s**\n", ratio, auto.wall, floor, pass(ratio <= 1.3))
		if hasNaive && auto.wall > 0 {
			sp := naiveAll / auto.wall
			w("- at least 5× faster than the naive sequential loop: %.1f× (%.1f s against %.1f s): **%s**\n", sp, auto.wall, naiveAll, pass(sp >= 5))
		}
		w("- fewer than 1%% of requests answered 429: %.2f%% (%s of %s): **%s**\n\n", share,
			thousands(int(auto.throttled)), thousands(int(auto.requests)), pass(share < 1))
	}
	w("Every run (wall s / Graph requests / 429s by graphsim / the binary's own count of requests and of 429 or 503 answers / CPU s / peak RSS MB):\n\n")
	for _, p := range sc.programs {
		var runs []string
		for _, s := range sc.samples[p.name] {
			client := "–"
			if s.clientRequests >= 0 {
				client = fmt.Sprintf("%d, %d", s.clientRequests, s.clientThrottled)
			} else if s.naive != nil {
				client = fmt.Sprintf("%d, %d", s.naive.ListRequests+s.naive.LoopRequests, s.naive.Throttled)
			}
			runs = append(runs, fmt.Sprintf("%.2f / %d / %d / %s / %.2f / %.1f", s.wall, s.requests, s.throttled, client, s.cpu, float64(s.rssKB)/1024))
		}
		w("- `%s`: %s\n", p.name, strings.Join(runs, "; "))
	}
	w("\n%s\n", appsEnd)
	return b.String()
}

func pass(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
