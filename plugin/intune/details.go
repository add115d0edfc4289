package intune

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// Details are the properties Graph's list of managed devices leaves at a
// default (schema.SourceGet): their real values come only from a GET of
// the one device that names them in $select. A sync plans, for each listed
// page, which devices need theirs fetched (new, a trigger property changed,
// or due by age), queues their GETs on the input's batcher (JSON batches
// of 20 under the throttle, graph.BatchGets), and emits the page once they
// are answered, each device with its placeholders replaced by its real
// values: fetched now, or kept from an earlier sync, or null when none is
// known. Nothing Graph put in a list as a placeholder is ever emitted.

// The values of intune_details, boxed once.
var (
	detailsFetchedMeta any = "fetched" // fetched by this sync
	detailsKeptMeta    any = "kept"    // fetched by an earlier sync, still fresh
	detailsFailedMeta  any = "failed"  // due, but the GET failed: older values or null
	detailsGoneMeta    any = "gone"    // the GET found no such device (removed since the list): older values or null
)

// detailsOutcome is what became of one listed device's details this sync.
type detailsOutcome uint8

const (
	detailsNotDue detailsOutcome = iota
	detailsFetched
	detailsFailed
	detailsGone
)

// detailsRun fetches the details of one sync's devices.
type detailsRun struct {
	conf detailsConfig
	// state is what the last complete sync and the journal knew of each
	// device's details.
	state    *deviceState
	gets     *graph.BatchGets
	now      func() time.Time
	selected uint64
	triggers map[string]bool
	// spread numbers the devices whose details are fetched for the first
	// time (see refreshAfter); it is the input's, so it goes on across syncs.
	spread *atomic.Uint64
	// journal receives each fetched record (nil without state_cache);
	// journalBehind is told when it was full and a record was not
	// journaled.
	journal       chan<- journalEntry
	journalBehind func()
	// startedAt is the details clock when the sync started, Unix seconds.
	startedAt int64
	// failed is told every details error of the sync; lost every kept
	// details whose values could not be read from the state.
	failed  func(error)
	lost    func(error)
	metrics *inputMetrics

	fetched, kept, failures, gone, requests atomic.Int64
}

// selectedHash identifies a set of fetched properties: details fetched with
// another set are fetched again.
func selectedHash(properties []string) uint64 {
	return xxhash.Sum64String(strings.Join(properties, ","))
}

// pageDetails is one page's devices as planned and, once done is closed,
// fetched.
type pageDetails struct {
	ids      []string
	triggers []uint64
	outcomes []detailsOutcome
	// records are each device's details: those known when the page was
	// planned, replaced by what was fetched (outcome detailsFetched).
	records []detailsRecord
	known   []bool // records[i] holds details
	pending atomic.Int64
	done    chan struct{}
}

// plan reads each device's id and trigger values and queues the GET of
// every device whose details are due.
func (r *detailsRun) plan(ctx context.Context, devices [][]byte) (*pageDetails, error) {
	n := len(devices)
	pd := &pageDetails{ids: make([]string, n), triggers: make([]uint64, n), outcomes: make([]detailsOutcome, n),
		records: make([]detailsRecord, n), known: make([]bool, n), done: make(chan struct{})}
	now := r.now().Unix()
	var due []int
	for i, body := range devices {
		id, trig, err := scanDevice(body, r.triggers)
		if err != nil {
			return nil, fmt.Errorf("device %d: %w", i+1, err)
		}
		pd.ids[i], pd.triggers[i] = id, trig
		entry, _ := r.state.find(id)
		rec, known, err := r.state.details(ctx, entry)
		if err != nil {
			r.lost(err)
		}
		pd.records[i], pd.known[i] = rec, known
		if r.due(pd.records[i], pd.known[i], trig, now) {
			due = append(due, i)
		}
	}
	pd.pending.Store(int64(len(due)) + 1)
	for _, i := range due {
		i := i
		r.requests.Add(1)
		r.gets.Get(r.path(pd.ids[i]), func(res graph.BatchResult) { r.settle(pd, i, res) })
	}
	pd.release() // the plan's own count: done closes even when nothing was due
	return pd, nil
}

