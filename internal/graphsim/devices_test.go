package graphsim

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

// The v1.0 managedDevice properties, in Microsoft's documented order.
const v1PropertyOrder = "id,userId,deviceName,managedDeviceOwnerType,enrolledDateTime,lastSyncDateTime,operatingSystem," +
	"complianceState,jailBroken,managementAgent,osVersion,easActivated,easDeviceId,easActivationDateTime,azureADRegistered," +
	"deviceEnrollmentType,activationLockBypassCode,emailAddress,azureADDeviceId,deviceRegistrationState,deviceCategoryDisplayName," +
	"isSupervised,exchangeLastSuccessfulSyncDateTime,exchangeAccessState,exchangeAccessStateReason,remoteAssistanceSessionUrl," +
	"remoteAssistanceSessionErrorDetails,isEncrypted,userPrincipalName,model,manufacturer,imei,complianceGracePeriodExpirationDateTime," +
	"serialNumber,phoneNumber,androidSecurityPatchLevel,userDisplayName,configurationManagerClientEnabledFeatures,wiFiMacAddress," +
	"deviceHealthAttestationState,subscriberCarrier,meid,totalStorageSpaceInBytes,freeStorageSpaceInBytes,managedDeviceName," +
	"partnerReportedThreatState,requireUserEnrollmentApproval,managementCertificateExpirationDate,iccid,udid,notes," +
	"ethernetMacAddress,physicalMemoryInBytes,deviceActionResults,enrollmentProfileName,managementState"

