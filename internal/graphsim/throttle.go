package graphsim

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Graph throttles each service on its own. For Intune's devices service
// Microsoft documents 2,000 requests per 20 seconds per app per tenant
// (and 4,000 per tenant for all apps), past which Graph answers 429
// TooManyRequests with a Retry-After header in seconds; see "Intune
// service limits" at https://learn.microsoft.com/graph/throttling-limits
// and https://learn.microsoft.com/graph/throttling.
//
// The simulator keeps a token bucket per (tenant, client id of the token):
// Requests tokens at most, refilled continuously at Requests per Window.
// Every Graph request with a token the simulator issued takes one
// (requests without a known token are answered 401 and not counted; the
// token endpoints and the storage host are not Graph and never throttled).
// A $batch takes none itself: each request inside it takes one, as Graph
// evaluates them one by one, and one that finds the bucket empty gets its
// 429 inside the batch's 200 (batch.go).
// A request that finds the bucket empty is answered 429 with Retry-After:
// the whole seconds, at least 1, until the bucket holds a token again, so
// a client that waits as told is served. The bucket is charged at the
// request's arrival time, the time its RequestRecord carries, before
// anything else is looked at, scripted faults included.

// Throttle is a request budget per app: Requests per Window. The zero value
// is off.
type Throttle struct {
	Requests int
	Window   time.Duration
}

// IntuneThrottle is the documented limit of Intune's devices service per
// app per tenant.
var IntuneThrottle = Throttle{Requests: 2000, Window: 20 * time.Second}

func (t Throttle) enabled() bool { return t.Requests > 0 && t.Window > 0 }

// String writes t as ParseThrottle reads it: "2000/20s", or "off".
func (t Throttle) String() string {
	if !t.enabled() {
		return "off"
	}
	return strconv.Itoa(t.Requests) + "/" + t.Window.String()
}

// ParseThrottle reads "N/duration" ("2000/20s"), "intune" for
// IntuneThrottle, or "off" or "" for none.
func ParseThrottle(s string) (Throttle, error) {
	switch s {
	case "", "off":
		return Throttle{}, nil
	case "intune":
		return IntuneThrottle, nil
	}
	n, d, ok := strings.Cut(s, "/")
	if !ok {
		return Throttle{}, fmt.Errorf("throttle %q: want requests/window, e.g. 2000/20s", s)
	}
	requests, err := strconv.Atoi(n)
	if err != nil || requests <= 0 {
		return Throttle{}, fmt.Errorf("throttle %q: %q is not a positive number of requests", s, n)
	}
	window, err := time.ParseDuration(d)
	if err != nil || window <= 0 {
		return Throttle{}, fmt.Errorf("throttle %q: %q is not a positive duration", s, d)
	}
	return Throttle{Requests: requests, Window: window}, nil
}

// Floor is the least time in which a client can make n requests under t,
// starting with a full bucket: the first Requests pass at once, each
// further one waits for its token. Zero when t is off.
func (t Throttle) Floor(n int) time.Duration {
	if !t.enabled() || n <= t.Requests {
		return 0
	}
	return time.Duration(int64(n-t.Requests) * int64(t.Window) / int64(t.Requests))
}

// bucket is one app's budget.
type bucket struct {
	tokens float64
	last   time.Time
}

// admit charges the request's app; false means it was answered 429.
func (s *Server) admit(x *exchange, r *http.Request, ids requestIDs) bool {
	t := s.cfg.Throttle
	if !t.enabled() {
		return true
	}
	token := bearer(r)
	if token == "" {
		return true
	}
	s.mu.Lock()
	info, known := s.tokens[token]
	s.mu.Unlock()
	if !known {
		return true
	}
	wait, ok := s.take(s.cfg.TenantID+"/"+info.client, x.at)
	if ok {
		return true
	}
	s.throttled.Add(1)
	x.Header().Set("Retry-After", strconv.FormatInt(max(1, int64(math.Ceil(wait.Seconds()))), 10))
	s.graphError(x, ids, http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Please retry after some time.")
	return false
}

// take takes a token from the bucket of key at time at, or says how long
// until there is one.
func (s *Server) take(key string, at time.Time) (time.Duration, bool) {
	t := s.cfg.Throttle
	rate := float64(t.Requests) / t.Window.Seconds() // tokens per second
	s.throttleMu.Lock()
	defer s.throttleMu.Unlock()
	b := s.buckets[key]
	if b == nil {
		b = &bucket{tokens: float64(t.Requests), last: at}
		s.buckets[key] = b
	}
	// Requests that arrived together may get here in another order: time
	// never runs backwards for the bucket.
	if at.After(b.last) {
		b.tokens = min(float64(t.Requests), b.tokens+at.Sub(b.last).Seconds()*rate)
		b.last = at
	}
	// The epsilon absorbs float rounding: a client that waited exactly
	// its Retry-After must find its token.
	if b.tokens >= 1-1e-9 {
		b.tokens = max(b.tokens-1, 0)
		return 0, true
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second)), false
}
