package schema

import (
	"testing"
)

// entityProperties reads the Property elements of an entity type copied
// from Graph's metadata into file, with id from graph.entity, its base type.
func entityProperties(t *testing.T, file, name string) map[string]string {
	t.Helper()
	props := map[string]string{"id": "Edm.String"}
	for _, p := range readEntity(t, file, name).Properties {
		props[p.Name] = p.Type
	}
	return props
}

func TestEveryPropertyOfGraphsMetadataHasATypedColumnInEveryDestination(t *testing.T) {
	for _, version := range APIVersions {
		props := metadataProperties(t, version)
		for name, edm := range props {
			c, ok := ByProperty(name)
			if !ok {
				if version == "v1.0" {
					t.Errorf("%s (%s) is in Graph's v1.0 metadata but has no row in managed_device.tsv", name, edm)
				}
				continue // beta's own properties are columns once they need details
			}
			if !c.In(version) {
				t.Errorf("%s is in Graph's %s metadata, but managed_device.tsv says %s has none", name, version, version)
			}
			if c.EDMType != edm {
				t.Errorf("%s: edm_type %s, Graph's %s metadata says %s", name, c.EDMType, version, edm)
			}
			for _, dest := range Destinations {
				if c.Type(dest) == "" {
					t.Errorf("%s has no %s type", name, dest)
				}
			}
		}
		for _, c := range Columns() {
			if _, ok := props[c.Property]; ok != c.In(version) {
				t.Errorf("managed_device.tsv says %s has %s: %v; Graph's %s metadata: %v", version, c.Property, c.In(version), version, ok)
			}
		}
	}
	for _, name := range []string{"enrollmentProfileName", "managementState"} {
		if _, ok := ByProperty(name); !ok {
			t.Errorf("%s, added to the metadata in 2024-2025, has no column", name)
		}
	}
}

func TestKindsFollowTheMetadataTypes(t *testing.T) {
	for prop, want := range map[string]Kind{
		"id": KindString, "complianceState": KindString, "isEncrypted": KindBoolean,
		"totalStorageSpaceInBytes": KindInt64, "enrolledDateTime": KindDateTime,
		"deviceActionResults": KindJSON, "deviceHealthAttestationState": KindJSON,
		"configurationManagerClientEnabledFeatures": KindJSON, "managementState": KindString,
	} {
		c, _ := ByProperty(prop)
		if c.Kind != want {
			t.Errorf("%s: kind %s, want %s", prop, c.Kind, want)
		}
	}
	// Each kind has one type per destination: a table edited by hand must
	// not give two datetime columns different types in one database.
	for _, dest := range Destinations {
		byKind := map[Kind]string{}
		for _, c := range Columns()[1:] {
			if prev, ok := byKind[c.Kind]; ok && prev != c.Type(dest) {
				t.Errorf("%s: %s columns are both %s and %s (%s)", dest, c.Kind, prev, c.Type(dest), c.Property)
			}
			byKind[c.Kind] = c.Type(dest)
		}
	}
}

func TestColumnName(t *testing.T) {
	for prop, want := range map[string]string{
		"azureADDeviceId": "azure_ad_device_id", "wiFiMacAddress": "wi_fi_mac_address", "id": "id",
		"totalStorageSpaceInBytes": "total_storage_space_in_bytes", "easActivated": "eas_activated",
		"hardwareInformation": "hardware_information", "osVersion": "os_version", "IPAddress": "ip_address",
		"tpmSpecificationVersion": "tpm_specification_version", "is5GCapable": "is5_g_capable",
	} {
		if got := ColumnName(prop); got != want {
			t.Errorf("ColumnName(%s) = %s, want %s", prop, got, want)
		}
	}
}

