package intune

import (
	"net/url"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
)

// An entity is one Intune collection an input syncs, declared once: where
// Graph lists it, what identifies an item, what permission reading it takes
// and where its state is kept. The inputs take these from the declaration
// instead of writing them in their own files, the first step to one sync
// engine that syncs any declared entity (issue 22; ARCHITECTURE.md,
// "Entities as declarations").
type entity struct {
	// path is the collection, relative to {graph}/{api_version}.
	path string
	// version is the API version the collection is always read from; ""
	// when the input's api_version chooses.
	version string
	// permission is the least-privileged application permission that reads
	// it, named in the error of a 403.
	permission string
	// stateKeyPrefix and checkpointKeyPrefix begin the cache keys of its
	// change state and of its checkpoint: changing one orphans what users'
	// caches hold.
	stateKeyPrefix, checkpointKeyPrefix string
}

// managedDevicesEntity is what intune_managed_devices syncs.
var managedDevicesEntity = entity{
	path:                graph.ManagedDevicesPath,
	permission:          "DeviceManagementManagedDevices.Read.All",
	stateKeyPrefix:      "intune_managed_devices_state_",
	checkpointKeyPrefix: "intune_managed_devices_",
}

// detectedAppsEntity is what intune_detected_apps syncs: the apps listed as
// a collection; their devices by a strategy of the input's (per app, per
// device, or an export job).
var detectedAppsEntity = entity{
	path:                graph.DetectedAppsPath,
	version:             "v1.0",
	permission:          "DeviceManagementManagedDevices.Read.All",
	stateKeyPrefix:      "intune_detected_apps_state_",
	checkpointKeyPrefix: "intune_detected_apps_",
}

// detectedAppsURL is the first page of the tenant's detected apps.
func detectedAppsURL(base *url.URL) string {
	return graph.CollectionURL(base, detectedAppsEntity.path, graph.Query{APIVersion: detectedAppsEntity.version})
}

// storeKeys are the cache keys where one query of an entity keeps its
// change state and its checkpoint (see storeKey).
type storeKeys struct{ state, checkpoint string }

func (e entity) storeKeys(scope, firstURL string) storeKeys {
	return storeKeys{state: storeKey(e.stateKeyPrefix, scope, firstURL), checkpoint: storeKey(e.checkpointKeyPrefix, scope, firstURL)}
}
