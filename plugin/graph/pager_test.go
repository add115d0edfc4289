package graph

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// staticTokens hands out numbered tokens and records invalidations.
type staticTokens struct {
	mu          sync.Mutex
	n           int
	invalidated []string
}

func (s *staticTokens) Token(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("token-%d", s.n), nil
}

func (s *staticTokens) Invalidate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.invalidated = append(s.invalidated, tok)
	s.n++
}

func newTestClient(t *testing.T, h http.Handler) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	base, _ := url.Parse(srv.URL)
	return &Client{
		HTTP:   NewHTTPClient(5*time.Second, nil),
		Tokens: &staticTokens{},
		Base:   base,
		Retry:  RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, MaxElapsedTime: 5 * time.Second},
	}, srv
}

func walk(t *testing.T, c *Client, first string) ([]*Page, error) {
	t.Helper()
	p := c.Pages(first, 1)
	var pages []*Page
	for {
		page, err := p.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return pages, nil
		}
		if err != nil {
			return pages, err
		}
		pages = append(pages, page)
	}
}

func TestPagerFollowsNextLinksVerbatim(t *testing.T) {
	var seen []string
	var srvURL string
	c, srv := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.RequestURI())
		if got := r.Header.Get("Authorization"); got != "Bearer token-0" {
			t.Errorf("Authorization = %q", got)
		}
		if r.Header.Get("client-request-id") == "" {
			t.Error("no client-request-id sent")
		}
		w.Header().Set("request-id", "rid")
		switch r.URL.Query().Get("$skiptoken") {
		case "":
			fmt.Fprintf(w, `{"@odata.nextLink":"%s/v1.0/deviceManagement/managedDevices?$top=2&$skiptoken=LastDeviceName%%3d'b'","value":[{"id":"a"},{"id":"b"}]}`, srvURL)
		case "LastDeviceName='b'":
			fmt.Fprintf(w, `{"value":[{"id":"c"}],"@odata.nextLink":"%s/v1.0/deviceManagement/managedDevices?$top=2&$skiptoken=LastDeviceName%%3d'c'"}`, srvURL)
		default:
			fmt.Fprint(w, `{"value":[]}`)
		}
	}))
	srvURL = srv.URL
	first := ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0", Top: 2})
	pages, err := walk(t, c, first)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, p := range pages {
		for _, d := range p.Devices {
			ids = append(ids, string(d))
		}
	}
	if got := strings.Join(ids, ""); got != `{"id":"a"}{"id":"b"}{"id":"c"}` {
		t.Errorf("devices = %s", got)
	}
	want := []string{
		"/v1.0/deviceManagement/managedDevices?$top=2",
		"/v1.0/deviceManagement/managedDevices?$top=2&$skiptoken=LastDeviceName%3d'b'",
		"/v1.0/deviceManagement/managedDevices?$top=2&$skiptoken=LastDeviceName%3d'c'",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	if pages[0].Number != 1 || pages[2].Number != 3 || pages[0].RequestID != "rid" {
		t.Errorf("page numbering/ids wrong: %+v", pages[0])
	}
}

func TestManagedDevicesURL(t *testing.T) {
	base, _ := url.Parse("https://graph.microsoft.us")
	got := ManagedDevicesURL(base, Query{APIVersion: "beta", Select: []string{"id", "deviceName"}, Filter: "operatingSystem eq 'Windows'", Top: 100})
	want := "https://graph.microsoft.us/beta/deviceManagement/managedDevices?$select=id,deviceName&$filter=operatingSystem%20eq%20%27Windows%27&$top=100"
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestPagerEmptyTenant(t *testing.T) {
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"@odata.context":"x","@odata.count":0,"value":[]}`)
	}))
	pages, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	if err != nil || len(pages) != 1 || len(pages[0].Devices) != 0 {
		t.Fatalf("pages=%v err=%v, want one empty page", pages, err)
	}
}

func TestPagerRefusesNextLinkToAnotherHost(t *testing.T) {
	for _, link := range []string{
		"https://evil.example.com/v1.0/deviceManagement/managedDevices?$skiptoken=x",
		"HTTPS://127.0.0.1:1/v1.0/x",                    // another port
		"https://127.0.0.1/v1.0/x",                      // another scheme
		"http://user:pw@127.0.0.1:PORT/v1.0/x?$top=1",   // credentials in the link
		"http://127.0.0.1.evil.example.com:PORT/v1.0/x", // look-alike host
	} {
		t.Run(link, func(t *testing.T) {
			var requests atomic.Int32
			var evil atomic.Int32
			other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { evil.Add(1) }))
			defer other.Close()
			var port string
			c, srv := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				requests.Add(1)
				fmt.Fprintf(w, `{"value":[{"id":"a"}],"@odata.nextLink":%q}`, strings.ReplaceAll(link, "PORT", port))
			}))
			port = strings.TrimPrefix(srv.URL, "http://127.0.0.1:")
			pages, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
			if !errors.Is(err, ErrForeignNextLink) {
				t.Fatalf("err = %v, want ErrForeignNextLink", err)
			}
			if len(pages) != 1 || requests.Load() != 1 || evil.Load() != 0 {
				t.Errorf("pages %d, requests %d, foreign requests %d: want 1, 1, 0", len(pages), requests.Load(), evil.Load())
			}
		})
	}
}

func TestPagerRenewsRefusedTokenOnce(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") == "Bearer token-0" {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"Lifetime validation failed, the token is expired."}}`)
			return
		}
		fmt.Fprint(w, `{"value":[{"id":"a"}]}`)
	}))
	pages, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	if err != nil || len(pages) != 1 {
		t.Fatalf("pages=%d err=%v", len(pages), err)
	}
	if got := c.Tokens.(*staticTokens).invalidated; len(got) != 1 || got[0] != "token-0" {
		t.Errorf("invalidated %v, want [token-0]", got)
	}
}