func TestColumnForRefusesAnnotationsAndOddNames(t *testing.T) {
	for _, p := range []string{"@odata.type", "deviceName@odata.context", "with space", "semi;colon", "_raw", "_deleted"} {
		if c, err := ColumnFor(p, KindString); err == nil {
			t.Errorf("ColumnFor(%q) = %s, want an error", p, c.Name)
		}
	}
	c, err := ColumnFor("chassisType", KindString)
	if err != nil || c.Name != "chassis_type" || c.Types["postgres"] != "text" || c.Types["sqlite"] != "TEXT" {
		t.Errorf("ColumnFor(chassisType) = %+v, %v", c, err)
	}
}

func TestKindOf(t *testing.T) {
	for _, tc := range []struct {
		prop, value string
		want        Kind
		ok          bool
	}{
		{"chassisType", `"laptop"`, KindString, true},
		{"lastLogonDateTime", `"2026-11-20T08:00:00Z"`, KindDateTime, true},
		{"warrantyEndDate", `"2027-01-31"`, KindDateTime, true},
		{"updateDateTime", `"soon"`, KindString, true},
		{"startTime", `"2026-11-20T08:00:00Z"`, KindString, true},
		{"autopilotEnrolled", `false`, KindBoolean, true},
		{"batteryHealthPercentage", `97`, KindInt64, true},
		{"hugeBytes", `-9223372036854775808`, KindInt64, true},
		{"tooHuge", `9223372036854775808`, KindNumeric, true},
		{"ratio", `0.5`, KindNumeric, true},
		{"exp", `1e3`, KindNumeric, true},
		{"hardwareInformation", `{"a":1}`, KindJSON, true},
		{"roleScopeTagIds", `["0"]`, KindJSON, true},
		{"unknownYet", `null`, "", false},
	} {
		k, ok := KindOf(tc.prop, []byte(tc.value))
		if k != tc.want || ok != tc.ok {
			t.Errorf("KindOf(%s, %s) = %s, %v; want %s, %v", tc.prop, tc.value, k, ok, tc.want, tc.ok)
		}
	}
}

func TestFitsAndNever(t *testing.T) {
	for _, tc := range []struct {
		k     Kind
		value string
		want  bool
	}{
		{KindBoolean, `true`, true}, {KindBoolean, `"true"`, false}, {KindBoolean, `null`, true},
		{KindInt64, `9223372036854775807`, true}, {KindInt64, `9223372036854775808`, false}, {KindInt64, `1.5`, false},
		{KindDateTime, `"2026-11-20T08:00:00.1234567Z"`, true}, {KindDateTime, `"yesterday"`, false},
		{KindString, `"x"`, true}, {KindString, `5`, true}, {KindString, `{"a":1}`, true}, {KindJSON, `[]`, true}, {KindJSON, `"[]"`, true}, {KindNumeric, `"1"`, false},
	} {
		if got := Fits(tc.k, []byte(tc.value)); got != tc.want {
			t.Errorf("Fits(%s, %s) = %v, want %v", tc.k, tc.value, got, tc.want)
		}
	}
	if !IsNever([]byte(`"0001-01-01T00:00:00Z"`)) || IsNever([]byte(`"2001-01-01T00:00:00Z"`)) || IsNever([]byte(`null`)) {
		t.Error("IsNever is wrong")
	}
}

// TestDetectedAppsTableIsGraphsDetectedApp checks detected_app.tsv against
// the copy of detectedApp from Graph's v1.0 metadata in testdata.
func TestDetectedAppsTableIsGraphsDetectedApp(t *testing.T) {
	want := entityProperties(t, "testdata/detectedApp.v1.0.xml", "detectedApp")
	got := map[string]string{}
	for _, c := range DetectedAppColumns() {
		got[c.Property] = c.EDMType
		for _, dest := range Destinations {
			if c.Type(dest) == "" {
				t.Errorf("%s has no %s type", c.Property, dest)
			}
		}
	}
	if len(got) != len(want) {
		t.Errorf("detected_app.tsv has %d properties, Graph's detectedApp %d", len(got), len(want))
	}
	for name, edm := range want {
		if got[name] != edm {
			t.Errorf("%s: detected_app.tsv says %q, Graph's metadata %q", name, got[name], edm)
		}
	}
}
