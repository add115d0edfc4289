package graph

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Intune's reports are exported by jobs ("Export Intune reports using Graph
// APIs" and the deviceManagementExportJob resource in Microsoft's docs):
//
//	POST {graph}/beta/deviceManagement/reports/exportJobs  {"reportName":"AppInvRawData","format":"csv"}
//	GET  {graph}/beta/deviceManagement/reports/exportJobs('{id}')   until "status": "completed"
//	GET  {url}   the job's download link, a SAS URL on Azure storage: a ZIP of one CSV
//
// The POST and the polls are Graph requests, with the token, retries and
// throttle of every other (send). The download is not: it goes to another
// host, which must never see the Graph token (DownloadExport).

// ExportPermission is the application permission that creating an export
// job needs: Graph refuses the POST to an app with read permissions only.
const ExportPermission = "DeviceManagementManagedDevices.ReadWrite.All"

// ErrExportForbidden is what an ExportPermissionError unwraps to.
var ErrExportForbidden = errors.New("creating a report export job needs the application permission " + ExportPermission)

// ExportPermissionError is Graph's 403 to the creation of an export job.
// It deliberately does not unwrap to Graph's *Error, whose 403 callers read
// as a missing read permission; Graph holds that error, with its ids.
type ExportPermissionError struct{ Graph *Error }

func (e *ExportPermissionError) Error() string {
	return ErrExportForbidden.Error() + " (granted with admin consent); Graph refused the job: " + e.Graph.Error()
}

func (e *ExportPermissionError) Unwrap() error { return ErrExportForbidden }

// ErrExportFailed reports a job that Intune ended with status "failed".
var ErrExportFailed = errors.New("the report export job failed")

// ErrInsecureDownloadURL reports a download link this client refuses to
// fetch: not https (except on a loopback host), or not a plain URL.
var ErrInsecureDownloadURL = errors.New("refusing to download the export")

// ErrExportTooLarge reports a download above DownloadLimits.MaxBytes.
var ErrExportTooLarge = errors.New("the export is larger than the download limit")

// ErrExportRowTooLarge reports a CSV record above maxExportRowBytes: a
// broken file, read no further rather than held in memory.
var ErrExportRowTooLarge = errors.New("a CSV record of the export is larger than 1 MiB")

// Defaults of ExportPoll and DownloadLimits.
const (
	DefaultExportPollInitial     = time.Second
	DefaultExportPollMax         = 30 * time.Second
	DefaultExportTimeout         = 2 * time.Hour
	DefaultMaxExportBytes        = 1 << 30
	DefaultExportDownloadTimeout = 30 * time.Minute
)

const (
	exportJobsPath = "/deviceManagement/reports/exportJobs"
	// maxJobBytes bounds a job's JSON (about 1 KB) and Graph's errors.
	maxJobBytes = 1 << 20
	// maxExportRowBytes bounds one CSV record; rows of the inventory
	// reports are a few hundred bytes.
	maxExportRowBytes = 1 << 20
)

// ExportRequest is the report an export job produces, as CSV.
type ExportRequest struct {
	APIVersion string   // "beta" (the default, as Microsoft's guide) or "v1.0"
	ReportName string   // e.g. "AppInvRawData"
	Select     []string // the columns, in order; empty for the report's own
	Filter     string   // OData filter; empty for every row
}

// ExportJob is a deviceManagementExportJob, as far as a client needs it.
type ExportJob struct {
	ID         string `json:"id"`
	ReportName string `json:"reportName"`
	// Status is notStarted, inProgress, completed or failed.
	Status string `json:"status"`
	// URL is the download link once completed. It carries a signature
	// that grants access to the export: never log it (String leaves it out).
	URL string `json:"url"`

	apiVersion string
}

// String describes the job without its download link.
func (j ExportJob) String() string {
	return fmt.Sprintf("export job %s (%s, %s)", j.ID, j.ReportName, j.Status)
}

// ExportPoll is how a job is polled until it ends: the first poll comes
// Initial after its creation, and each wait doubles up to Max.
type ExportPoll struct {
	Initial time.Duration // 0 => DefaultExportPollInitial
	Max     time.Duration // 0 => DefaultExportPollMax
	// Timeout is how long the job may take before WaitExportJob gives up;
	// 0 => DefaultExportTimeout.
	Timeout time.Duration
	// OnPoll, when set, is told of every poll's answer.
	OnPoll func(job ExportJob, polls int)
}

