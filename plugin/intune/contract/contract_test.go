package contract

import (
	"encoding/json"
	"testing"
)

// The names users' pipelines read (@intune_device_id, the operations) do
// not change: a rename here breaks every mapping written against them.
func TestTheNamesUsersReadStayAsPublished(t *testing.T) {
	published := map[string]string{
		TenantID: "intune_tenant_id", SyncID: "intune_sync_id", SyncStartedAt: "intune_sync_started_at",
		Page: "intune_page", APIVersion: "intune_api_version", Operation: "intune_operation",
		DeviceID: "intune_device_id", Details: "intune_details", DetailsFetchedAt: "intune_details_fetched_at",
		Entity: "intune_entity", AppID: "intune_app_id", Rejection: "intune_rejection",
		OpUpsert: "upsert", OpDelete: "delete", OpSyncStarted: "sync_started", OpSyncCompleted: "sync_completed",
		EntityDetectedApp: "detected_app", EntityDeviceApp: "device_app",
	}
	if len(published) != 18 {
		t.Fatalf("%d distinct names, want 18: two constants share a value", len(published))
	}
	for got, want := range published {
		if got != want {
			t.Errorf("%q, published as %q", got, want)
		}
	}
}

// A tombstone is JSON whatever its id holds, and says it was removed.
func TestTombstonesAreJSONWithGraphsRemovedMark(t *testing.T) {
	for _, body := range [][]byte{Tombstone(`a"b\c` + "\n"), PairTombstone("d\u0000", `"`)} {
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if v["@removed"].(map[string]any)["reason"] != "deleted" {
			t.Errorf("%s has no @removed mark", body)
		}
	}
	var v struct{ ID string }
	if err := json.Unmarshal(Tombstone(`a"b\c`+"\n"), &v); err != nil || v.ID != `a"b\c`+"\n" {
		t.Errorf("id %q, %v", v.ID, err)
	}
}
