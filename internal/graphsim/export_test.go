package graphsim

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

const exportJobsPath = "/beta/deviceManagement/reports/exportJobs"

type jobJSON struct {
	Context            string   `json:"@odata.context"`
	ID                 string   `json:"id"`
	ReportName         string   `json:"reportName"`
	Filter             *string  `json:"filter"`
	LocalizationType   string   `json:"localizationType"`
	Select             []string `json:"select"`
	Format             string   `json:"format"`
	SnapshotID         *string  `json:"snapshotId"`
	Status             string   `json:"status"`
	URL                *string  `json:"url"`
	RequestDateTime    string   `json:"requestDateTime"`
	ExpirationDateTime string   `json:"expirationDateTime"`
}

func (e *env) post(t *testing.T, path, body, token string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return do(t, req)
}

func decodeJob(t *testing.T, resp *http.Response, body []byte, status int) jobJSON {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, body)
	}
	var j jobJSON
	if err := decodeStrict(body, &j); err != nil {
		t.Fatalf("job %s: %v", body, err)
	}
	return j
}

// exportEnv is an app tenant allowed to export, whose storage listener is
// stopped with the test.
func exportEnv(t *testing.T, mod func(*Config), setup ...func(*Server)) *env {
	e := appsEnv(t, func(c *Config) {
		c.Devices, c.DetectedApps, c.AppsPerDevice, c.ReadWrite = 30, 150, 20, true
		if mod != nil {
			mod(c)
		}
	}, setup...)
	t.Cleanup(func() { _ = e.sim.Close() })
	return e
}

// download fetches an export's URL, with an Authorization header when
// token is not empty, and returns the rows of its CSV.
func download(t *testing.T, u, token string) [][]string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, body := do(t, req)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %d %s", resp.StatusCode, body)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("not a ZIP: %v", err)
	}
	if len(zr.File) != 1 || !strings.HasSuffix(zr.File[0].Name, ".csv") {
		t.Fatalf("ZIP holds %d files, first %q", len(zr.File), zr.File[0].Name)
	}
	f, err := zr.File[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	return rows
}

