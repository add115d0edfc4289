package intune

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"
)

// tenantHold is what an input holds of its tenant between syncs: its
// lease (nil without tenants, or without a cache to keep it in), its last
// run, and where a lease that could not be renewed is told.
type tenantHold struct {
	lease     *tenantLease
	runs      currentRun
	leaseWarn func(error)
}

func (h *tenantHold) held() *tenantHold { return h }

// heldInput is an input that holds its tenant (managedDevicesInput and
// detectedAppsInput, by embedding tenantHold).
type heldInput interface{ held() *tenantHold }

// leaseOf is the lease of a tenant's input: in the state cache, else in
// the checkpoint cache, under the key of what it guards; nil without
// tenants.
func leaseOf(mgr *service.Resources, tc tenantsConfig, stateCache, stateKey, checkpointCache, checkpointKey string) *tenantLease {
	if !tc.enabled() {
		return nil
	}
	if stateCache != "" {
		return newTenantLease(mgr, stateCache, stateKey, leaseOwner(tc))
	}
	return newTenantLease(mgr, checkpointCache, checkpointKey, leaseOwner(tc))
}

// tenantInputs makes the input of each tenant when it is first read and
// keeps it for the next syncs, so that its token, throttle and details'
// spread carry over. A tenant taken out of the file is simply not read
// again.
type tenantInputs[T heldInput] struct {
	make func(tenant tenantEntry) (T, error)

	mu     sync.Mutex
	inputs map[string]T
}

func newTenantInputs[T heldInput](make func(tenant tenantEntry) (T, error)) *tenantInputs[T] {
	return &tenantInputs[T]{make: make, inputs: map[string]T{}}
}

func (t *tenantInputs[T]) get(tenant tenantEntry) (T, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	key := tenant.key()
	if in, ok := t.inputs[key]; ok {
		return in, nil
	}
	in, err := t.make(tenant)
	if err != nil {
		return in, err
	}
	t.inputs[key] = in
	return in, nil
}

// syncRound syncs each tenant of this round (see syncTenants) with syncOne,
// each holding its lease until its run is delivered (see whileLeased).
func (t *tenantInputs[T]) syncRound(ctx context.Context, conf tenantsConfig, log *service.Logger, syncOne func(ctx context.Context, in T) error) error {
	return syncTenants(ctx, conf, log, func(ctx context.Context, tenant tenantEntry) error {
		in, err := t.get(tenant)
		if err != nil {
			return err
		}
		h := in.held()
		return whileLeased(ctx, h.lease, h.leaseWarn, func() (<-chan struct{}, error) {
			err := syncOne(ctx, in)
			return h.runs.delivered(), err
		})
	})
}

// TenantFailure is one tenant whose sync did not complete, and why.
type TenantFailure struct {
	Tenant string
	Err    error
}

// tenantsError is a round in which some tenants' syncs did not complete.
type tenantsError struct {
	tenants  int
	failures []TenantFailure
}

func (e *tenantsError) Error() string {
	parts := make([]string, len(e.failures))
	for i, f := range e.failures {
		parts[i] = fmt.Sprintf("tenant %s: %v", f.Tenant, f.Err)
	}
	return fmt.Sprintf("%d of %d tenants did not sync: %s", len(e.failures), e.tenants, strings.Join(parts, "; "))
}

// syncTenants syncs each tenant of this round (the list or the file, read
// again now, this shard's share), at most conf.maxConcurrent at once. A
// tenant that fails stops no other: the round goes on, and its error names
// every tenant that failed. A one-shot round's outcome is kept for the
// process' last line and exit status (TenantsOutcome).
func syncTenants(ctx context.Context, conf tenantsConfig, log *service.Logger, syncOne func(ctx context.Context, tenant tenantEntry) error) error {
	tenants, err := conf.list()
	if err != nil {
		err = fmt.Errorf("no sync started: %w", err)
		log.Errorf("%v", err)
		return err
	}
	if conf.shardCount > 1 {
		log.Infof("Shard %d of %d: %d tenants to sync", conf.shardIndex, conf.shardCount, len(tenants))
	}
	errs := make([]error, len(tenants))
	slots := make(chan struct{}, conf.maxConcurrent)
	var wg sync.WaitGroup
	for i, tenant := range tenants {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			errs[i] = fmt.Errorf("not started: %w", ctx.Err())
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			errs[i] = syncOne(ctx, tenant)
		}()
	}
	wg.Wait()

	var failures []TenantFailure
	for i, err := range errs {
		if err != nil {
			failures = append(failures, TenantFailure{Tenant: tenants[i].id, Err: err})
		}
	}
	recordTenants(len(tenants), failures)
	if len(failures) == 0 {
		log.Infof("All %d tenants synced", len(tenants))
		return nil
	}
	terr := &tenantsError{tenants: len(tenants), failures: failures}
	log.Errorf("%v", terr)
	return terr
}

// tenantsOutcome is the last round of tenants of this process.
var tenantsOutcome struct {
	mu       sync.Mutex
	rounds   int
	tenants  int
	failures []TenantFailure
}

func recordTenants(tenants int, failures []TenantFailure) {
	tenantsOutcome.mu.Lock()
	defer tenantsOutcome.mu.Unlock()
	tenantsOutcome.rounds++
	tenantsOutcome.tenants = tenants
	tenantsOutcome.failures = append([]TenantFailure(nil), failures...)
	sort.SliceStable(tenantsOutcome.failures, func(i, j int) bool {
		return tenantsOutcome.failures[i].Tenant < tenantsOutcome.failures[j].Tenant
	})
}

// TenantsOutcome reports the last round of an input with tenants: how
// many tenants it read (0 when no input read tenants) and those whose sync
// did not complete.
func TenantsOutcome() (tenants int, failures []TenantFailure) {
	tenantsOutcome.mu.Lock()
	defer tenantsOutcome.mu.Unlock()
	return tenantsOutcome.tenants, append([]TenantFailure(nil), tenantsOutcome.failures...)
}

// runDone is closed once a run was delivered, or once a later run of the
// same tenant replaced it: what a tenant's lease waits for.
type runDone struct {
	ch   chan struct{}
	once sync.Once
}

func newRunDone() *runDone { return &runDone{ch: make(chan struct{})} }

func (d *runDone) close() {
	if d != nil {
		d.once.Do(func() { close(d.ch) })
	}
}

// currentRun is a tenant input's last run started, for its lease.
type currentRun struct {
	mu   sync.Mutex
	done *runDone
}

// start begins a run: the one it replaces, if never delivered, is done
// with as far as a lease goes.
func (c *currentRun) start() *runDone {
	d := newRunDone()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done.close()
	c.done = d
	return d
}

// delivered is closed once the last run started is delivered.
func (c *currentRun) delivered() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		return nil
	}
	return c.done.ch
}
