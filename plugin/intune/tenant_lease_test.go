package intune

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

func TestATenantsLeaseHasOneHolderAtATime(t *testing.T) {
	ctx := context.Background()
	res := service.MockResources(service.MockResourcesOptAddCache("mem"))
	for _, cache := range []string{"mem"} {
		a := newTenantLease(res, cache, "intune_state_t1", "pod-0 shard 0/3")
		other := newTenantLease(res, cache, "intune_state_t1", "pod-1 shard 0/4")
		if err := a.acquire(ctx); err != nil {
			t.Fatal(err)
		}
		var held *leaseHeldError
		if err := other.acquire(ctx); !errors.As(err, &held) || held.owner != "pod-0 shard 0/3" || !strings.Contains(err.Error(), "pod-0 shard 0/3 is syncing it") {
			t.Fatalf("a second holder: %v, want the first one named", err)
		}
		// The same owner (the pod, restarted) takes its own lease over.
		if err := newTenantLease(res, cache, "intune_state_t1", "pod-0 shard 0/3").acquire(ctx); err != nil {
			t.Errorf("the same owner again: %v", err)
		}
		// Another tenant's lease is another key.
		if err := newTenantLease(res, cache, "intune_state_t2", "pod-1 shard 0/4").acquire(ctx); err != nil {
			t.Errorf("another tenant: %v", err)
		}
		// Released, it is free; a release by a non-holder changes nothing.
		other.release(ctx)
		if err := other.acquire(ctx); err == nil {
			t.Fatal("a release by another owner freed the lease")
		}
		a.release(ctx)
		if err := other.acquire(ctx); err != nil {
			t.Fatalf("after release: %v", err)
		}
		// A lease not renewed past its time was abandoned: taken over.
		stale, _ := json.Marshal(leaseValue{Owner: "pod-1 shard 0/4", Until: time.Now().Add(-time.Second).Unix()})
		if err := cacheSet(ctx, res, cache, other.key, stale); err != nil {
			t.Fatal(err)
		}
		if err := a.acquire(ctx); err != nil {
			t.Errorf("an abandoned lease: %v, want it taken over", err)
		}
		// Renewing a lease another took over says so.
		if err := other.renew(ctx); err == nil || !strings.Contains(err.Error(), "taken over") {
			t.Errorf("renewing a lost lease: %v", err)
		}
	}
}

// whileLeased keeps the lease past the sync's return, until its run is
// delivered.
func TestALeaseIsHeldUntilTheRunIsDelivered(t *testing.T) {
	ctx := context.Background()
	res := service.MockResources(service.MockResourcesOptAddCache("mem"))
	l := newTenantLease(res, "mem", "k", "me")
	delivered := make(chan struct{})
	if err := whileLeased(ctx, l, func(err error) { t.Error(err) }, func() (<-chan struct{}, error) { return delivered, nil }); err != nil {
		t.Fatal(err)
	}
	other := newTenantLease(res, "mem", "k", "another")
	if err := other.acquire(ctx); err == nil {
		t.Fatal("the lease was free before the run was delivered")
	}
	close(delivered)
	deadline := time.Now().Add(5 * time.Second)
	for other.acquire(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the lease was not released once the run was delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A sync that fails releases at once.
	other.release(ctx)
	if err := whileLeased(ctx, l, func(error) {}, func() (<-chan struct{}, error) { return nil, errors.New("boom") }); err == nil {
		t.Fatal("the sync's error was lost")
	}
	if err := other.acquire(ctx); err != nil {
		t.Errorf("after a failed sync: %v", err)
	}
}
