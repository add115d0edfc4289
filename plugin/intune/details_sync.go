package intune

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

// envDetailsClockShift moves the clock by which details are aged (a
// duration such as 1h), so that a test or a benchmark can run "the sync an
// hour later" without waiting an hour. Nothing else reads it.
const envDetailsClockShift = "INTUNE_DETAILS_CLOCK_SHIFT"

func detailsClock(log *service.Logger) (func() time.Time, error) {
	v := os.Getenv(envDetailsClockShift)
	if v == "" {
		return time.Now, nil
	}
	shift, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envDetailsClockShift, err)
	}
	log.Warnf("%s=%s: details are aged by a clock %s ahead of this machine's; meant for tests only", envDetailsClockShift, v, shift)
	return func() time.Time { return time.Now().Add(shift) }, nil
}

// startDetails prepares the details of run, when the input fetches them:
// what the state holds (read by the first sync), the batcher that sends
// the GETs and the writer of the journal. stop ends them, once however
// often it is called; it writes what the journal has not yet written.
func (in *managedDevicesInput) startDetails(ctx context.Context, run *syncRun) (stop func(), err error) {
	if !in.conf.details.enabled {
		return func() {}, nil
	}
	if err := in.loadDetails(ctx); err != nil {
		return nil, fmt.Errorf("sync %s stopped: %w", run.id, err)
	}
	d := in.conf.details
	var firstFailure, firstBehind sync.Once
	r := &detailsRun{
		conf:     d,
		set:      in.details,
		gets:     in.client.NewBatchGets(d.version, in.conf.maxConcurrency),
		now:      in.detailsClock,
		selected: selectedHash(d.properties),
		triggers: map[string]bool{},
		spread:   &in.detailsSpread,
		metrics:  in.metrics,
		failed: func(err error) {
			firstFailure.Do(func() {
				in.log.Warnf("%v", in.redact.error(fmt.Errorf("sync %s: %w; the device is emitted with the details last fetched, or null, and counted (the first failure of the sync; the rest are counted)", run.id, err)))
			})
		},
		journalBehind: func() {
			firstBehind.Do(func() {
				in.log.Warnf("Sync %s: the details journal in cache %q does not keep up; details it misses are fetched again after a crash", run.id, in.state.cache)
			})
		},
	}
	r.startedAt = r.now().Unix()
	for _, p := range d.triggers {
		r.triggers[p] = true
	}
	fetchCtx, cancel := context.WithCancel(ctx)
	var workers sync.WaitGroup
	workers.Add(1)
	go func() { defer workers.Done(); r.gets.Run(fetchCtx) }()
	var journal *journalWriter
	if in.detailsJournal != nil {
		journal = startJournalWriter(in.detailsJournal, func(err error) { in.log.Warnf("%v", err) })
		r.journal = journal.entries
	}
	run.details = r
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			workers.Wait()
			if journal != nil {
				journal.stop()
				run.journaled = in.detailsJournal.last()
			}
		})
	}, nil
}

// loadDetails reads, the first time, the details the state holds: those of
// the last saved snapshot, then those of the journal that a sync stopped
// since left. Without state_cache every sync starts with none, as
// documented: what one sync fetched is not a reason for the next to
// trust it, and a set never pruned would grow as devices come and go.
func (in *managedDevicesInput) loadDetails(ctx context.Context) error {
	if in.state == nil {
		in.details = newDetailsSet(0)
		return nil
	}
	if in.details != nil {
		return nil
	}
	set := newDetailsSet(0)
	previous, err := in.state.previous(ctx)
	if err != nil {
		return err
	}
	if previous != nil && previous.details != nil {
		set = previous.details
	}
	saved := set.len()
	pieces, err := in.detailsJournal.load(ctx, set, func(err error) { in.log.Warnf("%v", err) })
	if err != nil {
		return err
	}
	in.log.Infof("Details of %d devices read from cache %q (%d pieces of journal left by a sync that stopped)", set.len(), in.state.cache, pieces)
	if saved == 0 && pieces == 0 {
		in.log.Infof("No device has details yet: this sync fetches every device's")
	}
	// The spread of first refreshes goes on from the devices known, so
	// that one-shot runs do not all start the sequence over.
	in.detailsSpread.Store(uint64(set.len()))
	in.details = set
	return nil
}

// logDetails says what run's details cost and what became of them.
func (in *managedDevicesInput) logDetails(run *syncRun) {
	r := run.details
	if r == nil {
		return
	}
	in.log.Infof("Sync %s details: %d fetched, %d kept from earlier syncs, %d failed, %d devices gone since the list; %d GETs in JSON batches of up to 20",
		run.id, r.fetched.Load(), r.kept.Load(), r.failures.Load(), r.gone.Load(), r.requests.Load())
}

// snapshotToSave is what a delivered sync leaves in state_cache: the
// devices' hashes (this sync's when it read every page, the previous
// ones otherwise) and, with details, the details, pruned of the devices
// that left once a complete sync has shown who they are. Nil when the sync
// changes nothing there (no state, or a resumed sync without details).
// Turning details off forgets them: the state keeps no value, a secret
// included, that no config asks for any more.
func (in *managedDevicesInput) snapshotToSave(run *syncRun) *snapshot {
	if run.changes == nil {
		return nil
	}
	var details *detailsSet
	if run.details != nil {
		details = in.details
	}
	if !run.changes.partial {
		snap := run.changes.current
		if details != nil {
			details.keepOnly(snap.hashes, run.details.startedAt)
		}
		snap.details = details
		return snap
	}
	if details == nil {
		return nil
	}
	snap := newSnapshot(0)
	if previous := run.changes.previous; previous != nil {
		snap.hashes = previous.hashes
	}
	snap.details = details
	return snap
}
