package graphsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// env is a simulator behind a real HTTP server, with a token.
type env struct {
	sim   *Server
	ts    *httptest.Server
	token string
}

// newEnv starts a simulator of cfg, after the setup functions have
// altered it (a clock, say) while no request can see them.
func newEnv(t *testing.T, cfg Config, setup ...func(*Server)) *env {
	t.Helper()
	e := &env{sim: New(cfg)}
	for _, f := range setup {
		f(e.sim)
	}
	e.ts = httptest.NewServer(e.sim)
	t.Cleanup(e.ts.Close)
	e.takeToken(t, e.sim.Config().TenantID)
	return e
}

// takeToken asks tenant's token endpoint for a token, which later requests
// of e carry.
func (e *env) takeToken(t *testing.T, tenant string) {
	t.Helper()
	resp, body := e.postToken(t, tenant, e.form())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token of %s: %d %s", tenant, resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	e.token = tok.AccessToken
}

// form is a valid client credentials request body.
func (e *env) form() url.Values {
	c := e.sim.Config()
	return url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.ClientID},
		"client_secret": {c.ClientSecret},
		"scope":         {c.ScopeHost + "/.default"},
	}
}

func (e *env) postToken(t *testing.T, tenant string, form url.Values) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+"/"+tenant+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

// get fetches a Graph URL (absolute, or a path on the test server) with
// the given bearer token ("" for none).
func (e *env) get(t *testing.T, u, token string) (*http.Response, []byte) {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = e.ts.URL + u
	}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

type page struct {
	Context  string            `json:"@odata.context"`
	Count    *int64            `json:"@odata.count"`
	NextLink string            `json:"@odata.nextLink"`
	Value    []json.RawMessage `json:"value"`
}

func decodePage(t *testing.T, body []byte) page {
	t.Helper()
	var p page
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("page is not JSON: %v\n%.500s", err, body)
	}
	if p.Value == nil {
		t.Fatalf("page has no value array: %.500s", body)
	}
	return p
}

type graphErr struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			Date            string `json:"date"`
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

// decodeStrict decodes the JSON value that data begins with into v,
// refusing fields v does not have.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// decodeGraphError checks the Graph error shape and its ids against the
// response headers.
func decodeGraphError(t *testing.T, resp *http.Response, body []byte) graphErr {
	t.Helper()
	var ge graphErr
	if err := decodeStrict(body, &ge); err != nil {
		t.Fatalf("not a Graph error: %v: %s", err, body)
	}
	ie := ge.Error.InnerError
	if ge.Error.Code == "" || ge.Error.Message == "" || ie.Date == "" {
		t.Errorf("incomplete Graph error: %s", body)
	}
	if ie.RequestID == "" || ie.RequestID != resp.Header.Get("request-id") {
		t.Errorf("innerError request-id %q, header %q", ie.RequestID, resp.Header.Get("request-id"))
	}
	if ie.ClientRequestID == "" || ie.ClientRequestID != resp.Header.Get("client-request-id") {
		t.Errorf("innerError client-request-id %q, header %q", ie.ClientRequestID, resp.Header.Get("client-request-id"))
	}
	if ct := resp.Header.Get("Content-Type"); ct != graphContentType {
		t.Errorf("Content-Type %q", ct)
	}
	return ge
}

// decodeEntraError decodes a token endpoint error, refusing fields Entra
// does not send.
func decodeEntraError(t *testing.T, body []byte) entraErrorBody {
	t.Helper()
	var ee entraErrorBody
	if err := decodeStrict(body, &ee); err != nil {
		t.Fatalf("not an Entra error: %v: %s", err, body)
	}
	return ee
}

const devicesPath = "/v1.0/deviceManagement/managedDevices"

// fetch is do without failing on a body that cannot be read.
func fetch(t *testing.T, e *env, u, token string) (*http.Response, []byte, error) {
	t.Helper()
	if strings.HasPrefix(u, "/") {
		u = e.ts.URL + u
	}
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}
