package intune

import (
	"context"
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

// BenchmarkFlatten is intune_flatten's cost per device (graphsim's devices,
// ~3 KB each), the part of the warehouse configs that runs in the pipeline.
func BenchmarkFlatten(b *testing.B) {
	devices := benchDevices(1000)
	size := 0
	for _, d := range devices {
		size += len(d)
	}
	p := newFlattenProcessor("json", "_raw", service.MockResources())
	b.SetBytes(int64(size / len(devices)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := service.NewMessage(devices[i%len(devices)])
		msg.MetaSetMut(contract.SyncID, "s")
		msg.MetaSetMut(contract.SyncStartedAt, "2026-11-30T18:00:00Z")
		msg.MetaSetMut(contract.Operation, contract.OpUpsert)
		msg.MetaSetMut(contract.DeviceID, "d")
		if _, err := p.Process(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
	}
}
