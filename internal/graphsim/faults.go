package graphsim

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FaultKind names one misbehaviour of the managedDevices collection.
type FaultKind string

// The kinds. Status kinds answer an error instead of the page; the others
// alter or delay the page itself.
const (
	Fault429             FaultKind = "429"              // 429 TooManyRequests, Graph error body; Retry-After = Fault.RetryAfter when set
	Fault500             FaultKind = "500"              // 500 InternalServerError, Intune's nested message in a Graph error body
	Fault502             FaultKind = "502"              // 502 with the HTML body an Azure gateway sends, text/html, no Graph ids
	Fault503             FaultKind = "503"              // 503 ServiceUnavailable, Graph error body; Retry-After = Fault.RetryAfter when set
	Fault504             FaultKind = "504"              // 504 GatewayTimeout, Graph error body
	FaultSlow            FaultKind = "slow"             // wait Fault.Delay (or until the client gives up), then answer normally
	FaultTruncate        FaultKind = "truncate"         // 200 announcing the page's full Content-Length, half of it sent, then the connection dropped
	FaultMalformed       FaultKind = "malformed"        // 200 with the whole page, one byte in its middle broken so that it does not parse
	FaultForeignNextLink FaultKind = "foreign_nextlink" // a normal page whose @odata.nextLink names https://evil.example.com
	Fault401             FaultKind = "401"              // 401 InvalidAuthenticationToken, and the token used is revoked
	Fault400             FaultKind = "400"              // 400 BadRequest, Graph error body
	Fault403             FaultKind = "403"              // Intune's nested 403, as Config.Forbidden sends
	Fault404             FaultKind = "404"              // 404 ResourceNotFound, Graph error body
)

// ForeignHost is where a FaultForeignNextLink page points its nextLink: a
// client that follows it would send its bearer token to another host.
const ForeignHost = "evil.example.com"

// faultStatus is the status of each status kind.
var faultStatus = map[FaultKind]int{
	Fault429: http.StatusTooManyRequests,
	Fault500: http.StatusInternalServerError,
	Fault502: http.StatusBadGateway,
	Fault503: http.StatusServiceUnavailable,
	Fault504: http.StatusGatewayTimeout,
	Fault401: http.StatusUnauthorized,
	Fault400: http.StatusBadRequest,
	Fault403: http.StatusForbidden,
	Fault404: http.StatusNotFound,
}

// FaultKinds lists every kind, for help texts and error messages.
var FaultKinds = []FaultKind{
	Fault429, Fault500, Fault502, Fault503, Fault504, FaultSlow, FaultTruncate,
	FaultMalformed, FaultForeignNextLink, Fault401, Fault400, Fault403, Fault404,
}

// Fault injects one misbehaviour into managedDevices responses.
//
// A request's page is the 1-based position of the page in its listing,
// derived from where it starts: the listed devices before its skip token
// divided by its page size ($top, else Config.PageSize), plus one. Its
// attempt counts the requests for that page number since the faults were
// last set, the first being attempt 1. Every Graph request whose query
// parses counts, including those refused for their token. When several
// faults match a request, the first in the script applies.
//
// Status faults answer before the token is checked, so a scripted attempt
// gets its documented answer whatever token it carries. FaultSlow waits
// first and then lets the request take its normal course. The other page
// faults alter only a page that would have been served.
//
// Resource chooses the listing: "" is managedDevices, else one of
// IntuneResources (the request kind of a list of intune.go:
// "deviceCompliancePolicies", "deviceComplianceDeviceStatuses", ...),
// whose pages are numbered the same way and whose attempts are counted
// apart from managedDevices' (a policy's deviceStatuses share one count
// per page number, whichever policy they list).
type Fault struct {
	Page       int           // 1-based page number; 0 = every page
	Attempt    int           // 1-based attempt at that page; 0 = every attempt
	Kind       FaultKind     //
	RetryAfter string        // raw Retry-After of a status fault ("2", "1.5", an HTTP-date); "" = no header
	Delay      time.Duration // FaultSlow's wait
	Resource   string        // the listing: "" for managedDevices, else one of IntuneResources
}

// isStatus reports whether k answers an error status instead of a page.
func (k FaultKind) isStatus() bool { _, ok := faultStatus[k]; return ok }

