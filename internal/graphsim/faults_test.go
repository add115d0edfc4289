package graphsim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// newToken fetches a fresh token from e's simulator.
func newToken(t *testing.T, e *env) string {
	t.Helper()
	resp, body := e.postToken(t, e.sim.Config().TenantID, e.form())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("token: %d %s", resp.StatusCode, body)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

// checkDevices checks that a page holds exactly devices first..first+n-1.
func checkDevices(t *testing.T, e *env, pg page, first, n int) {
	t.Helper()
	if len(pg.Value) != n {
		t.Fatalf("%d devices, want %d", len(pg.Value), n)
	}
	for k, raw := range pg.Value {
		if !bytes.Equal(raw, e.sim.Device(first+k)) {
			t.Fatalf("device %d of the page is not Device(%d)", k, first+k)
		}
	}
}

func TestFaultKinds(t *testing.T) {
	const httpDate = "Wed, 21 Oct 2026 07:28:00 GMT"
	cases := []struct {
		fault  Fault
		status int // 0: the response is a 200 to check in check
		code   string
		check  func(t *testing.T, e *env, resp *http.Response, body []byte, err error)
	}{
		{fault: Fault{Kind: Fault429, RetryAfter: "1.5"}, status: 429, code: "TooManyRequests"},
		{fault: Fault{Kind: Fault429}, status: 429, code: "TooManyRequests"},
		{fault: Fault{Kind: Fault500}, status: 500, code: "InternalServerError", check: func(t *testing.T, e *env, resp *http.Response, body []byte, err error) {
			var inner struct{ Message string }
			ge := decodeGraphError(t, resp, body)
			if json.Unmarshal([]byte(ge.Error.Message), &inner) != nil || !strings.HasPrefix(inner.Message, "An internal server error has occurred") {
				t.Errorf("500 message is not Intune's nested JSON: %q", ge.Error.Message)
			}
		}},
		{fault: Fault{Kind: Fault502}, status: 502, check: func(t *testing.T, e *env, resp *http.Response, body []byte, err error) {
			if ct := resp.Header.Get("Content-Type"); ct != "text/html" {
				t.Errorf("Content-Type %q", ct)
			}
			if !bytes.HasPrefix(body, []byte("<html>")) || !bytes.Contains(body, []byte("502 Bad Gateway")) || json.Valid(body) {
				t.Errorf("body %s", body)
			}
			if resp.Header.Get("request-id") != "" {
				t.Error("a gateway's 502 carries Graph's request-id")
			}
		}},
		{fault: Fault{Kind: Fault503, RetryAfter: httpDate}, status: 503, code: "ServiceUnavailable"},
		{fault: Fault{Kind: Fault504}, status: 504, code: "GatewayTimeout"},
		{fault: Fault{Kind: Fault504, RetryAfter: "7"}, status: 504, code: "GatewayTimeout"},
		{fault: Fault{Kind: Fault400}, status: 400, code: "BadRequest"},
		{fault: Fault{Kind: Fault403}, status: 403, code: "Forbidden", check: func(t *testing.T, e *env, resp *http.Response, body []byte, err error) {
			ge := decodeGraphError(t, resp, body)
			if ge.Error.Message != intuneForbidden(resp.Header.Get("request-id")) {
				t.Errorf("403 message %q", ge.Error.Message)
			}
		}},
		{fault: Fault{Kind: Fault404}, status: 404, code: "ResourceNotFound"},
		{fault: Fault{Kind: Fault401}, status: 401, code: "InvalidAuthenticationToken", check: func(t *testing.T, e *env, resp *http.Response, body []byte, err error) {
			if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer ") {
				t.Errorf("WWW-Authenticate %q", resp.Header.Get("WWW-Authenticate"))
			}
		}},
		{fault: Fault{Kind: FaultSlow, Delay: 150 * time.Millisecond}, check: func(t *testing.T, e *env, resp *http.Response, body []byte, err error) {
			checkDevices(t, e, decodePage(t, body), 10, 10)
		}},
		{fault: Fault{Kind: FaultTruncate}, check: func(t *testing.T, e *env, resp *http.Response, body []byte, err error) {
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("reading a truncated page: %v, want unexpected EOF", err)
			}
			n, _ := strconv.Atoi(resp.Header.Get("Content-Length"))
			if n < 10_000 || len(body) == 0 || len(body) > n/2+4096 {
				t.Errorf("Content-Length %d, read %d bytes", n, len(body))
			}
		}},
		{fault: Fault{Kind: FaultMalformed}, check: func(t *testing.T, e *env, resp *http.Response, body []byte, err error) {
			if err != nil || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Fatalf("malformed page cut short: %v, %d of %s bytes", err, len(body), resp.Header.Get("Content-Length"))
			}
			if json.Valid(body) {
				t.Fatal("malformed page parses")
			}
			var v any
			if json.Unmarshal(body, &v) == nil {
				t.Fatal("malformed page decodes")
			}
			// Only one byte differs from the good page.
			good := bytes.Replace(body, []byte(`,#"id"`), []byte(`,{"id"`), 1)
			checkDevices(t, e, decodePage(t, good), 10, 10)
		}},
		{fault: Fault{Kind: FaultForeignNextLink}, check: func(t *testing.T, e *env, resp *http.Response, body []byte, err error) {
			pg := decodePage(t, body)
			checkDevices(t, e, pg, 10, 10)
			if !strings.HasPrefix(pg.NextLink, "https://evil.example.com/v1.0/deviceManagement/managedDevices?$skiptoken=") ||
				!strings.Contains(pg.NextLink, e.sim.DeviceID(19)) {
				t.Errorf("nextLink %q", pg.NextLink)
			}
		}},
	}
	for _, tc := range cases {
		name := string(tc.fault.Kind)
		if tc.fault.RetryAfter != "" {
			name += " retry-after " + tc.fault.RetryAfter
		}
		t.Run(name, func(t *testing.T) {
			f := tc.fault
			f.Page, f.Attempt = 2, 1
			e := newEnv(t, Config{Devices: 25, PageSize: 10, Faults: []Fault{f}})
			_, body := e.get(t, devicesPath, e.token)
			p1 := decodePage(t, body)
			checkDevices(t, e, p1, 0, 10)

			start := time.Now()
			resp, body, err := fetch(t, e, p1.NextLink, e.token)
			if f.Kind == FaultSlow && time.Since(start) < f.Delay {
				t.Errorf("slow page came after %v", time.Since(start))
			}
			if tc.status != 0 {
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
				}
				if tc.code != "" {
					if ge := decodeGraphError(t, resp, body); ge.Error.Code != tc.code {
						t.Errorf("code %q, want %q", ge.Error.Code, tc.code)
					}
				}
				// Verbatim, or absent.
				if got, ok := resp.Header["Retry-After"]; f.RetryAfter == "" && ok || f.RetryAfter != "" && (len(got) != 1 || got[0] != f.RetryAfter) {
					t.Errorf("Retry-After %q, want %q", got, f.RetryAfter)
				}
			} else if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if tc.check != nil {
				tc.check(t, e, resp, body, err)
			}

			// The next attempt is a normal page; a revoked token stays
			// revoked and a new one works.
			token := e.token
			if f.Kind == Fault401 {
				resp, body := e.get(t, p1.NextLink, token)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("revoked token: status %d", resp.StatusCode)
				}
				if ge := decodeGraphError(t, resp, body); ge.Error.Code != "InvalidAuthenticationToken" || ge.Error.Message != revokedMessage {
					t.Errorf("revoked token: %+v", ge.Error)
				}
				token = newToken(t, e)
			}
			resp, body = e.get(t, p1.NextLink, token)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("retry: status %d: %s", resp.StatusCode, body)
			}
			p2 := decodePage(t, body)
			checkDevices(t, e, p2, 10, 10)
			if !strings.HasPrefix(p2.NextLink, e.ts.URL+"/") {
				t.Errorf("retry: nextLink %q", p2.NextLink)
			}

			// The log: token, page 1, page 2 faulty, (page 2 refused,
			// token,) page 2 again.
			var got []string
			for _, rec := range e.sim.Requests() {
				got = append(got, fmtRecord(rec))
			}
			want := []string{"token 200", "p1a1 200", "p2a1 " + strconv.Itoa(max(tc.status, 200)) + " " + string(f.Kind), "p2a2 200"}
			if f.Kind == Fault401 {
				want = []string{"token 200", "p1a1 200", "p2a1 401 401", "p2a2 401", "token 200", "p2a3 200"}
			}
			if strings.Join(got, ", ") != strings.Join(want, ", ") {
				t.Errorf("requests\n got %v\nwant %v", got, want)
			}
			st := e.sim.Stats()
			served := map[FaultKind]int64{FaultSlow: 3, FaultForeignNextLink: 3}[f.Kind]
			if served == 0 {
				served = 2
			}
			if st.FaultsInjected != 1 || st.PagesServed != served || st.BadRequests != map[bool]int64{true: 1}[f.Kind == Fault400] {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func fmtRecord(r RequestRecord) string {
	s := "token"
	if !r.Token {
		s = "p" + strconv.Itoa(r.Page) + "a" + strconv.Itoa(r.Attempt)
	}
	s += " " + strconv.Itoa(r.Status)
	if r.Fault != "" {
		s += " " + string(r.Fault)
	}
	return s
}

func TestFaultMatching(t *testing.T) {
	e := newEnv(t, Config{Devices: 30, PageSize: 10, Faults: []Fault{
		{Attempt: 2, Kind: Fault503},          // every page, second attempt
		{Page: 1, Kind: Fault429},             // page 1, every attempt, unless the first fault matched
		{Page: 3, Attempt: 1, Kind: Fault500}, //
	}})
	statuses := func(u string, n int) []int {
		var out []int
		for range n {
			resp, _ := e.get(t, u, e.token)
			out = append(out, resp.StatusCode)
		}
		return out
	}
	if got := statuses(devicesPath, 4); !slices.Equal(got, []int{429, 503, 429, 429}) {
		t.Errorf("page 1: %v", got)
	}
	tok := string(appendSkipToken(nil, "x", []byte(e.sim.DeviceID(19))))
	if got := statuses(devicesPath+"?$skiptoken="+tok, 3); !slices.Equal(got, []int{500, 503, 200}) {
		t.Errorf("page 3: %v", got)
	}

	// New faults restart the attempts.
	e.sim.SetFaults([]Fault{{Page: 1, Attempt: 2, Kind: Fault404}})
	if got := statuses(devicesPath, 3); !slices.Equal(got, []int{200, 404, 200}) {
		t.Errorf("after SetFaults: %v", got)
	}
	e.sim.SetFaults(nil)
	if got := statuses(devicesPath, 2); !slices.Equal(got, []int{200, 200}) {
		t.Errorf("without faults: %v", got)
	}
	recs := e.sim.Requests()
	if last := recs[len(recs)-1]; last.Page != 1 || last.Attempt != 2 {
		t.Errorf("last record %+v", last)
	}
}

// The page number follows $top, the filter and removals, which is what a
// script counting a client's pages expects.
func TestFaultPageNumbers(t *testing.T) {
	e := newEnv(t, Config{Devices: 200, PageSize: 50, Seed: 3})
	e.sim.Remove(1, 2, 3)
	for _, q := range []string{"$top=7", "$filter=" + url.QueryEscape("operatingSystem eq 'Windows'") + "&$top=9", ""} {
		e.sim.SetFaults([]Fault{{Page: 3, Attempt: 1, Kind: Fault503}})
		e.sim.ResetRequests()
		next := e.ts.URL + devicesPath + "?" + q
		pages := 0
		for next != "" {
			resp, body := e.get(t, next, e.token)
			if resp.StatusCode == http.StatusServiceUnavailable {
				if pages != 2 {
					t.Errorf("%q: 503 on page %d", q, pages+1)
				}
				continue
			}
			pages++
			next = decodePage(t, body).NextLink
		}
		var got []string
		for _, rec := range e.sim.Requests() {
			got = append(got, fmtRecord(rec))
		}
		want := []string{}
		for p := 1; p <= pages; p++ {
			want = append(want, "p"+strconv.Itoa(p)+"a1 200")
			if p == 3 {
				want[len(want)-1] = "p3a1 503 503"
				want = append(want, "p3a2 200")
			}
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%q: requests\n got %v\nwant %v", q, got, want)
		}
	}
}

// A status fault answers before the token is checked; a page fault alters
// only a page that would have been served.
func TestFaultsAndTokens(t *testing.T) {
	e := newEnv(t, Config{Devices: 5, Faults: []Fault{{Attempt: 1, Kind: Fault429}, {Attempt: 2, Kind: FaultMalformed}}})
	if resp, _ := e.get(t, devicesPath, ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("429 without a token: %d", resp.StatusCode)
	}
	if resp, _ := e.get(t, devicesPath, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("malformed without a token: %d", resp.StatusCode)
	}
	if resp, body := e.get(t, devicesPath, e.token); resp.StatusCode != http.StatusOK || !json.Valid(body) {
		t.Errorf("third attempt: %d %s", resp.StatusCode, body)
	}
	recs := e.sim.Requests()
	if len(recs) != 4 || fmtRecord(recs[1]) != "p1a1 429 429" || fmtRecord(recs[2]) != "p1a2 401" || fmtRecord(recs[3]) != "p1a3 200" {
		t.Errorf("requests %+v", recs)
	}
	if st := e.sim.Stats(); st.FaultsInjected != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultOnEveryPage(t *testing.T) {
	// Foreign links on every page, the last one included: a client that
	// follows none of them sees one page.
	e := newEnv(t, Config{Devices: 15, PageSize: 10, Faults: []Fault{{Kind: FaultForeignNextLink}}})
	for _, u := range []string{devicesPath, devicesPath + "?$skiptoken=" + string(appendSkipToken(nil, "x", []byte(e.sim.DeviceID(9))))} {
		_, body := e.get(t, u, e.token)
		if pg := decodePage(t, body); !strings.HasPrefix(pg.NextLink, "https://"+ForeignHost+"/") {
			t.Errorf("%s: nextLink %q", u, pg.NextLink)
		}
	}
}

func TestSlowFaultHonoursCancellation(t *testing.T) {
	sim := New(Config{Devices: 10, Faults: []Fault{{Kind: FaultSlow, Delay: time.Hour}}})
	token := sim.issueToken()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req := httptest.NewRequest(http.MethodGet, devicesPath, nil).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+token)
	start := time.Now()
	sim.ServeHTTP(httptest.NewRecorder(), req)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled request took %v", d)
	}
	recs := sim.Requests()
	if len(recs) != 1 || recs[0].Status != 0 || recs[0].Fault != FaultSlow || recs[0].Page != 1 {
		t.Errorf("requests %+v", recs)
	}
}

