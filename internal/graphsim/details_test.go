package graphsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The list-default properties of each version, in resource order.
const (
	v1ListDefaults   = "activationLockBypassCode,remoteAssistanceSessionUrl,iccid,udid,notes,ethernetMacAddress,physicalMemoryInBytes,enrollmentProfileName"
	betaListDefaults = v1ListDefaults + ",hardwareInformation,roleScopeTagIds,bootstrapTokenEscrowed,chromeOSDeviceInfo,windowsActiveMalwareCount,windowsRemediatedMalwareCount"
)

// listDefaultPlaceholders are the values lists write for them.
var listDefaultPlaceholders = map[string]string{
	"activationLockBypassCode": "null", "iccid": "null", "udid": "null", "notes": "null",
	"ethernetMacAddress": "null", "physicalMemoryInBytes": "0", "remoteAssistanceSessionUrl": "null", "enrollmentProfileName": "null",
	"hardwareInformation": hardwarePlaceholder, "roleScopeTagIds": "[]", "bootstrapTokenEscrowed": "false", "chromeOSDeviceInfo": "[]",
	"windowsActiveMalwareCount": "0", "windowsRemediatedMalwareCount": "0",
}

// rawFields decodes a JSON object into its raw values by key.
func rawFields(t *testing.T, raw []byte) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("not an object: %v: %.300s", err, raw)
	}
	return m
}

func TestTheListDefaultSetIsTheDocumentedOne(t *testing.T) {
	for _, c := range []struct {
		props []property
		want  string
	}{{v1Properties, v1ListDefaults}, {betaProperties, betaListDefaults}} {
		var names []string
		for _, k := range listDefaults(c.props) {
			names = append(names, c.props[k].name)
		}
		if got := strings.Join(names, ","); got != c.want {
			t.Errorf("list-default properties %s, want %s", got, c.want)
		}
	}
}

func TestListsWriteListDefaultPropertiesAtTheirDefaults(t *testing.T) {
	e := newEnv(t, Config{Devices: 300, Seed: 5})
	for _, beta := range []bool{false, true} {
		version, names := "v1.0", v1ListDefaults
		if beta {
			version, names = "beta", betaListDefaults
		}
		real := 0
		for _, body := range walk(t, e, "/"+version+"/deviceManagement/managedDevices?$top=120") {
			for _, raw := range decodePage(t, body).Value {
				d := rawFields(t, raw)
				var id string
				_ = json.Unmarshal(d["id"], &id)
				i, _ := e.sim.indexFromID(id)
				details := rawFields(t, e.sim.DeviceDetails(i, beta))
				for _, name := range strings.Split(names, ",") {
					if got := string(d[name]); got != listDefaultPlaceholders[name] {
						t.Fatalf("%s device %d: %s = %s, want the default %s", version, i, name, got, listDefaultPlaceholders[name])
					}
					if string(details[name]) != listDefaultPlaceholders[name] {
						real++
					}
				}
			}
		}
		if real < 300 {
			t.Errorf("%s: only %d real values differ from the defaults: the test proves little", version, real)
		}
	}
}

func TestHardwarePlaceholderHasTheRealKeysAtTheirTypesDefaults(t *testing.T) {
	s := New(Config{Devices: 50, Seed: 2})
	want := strings.Join(topLevelKeys(t, []byte(hardwarePlaceholder)), ",")
	for i := 0; i < 50; i++ {
		hw := rawFields(t, s.DeviceDetails(i, true))["hardwareInformation"]
		if got := strings.Join(topLevelKeys(t, hw), ","); got != want {
			t.Fatalf("device %d: hardwareInformation keys\n%s\nwant\n%s", i, got, want)
		}
	}
	enums := map[string]bool{
		"deviceGuardVirtualizationBasedSecurityHardwareRequirementState": true, "deviceGuardVirtualizationBasedSecurityState": true,
		"deviceGuardLocalSystemAuthorityCredentialGuardState": true, "deviceLicensingStatus": true,
	}
	for k, v := range rawFields(t, []byte(hardwarePlaceholder)) {
		switch s := string(v); {
		case enums[k]:
			if !strings.HasPrefix(s, `"`) {
				t.Errorf("%s: %s is no enum member", k, s)
			}
		case s != "null" && s != "0" && s != "false" && s != "[]":
			t.Errorf("%s: %s is not a default", k, s)
		}
	}
}

