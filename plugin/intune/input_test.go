package intune

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
)

func TestSyncDeliversEveryDeviceExactlyOnceAndUnchanged(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 2345, Seed: 7})
	got, logs, failure := runSync(t, inputYAML(sim, url, ""))
	if failure != nil {
		t.Fatalf("sync failed: %v\n%s", failure, logs)
	}
	if len(got) != 2345 {
		t.Fatalf("got %d devices, want 2345", len(got))
	}
	syncID := got[0].meta[contract.SyncID]
	started, _ := got[0].meta[contract.SyncStartedAt].(string)
	if _, err := time.Parse(time.RFC3339, started); err != nil {
		t.Errorf("%s = %q is not RFC 3339", contract.SyncStartedAt, started)
	}
	bigInts := 0
	for i, m := range got {
		if want := sim.EmittedDevice(i, false, false); !bytes.Equal(m.body, want) {
			t.Fatalf("device %d differs from what Graph sent:\n got %s\nwant %s", i, m.body, want)
		}
		if m.meta[contract.SyncID] != syncID || m.meta[contract.SyncStartedAt] != started {
			t.Fatalf("device %d: sync metadata %v differs from the first device's", i, m.meta)
		}
		if page := fmt.Sprint(m.meta[contract.Page]); page != fmt.Sprint(i/1000+1) {
			t.Fatalf("device %d: %s = %s, want %d", i, contract.Page, page, i/1000+1)
		}
		if m.meta[contract.APIVersion] != "v1.0" {
			t.Fatalf("device %d: %s = %v", i, contract.APIVersion, m.meta[contract.APIVersion])
		}
		if storageAbove2To53(t, m.body) {
			bigInts++
		}
	}
	if bigInts == 0 {
		t.Error("no device carried an Int64 above 2^53: the byte-exactness check proved nothing")
	}
	if !strings.Contains(logs, "read all 2345 devices in 3 pages") {
		t.Errorf("no completion line in the logs:\n%s", logs)
	}
}

// storageAbove2To53 tells whether a device's totalStorageSpaceInBytes is an
// integer float64 cannot hold exactly.
func storageAbove2To53(t *testing.T, device []byte) bool {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(device))
	dec.UseNumber()
	var d struct {
		Storage json.Number `json:"totalStorageSpaceInBytes"`
	}
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	n, err := d.Storage.Int64()
	return err == nil && n > 1<<53 && int64(float64(n)) != n
}

func TestSyncWithSelectFilterAndPageSize(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 3000, Seed: 3})
	got, logs, failure := runSync(t, inputYAML(sim, url, "",
		"  select: [ id, deviceName, operatingSystem, totalStorageSpaceInBytes ]",
		`  filter: "operatingSystem eq 'Windows'"`,
		"  page_size: 100"))
	if failure != nil {
		t.Fatalf("sync failed: %v\n%s", failure, logs)
	}
	var want []string
	for i := 0; i < 3000; i++ {
		if sim.OperatingSystem(i) == "Windows" {
			want = append(want, sim.DeviceID(i))
		}
	}
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("got %d devices, want the %d Windows devices", len(got), len(want))
	}
	for i, m := range got {
		if !bytes.Contains(m.body, []byte(`"id":"`+want[i]+`"`)) || bytes.Contains(m.body, []byte(`"model"`)) {
			t.Fatalf("device %d = %s, want id %s with only the selected properties", i, m.body, want[i])
		}
	}
	if last := fmt.Sprint(got[len(got)-1].meta[contract.Page]); last != fmt.Sprint((len(want)+99)/100) {
		t.Errorf("last page %s, want %d pages of 100", last, (len(want)+99)/100)
	}
}

func TestSyncOfAnEmptyTenantEndsCleanly(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 0})
	got, logs, failure := runSync(t, inputYAML(sim, url, ""))
	if failure != nil || len(got) != 0 {
		t.Fatalf("got %d devices, failure %v\n%s", len(got), failure, logs)
	}
}

func TestWrongSecretFailsTheSyncWithEntrasCode(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 10})
	const wrong = "not-the-secret-value-1234"
	got, logs, failure := runSync(t, inputYAML(sim, url, wrong))
	if failure == nil || len(got) != 0 {
		t.Fatalf("got %d devices and no failure; want a failed sync", len(got))
	}
	for _, want := range []string{"AADSTS7000215", "invalid_client", "Invalid client secret provided", "check client_secret"} {
		if !strings.Contains(logs, want) || !strings.Contains(failure.Error(), want) {
			t.Errorf("%q missing from the log or the failure:\nfailure: %v\nlogs:\n%s", want, failure, logs)
		}
	}
	if strings.Contains(logs, wrong) || strings.Contains(failure.Error(), wrong) {
		t.Error("the secret reached a log line or the error")
	}
}

