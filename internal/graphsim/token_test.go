package graphsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTokenSuccess(t *testing.T) {
	e := newEnv(t, Config{})
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/"+DefaultTenantID+"/oauth2/v2.0/token", strings.NewReader(e.form().Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("client-request-id", "c0ffee00-0000-4000-8000-000000000001")
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("client-request-id"); got != "c0ffee00-0000-4000-8000-000000000001" {
		t.Errorf("client-request-id not echoed: %q", got)
	}
	if resp.Header.Get("x-ms-request-id") == "" {
		t.Error("no x-ms-request-id")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	// Field order matters to nobody, but the exact set does.
	var tok map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&tok); err != nil {
		t.Fatal(err)
	}
	if len(tok) != 4 || tok["token_type"] != "Bearer" || tok["expires_in"] != json.Number("3599") || tok["ext_expires_in"] != json.Number("3599") {
		t.Errorf("token response %s", body)
	}
	access, _ := tok["access_token"].(string)
	if !strings.HasPrefix(access, "eyJ0eXAi") || len(access) < 60 {
		t.Errorf("access token %q", access)
	}
	issued := e.sim.IssuedTokens()
	if len(issued) != 2 || issued[1] != access || issued[0] != e.token || access == e.token {
		t.Errorf("IssuedTokens %v", issued)
	}
	if st := e.sim.Stats(); st.TokenRequests != 2 || st.TokensIssued != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestTokenBasicAuthAndLifetime(t *testing.T) {
	e := newEnv(t, Config{TokenLifetime: 10 * time.Minute})
	form := e.form()
	form.Del("client_id")
	form.Del("client_secret")
	c := e.sim.Config()
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/"+c.TenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ClientID, c.ClientSecret)
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"expires_in":599,`)) {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
}

func TestTokenErrors(t *testing.T) {
	const wrongSecret = "s3cr3t-that-must-never-be-echoed"
	e := newEnv(t, Config{})
	c := e.sim.Config()
	with := func(key, value string) url.Values {
		f := e.form()
		if value == "" {
			f.Del(key)
		} else {
			f.Set(key, value)
		}
		return f
	}
	cases := []struct {
		name   string
		method string
		tenant string
		form   url.Values
		status int
		code   string
		aadsts int
		text   string
	}{
		{"get", http.MethodGet, c.TenantID, e.form(), 405, "invalid_request", 900561, "only accepts POST"},
		{"unknown tenant", "", "contoso.onmicrosoft.us", e.form(), 400, "invalid_request", 90002, "Tenant 'contoso.onmicrosoft.us' not found"},
		{"password grant", "", c.TenantID, with("grant_type", "password"), 400, "unsupported_grant_type", 70003, "unsupported grant type"},
		{"missing grant", "", c.TenantID, with("grant_type", ""), 400, "unsupported_grant_type", 70003, "unsupported grant type"},
		{"unknown client", "", c.TenantID, with("client_id", "22222222-2222-2222-2222-222222222222"), 400, "unauthorized_client", 700016,
			"Application with identifier '22222222-2222-2222-2222-222222222222' was not found in the directory"},
		{"wrong secret", "", c.TenantID, with("client_secret", wrongSecret), 401, "invalid_client", 7000215,
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + c.ClientID + "'."},
		{"missing secret", "", c.TenantID, with("client_secret", ""), 401, "invalid_client", 7000215, "Invalid client secret provided"},
		{"scope without .default", "", c.TenantID, with("scope", "https://graph.microsoft.com"), 400, "invalid_scope", 1002012,
			"The provided value for scope https://graph.microsoft.com is not valid. Client credential flows must have a scope value with /.default suffixed"},
		{"two scopes", "", c.TenantID, with("scope", "https://graph.microsoft.com/.default offline_access"), 400, "invalid_scope", 1002012, "is not valid"},
		{"wrong cloud", "", c.TenantID, with("scope", "https://graph.microsoft.us/.default"), 400, "invalid_scope", 1002012, "is not valid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, _ := http.NewRequest(method, e.ts.URL+"/"+tc.tenant+"/oauth2/v2.0/token", strings.NewReader(tc.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, body := do(t, req)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if bytes.Contains(body, []byte(wrongSecret)) || bytes.Contains(body, []byte(c.ClientSecret)) {
				t.Fatalf("response echoes a secret: %s", body)
			}
			ee := decodeEntraError(t, body)
			prefix := "AADSTS" + strconv.Itoa(tc.aadsts) + ": "
			switch {
			case ee.Error != tc.code:
				t.Errorf("error %q, want %q", ee.Error, tc.code)
			case len(ee.Codes) != 1 || ee.Codes[0] != tc.aadsts:
				t.Errorf("error_codes %v", ee.Codes)
			case !strings.HasPrefix(ee.Description, prefix) || !strings.Contains(ee.Description, tc.text):
				t.Errorf("description %q", ee.Description)
			case ee.TraceID == "" || ee.TraceID != resp.Header.Get("x-ms-request-id"):
				t.Errorf("trace_id %q, x-ms-request-id %q", ee.TraceID, resp.Header.Get("x-ms-request-id"))
			case ee.CorrelationID == "" || ee.CorrelationID != resp.Header.Get("client-request-id"):
				t.Errorf("correlation_id %q", ee.CorrelationID)
			case !strings.Contains(ee.Description, "\r\nTrace ID: "+ee.TraceID+"\r\nCorrelation ID: "+ee.CorrelationID+"\r\nTimestamp: "+ee.Timestamp):
				t.Errorf("description lacks ids: %q", ee.Description)
			case ee.URI != "https://login.microsoftonline.com/error?code="+strconv.Itoa(tc.aadsts):
				t.Errorf("error_uri %q", ee.URI)
			case len(ee.Timestamp) != len("2026-11-28 01:02:03Z"):
				t.Errorf("timestamp %q", ee.Timestamp)
			}
		})
	}
	if st := e.sim.Stats(); st.TokensIssued != 1 || st.TokenRequests != int64(1+len(cases)) {
		t.Errorf("stats %+v", st)
	}
}