func TestTokenOutage(t *testing.T) {
	for _, status := range []int{0, 503, 429} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			sim := New(Config{TokenOutage: 2, TokenOutageStatus: status})
			e := &env{sim: sim, ts: httptest.NewServer(sim)}
			defer e.ts.Close()
			want := status
			if want == 0 {
				want = 503
			}
			for k := 0; k < 2; k++ {
				resp, body := e.postToken(t, DefaultTenantID, e.form())
				if resp.StatusCode != want {
					t.Fatalf("request %d: status %d, want %d", k+1, resp.StatusCode, want)
				}
				var ee entraErrorBody
				if err := decodeStrict(body, &ee); err != nil {
					t.Fatalf("not an Entra error: %v: %s", err, body)
				}
				if ee.Error != "temporarily_unavailable" || len(ee.Codes) != 1 || !strings.HasPrefix(ee.Description, "AADSTS"+strconv.Itoa(ee.Codes[0])+": ") ||
					ee.TraceID != resp.Header.Get("x-ms-request-id") {
					t.Errorf("error %+v", ee)
				}
				if ra := resp.Header.Get("Retry-After"); want == 429 && ra != "1" || want == 503 && ra != "" {
					t.Errorf("Retry-After %q", ra)
				}
			}
			token := newToken(t, e)
			if resp, body := e.get(t, devicesPath, token); resp.StatusCode != http.StatusOK {
				t.Errorf("after the outage: %d %s", resp.StatusCode, body)
			}
			var got []string
			for _, rec := range sim.Requests() {
				got = append(got, fmtRecord(rec))
			}
			w := strconv.Itoa(want)
			if strings.Join(got, ",") != "token "+w+" "+w+",token "+w+" "+w+",token 200,p1a1 200" {
				t.Errorf("requests %v", got)
			}
			if st := sim.Stats(); st.TokenRequests != 3 || st.TokensIssued != 1 || st.FaultsInjected != 2 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestTokenEnforcedLifetime(t *testing.T) {
	sim := New(Config{Devices: 3, TokenEnforcedLifetime: 5 * time.Minute})
	clock := time.Date(2026, 11, 28, 1, 2, 3, 0, time.UTC)
	var mu sync.Mutex
	sim.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	e := &env{sim: sim, ts: httptest.NewServer(sim)}
	defer e.ts.Close()

	_, body := e.postToken(t, DefaultTenantID, e.form())
	if !bytes.Contains(body, []byte(`"expires_in":3599,`)) {
		t.Fatalf("the token should still announce an hour: %s", body)
	}
	token := newToken(t, e)
	advance(5*time.Minute - time.Second)
	if resp, _ := e.get(t, devicesPath, token); resp.StatusCode != http.StatusOK {
		t.Fatalf("before the limit: %d", resp.StatusCode)
	}
	fresh := newToken(t, e)
	advance(time.Second)
	resp, body := e.get(t, devicesPath, token)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("at the limit: %d", resp.StatusCode)
	}
	if ge := decodeGraphError(t, resp, body); ge.Error.Code != "InvalidAuthenticationToken" || ge.Error.Message != "Lifetime validation failed, the token is expired." {
		t.Errorf("error %+v", ge.Error)
	}
	if resp, _ := e.get(t, devicesPath, fresh); resp.StatusCode != http.StatusOK {
		t.Errorf("a younger token: %d", resp.StatusCode)
	}
}

