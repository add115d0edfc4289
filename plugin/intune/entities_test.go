package intune

import (
	"net/url"
	"testing"
)

// Where each entity's state and checkpoint are kept stays as released: a
// prefix changed would orphan every user's snapshot, and the next sync
// would emit every item again and no deletion.
func TestEntitiesKeepTheirStoreKeysAndURLs(t *testing.T) {
	for _, c := range []struct {
		e                       entity
		state, checkpoint, path string
	}{
		{managedDevicesEntity, "intune_managed_devices_state_", "intune_managed_devices_", "/deviceManagement/managedDevices"},
		{detectedAppsEntity, "intune_detected_apps_state_", "intune_detected_apps_", "/deviceManagement/detectedApps"},
	} {
		if c.e.stateKeyPrefix != c.state || c.e.checkpointKeyPrefix != c.checkpoint || c.e.path != c.path {
			t.Errorf("%s: state %q, checkpoint %q", c.e.path, c.e.stateKeyPrefix, c.e.checkpointKeyPrefix)
		}
		keys := c.e.storeKeys("tenant-a", "https://graph/v1.0"+c.path)
		if keys.state != storeKey(c.state, "tenant-a", "https://graph/v1.0"+c.path) || keys.checkpoint != storeKey(c.checkpoint, "tenant-a", "https://graph/v1.0"+c.path) || keys.state == keys.checkpoint {
			t.Errorf("%s: keys %+v", c.path, keys)
		}
	}
	base, _ := url.Parse("https://graph.microsoft.com/")
	if got := detectedAppsURL(base); got != "https://graph.microsoft.com/v1.0/deviceManagement/detectedApps" {
		t.Errorf("detected apps listed from %s", got)
	}
}
