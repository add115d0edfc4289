package intune

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// The fault matrix: every misbehaviour of Graph, Entra ID and the network
// that the input must survive (or must stop on, with a clear reason), alone
// and combined, on a tenant of several pages. For each it checks what a user
// would: every device delivered exactly once, throttling waits honoured, and
// the outcome (success, or a recorded failure that makes the process exit 1).

const (
	matrixDevices  = 5000
	matrixPageSize = 500
)

// fastRetries keeps the backoff short so that the matrix runs in seconds;
// Retry-After, which the server dictates, is still honoured in full.
const fastRetries = `  backoff:
    initial_interval: 10ms
    max_interval: 50ms
    max_elapsed_time: 20s
  request_timeout: 1s`

type faultCase struct {
	name   string
	faults []graphsim.Fault
	sim    func(*graphsim.Config)
	extra  []string // more input config lines
	// failWith, when set, is text the recorded failure must hold; the sync
	// must then not complete.
	failWith string
	// waits are Retry-After floors to check between two attempts at a page.
	waits []retryFloor
}

// retryFloor: the attempt after attempt `after` at page must wait floor,
// or, for an HTTP-date Retry-After, not come before notBefore.
type retryFloor struct {
	page, after int
	floor       time.Duration
	notBefore   time.Time
}

func at(page, attempt int, kind graphsim.FaultKind) graphsim.Fault {
	return graphsim.Fault{Page: page, Attempt: attempt, Kind: kind}
}

func retryAfter(page, attempt int, kind graphsim.FaultKind, value string) graphsim.Fault {
	f := at(page, attempt, kind)
	f.RetryAfter = value
	return f
}

func survivableFaults() []faultCase {
	httpDate := func(d time.Duration) string { return time.Now().Add(d).UTC().Format(http.TimeFormat) }
	slow := at(2, 1, graphsim.FaultSlow)
	slow.Delay = 3 * time.Second // beyond request_timeout (1s)
	return []faultCase{
		{name: "429 Retry-After 1.5 s", faults: []graphsim.Fault{retryAfter(3, 1, graphsim.Fault429, "1.5")},
			waits: []retryFloor{{page: 3, after: 1, floor: 1500 * time.Millisecond}}},
		// The date is taken when the case runs: the retry must not come
		// before it (checked against the date itself, not a duration).
		{name: "429 Retry-After HTTP date", sim: func(c *graphsim.Config) {
			c.Faults = []graphsim.Fault{retryAfter(1, 1, graphsim.Fault429, httpDate(2*time.Second))}
		}},
		{name: "429 without Retry-After, three times", faults: []graphsim.Fault{
			at(2, 1, graphsim.Fault429), at(2, 2, graphsim.Fault429), at(2, 3, graphsim.Fault429)}},
		{name: "500", faults: []graphsim.Fault{at(5, 1, graphsim.Fault500)}},
		{name: "502 with an HTML body", faults: []graphsim.Fault{at(6, 1, graphsim.Fault502), at(6, 2, graphsim.Fault502)}},
		{name: "503 Retry-After 0.3 s", faults: []graphsim.Fault{retryAfter(7, 1, graphsim.Fault503, "0.3")},
			waits: []retryFloor{{page: 7, after: 1, floor: 300 * time.Millisecond}}},
		{name: "504", faults: []graphsim.Fault{at(8, 1, graphsim.Fault504)}},
		{name: "response slower than request_timeout", faults: []graphsim.Fault{slow}},
		{name: "truncated body, connection closed", faults: []graphsim.Fault{at(3, 1, graphsim.FaultTruncate), at(3, 2, graphsim.FaultTruncate)}},
		{name: "malformed JSON", faults: []graphsim.Fault{at(9, 1, graphsim.FaultMalformed)}},
		{name: "token revoked (401)", faults: []graphsim.Fault{at(4, 1, graphsim.Fault401)}},
		{name: "token endpoint outage", sim: func(c *graphsim.Config) { c.TokenOutage = 3 }},
		{name: "tokens expire early", sim: func(c *graphsim.Config) {
			c.TokenEnforcedLifetime = 300 * time.Millisecond
			c.Latency = 100 * time.Millisecond
		}},
		{name: "tokens expire early while Graph throttles", sim: func(c *graphsim.Config) {
			c.TokenEnforcedLifetime = 300 * time.Millisecond
			c.Latency = 60 * time.Millisecond
			c.Faults = []graphsim.Fault{at(0, 1, graphsim.Fault429), at(0, 2, graphsim.Fault503)}
		}},
		{name: "everything at once",
			// Not with tokens expiring early: a renewal takes an attempt,
			// which would shift the scripted ones.
			sim: func(c *graphsim.Config) {
				c.TokenOutage = 2
				c.Latency = 50 * time.Millisecond
			},
			faults: []graphsim.Fault{
				slow,
				retryAfter(3, 1, graphsim.Fault429, "1.5"), at(3, 2, graphsim.FaultTruncate),
				at(4, 1, graphsim.Fault401), at(4, 2, graphsim.Fault502),
				at(5, 1, graphsim.Fault500), retryAfter(5, 2, graphsim.Fault503, "0.2"),
				at(6, 1, graphsim.FaultMalformed), at(7, 1, graphsim.Fault504), at(10, 1, graphsim.Fault429),
			},
			waits: []retryFloor{{page: 3, after: 1, floor: 1500 * time.Millisecond}, {page: 5, after: 2, floor: 200 * time.Millisecond}}},
	}
}