func TestPagerGivesUpOnSecond401(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":{"code":"InvalidAuthenticationToken","message":"Access token validation failure. Invalid audience."}}`)
	}))
	_, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	var gerr *Error
	if !errors.As(err, &gerr) || gerr.StatusCode != 401 || gerr.Code != "InvalidAuthenticationToken" {
		t.Fatalf("err = %v, want the 401", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d requests, want 2 (one renewal)", calls.Load())
	}
}

func TestPagerRetriesTransientErrorsOnTheSamePage(t *testing.T) {
	var calls atomic.Int32
	var srvURL string
	c, srv := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case r.URL.Query().Get("$skiptoken") == "":
			fmt.Fprintf(w, `{"value":[{"id":"a"}],"@odata.nextLink":"%s/v1.0/x?$skiptoken=2"}`, srvURL)
		case n == 2:
			w.Header().Set("Retry-After", "0.05")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"code":"TooManyRequests","message":"throttled"}}`)
		case n == 3:
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprint(w, `<html><body>Bad gateway</body></html>`)
		case n == 4:
			fmt.Fprint(w, `{"value":[{"id":"b"},{"id":`) // truncated
		default:
			fmt.Fprint(w, `{"value":[{"id":"b"}]}`)
		}
	}))
	srvURL = srv.URL
	var events []RetryEvent
	c.OnRetry = func(ev RetryEvent) { events = append(events, ev) }
	start := time.Now()
	pages, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) != 2 || string(pages[1].Devices[0]) != `{"id":"b"}` || pages[1].Number != 2 {
		t.Fatalf("pages = %+v", pages)
	}
	if len(events) != 3 || events[0].Page != 2 || events[0].Wait != 50*time.Millisecond {
		t.Errorf("retry events = %+v, want 3 on page 2, the first waiting Retry-After 50ms", events)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Error("did not wait for Retry-After")
	}
}

func TestPagerFailsFastOnForbidden(t *testing.T) {
	var calls atomic.Int32
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("request-id", "req-1")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, intuneForbiddenBody)
	}))
	_, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	var gerr *Error
	if !errors.As(err, &gerr) || gerr.StatusCode != 403 || calls.Load() != 1 {
		t.Fatalf("err = %v after %d calls, want one 403", err, calls.Load())
	}
	if !strings.Contains(err.Error(), "DeviceManagementManagedDevices.Read.All") || !strings.Contains(err.Error(), "page 1") ||
		!strings.Contains(err.Error(), "request-id req-1") || gerr.ClientRequestID == "" {
		t.Errorf("error %q lacks the permission, the page or the ids", err)
	}
}

func TestPagerGivesUpAfterMaxElapsedTime(t *testing.T) {
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	c.Retry.MaxElapsedTime = 30 * time.Millisecond
	_, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	if err == nil || !strings.Contains(err.Error(), "giving up after") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("err = %v, want giving up on 503", err)
	}
}

func TestPagerStopsWaitingWhenCancelled(t *testing.T) {
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	c.Retry.MaxElapsedTime = 0
	_, err := c.Pages(ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}), 1).Next(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the context's", err)
	}
}

func TestPagerRefusesOversizedPage(t *testing.T) {
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"value":[{"id":"%s"}]}`, strings.Repeat("x", 4096))
	}))
	c.MaxPageBytes = 1024
	_, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	if !errors.Is(err, ErrPageTooLarge) {
		t.Fatalf("err = %v, want ErrPageTooLarge", err)
	}
}

