// Package schema is the one description of the managed_devices table that
// every table-shaped destination shares: which Graph property goes into which
// column, of which type in each database, and how a database computes the
// column from the whole device. The shipped configs are generated from it
// (internal/configgen), and the processors that keep tables complete at run
// time (intune_new_columns, intune_flatten) read it, so the configs, the
// column table in docs/destinations.md and the processors cannot drift apart.
//
// The table itself is managed_device.tsv, one row per property of Graph
// v1.0's microsoft.graph.managedDevice, and one per property of beta's that
// the list leaves at a default (their real values come with details):
//
//	property    the property's name in Graph's JSON
//	edm_type    its type in Graph's metadata (Edm.String, Edm.Int64, an enum, a complex type, a collection)
//	column      the column's name (snake_case of the property)
//	v1.0, beta  how each API version gives it (Source): list, get, get-secret, or - where it has none
//	sqlite, postgres, clickhouse, bigquery, snowflake
//	            the column's type in each destination
//
// It has no Benthos imports.
package schema

import (
	_ "embed"
	"fmt"
	"strings"
)

//go:embed managed_device.tsv
var table string

// detectedAppTable is the detected_apps table of intune_detected_apps, in
// the same form.
//
//go:embed detected_app.tsv
var detectedAppTable string

// Destinations are the databases with a type column in the table, in its
// column order.
var Destinations = []string{"sqlite", "postgres", "clickhouse", "bigquery", "snowflake"}

// Column is one row of the table.
type Column struct {
	Property string            // Graph's property name
	EDMType  string            // its type in Graph's metadata
	Name     string            // the column's name
	Kind     Kind              // how its values are written, from EDMType
	Sources  map[string]Source // API version ("v1.0", "beta") -> how it gives the property
	Types    map[string]string // destination -> the column's type there
}

// Type is the column's type in destination dest.
func (c Column) Type(dest string) string { return c.Types[dest] }

// Source is how an API version gives a property.
type Source string

// The sources. Graph's list of managedDevices leaves some properties at a
// default (null, 0, false, an empty list, an object of defaults) that is
// not the device's value; the real value comes only from a GET of the one
// device that names the property in $select. Microsoft's own descriptions
// say so, in words that changed over the years ("Return default value in
// LIST managedDevices. Real value only returned in singel device GET call
// with device id and included in select parameter"; "To retrieve actual
// values GET call needs to be made, with device id and included in select
// parameter"; "Individual get call with select query options is needed to
// retrieve actual values"); see metadata_test.go for the copy of the
// metadata they are checked against, and the two properties users found
// empty in lists although no description says so.
const (
	SourceNone   Source = "-"          // the version has no such property
	SourceList   Source = "list"       // the list gives the real value
	SourceGet    Source = "get"        // the list gives a default; the real value comes from a single-device GET (details)
	SourceSecret Source = "get-secret" // as SourceGet, and a secret: fetched only when a config names it
)

// APIVersions are the Graph versions with a source column, in its order.
var APIVersions = []string{"v1.0", "beta"}

// In tells whether version has the property.
func (c Column) In(version string) bool { s := c.Sources[version]; return s != "" && s != SourceNone }

// ListDefault tells whether version's list leaves the property at a
// default: its real value needs details.
func (c Column) ListDefault(version string) bool {
	return c.Sources[version] == SourceGet || c.Sources[version] == SourceSecret
}

// Secret tells a property whose value grants access to something
// (activationLockBypassCode unlocks a supervised Apple device): it is
// fetched only when a config names it.
func (c Column) Secret() bool {
	for _, s := range c.Sources {
		if s == SourceSecret {
			return true
		}
	}
	return false
}

// ListDefaults are the properties version's list leaves at a default, in
// the table's order, the secret ones included.
func ListDefaults(version string) []Column {
	var out []Column
	for _, c := range columns {
		if c.ListDefault(version) {
			out = append(out, c)
		}
	}
	return out
}

// Kind is what a column holds, which decides how a database computes it from
// the device's JSON and how a flattened row writes it.
type Kind string

// The kinds. Numeric and the kinds inferred from a value (KindOf) exist for
// properties the table does not list.
const (
	KindString   Kind = "string"   // a JSON string (enums included)
	KindBoolean  Kind = "boolean"  // true or false
	KindInt64    Kind = "int64"    // a 64-bit integer: never through float64
	KindNumeric  Kind = "numeric"  // a number with a fraction or exponent
	KindDateTime Kind = "datetime" // a DateTimeOffset string; 0001-01-01T00:00:00Z means never
	KindJSON     Kind = "json"     // an object or an array, kept as JSON
)

// Columns returns the table's rows in its order; Columns()[0] is id.
func Columns() []Column { return append([]Column(nil), columns...) }

var columns = mustParse("managed_device.tsv", table)

// DetectedAppColumns are the columns of detected_apps, id first.
func DetectedAppColumns() []Column { return append([]Column(nil), detectedAppColumns...) }

var detectedAppColumns = mustParse("detected_app.tsv", detectedAppTable)

// ByProperty finds a property's column.
func ByProperty(property string) (Column, bool) {
	i, ok := byProperty[property]
	if !ok {
		return Column{}, false
	}
	return columns[i], true
}

var byProperty = func() map[string]int {
	m := make(map[string]int, len(columns))
	for i, c := range columns {
		m[c.Property] = i
	}
	return m
}()