func fatalFaults() []faultCase {
	return []faultCase{
		{name: "403 mid-sync", faults: []graphsim.Fault{at(3, 0, graphsim.Fault403)}, failWith: "HTTP 403"},
		{name: "400", faults: []graphsim.Fault{at(2, 0, graphsim.Fault400)}, failWith: "HTTP 400"},
		{name: "404", faults: []graphsim.Fault{at(2, 0, graphsim.Fault404)}, failWith: "HTTP 404"},
		{name: "401 after renewal", faults: []graphsim.Fault{at(2, 0, graphsim.Fault401)}, failWith: "HTTP 401"},
		{name: "nextLink to another host", faults: []graphsim.Fault{at(2, 0, graphsim.FaultForeignNextLink)}, failWith: "another scheme or host"},
		{name: "503 beyond max_elapsed_time", faults: []graphsim.Fault{at(2, 0, graphsim.Fault503)},
			extra: []string{"  backoff:\n    initial_interval: 10ms\n    max_interval: 100ms\n    max_elapsed_time: 1s"}, failWith: "giving up after"},
	}
}

func TestFaultMatrix(t *testing.T) {
	for _, fc := range append(survivableFaults(), fatalFaults()...) {
		t.Run(fc.name, func(t *testing.T) {
			cfg := graphsim.Config{Devices: matrixDevices, Seed: 17, PageSize: matrixPageSize, Faults: fc.faults}
			if fc.sim != nil {
				fc.sim(&cfg)
			}
			sim, url := startSim(t, cfg)
			extra := fc.extra
			if extra == nil {
				extra = []string{fastRetries}
			}
			got, logs, failure := runSync(t, inputYAML(sim, url, "", extra...))
			ids := map[string]int{}
			for _, m := range got {
				ids[deviceID(t, m.body)]++
			}
			for id, n := range ids {
				if n > 1 {
					t.Fatalf("device %s delivered %d times", id, n)
				}
			}
			if fc.failWith != "" {
				checkFailed(t, fc, failure, logs, ids, sim)
				return
			}
			if failure != nil {
				t.Fatalf("the sync failed: %v\n%s", failure, logs)
			}
			for i := 0; i < matrixDevices; i++ {
				if ids[sim.DeviceID(i)] != 1 {
					t.Fatalf("device %d not delivered (%d of %d delivered)\n%s", i, len(ids), matrixDevices, logs)
				}
			}
			checkWaits(t, sim, fc.waits)
			for _, f := range cfg.Faults {
				if at, err := http.ParseTime(f.RetryAfter); err == nil {
					checkWaits(t, sim, []retryFloor{{page: f.Page, after: f.Attempt, notBefore: at}})
				}
			}
			if (len(fc.faults) > 0 || fc.sim != nil) && !strings.Contains(logs, "retrying") {
				t.Errorf("no retry was logged:\n%s", logs)
			}
		})
	}
}

