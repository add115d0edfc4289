package intune

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

// A tenant's state and checkpoint must have one writer: two processes that
// synced the same tenant at once would each save the state as their own
// generation and could delete the other's. Shards keep replicas apart, but
// while their count changes (a rollout) an old and a new replica may both
// take a tenant. So before a tenant's sync, its input takes a lease in the
// cache that holds its state: a key added only if absent (the caches' Add:
// SQL's INSERT, Redis' SETNX, the file cache's O_EXCL), renewed while the
// sync runs, deleted after it. A lease not renewed for leaseTTL is
// abandoned (its process died) and is taken over; so is one its own owner
// left (the same pod, restarted).

// leaseTTL is how long a lease holds without renewal.
var leaseTTL = 2 * time.Minute

type tenantLease struct {
	res   *service.Resources
	cache string
	key   string
	owner string
}

// leaseValue is what the lease key holds.
type leaseValue struct {
	Owner string `json:"owner"`
	Until int64  `json:"until_unix"`
}

// leaseOwner names this process among the replicas: its host (a pod's
// name, stable across restarts) and its shard.
func leaseOwner(t tenantsConfig) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s shard %d/%d", host, t.shardIndex, t.shardCount)
}

// newTenantLease is the lease of the state (or checkpoint) under key in
// cache; nil without a cache, where there is nothing to protect.
func newTenantLease(res *service.Resources, cache, key, owner string) *tenantLease {
	if cache == "" {
		return nil
	}
	return &tenantLease{res: res, cache: cache, key: key + "_lease", owner: owner}
}

// leaseHeldError is a tenant another process is syncing.
type leaseHeldError struct {
	owner string
	until time.Time
}

func (e *leaseHeldError) Error() string {
	return fmt.Sprintf("skipped: %s is syncing it (its lease runs to %s unless renewed)", e.owner, e.until.UTC().Format(time.RFC3339))
}

func (l *tenantLease) value() []byte {
	raw, _ := json.Marshal(leaseValue{Owner: l.owner, Until: time.Now().Add(leaseTTL).Unix()})
	return raw
}

// acquire takes the lease, or says who holds it.
func (l *tenantLease) acquire(ctx context.Context) error {
	for attempt := 0; attempt < 3; attempt++ {
		addErr := cacheAdd(ctx, l.res, l.cache, l.key, l.value())
		if addErr == nil {
			return nil
		}
		raw, err := cacheGet(ctx, l.res, l.cache, l.key)
		if keyMissing(err) {
			continue // released in between
		}
		if err != nil {
			return fmt.Errorf("taking the lease %q in cache %q: %w (adding it: %v)", l.key, l.cache, err, addErr)
		}
		var held leaseValue
		if json.Unmarshal(raw, &held) == nil && held.Owner != l.owner && time.Now().Unix() <= held.Until {
			return &leaseHeldError{owner: held.Owner, until: time.Unix(held.Until, 0)}
		}
		// Abandoned, unreadable, or ours from before a restart: free it,
		// and let Add decide between whoever else saw it so.
		if err := cacheDelete(ctx, l.res, l.cache, l.key); err != nil && !keyMissing(err) {
			return fmt.Errorf("taking over the lease %q in cache %q: %w", l.key, l.cache, err)
		}
	}
	return fmt.Errorf("taking the lease %q in cache %q: still contended after 3 tries", l.key, l.cache)
}

// renew extends the lease, if it is still this process'.
func (l *tenantLease) renew(ctx context.Context) error {
	raw, err := cacheGet(ctx, l.res, l.cache, l.key)
	if err == nil {
		var held leaseValue
		if json.Unmarshal(raw, &held) == nil && held.Owner != l.owner {
			return fmt.Errorf("the lease %q was taken over by %s", l.key, held.Owner)
		}
	}
	return cacheSet(ctx, l.res, l.cache, l.key, l.value())
}

// release deletes the lease, if it is still this process'.
func (l *tenantLease) release(ctx context.Context) {
	raw, err := cacheGet(ctx, l.res, l.cache, l.key)
	if err != nil {
		return
	}
	var held leaseValue
	if json.Unmarshal(raw, &held) == nil && held.Owner == l.owner {
		_ = cacheDelete(ctx, l.res, l.cache, l.key)
	}
}

// whileLeased runs sync holding l (nil: no lease), renewing it until the
// sync's run is delivered (its state saved), which may be after sync
// returns: delivered is closed then. A sync that fails, or whose run is
// never delivered before ctx ends, releases it when that is known.
func whileLeased(ctx context.Context, l *tenantLease, warn func(error), sync func() (delivered <-chan struct{}, err error)) error {
	if l == nil {
		_, err := sync()
		return err
	}
	if err := l.acquire(ctx); err != nil {
		return err
	}
	delivered, err := sync()
	if err != nil || delivered == nil {
		l.releaseNow(ctx)
		return err
	}
	go func() {
		tick := time.NewTicker(leaseTTL / 4)
		defer tick.Stop()
		for {
			select {
			case <-delivered:
				l.releaseNow(ctx)
				return
			case <-ctx.Done():
				l.releaseNow(ctx)
				return
			case <-tick.C:
				if err := l.renew(ctx); err != nil {
					warn(err)
				}
			}
		}
	}()
	return nil
}

// releaseNow releases l even when ctx has ended (a shutdown).
func (l *tenantLease) releaseNow(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	l.release(rctx)
}