// DownloadLimits bound the download of an export.
type DownloadLimits struct {
	MaxBytes int64         // the largest ZIP accepted; 0 => DefaultMaxExportBytes
	Timeout  time.Duration // one download attempt, body included; 0 => DefaultExportDownloadTimeout
}

// ExportJobsURL is the collection of export jobs under base.
func ExportJobsURL(base *url.URL, apiVersion string) string {
	if apiVersion == "" {
		apiVersion = "beta"
	}
	return strings.TrimRight(base.String(), "/") + "/" + apiVersion + exportJobsPath
}

// exportJobURL is one job, addressed as Microsoft's guide does:
// exportJobs('{id}'), the quote doubled inside the key as OData wants.
func exportJobURL(base *url.URL, apiVersion, id string) string {
	return ExportJobsURL(base, apiVersion) + "('" + url.PathEscape(strings.ReplaceAll(id, "'", "''")) + "')"
}

// CreateExportJob asks Graph to export a report as CSV. A 403 is an
// *ExportPermissionError. Like every Graph request it is retried when
// Graph answers 429 or 5xx: at worst a second job is created, which
// expires unread.
func (c *Client) CreateExportJob(ctx context.Context, req ExportRequest) (ExportJob, error) {
	if req.APIVersion == "" {
		req.APIVersion = "beta"
	}
	body := map[string]any{"reportName": req.ReportName, "format": "csv"}
	if len(req.Select) > 0 {
		body["select"] = req.Select
	}
	if req.Filter != "" {
		body["filter"] = req.Filter
	}
	payload, err := json.Marshal(body)
	if err != nil {
		return ExportJob{}, fmt.Errorf("encoding the export job: %w", err)
	}
	data, err := c.send(ctx, http.MethodPost, ExportJobsURL(c.Base, req.APIVersion), payload, "creating the export job")
	var gerr *Error
	if errors.As(err, &gerr) && gerr.Source == SourceGraph && gerr.StatusCode == http.StatusForbidden {
		return ExportJob{}, &ExportPermissionError{Graph: gerr}
	}
	if err != nil {
		return ExportJob{}, fmt.Errorf("creating the export job of %s: %w", req.ReportName, err)
	}
	job, err := parseExportJob(data)
	if err != nil {
		return ExportJob{}, fmt.Errorf("creating the export job of %s: %w", req.ReportName, err)
	}
	job.apiVersion = req.APIVersion
	return job, nil
}

// ExportJobStatus fetches job as Graph holds it now.
func (c *Client) ExportJobStatus(ctx context.Context, job ExportJob) (ExportJob, error) {
	data, err := c.send(ctx, http.MethodGet, exportJobURL(c.Base, job.apiVersion, job.ID), nil, "polling export job "+job.ID)
	if err != nil {
		return job, fmt.Errorf("polling export job %s: %w", job.ID, err)
	}
	next, err := parseExportJob(data)
	if err != nil {
		return job, fmt.Errorf("polling export job %s: %w", job.ID, err)
	}
	if next.ID != "" && next.ID != job.ID {
		return job, fmt.Errorf("polling export job %s: Graph answered with job %s", job.ID, next.ID)
	}
	next.ID, next.apiVersion = job.ID, job.apiVersion
	if next.ReportName == "" {
		next.ReportName = job.ReportName
	}
	return next, nil
}

func parseExportJob(data []byte) (ExportJob, error) {
	var job ExportJob
	if err := json.Unmarshal(data, &job); err != nil {
		return job, fmt.Errorf("the job is not a deviceManagementExportJob: %w", err)
	}
	if job.ID == "" {
		return job, errors.New("the job has no id")
	}
	return job, nil
}

