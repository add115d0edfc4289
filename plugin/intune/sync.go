package intune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
	"github.com/google/uuid"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// progressEvery is how often, at most, progress is logged at INFO; every
// page is logged at DEBUG.
const progressEvery = 5 * time.Second

// syncRun is one full listing of the tenant's devices.
type syncRun struct {
	id            string
	startedAt     time.Time
	startedAtText string
	firstURL      string
	nextURL       string // where reading starts: firstURL, or a checkpoint's nextLink
	resumedPages  int    // pages delivered before a restart (0 for a new sync)
	acks          *ackTracker
	state         *deviceState   // what the last complete sync left (empty without state_cache)
	changes       *changeTracker // nil without state_cache
	handedOver    bool           // every message was handed to Read
	details       *detailsRun    // nil without details
	journaled     int            // the last piece of details journal the sync wrote
	deletions     int

	// Metadata values, boxed once per sync rather than once per device.
	tenantMeta, idMeta, startedAtMeta, apiVersionMeta any

	deadLetteredAtStart int64 // DeadLettered() when the sync started

	done *runDone // closed once the run is delivered (see whileLeased)

	pages        int
	devices      int
	count        int64 // @odata.count, when Graph sent one
	hasCount     bool
	lastProgress time.Time
}

func newSyncRun(now time.Time, firstURL string) *syncRun {
	return &syncRun{
		id:                  uuid.NewString(),
		startedAt:           now,
		startedAtText:       now.UTC().Format(time.RFC3339),
		deadLetteredAtStart: DeadLettered(),
		firstURL:            firstURL,
		nextURL:             firstURL,
		lastProgress:        now,
	}
}

// boxMeta prepares the metadata values every message of the sync carries.
func (r *syncRun) boxMeta(tenant, apiVersion string) {
	r.tenantMeta, r.idMeta, r.startedAtMeta, r.apiVersionMeta = tenant, r.id, r.startedAtText, apiVersion
}

// resumedSyncRun continues the sync of a checkpoint: same id and start, so
// that downstream sees one sync, and page numbers that carry on.
func resumedSyncRun(cur syncCursor, now time.Time) *syncRun {
	startedAt, err := time.Parse(time.RFC3339, cur.StartedAt)
	if err != nil {
		startedAt = now
	}
	return &syncRun{
		id:            cur.SyncID,
		startedAt:     startedAt,
		startedAtText: cur.StartedAt,
		firstURL:      cur.FirstURL,
		nextURL:       cur.NextURL,
		resumedPages:  cur.Page,
		pages:         cur.Page,
		devices:       cur.Devices,
		lastProgress:  now,
	}
}

// interrupted is why a sync stopped when the input was closed mid-way.
func (r *syncRun) interrupted() error {
	return fmt.Errorf("sync %s interrupted by shutdown after %d devices in %d pages", r.id, r.devices, r.pages)
}

// run performs full syncs until ctx ends: one, or one per interval.
func (in *managedDevicesInput) run(ctx context.Context, items chan<- pageItem, done chan<- struct{}) {
	defer close(done)
	defer close(items)
	runSyncs(ctx, in.conf.interval, in.log, func(started time.Time) error {
		if in.tenants != nil {
			return in.tenants.syncRound(ctx, in.conf.tenants, in.log, func(ctx context.Context, t *managedDevicesInput) error {
				return t.syncOnce(ctx, items, started)
			})
		}
		return in.syncOnce(ctx, items, started)
	})
}

