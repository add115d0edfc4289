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
// the batcher that sends the GETs and the writer of the journal; what is
// known of each device's details is run's state (loadState). stop ends
// them, once however often it is called; it writes what the journal has
// not yet written.
func (in *managedDevicesInput) startDetails(ctx context.Context, run *syncRun) (stop func(), err error) {
	if !in.conf.details.enabled {
		return func() {}, nil
	}
	in.detailsSpreadOnce.Do(func() {
		// The spread of first refreshes goes on from the devices known, so
		// that one-shot runs do not all start the sequence over.
		in.detailsSpread.Store(uint64(run.state.detailsCount()))
	})
	d := in.conf.details
	var firstFailure, firstBehind, firstLost sync.Once
	r := &detailsRun{
		conf:     d,
		state:    run.state,
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
		lost: func(err error) {
			firstLost.Do(func() {
				in.log.Warnf("Sync %s: %v; the details the state held there are fetched again (the first such read of the sync)", run.id, err)
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

// loadState reads, for run, the state of the last complete sync (and,
// with details, what the journal holds since), or starts from none
// without state_cache: then every sync fetches every device's details, as
// documented: what one sync fetched is not a reason for the next to trust
// it, and a set never pruned would grow as devices come and go.
func (in *managedDevicesInput) loadState(ctx context.Context, run *syncRun) error {
	if in.state == nil {
		run.state = emptyDeviceState()
		return nil
	}
	state, pieces, err := in.state.load(ctx, in.detailsJournal, func(err error) { in.log.Warnf("%v", err) })
	if err != nil {
		return fmt.Errorf("sync %s stopped: %w", run.id, err)
	}
	run.state = state
	if in.conf.details.enabled {
		known := state.detailsCount()
		in.log.Infof("Details of %d devices read from cache %q (%d pieces of journal left by a sync that stopped)", known, in.state.cache, pieces)
		if known == 0 {
			in.log.Infof("No device has details yet: this sync fetches every device's")
		}
	}
	return nil
}

// logDetails says what run's details cost and what became of them.
func (in *managedDevicesInput) logDetails(run *syncRun) {
	r := run.details
	if r == nil {
		return
	}
	in.log.Infof("Sync %s details: %d fetched, %d kept from earlier syncs, %d failed, %d devices gone since the list; %d GETs in JSON batches of up to 20; kept values read from the state in %d cache reads",
		run.id, r.fetched.Load(), r.kept.Load(), r.failures.Load(), r.gone.Load(), r.requests.Load(), run.state.values.reads.Load())
}