// WaitExportJob polls job until it is completed, with its download link,
// backing off from poll.Initial to poll.Max. A failed job, a completed one
// without a link, or one still running after poll.Timeout is an error
// naming the job.
func (c *Client) WaitExportJob(ctx context.Context, job ExportJob, poll ExportPoll) (ExportJob, error) {
	initial, ceiling, timeout := poll.Initial, poll.Max, poll.Timeout
	if initial <= 0 {
		initial = DefaultExportPollInitial
	}
	if ceiling <= 0 {
		ceiling = DefaultExportPollMax
	}
	ceiling = max(ceiling, initial)
	if timeout <= 0 {
		timeout = DefaultExportTimeout
	}
	started := time.Now()
	wait := initial
	for polls := 0; ; polls++ {
		switch job.Status {
		case "completed":
			if job.URL == "" {
				return job, fmt.Errorf("export job %s is completed without a download url", job.ID)
			}
			return job, nil
		case "failed":
			return job, fmt.Errorf("%w: job %s of %s ended with status failed after %d polls", ErrExportFailed, job.ID, job.ReportName, polls)
		}
		if time.Since(started)+wait > timeout {
			return job, fmt.Errorf("export job %s is still %s after %s and %d polls; giving up", job.ID, job.Status, time.Since(started).Round(time.Second), polls)
		}
		if err := waitFor(ctx, wait); err != nil {
			return job, err
		}
		var err error
		if job, err = c.ExportJobStatus(ctx, job); err != nil {
			return job, err
		}
		if poll.OnPoll != nil {
			poll.OnPoll(job, polls+1)
		}
		wait = min(wait*2, ceiling)
	}
}

// send sends one Graph request besides a page (the POST or a poll of an
// export job), with what fetch gives a page: the throttle, retries of what
// Graph documents as transient, and one token renewal when Graph refuses
// the token. It returns the body of a 2xx answer. Retries are reported to
// OnRetry as page 0, their error saying what was being done.
func (c *Client) send(ctx context.Context, method, rawURL string, body []byte, doing string) ([]byte, error) {
	return retrying(ctx, c, 0, 0, func(err error) error { return fmt.Errorf("%s: %w", doing, err) },
		func() ([]byte, string, error) { return c.sendOnce(ctx, method, rawURL, body) })
}

// sendOnce is one attempt of send. It returns the token it used so that a
// refused one can be invalidated.
func (c *Client) sendOnce(ctx context.Context, method, rawURL string, body []byte) ([]byte, string, error) {
	res, token, clientRequestID, err := c.roundTrip(ctx, method, rawURL, body)
	if err != nil {
		return nil, token, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, maxJobBytes+1))
	if err != nil {
		return nil, token, &TransportError{Err: fmt.Errorf("reading body: %w", timedOut(err)),
			RequestID: res.Header.Get("request-id"), ClientRequestID: clientRequestID}
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, token, graphError(res, data, clientRequestID)
	}
	if len(data) > maxJobBytes {
		return nil, token, fmt.Errorf("the answer to %s is larger than %d bytes", method, maxJobBytes)
	}
	return data, token, nil
}

// StorageError is an error answer of the host serving an export (Azure
// Storage: x-ms-error-code and an XML body).
type StorageError struct {
	StatusCode int
	Code       string // e.g. AuthenticationFailed (an expired link), BlobNotFound
	Message    string
	RequestID  string // x-ms-request-id
	Host       string
}

func (e *StorageError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "export storage %s: HTTP %d", e.Host, e.StatusCode)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (x-ms-request-id " + e.RequestID + ")")
	}
	return oneLine(b.String())
}

func parseStorageError(res *http.Response, body []byte, host string) *StorageError {
	e := &StorageError{StatusCode: res.StatusCode, Code: res.Header.Get("x-ms-error-code"), RequestID: res.Header.Get("x-ms-request-id"), Host: host}
	var doc struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	if xml.Unmarshal(body, &doc) == nil && (doc.Code != "" || doc.Message != "") {
		if e.Code == "" {
			e.Code = doc.Code
		}
		// Azure appends RequestId and Time on lines of their own.
		e.Message = oneLine(strings.SplitN(strings.TrimSpace(doc.Message), "\n", 2)[0])
		return e
	}
	if e.Code == "" {
		e.Code = http.StatusText(res.StatusCode)
	}
	e.Message = bodySnippet(body)
	return e
}

