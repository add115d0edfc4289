package intune

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// The harness every test of this package runs a stream with: a simulated
// tenant (startSim), the input's config against it (inputYAML,
// credentialYAML), and streamTest, which builds a stream around that
// input, runs it to its end, its stop condition or its timeout, and hands
// back what it delivered and logged.

// bufLogger collects Benthos log lines for assertions.
type bufLogger struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *bufLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, format, v...)
	l.buf.WriteByte('\n')
}

func (l *bufLogger) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(&l.buf, v...)
}

func (l *bufLogger) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// received is one message a stream delivered: its body and metadata.
type received struct {
	body []byte
	meta map[string]any
}

// startSim serves a simulated tenant for the test's lifetime.
func startSim(t *testing.T, cfg graphsim.Config) (*graphsim.Server, string) {
	t.Helper()
	sim := graphsim.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return sim, srv.URL
}

// credentialYAML is the input's config against a simulator at url with
// the credential lines given instead of a client secret.
func credentialYAML(sim *graphsim.Server, url string, lines ...string) string {
	c := sim.Config()
	return strings.Join(append([]string{
		"intune_managed_devices:",
		"  tenant_id: " + c.TenantID,
		"  client_id: " + c.ClientID,
		"  login_url: " + url,
		"  graph_url: " + url,
	}, lines...), "\n")
}

// inputYAML is the input's config against a simulator at url with a client
// secret (sim's own when secret is empty); extra lines are appended
// verbatim.
func inputYAML(sim *graphsim.Server, url, secret string, extra ...string) string {
	if secret == "" {
		secret = sim.Config().ClientSecret
	}
	return credentialYAML(sim, url, append([]string{"  client_secret: " + secret}, extra...)...)
}

// fileCache is a cache resource labelled label that keeps its entries as
// files in dir, so that they outlive the stream as they outlive a process.
func fileCache(label, dir string) string {
	return fmt.Sprintf("label: %s\nfile:\n  directory: %s", label, dir)
}

// deviceID is the id of a device's JSON body.
func deviceID(t *testing.T, body []byte) string {
	t.Helper()
	const key = `"id":"`
	i := strings.Index(string(body), key)
	if i < 0 {
		t.Fatalf("device without id: %.80s", body)
	}
	rest := string(body[i+len(key):])
	return rest[:strings.IndexByte(rest, '"')]
}

// inputConfigError is the error the input gives for conf, its fields
// without the intune_managed_devices key, when it starts.
func inputConfigError(t *testing.T, conf string) error {
	t.Helper()
	parsed, err := inputSpec().ParseYAML(conf, nil)
	if err != nil {
		t.Fatalf("%s: %v", conf, err)
	}
	_, err = parseInputConfig(parsed)
	return err
}

// streamTest is one run of a stream whose input is the one under test.
type streamTest struct {
	input  string   // the input's YAML, as inputYAML writes it
	caches []string // cache resources, each YAML with its label (fileCache)
	// output is the output's YAML. Without one, a consumer collects every
	// message the input delivers.
	output string
	// accept, when set, sees each message before the consumer collects it;
	// an error refuses (nacks) the message instead.
	accept func(m received) error
	// until, when set, is asked after each collected message, with all of
	// them so far; true stops the stream. It is asked again for messages
	// that arrive while the stream stops.
	until func(got []received) bool
	// poll, when set, is asked every 20 ms; true stops the stream.
	poll func() bool
	// timeout ends the run: 2 minutes when zero. A run without until or
	// poll must end by itself before it, or the test fails; with either,
	// the timeout ends the run like a stop, and stopped tells which it was.
	timeout time.Duration
}

// streamResult is what one run of a streamTest left.
type streamResult struct {
	got     []received // what the consumer collected, in arrival order
	logs    *bufLogger
	failure error // SyncFailure() once the stream stopped
	stopped bool  // until or poll stopped the stream
}

// run builds the stream, runs it and stops it. accept and until are
// called one message at a time, and never once run has returned: what they
// write needs no lock of its own to be read afterwards.
func (st streamTest) run(t *testing.T) streamResult {
	t.Helper()
	resetSyncFailure()
	res := streamResult{logs: &bufLogger{}}
	b := service.NewStreamBuilder()
	b.SetPrintLogger(res.logs)
	for _, cache := range st.caches {
		if err := b.AddCacheYAML(cache); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.AddInputYAML(st.input); err != nil {
		t.Fatal(err)
	}
	timeout := st.timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stopped atomic.Bool
	stop := func() {
		stopped.Store(true)
		cancel()
	}
	var mu sync.Mutex // held while accept or until runs
	closed := false   // set once run is done with the stream
	if st.output != "" {
		if err := b.AddOutputYAML(st.output); err != nil {
			t.Fatal(err)
		}
	} else if err := b.AddConsumerFunc(func(_ context.Context, m *service.Message) error {
		body, err := m.AsBytes()
		if err != nil {
			return err
		}
		meta := map[string]any{}
		_ = m.MetaWalkMut(func(k string, v any) error { meta[k] = v; return nil })
		msg := received{body: append([]byte(nil), body...), meta: meta}
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return errors.New("the test is done with this stream")
		}
		if st.accept != nil {
			if err := st.accept(msg); err != nil {
				return err
			}
		}
		res.got = append(res.got, msg)
		if st.until != nil && st.until(res.got) {
			stop()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	if st.poll != nil {
		go func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					if st.poll() {
						stop()
						return
					}
				}
			}
		}()
	}
	started := time.Now()
	err = stream.Run(ctx)
	if ctx.Err() != nil {
		// Run returns as soon as ctx is done, leaving the stream running:
		// stop it, so that every message it acknowledges (and so every
		// checkpoint it stores) is counted before the caller looks, or a
		// next run starts.
		if err := stream.StopWithin(30 * time.Second); err != nil {
			t.Logf("stopping the stream: %v", err)
		}
	}
	mu.Lock()
	closed = true
	mu.Unlock()
	res.stopped = stopped.Load()
	if err != nil && !res.stopped && st.until == nil && st.poll == nil {
		t.Fatalf("the stream did not end: %v (after %s)\n%s", err, time.Since(started), res.logs)
	}
	res.failure = SyncFailure()
	return res
}

// runSync runs a one-shot stream to its end and returns what it delivered.
func runSync(t *testing.T, inputConf string) ([]received, string, error) {
	t.Helper()
	res := streamTest{input: inputConf}.run(t)
	return res.got, res.logs.String(), res.failure
}

// intervalRun is what runIntervalSyncs saw: devices per sync id, the sync
// ids in the order their first device arrived, and whether the stream was
// stopped by the caller rather than by the time-out.
type intervalRun struct {
	perSync map[string]int
	order   []string
	stopped bool
	logs    *bufLogger
}

// runIntervalSyncs runs an interval input for up to a minute. onDevice is
// called after each device is counted, one at a time, with the device's
// sync id; the stream stops when it returns true.
func runIntervalSyncs(t *testing.T, inputConf string, onDevice func(run *intervalRun, syncID string) (stop bool)) *intervalRun {
	t.Helper()
	run := &intervalRun{perSync: map[string]int{}}
	res := streamTest{input: inputConf, timeout: time.Minute, until: func(got []received) bool {
		id := got[len(got)-1].meta[contract.SyncID].(string)
		if run.perSync[id] == 0 {
			run.order = append(run.order, id)
		}
		run.perSync[id]++
		return onDevice(run, id)
	}}.run(t)
	run.stopped, run.logs = res.stopped, res.logs
	return run
}
