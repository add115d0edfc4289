package intune

import (
	"sort"
	"strings"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// propertyReport tells the user, once per sync, about what a table cannot
// hold as Graph sent it: properties the schema has no column for (new in
// Graph, or from api_version: beta), and values of the wrong type for their
// column. Nothing is lost either way, since the whole device is kept in
// _raw; the report is so that nobody finds out from a query months later.
// Each property is named once per sync (one WARN line when a sync's devices
// agree, as they do), and every device is counted in a metric.
type propertyReport struct {
	warnf      func(format string, args ...any) // the logger's Warnf; tests read what it says
	unmapped   *service.MetricCounter           // intune_unmapped_properties{property}: devices carrying a property the schema has no column for
	mismatched *service.MetricCounter           // intune_property_type_mismatches{property}: values their column's type cannot hold

	// note ends each line about unmapped properties: what the processor
	// did with them besides keeping them in _raw.
	note string

	mu    sync.Mutex
	syncs []*syncNames // the latest few syncs, newest last
}

// syncNames is what a sync's WARN lines have named so far.
type syncNames struct {
	id     string
	new    map[string]bool // properties named as unmapped
	typing map[string]bool // properties whose odd value was logged
}

// rememberSyncs bounds the syncs remembered: the devices of one sync can
// still be in the pipeline when the next starts, never those of three.
const rememberSyncs = 3

func newPropertyReport(mgr *service.Resources) *propertyReport {
	return &propertyReport{
		warnf:      mgr.Logger().Warnf,
		unmapped:   mgr.Metrics().NewCounter("intune_unmapped_properties", "property"),
		mismatched: mgr.Metrics().NewCounter("intune_property_type_mismatches", "property"),
	}
}

// unmappedProperty is one property of a device that the schema does not list.
type unmappedProperty struct {
	name  string
	kind  schema.Kind // inferred from its value; "" for null
	where string      // what became of it, e.g. "column hardware_information jsonb added"
}

// reportUnmapped counts a device's unmapped properties and names, in one
// WARN line, those not yet named in its sync.
func (r *propertyReport) reportUnmapped(syncID string, props []unmappedProperty) {
	for _, p := range props {
		r.unmapped.Incr(1, p.name)
	}
	r.mu.Lock()
	named := r.sync(syncID)
	var fresh []string
	for _, p := range props {
		if named.new[p.name] {
			continue
		}
		named.new[p.name] = true
		fresh = append(fresh, describeUnmapped(p))
	}
	r.mu.Unlock()
	if len(fresh) == 0 {
		return
	}
	sort.Strings(fresh)
	r.warnf("sync %s: %d device %s with no column in intune-benthos' managedDevice schema, kept whole in %s: %s%s",
		syncID, len(fresh), plural(len(fresh), "property", "properties"), schema.RawColumn, strings.Join(fresh, ", "), r.note)
}

// reportMismatch counts a value its column's kind cannot hold, and logs the
// first one of each property in a sync.
func (r *propertyReport) reportMismatch(syncID, deviceID string, col *schema.Column, value []byte) {
	r.mismatched.Incr(1, col.Property)
	r.mu.Lock()
	named := r.sync(syncID)
	first := !named.typing[col.Property]
	named.typing[col.Property] = true
	r.mu.Unlock()
	// The value itself is not logged: device data (an activation lock
	// bypass code, say) has no place in logs.
	if first {
		r.warnf("sync %s: device %s has %s as %s, which its %s column %s cannot hold: the column is NULL, %s keeps the value (further devices counted in intune_property_type_mismatches)",
			syncID, deviceID, col.Property, jsonType(value), col.Kind, col.Name, schema.RawColumn)
	}
}

// sync returns what syncID's lines have named, forgetting the oldest sync
// when a new one starts. Callers hold mu.
func (r *propertyReport) sync(syncID string) *syncNames {
	for _, s := range r.syncs {
		if s.id == syncID {
			return s
		}
	}
	s := &syncNames{id: syncID, new: map[string]bool{}, typing: map[string]bool{}}
	if len(r.syncs) == rememberSyncs {
		r.syncs = r.syncs[1:]
	}
	r.syncs = append(r.syncs, s)
	return s
}

func describeUnmapped(p unmappedProperty) string {
	kind := string(p.kind)
	if kind == "" {
		kind = "null so far"
	}
	s := p.name + " (" + kind
	if p.where != "" {
		s += "; " + p.where
	}
	return s + ")"
}

// jsonType names the JSON type of a raw value, for log lines that must not
// show the value.
func jsonType(value []byte) string {
	if len(value) == 0 {
		return "nothing"
	}
	switch c := value[0]; {
	case c == '"':
		return "a string"
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	}
	return "a number"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
