package intune

import (
	"context"
	"fmt"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

const (
	flFieldNested    = "nested"
	flFieldRawColumn = "raw_column"
)

func flattenSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Parsing").
		Summary("Turns a device of `intune_managed_devices` into a flat row for a warehouse table: one snake_case column per top-level property, the whole device in `_raw`, and the sync's id and start time.").
		Description(`
The row is a JSON object written in one pass over the device's bytes, with column names computed once
per property, not per device:

- Each top-level property becomes a column named as intune-benthos' managedDevice schema names it
  (` + "`azureADDeviceId` → `azure_ad_device_id`" + `); a property the schema does not list gets its snake_case name
  too, is named once per sync in a WARN line and counted in ` + "`intune_unmapped_properties`" + `.
- Strings, numbers and booleans are copied as Graph sent them: 64-bit integers keep every digit.
- Dates that mean "never" (` + "`0001-01-01T00:00:00Z`" + `) become null; other dates keep at most six
  fractional digits (microseconds, what BigQuery and PostgreSQL hold; Graph may send seven).
- Objects and arrays stay JSON values (` + "`nested: json`" + `, for JSON and VARIANT columns) or become strings
  holding their JSON (` + "`nested: text`" + `, for text columns); the same goes for ` + "`_raw`" + `.
- A value of the wrong JSON type for its column (a string where Graph documents a boolean) becomes null,
  so that a load job does not refuse the batch; it is logged once per sync and counted in
  ` + "`intune_property_type_mismatches`" + `. ` + "`_raw`" + ` keeps it.
- ` + "`tenant_id`, `_sync_id` and `_synced_at`" + ` come from the metadata ` + "`intune_tenant_id`, `intune_sync_id` and `intune_sync_started_at`" + `,
  ` + "`_details_fetched_at`" + ` from ` + "`intune_details_fetched_at`" + ` (null when the device has no details).

A deletion (` + "`intune_operation: delete`" + `) becomes ` + "`{\"id\": ..., \"_deleted\": true, \"tenant_id\": ..., \"_sync_id\": ..., \"_synced_at\": ...}`" + `.`).
		Field(service.NewStringEnumField(flFieldNested, "text", "json").
			Description("How objects and arrays (and `_raw`) are written: `text`, a string holding their JSON; `json`, the JSON value itself.").
			Default("text")).
		Field(service.NewStringField(flFieldRawColumn).
			Description("The column that holds the whole device exactly as Graph sent it; empty leaves it out.").
			Default(schema.RawColumn))
}

func init() {
	err := service.RegisterProcessor("intune_flatten", flattenSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
			nested, err := conf.FieldString(flFieldNested)
			if err != nil {
				return nil, err
			}
			raw, err := conf.FieldString(flFieldRawColumn)
			if err != nil {
				return nil, err
			}
			return newFlattenProcessor(nested, raw, mgr), nil
		})
	if err != nil {
		panic(err)
	}
}

func newFlattenProcessor(nested, rawColumn string, mgr *service.Resources) *flattenProcessor {
	report := newPropertyReport(mgr)
	report.note = "; written to each row under their snake_case names, which a table without such columns leaves out"
	return &flattenProcessor{nestedAsText: nested == "text", rawColumn: rawColumn, report: report}
}

type flattenProcessor struct {
	nestedAsText bool
	rawColumn    string
	report       *propertyReport
}

