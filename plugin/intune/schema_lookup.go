package intune

import (
	"sync"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// The schema's columns as the processors look them up once per property of
// every device: intune_new_columns and intune_flatten share them.

// schemaOrder is the schema's columns in its order, and knownColumns the
// index of each by property name.
var schemaOrder, knownColumns = func() ([]*schema.Column, map[string]int) {
	var order []*schema.Column
	index := map[string]int{}
	for _, c := range schema.Columns() {
		c := c
		index[c.Property] = len(order)
		order = append(order, &c)
	}
	return order, index
}()

// columnLookup finds the schema's column of each member of one device.
// Graph writes a device's properties in the order the schema lists them, so
// the column after the last one found is nearly always the next one: a
// comparison of a few bytes instead of hashing every key.
type columnLookup struct{ next int }

func (l *columnLookup) find(key []byte) (*schema.Column, bool) {
	if l.next < len(schemaOrder) && string(key) == schemaOrder[l.next].Property {
		l.next++
		return schemaOrder[l.next-1], true
	}
	i, ok := knownColumns[string(key)]
	if !ok {
		return nil, false
	}
	l.next = i + 1
	return schemaOrder[i], true
}

// unmappedColumn is the column name a property the schema does not list
// gets, or why it gets none; computed once per property, not per device.
type unmappedColumn struct {
	name string
	why  string // set when name is empty
}

var unmappedColumns sync.Map // property -> unmappedColumn

// columnOfUnmapped names the column of a property the schema does not
// list: its snake_case name, unless that is not a usable name
// (schema.ColumnFor) or would be a column the schema gives another property.
func columnOfUnmapped(prop string) unmappedColumn {
	if c, ok := unmappedColumns.Load(prop); ok {
		return c.(unmappedColumn)
	}
	var c unmappedColumn
	if col, err := schema.ColumnFor(prop, schema.KindString); err != nil {
		c.why = err.Error()
	} else if taken := columnTaken(col.Name); taken != "" {
		c.why = "its column " + col.Name + " is " + taken + "'s"
	} else {
		c.name = col.Name
	}
	unmappedColumns.Store(prop, c)
	return c
}

func columnTaken(name string) string {
	for _, c := range schemaOrder {
		if c.Name == name {
			return c.Property
		}
	}
	return ""
}

// isAnnotation tells an OData annotation (@odata.type, name@odata.context)
// from a property.
func isAnnotation(name string) bool {
	for i := 0; i < len(name); i++ {
		if name[i] == '@' {
			return true
		}
	}
	return false
}