// OData lets a server write nextLink relative to the request URL (SAP CAP
// does); the pager resolves it and keeps the origin check on the result.
func TestPagerResolvesRelativeNextLinks(t *testing.T) {
	var seen []string
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.RequestURI())
		switch r.URL.Query().Get("$skiptoken") {
		case "":
			fmt.Fprint(w, `{"value":[{"id":"a"}],"@odata.nextLink":"managedDevices?$top=1&$skiptoken=1"}`)
		case "1":
			fmt.Fprint(w, `{"value":[{"id":"b"}],"@odata.nextLink":"/v1.0/deviceManagement/managedDevices?$top=1&$skiptoken=2"}`)
		default:
			fmt.Fprint(w, `{"value":[{"id":"c"}]}`)
		}
	}))
	pages, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0", Top: 1}))
	if err != nil || len(pages) != 3 {
		t.Fatalf("pages %d, err %v; want 3 pages", len(pages), err)
	}
	want := []string{
		"/v1.0/deviceManagement/managedDevices?$top=1",
		"/v1.0/deviceManagement/managedDevices?$top=1&$skiptoken=1",
		"/v1.0/deviceManagement/managedDevices?$top=1&$skiptoken=2",
	}
	if fmt.Sprint(seen) != fmt.Sprint(want) {
		t.Errorf("requests %q, want %q", seen, want)
	}
}

func TestPagerRefusesRelativeNextLinkToAnotherHost(t *testing.T) {
	var evil atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { evil.Add(1) }))
	defer other.Close()
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A network-path reference: relative in form, another host in fact.
		fmt.Fprintf(w, `{"value":[],"@odata.nextLink":%q}`, "//"+strings.TrimPrefix(other.URL, "http://")+"/x")
	}))
	_, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	if !errors.Is(err, ErrForeignNextLink) || evil.Load() != 0 {
		t.Fatalf("err = %v, foreign requests %d; want ErrForeignNextLink and none", err, evil.Load())
	}
}

// A local stand-in may write its links with "localhost" while it is
// addressed as 127.0.0.1: the same machine and port, so they are followed.
func TestPagerTreatsLoopbackNamesAsOneHost(t *testing.T) {
	var port string
	c, srv := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("$skiptoken") == "" {
			fmt.Fprintf(w, `{"value":[{"id":"a"}],"@odata.nextLink":"http://localhost:%s/v1.0/deviceManagement/managedDevices?$skiptoken=1"}`, port)
			return
		}
		fmt.Fprint(w, `{"value":[{"id":"b"}]}`)
	}))
	port = strings.TrimPrefix(srv.URL, "http://127.0.0.1:")
	pages, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
	if err != nil || len(pages) != 2 {
		t.Fatalf("pages %d, err %v; want 2", len(pages), err)
	}
}

// Graph's Retry-After is a floor: a page throttled for 1.5 s is not asked
// for again sooner, in any of the header's forms; a 429 without the header
// falls back to the backoff and is survived.
func TestPagerHonoursRetryAfterAsAFloor(t *testing.T) {
	for name, header := range map[string]func() string{
		"fractional seconds": func() string { return "1.5" },
		"HTTP date":          func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) },
		"absent":             func() string { return "" },
	} {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var arrivals []time.Time
			var sentAt time.Time
			c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				arrivals = append(arrivals, time.Now())
				first := len(arrivals) == 1
				mu.Unlock()
				if first {
					if v := header(); v != "" {
						w.Header().Set("Retry-After", v)
					}
					sentAt = time.Now()
					w.WriteHeader(http.StatusTooManyRequests)
					fmt.Fprint(w, `{"error":{"code":"TooManyRequests","message":"Too many requests"}}`)
					return
				}
				fmt.Fprint(w, `{"value":[{"id":"a"}]}`)
			}))
			pages, err := walk(t, c, ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"}))
			if err != nil || len(pages) != 1 {
				t.Fatalf("pages %d, err %v", len(pages), err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(arrivals) != 2 {
				t.Fatalf("%d requests, want 2", len(arrivals))
			}
			gap := arrivals[1].Sub(sentAt)
			// An HTTP date has whole seconds: it promises at least 1 s here.
			floor := map[string]time.Duration{"fractional seconds": 1500 * time.Millisecond, "HTTP date": time.Second}[name]
			if gap < floor {
				t.Errorf("retried after %s, sooner than Retry-After's %s", gap, floor)
			}
		})
	}
}

func TestPagerStopsOnANextLinkToTheSamePage(t *testing.T) {
	var calls atomic.Int32
	var self string
	c, srv := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		fmt.Fprintf(w, `{"value":[{"id":"a"}],"@odata.nextLink":%q}`, self)
	}))
	self = ManagedDevicesURL(c.Base, Query{APIVersion: "v1.0"})
	_ = srv
	pages, err := walk(t, c, self)
	if !errors.Is(err, ErrNextLinkLoop) || len(pages) != 0 || calls.Load() != 1 {
		t.Fatalf("pages %d, requests %d, err %v; want ErrNextLinkLoop after one request", len(pages), calls.Load(), err)
	}
}