// due tells whether a device's details must be fetched, from what is
// known of them (rec, when known): none (a new device, or one whose GET
// failed before), fetched with other properties, a trigger property
// changed, or old.
func (r *detailsRun) due(rec detailsRecord, known bool, trigger uint64, now int64) bool {
	return !known || rec.selected != r.selected || rec.trigger != trigger ||
		now >= rec.refreshAt || now-rec.fetchedAt >= int64(r.conf.maxAge/time.Second)
}

// path is the GET of one device's details, relative to the version.
func (r *detailsRun) path(id string) string {
	return "/deviceManagement/managedDevices/" + url.PathEscape(id) + "?$select=" + strings.Join(r.conf.properties, ",")
}

// settle records how the GET of device i of pd ended.
func (r *detailsRun) settle(pd *pageDetails, i int, res graph.BatchResult) {
	defer pd.release()
	switch {
	case res.Err != nil:
		r.failure(pd, i, res.Err)
	case res.Answer.OK():
		values, err := detailsValues(res.Answer.Body, r.conf.properties)
		if err != nil {
			r.failure(pd, i, err)
			return
		}
		now := r.now()
		rec := detailsRecord{fetchedAt: now.Unix(), trigger: pd.triggers[i], selected: r.selected, values: values}
		rec.refreshAt = r.refreshAfter(now, pd.known[i]).Unix()
		r.journalRecord(pd.ids[i], rec)
		pd.records[i], pd.known[i], pd.outcomes[i] = rec, true, detailsFetched
		r.fetched.Add(1)
		r.metrics.details.Incr(1, "fetched")
	case res.Answer.IsNotFound():
		// Removed between the list and the GET: the next complete sync
		// names it among the deletions.
		pd.outcomes[i] = detailsGone
		r.gone.Add(1)
		r.metrics.details.Incr(1, "gone")
	default:
		r.failure(pd, i, fmt.Errorf("%w%s", res.Answer.Err, hint(res.Answer.Err, managedDevicesEntity.permission)))
	}
}

// journalRecord hands a fetched record to the journal writer, without
// waiting: a cache that does not keep up costs GETs after a crash, never a
// fetch's time.
func (r *detailsRun) journalRecord(id string, rec detailsRecord) {
	if r.journal == nil {
		return
	}
	select {
	case r.journal <- journalEntry{id: id, rec: rec}:
	default:
		r.journalBehind()
	}
}

// failure records that device i's details could not be fetched.
func (r *detailsRun) failure(pd *pageDetails, i int, err error) {
	pd.outcomes[i] = detailsFailed
	r.failures.Add(1)
	r.metrics.details.Incr(1, "failed")
	r.failed(fmt.Errorf("details of device %s: %w", pd.ids[i], err))
}

func (pd *pageDetails) release() {
	if pd.pending.Add(-1) == 0 {
		close(pd.done)
	}
}

