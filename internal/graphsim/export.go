package graphsim

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Intune's reports are exported by jobs (see "Export Intune reports using
// Graph APIs", https://learn.microsoft.com/mem/intune/fundamentals/reports-export-graph-apis,
// and the deviceManagementExportJob resource,
// https://learn.microsoft.com/graph/api/resources/intune-reporting-devicemanagementexportjob):
//
//	POST /{v1.0|beta}/deviceManagement/reports/exportJobs  {"reportName":"AppInvRawData","format":"csv"}
//	  -> 201 {"id":"AppInvRawData_<uuid>","status":"notStarted","url":null,...}
//	GET /{v1.0|beta}/deviceManagement/reports/exportJobs('<id>')   (or .../exportJobs/<id>)
//	  -> 200 {"status":"inProgress",...} until {"status":"completed","url":"<SAS URL>",...}
//	GET <url>  on the storage host (an Azure blob in reality): a ZIP of one CSV
//
// Creating a job needs a ReadWrite permission
// (DeviceManagementManagedDevices.ReadWrite.All among them); without
// Config.ReadWrite the POST is refused with Intune's 403. The simulator
// exports the AppInvRawData report only, as CSV, without filter: its
// columns are those Microsoft lists for it
// (https://learn.microsoft.com/mem/intune/fundamentals/reports-export-graph-available-reports),
// all of them in that order, or those of "select" in its order. The rows
// are the (device, app) pairs of the tenant as it was when the job
// completed, device by device in listing order, each device's apps in
// listing order. The CSV quotes every field and ends lines with CRLF.
// ApplicationKey is the detectedApp's id, ApplicationVersion its version
// and ApplicationShortVersion the first three numbers of it; Platform is
// the device's operating system. Graph's polls and the POST go through the
// throttle; the download does not.
//
// The download link names the storage host (Config.StorageURL, or a
// loopback listener the Server starts) and carries a SAS-like query
// (sv, sr, sig, se, sp): the storage host serves the blob to the sig it
// handed out, until se (6 hours after completion, as Intune's links last),
// with Azure Storage's XML errors otherwise. It needs no Authorization
// header and records whether one came (StorageRequests): a client must not
// send its Graph token to another host.

// AppInvRawDataColumns are the columns of the AppInvRawData report, in the
// order Microsoft documents them.
var AppInvRawDataColumns = []string{
	"ApplicationKey", "ApplicationName", "ApplicationPublisher", "ApplicationShortVersion", "ApplicationVersion",
	"DeviceId", "DeviceName", "EmailAddress", "OSDescription", "OSVersion", "Platform", "UserId", "UserName",
}

// exportLifetime is how long a completed export can be downloaded.
const exportLifetime = 6 * time.Hour

// exportState holds the jobs and the storage host.
type exportState struct {
	mu        sync.Mutex
	jobs      map[string]*exportJob
	container string // the blob container of this tenant's exports

	created, downloads atomic.Int64

	storageOnce sync.Once
	storageURL  string
	storageSrv  *http.Server

	logMu sync.Mutex
	log   []StorageRecord
}

func (e *exportState) init() {
	e.jobs = make(map[string]*exportJob)
	e.container = newUUID()
}

type exportJob struct {
	id           string
	columns      []int // indexes into AppInvRawDataColumns
	localization string
	requested    time.Time
	polls        int
	status       string
	completed    time.Time
	expires      time.Time
	st           *tenantState // the tenant the export holds
	sig          string
	url          string

	zipOnce sync.Once
	zip     []byte
}

// StorageRecord is one request to the storage host.
type StorageRecord struct {
	At         time.Time // arrival, by the server's clock
	Authorized bool      // the request carried an Authorization header
	Status     int       // status sent
}

// StorageRequests returns the requests the storage host received, in
// arrival order. ResetRequests empties it too.
func (s *Server) StorageRequests() []StorageRecord {
	s.exports.logMu.Lock()
	defer s.exports.logMu.Unlock()
	return append([]StorageRecord(nil), s.exports.log...)
}

