package intune

import (
	"encoding/json"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// appsChanges follows one sync of intune_detected_apps against the last
// complete one, as changeTracker does for devices: it remembers every app
// and pair seen (their key and a hash of the message), drops the unchanged
// ones with emit: changes, and once the sync is complete names what left.
// Only the sync's goroutine uses it.
type appsChanges struct {
	previous *snapshot // nil on the first sync: everything is new
	current  *snapshot
	onlyNew  bool
	upserts  int
	deleted  int
}

func newAppsChanges(previous *snapshot, onlyNew bool) *appsChanges {
	capacity := 0
	if previous != nil {
		capacity = previous.len()
	}
	return &appsChanges{previous: previous, current: newSnapshot(capacity), onlyNew: onlyNew}
}

// Snapshot keys: an app by its id, a pair by its device and app ids. A
// space is in neither kind of id.
const (
	appKeyPrefix  = "app "
	pairKeyPrefix = "pair "
)

func appKey(appID string) string            { return appKeyPrefix + appID }
func pairKey(deviceID, appID string) string { return pairKeyPrefix + deviceID + " " + appID }
func splitPairKey(key string) (string, string) {
	d, a, _ := strings.Cut(strings.TrimPrefix(key, pairKeyPrefix), " ")
	return d, a
}

// keep records item's messages and returns those to emit: all of them
// unless emit: changes drops the unchanged.
func (c *appsChanges) keep(item appsItem) appsItem {
	filter := c.onlyNew && c.previous != nil
	kept := appsItem{entity: item.entity, operation: item.operation, run: item.run}
	for i, body := range item.bodies {
		appID, _ := item.appIDs[i].(string)
		key := appKey(appID)
		if item.deviceIDs != nil {
			deviceID, _ := item.deviceIDs[i].(string)
			key = pairKey(deviceID, appID)
		}
		hash := xxhash.Sum64(body)
		c.current.put(key, hash)
		if !filter {
			continue
		}
		if old, ok := c.previous.get(key); ok && old == hash {
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
	return kept
}

// deletions are the apps and the pairs of the last complete sync that this
// complete sync did not see, as Graph's delta queries write removed items.
func (c *appsChanges) deletions() (apps, pairs appsItem) {
	apps = appsItem{entity: entityDetectedAppMeta, operation: opDeleteMeta}
	pairs = appsItem{entity: entityDeviceAppMeta, operation: opDeleteMeta}
	if c.previous == nil {
		return apps, pairs
	}
	for _, key := range c.previous.missingFrom(c.current) {
		if strings.HasPrefix(key, pairKeyPrefix) {
			deviceID, appID := splitPairKey(key)
			pairs.bodies = append(pairs.bodies, pairTombstone(deviceID, appID))
			pairs.appIDs = append(pairs.appIDs, appID)
			pairs.deviceIDs = append(pairs.deviceIDs, deviceID)
			continue
		}
		appID := strings.TrimPrefix(key, appKeyPrefix)
		apps.bodies = append(apps.bodies, tombstone(appID))
		apps.appIDs = append(apps.appIDs, appID)
	}
	c.deleted = len(apps.bodies) + len(pairs.bodies)
	return apps, pairs
}

// pairTombstone is the body of a pair's deletion.
func pairTombstone(deviceID, appID string) []byte {
	d, _ := json.Marshal(deviceID)
	a, _ := json.Marshal(appID)
	return []byte(`{"deviceId":` + string(d) + `,"appId":` + string(a) + `,"@removed":{"reason":"deleted"}}`)
}