// CheckDownloadURL parses an export's download link and refuses one that
// is not https (http only on a loopback host, as for graph_url) or that
// carries credentials of its own. Its errors name the host, never the
// link's query, which holds the signature.
func CheckDownloadURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: the download url is not a URL", ErrInsecureDownloadURL)
	}
	switch {
	case u.Host == "" || !u.IsAbs():
		return nil, fmt.Errorf("%w: the download url is not absolute", ErrInsecureDownloadURL)
	case u.User != nil:
		return nil, fmt.Errorf("%w: the download url on %s carries a user name", ErrInsecureDownloadURL, u.Hostname())
	case strings.EqualFold(u.Scheme, "https"):
	case strings.EqualFold(u.Scheme, "http") && IsLoopbackHost(u.Hostname()):
	default:
		return nil, fmt.Errorf("%w from %s://%s: only https:// is accepted (http:// on loopback hosts only)", ErrInsecureDownloadURL, u.Scheme, u.Host)
	}
	return u, nil
}

// safeURL is u without its query: what errors may show of a download link.
func safeURL(u *url.URL) string {
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// DownloadExport fetches a completed job's ZIP. The link is a request of
// its own kind: a plain GET with no Authorization header and no cookies
// (the Graph token must never reach another host, and the link's signature
// is its only credential), through the client's transport (its TLS
// settings and proxy), without following redirects. Transient failures are
// retried under the client's RetryPolicy; the ZIP is held in memory, at
// most limits.MaxBytes of it.
func (c *Client) DownloadExport(ctx context.Context, job ExportJob, limits DownloadLimits) ([]byte, error) {
	if job.Status != "completed" || job.URL == "" {
		return nil, fmt.Errorf("export job %s has no download url (status %s)", job.ID, job.Status)
	}
	u, err := CheckDownloadURL(job.URL)
	if err != nil {
		return nil, fmt.Errorf("export job %s: %w", job.ID, err)
	}
	maxBytes, timeout := limits.MaxBytes, limits.Timeout
	if maxBytes <= 0 {
		maxBytes = DefaultMaxExportBytes
	}
	if timeout <= 0 {
		timeout = DefaultExportDownloadTimeout
	}
	plain := &http.Client{
		Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	if c.HTTP != nil {
		plain.Transport = c.HTTP.Transport // no Jar: no cookies either
	}
	started := time.Now()
	for attempt := 1; ; attempt++ {
		data, err := c.downloadOnce(ctx, plain, u, maxBytes)
		if err == nil {
			return data, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		wait, ok := c.Retry.next(attempt, err, time.Since(started))
		if !ok {
			if isRetryable(err) {
				return nil, fmt.Errorf("downloading export job %s: giving up after %d attempts in %s: %w",
					job.ID, attempt, time.Since(started).Round(time.Millisecond), err)
			}
			return nil, fmt.Errorf("downloading export job %s: %w", job.ID, err)
		}
		if c.OnRetry != nil {
			c.OnRetry(RetryEvent{Attempt: attempt, Wait: wait, Err: fmt.Errorf("downloading export job %s: %w", job.ID, err)})
		}
		if err := waitFor(ctx, wait); err != nil {
			return nil, err
		}
	}
}

func (c *Client) downloadOnce(ctx context.Context, plain *http.Client, u *url.URL, maxBytes int64) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("building the request to %s: %w", safeURL(u), err)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	res, err := plain.Do(req)
	if err != nil {
		// *url.Error quotes the whole link, signature included.
		var uerr *url.Error
		if errors.As(err, &uerr) {
			uerr.URL = safeURL(u)
		}
		return nil, &TransportError{Err: timedOut(err)}
	}
	defer res.Body.Close()
	requestID := res.Header.Get("x-ms-request-id")
	if res.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		return nil, parseStorageError(res, body, u.Host)
	}
	if res.ContentLength > maxBytes {
		return nil, fmt.Errorf("%w of %d bytes: it announced %d bytes", ErrExportTooLarge, maxBytes, res.ContentLength)
	}
	var buf bytes.Buffer
	if res.ContentLength > 0 {
		buf.Grow(int(res.ContentLength))
	}
	if _, err := buf.ReadFrom(io.LimitReader(res.Body, maxBytes+1)); err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			uerr.URL = safeURL(u)
		}
		return nil, &TransportError{Err: fmt.Errorf("reading the export from %s: %w", u.Host, timedOut(err)), RequestID: requestID}
	}
	if int64(buf.Len()) > maxBytes {
		return nil, fmt.Errorf("%w of %d bytes", ErrExportTooLarge, maxBytes)
	}
	return buf.Bytes(), nil
}