// runSyncs performs syncs until ctx ends: one (interval 0), whose failure
// is the process' (see outcome.go), or one per interval, each failure
// logged and the next sync started on time.
func runSyncs(ctx context.Context, interval time.Duration, log *service.Logger, syncOnce func(started time.Time) error) {
	for {
		started := time.Now()
		err := syncOnce(started)
		if interval == 0 {
			if err != nil {
				recordFailure(err)
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait := time.Until(started.Add(interval))
		if err != nil {
			log.Warnf("The next sync starts in %s", wait.Round(time.Second))
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// syncOnce lists every device and hands each page to Read. It returns nil
// only when the last page was read.
func (in *managedDevicesInput) syncOnce(ctx context.Context, items chan<- pageItem, now time.Time) error {
	if err := errors.Join(in.state.writable(ctx), in.checkpoints.writable(ctx)); err != nil {
		err = fmt.Errorf("no sync started: %w", err)
		in.log.Errorf("%v", err)
		return err
	}
	firstURL := graph.CollectionURL(in.conf.graphURL, managedDevicesEntity.path, in.conf.query)
	run := in.resumeOrStart(ctx, firstURL, now)
	run.boxMeta(in.tenant, in.conf.query.APIVersion)
	run.done = in.runs.start()
	err := in.listPages(ctx, items, run)
	if err != nil && run.resumedPages > 0 && run.pages == run.resumedPages && refusedResume(err) && ctx.Err() == nil {
		// The saved nextLink itself was refused (a skiptoken Graph no longer
		// honours): nothing of this attempt was delivered, so start over.
		in.log.Warnf("Graph refused the saved position of sync %s, so a new sync starts at page 1: %v", run.id, in.redact.error(err))
		if cerr := in.checkpoints.clear(ctx); cerr != nil {
			in.log.Warnf("%v", cerr)
		}
		run = newSyncRun(time.Now(), firstURL)
		run.boxMeta(in.tenant, in.conf.query.APIVersion)
		run.done = in.runs.start()
		err = in.listPages(ctx, items, run)
	}
	return err
}

// resumeOrStart continues the sync saved in checkpoint_cache, if any, or
// starts a new one. A checkpoint that cannot be read costs duplicates, not
// devices: the sync starts at page 1.
func (in *managedDevicesInput) resumeOrStart(ctx context.Context, firstURL string, now time.Time) *syncRun {
	if in.checkpoints == nil {
		return newSyncRun(now, firstURL)
	}
	cur, err := in.checkpoints.load(ctx)
	switch {
	case err != nil:
		in.log.Warnf("Starting at page 1: %v", err)
	case cur != nil && cur.FirstURL != firstURL:
		in.log.Warnf("Starting at page 1: checkpoint %q is for another query (%s)", in.checkpoints.key, cur.FirstURL)
	case cur != nil:
		run := resumedSyncRun(*cur, now)
		in.log.Infof("Sync %s resumes after page %d (%d devices were delivered before the restart), from checkpoint %q in cache %q",
			run.id, cur.Page, cur.Devices, in.checkpoints.key, in.checkpoints.cache)
		return run
	}
	return newSyncRun(now, firstURL)
}

// refusedResume tells whether err is Graph refusing a URL it once sent,
// rather than a failure that would also stop a new sync.
func refusedResume(err error) bool {
	var gerr *graph.Error
	if !errors.As(err, &gerr) || gerr.Source != graph.SourceGraph {
		return false
	}
	switch gerr.StatusCode {
	case http.StatusBadRequest, http.StatusNotFound, http.StatusGone:
		return true
	}
	return false
}

// listPages reads run's pages from where it stands to the last one, then
// emits what only a complete sync may: its deletions, its end marker and
// the final cursor that marks it delivered.
func (in *managedDevicesInput) listPages(ctx context.Context, items chan<- pageItem, run *syncRun) error {
	if run.resumedPages == 0 {
		in.log.Infof("Sync %s started: GET %s", run.id, run.firstURL)
	}
	run.acks = newAckTracker(in.checkpoints, func(err error) { in.log.Warnf("%v", err) },
		func(syncCursor) { in.delivered(run) })
	if err := in.loadState(ctx, run); err != nil {
		in.log.Errorf("%v", err)
		return err
	}
	defer run.state.release()
	in.startChanges(ctx, run)
	defer func() {
		if w := run.stateWriter(); w != nil && !run.handedOver {
			// Not every message was handed on: this is no state.
			w.w.abandon(context.Background())
		}
	}()
	stopDetails, err := in.startDetails(ctx, run)
	if err != nil {
		in.log.Errorf("%v", err)
		return err
	}
	defer stopDetails()
	out := &syncOutbox{ctx: ctx, items: items, run: run}
	if in.conf.syncMarkers {
		if err := out.sendBeforePages(run.startedMarker(), opSyncStartedMeta); err != nil {
			return err
		}
	}
	if err := in.sendPages(ctx, out, run); err != nil {
		return err
	}
	elapsed := time.Since(run.startedAt)
	in.log.Infof("Sync %s read all %d devices in %d pages in %s (%.0f devices/s)",
		run.id, run.devices, run.pages, elapsed.Round(time.Millisecond), rate(run.devices, elapsed))
	in.logDetails(run)
	if run.changes != nil && run.changes.partial {
		in.listPresentIDs(ctx, run)
	}
	if err := in.sendDeletions(out, run); err != nil {
		return err
	}
	if run.changes != nil {
		// Only a sync with details writes what it did not list (a resumed
		// one without details keeps the previous state): details it cannot
		// read are told as those its pages could not, once a sync.
		lost := func(error) {}
		if run.details != nil {
			lost = run.details.lost
		}
		if err := run.changes.keepUnlisted(ctx, lost); err != nil {
			err = fmt.Errorf("sync %s stopped: %w", run.id, err)
			in.log.Errorf("%v", err)
			return err
		}
	}
	if in.conf.syncMarkers {
		if err := out.sendAfterPages(pageItem{bodies: [][]byte{run.completedMarker()}, operation: opSyncCompleteMeta}); err != nil {
			return err
		}
	}
	// Every record is journaled before the sync can be delivered, which
	// clears the journal.
	stopDetails()
	run.state.release()
	run.handedOver = true
	out.finish()
	return nil
}

// listPresentIDs lists, for a resumed sync, every device's id once more:
// the devices of the pages before its checkpoint were listed by a process
// that is gone, so without the ids a device retired in the meantime would
// be named deleted only by the next complete sync. A page of ids is a
// fraction of a page of devices. If the listing fails, the sync names no
// deletions, as it says, and the next complete sync names them.
func (in *managedDevicesInput) listPresentIDs(ctx context.Context, run *syncRun) {
	q := in.conf.query
	q.Select = []string{"id"}
	present := map[string]struct{}{}
	err := eachPage(ctx, in.client, graph.CollectionURL(in.conf.graphURL, managedDevicesEntity.path, q), func(page *graph.Page) error {
		for i, id := range deviceIDs(page.Devices) {
			s, ok := id.(string)
			if !ok {
				return fmt.Errorf("device %d has no id", i+1)
			}
			present[strings.ToLower(s)] = struct{}{}
		}
		return nil
	})
	if err != nil {
		in.log.Warnf("Sync %s names no deletions: listing every device's id after its resume failed (%v); the next complete sync names them", run.id, in.redact.error(err))
		return
	}
	run.changes.present = present
	in.log.Infof("Sync %s listed %d device ids after its resume, to name its deletions", run.id, len(present))
}

// stateWriter is the writer of run's state, or nil when it writes none.
func (r *syncRun) stateWriter() *deviceStateWriter {
	if r.changes == nil {
		return nil
	}
	return r.changes.writer
}

// sendPages hands every page, from run.nextURL to the last, to Read, each
// with the cursor a checkpoint stores once the page is delivered. Pages are
// listed ahead (listAhead), so that the details of the next pages are
// being fetched while the current one waits for its own.
func (in *managedDevicesInput) sendPages(ctx context.Context, out *syncOutbox, run *syncRun) error {
	ctx, cancel := context.WithCancel(ctx)
	next, stop := in.listPagesOf(ctx, run)
	defer func() {
		cancel()
		stop()
	}()
	for {
		listed, ok := next()
		if !ok {
			break
		}
		if listed.err != nil {
			return in.pagingFailed(ctx, run, listed.err)
		}
		page := listed.page
		in.progress(run, page)
		in.metrics.pages.Incr(1)
		item, err := in.upserts(ctx, run, listed)
		if err != nil {
			if ctx.Err() != nil {
				err = run.interrupted()
				in.log.Warnf("%v", err)
				return err
			}
			err = fmt.Errorf("sync %s stopped: %w", run.id, err)
			in.log.Errorf("%v", err)
			return err
		}
		item.acks = run.acks.track(syncCursor{
			SyncID:    run.id,
			StartedAt: run.startedAtText,
			FirstURL:  run.firstURL,
			NextURL:   listed.nextURL,
			Page:      page.Number,
			Devices:   run.devices,
		}, len(item.bodies))
		if len(item.bodies) == 0 {
			continue
		}
		in.metrics.emitted.Incr(int64(len(item.bodies)), contract.OpUpsert)
		if err := out.send(item); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		// The lister stopped with the sync's context: a shutdown.
		return in.pagingFailed(ctx, run, ctx.Err())
	}
	return nil
}

// listedPage is a page as the lister hands it on: with the nextLink a
// checkpoint stores once it is delivered, and its details planned.
type listedPage struct {
	page    *graph.Page
	nextURL string
	details *pageDetails // nil without details
	err     error
}

// listPagesOf returns the function that gives run's pages one at a time,
// false after the last, and the one that waits, once ctx is cancelled,
// for the lister to end. With details a goroutine lists them ahead
// (listAhead), reading the sync's state as it plans each page: the state
// is released only once it has ended. Without, the next page is fetched
// when it is asked for, while Read hands out the one before: one page
// ahead, no more.
func (in *managedDevicesInput) listPagesOf(ctx context.Context, run *syncRun) (next func() (listedPage, bool), stop func()) {
	if run.details != nil {
		pages := in.listAhead(ctx, run)
		next = func() (listedPage, bool) {
			listed, ok := <-pages
			return listed, ok
		}
		stop = func() {
			for range pages {
			}
		}
		return next, stop
	}
	pager := in.client.Pages(run.nextURL, run.pages+1)
	done := false
	return func() (listedPage, bool) {
		if done {
			return listedPage{}, false
		}
		page, err := pager.Next(ctx)
		if errors.Is(err, io.EOF) {
			done = true
			return listedPage{}, false
		}
		done = err != nil
		return listedPage{page: page, nextURL: pager.NextURL(), err: err}, true
	}, func() {}
}

// listAhead lists run's pages in a goroutine of its own, planning each
// one's details as soon as it is read, up to detailsLookAhead pages ahead
// of the one being emitted (plus the one it holds), so that the budget is
// never idle while a page waits for its last GETs. It stops when ctx ends.
func (in *managedDevicesInput) listAhead(ctx context.Context, run *syncRun) <-chan listedPage {
	pages := make(chan listedPage, detailsLookAhead)
	go func() {
		defer close(pages)
		pager := in.client.Pages(run.nextURL, run.pages+1)
		for {
			page, err := pager.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			listed := listedPage{page: page, nextURL: pager.NextURL(), err: err}
			if err == nil {
				if listed.details, err = run.details.plan(ctx, page.Devices); err != nil {
					listed.err = fmt.Errorf("page %d: %w", page.Number, err)
				}
			}
			select {
			case pages <- listed:
			case <-ctx.Done():
				return
			}
			if listed.err != nil {
				return
			}
		}
	}()
	return pages
}

// detailsLookAhead is how many pages are listed ahead of the one being
// emitted when details are fetched: two pages of GETs (2,000 requests,
// 20 s of Intune's budget) keep the batches full.
const detailsLookAhead = 2

// upserts are the devices of a listed page to emit, with their ids and
// their details: all of them, or with emit: changes only those new or
// changed since the last complete sync. Each device's placeholders are
// replaced by its details, or null (mergeDetails).
func (in *managedDevicesInput) upserts(ctx context.Context, run *syncRun, listed listedPage) (pageItem, error) {
	devices := listed.page.Devices
	item := pageItem{operation: opUpsertMeta, pageMeta: listed.page.Number}
	if listed.details != nil {
		if err := listed.details.wait(ctx); err != nil {
			return item, err
		}
	}
	merged, err := in.mergePage(run, listed.page.Number, devices, listed.details, &item)
	if err != nil {
		return item, err
	}
	if run.changes == nil {
		item.bodies, item.ids = merged, deviceIDs(merged)
		return item, nil
	}
	kept, ids, err := run.changes.observe(ctx, listed.page.Number, merged, listed.details)
	if err != nil {
		return item, err
	}
	item.bodies, item.ids = filterMeta(merged, kept), ids
	item.detailsAt, item.detailsStatus = filterMeta(item.detailsAt, kept), filterMeta(item.detailsStatus, kept)
	return item, nil
}

// mergePage writes every device of a page with its placeholders replaced
// (see mergeDetails) into one buffer, and sets item's details metadata.
func (in *managedDevicesInput) mergePage(run *syncRun, page int, devices [][]byte, pd *pageDetails, item *pageItem) ([][]byte, error) {
	size := 0
	for _, d := range devices {
		size += len(d) + 64
	}
	buf := make([]byte, 0, size)
	merged := make([][]byte, len(devices))
	if pd != nil {
		item.detailsAt, item.detailsStatus = make([]any, len(devices)), make([]any, len(devices))
	}
	for i, d := range devices {
		var values []byte
		if pd != nil {
			rec, ok, status := run.details.record(pd, i)
			item.detailsStatus[i] = status
			// As emitted: what the sync's state keeps (changeTracker.observe).
			pd.records[i], pd.known[i] = rec, ok
			if ok {
				values = rec.values
				item.detailsAt[i] = time.Unix(rec.fetchedAt, 0).UTC().Format(time.RFC3339)
			}
		}
		start := len(buf)
		var err error
		if buf, err = mergeDetails(buf, d, values, in.conf.details.placeholders); err != nil {
			return nil, fmt.Errorf("page %d, device %d: %w", page, i+1, err)
		}
		merged[i] = buf[start:len(buf):len(buf)]
	}
	return merged, nil
}

// filterMeta keeps the entries of all at the indexes kept (nil stays nil).
func filterMeta[T any](all []T, kept []int) []T {
	if all == nil {
		return nil
	}
	out := make([]T, len(kept))
	for k, i := range kept {
		out[k] = all[i]
	}
	return out
}

// pagingFailed logs and returns why the pager stopped: a shutdown, or an
// error with what to do about it.
func (in *managedDevicesInput) pagingFailed(ctx context.Context, run *syncRun, err error) error {
	if ctx.Err() != nil {
		err = run.interrupted()
		in.log.Warnf("%v", err)
		return err
	}
	err = in.redact.error(fmt.Errorf("sync %s stopped after %d devices: %w%s", run.id, run.devices, err, hint(err, managedDevicesEntity.permission)))
	in.log.Errorf("%v", err)
	return err
}

// sendDeletions emits a tombstone for every device of the last complete
// sync that this one did not list. Only a sync that read every page gets
// here, and a resumed one names none (changeTracker.partial).
func (in *managedDevicesInput) sendDeletions(out *syncOutbox, run *syncRun) error {
	if run.changes == nil {
		return nil
	}
	tombstones, ids := run.changes.deletions()
	if len(tombstones) == 0 {
		return nil
	}
	run.deletions = len(tombstones)
	in.metrics.emitted.Incr(int64(len(tombstones)), contract.OpDelete)
	return out.sendAfterPages(pageItem{bodies: tombstones, ids: ids, operation: opDeleteMeta})
}

// syncOutbox hands one sync's items to Read and registers each with the
// sync's ackTracker. The tracker orders cursors by page number, so what is
// not a page gets a number of its own: the start marker that of the page
// before the first one read, and what follows the last page (deletions,
// end marker, final cursor) the numbers after it, in the order sent.
type syncOutbox struct {
	ctx       context.Context
	items     chan<- pageItem
	run       *syncRun
	afterLast int // items sent after the last page so far
}

// send hands item, whose acks are already tracked, to Read.
func (o *syncOutbox) send(item pageItem) error {
	item.run = o.run
	return handOver(o.ctx, o.items, item, o.run.interrupted)
}

// sendBeforePages sends a marker ahead of the first page read.
func (o *syncOutbox) sendBeforePages(body []byte, operation any) error {
	acks := o.run.acks.track(syncCursor{Page: o.run.pages}, 1)
	return o.send(pageItem{bodies: [][]byte{body}, operation: operation, pageMeta: noPageMeta, acks: acks})
}

// sendAfterPages sends item after the last page.
func (o *syncOutbox) sendAfterPages(item pageItem) error {
	item.acks = o.run.acks.track(syncCursor{Page: o.nextPageAfterLast()}, len(item.bodies))
	item.pageMeta = noPageMeta
	return o.send(item)
}

// finish tracks the empty, final cursor: once everything before it is
// acknowledged, the sync is delivered (see delivered).
func (o *syncOutbox) finish() {
	o.run.acks.track(syncCursor{Page: o.nextPageAfterLast(), Final: true}, 0)
}

func (o *syncOutbox) nextPageAfterLast() int {
	o.afterLast++
	return o.run.pages + o.afterLast
}

// startChanges starts tracking run's changes against the state, and
// writing run's own, for a sync that keeps state. A resumed sync without
// details writes none: it keeps the previous state as it is.
func (in *managedDevicesInput) startChanges(ctx context.Context, run *syncRun) {
	if in.state == nil {
		return
	}
	partial := run.resumedPages > 0
	if partial {
		in.log.Warnf("Sync %s resumed from a checkpoint: it lists every device's id again at its end to name the deletions", run.id)
	}
	var writer *deviceStateWriter
	if !partial || in.conf.details.enabled {
		writer = in.state.begin(ctx)
	}
	run.changes = newChangeTracker(in.state.fp, run.state, writer, in.conf.emitChanges, partial)
}

// delivered runs once every message of run was acknowledged: the sync is
// complete downstream, so its snapshot becomes the one the next sync is
// compared with.
func (in *managedDevicesInput) delivered(run *syncRun) {
	defer run.done.close()
	elapsed := time.Since(run.startedAt)
	if w := run.stateWriter(); w != nil {
		if !in.state.saveDelivered(run.id, w, in.log, in.conf.interval == 0) {
			return
		}
		if in.detailsJournal != nil && run.details != nil {
			// The snapshot holds every record the sync journaled.
			if err := in.detailsJournal.clear(context.Background(), run.journaled); err != nil {
				in.log.Warnf("%v", err)
			}
		}
	}
	in.metrics.syncDelivered(elapsed)
	upserts := run.devices
	if run.changes != nil {
		upserts = run.changes.upserts
	}
	completed.syncs.Add(1)
	completed.messages.Add(int64(upserts + run.deletions))
	refused := ""
	if n := DeadLettered() - run.deadLetteredAtStart; n > 0 {
		refused = fmt.Sprintf("; %d refused by the destination for their content, in its dead letter", n)
	}
	if run.details != nil {
		missing := run.details.failures.Load()
		in.metrics.detailsMissing.Set(missing)
		// The last delivered sync's, as the exit status reports.
		recordDetailsMissing(in.tenant, missing)
		if missing > 0 {
			refused += fmt.Sprintf("; %d devices lack fresh details (their GET failed: emitted with the details last fetched, or null)", missing)
		}
	}
	in.log.Infof("Sync %s delivered: %d devices listed, %d upserts and %d deletions emitted, in %s%s",
		run.id, run.devices, upserts, run.deletions, elapsed.Round(time.Millisecond), refused)
}

// startedMarker is the body of the sync_started message.
func (r *syncRun) startedMarker() []byte {
	return []byte(fmt.Sprintf(`{"sync_id":%q,"sync_started_at":%q}`, r.id, r.startedAtText))
}

// completedMarker is the body of the sync_completed message.
func (r *syncRun) completedMarker() []byte {
	upserts := r.devices
	if r.changes != nil {
		upserts = r.changes.upserts
	}
	return []byte(fmt.Sprintf(`{"sync_id":%q,"sync_started_at":%q,"devices":%d,"upserts":%d,"deletes":%d,"duration_seconds":%.3f}`,
		r.id, r.startedAtText, r.devices, upserts, r.deletions, time.Since(r.startedAt).Seconds()))
}

func (in *managedDevicesInput) progress(run *syncRun, page *graph.Page) {
	run.pages++
	run.devices += len(page.Devices)
	if page.HasCount {
		run.count, run.hasCount = page.Count, true
	}
	in.log.Debugf("Sync %s page %d: %d devices (request-id %s)", run.id, page.Number, len(page.Devices), page.RequestID)

	now := time.Now()
	if now.Sub(run.lastProgress) < progressEvery && page.NextLink != "" {
		return
	}
	run.lastProgress = now
	elapsed := now.Sub(run.startedAt)
	estimate := ""
	if run.hasCount && run.count > 0 {
		estimate = fmt.Sprintf(", ~%.0f%% of the %d reported by @odata.count", 100*float64(run.devices)/float64(run.count), run.count)
	}
	in.log.Infof("Sync %s progress: %d devices in %d pages (%.0f devices/s%s)",
		run.id, run.devices, run.pages, rate(run.devices, elapsed), estimate)
}

// retryLogger logs and counts every failed request that will be retried.
func retryLogger(log *service.Logger, redact redactor, metrics *inputMetrics) func(graph.RetryEvent) {
	return func(ev graph.RetryEvent) {
		metrics.retried(ev)
		if ev.TokenRenewed {
			log.Warnf("%v", redact.error(fmt.Errorf("page %d attempt %d: Graph refused the access token; retrying with a new one: %w",
				ev.Page, ev.Attempt, ev.Err)))
			return
		}
		if ev.Items > 0 {
			// A batch's items: Graph's Retry-After pauses every request
			// (the throttle), other answers wait up to this long.
			log.Warnf("%v", redact.error(fmt.Errorf("details, attempt %d: %w; retrying within %s",
				ev.Attempt, ev.Err, ev.Wait.Round(time.Millisecond))))
			return
		}
		log.Warnf("%v", redact.error(fmt.Errorf("page %d attempt %d failed, retrying in %s: %w",
			ev.Page, ev.Attempt, ev.Wait.Round(time.Millisecond), ev.Err)))
	}
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// hint adds what to do about the errors users meet most, set up mistakes;
// permission is the one a 403 asks for.
func hint(err error, permission string) string {
	var gerr *graph.Error
	switch {
	case errors.Is(err, graph.ErrForeignNextLink):
		return "; check graph_url: nextLinks are only followed on its scheme and host"
	case !errors.As(err, &gerr):
		return ""
	case gerr.Source == graph.SourceEntra:
		switch gerr.AADSTS {
		case 7000215:
			return "; check client_secret: it must be the secret's value, not its id"
		case 7000222:
			return "; the client secret has expired: create a new one in the app registration"
		case 700016:
			return "; check client_id and tenant_id: the app is not registered in this tenant"
		case 90002:
			return "; check tenant_id and cloud: the tenant is not found in this cloud"
		case 700027:
			return "; check client_certificate: its certificate is not one uploaded to the app registration (Certificates & secrets)"
		case 700024:
			return "; the client assertion is outside its validity period: check this machine's clock"
		case 70021:
			return "; check the app's federated credential: its issuer, subject and audience (api://AzureADTokenExchange) must match the token in federated_token_file"
		}
	case gerr.Source == graph.SourceManagedIdentity:
		return "; check managed_identity: the identity must be assigned to this Azure VM, and client_id must be a user-assigned identity's client id or empty"
	case gerr.StatusCode == http.StatusForbidden:
		return "; grant the app registration (or the managed identity's service principal) the application permission " + permission + " and give admin consent"
	}
	return ""
}