func TestRequestLog(t *testing.T) {
	e := newEnv(t, Config{Devices: 3})
	e.get(t, devicesPath+"?$top=abc", e.token)
	e.get(t, "/v1.0/users", e.token)
	req, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/_graphsim/faults", strings.NewReader(`[]`))
	do(t, req)
	recs := e.sim.Requests()
	if len(recs) != 3 || !recs[0].Token || fmtRecord(recs[1]) != "p0a0 400" || fmtRecord(recs[2]) != "p0a0 404" {
		t.Errorf("requests %+v", recs)
	}
	for k := 1; k < len(recs); k++ {
		if recs[k].At.Before(recs[k-1].At) || recs[k].At.IsZero() {
			t.Errorf("record %d at %v", k, recs[k].At)
		}
	}
	e.sim.ResetRequests()
	if recs := e.sim.Requests(); len(recs) != 0 {
		t.Errorf("after reset: %+v", recs)
	}
	e.get(t, devicesPath, e.token)
	if recs := e.sim.Requests(); len(recs) != 1 || fmtRecord(recs[0]) != "p1a1 200" {
		t.Errorf("after reset: %+v", recs)
	}
}

// The log keeps arrival order: a slow page that arrived first is first.
func TestRequestLogArrivalOrder(t *testing.T) {
	e := newEnv(t, Config{Devices: 3, Faults: []Fault{{Kind: FaultSlow, Delay: 200 * time.Millisecond}}})
	e.sim.ResetRequests()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.get(t, devicesPath, e.token)
	}()
	for len(e.sim.Requests()) == 0 {
		time.Sleep(time.Millisecond)
	}
	if recs := e.sim.Requests(); recs[0].Status != 0 {
		t.Errorf("unfinished request %+v", recs[0])
	}
	newToken(t, e)
	<-done
	recs := e.sim.Requests()
	if len(recs) != 2 || fmtRecord(recs[0]) != "p1a1 200 slow" || !recs[1].Token {
		t.Errorf("requests %+v", recs)
	}
}

