package intune

import (
	"context"
	"encoding/json"

	"github.com/cespare/xxhash/v2"
)

// appsChanges follows one sync of intune_detected_apps against the last
// complete one, as changeTracker does for devices: it hashes every app and
// pair message, drops the unchanged ones with emit: changes, writes each
// to the sync's own snapshot as it goes, and once the sync is complete
// names what left. Its memory is the last snapshot, compact (about 16
// bytes a pair), and the ids the sync's snapshot defined: never the pairs
// twice. Only the sync's goroutine uses it.
type appsChanges struct {
	previous *appsSnapshot    // nil on the first sync: everything is new
	current  *appsStateWriter // nil for a resumed sync: it is no snapshot
	onlyNew  bool
	upserts  int
	deleted  int
}

func newAppsChanges(previous *appsSnapshot, current *appsStateWriter, onlyNew bool) *appsChanges {
	return &appsChanges{previous: previous, current: current, onlyNew: onlyNew}
}

// keep records item's messages and returns those to emit: all of them
// unless emit: changes drops the unchanged.
func (c *appsChanges) keep(ctx context.Context, item appsItem) (appsItem, error) {
	filter := c.onlyNew && c.previous != nil
	kept := appsItem{entity: item.entity, operation: item.operation, run: item.run}
	for i, body := range item.bodies {
		appID, _ := item.appIDs[i].(string)
		var deviceID string
		if item.deviceIDs != nil {
			deviceID, _ = item.deviceIDs[i].(string)
		}
		hash := xxhash.Sum64(body)
		if c.current != nil {
			var err error
			if item.deviceIDs != nil {
				err = c.current.pair(ctx, deviceID, appID, hash)
			} else {
				err = c.current.app(ctx, appID, hash)
			}
			if err != nil {
				return appsItem{}, err
			}
		}
		if c.previous == nil {
			continue
		}
		var unchanged bool
		if item.deviceIDs != nil {
			unchanged = c.previous.seePair(deviceID, appID, hash)
		} else {
			unchanged = c.previous.seeApp(appID, hash)
		}
		if !filter || unchanged {
			continue
		}
		kept.bodies = append(kept.bodies, body)
		kept.appIDs = append(kept.appIDs, item.appIDs[i])
		if item.deviceIDs != nil {
			kept.deviceIDs = append(kept.deviceIDs, item.deviceIDs[i])
		}
	}
	if !filter {
		kept = item
	}
	c.upserts += len(kept.bodies)
	return kept, nil
}

// deletionsPerItem is how many tombstones one item carries.
const deletionsPerItem = 1000

// sendDeletions sends a tombstone for each pair, then each app, of the last
// complete sync that this complete sync did not see, as Graph's delta
// queries write removed items, a thousand to an item.
func (c *appsChanges) sendDeletions(send func(appsItem) error) error {
	if c.previous == nil {
		return nil
	}
	pairs := appsItem{entity: entityDeviceAppMeta, operation: opDeleteMeta}
	flush := func(item *appsItem, force bool) error {
		if len(item.bodies) == 0 || !force && len(item.bodies) < deletionsPerItem {
			return nil
		}
		c.deleted += len(item.bodies)
		err := send(*item)
		*item = appsItem{entity: item.entity, operation: item.operation}
		return err
	}
	err := c.previous.eachUnseenPair(func(deviceID, appID string) error {
		pairs.bodies = append(pairs.bodies, pairTombstone(deviceID, appID))
		pairs.appIDs = append(pairs.appIDs, appID)
		pairs.deviceIDs = append(pairs.deviceIDs, deviceID)
		return flush(&pairs, false)
	})
	if err == nil {
		err = flush(&pairs, true)
	}
	if err != nil {
		return err
	}
	apps := appsItem{entity: entityDetectedAppMeta, operation: opDeleteMeta}
	err = c.previous.eachUnseenApp(func(appID string) error {
		apps.bodies = append(apps.bodies, tombstone(appID))
		apps.appIDs = append(apps.appIDs, appID)
		return flush(&apps, false)
	})
	if err == nil {
		err = flush(&apps, true)
	}
	return err
}

// pairTombstone is the body of a pair's deletion.
func pairTombstone(deviceID, appID string) []byte {
	d, _ := json.Marshal(deviceID)
	a, _ := json.Marshal(appID)
	return []byte(`{"deviceId":` + string(d) + `,"appId":` + string(a) + `,"@removed":{"reason":"deleted"}}`)
}
