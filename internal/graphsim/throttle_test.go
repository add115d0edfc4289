package graphsim

import (
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"
)

// fakeClock replaces the server's clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// withClock returns a setup function that gives the server clock c.
func withClock(c **fakeClock) func(*Server) {
	return func(s *Server) {
		*c = &fakeClock{now: time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)}
		s.now = (*c).Now
	}
}

func TestThrottle(t *testing.T) {
	var clock *fakeClock
	e := appsEnv(t, func(c *Config) {
		c.Devices, c.DetectedApps = 20, 40
		c.Throttle = Throttle{Requests: 5, Window: 10 * time.Second}
	}, withClock(&clock))
	e.sim.ResetRequests()
	paths := []string{devicesPath, appsPath, "/beta/deviceManagement/managedDevices/" + e.sim.DeviceID(1) + "/detectedApps", "/v1.0/users", devicesPath}
	for _, p := range paths {
		if resp, body := e.get(t, p, e.token); resp.StatusCode == http.StatusTooManyRequests {
			t.Fatalf("%s: throttled within the budget: %s", p, body)
		}
	}
	// Token requests are not Graph's: they take nothing.
	newToken(t, e)
	resp, body := e.get(t, appsPath, e.token)
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("sixth request: %d", resp.StatusCode)
	}
	if ge := decodeGraphError(t, resp, body); ge.Error.Code != "TooManyRequests" {
		t.Errorf("error %+v", ge.Error)
	}
	// 5 per 10 s: a token every 2 s.
	if ra := resp.Header.Get("Retry-After"); ra != "2" {
		t.Errorf("Retry-After %q", ra)
	}
	clock.Advance(1500 * time.Millisecond)
	if resp, _ := e.get(t, devicesPath, e.token); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "1" {
		t.Errorf("after 1.5 s: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	clock.Advance(500 * time.Millisecond)
	if resp, _ := e.get(t, devicesPath, e.token); resp.StatusCode != http.StatusOK {
		t.Errorf("after Retry-After: %d", resp.StatusCode)
	}
	if resp, _ := e.get(t, devicesPath, e.token); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the bucket is empty again: %d", resp.StatusCode)
	}
	// A full window refills the whole budget, no more.
	clock.Advance(time.Minute)
	for k := range 6 {
		resp, _ := e.get(t, devicesPath, e.token)
		if want := k < 5; (resp.StatusCode == http.StatusOK) != want {
			t.Errorf("after a minute, request %d: %d", k+1, resp.StatusCode)
		}
	}

	recs := e.sim.Requests()
	kinds := []string{KindManagedDevices, KindDetectedApps, KindDeviceApps, "", KindManagedDevices, KindToken, KindDetectedApps}
	for k, kind := range kinds {
		if recs[k].Kind != kind {
			t.Errorf("record %d: kind %q, want %q", k, recs[k].Kind, kind)
		}
	}
	if r := recs[6]; r.Status != 429 || r.RetryAfter != 2*time.Second || r.Fault != "" {
		t.Errorf("throttled record %+v", r)
	}
	if r := recs[8]; r.Status != 200 || r.RetryAfter != 0 {
		t.Errorf("record %+v", r)
	}
	if st := e.sim.Stats(); st.Throttled != 4 {
		t.Errorf("stats %+v", st)
	}
}

// Each app has its own bucket: a managed identity's token is another
// client.
func TestThrottlePerClient(t *testing.T) {
	var clock *fakeClock
	e := newEnv(t, Config{Devices: 3, Throttle: Throttle{Requests: 1, Window: time.Hour}}, withClock(&clock))
	if resp, _ := e.get(t, devicesPath, e.token); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	if resp, _ := e.get(t, devicesPath, e.token); resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "3600" {
		t.Fatalf("second: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	resp, body := imdsGet(t, e, http.MethodGet, "api-version=2018-02-01&resource="+url.QueryEscape(DefaultScopeHost), "true")
	mi := tokenFrom(t, resp, body)
	if resp, _ := e.get(t, devicesPath, mi); resp.StatusCode != 200 {
		t.Errorf("the managed identity's first: %d", resp.StatusCode)
	}
	// A token the simulator did not issue is refused, not counted.
	if resp, _ := e.get(t, devicesPath, "eyJ0eXAiforged"); resp.StatusCode != 401 {
		t.Errorf("forged: %d", resp.StatusCode)
	}
}

// With the real clock: a client that waits Retry-After is served.
func TestThrottleRetryAfterIsEnough(t *testing.T) {
	e := newEnv(t, Config{Devices: 3, Throttle: Throttle{Requests: 3, Window: 600 * time.Millisecond}})
	var retry time.Duration
	for k := range 4 {
		resp, _ := e.get(t, devicesPath, e.token)
		if k < 3 && resp.StatusCode != 200 || k == 3 && resp.StatusCode != 429 {
			t.Fatalf("request %d: %d", k+1, resp.StatusCode)
		}
		if k == 3 {
			n, err := time.ParseDuration(resp.Header.Get("Retry-After") + "s")
			if err != nil || n != time.Second {
				t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
			}
			retry = n
		}
	}
	time.Sleep(retry)
	if resp, _ := e.get(t, devicesPath, e.token); resp.StatusCode != 200 {
		t.Errorf("after Retry-After: %d", resp.StatusCode)
	}
}

func TestRetryAfterParsing(t *testing.T) {
	now := time.Date(2026, 10, 21, 7, 27, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"2":                             2 * time.Second,
		"1.5":                           1500 * time.Millisecond,
		"Wed, 21 Oct 2026 07:28:00 GMT": time.Minute,
		"Wed, 21 Oct 2026 07:00:00 GMT": 0,
		"soon":                          0,
		"-1":                            0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}

func TestParseThrottle(t *testing.T) {
	for in, want := range map[string]Throttle{
		"2000/20s": IntuneThrottle,
		"5/1m30s":  {5, 90 * time.Second},
		"off":      {},
		"":         {},
	} {
		got, err := ParseThrottle(in)
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v", in, got, err)
		}
		if in != "" && got.String() != in {
			t.Errorf("%q: String %q", in, got.String())
		}
	}
	if got, err := ParseThrottle("intune"); err != nil || got != IntuneThrottle {
		t.Errorf("intune: %+v, %v", got, err)
	}
	for _, in := range []string{"2000", "0/20s", "x/20s", "20/0s", "20/soon", "-1/1s"} {
		if _, err := ParseThrottle(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if f := IntuneThrottle.Floor(2000); f != 0 {
		t.Errorf("floor of the budget: %v", f)
	}
	if f := IntuneThrottle.Floor(12000); f != 100*time.Second {
		t.Errorf("floor of 12000: %v", f)
	}
	if f := (Throttle{}).Floor(1e6); f != 0 {
		t.Errorf("floor without throttle: %v", f)
	}
}
