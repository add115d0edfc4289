package intune

import (
	"sync"
	"sync/atomic"
)

// Benthos v4.27 gives an input no way to fail the process: returning
// service.ErrEndOfInput ends the stream with exit code 0, and any other error
// makes Benthos call Read again forever. A one-shot sync that did not
// complete must not look like success, so the input records why it stopped
// here and the distribution's main turns it into a non-zero exit once Benthos
// has flushed the outputs.
var outcome struct {
	mu  sync.Mutex
	err error
}

// completed counts the messages of the syncs of this process that were
// delivered (upserts and deletions), and syncs the syncs that completed.
var completed struct {
	messages, syncs atomic.Int64
	// apps counts the messages of intune_detected_apps among messages.
	apps atomic.Int64
	// detailsMissing counts, per tenant, the devices of its last
	// delivered sync whose due details could not be fetched
	// (intune_managed_devices with details).
	detailsMissing sync.Map // tenant -> int64
}

// recordDetailsMissing keeps how many devices of tenant's last delivered
// sync lack the fresh details they were due.
func recordDetailsMissing(tenant string, missing int64) {
	completed.detailsMissing.Store(tenant, missing)
}

// DetailsMissing is how many devices of the last delivered sync (of each
// tenant) were emitted without the fresh details they were due (their GET
// failed).
func DetailsMissing() int64 {
	var sum int64
	completed.detailsMissing.Range(func(_, v any) bool {
		sum += v.(int64)
		return true
	})
	return sum
}

// DeliveredApps is how many of Delivered's messages are apps and pairs
// (intune_detected_apps) rather than devices.
func DeliveredApps() int64 { return completed.apps.Load() }

// Delivered reports the syncs of this process that completed and how many
// of their messages the outputs took, DeadLettered() of them into a dead
// letter only.
func Delivered() (syncs, messages int64) { return completed.syncs.Load(), completed.messages.Load() }

func recordFailure(err error) {
	outcome.mu.Lock()
	defer outcome.mu.Unlock()
	if outcome.err == nil {
		outcome.err = err
	}
}

// SyncFailure returns why the first one-shot sync of this process that did
// not complete stopped, or nil when every one-shot sync read every page.
func SyncFailure() error {
	outcome.mu.Lock()
	defer outcome.mu.Unlock()
	return outcome.err
}
