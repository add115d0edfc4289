package schema

import (
	"encoding/xml"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/intune-benthos/intune-benthos/internal/graphsim"
)

// testdata holds managedDevice as Microsoft's metadata describes it, in
// v1.0 and in beta: the EntityType with each property's description, and
// the Annotations blocks that repeat them, copied verbatim from
// microsoftgraph/msgraph-metadata (clean_v10_metadata and
// clean_beta_metadata, cleanMetadataWithDescriptions*.xml; the commit and
// the offsets are in each file's first comment). Replace a copy with a newer
// one to check the table against what Graph says now.
var metadataFiles = map[string]string{
	"v1.0": "testdata/managedDevice.v1.0.xml",
	"beta": "testdata/managedDevice.beta.xml",
}

type metadataAnnotation struct {
	Term   string `xml:"Term,attr"`
	String string `xml:"String,attr"`
}

type metadataEntity struct {
	Name       string `xml:"Name,attr"`
	Properties []struct {
		Name        string               `xml:"Name,attr"`
		Type        string               `xml:"Type,attr"`
		Annotations []metadataAnnotation `xml:"Annotation"`
	} `xml:"Property"`
}

// readEntity reads the entity type called name from file: the file's root
// element, or the EntityType inside an <Extract> of several elements.
func readEntity(t *testing.T, file, name string) metadataEntity {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name
		metadataEntity
		Entity metadataEntity `xml:"EntityType"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	e := doc.metadataEntity
	if doc.XMLName.Local == "Extract" {
		e = doc.Entity
	}
	if e.Name != name {
		t.Fatalf("%s holds %q, want %s", file, e.Name, name)
	}
	return e
}

// metadataProperties reads managedDevice's properties (and their types)
// from the copy of version's metadata.
func metadataProperties(t *testing.T, version string) map[string]string {
	t.Helper()
	props := entityProperties(t, metadataFiles[version], "managedDevice")
	if len(props) < 50 {
		t.Fatalf("testdata holds %d properties of managedDevice in %s, want all of them", len(props), version)
	}
	return props
}

// metadataDescriptions reads every description of a managedDevice
// property in version's copy: the one inside its Property element and the
// one of its Annotations block, which Microsoft words differently.
func metadataDescriptions(t *testing.T, version string) map[string][]string {
	t.Helper()
	file := metadataFiles[version]
	out := map[string][]string{}
	for _, p := range readEntity(t, file, "managedDevice").Properties {
		for _, a := range p.Annotations {
			if a.Term == "Org.OData.Core.V1.Description" {
				out[p.Name] = append(out[p.Name], a.String)
			}
		}
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Blocks []struct {
			Target      string               `xml:"Target,attr"`
			Annotations []metadataAnnotation `xml:"Annotation"`
		} `xml:"Annotations"`
	}
	if err := xml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, b := range doc.Blocks {
		prop, ok := strings.CutPrefix(b.Target, "microsoft.graph.managedDevice/")
		if !ok {
			continue
		}
		for _, a := range b.Annotations {
			if a.Term == "Org.OData.Core.V1.Description" {
				out[prop] = append(out[prop], a.String)
			}
		}
	}
	return out
}

// listDefaultWording is how Microsoft's descriptions have said, over the
// years, that the list leaves a property at a default and a GET of the one
// device naming it in $select has its value.
var listDefaultWording = regexp.MustCompile(`(?i)default value in LIST managedDevices|` +
	`real value only returned in sing[el]{2} device GET|` +
	`to retrieve actual values GET call needs to be made|` +
	`individual get call with select query options is needed|` +
	`include \w+ in the select clause and query with a device id`)

// observedListDefaults are properties that users found at a default in
// every list although no description says so, each with where they
// reported it. The test keeps them marked; remove one only with a source
// showing lists now carry its value.
var observedListDefaults = map[string]map[string]string{
	"roleScopeTagIds": {"beta": "an empty array in every list, the tags on a GET of the device: microsoft-graph-docs#4414 " +
		"(Microsoft: left out of lists to limit their size), microsoft-graph-docs#17832, powershell-intune-samples#82"},
	"enrollmentProfileName": {
		"v1.0": "null in lists, the value on a GET of the device: microsoft-graph-docs-contrib#1455, microsoft-graph-docs#19907",
		"beta": "null in lists, the value on a GET of the device: microsoft-graph-docs-contrib#1455, microsoft-graph-docs#19907",
	},
}

// TestListDefaultsAreMarkedFromGraphsMetadata fails when the copy of
// Graph's metadata describes a property as left at a default by the list
// and managed_device.tsv does not mark it get (or get-secret) for that
// version, and when the table marks one that neither the metadata nor an
// observation with its source explains.
func TestListDefaultsAreMarkedFromGraphsMetadata(t *testing.T) {
	for _, version := range APIVersions {
		described := map[string]bool{}
		for prop, texts := range metadataDescriptions(t, version) {
			for _, text := range texts {
				if listDefaultWording.MatchString(text) {
					described[prop] = true
				}
			}
		}
		if len(described) < 5 {
			t.Fatalf("%s: only %d properties described as list defaults; is %s the metadata with descriptions?", version, len(described), metadataFiles[version])
		}
		var names []string
		for prop := range described {
			names = append(names, prop)
		}
		sort.Strings(names)
		for _, prop := range names {
			c, ok := ByProperty(prop)
			if !ok || !c.ListDefault(version) {
				t.Errorf("Graph's %s metadata describes %s as left at a default by the list; mark it get (or get-secret) for %s in managed_device.tsv", version, prop, version)
			}
		}
		for _, c := range ListDefaults(version) {
			if !described[c.Property] && observedListDefaults[c.Property][version] == "" {
				t.Errorf("managed_device.tsv marks %s get in %s, which neither Graph's metadata nor observedListDefaults explains", c.Property, version)
			}
		}
	}
}

// TestSecretsAreMarked: a value that unlocks a device (or opens a remote
// session on it) is never fetched unless a config names it.
func TestSecretsAreMarked(t *testing.T) {
	for _, prop := range []string{"activationLockBypassCode", "remoteAssistanceSessionUrl"} {
		if c, ok := ByProperty(prop); !ok || !c.Secret() {
			t.Errorf("%s must be marked get-secret", prop)
		}
	}
	for _, version := range APIVersions {
		for _, c := range ListDefaults(version) {
			if c.Secret() && c.Sources[version] != SourceSecret {
				t.Errorf("%s is secret in one version and not in %s", c.Property, version)
			}
		}
	}
}

// TestListDefaultsHaveColumnsOfTheirKind: beta's list-default properties
// have columns of the kind their metadata type gives.
func TestListDefaultsHaveColumnsOfTheirKind(t *testing.T) {
	for prop, want := range map[string]Kind{
		"hardwareInformation": KindJSON, "chromeOSDeviceInfo": KindJSON, "roleScopeTagIds": KindJSON,
		"windowsActiveMalwareCount": KindInt64, "bootstrapTokenEscrowed": KindBoolean, "physicalMemoryInBytes": KindInt64,
	} {
		c, ok := ByProperty(prop)
		if !ok || c.Kind != want {
			t.Errorf("%s: column %+v, want kind %s", prop, c, want)
		}
	}
}

// TestGraphsimLeavesTheSamePropertiesAtTheirDefaults: the simulator the
// tests and benchmarks run against lists exactly the marked properties
// with placeholders, so that what a test finds filled came from details.
func TestGraphsimLeavesTheSamePropertiesAtTheirDefaults(t *testing.T) {
	for _, version := range APIVersions {
		var marked []string
		for _, c := range ListDefaults(version) {
			marked = append(marked, c.Property)
		}
		sort.Strings(marked)
		sim := graphsim.ListDefaultProperties(version == "beta")
		sort.Strings(sim)
		if strings.Join(sim, ",") != strings.Join(marked, ",") {
			t.Errorf("%s: graphsim leaves %v at a default, managed_device.tsv marks %v", version, sim, marked)
		}
	}
}