// topLevelKeys returns the keys of a JSON object in order.
func topLevelKeys(t *testing.T, raw []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func TestDevicesAreValidAndComplete(t *testing.T) {
	s := New(Config{Devices: 5000, Seed: 3})
	total := 0
	var odd struct{ quote, backslash, lineSep, nonASCII, emoji, health, cmNull, cmObject, actions int }
	for i := 0; i < 5000; i++ {
		raw := s.Device(i)
		if !json.Valid(raw) {
			t.Fatalf("device %d is not valid JSON: %s", i, raw)
		}
		total += len(raw)
		if i < 300 {
			if keys := strings.Join(topLevelKeys(t, raw), ","); keys != v1PropertyOrder {
				t.Fatalf("device %d properties:\n%s\nwant\n%s", i, keys, v1PropertyOrder)
			}
		}
		var d struct {
			ID              string          `json:"id"`
			DeviceName      string          `json:"deviceName"`
			OperatingSystem string          `json:"operatingSystem"`
			Health          json.RawMessage `json:"deviceHealthAttestationState"`
			CM              json.RawMessage `json:"configurationManagerClientEnabledFeatures"`
			Actions         []struct {
				ActionName, ActionState, StartDateTime, LastUpdatedDateTime string
			} `json:"deviceActionResults"`
			Enrolled string `json:"enrolledDateTime"`
		}
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		if d.ID != s.DeviceID(i) || d.OperatingSystem != s.OperatingSystem(i) {
			t.Fatalf("device %d: id %s os %s, want %s %s", i, d.ID, d.OperatingSystem, s.DeviceID(i), s.OperatingSystem(i))
		}
		if len(d.Enrolled) != len("2025-03-14T09:26:53Z") || !strings.HasSuffix(d.Enrolled, "Z") {
			t.Fatalf("enrolledDateTime %q", d.Enrolled)
		}
		if (string(d.Health) == "null") == (d.OperatingSystem == "Windows") {
			t.Fatalf("device %d (%s): deviceHealthAttestationState %s", i, d.OperatingSystem, d.Health)
		}
		if d.OperatingSystem == "Windows" {
			odd.health++
			var h map[string]any
			if err := json.Unmarshal(d.Health, &h); err != nil || len(h) < 30 {
				t.Fatalf("health state has %d fields: %s", len(h), d.Health)
			}
		}
		if string(d.CM) == "null" {
			odd.cmNull++
		} else {
			odd.cmObject++
		}
		if len(d.Actions) > 3 {
			t.Fatalf("%d action results", len(d.Actions))
		}
		odd.actions += len(d.Actions)
		name := d.DeviceName
		if strings.Contains(name, `"`) {
			odd.quote++
		}
		if strings.Contains(name, `\`) {
			odd.backslash++
		}
		if strings.Contains(name, "\u2028") {
			odd.lineSep++
			if !bytes.Contains(raw, []byte(`\u2028`)) {
				t.Errorf("U+2028 not escaped: %s", raw)
			}
		}
		if strings.ContainsFunc(name, func(r rune) bool { return r > 127 }) {
			odd.nonASCII++
		}
		if strings.ContainsFunc(name, func(r rune) bool { return r > 0xffff }) {
			odd.emoji++
		}
	}
	if odd.quote == 0 || odd.backslash == 0 || odd.lineSep == 0 || odd.emoji == 0 || odd.nonASCII < 500 ||
		odd.health == 0 || odd.cmNull == 0 || odd.cmObject == 0 || odd.actions == 0 {
		t.Errorf("too uniform: %+v", odd)
	}
	if avg := total / 5000; avg < 2500 || avg > 4500 {
		t.Errorf("average device is %d bytes", avg)
	}
}

func TestStorageAbove2To53(t *testing.T) {
	s := New(Config{Devices: 100, Seed: 1})
	big := 0
	for i := 0; i < 100; i++ {
		var d struct {
			Total json.Number `json:"totalStorageSpaceInBytes"`
			Free  json.Number `json:"freeStorageSpaceInBytes"`
		}
		dec := json.NewDecoder(bytes.NewReader(s.Device(i)))
		dec.UseNumber()
		if err := dec.Decode(&d); err != nil {
			t.Fatal(err)
		}
		total, err := strconv.ParseInt(string(d.Total), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		free, _ := strconv.ParseInt(string(d.Free), 10, 64)
		if free <= 0 || free > total {
			t.Errorf("device %d: free %d of %d", i, free, total)
		}
		if i%10 != 3 {
			if total > 1<<53 {
				t.Errorf("device %d: total %d", i, total)
			}
			continue
		}
		// float64 cannot represent it: a client that decodes through
		// float64 corrupts the value.
		f, _ := strconv.ParseFloat(string(d.Total), 64)
		if total <= 1<<53 || int64(f) == total {
			t.Errorf("device %d: total %d survives float64", i, total)
		}
		big++
	}
	if big != 10 {
		t.Errorf("%d big totals", big)
	}
}

func TestDeterminism(t *testing.T) {
	a, b, c := New(Config{Devices: 200, Seed: 99}), New(Config{Devices: 200, Seed: 99}), New(Config{Devices: 200, Seed: 100})
	differ := 0
	for i := 0; i < 200; i++ {
		if !bytes.Equal(a.Device(i), b.Device(i)) {
			t.Fatalf("device %d differs between two servers with the same seed", i)
		}
		if !bytes.Equal(a.Device(i), a.Device(i)) {
			t.Fatalf("device %d differs between two calls", i)
		}
		if !bytes.Equal(a.Device(i), c.Device(i)) {
			differ++
		}
	}
	if differ != 200 {
		t.Errorf("only %d of 200 devices change with the seed", differ)
	}
}

func TestDeviceIDEncodesIndex(t *testing.T) {
	s := New(Config{Devices: 1 << 20, Seed: 5})
	for _, i := range []int{0, 1, 255, 4096, 1<<20 - 1} {
		id := s.DeviceID(i)
		if len(id) != 36 || id[14] != '4' {
			t.Errorf("id %q", id)
		}
		if got, ok := s.indexFromID(id); !ok || got != i {
			t.Errorf("indexFromID(%s) = %d, %v", id, got, ok)
		}
		if _, ok := s.indexFromID(strings.ToUpper(id)); !ok {
			t.Errorf("upper-case id refused")
		}
	}
	if _, ok := s.indexFromID(New(Config{Devices: 10, Seed: 6}).DeviceID(3)); ok {
		t.Error("id of another tenant accepted")
	}
	if _, ok := New(Config{Devices: 3, Seed: 5}).indexFromID(s.DeviceID(3)); ok {
		t.Error("id past the end accepted")
	}
}

func TestSkipTokenRoundTrip(t *testing.T) {
	s := New(Config{Devices: 100})
	for _, name := range []string{"Zoë's MacBook Pro", `CONTOSO\KIOSK-0001`, "Lab PC\u2028Line2, 'x'", "LastDeviceId='nope'"} {
		id := s.DeviceID(42)
		tok := appendSkipToken(nil, name, []byte(id))
		if bytes.ContainsAny(tok, " ,=&+\\\"") {
			t.Errorf("token not escaped: %s", tok)
		}
		// What a server sees after the usual single query unescape.
		u := strings.NewReplacer("%3d", "=", "%2c", ",").Replace(string(tok))
		if i, ok := s.parseSkipToken(u); !ok || i != 42 {
			t.Errorf("%q: %d %v", tok, i, ok)
		}
		if i, ok := s.parseSkipToken(string(tok)); !ok || i != 42 {
			t.Errorf("still-escaped %q: %d %v", tok, i, ok)
		}
	}
}

func TestFilterParsing(t *testing.T) {
	for f, want := range map[string]osKind{
		"operatingSystem eq 'Windows'":       osWindows,
		"  operatingsystem   Eq   'MACOS'  ": osMacOS,
		"operatingSystem eq 'Windows Phone'": osCount,
		"operatingSystem eq 'It''s'":         osCount,
	} {
		if got, ok := parseFilter(f); !ok || got != want {
			t.Errorf("%q: %v %v", f, got, ok)
		}
	}
	for _, f := range []string{"operatingSystem", "operatingSystem ne 'iOS'", "operatingSystem eq 'a'b'", "operatingSystem eq 'iOS", "(operatingSystem eq 'iOS')"} {
		if _, ok := parseFilter(f); ok {
			t.Errorf("%q accepted", f)
		}
	}
}

func TestMatchesBefore(t *testing.T) {
	s := New(Config{Devices: 3*osBlock + 17, Seed: 11})
	for _, pos := range []int{0, 1, osBlock - 1, osBlock, 2*osBlock + 5, 3*osBlock + 17, 1 << 30} {
		for os := osKind(0); os < osCount; os++ {
			want := 0
			for i := 0; i < min(pos, s.cfg.Devices); i++ {
				if s.osOf(i) == os {
					want++
				}
			}
			if got := s.matchesBefore(os, pos); got != want {
				t.Errorf("matchesBefore(%v, %d) = %d, want %d", os, pos, got, want)
			}
		}
	}
}

// The two properties Graph's v1.0 metadata gained in 2024 and 2025 carry
// realistic values: a profile name only where an enrollment profile exists,
// and managementState "managed" for nearly every device.
func TestDevicesCarryTheRecentlyAddedProperties(t *testing.T) {
	s := New(Config{Devices: 3000, Seed: 9})
	profiles, states := 0, map[string]int{}
	for i := 0; i < 3000; i++ {
		var d struct {
			Type    string  `json:"deviceEnrollmentType"`
			Profile *string `json:"enrollmentProfileName"`
			State   string  `json:"managementState"`
		}
		if err := json.Unmarshal(s.Device(i), &d); err != nil {
			t.Fatal(err)
		}
		if d.Profile != nil {
			t.Fatalf("device %d lists enrollmentProfileName %q, which lists leave null", i, *d.Profile)
		}
		// Its value comes with the details.
		if err := json.Unmarshal(s.DeviceDetails(i, false), &d); err != nil {
			t.Fatal(err)
		}
		if d.Profile != nil {
			profiles++
			if len(enrollmentProfiles[d.Type]) == 0 {
				t.Fatalf("device %d (%s) has profile %q", i, d.Type, *d.Profile)
			}
		}
		states[d.State]++
	}
	if profiles < 300 || profiles > 2700 {
		t.Errorf("%d of 3000 devices have an enrollment profile", profiles)
	}
	if states["managed"] < 2800 || len(states) < 3 {
		t.Errorf("managementState spread %v", states)
	}
}

func TestExtraPropertiesFollowGraphsOwnInBothVersions(t *testing.T) {
	s := New(Config{Devices: 3, Seed: 1, ExtraProperties: []ExtraProperty{
		{Name: "contosoAssetTag", Value: `"TAG-{index}"`},
		{Name: "hardwareInformation", Value: `{"serialNumber":"S{index}","tpmVersion":"2.0"}`},
	}})
	v1 := s.Device(2)
	keys := topLevelKeys(t, v1)
	if got := strings.Join(keys[len(keys)-2:], ","); got != "contosoAssetTag,hardwareInformation" {
		t.Fatalf("last properties %s in %s", got, v1)
	}
	if !bytes.HasSuffix(v1, []byte(`"contosoAssetTag":"TAG-2","hardwareInformation":{"serialNumber":"S2","tpmVersion":"2.0"}}`)) {
		t.Fatalf("extra values missing in %s", v1)
	}
	// Beta has its own hardwareInformation: the extra one replaces it in
	// place rather than writing the key twice.
	beta := s.BetaDevice(2)
	seen := map[string]bool{}
	for _, k := range topLevelKeys(t, beta) {
		if seen[k] {
			t.Fatalf("%s twice in %s", k, beta)
		}
		seen[k] = true
	}
	if !seen["usersLoggedOn"] || !bytes.Contains(beta, []byte(`"hardwareInformation":{"serialNumber":"S2","tpmVersion":"2.0"}`)) || !bytes.HasSuffix(beta, []byte(`"contosoAssetTag":"TAG-2"}`)) {
		t.Fatalf("beta device %s", beta)
	}
	if _, err := ParseExtraProperty("x={not json"); err == nil {
		t.Error("a value that is not JSON was accepted")
	}
	if p, err := ParseExtraProperty(`tag="a=b"`); err != nil || p.Name != "tag" || p.Value != `"a=b"` {
		t.Errorf("ParseExtraProperty = %+v, %v", p, err)
	}
}

func TestAnExtraPropertyCanBeGivenToSomeDevicesOnly(t *testing.T) {
	s := New(Config{Devices: 5, Seed: 2, ExtraProperties: []ExtraProperty{{Name: "notes", Value: `"bad\u0000byte"`, Devices: []int{3}}}})
	for i := 0; i < 5; i++ {
		has := bytes.Contains(s.Device(i), []byte(`"notes":"bad\u0000byte"`))
		if has != (i == 3) || !bytes.Contains(s.Device(i), []byte(`"notes":`)) {
			t.Fatalf("device %d: %s", i, s.Device(i))
		}
	}
}
