package intune

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// strategyExport joins apps and devices through Intune's AppInvRawData
// report: one export job, polled until Intune has written it, and one
// download of a ZIP holding every (device, app) pair. A few requests
// whatever the tenant's size, but creating the job needs
// DeviceManagementManagedDevices.ReadWrite.All (graph.ExportPermission), so
// it is opt-in, never chosen by auto.
const strategyExport = "export"

// The columns of AppInvRawData a pair needs. ApplicationKey is the
// detectedApp's id.
const (
	exportColumnAppID      = "ApplicationKey"
	exportColumnDeviceID   = "DeviceId"
	exportColumnDeviceName = "DeviceName"
)

// exportPlan is how the export strategy runs its job; tests shorten the
// polls.
type exportPlan struct {
	poll   graph.ExportPoll
	limits graph.DownloadLimits
	batch  int // pairs per appsItem
}

// defaultExportPlan polls after 1 s, doubling up to 30 s, for up to two
// hours, and accepts a ZIP of up to 1 GiB (held in memory while its rows
// are emitted).
func defaultExportPlan() exportPlan {
	return exportPlan{
		poll: graph.ExportPoll{
			Initial: graph.DefaultExportPollInitial,
			Max:     graph.DefaultExportPollMax,
			Timeout: graph.DefaultExportTimeout,
		},
		limits: graph.DownloadLimits{MaxBytes: graph.DefaultMaxExportBytes, Timeout: graph.DefaultExportDownloadTimeout},
		batch:  1000,
	}
}

// exportPairs emits every (device, app) pair of the AppInvRawData export,
// as the other strategies emit theirs. apps are those listApps emitted:
// a pair whose app is not among them (installed since the listing) is
// emitted all the same, and counted in one warning.
func (in *detectedAppsInput) exportPairs(ctx context.Context, out *appsOutbox, run *appsRun, apps []appRef) error {
	return in.exportPairsWith(ctx, out, run, apps, defaultExportPlan())
}

func (in *detectedAppsInput) exportPairsWith(ctx context.Context, out *appsOutbox, run *appsRun, apps []appRef, plan exportPlan) error {
	run.strategy = strategyExport
	req := graph.ExportRequest{
		ReportName: "AppInvRawData",
		Select:     []string{exportColumnAppID, exportColumnDeviceID, exportColumnDeviceName},
	}
	in.log.Infof("Sync %s: %d apps; exporting the AppInvRawData report for their devices: POST %s",
		run.id, len(apps), graph.ExportJobsURL(in.conf.graphURL, req.APIVersion))
	job, err := in.client.CreateExportJob(ctx, req)
	if err != nil {
		return err
	}
	created := time.Now()
	in.log.Infof("Sync %s: export job %s created; polling it", run.id, job.ID)
	poll := plan.poll
	poll.OnPoll = func(job graph.ExportJob, polls int) {
		in.log.Debugf("Sync %s: export job %s is %s after %d polls", run.id, job.ID, job.Status, polls)
	}
	if job, err = in.client.WaitExportJob(ctx, job, poll); err != nil {
		return err
	}
	in.log.Infof("Sync %s: export job %s completed in %s; downloading it from %s",
		run.id, job.ID, time.Since(created).Round(time.Millisecond), downloadHost(job.URL))
	zipData, err := in.client.DownloadExport(ctx, job, plan.limits)
	if err != nil {
		return err
	}
	in.log.Infof("Sync %s: export job %s downloaded, %d bytes", run.id, job.ID, len(zipData))

	e := newExportEmitter(in, out, apps, plan.batch)
	rows, err := graph.EachExportRow(zipData, []string{exportColumnAppID, exportColumnDeviceID, exportColumnDeviceName}, e.row)
	if err == nil {
		err = e.flush()
	}
	if err != nil {
		return fmt.Errorf("export job %s: %w", job.ID, err)
	}
	if e.unknown > 0 {
		in.log.Warnf("Sync %s: %d pairs of export job %s name %d apps that the detectedApps listing did not hold (e.g. %s), installed since it, probably; they are emitted all the same",
			run.id, e.unknown, job.ID, len(e.unknownApps), e.firstUnknown)
	}
	if e.skipped > 0 {
		in.log.Warnf("Sync %s: %d of the %d rows of export job %s have no %s or no %s and were skipped",
			run.id, e.skipped, rows, job.ID, exportColumnDeviceID, exportColumnAppID)
	}
	return nil
}