// StorageURL returns the base URL of the storage host that download links
// name: Config.StorageURL, else that of a loopback listener serving
// StorageHandler, started on the first call (Close stops it); "" if it
// could not be started.
func (s *Server) StorageURL() string {
	if s.cfg.StorageURL != "" {
		return s.cfg.StorageURL
	}
	e := &s.exports
	e.storageOnce.Do(func() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return
		}
		e.storageSrv = &http.Server{Handler: s.StorageHandler(), ReadHeaderTimeout: 10 * time.Second}
		e.storageURL = "http://" + ln.Addr().String()
		go func() { _ = e.storageSrv.Serve(ln) }()
	})
	return e.storageURL
}

// Close stops the storage listener the Server started, if it did.
func (s *Server) Close() error {
	e := &s.exports
	e.storageOnce.Do(func() {}) // none can start from now on
	if e.storageSrv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return e.storageSrv.Shutdown(ctx)
}

// exportJobBody is the JSON of a job, in Graph's order.
type exportJobBody struct {
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

// graphTime writes a DateTimeOffset with the seven fractional digits
// Intune's reporting service writes.
func graphTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z") }

// writeGraphJSON writes v without escaping '&' and '<', which Graph writes
// as they are (the SAS URL is full of '&').
func writeGraphJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("graphsim: " + err.Error())
	}
	_ = writeBody(w, status, graphContentType, bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func (s *Server) jobBody(beta bool, j *exportJob) exportJobBody {
	b := exportJobBody{
		Context:            s.cfg.ScopeHost + "/" + versionName(beta) + "/$metadata#deviceManagement/reports/exportJobs/$entity",
		ID:                 j.id,
		ReportName:         "AppInvRawData",
		LocalizationType:   j.localization,
		Select:             []string{},
		Format:             "csv",
		Status:             j.status,
		RequestDateTime:    graphTime(j.requested),
		ExpirationDateTime: "0001-01-01T00:00:00Z",
	}
	for _, c := range j.columns {
		b.Select = append(b.Select, AppInvRawDataColumns[c])
	}
	if j.status == "completed" {
		u := j.url
		b.URL = &u
		b.ExpirationDateTime = graphTime(j.expires)
	}
	return b
}

// exportPath is the Intune service that answers export jobs, for its
// error messages.
const exportPath = "ReportingService/reports/exportJobs"

// serveExportJobs answers POST .../reports/exportJobs: a new job.
func (s *Server) serveExportJobs(w *exchange, r *http.Request, ids requestIDs, beta bool) {
	if !s.allowOnly(w, r, ids, http.MethodPost) {
		return
	}
	if !s.authorize(w, r, ids) {
		return
	}
	if !s.cfg.ReadWrite {
		s.graphError(w, ids, http.StatusForbidden, "Forbidden", intuneMessageAt(
			"Application is not authorized to perform this operation. Application must have one of the following scopes: "+
				"DeviceManagementConfiguration.ReadWrite.All, DeviceManagementApps.ReadWrite.All, DeviceManagementManagedDevices.ReadWrite.All"+
				" - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000", ids.request, exportPath))
		return
	}
	job, msg := s.newExportJob(r, w.at)
	if msg != "" {
		s.badRequest(w, ids, msg)
		return
	}
	e := &s.exports
	e.mu.Lock()
	e.jobs[strings.ToLower(job.id)] = job
	body := s.jobBody(beta, job)
	e.mu.Unlock()
	e.created.Add(1)
	w.Header().Set("Location", s.cfg.ScopeHost+"/"+versionName(beta)+"/deviceManagement/reports/exportJobs('"+job.id+"')")
	writeGraphJSON(w, http.StatusCreated, body)
}

// newExportJob reads the request body; a non-empty message is Graph's 400.
func (s *Server) newExportJob(r *http.Request, at time.Time) (*exportJob, string) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return nil, "The request body could not be read."
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return nil, "Invalid JSON in the request body: a deviceManagementExportJob object is expected."
	}
	str := func(name string) (string, string) {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			return "", ""
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return "", "Cannot convert the literal '" + string(raw) + "' to the expected type 'Edm.String' of property '" + name + "'."
		}
		return v, ""
	}
	job := &exportJob{requested: at, status: "notStarted", localization: "LocalizedValuesAsAdditionalColumn"}
	for name := range fields {
		switch name {
		case "reportName", "format", "filter", "select", "localizationType", "snapshotId", "@odata.type", "id":
		default:
			return nil, "The property '" + name + "' does not exist on type 'microsoft.graph.deviceManagementExportJob'. Make sure to only use property names that are defined by the type."
		}
	}
	report, msg := str("reportName")
	switch {
	case msg != "":
		return nil, msg
	case report == "":
		return nil, "reportName is required."
	case !strings.EqualFold(report, "AppInvRawData"):
		return nil, "The report '" + report + "' is not supported by graphsim, which exports AppInvRawData only."
	}
	format, msg := str("format")
	switch {
	case msg != "":
		return nil, msg
	case format != "" && !strings.EqualFold(format, "csv"):
		return nil, "graphsim exports csv only, not '" + format + "'."
	}
	if filter, msg := str("filter"); msg != "" || filter != "" {
		return nil, msg + "graphsim does not filter exports."
	}
	if snap, msg := str("snapshotId"); msg != "" || snap != "" {
		return nil, msg + "graphsim does not export snapshots."
	}
	loc, msg := str("localizationType")
	switch {
	case msg != "":
		return nil, msg
	case loc == "":
	case strings.EqualFold(loc, "LocalizedValuesAsAdditionalColumn"), strings.EqualFold(loc, "ReplaceLocalizableValues"):
		job.localization = loc
	default:
		return nil, "Requested value '" + loc + "' was not found."
	}
	if raw, ok := fields["select"]; ok && string(raw) != "null" {
		var cols []string
		if json.Unmarshal(raw, &cols) != nil {
			return nil, "Cannot convert the literal '" + string(raw) + "' to the expected type 'Collection(Edm.String)' of property 'select'."
		}
		for _, c := range cols {
			k := -1
			for n, name := range AppInvRawDataColumns {
				if strings.EqualFold(name, c) {
					k = n
				}
			}
			if k < 0 {
				return nil, "Invalid select column '" + c + "' for report AppInvRawData."
			}
			job.columns = append(job.columns, k)
		}
	}
	job.id = "AppInvRawData_" + newUUID()
	return job, ""
}

