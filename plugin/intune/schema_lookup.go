package intune

import "github.com/intune-benthos/intune-benthos/plugin/intune/schema"

// The schema's columns as the processors look them up once per property of
// every device: intune_new_columns and intune_flatten share them.

// knownColumns is every property of the schema by name, and
// schemaOrder the same columns in the schema's order.
var knownColumns, schemaOrder = func() (map[string]*schema.Column, []*schema.Column) {
	m := map[string]*schema.Column{}
	var order []*schema.Column
	for _, c := range schema.Columns() {
		c := c
		m[c.Property] = &c
		order = append(order, &c)
	}
	return m, order
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
	col, ok := knownColumns[string(key)]
	if ok {
		for i, c := range schemaOrder {
			if c == col {
				l.next = i + 1
				break
			}
		}
	}
	return col, ok
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
