package graphsim

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// Error bodies are small and rare, so they use encoding/json with structs
// whose field order is the order Microsoft writes.

type entraErrorBody struct {
	Error         string `json:"error"`
	Description   string `json:"error_description"`
	Codes         []int  `json:"error_codes"`
	Timestamp     string `json:"timestamp"`
	TraceID       string `json:"trace_id"`
	CorrelationID string `json:"correlation_id"`
	URI           string `json:"error_uri"`
}

// entraError answers an Entra ID token endpoint error. The description
// carries the ids and time on extra lines, as Entra's does.
func (s *Server) entraError(w http.ResponseWriter, ids requestIDs, status int, code string, aadsts int, text string) {
	ts := s.now().UTC().Format("2006-01-02 15:04:05Z")
	desc := "AADSTS" + strconv.Itoa(aadsts) + ": " + text +
		"\r\nTrace ID: " + ids.request +
		"\r\nCorrelation ID: " + ids.client +
		"\r\nTimestamp: " + ts
	writeJSON(w, status, "application/json; charset=utf-8", entraErrorBody{
		Error:         code,
		Description:   desc,
		Codes:         []int{aadsts},
		Timestamp:     ts,
		TraceID:       ids.request,
		CorrelationID: ids.client,
		URI:           "https://login.microsoftonline.com/error?code=" + strconv.Itoa(aadsts),
	})
}

type graphErrorBody struct {
	Error graphErrorDetail `json:"error"`
}

type graphErrorDetail struct {
	Code       string          `json:"code"`
	Message    string          `json:"message"`
	InnerError graphInnerError `json:"innerError"`
}

type graphInnerError struct {
	Date            string `json:"date"`
	RequestID       string `json:"request-id"`
	ClientRequestID string `json:"client-request-id"`
}

// graphContentType is what Graph sends for collection responses and errors.
const graphContentType = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

// graphError answers a Microsoft Graph error. The ids in innerError are
// those of the response headers, which is what support tickets quote.
func (s *Server) graphError(w http.ResponseWriter, ids requestIDs, status int, code, message string) {
	if status == http.StatusBadRequest {
		s.badRequests.Add(1)
	}
	if status == http.StatusUnauthorized {
		// Graph tells the client where tokens come from.
		w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
	}
	writeJSON(w, status, graphContentType, graphErrorBody{Error: graphErrorDetail{
		Code:    code,
		Message: message,
		InnerError: graphInnerError{
			Date:            s.now().UTC().Format("2006-01-02T15:04:05"),
			RequestID:       ids.request,
			ClientRequestID: ids.client,
		},
	}})
}

// allowOnly answers Graph's 405 unless r uses method, and reports whether
// it does.
func (s *Server) allowOnly(w http.ResponseWriter, r *http.Request, ids requestIDs, method string) bool {
	if r.Method == method {
		return true
	}
	w.Header().Set("Allow", method)
	s.graphError(w, ids, http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
	return false
}

func (s *Server) badRequest(w http.ResponseWriter, ids requestIDs, message string) {
	s.graphError(w, ids, http.StatusBadRequest, "BadRequest", message)
}

// intuneForbidden is the message of Intune's 403: a JSON document of its
// own, CRLF-indented, carried as a string. Clients must decode it twice to
// show the inner "Message".
func intuneForbidden(activityID string) string {
	return intuneMessage("Application is not authorized to perform this operation. "+
		"Application must have one of the following scopes: DeviceManagementManagedDevices.Read.All, "+
		"DeviceManagementManagedDevices.ReadWrite.All - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000", activityID)
}

// intuneMessage wraps text the way Intune's service nests its errors in
// Graph's message.
func intuneMessage(text, activityID string) string {
	return intuneMessageAt(text, activityID, "DeviceFE/StatelessDeviceFEService/deviceManagement/managedDevices")
}

// intuneMessageAt is intuneMessage for the Intune service path that
// answered.
func intuneMessageAt(text, activityID, path string) string {
	return "{\r\n  \"_version\": 3,\r\n  \"Message\": \"" + text + " - " +
		"Activity ID: " + activityID + " - Url: https://fef.msua06.manage.microsoft.com/" +
		path + "?api-version=2024-05-03 - CustomApiErrorPhrase: \",\r\n" +
		"  \"CustomApiErrorPhrase\": \"\",\r\n  \"RetryAfter\": null,\r\n  \"ErrorSourceService\": \"\",\r\n  \"HttpHeaders\": \"{}\"\r\n}"
}

func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own structs of strings get here.
		panic("graphsim: " + err.Error())
	}
	_ = writeBody(w, status, contentType, body)
}

// writeBody answers status with body, of contentType, and its length.
func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) error {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err := w.Write(body)
	return err
}

// httpDate is the Date header value. net/http adds one too, but handlers
// called directly (httptest.ResponseRecorder) would miss it.
func httpDate(t time.Time) string { return t.UTC().Format(http.TimeFormat) }

// readable answers, and says false, what Graph refuses before it reads a
// managed device: a bad token (401), a bad query (msg, 400), an app
// without the permission (Config.Forbidden, Intune's 403), in that order.
func (s *Server) readable(w *exchange, r *http.Request, ids requestIDs, msg string) bool {
	return s.readableOr(w, r, ids, msg, func() {
		// Intune's activity id is its own; reusing the request id keeps
		// the two findable together.
		s.graphError(w, ids, http.StatusForbidden, "Forbidden", intuneForbidden(ids.request))
	})
}

// readableOr is readable with forbid writing the 403 of the resource read.
func (s *Server) readableOr(w *exchange, r *http.Request, ids requestIDs, msg string, forbid func()) bool {
	if !s.authorize(w, r, ids) {
		return false
	}
	if msg != "" {
		s.badRequest(w, ids, msg)
		return false
	}
	if s.cfg.Forbidden {
		forbid()
		return false
	}
	return true
}