// serveExportJob answers GET .../reports/exportJobs('{id}'): a poll.
func (s *Server) serveExportJob(w *exchange, r *http.Request, ids requestIDs, beta bool, id string) {
	if !s.allowOnly(w, r, ids, http.MethodGet) {
		return
	}
	if !s.authorize(w, r, ids) {
		return
	}
	if s.cfg.Forbidden && !s.cfg.ReadWrite {
		s.graphError(w, ids, http.StatusForbidden, "Forbidden", intuneForbidden(ids.request))
		return
	}
	e := &s.exports
	e.mu.Lock()
	job := e.jobs[strings.ToLower(id)]
	if job == nil {
		e.mu.Unlock()
		s.notFoundKey(w, ids, id)
		return
	}
	job.polls++
	if job.status != "completed" && job.status != "failed" {
		job.status = "inProgress"
		if job.polls > s.cfg.ExportPolls && !w.at.Before(job.requested.Add(s.cfg.ExportDelay)) {
			s.complete(job, w.at)
		}
	}
	body := s.jobBody(beta, job)
	e.mu.Unlock()
	writeGraphJSON(w, http.StatusOK, body)
}

// complete finishes job at time at: it takes the tenant as it is and
// publishes the download link.
func (s *Server) complete(job *exportJob, at time.Time) {
	base := s.StorageURL()
	if base == "" {
		job.status = "failed"
		return
	}
	var sig [32]byte
	if _, err := rand.Read(sig[:]); err != nil {
		panic("graphsim: crypto/rand failed: " + err.Error())
	}
	job.status, job.completed, job.expires, job.st = "completed", at, at.Add(exportLifetime), s.state()
	job.sig = base64.StdEncoding.EncodeToString(sig[:])
	job.url = base + "/" + s.exports.container + "/" + job.id + ".zip?sv=2019-02-02&sr=b&sig=" + url.QueryEscape(job.sig) +
		"&se=" + url.QueryEscape(job.expires.UTC().Format(time.RFC3339)) + "&sp=r"
}

