package intune

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// The details fields: the properties Graph's list of managed devices leaves
// at a default, fetched one device at a time (details.go).
const (
	fieldDetails           = "details"
	fieldDetailsEnabled    = "enabled"
	fieldDetailsProperties = "properties"
	fieldDetailsMaxAge     = "max_age"
	fieldDetailsTriggers   = "trigger_properties"
)

// defaultDetailsTriggers are the listed properties whose change says the
// device's details may have changed too, so that they are fetched again
// before max_age:
//   - enrolledDateTime: a device enrolled again is, for Intune, a new
//     device: its udid, notes and hardware report start over;
//   - osVersion: an update changes hardwareInformation's osBuildNumber
//     and edition, and often its TPM and BIOS versions;
//   - model, manufacturer, serialNumber: a board or a whole machine
//     swapped under the same record (memory, MACs, TPM);
//   - totalStorageSpaceInBytes: a disk replaced;
//   - deviceName: hardwareInformation's fully qualified domain name;
//   - wiFiMacAddress: a network adapter replaced, the wired one often with it;
//   - imei, meid, phoneNumber, subscriberCarrier: a SIM or a modem changed,
//     which changes iccid.
//
// freeStorageSpaceInBytes and lastSyncDateTime are left out: they move on
// every check-in, and would refetch the whole tenant every sync.
var defaultDetailsTriggers = []string{
	"enrolledDateTime", "osVersion", "model", "manufacturer", "serialNumber", "totalStorageSpaceInBytes",
	"deviceName", "wiFiMacAddress", "imei", "meid", "phoneNumber", "subscriberCarrier",
}

// defaultDetailsMaxAge refreshes every device's details once a week.
const defaultDetailsMaxAge = 7 * 24 * time.Hour

// The details rules (see rule).
var (
	detailsPropertiesRule = newRule(fmt.Sprintf(`root = if this.type() == "string" && ![%s].contains(this) { [ "details.properties: %%q is not a property Graph's list leaves at a default; it must be one of %s".format(this) ] }`,
		quotedList(allListDefaults()), strings.Join(allListDefaults(), ", ")), fieldDetails, fieldDetailsProperties)
	detailsMaxAgeRule = newRule(`root = if this.parse_duration().catch(0) <= 0 { [ "details.max_age must be a positive duration such as 168h, got %v".format(this) ] }`,
		fieldDetails, fieldDetailsMaxAge)
)

func detailsRules() []*rule { return []*rule{detailsPropertiesRule, detailsMaxAgeRule} }

// allListDefaults are the properties that some API version's list leaves
// at a default, in the schema's order.
func allListDefaults() []string {
	var out []string
	for _, c := range schema.Columns() {
		for _, v := range schema.APIVersions {
			if c.ListDefault(v) {
				out = append(out, c.Property)
				break
			}
		}
	}
	return out
}

func quotedList(values []string) string {
	quoted := make([]string, len(values))
	for i, v := range values {
		quoted[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(quoted, ", ")
}

func detailsField() *service.ConfigField {
	return service.NewObjectField(fieldDetails,
		service.NewBoolField(fieldDetailsEnabled).
			Description("Fetches each device's details: the properties that Graph's list leaves at a default (`physicalMemoryInBytes` is 0, `ethernetMacAddress`, `notes`, `udid`, `iccid` are null, beta's `hardwareInformation` holds only defaults), with one `GET managedDevices/{id}?$select=...` per device, sent 20 at a time in JSON batches within the request budget. A device's details are fetched when it is new, when one of `trigger_properties` changed since they were fetched, and when they are older than `max_age`; in between the device is emitted with the values last fetched, kept in `state_cache` (without one, every sync fetches every device's details). Off, those properties are emitted as null, never as Graph's placeholder.").
			Default(false),
		service.NewStringListField(fieldDetailsProperties).
			Description("The properties to fetch. Empty fetches every property that the `api_version`'s list leaves at a default, except the secret ones (`activationLockBypassCode`, which unlocks a supervised Apple device, and `remoteAssistanceSessionUrl`), which are fetched only when named here. A beta-only property (`hardwareInformation`) named with `api_version: v1.0` is fetched from beta. With `select`, only the selected properties are fetched unless they are named here.").
			Example([]string{"physicalMemoryInBytes", "ethernetMacAddress", "hardwareInformation"}).
			Default([]string{}).
			LintRule(detailsPropertiesRule.mapping),
		service.NewStringField(fieldDetailsMaxAge).
			Description("How old a device's details may get before they are fetched again. Refreshes are spread: a device's first refresh comes at a point of its own within `max_age`, so that each sync fetches about the same share of the tenant.").
			Default(defaultDetailsMaxAge.String()).
			LintRule(detailsMaxAgeRule.mapping),
		service.NewStringListField(fieldDetailsTriggers).
			Description("Listed properties whose change since the details were fetched fetches them again, before `max_age`: an update, a re-enrolment or a new SIM changes what the details hold.").
			Default(defaultDetailsTriggers).
			Advanced(),
	).Description("Fetches the values that Graph's list of managed devices leaves at a default. See [device details](../operations.md#device-details).")
}

// detailsConfig is the parsed details object.
type detailsConfig struct {
	enabled bool
	// properties are what a device's GET selects, in the schema's order.
	properties []string
	// version is the GET's: the listing's, or beta when a property is
	// beta's only.
	version  string
	maxAge   time.Duration
	triggers []string
	// placeholders are the properties whose listed value is not a fact:
	// the listing version's list defaults and the fetched properties.
	// Each is written as its fetched value, or null.
	placeholders map[string]bool
}

// parseDetails reads the details object for a listing of apiVersion that
// selects selected (empty: every property).
func parseDetails(conf *service.ParsedConfig, apiVersion string, selected []string) (detailsConfig, error) {
	d := detailsConfig{version: apiVersion, placeholders: map[string]bool{}}
	det := conf.Namespace(fieldDetails)
	var err error
	if d.enabled, err = det.FieldBool(fieldDetailsEnabled); err != nil {
		return d, err
	}
	named, err := det.FieldStringList(fieldDetailsProperties)
	if err != nil {
		return d, err
	}
	maxAge, err := det.FieldString(fieldDetailsMaxAge)
	if err != nil {
		return d, err
	}
	if d.maxAge, err = time.ParseDuration(maxAge); err != nil { // detailsMaxAgeRule has checked it parses
		return d, fmt.Errorf("details.max_age: %w", err)
	}
	if d.triggers, err = det.FieldStringList(fieldDetailsTriggers); err != nil {
		return d, err
	}
	for _, c := range schema.ListDefaults(apiVersion) {
		d.placeholders[c.Property] = true
	}
	if !d.enabled {
		return d, nil
	}
	d.properties = detailsProperties(apiVersion, named, selected)
	for _, p := range d.properties {
		d.placeholders[p] = true
		if c, _ := schema.ByProperty(p); !c.In(apiVersion) {
			d.version = "beta"
		}
	}
	return d, nil
}

// detailsProperties are the properties a device's GET selects: those
// named, or else the listing's list defaults but the secret ones (and,
// with select, only the selected ones), in the schema's order.
func detailsProperties(apiVersion string, named, selected []string) []string {
	var out []string
	for _, c := range schema.Columns() {
		switch {
		case len(named) > 0:
			if slices.Contains(named, c.Property) {
				out = append(out, c.Property)
			}
		case c.ListDefault(apiVersion) && !c.Secret() && (len(selected) == 0 || slices.Contains(selected, c.Property)):
			out = append(out, c.Property)
		}
	}
	return out
}