func TestExportNeedsReadWrite(t *testing.T) {
	e := exportEnv(t, func(c *Config) { c.ReadWrite = false })
	resp, body := e.post(t, exportJobsPath, `{"reportName":"AppInvRawData","format":"csv"}`, e.token)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	ge := decodeGraphError(t, resp, body)
	if ge.Error.Code != "Forbidden" || !strings.Contains(ge.Error.Message, "DeviceManagementManagedDevices.ReadWrite.All") {
		t.Errorf("error %+v", ge.Error)
	}
	if resp, _ := e.post(t, exportJobsPath, `{"reportName":"AppInvRawData"}`, ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
}

func TestExportFlow(t *testing.T) {
	e := exportEnv(t, func(c *Config) { c.ExportPolls = 2 })
	e.sim.ResetRequests()
	resp, body := e.post(t, exportJobsPath, `{"reportName":"AppInvRawData","format":"csv"}`, e.token)
	job := decodeJob(t, resp, body, http.StatusCreated)
	if !strings.HasPrefix(job.ID, "AppInvRawData_") || job.Status != "notStarted" || job.URL != nil || job.Format != "csv" ||
		job.ReportName != "AppInvRawData" || job.ExpirationDateTime != "0001-01-01T00:00:00Z" || job.Select == nil ||
		job.Context != "https://graph.microsoft.com/beta/$metadata#deviceManagement/reports/exportJobs/$entity" {
		t.Errorf("new job %s", body)
	}
	if _, err := time.Parse(time.RFC3339Nano, job.RequestDateTime); err != nil {
		t.Errorf("requestDateTime %q", job.RequestDateTime)
	}
	if loc := resp.Header.Get("Location"); !strings.HasSuffix(loc, "/exportJobs('"+job.ID+"')") {
		t.Errorf("Location %q", loc)
	}
	poll := exportJobsPath + "('" + job.ID + "')"
	for k := range 2 {
		resp, body := e.get(t, poll, e.token)
		if j := decodeJob(t, resp, body, 200); j.Status != "inProgress" || j.URL != nil {
			t.Errorf("poll %d: %s", k+1, body)
		}
	}
	resp, body = e.get(t, "/v1.0/deviceManagement/reports/exportJobs/"+job.ID, e.token)
	done := decodeJob(t, resp, body, 200)
	if done.Status != "completed" || done.URL == nil || done.Context != "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/reports/exportJobs/$entity" {
		t.Fatalf("third poll: %s", body)
	}
	u, err := url.Parse(*done.URL)
	if err != nil || u.Host == strings.TrimPrefix(e.ts.URL, "http://") || !strings.HasSuffix(u.Path, "/"+job.ID+".zip") || u.Query().Get("sig") == "" {
		t.Errorf("download URL %s on Graph's host %s", *done.URL, e.ts.URL)
	}
	if exp, err := time.Parse(time.RFC3339Nano, done.ExpirationDateTime); err != nil || exp.Before(time.Now().Add(5*time.Hour)) {
		t.Errorf("expirationDateTime %q", done.ExpirationDateTime)
	}

	want := e.sim.DeviceAppPairs()
	apps := map[string]DetectedApp{}
	for _, a := range e.sim.DetectedApps() {
		apps[a.ID] = a
	}
	rows := download(t, *done.URL, "")
	if !slices.Equal(rows[0], AppInvRawDataColumns) {
		t.Errorf("header %v", rows[0])
	}
	if len(rows)-1 != len(want) {
		t.Fatalf("%d rows, %d pairs", len(rows)-1, len(want))
	}
	for k, row := range rows[1:] {
		p := want[k]
		a := apps[row[0]]
		if row[0] != p.AppID || row[5] != p.DeviceID || row[6] != p.DeviceName || row[1] != a.DisplayName || row[2] != a.Publisher || row[4] != a.Version {
			t.Fatalf("row %d %q, pair %+v, app %+v", k+1, row, p, a)
		}
	}
	// Sending the Graph token along is recorded: a client must not.
	download(t, *done.URL, e.token)
	recs := e.sim.StorageRequests()
	if len(recs) != 2 || recs[0].Authorized || !recs[1].Authorized || recs[0].Status != 200 || recs[0].At.IsZero() {
		t.Errorf("storage records %+v", recs)
	}
	var kinds []string
	for _, r := range e.sim.Requests() {
		kinds = append(kinds, r.Kind)
	}
	if want := []string{KindExportJob, KindExportJob, KindExportJob, KindExportJob, KindDownload, KindDownload}; !slices.Equal(kinds, want) {
		t.Errorf("kinds %v", kinds)
	}
	if st := e.sim.Stats(); st.ExportJobs != 1 || st.Downloads != 2 {
		t.Errorf("stats %+v", st)
	}

	// The storage host wants the signature it handed out.
	bad := *u
	q := bad.Query()
	q.Set("sig", "forged")
	bad.RawQuery = q.Encode()
	resp, body = do(t, mustRequest(t, bad.String()))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "<Code>AuthenticationFailed</Code>") || resp.Header.Get("x-ms-error-code") != "AuthenticationFailed" {
		t.Errorf("forged signature: %d %s", resp.StatusCode, body)
	}
	other := *u
	other.Path = strings.Replace(other.Path, job.ID, "AppInvRawData_00000000-0000-0000-0000-000000000000", 1)
	if resp, body := do(t, mustRequest(t, other.String())); resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "BlobNotFound") {
		t.Errorf("unknown blob: %d %s", resp.StatusCode, body)
	}
}

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// The export holds the tenant as it was at completion, with the columns
// asked for, on a storage host the caller serves.
func TestExportSelectAndStorageHandler(t *testing.T) {
	var storage *httptest.Server
	var clock *fakeClock
	e := exportEnv(t, func(c *Config) { c.ExportDelay = time.Minute }, withClock(&clock), func(s *Server) {
		storage = httptest.NewServer(s.StorageHandler())
		t.Cleanup(storage.Close)
		s.cfg.StorageURL = storage.URL
	})

	resp, body := e.post(t, exportJobsPath, `{"reportName":"appinvrawdata","select":["DeviceId","ApplicationKey","ApplicationShortVersion"],"localizationType":"ReplaceLocalizableValues"}`, e.token)
	job := decodeJob(t, resp, body, http.StatusCreated)
	if !slices.Equal(job.Select, []string{"DeviceId", "ApplicationKey", "ApplicationShortVersion"}) || job.LocalizationType != "ReplaceLocalizableValues" {
		t.Errorf("job %s", body)
	}
	poll := exportJobsPath + "/" + job.ID
	clock.Advance(59 * time.Second)
	if resp, body := e.get(t, poll, e.token); decodeJob(t, resp, body, 200).Status != "inProgress" {
		t.Errorf("before the delay: %s", body)
	}
	e.sim.Remove(0)
	clock.Advance(time.Second)
	resp, body = e.get(t, poll, e.token)
	done := decodeJob(t, resp, body, 200)
	if done.Status != "completed" || !strings.HasPrefix(*done.URL, storage.URL+"/") {
		t.Fatalf("after the delay: %s", body)
	}
	e.sim.Remove(1) // after completion: still in the export
	rows := download(t, *done.URL, "")
	if !slices.Equal(rows[0], []string{"DeviceId", "ApplicationKey", "ApplicationShortVersion"}) {
		t.Errorf("header %v", rows[0])
	}
	seen := map[string]bool{}
	for _, row := range rows[1:] {
		seen[row[0]] = true
		if strings.Count(row[2], ".") > 2 {
			t.Errorf("short version %q", row[2])
		}
	}
	if seen[e.sim.DeviceID(0)] || !seen[e.sim.DeviceID(1)] {
		t.Errorf("export of devices %v", seen)
	}
	// The link expires.
	clock.Advance(exportLifetime)
	if resp, body := do(t, mustRequest(t, *done.URL)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("expired link: %d %s", resp.StatusCode, body)
	}
}

