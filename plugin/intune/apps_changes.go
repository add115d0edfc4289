package intune

import (
	"context"
	"sort"

	"github.com/cespare/xxhash/v2"

	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
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

// deletionsPerItem is how many tombstones one item carries at most.
const deletionsPerItem = 1000

// tombstones collects deletions into items of deletionsPerItem and sends
// each when it is full, or at flush.
type tombstones struct {
	item    appsItem
	send    func(appsItem) error
	deleted *int
}

func newTombstones(entity any, send func(appsItem) error, deleted *int) *tombstones {
	return &tombstones{item: appsItem{entity: entity, operation: opDeleteMeta}, send: send, deleted: deleted}
}

func (t *tombstones) pair(deviceID, appID string) error {
	t.item.bodies = append(t.item.bodies, contract.PairTombstone(deviceID, appID))
	t.item.appIDs = append(t.item.appIDs, appID)
	t.item.deviceIDs = append(t.item.deviceIDs, deviceID)
	return t.sendIfFull()
}

func (t *tombstones) app(appID string) error {
	t.item.bodies = append(t.item.bodies, contract.Tombstone(appID))
	t.item.appIDs = append(t.item.appIDs, appID)
	return t.sendIfFull()
}

func (t *tombstones) sendIfFull() error {
	if len(t.item.bodies) < deletionsPerItem {
		return nil
	}
	return t.flush()
}

func (t *tombstones) flush() error {
	if len(t.item.bodies) == 0 {
		return nil
	}
	*t.deleted += len(t.item.bodies)
	err := t.send(t.item)
	t.item = appsItem{entity: t.item.entity, operation: t.item.operation}
	return err
}

// sendDeviceDeletions sends, once a device's pairs went through keep, a
// tombstone for each pair the last complete sync had on it that this sync
// did not see: the apps uninstalled from it. per_device sends them with the
// device, before its checkpoint, so that they are never left to the end of
// a sync that may stop first.
func (c *appsChanges) sendDeviceDeletions(deviceID string, send func(appsItem) error) error {
	if c.previous == nil {
		return nil
	}
	out := newTombstones(entityDeviceAppMeta, send, &c.deleted)
	err := c.previous.eachUnseenPairOf(deviceID, out.pair)
	if err == nil {
		err = out.flush()
	}
	return err
}

// sendDeletions sends, at the end of a sync that read every unit it had
// to, a tombstone for each pair, then each app, of the last complete sync
// that this sync did not see, as Graph's delta queries write removed items.
//
//   - Apps: every sync lists them all, so each one not seen has left.
//   - Pairs, per_device: the devices still listed had theirs deleted with
//     them (sendDeviceDeletions), by this sync or, for a sync resumed from
//     a checkpoint, by the one it resumes; what is left are the pairs of
//     the devices no longer listed (devices: every device listed, sorted
//     by id).
//   - Pairs, per_app and export: every pair not seen, when the sync saw
//     every unit (not resumed); a resumed sync leaves them to the next
//     complete one.
func (c *appsChanges) sendDeletions(send func(appsItem) error, strategy string, devices []deviceRef, resumed bool) error {
	if c.previous == nil {
		return nil
	}
	pairs := newTombstones(entityDeviceAppMeta, send, &c.deleted)
	var err error
	switch {
	case strategy == strategyPerDevice:
		listed := func(deviceID string) bool {
			i := sort.Search(len(devices), func(i int) bool { return devices[i].id >= deviceID })
			return i < len(devices) && devices[i].id == deviceID
		}
		err = c.previous.eachUnseenPairWhere(func(deviceID string) bool { return !listed(deviceID) }, pairs.pair)
	case !resumed:
		err = c.previous.eachUnseenPairWhere(nil, pairs.pair)
	}
	if err == nil {
		err = pairs.flush()
	}
	if err != nil {
		return err
	}
	apps := newTombstones(entityDetectedAppMeta, send, &c.deleted)
	if err := c.previous.eachUnseenApp(apps.app); err != nil {
		return err
	}
	return apps.flush()
}
