package intune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// appsRun is one sync of the tenant's apps and of the devices they are on.
type appsRun struct {
	id            string
	startedAt     time.Time
	startedAtText string
	done          *runDone // closed once the run is delivered (see whileLeased)
	tenantMeta    any
	idMeta        any
	startedAtMeta any
	acks          *ackTracker
	cursor        int          // the cursor number of the last item tracked
	changes       *appsChanges // nil without state_cache
	// query identifies what a checkpoint is for; resumeAfter is the last
	// unit a checkpoint saw delivered ("" for a new sync).
	query       string
	resumeAfter string

	strategy         string
	planned          int   // requests the strategy needs, for progress
	requestsAtStart  int64 // the throttle's count when the sync started
	throttledAtStart int64
	apps, pairs      int
	units, unitsDone int
	fanOutStarted    time.Time
	lastProgress     time.Time
	handedOver       bool // every message was handed to Read
}

func newAppsRun(now time.Time) *appsRun {
	r := &appsRun{id: uuid.NewString(), startedAt: now, startedAtText: now.UTC().Format(time.RFC3339), lastProgress: now}
	r.idMeta, r.startedAtMeta = r.id, r.startedAtText
	return r
}

// appRef is what the sync keeps of a listed app.
type appRef struct {
	id          string
	idJSON      []byte // the id as Graph wrote it, a JSON string
	idMeta      any
	deviceCount int
}

// deviceRef is what the sync keeps of a listed device.
type deviceRef struct {
	id               string
	idJSON, nameJSON []byte // as Graph wrote them
	idMeta           any
}

// run performs syncs until ctx ends: one, or one per interval.
func (in *detectedAppsInput) run(ctx context.Context, items chan<- appsItem, done chan<- struct{}) {
	defer close(done)
	defer close(items)
	runSyncs(ctx, in.conf.interval, in.log, func(started time.Time) error {
		if in.tenants != nil {
			return in.tenants.syncRound(ctx, in.conf.tenants, in.log, func(ctx context.Context, t *detectedAppsInput) error {
				return t.syncAndLog(ctx, items, started)
			})
		}
		return in.syncAndLog(ctx, items, started)
	})
}

// syncAndLog is syncOnce, whose failure it logs.
func (in *detectedAppsInput) syncAndLog(ctx context.Context, items chan<- appsItem, started time.Time) error {
	err := in.syncOnce(ctx, items, started)
	if err != nil {
		if ctx.Err() != nil {
			in.log.Warnf("%v", err)
		} else {
			in.log.Errorf("%v", err)
		}
	}
	return err
}

