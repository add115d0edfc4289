package intune

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/graph"
	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

const (
	ncFieldDriver     = "driver"
	ncFieldDSN        = "dsn"
	ncFieldTable      = "table"
	ncFieldAddColumns = "add_columns"
)

func newColumnsSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Integration").
		Summary("Keeps a PostgreSQL or SQLite table of `intune_managed_devices` complete: a device property the table has no column for is named in a WARN line once per sync, counted, and added to the table as a column computed from `_raw`.").
		Description(`
For tables that keep the whole device in a `+"`_raw`"+` column and compute every other column from it
(generated columns), as the shipped `+"`config/sqlite.yaml` and `config/postgres.yaml`"+` create them. The processor
passes every message on unchanged. For each device it looks at the top-level properties:

- A property intune-benthos' managedDevice schema does not list (one Microsoft added since, or one of
  `+"`api_version: beta`"+`) is named once per sync in a WARN line and counted in the metric
  `+"`intune_unmapped_properties`"+` (label `+"`property`"+`). With `+"`add_columns`"+` (the default), the table gets a
  column for it, named in snake_case and typed from the value (text, boolean, bigint, numeric, jsonb for
  objects and arrays, timestamptz for `+"`…DateTime`/`…Date`"+` strings; in SQLite TEXT, INTEGER, REAL). The column
  is generated from `+"`_raw`"+`, so the statement that adds it fills every row already stored, and rows written
  later are filled by the database. A property whose values are all null so far gets its column once a
  value arrives. The metric `+"`intune_columns_added`"+` counts the columns added.
- A value of the wrong JSON type for its column (a string where Graph documents a boolean) leaves the
  column NULL; it is logged once per sync (the property and device, never the value) and counted in
  `+"`intune_property_type_mismatches`"+`.

Either way the device is whole in `+"`_raw`"+`. Deletions (`+"`intune_operation: delete`"+`) pass untouched.
A column that cannot be added (the table is locked, the database is away) is tried again on a later
device; a failure never fails the message.`).
		Field(service.NewStringEnumField(ncFieldDriver, "postgres", "sqlite").
			Description("The database of the table.")).
		Field(service.NewStringField(ncFieldDSN).
			Description("The database's data source name, as the output's `dsn`.").
			Secret()).
		Field(service.NewStringField(ncFieldTable).
			Description("The table (in PostgreSQL, `schema.table` also).").
			Default("managed_devices")).
		Field(service.NewBoolField(ncFieldAddColumns).
			Description("Add a column for each property the table lacks. `false` only reports them.").
			Default(true)).
		Example("PostgreSQL", "As `config/postgres.yaml` uses it.", `
pipeline:
  processors:
    - intune_new_columns:
        driver: postgres
        dsn: ${INTUNE_PG_DSN}
        table: managed_devices
        add_columns: ${INTUNE_ADD_COLUMNS:true}
`)
}

func init() {
	err := service.RegisterProcessor("intune_new_columns", newColumnsSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
			return newNewColumnsProcessor(conf, mgr)
		})
	if err != nil {
		panic(err)
	}
}

// retryColumnsEvery is how long a failed look at the table, or a column
// that could not be added, waits before a later device tries again.
const retryColumnsEvery = 5 * time.Second

// waitForTable bounds how long the first device waits for the output to
// create the table (it does so when it connects, usually within
// milliseconds of the start).
var waitForTable = 10 * time.Second

type newColumnsProcessor struct {
	add    bool
	table  *tableColumns
	report *propertyReport
	infof  func(format string, args ...any) // the logger's; tests read them
	warnf  func(format string, args ...any)
	added  *service.MetricCounter // intune_columns_added

	// known is the table's columns once read: a copy-on-write set, so that
	// every device reads it without a lock.
	known atomic.Pointer[map[string]bool]

	mu        sync.Mutex // serialises reading the table and adding columns
	nextTry   time.Time  // no look at the table before this, after a failure
	waited    bool       // the first device already waited for the table
	lastError string     // the last failure logged, so a retry does not repeat it
}