var (
	ethernetRE = regexp.MustCompile(`^[0-9A-F]{12}$`)
	lockCodeRE = regexp.MustCompile(`^[` + lockAlphabet + `]{5}(-[` + lockAlphabet + `]{5}){5}$`)
	iccidRE    = regexp.MustCompile(`^89[0-9]{17,18}$`)
	udidRE     = map[string]*regexp.Regexp{
		"iOS":   regexp.MustCompile(`^([0-9a-f]{40}|0000[0-9A-F]{4}-[0-9A-F]{16})$`),
		"macOS": regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`),
	}
)

// luhnValid checks a number's Luhn check digit.
func luhnValid(digits string) bool {
	return luhnDigit([]byte(digits[:len(digits)-1])) == digits[len(digits)-1]
}

// deviceDetails is what the realism test reads of the real values.
type deviceDetails struct {
	LockCode *string     `json:"activationLockBypassCode"`
	ICCID    *string     `json:"iccid"`
	UDID     *string     `json:"udid"`
	Notes    *string     `json:"notes"`
	Ethernet *string     `json:"ethernetMacAddress"`
	Memory   json.Number `json:"physicalMemoryInBytes"`
	Hardware struct {
		TotalStorageSpace json.Number  `json:"totalStorageSpace"`
		FreeStorageSpace  json.Number  `json:"freeStorageSpace"`
		WifiMac           *string      `json:"wifiMac"`
		FQDN              *string      `json:"deviceFullQualifiedDomainName"`
		OSBuild           *string      `json:"osBuildNumber"`
		Edition           *string      `json:"operatingSystemEdition"`
		TPM               *string      `json:"tpmSpecificationVersion"`
		IPv4              *string      `json:"ipAddressV4"`
		Wired             []string     `json:"wiredIPv4Addresses"`
		Battery           *json.Number `json:"batteryLevelPercentage"`
		EID               *string      `json:"esimIdentifier"`
	} `json:"hardwareInformation"`
	RoleScopeTagIDs []string `json:"roleScopeTagIds"`
}

func decodeDetails(t *testing.T, raw []byte) deviceDetails {
	t.Helper()
	var d deviceDetails
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("details: %v: %s", err, raw)
	}
	return d
}

func TestDetailsAreRealisticAndExact(t *testing.T) {
	const n = 5000
	s := New(Config{Devices: n, Seed: 3})
	var seen struct{ notes, escapes, nonASCII, lock, iccid, udid, ethernet, huge, wired, battery, fraction int }
	for i := 0; i < n; i++ {
		raw := s.DeviceDetails(i, true)
		if !json.Valid(raw) {
			t.Fatalf("device %d: not JSON: %s", i, raw)
		}
		if keys := strings.Join(topLevelKeys(t, raw), ","); keys != betaListDefaults {
			t.Fatalf("device %d: keys %s", i, keys)
		}
		if v1 := s.DeviceDetails(i, false); !bytes.HasPrefix(raw, v1[:len(v1)-1]) {
			t.Fatalf("device %d: the beta details do not extend v1.0's:\n%s\n%s", i, v1, raw)
		}
		var d device
		s.generate(i, &d)
		x := decodeDetails(t, raw)
		os, chassis := osNames[d.os], d.hw.chassis

		mem, err := strconv.ParseInt(string(x.Memory), 10, 64)
		if err != nil {
			t.Fatalf("device %d: physicalMemoryInBytes %s", i, x.Memory)
		}
		if i%10 == 7 {
			if mem <= 1<<53 || mem%2 == 0 || int64(float64(mem)) == mem {
				t.Fatalf("device %d: physicalMemoryInBytes %d survives a float64", i, mem)
			}
			seen.huge++
		} else {
			gib := mem >> 30
			lo, hi := map[string][2]int64{"phone": {3, 12}, "tablet": {4, 16}, "laptop": {8, 64}, "desktop": {4, 128}, "unknown": {4, 128}}[chassis][0],
				map[string][2]int64{"phone": {3, 12}, "tablet": {4, 16}, "laptop": {8, 64}, "desktop": {4, 128}, "unknown": {4, 128}}[chassis][1]
			if mem%(1<<30) != 0 || gib < lo || gib > hi {
				t.Fatalf("device %d (%s): physicalMemoryInBytes %d", i, chassis, mem)
			}
		}
		if total, _ := strconv.ParseInt(string(x.Hardware.TotalStorageSpace), 10, 64); total != d.total {
			t.Fatalf("device %d: totalStorageSpace %s, want %d", i, x.Hardware.TotalStorageSpace, d.total)
		}
		if x.Ethernet != nil {
			seen.ethernet++
			if !ethernetRE.MatchString(*x.Ethernet) || (os != "Windows" && os != "macOS") || chassis == "tablet" {
				t.Fatalf("device %d (%s %s): ethernetMacAddress %q", i, os, chassis, *x.Ethernet)
			}
			if len(x.Hardware.Wired) == 0 || x.Hardware.IPv4 == nil || x.Hardware.Wired[0] != *x.Hardware.IPv4 {
				t.Fatalf("device %d: wired NIC without its address: %s", i, raw)
			}
			seen.wired++
		} else if len(x.Hardware.Wired) != 0 {
			t.Fatalf("device %d: wired addresses without a wired NIC", i)
		}
		if x.Notes != nil {
			seen.notes++
			if strings.ContainsAny(*x.Notes, "\"\\\n\t") {
				seen.escapes++
			}
			if strings.ContainsFunc(*x.Notes, func(r rune) bool { return r > 127 }) {
				seen.nonASCII++
			}
		}
		if x.UDID != nil {
			seen.udid++
			if re := udidRE[os]; re == nil || !re.MatchString(*x.UDID) {
				t.Fatalf("device %d (%s): udid %q", i, os, *x.UDID)
			}
		} else if os == "iOS" || os == "macOS" {
			t.Fatalf("device %d (%s): no udid", i, os)
		}
		if x.ICCID != nil {
			seen.iccid++
			if !iccidRE.MatchString(*x.ICCID) || !luhnValid(*x.ICCID) || (chassis != "phone" && chassis != "tablet") {
				t.Fatalf("device %d (%s): iccid %q", i, chassis, *x.ICCID)
			}
		}
		if x.LockCode != nil {
			seen.lock++
			if !lockCodeRE.MatchString(*x.LockCode) || os != "iOS" || !d.supervised {
				t.Fatalf("device %d (%s, supervised %v): activationLockBypassCode %q", i, os, d.supervised, *x.LockCode)
			}
		}
		if eid := x.Hardware.EID; eid != nil && (len(*eid) != 32 || x.ICCID == nil) {
			t.Fatalf("device %d: esimIdentifier %q", i, *eid)
		}
		if (x.Hardware.Battery != nil) != (d.battery > 0) {
			t.Fatalf("device %d (%s): batteryLevelPercentage %v", i, chassis, x.Hardware.Battery)
		}
		if b := x.Hardware.Battery; b != nil {
			seen.battery++
			if v, err := b.Float64(); err != nil || v < 5 || v > 100 {
				t.Fatalf("device %d: batteryLevelPercentage %s", i, *b)
			}
			if strings.Contains(string(*b), ".") {
				seen.fraction++
			}
		}
		wantBuild := osBuilds[d.osVersion]
		if os == "Windows" {
			wantBuild = strings.TrimPrefix(d.osVersion, "10.0.")
			if x.Hardware.FQDN == nil || !strings.HasPrefix(*x.Hardware.FQDN, d.name) || x.Hardware.Edition == nil || x.Hardware.TPM == nil {
				t.Fatalf("device %d: Windows without FQDN, edition or TPM: %s", i, raw)
			}
		} else if x.Hardware.FQDN != nil || x.Hardware.TPM != nil {
			t.Fatalf("device %d (%s): %s", i, os, raw)
		}
		if x.Hardware.OSBuild == nil || *x.Hardware.OSBuild != wantBuild || wantBuild == "" {
			t.Fatalf("device %d (%s %s): osBuildNumber %v", i, os, d.osVersion, x.Hardware.OSBuild)
		}
		if x.Hardware.WifiMac == nil && d.wifiMAC != "" || x.Hardware.WifiMac != nil && *x.Hardware.WifiMac != d.wifiMAC {
			t.Fatalf("device %d: wifiMac %v, wiFiMacAddress %q", i, x.Hardware.WifiMac, d.wifiMAC)
		}
		wantTags := []string{"0"}
		if d.roleScopeTag > 0 {
			wantTags = append(wantTags, strconv.Itoa(d.roleScopeTag))
		}
		if strings.Join(x.RoleScopeTagIDs, ",") != strings.Join(wantTags, ",") {
			t.Fatalf("device %d: roleScopeTagIds %v, want %v", i, x.RoleScopeTagIDs, wantTags)
		}
	}
	if seen.huge != n/10 || seen.notes < n/20 || seen.notes > n/6 || seen.escapes == 0 || seen.nonASCII == 0 || seen.lock == 0 ||
		seen.iccid < n/10 || seen.udid < n/10 || seen.ethernet < n/5 || seen.wired == 0 || seen.battery == 0 || seen.fraction == 0 {
		t.Errorf("too uniform: %+v", seen)
	}
}

// Details are a function of (seed, index, revision): the same for every
// server of the seed, and their stream leaves every listed value as it
// was.
func TestDetailsAreDeterministic(t *testing.T) {
	a, b := New(Config{Devices: 100, Seed: 9}), New(Config{Devices: 100, Seed: 9})
	other := New(Config{Devices: 100, Seed: 10})
	differ := 0
	for i := 0; i < 100; i++ {
		if !bytes.Equal(a.DeviceDetails(i, true), b.DeviceDetails(i, true)) {
			t.Fatalf("device %d: details differ between two servers of one seed", i)
		}
		if !bytes.Equal(a.DeviceDetails(i, true), other.DeviceDetails(i, true)) {
			differ++
		}
	}
	if differ < 90 {
		t.Errorf("only %d of 100 devices differ between two seeds", differ)
	}
}

func TestDetailsFollowChangeButKeepTheirOwnValues(t *testing.T) {
	s := New(Config{Devices: 400, Seed: 4})
	windows := 4
	for s.OperatingSystem(windows) != "Windows" {
		windows++
	}
	idx := []int{windows, 1, 2, 3}
	before := make([]deviceDetails, len(idx))
	for k, i := range idx {
		before[k] = decodeDetails(t, s.DeviceDetails(i, true))
	}
	s.Change(idx...)
	for k, i := range idx {
		after := decodeDetails(t, s.DeviceDetails(i, true))
		var d device
		s.current(s.state(), i, &d)
		want := osBuilds[d.osVersion]
		if d.os == osWindows {
			want = strings.TrimPrefix(d.osVersion, "10.0.")
			if !strings.HasPrefix(*after.Hardware.FQDN, d.name) {
				t.Errorf("device %d: FQDN %q does not follow deviceName %q", i, *after.Hardware.FQDN, d.name)
			}
		}
		if *after.Hardware.OSBuild != want {
			t.Errorf("device %d: osBuildNumber %q does not follow osVersion %q", i, *after.Hardware.OSBuild, d.osVersion)
		}
		if free, _ := strconv.ParseInt(string(after.Hardware.FreeStorageSpace), 10, 64); free != d.free {
			t.Errorf("device %d: freeStorageSpace %s, device %d", i, after.Hardware.FreeStorageSpace, d.free)
		}
		if after.Memory != before[k].Memory || !equalPtr(after.Notes, before[k].Notes) {
			t.Errorf("device %d: Change moved the details' own values", i)
		}
	}
}

func equalPtr[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

func TestChangeDetailsMovesOnlyWhatAListCannotShow(t *testing.T) {
	e := newEnv(t, Config{Devices: 60, Seed: 6})
	idx := []int{0, 3, 7, 13, 17, 21, 40}
	_, listBefore := listing(t, e, "")
	betaBefore := walk(t, e, "/beta/deviceManagement/managedDevices")
	before := map[int]deviceDetails{}
	for _, i := range idx {
		before[i] = decodeDetails(t, e.sim.DeviceDetails(i, true))
	}
	e.sim.ChangeDetails(idx[:4]...)
	resp, body := e.post(t, "/_graphsim/mutate", `{"change_details":[17,21,40]}`, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mutate: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.post(t, "/_graphsim/mutate", `{"change_details":[60]}`, ""); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("change_details of a device that does not exist: %d %s", resp.StatusCode, body)
	}

	_, listAfter := listing(t, e, "")
	for id, raw := range listBefore {
		if !bytes.Equal(raw, listAfter[id]) {
			t.Fatalf("device %s changed in the list:\n%s\n%s", id, raw, listAfter[id])
		}
	}
	for k, body := range walk(t, e, "/beta/deviceManagement/managedDevices") {
		if !bytes.Equal(body, betaBefore[k]) {
			t.Fatalf("beta page %d changed", k+1)
		}
	}
	for _, i := range idx {
		b, a := before[i], decodeDetails(t, e.sim.DeviceDetails(i, true))
		if a.Memory == b.Memory || equalPtr(a.Notes, b.Notes) {
			t.Errorf("device %d: memory %s -> %s, notes %v -> %v", i, b.Memory, a.Memory, b.Notes, a.Notes)
		}
		if (b.Hardware.Battery == nil) != (a.Hardware.Battery == nil) || b.Hardware.Battery != nil && *b.Hardware.Battery == *a.Hardware.Battery {
			t.Errorf("device %d: batteryLevelPercentage %v -> %v", i, b.Hardware.Battery, a.Hardware.Battery)
		}
		if m, _ := strconv.ParseInt(string(a.Memory), 10, 64); i%10 == 7 && (m <= 1<<53 || m%2 == 0) {
			t.Errorf("device %d: the changed memory %d fits a float64", i, m)
		}
		if !equalPtr(a.UDID, b.UDID) || !equalPtr(a.Ethernet, b.Ethernet) || !equalPtr(a.Hardware.OSBuild, b.Hardware.OSBuild) {
			t.Errorf("device %d: ChangeDetails moved more than it says", i)
		}
	}
	// A second revision moves them again.
	again := decodeDetails(t, e.sim.DeviceDetails(0, true))
	e.sim.ChangeDetails(0)
	if now := decodeDetails(t, e.sim.DeviceDetails(0, true)); now.Memory == again.Memory || equalPtr(now.Notes, again.Notes) {
		t.Errorf("second revision: memory %s -> %s, notes %v -> %v", again.Memory, now.Memory, again.Notes, now.Notes)
	}
}

func TestAnExtraPropertyReplacingAListDefaultOneIsShownEverywhere(t *testing.T) {
	s := New(Config{Devices: 40, Seed: 2, ExtraProperties: []ExtraProperty{{Name: "notes", Value: `"asset {index}"`, Devices: []int{3}}}})
	if got := rawFields(t, s.DeviceDetails(3, false))["notes"]; string(got) != `"asset 3"` {
		t.Errorf("device 3: real notes %s", got)
	}
	notes := 0
	for i := 0; i < 40; i++ {
		if i != 3 && string(rawFields(t, s.DeviceDetails(i, false))["notes"]) != "null" {
			notes++
		}
		if got := rawFields(t, s.Device(i))["notes"]; (i == 3) != (string(got) == `"asset 3"`) {
			t.Errorf("device %d: listed notes %s", i, got)
		}
	}
	if notes == 0 {
		t.Error("the devices the extra property leaves out lost their real notes")
	}
}

func TestEmittedDeviceReplacesOnlyThePlaceholders(t *testing.T) {
	s := New(Config{Devices: 40, Seed: 11})
	for i := 0; i < 40; i++ {
		for _, beta := range []bool{false, true} {
			listed := rawFields(t, s.Device(i))
			if beta {
				listed = rawFields(t, s.BetaDevice(i))
			}
			real := rawFields(t, s.DeviceDetails(i, beta))
			for _, withDetails := range []bool{false, true} {
				got := rawFields(t, s.EmittedDevice(i, beta, withDetails))
				if len(got) != len(listed) {
					t.Fatalf("device %d: %d properties, the list has %d", i, len(got), len(listed))
				}
				for name, v := range got {
					want := listed[name]
					if r, ok := real[name]; ok {
						want = json.RawMessage("null")
						if withDetails {
							want = r
						}
					}
					if string(v) != string(want) {
						t.Fatalf("device %d beta %v details %v: %s = %s, want %s", i, beta, withDetails, name, v, want)
					}
				}
			}
		}
	}
}
