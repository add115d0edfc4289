package graph

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// intuneForbiddenBody is the shape of Intune's 403 for a missing permission
// (mondoohq/cnspec#1708): error.message is itself JSON.
const intuneForbiddenBody = `{"error":{"code":"Forbidden","message":"{\r\n  \"_version\": 3,\r\n  \"Message\": \"Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementManagedDevices.Read.All, DeviceManagementManagedDevices.ReadWrite.All - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: 7b9f3b0e-0000-0000-0000-000000000000 - Url: https://fef.msua06.manage.microsoft.com/DeviceFE/StatelessDeviceFEService/deviceManagement/managedDevices?api-version=2024-05-03 - CustomApiErrorPhrase: \",\r\n  \"CustomApiErrorPhrase\": \"\",\r\n  \"RetryAfter\": null,\r\n  \"ErrorSourceService\": \"\",\r\n  \"HttpHeaders\": \"{}\"\r\n}","innerError":{"date":"2026-11-28T01:02:03","request-id":"inner-rid","client-request-id":"inner-crid"}}}`

func TestParseGraphErrorUnwrapsIntuneMessage(t *testing.T) {
	e := ParseGraphError(403, http.Header{}, []byte(intuneForbiddenBody))
	if e.Code != "Forbidden" || e.StatusCode != 403 || e.Source != SourceGraph {
		t.Errorf("got %+v", e)
	}
	if !strings.HasPrefix(e.Message, "Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementManagedDevices.Read.All") {
		t.Errorf("message not unwrapped: %q", e.Message)
	}
	if strings.ContainsAny(e.Message, "{}\r\n\\") || strings.HasSuffix(e.Message, "CustomApiErrorPhrase:") {
		t.Errorf("message keeps JSON debris: %q", e.Message)
	}
	if e.RequestID != "inner-rid" || e.ClientRequestID != "inner-crid" {
		t.Errorf("ids from innerError not used: %+v", e)
	}
	// Header ids win over innerError ids: they are what support searches.
	h := http.Header{}
	h.Set("request-id", "hdr-rid")
	if e := ParseGraphError(403, h, []byte(intuneForbiddenBody)); e.RequestID != "hdr-rid" {
		t.Errorf("request-id = %q, want the header's", e.RequestID)
	}
}

func TestParseGraphErrorPlain(t *testing.T) {
	body := `{"error":{"code":"InvalidAuthenticationToken","message":"Access token is empty.","innerError":{"request-id":"r","client-request-id":"c"}}}`
	e := ParseGraphError(401, http.Header{}, []byte(body))
	want := "graph: HTTP 401 InvalidAuthenticationToken: Access token is empty. (request-id r, client-request-id c)"
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e.Error(), want)
	}
}

func TestParseGraphErrorNonJSON(t *testing.T) {
	e := ParseGraphError(502, http.Header{}, []byte("<html>\r\n<body>"+strings.Repeat("Bad Gateway ", 100)+"</body></html>"))
	if e.Code != "Bad Gateway" || strings.ContainsAny(e.Message, "\r\n") || len(e.Message) > maxErrorText+3 {
		t.Errorf("got code %q message %q", e.Code, e.Message)
	}
}

func TestParseEntraError(t *testing.T) {
	body := `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'abc'.\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: 2026-11-28 01:02:03Z","error_codes":[7000215],"timestamp":"2026-11-28 01:02:03Z","trace_id":"t-1","correlation_id":"c-1"}`
	e := ParseEntraError(401, http.Header{}, []byte(body))
	if e.AADSTS != 7000215 || e.Code != "invalid_client" || e.TraceID != "t-1" || e.CorrelationID != "c-1" {
		t.Errorf("got %+v", e)
	}
	want := "entra id: HTTP 401 invalid_client: AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app 'abc'. (trace-id t-1, correlation-id c-1)"
	if e.Error() != want {
		t.Errorf("got  %s\nwant %s", e.Error(), want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 1, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"2":                             2 * time.Second,
		"2.128":                         2128 * time.Millisecond,
		"0":                             0,
		"Sat, 28 Nov 2026 01:00:30 GMT": 30 * time.Second,
		"Sat, 28 Nov 2026 00:59:00 GMT": 0, // in the past: retry now
	} {
		got, ok := parseRetryAfter(in, now)
		if !ok || got != want {
			t.Errorf("%q: got %v %v, want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "soon", "-1"} {
		if _, ok := parseRetryAfter(in, now); ok {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestBackoffIsFullJitterUnderTheCeiling(t *testing.T) {
	p := RetryPolicy{InitialInterval: time.Second, MaxInterval: 8 * time.Second}
	p.rand = func(n int64) int64 { return n - 1 } // the ceiling itself
	for attempt, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 30: 8 * time.Second} {
		if got := p.backoff(attempt); got != want {
			t.Errorf("attempt %d: ceiling %v, want %v", attempt, got, want)
		}
	}
}

func FuzzParseErrors(f *testing.F) {
	f.Add([]byte(intuneForbiddenBody))
	f.Add([]byte(`{"error":"invalid_client","error_description":"AADSTS7000215: x\r\ny","error_codes":[7000215]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, e := range []*Error{ParseGraphError(500, http.Header{}, body), ParseEntraError(400, http.Header{}, body)} {
			msg := e.Error()
			if strings.ContainsAny(msg, "\r\n") {
				t.Fatalf("multi-line error %q", msg)
			}
			if !json.Valid(body) && e.Message != "" && len(e.Message) > maxErrorText+3 {
				t.Fatalf("snippet too long: %d", len(e.Message))
			}
		}
	})
}