// Validate reports what is wrong with f, if anything.
func (f Fault) Validate() error {
	known := false
	for _, k := range FaultKinds {
		known = known || f.Kind == k
	}
	switch {
	case !known:
		return fmt.Errorf("unknown fault kind %q (want one of %s)", f.Kind, kindList())
	case f.Page < 0:
		return fmt.Errorf("fault page %d is negative (0 means every page)", f.Page)
	case f.Attempt < 0:
		return fmt.Errorf("fault attempt %d is negative (0 means every attempt)", f.Attempt)
	case f.Delay < 0:
		return fmt.Errorf("fault delay %v is negative", f.Delay)
	case f.Kind == FaultSlow && f.Delay == 0:
		return fmt.Errorf("fault kind %q needs a delay", f.Kind)
	case f.Kind != FaultSlow && f.Delay != 0:
		return fmt.Errorf("fault kind %q takes no delay (only %q does)", f.Kind, FaultSlow)
	case f.RetryAfter != "" && !f.Kind.isStatus():
		return fmt.Errorf("fault kind %q answers no error status, so it takes no retry_after", f.Kind)
	case strings.ContainsFunc(f.RetryAfter, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("fault retry_after %q contains a control character", f.RetryAfter)
	case f.Resource != "" && !slices.Contains(IntuneResources, f.Resource):
		return fmt.Errorf("fault resource %q: want one of %s (empty: managedDevices)", f.Resource, strings.Join(IntuneResources, ", "))
	}
	return nil
}

func kindList() string {
	names := make([]string, len(FaultKinds))
	for k, kind := range FaultKinds {
		names[k] = string(kind)
	}
	return strings.Join(names, ", ")
}

// SetFaults replaces the fault script and restarts the attempt counts. It
// is safe to call while requests are served. It panics on an invalid
// fault (see Fault.Validate): a test that scripts one has a bug.
func (s *Server) SetFaults(faults []Fault) {
	for _, f := range faults {
		if err := f.Validate(); err != nil {
			panic("graphsim: SetFaults: " + err.Error())
		}
	}
	script := append([]Fault(nil), faults...)
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.faults = script
	s.attempts = make(map[faultPage]int)
}

// faultPage is a page of a listing, whose attempts are counted.
type faultPage struct {
	resource string // Fault.Resource
	page     int
}

// attempt counts a request for page of managedDevices and returns its
// attempt number and the fault that applies to it, if any.
func (s *Server) attempt(page int) (int, *Fault) { return s.attemptAt("", page) }

// attemptAt is attempt for the page of the listing resource (a
// Fault.Resource).
func (s *Server) attemptAt(resource string, page int) (int, *Fault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	key := faultPage{resource, page}
	s.attempts[key]++
	n := s.attempts[key]
	for k := range s.faults {
		f := &s.faults[k]
		if f.Resource == resource && (f.Page == 0 || f.Page == page) && (f.Attempt == 0 || f.Attempt == n) {
			c := *f
			return n, &c
		}
	}
	return n, nil
}

// answerFault sends the error of a status fault.
func (s *Server) answerFault(w *exchange, r *http.Request, ids requestIDs, f *Fault) {
	h := w.Header()
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	switch f.Kind {
	case Fault429:
		s.graphError(w, ids, http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Please retry after some time.")
	case Fault500:
		s.graphError(w, ids, http.StatusInternalServerError, "InternalServerError",
			intuneMessage("An internal server error has occurred - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000", ids.request))
	case Fault502:
		// The gateway answered, not Graph: none of Graph's headers.
		for _, k := range []string{"request-id", "client-request-id", "x-ms-ags-diagnostic", "Strict-Transport-Security"} {
			h.Del(k)
		}
		h.Set("Content-Type", "text/html")
		h.Set("Content-Length", strconv.Itoa(len(badGatewayHTML)))
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte(badGatewayHTML))
	case Fault503:
		s.graphError(w, ids, http.StatusServiceUnavailable, "ServiceUnavailable", "The service is temporarily unavailable. Please try again later.")
	case Fault504:
		s.graphError(w, ids, http.StatusGatewayTimeout, "GatewayTimeout", "The gateway did not receive a response from the upstream service in time.")
	case Fault401:
		if token := bearer(r); token != "" {
			s.revoke(token)
		}
		s.graphError(w, ids, http.StatusUnauthorized, "InvalidAuthenticationToken", revokedMessage)
	case Fault400:
		s.badRequest(w, ids, "The request is malformed or incorrect.")
	case Fault403:
		s.graphError(w, ids, http.StatusForbidden, "Forbidden", intuneForbidden(ids.request))
	case Fault404:
		s.graphError(w, ids, http.StatusNotFound, "ResourceNotFound", "Resource not found for the segment 'managedDevices'.")
	}
}

// badGatewayHTML is what Azure Application Gateway sends when the service
// behind it fails: HTML, whatever the request accepted.
const badGatewayHTML = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
	"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n" +
	"</body>\r\n</html>\r\n"