func TestRequestLogBound(t *testing.T) {
	sim := New(Config{Devices: 1})
	sim.logLimit = 100
	for range 260 {
		sim.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, devicesPath, nil))
	}
	// The oldest half goes whenever the log is full: the newest stay, in
	// order.
	recs := sim.Requests()
	if len(recs) < 50 || len(recs) > 100 {
		t.Fatalf("%d records", len(recs))
	}
	for k, rec := range recs {
		if want := 260 - len(recs) + k + 1; rec.Attempt != want || rec.Status != 401 {
			t.Fatalf("record %d: %+v, want attempt %d", k, rec, want)
		}
	}
	sim.ResetRequests()
	sim.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, devicesPath, nil))
	if recs := sim.Requests(); len(recs) != 1 || recs[0].Attempt != 261 {
		t.Errorf("after reset: %+v", recs)
	}
}

func TestParseFault(t *testing.T) {
	good := []struct {
		in   string
		want Fault
	}{
		{"page=2,attempt=1,kind=429,retry_after=1.5", Fault{Page: 2, Attempt: 1, Kind: Fault429, RetryAfter: "1.5"}},
		{"kind=slow,delay=3s", Fault{Kind: FaultSlow, Delay: 3 * time.Second}},
		{" kind = TRUNCATE , page = 4 ", Fault{Page: 4, Kind: FaultTruncate}},
		{"kind=503,retry_after=Wed, 21 Oct 2026 07:28:00 GMT,page=3", Fault{Page: 3, Kind: Fault503, RetryAfter: "Wed, 21 Oct 2026 07:28:00 GMT"}},
		{"kind=foreign_nextlink,", Fault{Kind: FaultForeignNextLink}},
	}
	for _, tc := range good {
		got, err := ParseFault(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseFault(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "no kind"},
		{"429", "is not key=value"},
		{"page=2", "no kind"},
		{"kind=418", `unknown fault kind "418"`},
		{"kind=429,page=two", `bad page "two": want a non-negative integer`},
		{"kind=429,attempt=-1", `bad attempt "-1"`},
		{"kind=slow,delay=3", `bad delay "3"`},
		{"kind=slow", `needs a delay`},
		{"kind=429,delay=1s", `takes no delay`},
		{"kind=truncate,retry_after=2", `takes no retry_after`},
		{"kind=429,color=red", `unknown key "color"`},
		{"kind=429,kind=503", `key "kind" given twice`},
	}
	for _, tc := range bad {
		_, err := ParseFault(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), strconv.Quote(tc.in)) {
			t.Errorf("ParseFault(%q): %v, want an error with %q", tc.in, err, tc.msg)
		}
	}
}

func TestFaultJSON(t *testing.T) {
	in := []Fault{{Page: 2, Attempt: 1, Kind: Fault429, RetryAfter: "1.5"}, {Kind: FaultSlow, Delay: 1500 * time.Millisecond}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `[{"page":2,"attempt":1,"kind":"429","retry_after":"1.5"},{"kind":"slow","delay":"1.5s"}]` {
		t.Errorf("JSON %s", b)
	}
	var out []Fault
	if err := json.Unmarshal(b, &out); err != nil || len(out) != 2 || out[0] != in[0] || out[1] != in[1] {
		t.Errorf("round trip: %+v %v", out, err)
	}
	for _, bad := range []string{`[{"kind":"nope"}]`, `[{"kind":"slow","delay":"soon"}]`, `[{"kind":"429","colour":1}]`, `[{"kind":"429","page":-1}]`} {
		if err := json.Unmarshal([]byte(bad), &out); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestSetFaultsPanicsOnInvalidFault(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "unknown fault kind") {
			t.Errorf("recovered %v", r)
		}
	}()
	New(Config{}).SetFaults([]Fault{{Kind: "teapot"}})
}