// syncOnce lists the apps, joins them to their devices by the strategy that
// needs fewer requests, and hands everything to Read. It returns nil only
// when every request succeeded.
func (in *detectedAppsInput) syncOnce(ctx context.Context, items chan<- appsItem, now time.Time) error {
	if err := errors.Join(in.state.writable(ctx), in.checkpoints.writable(ctx)); err != nil {
		return fmt.Errorf("no sync started: %w", err)
	}
	run := in.resumeOrStart(ctx, now)
	run.done = in.runs.start()
	stats := in.throttle.Stats()
	run.requestsAtStart, run.throttledAtStart = stats.Requests, stats.Throttled
	run.acks = newAckTracker(in.checkpoints, func(err error) { in.log.Warnf("%v", err) }, func(syncCursor) { in.delivered(run) })
	out := &appsOutbox{ctx: ctx, items: items, run: run, metrics: in.metrics}
	if in.state != nil {
		// A snapshot that cannot be read stops the sync: emitting
		// everything as new, or no deletion, would mislead downstream.
		previous, err := in.state.previous(ctx)
		if err != nil {
			return fmt.Errorf("sync %s stopped: %w", run.id, err)
		}
		var current *appsStateWriter
		if run.resumeAfter == "" {
			current = in.state.begin(ctx)
		} else {
			what := "names every deletion"
			if run.strategy != strategyPerDevice {
				what = "names the apps that left, and leaves the pairs that left to the next complete sync"
			}
			in.log.Warnf("Sync %s resumed from a checkpoint: it %s, and keeps the last complete sync's snapshot", run.id, what)
		}
		run.changes = newAppsChanges(previous, current, in.conf.emitChanges)
		if previous != nil {
			in.log.Infof("Sync %s compares with the last complete sync's %d apps and %d pairs, read from cache %q", run.id, previous.appCount(), previous.pairCount(), in.state.chunks.cache)
		}
		defer func() {
			if current != nil && !run.handedOver {
				// Not every message was handed on: this is no snapshot.
				current.w.abandon(context.Background())
			}
		}()
	}

	apps, err := in.listApps(ctx, out)
	if err != nil {
		return in.stopped(ctx, run, "listing the detected apps", err)
	}
	var devices []deviceRef
	if in.conf.strategy == strategyExport && run.resumeAfter == "" {
		run.strategy = strategyExport // a resumed per-unit sync keeps its own strategy
	} else if devices, err = in.chooseStrategy(ctx, run, apps); err != nil {
		return in.stopped(ctx, run, "listing the devices", err)
	}
	run.fanOutStarted = time.Now()
	switch run.strategy {
	case strategyExport:
		err = in.exportPairs(ctx, out, run, apps)
	case strategyPerApp:
		apps = unitsAfter(apps, run.resumeAfter, func(a appRef) string { return a.id })
		err = in.fanOut(ctx, out, len(apps), func(i int) string { return apps[i].id }, func(ctx context.Context, i int) (appsItem, error) {
			return in.appDevices(ctx, apps[i])
		})
	default:
		byID := func(d deviceRef) string { return d.id }
		devices = unitsAfter(devices, "", byID) // all of them, for the deletions
		todo := unitsAfter(devices, run.resumeAfter, byID)
		err = in.fanOut(ctx, out, len(todo), func(i int) string { return todo[i].id }, func(ctx context.Context, i int) (appsItem, error) {
			return in.deviceApps(ctx, todo[i])
		})
	}
	if err != nil {
		return in.stopped(ctx, run, "joining apps and devices "+run.strategy, err)
	}
	in.logProgress(run, true)
	if run.changes != nil {
		// Every request succeeded: what the sync did not see has left.
		if err := run.changes.sendDeletions(out.send, run.strategy, devices, run.resumeAfter != ""); err != nil {
			return err
		}
	}
	run.handedOver = true
	out.finish()
	return nil
}

// resumeOrStart continues the sync saved in checkpoint_cache, if any, or
// starts a new one. A checkpoint that cannot be read costs duplicates, not
// pairs: the sync starts over.
func (in *detectedAppsInput) resumeOrStart(ctx context.Context, now time.Time) *appsRun {
	run := newAppsRun(now)
	run.tenantMeta = in.tenant
	run.query = detectedAppsURL(in.conf.graphURL)
	if in.checkpoints != nil {
		cur, err := in.checkpoints.load(ctx)
		switch {
		case err != nil:
			in.log.Warnf("Starting over: %v", err)
		case cur != nil && cur.FirstURL == run.query && cur.LastUnit != "":
			run.id, run.startedAtText, run.idMeta, run.startedAtMeta = cur.SyncID, cur.StartedAt, cur.SyncID, cur.StartedAt
			run.strategy, run.resumeAfter = cur.Strategy, cur.LastUnit
			in.log.Infof("Sync %s resumes %s after %q, from checkpoint %q in cache %q", run.id, run.strategy, run.resumeAfter, in.checkpoints.key, in.checkpoints.cache)
			return run
		}
	}
	in.log.Infof("Sync %s started: GET %s", run.id, run.query)
	return run
}

// stopped is why a sync stopped, with what to do about it.
func (in *detectedAppsInput) stopped(ctx context.Context, run *appsRun, doing string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("sync %s interrupted by shutdown while %s", run.id, doing)
	}
	return in.redact.error(fmt.Errorf("sync %s stopped while %s: %w%s", run.id, doing, err, hint(err, detectedAppsEntity.permission)))
}

// listApps emits every app of the tenant, page by page, and keeps each
// one's id and device count for the join.
func (in *detectedAppsInput) listApps(ctx context.Context, out *appsOutbox) ([]appRef, error) {
	var apps []appRef
	err := eachPage(ctx, in.client, detectedAppsURL(in.conf.graphURL), func(page *graph.Page) error {
		item := appsItem{entity: entityDetectedAppMeta, bodies: page.Devices, appIDs: make([]any, len(page.Devices))}
		for i, body := range page.Devices {
			app, err := parseAppRef(body)
			if err != nil {
				return err
			}
			apps = append(apps, app)
			item.appIDs[i] = app.idMeta
		}
		out.run.apps += len(page.Devices)
		return out.send(item)
	})
	return apps, err
}