func newNewColumnsProcessor(conf *service.ParsedConfig, mgr *service.Resources) (*newColumnsProcessor, error) {
	driver, err := conf.FieldString(ncFieldDriver)
	if err != nil {
		return nil, err
	}
	dsn, err := conf.FieldString(ncFieldDSN)
	if err != nil {
		return nil, err
	}
	table, err := conf.FieldString(ncFieldTable)
	if err != nil {
		return nil, err
	}
	add, err := conf.FieldBool(ncFieldAddColumns)
	if err != nil {
		return nil, err
	}
	p := &newColumnsProcessor{
		add:    add,
		report: newPropertyReport(mgr),
		infof:  mgr.Logger().Infof,
		warnf:  mgr.Logger().Warnf,
		added:  mgr.Metrics().NewCounter("intune_columns_added"),
	}
	if add && dsn == "" {
		return nil, fmt.Errorf("%s: the table's data source name is empty", ncFieldDSN)
	}
	// With add_columns off the table is still opened, when named, to add
	// the columns a release added to every table (schema.AddedColumns):
	// without them the output's statement would fail.
	if dsn != "" {
		if p.table, err = openTableColumns(driver, dsn, table); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *newColumnsProcessor) Process(ctx context.Context, msg *service.Message) (service.MessageBatch, error) {
	if op, _ := msg.MetaGet(contract.Operation); op == contract.OpDelete {
		return service.MessageBatch{msg}, nil
	}
	body, err := msg.AsBytes()
	if err != nil {
		return service.MessageBatch{msg}, nil
	}
	syncID, _ := msg.MetaGet(contract.SyncID)
	tableCols := p.tableColumns(ctx)

	var unmapped []unmappedProperty
	var missing []schema.Column // listed by the schema, absent from an older table
	var lookup columnLookup
	err = graph.EachMember(body, func(key []byte, escaped bool, value []byte) {
		if col, ok := lookup.find(key); ok && !escaped {
			if !schema.Fits(col.Kind, value) {
				id, _ := msg.MetaGet(contract.DeviceID)
				p.report.reportMismatch(syncID, id, col, value)
			}
			if tableCols != nil && !tableCols[col.Name] {
				missing = append(missing, *col)
			}
			return
		}
		name, err := graph.DecodeKey(key, escaped)
		if err != nil || isAnnotation(name) {
			return // annotations (@odata.type) describe, they are not properties
		}
		kind, _ := schema.KindOf(name, value)
		unmapped = append(unmapped, unmappedProperty{name: name, kind: kind})
	})
	if err != nil {
		// Not an object: nothing to look at. The output will say what it
		// thinks of it.
		return service.MessageBatch{msg}, nil
	}
	for _, col := range missing {
		p.ensureColumn(ctx, syncID, col)
	}
	if len(unmapped) > 0 {
		for i := range unmapped {
			unmapped[i].where = p.placeUnmapped(ctx, syncID, unmapped[i])
		}
		p.report.reportUnmapped(syncID, unmapped)
	}
	return service.MessageBatch{msg}, nil
}

// placeUnmapped gives an unmapped property its column if it can, and says
// where its values are.
func (p *newColumnsProcessor) placeUnmapped(ctx context.Context, syncID string, u unmappedProperty) string {
	if !p.add {
		return "no column (add_columns is off)"
	}
	named := columnOfUnmapped(u.name)
	switch {
	case named.name == "":
		return "no column: " + named.why
	case p.hasColumn(named.name):
		return "column " + named.name
	case u.kind == "":
		return "no column until a device has a value"
	}
	col, err := schema.ColumnFor(u.name, u.kind)
	if err != nil {
		return "no column: " + err.Error()
	}
	return p.ensureColumn(ctx, syncID, col)
}

// tableColumns returns the table's columns, reading them on first use (and
// again after a failure, at most every retryColumnsEvery); nil while they
// are unknown or add_columns is off. The table is read with add_columns
// off too: reading it adds the columns a release added (loadLocked).
func (p *newColumnsProcessor) tableColumns(ctx context.Context) map[string]bool {
	if p.table == nil {
		return nil
	}
	cols := p.known.Load()
	if cols == nil {
		p.mu.Lock()
		p.loadLocked(ctx)
		p.mu.Unlock()
		cols = p.known.Load()
	}
	if !p.add || cols == nil {
		return nil
	}
	return *cols
}

func (p *newColumnsProcessor) loadLocked(ctx context.Context) map[string]bool {
	if cols := p.known.Load(); cols != nil {
		return *cols
	}
	if time.Now().Before(p.nextTry) {
		return nil
	}
	cols, err := p.table.columns(ctx)
	// The output creates the table when it connects, which can be a moment
	// after the first device arrives: wait for it, once.
	for deadline := time.Now().Add(waitForTable); errors.Is(err, errNoTable) && !p.waited && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
		cols, err = p.table.columns(ctx)
	}
	if errors.Is(err, errNoTable) {
		// The output's init_statement failed (Benthos only warns; a SQLite
		// DSN without _pragma=busy_timeout loses the race between the
		// connections opening a new file): without a table every write
		// would fail until a restart, so create it as the shipped configs do.
		if cerr := p.table.create(ctx); cerr != nil {
			err = fmt.Errorf("%s does not exist and creating it failed: %w", p.table.table, cerr)
		} else {
			p.warnf("intune_new_columns: %s did not exist %s after the first device, so the output's init_statement failed (see its warning); created it as the shipped configs do", p.table.table, waitForTable)
			cols, err = p.table.columns(ctx)
		}
	}
	p.waited = true
	if err == nil {
		err = p.addReleaseColumnsLocked(ctx, cols)
	}
	if err != nil {
		p.failedLocked(err)
		return nil
	}
	p.known.Store(&cols)
	p.lastError = ""
	return cols
}