// wait returns once every GET of the page has ended, or ctx has.
func (pd *pageDetails) wait(ctx context.Context) error {
	select {
	case <-pd.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// goldenFraction spreads the first refreshes: the k-th device fetched for
// the first time is refreshed after the fraction k·φ mod 1 of max_age, a
// sequence that covers (0, 1) evenly for any count, so that every sync of
// the weeks after the first one refreshes about the same number of devices
// (a hash of the id would be as even only on average).
const goldenFraction = 0.6180339887498949

// refreshAfter is when details fetched at now are due again: max_age
// later, or, for a device's first details, at its point of the first
// max_age (see goldenFraction).
func (r *detailsRun) refreshAfter(now time.Time, known bool) time.Time {
	if known {
		return now.Add(r.conf.maxAge)
	}
	_, frac := math.Modf(float64(r.spread.Add(1)) * goldenFraction)
	return now.Add(time.Duration(frac * float64(r.conf.maxAge)))
}

// record is the details device i of a planned page is emitted with, and
// the value of its intune_details: fetched now, or kept from an earlier
// sync (also when this sync's GET failed or found the device gone). Kept
// details fetched with other properties carry only those still selected:
// a secret no longer named is never emitted again.
func (r *detailsRun) record(pd *pageDetails, i int) (detailsRecord, bool, any) {
	rec, ok := pd.records[i], pd.known[i]
	status := detailsKeptMeta
	switch pd.outcomes[i] {
	case detailsFetched:
		return rec, true, detailsFetchedMeta
	case detailsNotDue:
		if ok {
			r.kept.Add(1)
			r.metrics.details.Incr(1, "kept")
		}
	case detailsFailed:
		status = detailsFailedMeta
	case detailsGone:
		status = detailsGoneMeta
	}
	if ok && rec.selected != r.selected {
		if values, err := detailsValues(rec.values, r.conf.properties); err == nil {
			rec.values = values
		} else {
			ok = false
		}
	}
	return rec, ok, status
}

// scanDevice reads a device's id and hashes the values of its trigger
// properties, in one pass over its bytes.
func scanDevice(body []byte, triggers map[string]bool) (string, uint64, error) {
	h := xxhash.New()
	var idLit []byte
	err := graph.EachMember(body, func(key []byte, escaped bool, value []byte) {
		name := string(key)
		if escaped {
			name, _ = graph.DecodeKey(key, escaped)
		}
		switch {
		case name == "id":
			idLit = value
		case triggers[name]:
			_, _ = h.WriteString(name)
			_, _ = h.Write([]byte{0})
			_, _ = h.Write(value)
			_, _ = h.Write([]byte{0})
		}
	})
	id, err := scannedID(idLit, err)
	return id, h.Sum64(), err
}

// detailsValues keeps, of a GET's answer, the members that are selected
// properties (Graph adds @odata.context, and may add id), each value
// exactly as Graph wrote it.
func detailsValues(answer []byte, properties []string) ([]byte, error) {
	out := make([]byte, 0, len(answer))
	out = append(out, '{')
	err := graph.EachMember(answer, func(key []byte, escaped bool, value []byte) {
		if escaped || !slices.Contains(properties, string(key)) {
			return
		}
		if len(out) > 1 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, key...)
		out = append(out, '"', ':')
		out = append(out, value...)
	})
	if err != nil {
		return nil, fmt.Errorf("the answer is not a JSON object: %w", err)
	}
	// Kept for every device until it is fetched again: exactly its size,
	// not the answer's (whose context alone is longer than some values).
	return bytes.Clone(append(out, '}')), nil
}

// mergeDetails appends to dst the device body with each placeholder
// property's value replaced: by its value in values (a record's object),
// or null when values has none. The properties of values that body lacks
// (a beta property fetched for a v1.0 listing) are appended at the end.
// Everything else is copied byte for byte.
func mergeDetails(dst, body, values []byte, placeholders map[string]bool) ([]byte, error) {
	type member struct{ key, value []byte }
	var fetched [16]member
	known := fetched[:0]
	if values != nil {
		err := graph.EachMember(values, func(key []byte, _ bool, value []byte) {
			known = append(known, member{key, value})
		})
		if err != nil {
			return dst, fmt.Errorf("kept details are not a JSON object: %w", err)
		}
	}
	used := make([]bool, len(known))
	start := len(dst)
	dst = append(dst, '{')
	err := graph.EachMember(body, func(key []byte, escaped bool, value []byte) {
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, key...)
		dst = append(dst, '"', ':')
		name := string(key)
		if escaped {
			name, _ = graph.DecodeKey(key, escaped)
		}
		for k, m := range known {
			if string(m.key) == name {
				// Listed: the body's own value, unless a placeholder.
				used[k] = true
				if placeholders[name] {
					dst = append(dst, m.value...)
					return
				}
			}
		}
		if placeholders[name] {
			dst = append(dst, "null"...)
			return
		}
		dst = append(dst, value...)
	})
	if err != nil {
		return dst[:start], fmt.Errorf("device is not a JSON object: %w", err)
	}
	for k, m := range known {
		if used[k] {
			continue
		}
		if len(dst) > start+1 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = append(dst, m.key...)
		dst = append(dst, '"', ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}'), nil
}