// StorageHandler serves the storage host: the completed exports' ZIPs at
// /{container}/{job id}.zip, to the SAS query of their download links.
func (s *Server) StorageHandler() http.Handler { return storageHandler{s} }

type storageHandler struct{ s *Server }

func (h storageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	x := s.arrive(w)
	x.kind = KindDownload
	defer s.depart(x)
	authorized := r.Header.Get("Authorization") != ""
	defer func() {
		e := &s.exports
		e.logMu.Lock()
		e.log = append(e.log, StorageRecord{At: x.at, Authorized: authorized, Status: x.status})
		e.logMu.Unlock()
	}()
	s.serveStorage(x, r)
}

func (s *Server) serveStorage(w *exchange, r *http.Request) {
	requestID := newUUID()
	h := w.Header()
	h.Set("x-ms-request-id", requestID)
	h.Set("x-ms-version", "2019-02-02")
	h.Set("Server", "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0")
	h.Set("Date", httpDate(s.now()))
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		s.storageError(w, requestID, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.", "")
		return
	}
	e := &s.exports
	container, blob, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	id, isZip := strings.CutSuffix(blob, ".zip")
	var job *exportJob
	if container == e.container && isZip {
		e.mu.Lock()
		if j := e.jobs[strings.ToLower(id)]; j != nil && j.status == "completed" && j.id == id {
			job = j
		}
		e.mu.Unlock()
	}
	if job == nil {
		s.storageError(w, requestID, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.", "")
		return
	}
	q := r.URL.Query()
	if q.Get("sig") != job.sig || q.Get("sr") != "b" || !strings.Contains(q.Get("sp"), "r") {
		s.storageError(w, requestID, http.StatusForbidden, "AuthenticationFailed",
			"Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
			"Signature did not match. String to sign used was r\n\n\n"+job.expires.UTC().Format(time.RFC3339)+"\n/blob/graphsim/"+e.container+"/"+id+".zip")
		return
	}
	if now := s.now(); !now.Before(job.expires) {
		s.storageError(w, requestID, http.StatusForbidden, "AuthenticationFailed",
			"Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.",
			"Signed expiry time ["+job.expires.UTC().Format(http.TimeFormat)+"] must be after signed start time ["+now.UTC().Format(http.TimeFormat)+"]")
		return
	}
	job.zipOnce.Do(func() { job.zip = s.exportZip(job) })
	h.Set("Content-Type", "application/octet-stream")
	h.Set("x-ms-blob-type", "BlockBlob")
	h.Set("ETag", `"0x8DCF`+strings.ToUpper(string(appendHex(nil, uint64(job.completed.UnixNano()), 11, true)))+`"`)
	http.ServeContent(w, r, "", job.completed, bytes.NewReader(job.zip))
	if r.Method == http.MethodGet && w.status == http.StatusOK {
		e.downloads.Add(1)
	}
}

// storageError answers as Azure Storage does: XML, with the error code in
// x-ms-error-code too.
func (s *Server) storageError(w http.ResponseWriter, requestID string, status int, code, message, detail string) {
	body := `<?xml version="1.0" encoding="utf-8"?><Error><Code>` + code + `</Code><Message>` + xmlEscape(message) +
		"\nRequestId:" + requestID + "\nTime:" + graphTime(s.now()) + `</Message>`
	if detail != "" {
		body += `<AuthenticationErrorDetail>` + xmlEscape(detail) + `</AuthenticationErrorDetail>`
	}
	body += `</Error>`
	w.Header().Set("x-ms-error-code", code)
	_ = writeBody(w, status, "application/xml", []byte(body))
}

var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

func xmlEscape(v string) string { return xmlEscaper.Replace(v) }

// exportZip renders job's report: a ZIP holding <id>.csv.
func (s *Server) exportZip(job *exportJob) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	f, err := zw.CreateHeader(&zip.FileHeader{Name: job.id + ".csv", Method: zip.Deflate, Modified: job.completed.UTC()})
	if err == nil {
		err = s.writeAppInvRawData(f, job.st, job.columns)
	}
	if err == nil {
		err = zw.Close()
	}
	if err != nil {
		// Only a bytes.Buffer is written to.
		panic("graphsim: " + err.Error())
	}
	return buf.Bytes()
}