// eachPage hands every page of a listing to fn, in order.
func eachPage(ctx context.Context, client *graph.Client, firstURL string, fn func(*graph.Page) error) error {
	pager := client.Pages(firstURL, 1)
	for {
		page, err := pager.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(page); err != nil {
			return fmt.Errorf("page %d: %w", page.Number, err)
		}
	}
}

// parseAppRef reads an app's id and deviceCount.
func parseAppRef(body []byte) (appRef, error) {
	var app appRef
	err := graph.EachMember(body, func(key []byte, escaped bool, value []byte) {
		switch {
		case escaped:
		case string(key) == "id":
			app.idJSON = value
		case string(key) == "deviceCount":
			app.deviceCount, _ = strconv.Atoi(string(value))
		}
	})
	if err != nil {
		return app, fmt.Errorf("a detected app is not a JSON object: %w", err)
	}
	if app.id, err = graph.DecodeString(app.idJSON); err != nil || app.id == "" {
		return app, fmt.Errorf("a detected app has no id: %.100s", body)
	}
	app.idMeta = app.id
	return app, nil
}

// listDevices lists every device's id and name.
func (in *detectedAppsInput) listDevices(ctx context.Context) ([]deviceRef, error) {
	var devices []deviceRef
	err := eachPage(ctx, in.client, graph.DeviceNamesURL(in.conf.graphURL), func(page *graph.Page) error {
		for _, body := range page.Devices {
			id, name, err := deviceIDAndName(body)
			if err != nil {
				return err
			}
			d := deviceRef{idJSON: id, nameJSON: name}
			d.id, _ = graph.DecodeString(id)
			d.idMeta = d.id
			devices = append(devices, d)
		}
		return nil
	})
	return devices, err
}