func TestMissingPermissionNamesIt(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 10, Forbidden: true})
	_, logs, failure := runSync(t, inputYAML(sim, url, ""))
	if failure == nil {
		t.Fatal("sync succeeded without the permission")
	}
	for _, want := range []string{"HTTP 403", "DeviceManagementManagedDevices.Read.All", "request-id ", "client-request-id "} {
		if !strings.Contains(logs, want) {
			t.Errorf("%q missing from the logs:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, `\"_version\"`) || strings.Contains(logs, `"_version"`) {
		t.Errorf("Intune's nested JSON reached the log instead of its message:\n%s", logs)
	}
}

func TestIntervalRunsAFullSyncEachTime(t *testing.T) {
	sim, url := startSim(t, graphsim.Config{Devices: 30, PageSize: 10})
	run := runIntervalSyncs(t, inputYAML(sim, url, "", "  interval: 100ms"), func(run *intervalRun, _ string) bool {
		return len(run.perSync) == 3 // two syncs are complete once the third starts
	})
	complete := 0
	for _, n := range run.perSync {
		if n == 30 {
			complete++
		}
	}
	if complete < 2 {
		t.Fatalf("devices per sync %v, want at least two full syncs of 30", run.perSync)
	}
	if SyncFailure() != nil {
		t.Errorf("an interval sync recorded a process failure: %v", SyncFailure())
	}
}

func TestConfigErrorsNameTheField(t *testing.T) {
	for conf, want := range map[string]string{
		"tenant_id: ''\nclient_id: c\nclient_secret: s":                                 "tenant_id: must not be empty",
		"tenant_id: t\nclient_id: c\nclient_secret: s\ngraph_url: http://graph.example": "graph_url: http:// is only accepted for loopback hosts",
		"tenant_id: t\nclient_id: c\nclient_secret: s\nlogin_url: ftp://127.0.0.1":      "login_url:",
		"tenant_id: t\nclient_id: c\nclient_secret: s\ninterval: soon":                  "interval must be empty or a positive duration such as 15m or 1h, got soon",
		"tenant_id: t\nclient_id: c\nclient_secret: s\nselect: [ 'id,deviceName' ]":     "select must list one property name per item, got \"id,deviceName\"",
		"tenant_id: t\nclient_id: c\nclient_secret: s\napi_version: v2":                 "api_version must be one of v1.0, beta, got v2",
	} {
		if err := inputConfigError(t, conf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", conf, err, want)
		}
	}
}

func TestLintRules(t *testing.T) {
	for conf, want := range map[string]string{
		"api_version: v1.1":                   "api_version must be one of v1.0, beta, got v1.1",
		"page_size: -1":                       "page_size must be between 0 and 10000",
		"interval: banana":                    "interval must be empty or a positive duration",
		"cloud: mars":                         "cloud must be one of global, usgov, usgov_dod, china, got mars",
		"backoff:\n    initial_interval: -1s": "backoff.initial_interval must be a duration that is not negative",
		"backoff:\n    max_elapsed_time: -5m": "backoff.max_elapsed_time must be a duration that is not negative",
		"backoff:\n    max_interval: later":   "backoff.max_interval must be a duration",
		"request_timeout: -1s":                "request_timeout must be a positive duration",
		"request_timeout: 0s":                 "request_timeout must be a positive duration",
		"max_page_bytes: 0":                   "max_page_bytes must be a positive number of bytes",
	} {
		b := service.NewStreamBuilder()
		err := b.AddInputYAML("intune_managed_devices:\n  tenant_id: t\n  client_id: c\n  client_secret: s\n  " + conf)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want lint %q", conf, err, want)
		}
	}
	b := service.NewStreamBuilder()
	if err := b.AddInputYAML("intune_managed_devices:\n  tenant_id: t\n  client_id: c\n  client_secret: s\n  api_version: beta\n  interval: 1h\n  cloud: usgov\n  backoff:\n    initial_interval: 1s\n    max_elapsed_time: 0s\n  request_timeout: 30s\n  max_page_bytes: 1000000"); err != nil {
		t.Errorf("a valid config fails lint: %v", err)
	}
}
