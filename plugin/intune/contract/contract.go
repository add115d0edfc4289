// Package contract is what every message of intune-benthos' inputs carries:
// the metadata keys, the operations and the bodies of deletions. The
// processors and outputs that read messages depend on this package, not on
// an input, and a user's pipeline can rely on every name here: changing one
// breaks their mappings, so names are added, never changed.
package contract

import "encoding/json"

// Metadata keys on every message of the inputs.
const (
	// TenantID is the tenant the item came from.
	TenantID = "intune_tenant_id"
	// SyncID identifies one full listing of a tenant's items; every message
	// of that listing carries it.
	SyncID = "intune_sync_id"
	// SyncStartedAt is when that listing started, RFC 3339 (UTC).
	SyncStartedAt = "intune_sync_started_at"
	// Page is the page of the listing the item was on, from 1.
	Page = "intune_page"
	// APIVersion is Graph's version the item was read from (v1.0, beta).
	APIVersion = "intune_api_version"
	// Operation is what the message asks of its destination: Op*.
	Operation = "intune_operation"
)

// Metadata keys of intune_managed_devices.
const (
	// DeviceID is the managed device's id.
	DeviceID = "intune_device_id"
	// Details is what became of the device's details in this sync:
	// fetched, kept, failed or gone (with details enabled).
	Details = "intune_details"
	// DetailsFetchedAt is when the device's details were fetched, RFC 3339
	// (UTC); absent when the device has none.
	DetailsFetchedAt = "intune_details_fetched_at"
)

// Metadata keys of intune_detected_apps.
const (
	// Entity says which of the input's entities the message holds:
	// EntityDetectedApp or EntityDeviceApp.
	Entity = "intune_entity"
	// AppID is the detected app's id.
	AppID = "intune_app_id"
)

// The entities of intune_detected_apps, in the Entity metadata field.
const (
	EntityDetectedApp = "detected_app"
	EntityDeviceApp   = "device_app"
)

// Rejection is the destination's error, on a message that intune_dead_letter
// sent to the dead letter.
const Rejection = "intune_rejection"

// Operations, in the Operation metadata field.
const (
	// OpUpsert is an item as Graph sent it: insert it, or update it.
	OpUpsert = "upsert"
	// OpDelete is an item the last complete sync had and this one did not
	// list: its body is a tombstone (Tombstone, PairTombstone).
	OpDelete = "delete"
	// OpSyncStarted and OpSyncCompleted mark a sync's bounds, on the
	// messages of inputs configured to send them.
	OpSyncStarted   = "sync_started"
	OpSyncCompleted = "sync_completed"
)

// Tombstone is the body of an item's deletion: its id, and Graph's own
// mark of a removed item (as in a delta query).
func Tombstone(id string) []byte {
	idJSON, _ := json.Marshal(id)
	return []byte(`{"id":` + string(idJSON) + `,"@removed":{"reason":"deleted"}}`)
}

// PairTombstone is the body of a (device, app) pair's deletion.
func PairTombstone(deviceID, appID string) []byte {
	d, _ := json.Marshal(deviceID)
	a, _ := json.Marshal(appID)
	return []byte(`{"deviceId":` + string(d) + `,"appId":` + string(a) + `,"@removed":{"reason":"deleted"}}`)
}
