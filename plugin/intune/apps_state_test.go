package intune

import (
	"context"
	"fmt"
	"sort"
	"testing"
)

// writeAppsState saves, through a store with small chunks, apps a0..a(apps-1)
// and on each of devices d0..d(devices-1) the apps (i+j)%apps for j <
// perDevice, each hashed from its ids and salt.
func writeAppsState(t *testing.T, store *appsStateStore, apps, devices, perDevice int, salt uint64) {
	t.Helper()
	ctx := context.Background()
	w := store.begin(ctx)
	for a := 0; a < apps; a++ {
		if err := w.app(ctx, fmt.Sprintf("a%d", a), uint64(a)+salt); err != nil {
			t.Fatal(err)
		}
	}
	for d := 0; d < devices; d++ {
		for j := 0; j < perDevice; j++ {
			a := (d + j) % apps
			if err := w.pair(ctx, fmt.Sprintf("d%d", d), fmt.Sprintf("a%d", a), uint64(d*apps+a)+salt); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !store.saveDelivered("test", w, nil, false) {
		t.Fatal("not saved")
	}
}

func TestAppsSnapshotRoundTripsInChunksAndNamesWhatLeft(t *testing.T) {
	res := memoryCacheResources(t)
	t.Setenv(envStateChunkBytes, "4096")
	store, err := newAppsStateStore(res, "mem", "apps")
	if err != nil {
		t.Fatal(err)
	}
	writeAppsState(t, store, 50, 300, 20, 0)
	if g := store.chunks.reserved; g != 1 {
		t.Fatalf("generation %d", g)
	}
	snap, err := store.previous(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if snap.appCount() != 50 || snap.deviceCount() != 300 || snap.pairCount() != 300*20 {
		t.Fatalf("read %d apps, %d devices, %d pairs", snap.appCount(), snap.deviceCount(), snap.pairCount())
	}
	// The next sync sees every app but a7, every pair of d0..d298 (d299
	// retired) with d5's pair of a6 changed.
	for a := 0; a < 50; a++ {
		if a != 7 && !snap.seeApp(fmt.Sprintf("a%d", a), uint64(a)) {
			t.Fatalf("app a%d reads as changed", a)
		}
	}
	changed := 0
	for d := 0; d < 299; d++ {
		for j := 0; j < 20; j++ {
			a := (d + j) % 50
			hash := uint64(d*50 + a)
			if d == 5 && a == 6 {
				hash++
			}
			if !snap.seePair(fmt.Sprintf("d%d", d), fmt.Sprintf("a%d", a), hash) {
				changed++
			}
		}
	}
	if changed != 1 {
		t.Errorf("%d pairs read as changed, want 1", changed)
	}
	if snap.seePair("d1", "a49", 0) || snap.seePair("d9999", "a1", 0) {
		t.Error("a pair the snapshot does not hold reads as unchanged")
	}
	var gone []string
	_ = snap.eachUnseenPairWhere(nil, func(d, a string) error { gone = append(gone, d+" "+a); return nil })
	var goneApps []string
	_ = snap.eachUnseenApp(func(a string) error { goneApps = append(goneApps, a); return nil })
	sort.Strings(gone)
	if len(gone) != 20 || gone[0] != "d299 a0" || len(goneApps) != 1 || goneApps[0] != "a7" {
		t.Errorf("gone: %d pairs %v…, apps %v; want d299's 20 and a7", len(gone), gone[:min(2, len(gone))], goneApps)
	}
}

func TestAppsSnapshotOfAnOlderReleaseIsRead(t *testing.T) {
	ctx := context.Background()
	res := memoryCacheResources(t)
	old := newSnapshot(0)
	old.put("app a1", 11)
	old.put("pair 0000002a-0000-4000-8000-00000000002a a1", 12)
	if err := cacheSet(ctx, res, "mem", "apps", old.encode()); err != nil {
		t.Fatal(err)
	}
	store, _ := newAppsStateStore(res, "mem", "apps")
	snap, err := store.previous(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !snap.seeApp("a1", 11) || !snap.seePair("0000002a-0000-4000-8000-00000000002a", "a1", 12) {
		t.Error("the older release's app and pair are not read")
	}
	bad := newSnapshot(0)
	bad.put("0000002a-0000-4000-8000-00000000002a", 1) // a device snapshot
	if err := cacheSet(ctx, res, "mem", "apps", bad.encode()); err != nil {
		t.Fatal(err)
	}
	if _, err := store.previous(ctx); err == nil {
		t.Error("a device snapshot read as an apps snapshot")
	}
}