// checkFailed: the sync stopped with the expected reason, named the ids
// support needs, and delivered exactly the pages before the faulty one.
func checkFailed(t *testing.T, fc faultCase, failure error, logs string, ids map[string]int, sim *graphsim.Server) {
	t.Helper()
	if failure == nil {
		t.Fatalf("the sync completed; want it to stop with %q", fc.failWith)
	}
	if !strings.Contains(failure.Error(), fc.failWith) || !strings.Contains(logs, fc.failWith) {
		t.Errorf("failure %q (and the log) should hold %q\n%s", failure, fc.failWith, logs)
	}
	if strings.Contains(failure.Error(), "\n") {
		t.Errorf("the reason is not one line: %q", failure)
	}
	page := fc.faults[0].Page
	foreign := fc.faults[0].Kind == graphsim.FaultForeignNextLink
	if foreign {
		page++ // the faulty page itself is fine: the page its link names is refused
	}
	if !strings.Contains(failure.Error(), fmt.Sprintf("page %d", page)) {
		t.Errorf("the failure does not name page %d: %v", page, failure)
	}
	if !foreign && !strings.Contains(failure.Error(), "client-request-id") {
		t.Errorf("the failure does not carry the client-request-id: %v", failure)
	}
	if want := (page - 1) * matrixPageSize; len(ids) != want {
		t.Errorf("%d devices delivered before the failure, want the %d of the pages before page %d", len(ids), want, page)
	}
}

// checkWaits compares the arrival of two attempts at a page, as graphsim
// recorded them, with the Retry-After it sent.
func checkWaits(t *testing.T, sim *graphsim.Server, floors []retryFloor) {
	t.Helper()
	for _, w := range floors {
		var attempts []time.Time
		for _, r := range sim.Requests() {
			if !r.Token && r.Page == w.page {
				attempts = append(attempts, r.At)
			}
		}
		if len(attempts) <= w.after {
			t.Errorf("page %d was requested %d times, want a retry after attempt %d", w.page, len(attempts), w.after)
			continue
		}
		if gap := attempts[w.after].Sub(attempts[w.after-1]); gap < w.floor {
			t.Errorf("page %d attempt %d came %s after attempt %d, sooner than its Retry-After %s", w.page, w.after+1, gap, w.after, w.floor)
		}
		if attempts[w.after].Before(w.notBefore) {
			t.Errorf("page %d attempt %d came at %s, before its Retry-After date %s", w.page, w.after+1, attempts[w.after].Format(time.RFC3339Nano), w.notBefore.Format(time.RFC3339))
		}
	}
}

// A fatal error in an interval sync is logged, not recorded as the
// process' failure, and the next tick's sync completes.
func TestIntervalSyncSurvivesAFailedSync(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 1000, PageSize: 250,
		Faults: []graphsim.Fault{at(2, 1, graphsim.Fault403)}})
	run := runIntervalSyncs(t, inputYAML(sim, url, "", "  interval: 200ms", fastRetries), func(run *intervalRun, syncID string) bool {
		return run.perSync[syncID] == 1000
	})
	if !run.stopped {
		t.Fatalf("no sync completed after the failed one: %v\n%s", run.perSync, run.logs)
	}
	if SyncFailure() != nil {
		t.Errorf("an interval sync's failure was recorded for the exit code: %v", SyncFailure())
	}
	if logs := run.logs.String(); !strings.Contains(logs, "HTTP 403") || !strings.Contains(logs, "The next sync starts in") {
		t.Errorf("the failed sync was not logged with its reason:\n%s", logs)
	}
}

// Nacked messages are delivered again (auto_replay_nacks), and a page counts
// as delivered only once its re-delivered messages are acknowledged.
func TestNackedDevicesAreRedelivered(t *testing.T) {
	resetSyncFailure()
	sim, url := startSim(t, graphsim.Config{Devices: 1200, PageSize: 300})
	attempts := map[string]int{}
	streamTest{input: inputYAML(sim, url, ""), timeout: time.Minute, accept: func(m received) error {
		id := deviceID(t, m.body)
		attempts[id]++
		if attempts[id] == 1 && len(attempts)%7 == 0 {
			return errors.New("downstream refused the device")
		}
		return nil
	}}.run(t)
	retried := 0
	for i := 0; i < 1200; i++ {
		n := attempts[sim.DeviceID(i)]
		if n == 0 {
			t.Fatalf("device %d never delivered", i)
		}
		retried += n - 1
	}
	if retried == 0 || SyncFailure() != nil {
		t.Errorf("retried %d devices, failure %v; want nacked devices re-delivered and a complete sync", retried, SyncFailure())
	}
}
