// Package schema is the one description of the managed_devices table that
// every table-shaped destination shares: which Graph property goes into which
// column, of which type in each database, and how a database computes the
// column from the whole device. The shipped configs are generated from it
// (internal/configgen), and the processors that keep tables complete at run
// time (intune_new_columns, intune_flatten) read it, so the configs, the
// column table in docs/destinations.md and the processors cannot drift apart.
//
// The table itself is managed_device.tsv, one row per property of Graph
// v1.0's microsoft.graph.managedDevice:
//
//	property    the property's name in Graph's JSON
//	edm_type    its type in Graph's metadata (Edm.String, Edm.Int64, an enum, a complex type, a collection)
//	column      the column's name (snake_case of the property)
//	list_call   "empty" when Graph's list call leaves it null or 0 (it is filled only by a single-device GET)
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
	ListCall string            // "filled", or "empty" when Graph's list call leaves it null or 0
	Types    map[string]string // destination -> the column's type there
}

// Type is the column's type in destination dest.
func (c Column) Type(dest string) string { return c.Types[dest] }

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
	RawColumn      = "_raw"       // the whole device exactly as Graph sent it
	SyncIDColumn   = "_sync_id"   // the sync that last wrote the row (metadata intune_sync_id)
	SyncedAtColumn = "_synced_at" // that sync's start (metadata intune_sync_started_at)
	DeletedColumn  = "_deleted"   // soft deletion: the device left Intune
)

// Reserved reports whether name is one of the columns every table adds, so
// that no property's column may take it.
func Reserved(name string) bool {
	switch name {
	case RawColumn, SyncIDColumn, SyncedAtColumn, DeletedColumn:
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
	want := append([]string{"property", "edm_type", "column", "list_call"}, Destinations...)
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
		c := Column{Property: f[0], EDMType: f[1], Name: f[2], ListCall: f[3], Kind: kindOfEDM(f[1]), Types: map[string]string{}}
		for i, dest := range Destinations {
			c.Types[dest] = f[4+i]
		}
		switch {
		case seen[c.Property] || seen["column "+c.Name]:
			return nil, fmt.Errorf("line %d: %s or %s listed twice", n+2, c.Property, c.Name)
		case ColumnName(c.Property) != c.Name:
			return nil, fmt.Errorf("line %d: column of %s is %s, want %s", n+2, c.Property, c.Name, ColumnName(c.Property))
		case c.ListCall != "filled" && c.ListCall != "empty":
			return nil, fmt.Errorf("line %d: list_call is %q, want filled or empty", n+2, c.ListCall)
		case n == 0 && c.Property != "id":
			return nil, fmt.Errorf("the first row must be id, the key")
		}
		seen[c.Property], seen["column "+c.Name] = true, true
		cols = append(cols, c)
	}
	return cols, nil
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