func (p *flattenProcessor) Process(_ context.Context, msg *service.Message) (service.MessageBatch, error) {
	body, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	syncID, _ := msg.MetaGet(contract.SyncID)
	startedAt, _ := msg.MetaGet(contract.SyncStartedAt)
	tenant, _ := msg.MetaGet(contract.TenantID)
	if op, _ := msg.MetaGet(contract.Operation); op == contract.OpDelete {
		id, _ := msg.MetaGet(contract.DeviceID)
		row := append([]byte(`{"id":`), appendJSONString(nil, id)...)
		row = append(row, `,"`+schema.DeletedColumn+`":true`...)
		msg.SetBytes(p.appendSync(row, tenant, syncID, startedAt))
		return service.MessageBatch{msg}, nil
	}

	// A row is a little larger than the device, twice with _raw.
	row := make([]byte, 0, 2*len(body)+256)
	row = append(row, '{')
	var unmapped []unmappedProperty
	var lookup columnLookup
	err = graph.EachMember(body, func(key []byte, escaped bool, value []byte) {
		kind, name := schema.Kind(""), ""
		if col, ok := lookup.find(key); ok && !escaped {
			kind, name = col.Kind, col.Name
			if !schema.Fits(kind, value) {
				id, _ := msg.MetaGet(contract.DeviceID)
				p.report.reportMismatch(syncID, id, col, value)
				value = jsonNull
			}
		} else {
			prop, err := graph.DecodeKey(key, escaped)
			if err != nil || isAnnotation(prop) {
				return
			}
			kind, _ = schema.KindOf(prop, value)
			col := columnOfUnmapped(prop)
			where := ""
			if col.name == "" {
				where = "not in the row: " + col.why
			}
			unmapped = append(unmapped, unmappedProperty{name: prop, kind: kind, where: where})
			if col.name == "" {
				return
			}
			name = col.name
		}
		if len(row) > 1 {
			row = append(row, ',')
		}
		row = append(row, '"')
		row = append(row, name...)
		row = append(row, '"', ':')
		row = p.appendValue(row, kind, value)
	})
	if err != nil {
		id, _ := msg.MetaGet(contract.DeviceID)
		return nil, fmt.Errorf("device %s is not a JSON object: %w", id, err)
	}
	if len(unmapped) > 0 {
		p.report.reportUnmapped(syncID, unmapped)
	}
	if p.rawColumn != "" {
		if len(row) > 1 {
			row = append(row, ',')
		}
		row = appendJSONString(row, p.rawColumn)
		row = append(row, ':')
		if p.nestedAsText {
			row = appendJSONBytes(row, body)
		} else {
			row = append(row, body...)
		}
	}
	row = append(row, `,"`+schema.DetailsFetchedAtColumn+`":`...)
	if at, ok := msg.MetaGet(contract.DetailsFetchedAt); ok {
		row = appendJSONString(row, at)
	} else {
		row = append(row, jsonNull...)
	}
	msg.SetBytes(p.appendSync(row, tenant, syncID, startedAt))
	return service.MessageBatch{msg}, nil
}

var jsonNull = []byte("null")

// appendValue writes one property's value as its column holds it.
func (p *flattenProcessor) appendValue(row []byte, kind schema.Kind, value []byte) []byte {
	switch {
	case len(value) == 0 || value[0] == 'n':
		return append(row, jsonNull...)
	case kind == schema.KindDateTime && value[0] == '"':
		if schema.IsNever(value) {
			return append(row, jsonNull...)
		}
		return appendMicroseconds(row, value)
	case (value[0] == '{' || value[0] == '[') && p.nestedAsText:
		return appendJSONBytes(row, value)
	}
	return append(row, value...)
}

// appendSync closes a row with its tenant and the sync's id and start.
func (p *flattenProcessor) appendSync(row []byte, tenant, syncID, startedAt string) []byte {
	if len(row) > 1 {
		row = append(row, ',')
	}
	row = append(row, `"`+schema.TenantIDColumn+`":`...)
	row = appendJSONString(row, tenant)
	row = append(row, `,"`+schema.SyncIDColumn+`":`...)
	row = appendJSONString(row, syncID)
	row = append(row, `,"`+schema.SyncedAtColumn+`":`...)
	row = appendJSONString(row, startedAt)
	return append(row, '}')
}

func (p *flattenProcessor) Close(context.Context) error { return nil }

// appendMicroseconds copies a date string literal, cutting its fraction of
// a second to six digits.
func appendMicroseconds(row, lit []byte) []byte {
	dot := -1
	for i, c := range lit {
		if c == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		return append(row, lit...)
	}
	end := dot + 1
	for end < len(lit) && lit[end] >= '0' && lit[end] <= '9' {
		end++
	}
	if end-dot-1 <= 6 {
		return append(row, lit...)
	}
	row = append(row, lit[:dot+7]...)
	return append(row, lit[end:]...)
}

// appendJSONString writes s as a JSON string literal.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		b = appendEscaped(b, s[i])
	}
	return append(b, '"')
}

// appendJSONBytes writes raw JSON text as a JSON string holding it.
func appendJSONBytes(b, raw []byte) []byte {
	b = append(b, '"')
	for _, c := range raw {
		b = appendEscaped(b, c)
	}
	return append(b, '"')
}

func appendEscaped(b []byte, c byte) []byte {
	switch {
	case c == '"' || c == '\\':
		return append(b, '\\', c)
	case c == '\n':
		return append(b, '\\', 'n')
	case c == '\r':
		return append(b, '\\', 'r')
	case c == '\t':
		return append(b, '\\', 't')
	case c < 0x20:
		const hex = "0123456789abcdef"
		return append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
	}
	return append(b, c)
}