// The columns every table adds to the device's own.
const (
	// TenantIDColumn is the tenant the row came from (metadata
	// intune_tenant_id): the first column of every table's key.
	TenantIDColumn = "tenant_id"
	RawColumn      = "_raw"       // the whole device exactly as Graph sent it
	SyncIDColumn   = "_sync_id"   // the sync that last wrote the row (metadata intune_sync_id)
	SyncedAtColumn = "_synced_at" // that sync's start (metadata intune_sync_started_at)
	DeletedColumn  = "_deleted"   // soft deletion: the device left Intune
	// DetailsFetchedAtColumn is when the device's details were fetched
	// (metadata intune_details_fetched_at); NULL: never.
	DetailsFetchedAtColumn = "_details_fetched_at"
)

// Reserved reports whether name is one of the columns every table adds, so
// that no property's column may take it.
func Reserved(name string) bool {
	switch name {
	case TenantIDColumn, RawColumn, SyncIDColumn, SyncedAtColumn, DeletedColumn, DetailsFetchedAtColumn:
		return true
	}
	return false
}

func mustParse(name, text string) []Column {
	cols, err := parse(text)
	if err != nil {
		panic("schema: " + name + ": " + err.Error())
	}
	return cols
}

func parse(text string) ([]Column, error) {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	header := strings.Split(lines[0], "\t")
	want := append(append([]string{"property", "edm_type", "column"}, APIVersions...), Destinations...)
	if strings.Join(header, ",") != strings.Join(want, ",") {
		return nil, fmt.Errorf("header is %q, want %q", header, want)
	}
	var cols []Column
	seen := map[string]bool{}
	for n, line := range lines[1:] {
		f := strings.Split(line, "\t")
		if len(f) != len(want) {
			return nil, fmt.Errorf("line %d has %d fields, want %d", n+2, len(f), len(want))
		}
		c := Column{Property: f[0], EDMType: f[1], Name: f[2], Kind: kindOfEDM(f[1]), Sources: map[string]Source{}, Types: map[string]string{}}
		for i, version := range APIVersions {
			c.Sources[version] = Source(f[3+i])
		}
		for i, dest := range Destinations {
			c.Types[dest] = f[3+len(APIVersions)+i]
		}
		switch {
		case seen[c.Property] || seen["column "+c.Name]:
			return nil, fmt.Errorf("line %d: %s or %s listed twice", n+2, c.Property, c.Name)
		case ColumnName(c.Property) != c.Name:
			return nil, fmt.Errorf("line %d: column of %s is %s, want %s", n+2, c.Property, c.Name, ColumnName(c.Property))
		case !validSources(c.Sources):
			return nil, fmt.Errorf("line %d: %s's sources are %v, want one of list, get, get-secret or - per version, and no property that no version has", n+2, c.Property, c.Sources)
		case n == 0 && c.Property != "id":
			return nil, fmt.Errorf("the first row must be id, the key")
		}
		seen[c.Property], seen["column "+c.Name] = true, true
		cols = append(cols, c)
	}
	return cols, nil
}

func validSources(sources map[string]Source) bool {
	some := false
	for _, s := range sources {
		switch s {
		case SourceList, SourceGet, SourceSecret:
			some = true
		case SourceNone:
		default:
			return false
		}
	}
	return some
}

// kindOfEDM maps a type of Graph's metadata to a kind: Graph's enums and
// strings are strings, its complex types and collections JSON.
func kindOfEDM(t string) Kind {
	switch t {
	case "Edm.Boolean":
		return KindBoolean
	case "Edm.Int64", "Edm.Int32", "Edm.Int16", "Edm.Byte":
		return KindInt64
	case "Edm.Double", "Edm.Single", "Edm.Decimal":
		return KindNumeric
	case "Edm.DateTimeOffset", "Edm.Date":
		return KindDateTime
	case "Edm.String", "Edm.Guid", "Edm.Duration", "Edm.TimeOfDay", "Edm.Binary":
		return KindString
	}
	if strings.HasPrefix(t, "Collection(") || complexTypes[t] {
		return KindJSON
	}
	return KindString // graph.<enum>: its member's name
}

// complexTypes are the structured types managedDevice uses; every other
// graph.* type it has is an enum.
var complexTypes = map[string]bool{
	"graph.configurationManagerClientEnabledFeatures": true,
	"graph.deviceHealthAttestationState":              true,
	"graph.deviceActionResult":                        true,
	"graph.hardwareInformation":                       true,
}

// ColumnName is a property's column: snake_case, with runs of capitals kept
// together (azureADDeviceId -> azure_ad_device_id, wiFiMacAddress ->
// wi_fi_mac_address). Anything but letters and digits becomes _.
func ColumnName(property string) string {
	r := []rune(property)
	var b strings.Builder
	for i, c := range r {
		upper := c >= 'A' && c <= 'Z'
		if upper && i > 0 {
			prev := r[i-1]
			prevLowerOrDigit := prev >= 'a' && prev <= 'z' || prev >= '0' && prev <= '9'
			prevUpper := prev >= 'A' && prev <= 'Z'
			nextLower := i+1 < len(r) && r[i+1] >= 'a' && r[i+1] <= 'z'
			if prevLowerOrDigit || prevUpper && nextLower {
				b.WriteByte('_')
			}
		}
		switch {
		case upper:
			b.WriteRune(c + 'a' - 'A')
		case c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
