package intune

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// warnings collects what a processor's report logs at WARN.
type warnings struct {
	mu    sync.Mutex
	lines []string
}

func (w *warnings) warnf(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, fmt.Sprintf(format, args...))
}

func (w *warnings) all() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.lines...)
}

func newFlatten(t *testing.T, conf string) (*flattenProcessor, *warnings) {
	t.Helper()
	parsed, err := flattenSpec().ParseYAML(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	nested, _ := parsed.FieldString(flFieldNested)
	raw, _ := parsed.FieldString(flFieldRawColumn)
	p := newFlattenProcessor(nested, raw, service.MockResources())
	w := &warnings{}
	p.report.warnf = w.warnf
	return p, w
}

// deviceMessage is a device as the input emits it.
func deviceMessage(body []byte, syncID, op string) *service.Message {
	msg := service.NewMessage(body)
	msg.MetaSetMut(contract.TenantID, "t-1")
	msg.MetaSetMut(contract.SyncID, syncID)
	msg.MetaSetMut(contract.SyncStartedAt, "2026-11-30T18:00:00Z")
	msg.MetaSetMut(contract.Operation, op)
	var d struct{ ID string }
	_ = json.Unmarshal(body, &d)
	msg.MetaSetMut(contract.DeviceID, d.ID)
	return msg
}

func flattenOne(t *testing.T, p *flattenProcessor, msg *service.Message) map[string]json.RawMessage {
	t.Helper()
	out, err := p.Process(context.Background(), msg)
	if err != nil || len(out) != 1 {
		t.Fatalf("Process: %v, %d messages", err, len(out))
	}
	b, _ := out[0].AsBytes()
	if !json.Valid(b) {
		t.Fatalf("row is not JSON: %s", b)
	}
	var row map[string]json.RawMessage
	if err := json.Unmarshal(b, &row); err != nil {
		t.Fatal(err)
	}
	return row
}

func TestFlattenWritesEveryPropertyAsItsColumnAndTheWholeDevice(t *testing.T) {
	sim := graphsim.New(graphsim.Config{Devices: 300, Seed: 4})
	for _, nested := range []string{"text", "json"} {
		p, w := newFlatten(t, "nested: "+nested)
		nevers, bigInts := 0, 0
		for i := 0; i < 300; i++ {
			device := sim.Device(i)
			row := flattenOne(t, p, deviceMessage(device, "s1", contract.OpUpsert))
			var props map[string]json.RawMessage
			if err := json.Unmarshal(device, &props); err != nil {
				t.Fatal(err)
			}
			if len(row) != len(props)+5 {
				t.Fatalf("%s: row has %d columns, want %d properties + tenant_id, _raw, _sync_id, _synced_at, _details_fetched_at", nested, len(row), len(props))
			}
			if string(row["tenant_id"]) != `"t-1"` {
				t.Fatalf("%s: tenant_id is %s, want the message's intune_tenant_id", nested, row["tenant_id"])
			}
			if string(row["_details_fetched_at"]) != "null" {
				t.Fatalf("%s: _details_fetched_at is %s for a device without details", nested, row["_details_fetched_at"])
			}
			for prop, value := range props {
				col, _ := schema.ByProperty(prop)
				got := row[col.Name]
				switch {
				case col.Kind == schema.KindDateTime && schema.IsNever(value):
					nevers++
					if string(got) != "null" {
						t.Fatalf("device %d: %s = %s, want null for Graph's never", i, col.Name, got)
					}
				case nested == "text" && (value[0] == '{' || value[0] == '['):
					var s string
					if err := json.Unmarshal(got, &s); err != nil || s != string(value) {
						t.Fatalf("device %d: %s = %s, want a string of %s", i, col.Name, got, value)
					}
				default:
					// Copied byte for byte: Int64 above 2^53 and escapes intact.
					if !bytes.Equal(got, value) {
						t.Fatalf("device %d: %s = %s, want %s", i, col.Name, got, value)
					}
					if col.Kind == schema.KindInt64 && len(value) >= 16 {
						bigInts++
					}
				}
			}
			raw := row[schema.RawColumn]
			if nested == "text" {
				var s string
				if err := json.Unmarshal(raw, &s); err != nil || s != string(device) {
					t.Fatalf("device %d: _raw is not the device as a string: %.80s", i, raw)
				}
			} else if !bytes.Equal(raw, device) {
				t.Fatalf("device %d: _raw is not the device byte for byte", i)
			}
			if string(row["_sync_id"]) != `"s1"` || string(row["_synced_at"]) != `"2026-11-30T18:00:00Z"` {
				t.Fatalf("device %d: sync columns %s %s", i, row["_sync_id"], row["_synced_at"])
			}
		}
		if nevers < 50 || bigInts < 20 {
			t.Fatalf("only %d never-dates and %d large integers seen", nevers, bigInts)
		}
		if got := w.all(); len(got) != 0 {
			t.Fatalf("v1.0 devices logged %q", got)
		}
	}
}

func TestFlattenNamesNewPropertiesOncePerSyncAndKeepsThem(t *testing.T) {
	p, w := newFlatten(t, "nested: text")
	device := func(extra string) []byte {
		return []byte(`{"id":"d1","deviceName":"PC","@odata.type":"#microsoft.graph.managedDevice"` + extra + `}`)
	}
	one := `,"configurationManagerClientHealthState":{"tpmVersion":"2.0"},"chassisType":"laptop","lastLogonDateTime":"2026-11-20T08:00:00.1234567Z","nullSoFar":null`
	for _, sync := range []string{"s1", "s1", "s1", "s2", "s2"} {
		{
			row := flattenOne(t, p, deviceMessage(device(one), sync, contract.OpUpsert))
			if string(row["configuration_manager_client_health_state"]) != `"{\"tpmVersion\":\"2.0\"}"` || string(row["chassis_type"]) != `"laptop"` ||
				string(row["last_logon_date_time"]) != `"2026-11-20T08:00:00.123456Z"` || string(row["null_so_far"]) != "null" {
				t.Fatalf("row %v", row)
			}
			if _, ok := row["@odata.type"]; ok {
				t.Fatal("an annotation became a column")
			}
		}
	}
	lines := w.all()
	if len(lines) != 2 {
		t.Fatalf("want one WARN per sync, got %q", lines)
	}
	for _, l := range lines {
		for _, want := range []string{"configurationManagerClientHealthState (json)", "chassisType (string)", "lastLogonDateTime (datetime)", "nullSoFar (null so far)", "kept whole in _raw", "snake_case"} {
			if !strings.Contains(l, want) {
				t.Errorf("%q does not name %s", l, want)
			}
		}
		if strings.Contains(l, "odata") {
			t.Errorf("%q names an annotation", l)
		}
	}
	// A property first seen later in a sync is named then, once.
	flattenOne(t, p, deviceMessage(device(one+`,"later":1`), "s2", contract.OpUpsert))
	flattenOne(t, p, deviceMessage(device(one+`,"later":2`), "s2", contract.OpUpsert))
	if lines = w.all(); len(lines) != 3 || !strings.Contains(lines[2], "later (int64)") || strings.Contains(lines[2], "chassisType") {
		t.Fatalf("lines %q", lines)
	}
}

func TestFlattenNullsValuesTheirColumnCannotHoldAndSaysSoWithoutTheValue(t *testing.T) {
	p, w := newFlatten(t, "nested: json")
	body := []byte(`{"id":"d9","isEncrypted":"secret-ish","totalStorageSpaceInBytes":1.5,"enrolledDateTime":"yesterday","deviceName":true,"deviceActionResults":"none"}`)
	row := flattenOne(t, p, deviceMessage(body, "s1", contract.OpUpsert))
	for col, want := range map[string]string{"is_encrypted": "null", "total_storage_space_in_bytes": "null", "enrolled_date_time": "null", "device_name": "true", "device_action_results": `"none"`} {
		if string(row[col]) != want {
			t.Errorf("%s = %s, want %s", col, row[col], want)
		}
	}
	if !bytes.Equal(row[schema.RawColumn], body) {
		t.Error("_raw lost the values")
	}
	lines := strings.Join(w.all(), "\n")
	for _, want := range []string{"isEncrypted as a string", "totalStorageSpaceInBytes as a number", "enrolledDateTime as a string", "device d9"} {
		if !strings.Contains(lines, want) {
			t.Errorf("no %q in %q", want, lines)
		}
	}
	if strings.Contains(lines, "secret-ish") || strings.Contains(lines, "yesterday") {
		t.Errorf("a value reached the log: %q", lines)
	}
}

func TestFlattenTurnsADeletionIntoADeletedRow(t *testing.T) {
	p, _ := newFlatten(t, "{}")
	msg := deviceMessage([]byte(`{"id":"gone-1","@removed":{"reason":"deleted"}}`), "s3", contract.OpDelete)
	row := flattenOne(t, p, msg)
	if string(row["id"]) != `"gone-1"` || string(row["_deleted"]) != "true" || string(row["_sync_id"]) != `"s3"` || string(row["tenant_id"]) != `"t-1"` || len(row) != 5 {
		t.Fatalf("row %v", row)
	}
}

// A property whose snake_case name is another property's column is not
// written over it: it stays in _raw only, and the log says why.
func TestFlattenKeepsAPropertyWhoseColumnIsTakenOutOfTheRow(t *testing.T) {
	p, w := newFlatten(t, "nested: text")
	row := flattenOne(t, p, deviceMessage([]byte(`{"id":"d1","azureADDeviceId":"real","azureAdDeviceId":"impostor"}`), "s1", contract.OpUpsert))
	if string(row["azure_ad_device_id"]) != `"real"` {
		t.Fatalf("azure_ad_device_id = %s", row["azure_ad_device_id"])
	}
	if lines := w.all(); len(lines) != 1 || !strings.Contains(lines[0], "azureAdDeviceId (string; not in the row: its column azure_ad_device_id is azureADDeviceId's)") {
		t.Fatalf("lines %q", lines)
	}
}

func TestFlattenWritesWhenTheDetailsWereFetched(t *testing.T) {
	p, _ := newFlatten(t, "nested: json")
	msg := deviceMessage([]byte(`{"id":"d1","physicalMemoryInBytes":17179869184}`), "s1", contract.OpUpsert)
	msg.MetaSetMut(contract.DetailsFetchedAt, "2026-12-01T10:00:00Z")
	row := flattenOne(t, p, msg)
	if string(row["_details_fetched_at"]) != `"2026-12-01T10:00:00Z"` || string(row["physical_memory_in_bytes"]) != "17179869184" {
		t.Errorf("row %v", row)
	}
}
