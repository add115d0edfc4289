package graphsim

import (
	"net/http"
	"strconv"
	"time"
)

// RequestRecord is one request as the simulator saw it, for tests that
// assert how a client paced, retried and re-authenticated.
type RequestRecord struct {
	At      time.Time // when the request arrived, by the server's clock
	Page    int       // 1-based page of the managedDevices listing, or of a listing of intune.go (what faults match); 0 for every other request and those without a page (bad query, unknown path or parent, wrong method)
	Attempt int       // 1-based attempt at Page of its listing since the faults were last set; 0 without a page
	Status  int       // status sent; 0 when the handler answered nothing (the client went away during a delay)
	Fault   FaultKind // the fault applied (a token outage records its status as a FaultKind); "" for none
	Token   bool      // a token endpoint request
	// Kind is what was asked for, one of the Kind constants; "" for a path
	// that names no resource.
	Kind string
	// RetryAfter is the wait the Retry-After header sent asked for (by
	// the throttle, a scripted fault or a token outage): its seconds, or
	// the time from the answer to its HTTP-date; 0 for none (or one that
	// does not parse, as a scripted fault may send).
	RetryAfter time.Duration
}

// Kinds of request, for RequestRecord.Kind.
const (
	KindToken          = "token"          // the token endpoint or the managed identity endpoint
	KindManagedDevices = "managedDevices" // GET /{version}/deviceManagement/managedDevices
	KindManagedDevice  = "managedDevice"  // GET /{version}/deviceManagement/managedDevices/{id}
	KindBatch          = "batch"          // POST /{version}/$batch (the requests inside are not logged; Stats counts them)
	KindDetectedApps   = "detectedApps"   // GET /{version}/deviceManagement/detectedApps
	KindDetectedApp    = "detectedApp"    // GET /{version}/deviceManagement/detectedApps/{id}
	KindAppDevices     = "appDevices"     // GET /{version}/deviceManagement/detectedApps/{id}/managedDevices
	KindDeviceApps     = "deviceApps"     // GET /beta/deviceManagement/managedDevices/{id}/detectedApps (v1.0 answers 400)
	KindExportJob      = "exportJob"      // POST .../reports/exportJobs, GET .../reports/exportJobs('{id}')
	KindDownload       = "download"       // GET of an export's ZIP on the storage host (StorageHandler)
	// The policy, enrollment and app collections have theirs in intune.go.
)

// maxRequestLog bounds the log of a long-running simulator: past it the
// older half is dropped. Tests stay far below it.
const maxRequestLog = 1 << 17

// exchange is the ResponseWriter of one request: it remembers the status
// and what the handlers learnt about the request, for its RequestRecord.
type exchange struct {
	http.ResponseWriter
	seq     int       // position in the log since the server started
	at      time.Time // arrival, as logged
	status  int
	page    int
	attempt int
	fault   FaultKind
	token   bool
	kind    string
	// batched: a request inside a $batch, answered into a buffer and never
	// logged; it does not wait Config.Latency, which the batch waits once.
	batched bool
	got     *deviceGet // a single-device GET answered 200 (entity.go)
}

func (x *exchange) WriteHeader(code int) {
	if x.status == 0 {
		x.status = code
	}
	x.ResponseWriter.WriteHeader(code)
}

func (x *exchange) Write(b []byte) (int, error) {
	if x.status == 0 {
		x.status = http.StatusOK
	}
	return x.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection, which a
// truncated page needs to flush before it drops it.
func (x *exchange) Unwrap() http.ResponseWriter { return x.ResponseWriter }

// arrive reserves the request's place in the log, so that the log is in
// arrival order even when a slow page finishes after a later token request.
func (s *Server) arrive(w http.ResponseWriter) *exchange {
	at := s.now()
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if len(s.log) >= s.logLimit {
		half := len(s.log) / 2
		s.log = s.log[:copy(s.log, s.log[half:])]
		s.logBase += half
	}
	x := &exchange{ResponseWriter: w, seq: s.logBase + len(s.log), at: at}
	s.log = append(s.log, RequestRecord{At: at})
	return x
}

// depart completes the record; it also runs when a handler panics to drop
// the connection.
func (s *Server) depart(x *exchange) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	k := x.seq - s.logBase
	if k < 0 || k >= len(s.log) {
		return // dropped by ResetRequests or by the bound
	}
	rec := &s.log[k]
	rec.Page, rec.Attempt, rec.Status, rec.Fault, rec.Token = x.page, x.attempt, x.status, x.fault, x.token
	rec.Kind = x.kind
	if x.status != 0 {
		rec.RetryAfter = retryAfter(x.Header().Get("Retry-After"), s.now())
	}
}

// retryAfter reads a Retry-After value as a wait from now.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs >= 0 && secs < 1e9 {
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Requests returns the token, Graph and storage requests received since the
// server started or since ResetRequests, in arrival order. Requests still being
// answered have Status 0. Admin requests (/_graphsim/...) are not logged.
func (s *Server) Requests() []RequestRecord {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return append([]RequestRecord(nil), s.log...)
}

// ResetRequests empties the request log and the storage host's.
func (s *Server) ResetRequests() {
	s.logMu.Lock()
	s.logBase += len(s.log)
	s.log = nil
	s.logMu.Unlock()
	s.exports.logMu.Lock()
	s.exports.log = nil
	s.exports.logMu.Unlock()
}
