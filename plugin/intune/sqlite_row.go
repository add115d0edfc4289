package intune

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unsafe"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// A device's typed columns for SQLite, computed in Go from the bytes Graph
// sent and bound to the statement, instead of computed by SQLite from _raw
// (json_extract in generated columns): the SQLite the distribution links is
// C translated to Go (modernc.org/sqlite), in which one json_extract per
// column per row cost a quarter of a sync's CPU (bench/RESULTS.md). The
// values are those the generated columns computed (a test compares them),
// but where Graph sends what its schema does not say: a text column given a
// value that is not a string holds its JSON text as Graph wrote it
// (true, 1.50), where json_extract gave SQLite's rendering (1, 1.5); a date
// column takes only ISO 8601 with its T (what Graph writes); a string with a
// lone surrogate escape holds U+FFFD.

// sqliteValue is the value a SQLite column of kind k holds for a property
// whose JSON value is v: nil (NULL) for JSON's null, for a missing value and
// for a value of the wrong type (mismatch tells), and for a date that means
// "never" (0001-01-01). Text is what the JSON string holds, unescaped.
func sqliteValue(k schema.Kind, v []byte) (value any, mismatch bool) {
	if len(v) == 0 || v[0] == 'n' {
		return nil, false
	}
	if !schema.Fits(k, v) {
		return nil, true
	}
	switch k {
	case schema.KindBoolean:
		if v[0] == 't' {
			return int64(1), false
		}
		return int64(0), false
	case schema.KindInt64:
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, true
		}
		return n, false
	case schema.KindNumeric:
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			return nil, true
		}
		return f, false
	case schema.KindDateTime:
		if schema.IsNever(v) {
			return nil, false
		}
		return jsonText(v), false
	case schema.KindJSON:
		return compactJSON(v), false
	}
	if v[0] == '"' {
		return jsonText(v), false
	}
	return compactJSON(v), false
}

// jsonText is what a JSON string literal holds.
func jsonText(lit []byte) string {
	inner := lit[1 : len(lit)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return boundView(inner)
	}
	var s string
	if err := json.Unmarshal(lit, &s); err != nil {
		return string(inner) // not reached: the device was parsed as JSON
	}
	return s
}

// compactJSON is a JSON value without the spaces between its tokens, as
// SQLite's -> operator writes an object or array.
func compactJSON(v []byte) string {
	if v[0] != '{' && v[0] != '[' || !hasJSONSpace(v) {
		return boundView(v) // Graph writes its JSON compact: nearly always this
	}
	var b bytes.Buffer
	b.Grow(len(v))
	if err := json.Compact(&b, v); err != nil {
		return string(v) // not reached: the device was parsed as JSON
	}
	return b.String()
}

// hasJSONSpace tells whether v has a byte that may be space between JSON
// tokens (or is inside a string: compacting then changes nothing).
func hasJSONSpace(v []byte) bool {
	for _, c := range v {
		if c == ' ' || c == '\n' || c == '\t' || c == '\r' {
			return true
		}
	}
	return false
}

// sqliteRow fills, for one device, the value of each schema column the
// table is written with: slots[i] is where in args the schema's i-th column
// goes, -1 for one the statement does not write. A property the schema does
// not list is skipped: intune_new_columns gives it a generated column.
// mismatched is called with each property whose value its column's type
// cannot hold (the column is NULL, the value stays in _raw).
func sqliteRow(body []byte, slots []int, args []any, mismatched func(col *schema.Column, value []byte)) error {
	for i := range slots {
		if slots[i] >= 0 {
			args[slots[i]] = nil // a property a device lacks is NULL
		}
	}
	var lookup columnLookup
	return graph.EachMember(body, func(key []byte, escaped bool, value []byte) {
		if escaped {
			return // the schema's names have no escapes
		}
		col, ok := lookup.find(key)
		if !ok {
			return
		}
		slot := slots[lookup.next-1]
		if slot < 0 {
			return // a column this table does not write (generated, or absent)
		}
		v, mismatch := sqliteValue(col.Kind, value)
		if mismatch && mismatched != nil {
			mismatched(col, value)
		}
		args[slot] = v
	})
}

// boundView is b as a string without copying it, for an argument of the
// upsert only: modernc.org/sqlite copies every text it binds into C memory
// (bindText's libc.CString), which it frees after the statement, and
// database/sql keeps no argument after Exec returns; a message's bytes do
// not change while its batch is written. A copy here would allocate the
// whole device once more per row for nothing.
func boundView(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(unsafe.SliceData(b), len(b))
}