// ExportHeader is the header row of an export's CSV.
type ExportHeader struct {
	Names []string
	index map[string]int
	lower map[string]int
}

func newExportHeader(names []string) *ExportHeader {
	h := &ExportHeader{Names: append([]string(nil), names...), index: map[string]int{}, lower: map[string]int{}}
	for i, n := range h.Names {
		if _, dup := h.index[n]; !dup {
			h.index[n] = i
		}
		if _, dup := h.lower[strings.ToLower(n)]; !dup {
			h.lower[strings.ToLower(n)] = i
		}
	}
	return h
}

// Index is the position of column name, matched exactly or else ignoring
// case; -1 when the CSV has no such column.
func (h *ExportHeader) Index(name string) int {
	if i, ok := h.index[name]; ok {
		return i
	}
	if i, ok := h.lower[strings.ToLower(name)]; ok {
		return i
	}
	return -1
}

// EachExportRow reads the CSV inside an export's ZIP and calls fn with
// every record after the header, streaming: only the ZIP is held, never
// the CSV. fields is reused by the next record (its strings are not).
// A header without every column of required is an error before any row,
// and so is a ZIP without exactly one .csv. It returns the rows read.
func EachExportRow(zipData []byte, required []string, fn func(header *ExportHeader, fields []string) error) (int, error) {
	zr, err := zip.NewReader(bytes.NewReader(zipData), int64(len(zipData)))
	if err != nil {
		return 0, fmt.Errorf("the export is not a ZIP: %w", err)
	}
	var csvFile *zip.File
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || !strings.HasSuffix(strings.ToLower(f.Name), ".csv") {
			continue
		}
		if csvFile != nil {
			return 0, fmt.Errorf("the export holds several CSV files (%s, %s)", csvFile.Name, f.Name)
		}
		csvFile = f
	}
	if csvFile == nil {
		return 0, fmt.Errorf("the export holds no CSV file (%d files)", len(zr.File))
	}
	rc, err := csvFile.Open()
	if err != nil {
		return 0, fmt.Errorf("opening %s in the export: %w", csvFile.Name, err)
	}
	defer rc.Close()

	// Excel's UTF-8 byte order mark would make a quoted first field
	// malformed.
	br := bufio.NewReader(rc)
	if mark, err := br.Peek(3); err == nil && string(mark) == "\ufeff" {
		_, _ = br.Discard(3)
	}
	guard := &rowGuard{r: br, limit: maxExportRowBytes}
	r := csv.NewReader(guard)
	guard.offset = r.InputOffset
	r.ReuseRecord = true
	names, err := r.Read()
	if errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("%s in the export is empty: no header", csvFile.Name)
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s in the export: %w", csvFile.Name, err)
	}
	header := newExportHeader(names)
	var missing []string
	for _, name := range required {
		if header.Index(name) < 0 {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return 0, fmt.Errorf("%s in the export lacks the column(s) %s (it has %s)", csvFile.Name,
			strings.Join(missing, ", "), strings.Join(header.Names, ", "))
	}
	rows := 0
	for {
		fields, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, fmt.Errorf("reading %s in the export after %d rows: %w", csvFile.Name, rows, err)
		}
		rows++
		if err := fn(header, fields); err != nil {
			return rows, err
		}
	}
}

// rowGuard stops feeding the CSV reader once it holds more than limit
// bytes of one record, which it would otherwise buffer whole.
type rowGuard struct {
	r      io.Reader
	read   int64        // bytes handed to the CSV reader
	offset func() int64 // the end of the CSV reader's last record
	limit  int64
}

func (g *rowGuard) Read(p []byte) (int, error) {
	if g.read-g.offset() > g.limit {
		return 0, ErrExportRowTooLarge
	}
	n, err := g.r.Read(p)
	g.read += int64(n)
	return n, err
}