func TestExportBadRequests(t *testing.T) {
	e := exportEnv(t, nil)
	for body, msg := range map[string]string{
		`{"reportName":"Devices"}`:                                    "The report 'Devices' is not supported by graphsim, which exports AppInvRawData only.",
		`{"format":"csv"}`:                                            "reportName is required.",
		`{"reportName":"AppInvRawData","format":"json"}`:              "graphsim exports csv only, not 'json'.",
		`{"reportName":"AppInvRawData","filter":"(Platform eq '1')"}`: "graphsim does not filter exports.",
		`{"reportName":"AppInvRawData","select":["Nope"]}`:            "Invalid select column 'Nope' for report AppInvRawData.",
		`{"reportName":"AppInvRawData","colour":"red"}`:               "The property 'colour' does not exist on type 'microsoft.graph.deviceManagementExportJob'. Make sure to only use property names that are defined by the type.",
		`{"reportName":42}`:                                           "Cannot convert the literal '42' to the expected type 'Edm.String' of property 'reportName'.",
		`not json`:                                                    "Invalid JSON in the request body: a deviceManagementExportJob object is expected.",
	} {
		resp, rb := e.post(t, exportJobsPath, body, e.token)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", body, resp.StatusCode, rb)
			continue
		}
		if ge := decodeGraphError(t, resp, rb); ge.Error.Code != "BadRequest" || ge.Error.Message != msg {
			t.Errorf("%s: %+v", body, ge.Error)
		}
	}
	if resp, _ := e.get(t, exportJobsPath, e.token); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET exportJobs: %d", resp.StatusCode)
	}
}
