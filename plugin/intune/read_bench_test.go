package intune

import (
	"context"
	"testing"
	"time"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// BenchmarkReadPerDevice is the input's per-message path: taking the next
// device of a fetched page, wrapping it in a message with the four metadata
// fields, and acknowledging it (which moves the checkpoint cursor once per
// page). Fetching and parsing are measured by graph.BenchmarkParsePage.
func BenchmarkReadPerDevice(b *testing.B) {
	devices := benchDevices(1000)
	items := make(chan pageItem, 1)
	in := &managedDevicesInput{}
	in.bg.items = items
	in.conf.query.APIVersion = "v1.0"
	run := newSyncRun(time.Now(), "https://graph.microsoft.com/v1.0/deviceManagement/managedDevices")
	run.acks = newAckTracker(nil, func(error) {}, nil)
	run.boxMeta("00000000-0000-0000-0000-0000000000aa", "v1.0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for n := 1; ; n++ {
			acks := run.acks.track(syncCursor{Page: n, NextURL: "x"}, len(devices))
			select {
			case items <- pageItem{bodies: devices, ids: deviceIDs(devices), operation: opUpsertMeta, pageMeta: n, run: run, acks: acks}:
			case <-ctx.Done():
				return
			}
		}
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg, ack, err := in.Read(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := ack(ctx, nil); err != nil {
			b.Fatal(err)
		}
		_ = msg
	}
}

// benchDevices are the first n devices of graphsim's tenant of seed 1, as
// Graph sends them.
func benchDevices(n int) [][]byte {
	sim := graphsim.New(graphsim.Config{Devices: n, Seed: 1})
	devices := make([][]byte, n)
	for i := range devices {
		devices[i] = sim.Device(i)
	}
	return devices
}