// addReleaseColumnsLocked adds to a table created by an older release the
// columns every table now has (schema.AddedColumns), and to cols.
func (p *newColumnsProcessor) addReleaseColumnsLocked(ctx context.Context, cols map[string]bool) error {
	for name, typ := range schema.AddedColumns(p.table.driver) {
		if cols[name] {
			continue
		}
		if err := p.table.addPlain(ctx, name, typ); err != nil {
			return err
		}
		cols[name] = true
		p.infof("intune_new_columns: added column %s %s to %s, which an older release created without it", name, typ, p.table.table)
	}
	return nil
}

// hasColumn reports whether the table is known to have the column.
func (p *newColumnsProcessor) hasColumn(name string) bool {
	cols := p.known.Load()
	return cols != nil && (*cols)[name]
}

// ensureColumn adds col to the table unless it has it, and says where the
// property's values are.
func (p *newColumnsProcessor) ensureColumn(ctx context.Context, syncID string, col schema.Column) string {
	if p.hasColumn(col.Name) {
		return "column " + col.Name
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cols := p.loadLocked(ctx)
	switch {
	case cols == nil:
		return "no column yet (the table could not be read; tried again later)"
	case cols[col.Name]:
		return "column " + col.Name
	case time.Now().Before(p.nextTry):
		return "no column yet (adding it failed; tried again later)"
	}
	typ, err := p.table.add(ctx, col)
	if err != nil {
		p.failedLocked(err)
		return "no column yet (adding it failed; tried again later)"
	}
	next := make(map[string]bool, len(cols)+1)
	for k := range cols {
		next[k] = true
	}
	next[col.Name] = true
	p.known.Store(&next)
	p.added.Incr(1)
	p.infof("sync %s: added column %s %s to %s, computed from %s for every row, those already stored included", syncID, col.Name, typ, p.table.table, schema.RawColumn)
	return "column " + col.Name
}

// failedLocked logs a failure once (until another one, or a success) and
// holds further attempts back.
func (p *newColumnsProcessor) failedLocked(err error) {
	p.nextTry = time.Now().Add(retryColumnsEvery)
	if msg := err.Error(); msg != p.lastError {
		p.lastError = msg
		p.warnf("intune_new_columns: %v; devices are still written whole to %s, and a later device tries again", err, schema.RawColumn)
	}
}

func (p *newColumnsProcessor) Close(context.Context) error {
	if p.table != nil {
		return p.table.close()
	}
	return nil
}
