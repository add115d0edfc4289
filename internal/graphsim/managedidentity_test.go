package graphsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"
)

// imdsGet asks the simulator's IMDS endpoint with query, and the Metadata
// header unless it is "".
func imdsGet(t *testing.T, e *env, method, query, metadata string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, e.ts.URL+ManagedIdentityPath+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if metadata != "" {
		req.Header.Set("Metadata", metadata)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, req)
}

const imdsQuery = "api-version=2018-02-01&resource=https%3A%2F%2Fgraph.microsoft.com"

func TestManagedIdentityToken(t *testing.T) {
	for name, tc := range map[string]struct {
		cfg      Config
		query    string
		clientID string
	}{
		"system-assigned":              {Config{}, imdsQuery, DefaultManagedIdentityClientID},
		"configured, not named":        {Config{ManagedIdentityClientID: "55555555-0000-0000-0000-000000000001"}, imdsQuery, "55555555-0000-0000-0000-000000000001"},
		"configured and named":         {Config{ManagedIdentityClientID: "55555555-0000-0000-0000-000000000001"}, imdsQuery + "&client_id=55555555-0000-0000-0000-000000000001", "55555555-0000-0000-0000-000000000001"},
		"any, named":                   {Config{}, imdsQuery + "&client_id=66666666-0000-0000-0000-000000000001", "66666666-0000-0000-0000-000000000001"},
		"resource with trailing slash": {Config{}, "api-version=2018-02-01&resource=https%3A%2F%2Fgraph.microsoft.com%2F", DefaultManagedIdentityClientID},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			start := time.Now()
			resp, body := imdsGet(t, e, http.MethodGet, tc.query, "true")
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
				t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			// Every value a string, as IMDS sends them.
			var tok map[string]string
			dec := json.NewDecoder(bytes.NewReader(body))
			if err := dec.Decode(&tok); err != nil {
				t.Fatalf("not an all-string object: %v: %s", err, body)
			}
			on, _ := strconv.ParseInt(tok["expires_on"], 10, 64)
			nbf, _ := strconv.ParseInt(tok["not_before"], 10, 64)
			if len(tok) != 8 || tok["token_type"] != "Bearer" || tok["expires_in"] != "3599" || tok["ext_expires_in"] != "3599" ||
				tok["client_id"] != tc.clientID || tok["resource"] == "" ||
				on < start.Add(time.Hour).Unix()-1 || on > time.Now().Add(time.Hour).Unix() || nbf < start.Unix()-1 {
				t.Errorf("token answer %s", body)
			}
			if resp, body := e.get(t, devicesPath, tok["access_token"]); resp.StatusCode != http.StatusOK {
				t.Errorf("Graph refused the token: %d %s", resp.StatusCode, body)
			}
			recs := e.sim.Requests()
			if len(recs) < 2 || !recs[1].Token || recs[1].Status != http.StatusOK {
				t.Errorf("request log %+v", recs)
			}
			if st := e.sim.Stats(); st.TokenRequests != 2 || st.TokensIssued != 2 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestManagedIdentityRefused(t *testing.T) {
	for name, tc := range map[string]struct {
		method, query, metadata string
		header                  []string
		status                  int
		code, description       string
	}{
		"no Metadata header": {http.MethodGet, imdsQuery, "", nil, 400, "invalid_request", "Required metadata header not specified"},
		"Metadata: false":    {http.MethodGet, imdsQuery, "false", nil, 400, "invalid_request", "Required metadata header not specified"},
		"no api-version":     {http.MethodGet, "resource=https%3A%2F%2Fgraph.microsoft.com", "true", nil, 400, "invalid_request", "Required query variable 'api-version' is missing"},
		"no resource":        {http.MethodGet, "api-version=2018-02-01", "true", nil, 400, "invalid_request", "Required audience parameter not specified"},
		"a v2 scope as resource": {http.MethodGet, "api-version=2018-02-01&resource=https%3A%2F%2Fgraph.microsoft.com%2F.default", "true", nil, 400, "invalid_resource",
			"AADSTS500011: The resource principal named https://graph.microsoft.com/.default was not found in the tenant named " + DefaultTenantID + "."},
		"another identity": {http.MethodGet, imdsQuery + "&client_id=77777777-0000-0000-0000-000000000001", "true", nil, 400, "invalid_request", "Identity not found"},
		"POST":             {http.MethodPost, imdsQuery, "true", nil, 405, "invalid_request", "Only GET requests are supported."},
		"through a proxy":  {http.MethodGet, imdsQuery, "true", []string{"X-Forwarded-For", "10.0.0.1"}, 400, "invalid_request", "Requests with an X-Forwarded-For header are not accepted."},
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, Config{ManagedIdentityClientID: "55555555-0000-0000-0000-000000000001"})
			resp, body := imdsGet(t, e, tc.method, tc.query, tc.metadata, tc.header...)
			var got imdsErrorBody
			if err := decodeStrict(body, &got); err != nil {
				t.Fatalf("not an IMDS error: %v: %s", err, body)
			}
			if resp.StatusCode != tc.status || got.Error != tc.code || !bytes.HasPrefix([]byte(got.Description), []byte(tc.description)) {
				t.Errorf("%d %+v, want %d %s %q", resp.StatusCode, got, tc.status, tc.code, tc.description)
			}
			if st := e.sim.Stats(); st.TokensIssued != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestManagedIdentityOutage(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		// Not newEnv, whose own token request would be the first of the
		// outage.
		e := &env{sim: New(Config{TokenOutage: 2, TokenOutageStatus: status})}
		e.ts = httptest.NewServer(e.sim)
		t.Cleanup(e.ts.Close)
		resp, body := imdsGet(t, e, http.MethodGet, imdsQuery, "true")
		if resp.StatusCode != status || (status == 429) != (resp.Header.Get("Retry-After") == "1") {
			t.Errorf("outage answer %d, Retry-After %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		var got imdsErrorBody
		if err := json.Unmarshal(body, &got); err != nil || got.Error == "" {
			t.Errorf("outage body %s", body)
		}
		imdsGet(t, e, http.MethodGet, imdsQuery, "true")
		if resp, body := imdsGet(t, e, http.MethodGet, imdsQuery, "true"); resp.StatusCode != http.StatusOK {
			t.Errorf("after the outage: %d %s", resp.StatusCode, body)
		}
		recs := e.sim.Requests()
		if last := recs[0]; last.Fault != FaultKind(strconv.Itoa(status)) || !last.Token {
			t.Errorf("request log %+v", recs)
		}
	}
}
