package graph

import (
	"net/url"
	"strconv"
	"strings"
)

// Intune's discovered apps (software inventory). v1.0 lists the tenant's
// apps and, one app at a time, the devices it was found on; the apps of one
// device are listed by beta only. $expand=managedDevices on the app list
// returns nothing, so a client joins apps and devices by one of the two
// relationships (Microsoft Graph docs: detectedApp resource, "List
// managedDevices" of a detectedApp, beta "List detectedApps" of a
// managedDevice).
const (
	// DetectedAppsPath is the detected apps' collection, relative to
	// {graph}/{api_version}.
	DetectedAppsPath = "/deviceManagement/detectedApps"
	// RelationshipPageSize is the page size this client asks of the two
	// relationships ($top), so that a client can count its requests before
	// it sends them.
	RelationshipPageSize = 1000
)

// AppDevicesURL lists the devices an app was found on, with only what a
// (device, app) pair needs (v1.0).
func AppDevicesURL(base *url.URL, appID string) string {
	return strings.TrimRight(base.String(), "/") + "/v1.0" + DetectedAppsPath + "/" + url.PathEscape(appID) +
		"/managedDevices?$select=id,deviceName&$top=" + strconv.Itoa(RelationshipPageSize)
}

// DeviceAppsURL lists the apps found on one device (beta only).
func DeviceAppsURL(base *url.URL, deviceID string) string {
	return strings.TrimRight(base.String(), "/") + "/beta" + ManagedDevicesPath + "/" + url.PathEscape(deviceID) +
		"/detectedApps?$top=" + strconv.Itoa(RelationshipPageSize)
}

// DeviceNamesURL lists every device's id and name (v1.0), for the
// per-device strategy's work list.
func DeviceNamesURL(base *url.URL) string {
	return ManagedDevicesURL(base, Query{APIVersion: "v1.0", Select: []string{"id", "deviceName"}})
}