// downloadHost is what logs may show of a download link: its host. The
// query holds the link's signature.
func downloadHost(raw string) string {
	u, err := graph.CheckDownloadURL(raw)
	if err != nil {
		return "?"
	}
	return u.Host
}

// exportEmitter turns the export's rows into items of batch pairs.
type exportEmitter struct {
	in    *detectedAppsInput
	out   *appsOutbox
	batch int
	item  appsItem

	apps      map[string]*appRef // by id
	appsLower map[string]*appRef // by id in lower case, for a key in another case

	cols     [3]int // appID, deviceID, deviceName in the header
	colsFrom *graph.ExportHeader

	// The previous row's device: rows come device by device.
	deviceID, deviceName         string
	deviceIDJSON, deviceNameJSON []byte
	deviceMeta                   any

	unknown      int // pairs whose app was not listed
	unknownApps  map[string]struct{}
	firstUnknown string
	skipped      int
}

func newExportEmitter(in *detectedAppsInput, out *appsOutbox, apps []appRef, batch int) *exportEmitter {
	if batch <= 0 {
		batch = 1000
	}
	e := &exportEmitter{
		in: in, out: out, batch: batch,
		apps:        make(map[string]*appRef, len(apps)),
		appsLower:   make(map[string]*appRef, len(apps)),
		unknownApps: map[string]struct{}{},
	}
	for i := range apps {
		a := &apps[i]
		e.apps[a.id] = a
		e.appsLower[strings.ToLower(a.id)] = a
	}
	e.reset()
	return e
}

func (e *exportEmitter) reset() {
	e.item = appsItem{
		entity:    entityDeviceAppMeta,
		bodies:    make([][]byte, 0, e.batch),
		appIDs:    make([]any, 0, e.batch),
		deviceIDs: make([]any, 0, e.batch),
	}
}

// row adds one row's pair, and sends the item once it holds batch pairs.
func (e *exportEmitter) row(header *graph.ExportHeader, fields []string) error {
	if e.colsFrom != header {
		e.cols = [3]int{header.Index(exportColumnAppID), header.Index(exportColumnDeviceID), header.Index(exportColumnDeviceName)}
		e.colsFrom = header
	}
	appKey, deviceID, deviceName := fields[e.cols[0]], fields[e.cols[1]], fields[e.cols[2]]
	if appKey == "" || deviceID == "" {
		e.skipped++
		return nil
	}
	if deviceID != e.deviceID || deviceName != e.deviceName || e.deviceIDJSON == nil {
		e.deviceID, e.deviceName = deviceID, deviceName
		e.deviceIDJSON = jsonString(deviceID)
		e.deviceNameJSON = jsonString(deviceName)
		e.deviceMeta = deviceID
	}
	var appJSON []byte
	var appMeta any
	app := e.apps[appKey]
	if app == nil {
		app = e.appsLower[strings.ToLower(appKey)]
	}
	if app != nil {
		appJSON, appMeta = app.idJSON, app.idMeta
	} else {
		appJSON, appMeta = jsonString(appKey), appKey
		e.unknown++
		if _, seen := e.unknownApps[appKey]; !seen {
			if len(e.unknownApps) == 0 {
				e.firstUnknown = appKey
			}
			e.unknownApps[appKey] = struct{}{}
		}
	}
	e.item.bodies = append(e.item.bodies, pairBody(e.deviceIDJSON, e.deviceNameJSON, appJSON))
	e.item.appIDs = append(e.item.appIDs, appMeta)
	e.item.deviceIDs = append(e.item.deviceIDs, e.deviceMeta)
	if len(e.item.bodies) >= e.batch {
		return e.flush()
	}
	return nil
}

// flush sends the pairs gathered so far, counted in the run as fanOut
// counts a unit's.
func (e *exportEmitter) flush() error {
	n := len(e.item.bodies)
	if n == 0 {
		return nil
	}
	run := e.out.run
	run.pairs += n
	// send counts what it emits (only changes with emit: changes).
	if err := e.out.send(e.item); err != nil {
		return err
	}
	e.reset()
	if now := time.Now(); now.Sub(run.lastProgress) >= progressEvery {
		run.lastProgress = now
		e.in.log.Infof("Sync %s progress (export): %d pairs emitted", run.id, run.pairs)
	}
	return nil
}

// jsonString is s as a JSON string literal; invalid UTF-8 becomes U+FFFD,
// so that the message stays JSON.
func jsonString(s string) []byte {
	return appendJSONString(make([]byte, 0, len(s)+2), strings.ToValidUTF8(s, "\uFFFD"))
}
