package graph

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// exportServer is a fake Graph serving one export job, and a storage path
// on the same loopback host serving its ZIP.
type exportServer struct {
	t *testing.T

	mu       sync.Mutex
	polls    int
	graphReq []http.Header // headers of the POST and the polls
	storeReq []http.Header // headers of the downloads

	// completeAfter polls, the job is completed with url (storage path
	// when empty) or, with failed, failed.
	completeAfter int
	failed        bool
	url           string
	createStatus  int    // answer to the POST: 201 when 0
	createBody    string // with createStatus
	zip           []byte
	storageFails  int // the first downloads answer 503
}

const exportJobID = "AppInvRawData_0b5b0ee4-6c54-4b8f-9f3a-2f1a9d9e4c01"

// seen returns the polls and the headers of the downloads so far.
func (s *exportServer) seen() (polls int, downloads []http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.polls, append([]http.Header(nil), s.storeReq...)
}

func (s *exportServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case strings.HasPrefix(r.URL.Path, "/storage/"):
		s.storeReq = append(s.storeReq, r.Header.Clone())
		if s.storageFails > 0 {
			s.storageFails--
			w.Header().Set("x-ms-error-code", "ServerBusy")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code><Message>The server is busy.` + "\n" + `RequestId:1</Message></Error>`))
			return
		}
		if r.URL.Query().Get("sig") != "s3cr3t-signature" {
			w.Header().Set("x-ms-error-code", "AuthenticationFailed")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.` + "\n" + `RequestId:2</Message></Error>`))
			return
		}
		_, _ = w.Write(s.zip)
	case r.Method == http.MethodPost && r.URL.Path == "/beta/deviceManagement/reports/exportJobs":
		s.graphReq = append(s.graphReq, r.Header.Clone())
		var body struct {
			ReportName string   `json:"reportName"`
			Format     string   `json:"format"`
			Select     []string `json:"select"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.ReportName != "AppInvRawData" || body.Format != "csv" {
			s.t.Errorf("POST body %+v (%v)", body, err)
		}
		if s.createStatus != 0 {
			w.WriteHeader(s.createStatus)
			_, _ = w.Write([]byte(s.createBody))
			return
		}
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintf(w, `{"id":%q,"reportName":"AppInvRawData","status":"notStarted","url":null}`, exportJobID)
	case r.Method == http.MethodGet && r.URL.Path == "/beta/deviceManagement/reports/exportJobs('"+exportJobID+"')":
		s.graphReq = append(s.graphReq, r.Header.Clone())
		s.polls++
		job := map[string]any{"id": exportJobID, "reportName": "AppInvRawData", "status": "inProgress", "url": nil}
		if s.polls >= s.completeAfter {
			job["status"] = "completed"
			job["url"] = s.url
			if s.failed {
				job["status"] = "failed"
			}
		}
		_ = json.NewEncoder(w).Encode(job)
	default:
		s.t.Errorf("unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

// exportClient is a client of a fake Graph whose storage link is on the
// same host unless s.url says otherwise.
func exportClient(t *testing.T, s *exportServer) (*Client, string) {
	t.Helper()
	s.t = t
	c, srv := newTestClient(t, s)
	if s.url == "" {
		s.url = srv.URL + "/storage/container/" + exportJobID + ".zip?sv=2019-02-02&sr=b&sig=s3cr3t-signature&sp=r"
	}
	return c, srv.URL
}

var fastExportPoll = ExportPoll{Initial: time.Millisecond, Max: 4 * time.Millisecond, Timeout: time.Minute}

// runExport creates, waits for and downloads the job.
func runExport(c *Client, limits DownloadLimits) ([]byte, error) {
	ctx := context.Background()
	job, err := c.CreateExportJob(ctx, ExportRequest{ReportName: "AppInvRawData", Select: []string{"ApplicationKey", "DeviceId", "DeviceName"}})
	if err != nil {
		return nil, err
	}
	if job, err = c.WaitExportJob(ctx, job, fastExportPoll); err != nil {
		return nil, err
	}
	return c.DownloadExport(ctx, job, limits)
}

// zipOf is a ZIP of one file.
func zipOf(t *testing.T, name, content string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// exportCSV has Excel's byte order mark, quoted fields, CRLF and a name
// with a comma and a quote.
const exportCSV = "\ufeff\"ApplicationKey\",\"DeviceId\",\"DeviceName\"\r\n" +
	"\"app-1\",\"dev-1\",\"Alice's \"\"laptop\"\", 2\"\r\n" +
	"\"app-2\",\"dev-1\",\"Alice's \"\"laptop\"\", 2\"\r\n" +
	"\"app-1\",\"dev-2\",\"KIOSK\"\r\n"

func readRows(t *testing.T, data []byte, required ...string) ([][3]string, error) {
	t.Helper()
	var rows [][3]string
	_, err := EachExportRow(data, required, func(h *ExportHeader, f []string) error {
		rows = append(rows, [3]string{f[h.Index("ApplicationKey")], f[h.Index("DeviceId")], f[h.Index("DeviceName")]})
		return nil
	})
	return rows, err
}

func TestExportDownloadsWithoutTokenOrCookies(t *testing.T) {
	s := &exportServer{completeAfter: 3, zip: zipOf(t, exportJobID+".csv", exportCSV)}
	c, base := exportClient(t, s)
	// A cookie jar on the client must not lend the download its cookies.
	jar, _ := cookiejar.New(nil)
	u, _ := url.Parse(base)
	jar.SetCookies(u, []*http.Cookie{{Name: "session", Value: "graph-cookie", Path: "/"}})
	c.HTTP.Jar = jar

	data, err := runExport(c, DownloadLimits{})
	if err != nil {
		t.Fatal(err)
	}
	polls, downloads := s.seen()
	if polls != 3 {
		t.Errorf("the job was polled %d times, it completes at the 3rd", polls)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, h := range s.graphReq {
		if !strings.HasPrefix(h.Get("Authorization"), "Bearer ") {
			t.Errorf("a Graph request went without the token: %v", h)
		}
	}
	if len(downloads) != 1 {
		t.Fatalf("%d downloads", len(downloads))
	}
	for _, h := range downloads {
		if h.Get("Authorization") != "" || h.Get("Cookie") != "" {
			t.Errorf("the download carried Authorization %q, Cookie %q", h.Get("Authorization"), h.Get("Cookie"))
		}
	}
	rows, err := readRows(t, data, "ApplicationKey", "DeviceId", "DeviceName")
	if err != nil {
		t.Fatal(err)
	}
	want := [][3]string{{"app-1", "dev-1", `Alice's "laptop", 2`}, {"app-2", "dev-1", `Alice's "laptop", 2`}, {"app-1", "dev-2", "KIOSK"}}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("rows %q, want %q", rows, want)
	}
}

func TestExportRefusesPlainHTTPDownloadOnAnotherHost(t *testing.T) {
	s := &exportServer{url: "http://exports.example.com/container/" + exportJobID + ".zip?sv=2019-02-02&sr=b&sig=s3cr3t-signature&sp=r"}
	c, _ := exportClient(t, s)
	var mu sync.Mutex
	var hosts []string
	next := c.HTTP.Transport
	c.HTTP.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		hosts = append(hosts, r.URL.Host)
		mu.Unlock()
		return next.RoundTrip(r)
	})
	_, err := runExport(c, DownloadLimits{})
	if !errors.Is(err, ErrInsecureDownloadURL) {
		t.Fatalf("err %v, want a refused download", err)
	}
	if !strings.Contains(err.Error(), "https") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error should ask for https and not show the link's signature: %v", err)
	}
	for _, h := range hosts {
		if strings.Contains(h, "example.com") {
			t.Errorf("a request went to %s", h)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestExportJobForbiddenNamesTheReadWritePermission(t *testing.T) {
	s := &exportServer{createStatus: http.StatusForbidden, createBody: `{"error":{"code":"Forbidden","message":"{\r\n  \"_version\": 3,\r\n  \"Message\": \"Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementConfiguration.ReadWrite.All, DeviceManagementApps.ReadWrite.All, DeviceManagementManagedDevices.ReadWrite.All - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - CustomApiErrorPhrase: \"\r\n}","innerError":{"request-id":"r-1"}}}`}
	c, _ := exportClient(t, s)
	_, err := runExport(c, DownloadLimits{})
	if !errors.Is(err, ErrExportForbidden) {
		t.Fatalf("err %v, want ErrExportForbidden", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "needs the application permission DeviceManagementManagedDevices.ReadWrite.All") || !strings.Contains(msg, "request-id r-1") {
		t.Errorf("the error should name the permission and Graph's request id: %v", msg)
	}
	if strings.Contains(msg, "token-") {
		t.Errorf("the error shows the token: %v", msg)
	}
	if polls, downloads := s.seen(); len(downloads) != 0 || polls != 0 {
		t.Errorf("%d polls and %d downloads after a refused job", polls, len(downloads))
	}
}

func TestExportJobFailedNamesTheJob(t *testing.T) {
	s := &exportServer{completeAfter: 2, failed: true}
	c, _ := exportClient(t, s)
	_, err := runExport(c, DownloadLimits{})
	if !errors.Is(err, ErrExportFailed) || !strings.Contains(err.Error(), exportJobID) {
		t.Fatalf("err %v, want a failed job named %s", err, exportJobID)
	}
	if _, downloads := s.seen(); len(downloads) != 0 {
		t.Errorf("a failed job was downloaded")
	}
}

func TestExportPollStopsWithItsContext(t *testing.T) {
	s := &exportServer{completeAfter: 1 << 30}
	c, _ := exportClient(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	job, err := c.CreateExportJob(ctx, ExportRequest{ReportName: "AppInvRawData"})
	if err != nil {
		t.Fatal(err)
	}
	poll := fastExportPoll
	poll.OnPoll = func(_ ExportJob, polls int) {
		if polls == 3 {
			cancel()
		}
	}
	if _, err := c.WaitExportJob(ctx, job, poll); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want the context's", err)
	}
}

func TestExportDownloadRetriesStorageOutagesAndHidesTheSignature(t *testing.T) {
	s := &exportServer{storageFails: 2, zip: zipOf(t, "report.csv", exportCSV)}
	c, _ := exportClient(t, s)
	var retries []string
	c.OnRetry = func(ev RetryEvent) { retries = append(retries, ev.Err.Error()) }
	if _, err := runExport(c, DownloadLimits{}); err != nil {
		t.Fatal(err)
	}
	if _, downloads := s.seen(); len(downloads) != 3 || len(retries) != 2 {
		t.Fatalf("%d downloads and %d retries, want 3 and 2", len(downloads), len(retries))
	}
	for _, r := range retries {
		if !strings.Contains(r, "ServerBusy") || strings.Contains(r, "s3cr3t") {
			t.Errorf("retry: %s", r)
		}
	}

	// A link whose signature storage refuses is not retried, and the
	// error does not show it.
	s2 := &exportServer{}
	c2, base := exportClient(t, s2)
	s2.url = base + "/storage/container/x.zip?sig=wrong-s3cr3t"
	_, err := runExport(c2, DownloadLimits{})
	var serr *StorageError
	if _, downloads := s2.seen(); !errors.As(err, &serr) || serr.Code != "AuthenticationFailed" || len(downloads) != 1 {
		t.Fatalf("err %v after %d downloads", err, len(downloads))
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("the error shows the signature: %v", err)
	}
}

func TestExportDownloadIsLimited(t *testing.T) {
	s := &exportServer{zip: zipOf(t, "report.csv", strings.Repeat(exportCSV, 50))}
	c, _ := exportClient(t, s)
	if _, err := runExport(c, DownloadLimits{MaxBytes: 100}); !errors.Is(err, ErrExportTooLarge) {
		t.Fatalf("err %v, want ErrExportTooLarge", err)
	}
}

func TestExportRowsNeedTheirColumns(t *testing.T) {
	data := zipOf(t, "report.csv", "\"ApplicationKey\",\"DeviceName\"\r\n\"app-1\",\"KIOSK\"\r\n")
	rows, err := readRows(t, data, "ApplicationKey", "DeviceId")
	if err == nil || !strings.Contains(err.Error(), "DeviceId") || len(rows) != 0 {
		t.Fatalf("rows %v, err %v: want an error naming DeviceId before any row", rows, err)
	}
	if _, err := EachExportRow(zipOf(t, "readme.txt", "x"), nil, nil); err == nil || !strings.Contains(err.Error(), "no CSV") {
		t.Errorf("a ZIP without CSV: %v", err)
	}
	if _, err := EachExportRow([]byte("<Error/>"), nil, nil); err == nil || !strings.Contains(err.Error(), "not a ZIP") {
		t.Errorf("not a ZIP: %v", err)
	}
	// A record that never ends is refused, not buffered.
	huge := zipOf(t, "report.csv", "\"ApplicationKey\"\r\n\""+strings.Repeat("x", 3<<20))
	if _, err := EachExportRow(huge, nil, func(*ExportHeader, []string) error { return nil }); !errors.Is(err, ErrExportRowTooLarge) {
		t.Errorf("a record of 3 MiB: %v", err)
	}
}
