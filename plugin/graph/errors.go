package graph

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Source tells which service answered an error.
type Source string

const (
	SourceGraph Source = "graph"    // Microsoft Graph (graph.microsoft.com and its clouds)
	SourceEntra Source = "entra id" // the Entra ID token endpoint
)

// Error is an error answered by Microsoft Graph or by the Entra ID token
// endpoint, with every identifier Microsoft support asks for. It never holds
// request credentials: it is built from the response only.
type Error struct {
	Source     Source
	StatusCode int
	// Code is Graph's error.code ("Forbidden", "InvalidAuthenticationToken")
	// or Entra's error ("invalid_client").
	Code string
	// Message is Graph's error.message, with Intune's nested JSON message
	// unwrapped to its inner "Message", or the first line of Entra's
	// error_description (which starts with the AADSTS code).
	Message string

	RequestID       string // Graph: request-id
	ClientRequestID string // Graph: client-request-id we sent, as echoed back

	AADSTS        int    // Entra: the first of error_codes (7000215 = wrong secret)
	TraceID       string // Entra: trace_id
	CorrelationID string // Entra: correlation_id

	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter    time.Duration
	HasRetryAfter bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: HTTP %d", e.Source, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	var ids []string
	if e.RequestID != "" {
		ids = append(ids, "request-id "+e.RequestID)
	}
	if e.ClientRequestID != "" {
		ids = append(ids, "client-request-id "+e.ClientRequestID)
	}
	if e.TraceID != "" {
		ids = append(ids, "trace-id "+e.TraceID)
	}
	if e.CorrelationID != "" {
		ids = append(ids, "correlation-id "+e.CorrelationID)
	}
	if len(ids) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(ids, ", "))
	}
	// One log line, whatever the server put in its fields.
	return oneLine(b.String())
}

// maxErrorText bounds how much of a non-JSON error body (a proxy's HTML page)
// ends up in an error message.
const maxErrorText = 200

// ParseGraphError builds an Error from a non-2xx Graph response.
func ParseGraphError(status int, header http.Header, body []byte) *Error {
	e := &Error{
		Source:          SourceGraph,
		StatusCode:      status,
		RequestID:       header.Get("request-id"),
		ClientRequestID: header.Get("client-request-id"),
	}
	var doc struct {
		Error struct {
			Code       string `json:"code"`
			Message    string `json:"message"`
			InnerError struct {
				RequestID       string `json:"request-id"`
				ClientRequestID string `json:"client-request-id"`
			} `json:"innerError"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || (doc.Error.Code == "" && doc.Error.Message == "") {
		e.Code = http.StatusText(status)
		e.Message = bodySnippet(body)
		return e
	}
	e.Code = doc.Error.Code
	e.Message = oneLine(unwrapIntuneMessage(doc.Error.Message))
	if e.RequestID == "" {
		e.RequestID = doc.Error.InnerError.RequestID
	}
	if e.ClientRequestID == "" {
		e.ClientRequestID = doc.Error.InnerError.ClientRequestID
	}
	return e
}

// unwrapIntuneMessage returns the inner "Message" when Intune nested its own
// JSON error inside Graph's error.message (as it does for a missing
// permission); otherwise the message unchanged.
func unwrapIntuneMessage(msg string) string {
	trimmed := strings.TrimSpace(msg)
	if !strings.HasPrefix(trimmed, "{") {
		return msg
	}
	var inner struct {
		Message string `json:"Message"`
	}
	if err := json.Unmarshal([]byte(trimmed), &inner); err != nil || inner.Message == "" {
		return msg
	}
	// Intune ends the inner message with an empty "- CustomApiErrorPhrase: ".
	return strings.TrimSuffix(strings.TrimSpace(inner.Message), " - CustomApiErrorPhrase:")
}

// ParseEntraError builds an Error from a non-2xx answer of the token endpoint.
func ParseEntraError(status int, header http.Header, body []byte) *Error {
	e := &Error{
		Source:          SourceEntra,
		StatusCode:      status,
		RequestID:       header.Get("x-ms-request-id"),
		ClientRequestID: header.Get("client-request-id"),
	}
	var doc struct {
		Error         string `json:"error"`
		Description   string `json:"error_description"`
		ErrorCodes    []int  `json:"error_codes"`
		TraceID       string `json:"trace_id"`
		CorrelationID string `json:"correlation_id"`
	}
	if err := json.Unmarshal(body, &doc); err != nil || doc.Error == "" {
		e.Code = http.StatusText(status)
		e.Message = bodySnippet(body)
		return e
	}
	e.Code = doc.Error
	// The description repeats trace and correlation ids and a timestamp on
	// following lines; the ids are kept in their own fields.
	e.Message = oneLine(strings.SplitN(doc.Description, "\n", 2)[0])
	if len(doc.ErrorCodes) > 0 {
		e.AADSTS = doc.ErrorCodes[0]
	}
	e.TraceID = doc.TraceID
	e.CorrelationID = doc.CorrelationID
	return e
}

// oneLine folds line breaks so that an error stays one log line.
func oneLine(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	return strings.TrimSpace(s)
}

func bodySnippet(body []byte) string {
	s := oneLine(strings.ToValidUTF8(string(body), "?"))
	if len(s) > maxErrorText {
		s = strings.ToValidUTF8(s[:maxErrorText], "") + "..."
	}
	return s
}