// deviceIDAndName returns a device's id and deviceName as Graph wrote them;
// a missing name is null.
func deviceIDAndName(body []byte) (id, name []byte, err error) {
	name = []byte("null")
	err = graph.EachMember(body, func(key []byte, escaped bool, value []byte) {
		switch {
		case escaped:
		case string(key) == "id":
			id = value
		case string(key) == "deviceName":
			name = value
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("a device is not a JSON object: %w", err)
	}
	if len(id) < 3 || id[0] != '"' {
		return nil, nil, fmt.Errorf("a device has no id: %.100s", body)
	}
	return id, name, nil
}

// appDevices is one app's pairs, from the app's managedDevices (v1.0).
func (in *detectedAppsInput) appDevices(ctx context.Context, app appRef) (appsItem, error) {
	item := appsItem{entity: entityDeviceAppMeta}
	err := in.eachElement(ctx, graph.AppDevicesURL(in.conf.graphURL, app.id), func(body []byte) error {
		id, name, err := deviceIDAndName(body)
		if err != nil {
			return err
		}
		deviceID, _ := graph.DecodeString(id)
		item.bodies = append(item.bodies, pairBody(id, name, app.idJSON))
		item.appIDs = append(item.appIDs, app.idMeta)
		item.deviceIDs = append(item.deviceIDs, deviceID)
		return nil
	})
	if err != nil {
		return item, fmt.Errorf("app %s: %w", app.id, err)
	}
	return item, nil
}

// deviceApps is one device's pairs, from the device's detectedApps (beta).
func (in *detectedAppsInput) deviceApps(ctx context.Context, device deviceRef) (appsItem, error) {
	item := appsItem{entity: entityDeviceAppMeta}
	err := in.eachElement(ctx, graph.DeviceAppsURL(in.conf.graphURL, device.id), func(body []byte) error {
		app, err := parseAppRef(body)
		if err != nil {
			return err
		}
		item.bodies = append(item.bodies, pairBody(device.idJSON, device.nameJSON, app.idJSON))
		item.appIDs = append(item.appIDs, app.idMeta)
		item.deviceIDs = append(item.deviceIDs, device.idMeta)
		return nil
	})
	if err != nil {
		return item, fmt.Errorf("device %s: %w", device.id, err)
	}
	return item, nil
}

// eachElement reads every page of a relationship. A 404 is an app or a
// device that left the tenant since it was listed: it has no pairs.
func (in *detectedAppsInput) eachElement(ctx context.Context, firstURL string, fn func([]byte) error) error {
	err := eachPage(ctx, in.client, firstURL, func(page *graph.Page) error {
		for _, body := range page.Devices {
			if err := fn(body); err != nil {
				return err
			}
		}
		return nil
	})
	var gerr *graph.Error
	if errors.As(err, &gerr) && gerr.Source == graph.SourceGraph && gerr.StatusCode == http.StatusNotFound {
		in.log.Debugf("%s is gone since it was listed: %v", firstURL, err)
		return nil
	}
	return err
}

// pairBody is a device_app message: what joins a device to an app.
func pairBody(deviceID, deviceName, appID []byte) []byte {
	b := make([]byte, 0, len(deviceID)+len(deviceName)+len(appID)+40)
	b = append(b, `{"deviceId":`...)
	b = append(b, deviceID...)
	b = append(b, `,"deviceName":`...)
	b = append(b, deviceName...)
	b = append(b, `,"appId":`...)
	b = append(b, appID...)
	return append(b, '}')
}

// fanOut runs fetch for units 0..n-1 (apps or devices, sorted by id) on
// max_concurrency workers (the throttle decides how many requests are
// really in flight) and hands each unit's pairs to Read in unit order, so
// that a checkpoint can say "every unit up to this id is delivered". Units
// are fetched at most a window ahead of the first one not yet handed on.
// The first error stops the rest.
func (in *detectedAppsInput) fanOut(ctx context.Context, out *appsOutbox, n int, unitID func(int) string, fetch func(context.Context, int) (appsItem, error)) error {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	type result struct {
		i    int
		item appsItem
		err  error
	}
	units := make(chan int)
	results := make(chan result)
	window := make(chan struct{}, 4*in.conf.maxConcurrency)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(units)
		for i := 0; i < n; i++ {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case units <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < in.conf.maxConcurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range units {
				item, err := fetch(ctx, i)
				select {
				case results <- result{i, item, err}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	out.run.units = n
	waiting := map[int]appsItem{} // fetched, not yet handed on
	for next := 0; next < n; {
		var r result
		select {
		case r = <-results:
		case <-ctx.Done():
			return ctx.Err()
		}
		if r.err != nil {
			return r.err
		}
		waiting[r.i] = r.item
		for item, ok := waiting[next]; ok; item, ok = waiting[next] {
			delete(waiting, next)
			out.run.unitsDone++
			out.run.pairs += len(item.bodies)
			if err := out.sendUnit(item, unitID(next)); err != nil {
				return err
			}
			next++
			<-window
		}
		in.logProgress(out.run, false)
	}
	return nil
}

// unitsAfter sorts units by id and drops those up to resumeAfter, the
// last unit a checkpoint saw delivered ("" keeps them all).
func unitsAfter[T any](units []T, resumeAfter string, id func(T) string) []T {
	sort.Slice(units, func(i, j int) bool { return id(units[i]) < id(units[j]) })
	if resumeAfter == "" {
		return units
	}
	first := sort.Search(len(units), func(i int) bool { return id(units[i]) > resumeAfter })
	return units[first:]
}

// appsOutbox hands one sync's items to Read, each tracked by the sync's
// ackTracker under the next cursor number.
type appsOutbox struct {
	ctx     context.Context
	items   chan<- appsItem
	run     *appsRun
	metrics *inputMetrics
}

// sendUnit sends the pairs of one app or device, with the cursor that
// marks it delivered.
func (o *appsOutbox) sendUnit(item appsItem, unitID string) error {
	if c := o.run.changes; c != nil && o.run.strategy == strategyPerDevice {
		// The device's pairs that it no longer has are deleted before its
		// checkpoint, so that a sync resumed after it names them too.
		var err error
		if item, err = c.keep(o.ctx, item); err != nil {
			return fmt.Errorf("sync %s stopped: %w", o.run.id, err)
		}
		if err := c.sendDeviceDeletions(unitID, o.send); err != nil {
			return err
		}
		item.kept = true
	}
	return o.sendAt(item, syncCursor{
		SyncID:    o.run.id,
		StartedAt: o.run.startedAtText,
		FirstURL:  o.run.query,
		Strategy:  o.run.strategy,
		LastUnit:  unitID,
	})
}

// send sends item with a cursor that is not a checkpoint: apps, deletions.
func (o *appsOutbox) send(item appsItem) error { return o.sendAt(item, syncCursor{}) }

func (o *appsOutbox) sendAt(item appsItem, cur syncCursor) error {
	operation := contract.OpUpsert
	switch {
	case item.operation != nil:
		operation = contract.OpDelete
	case o.run.changes != nil && !item.kept:
		var err error
		if item, err = o.run.changes.keep(o.ctx, item); err != nil {
			return fmt.Errorf("sync %s stopped: %w", o.run.id, err)
		}
	}
	o.metrics.emitted.Incr(int64(len(item.bodies)), operation)
	o.run.cursor++
	cur.Page = o.run.cursor
	item.acks = o.run.acks.track(cur, len(item.bodies))
	if len(item.bodies) == 0 {
		return nil
	}
	item.run = o.run
	return handOver(o.ctx, o.items, item, func() error {
		return fmt.Errorf("sync %s interrupted by shutdown after %d apps and %d pairs", o.run.id, o.run.apps, o.run.pairs)
	})
}

// finish tracks the empty, final cursor: once everything before it is
// acknowledged, the sync is delivered.
func (o *appsOutbox) finish() {
	o.run.cursor++
	o.run.acks.track(syncCursor{Page: o.run.cursor, Final: true}, 0)
}

// logProgress logs, at most every progressEvery (and at the end), the
// requests done and left and the time left at the pace so far.
func (in *detectedAppsInput) logProgress(run *appsRun, final bool) {
	now := time.Now()
	if !final && now.Sub(run.lastProgress) < progressEvery {
		return
	}
	run.lastProgress = now
	stats := in.throttle.Stats()
	done := stats.Requests - run.requestsAtStart
	throttled := stats.Throttled - run.throttledAtStart
	if final {
		in.log.Infof("Sync %s read %d apps and %d pairs %s in %s: %d requests, %d answered 429 or 503",
			run.id, run.apps, run.pairs, run.strategy, now.Sub(run.startedAt).Round(time.Millisecond), done, throttled)
		return
	}
	left := max(0, int64(run.planned)-done)
	eta := "unknown"
	if elapsed := now.Sub(run.fanOutStarted); run.unitsDone > 0 && elapsed > 0 {
		perUnit := elapsed / time.Duration(run.unitsDone)
		eta = (perUnit * time.Duration(run.units-run.unitsDone)).Round(time.Second).String()
	}
	in.log.Infof("Sync %s progress (%s): %d of %d %s done, %d requests sent and about %d left, %d answered 429 or 503, about %s left",
		run.id, run.strategy, run.unitsDone, run.units, unitName(run.strategy), done, left, throttled, eta)
}

func unitName(strategy string) string {
	if strategy == strategyPerApp {
		return "apps"
	}
	return "devices"
}

// delivered runs once every message of run was acknowledged: the sync is
// complete downstream, and its snapshot the one the next sync compares with.
func (in *detectedAppsInput) delivered(run *appsRun) {
	defer run.done.close()
	elapsed := time.Since(run.startedAt)
	if run.changes != nil && run.changes.current != nil {
		if !in.state.saveDelivered(run.id, run.changes.current, in.log, in.conf.interval == 0) {
			return
		}
	}
	in.metrics.syncDelivered(elapsed)
	completed.syncs.Add(1)
	emitted, deleted := run.apps+run.pairs, 0
	if run.changes != nil {
		emitted, deleted = run.changes.upserts, run.changes.deleted
	}
	completed.messages.Add(int64(emitted + deleted))
	completed.apps.Add(int64(emitted + deleted))
	in.log.Infof("Sync %s delivered: %d apps and %d (device, app) pairs listed, %d upserts and %d deletions emitted, in %s",
		run.id, run.apps, run.pairs, emitted, deleted, elapsed.Round(time.Millisecond))
}
