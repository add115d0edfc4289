package intune

import (
	"strings"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// A destination that refuses everything for a while, as a database does
// while it restarts, costs a pause, not the sync: once it is back every
// device arrives and the sync completes. While it is away the input holds
// what was in flight and reads no further: it does not fetch the tenant
// into memory. (Benthos' own AutoRetryNacks wedged here: it sleeps under
// the lock every acknowledgement needs.)
func TestAnOutageOfTheDestinationCostsAPauseNotTheSync(t *testing.T) {
	resetSyncFailure()
	const devices = 30000
	sim, url := startSim(t, graphsim.Config{Devices: devices, PageSize: 1000, Latency: 20 * time.Millisecond})
	dest, output := flakyOutput(t, t.Name())
	// Down from the first delivery of page 5 for three seconds.
	go func() {
		for {
			dest.mu.Lock()
			n := len(dest.attempted)
			dest.mu.Unlock()
			if n >= 4000 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		dest.setDown(true)
		time.Sleep(3 * time.Second)
		dest.setDown(false)
	}()
	logs := streamTest{input: inputYAML(sim, url, ""), output: output, timeout: 90 * time.Second}.run(t).logs
	if SyncFailure() != nil {
		t.Fatalf("the sync failed: %v", SyncFailure())
	}
	dest.mu.Lock()
	defer dest.mu.Unlock()
	if dest.refused == 0 {
		t.Fatal("the destination never refused a batch: the test proved nothing")
	}
	twice := 0
	for i := 0; i < devices; i++ {
		n := dest.delivered[sim.DeviceID(i)]
		if n == 0 {
			t.Fatalf("device %d was never delivered", i)
		}
		twice += n - 1
	}
	// At least once, and here exactly once: a refused batch was not applied.
	if twice != 0 {
		t.Errorf("%d devices delivered twice", twice)
	}
	// Bounded: what was offered while the destination was down is what was
	// in flight (four batches of 500) and a page or two read ahead, not the
	// tenant.
	if len(dest.duringDown) > 5000 {
		t.Errorf("%d distinct devices were read while the destination was down: the input kept reading", len(dest.duringDown))
	}
	if !strings.Contains(logs.String(), "The outputs refused a device") {
		t.Errorf("the refusals were not logged:\n%s", logs)
	}
}

// In interval mode an outage during one sync delays that sync, and the next
// one runs and completes as usual.
func TestAnOutageDuringOneIntervalSyncDoesNotBreakTheNext(t *testing.T) {
	resetSyncFailure()
	const devices = 3000
	sim, url := startSim(t, graphsim.Config{Devices: devices, PageSize: 500, Latency: 20 * time.Millisecond})
	dest, output := flakyOutput(t, t.Name())
	dest.setDown(true) // the first sync meets the outage from its first batch
	time.AfterFunc(1500*time.Millisecond, func() { dest.setDown(false) })
	complete := func() int {
		dest.mu.Lock()
		defer dest.mu.Unlock()
		n := 0
		for _, ids := range dest.perSync {
			if len(ids) == devices {
				n++
			}
		}
		return n
	}
	streamTest{input: inputYAML(sim, url, "", "  interval: 500ms"), output: output, timeout: 60 * time.Second,
		poll: func() bool { return complete() >= 2 }}.run(t)
	if n := complete(); n < 2 {
		t.Fatalf("%d syncs delivered every device, want 2 (the one that met the outage, and the next)", n)
	}
	dest.mu.Lock()
	defer dest.mu.Unlock()
	if dest.refused == 0 {
		t.Fatal("the destination never refused a batch")
	}
}