// writeAppInvRawData writes the CSV of the pairs of st.
func (s *Server) writeAppInvRawData(out io.Writer, st *tenantState, columns []int) error {
	if len(columns) == 0 {
		columns = make([]int, len(AppInvRawDataColumns))
		for k := range columns {
			columns[k] = k
		}
	}
	v := s.appView(st)
	b := appendCSVRow(nil, AppInvRawDataColumns, columns)
	var row [13]string
	err := s.eachHolder(st, v, func(i int, d *device, apps []int32) error {
		row[5] = s.DeviceID(i)
		row[6] = d.name
		row[7] = d.email
		row[8] = osDescription(d)
		row[9] = d.osVersion
		row[10] = osNames[d.os]
		row[11] = ""
		if !d.userless {
			g := appendGUID(nil, d.userID)
			row[11] = string(g[1 : len(g)-1])
		}
		row[12] = d.displayName
		for _, a := range apps {
			e := v.entry(int(a))
			row[0] = s.AppID(int(a))
			row[1], row[2], row[3], row[4] = e.name, e.publisher, shortVersion(e.version), e.version
			b = appendCSVRow(b, row[:], columns)
			if len(b) >= flushAt {
				if _, err := out.Write(b); err != nil {
					return err
				}
				b = b[:0]
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = out.Write(b)
	return err
}

// appendCSVRow appends the fields of the columns, a CSV line.
func appendCSVRow(b []byte, fields []string, columns []int) []byte {
	for n, c := range columns {
		if n > 0 {
			b = append(b, ',')
		}
		b = appendCSV(b, fields[c])
	}
	return append(b, '\r', '\n')
}

// appendCSV appends v as a quoted CSV field.
func appendCSV(b []byte, v string) []byte {
	b = append(b, '"')
	b = append(b, strings.ReplaceAll(v, `"`, `""`)...)
	return append(b, '"')
}

// shortVersion is a version's first three numbers.
func shortVersion(v string) string {
	k := 0
	for n := 0; n < len(v); n++ {
		if v[n] == '.' {
			k++
			if k == 3 {
				return v[:n]
			}
		}
	}
	return v
}

// osDescription names a device's system the way reports do.
func osDescription(d *device) string {
	switch d.os {
	case osWindows:
		if strings.HasPrefix(d.osVersion, "10.0.1") {
			return "Windows 10 Enterprise"
		}
		return "Windows 11 Enterprise"
	case osIOS:
		if strings.HasPrefix(d.hw.model, "iPad") {
			return "iPadOS"
		}
		return "iOS"
	}
	return osNames[d.os]
}
