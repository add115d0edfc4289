package intune

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/benthosdev/benthos/v4/public/service"
)

const (
	sqFieldDSN           = "dsn"
	sqFieldTable         = "table"
	sqFieldInitStatement = "init_statement"
)

func sqliteOutputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Writes each device of `intune_managed_devices` into a SQLite table: a row per (tenant, device), inserted or updated, with every column the table has for a property computed from the device.").
		Description(`
Each batch is one transaction of one prepared upsert per device. The columns written are the table's
own, read from SQLite before the first batch, so that a table created by an earlier release, or
given columns since, is written as it is:

- ` + "`tenant_id`, `id`, `_sync_id`, `_synced_at` and `_details_fetched_at`" + ` come from the metadata
  ` + "`intune_tenant_id`, `intune_device_id`, `intune_sync_id`, `intune_sync_started_at` and `intune_details_fetched_at`" + `;
  ` + "`_raw`" + ` is the device exactly as Graph sent it, and ` + "`_deleted`" + ` is 0.
- A column named as intune-benthos' managedDevice schema names a property gets that property's value,
  typed in Go, as a generated column would compute it: booleans 1 or 0, 64-bit integers exact, dates as
  Graph wrote them, objects and arrays as compact JSON, a text column given something else than a string
  its JSON text; null for JSON's null, a missing property, a date that means "never"
  (` + "`0001-01-01T00:00:00Z`" + `) and a value of the wrong type, which is logged once per sync and counted in
  ` + "`intune_property_type_mismatches`" + ` (` + "`_raw`" + ` keeps it).
- A generated column (what ` + "`intune_new_columns`" + ` adds, or every column of a table from a release that
  computed them in SQLite) is left to SQLite, and any other column to its default.

A device SQLite refuses for its content (SQLITE_TOOBIG, a constraint) fails alone, as a batch error
that ` + "`intune_dead_letter`" + ` routes to its dead letter, and the rest of its batch is committed (unless the
refusal rolled the transaction back, a trigger's RAISE(ROLLBACK): then the rest is sent again); any other
error (a locked or busy database, a disk error) fails the whole batch, which the input sends again.
A deletion (` + "`intune_operation: delete`" + `) is refused: route it to a statement of its own.`).
		Field(service.NewStringField(sqFieldDSN).
			Description("The SQLite database, as Benthos' `sql_insert` takes it (modernc.org/sqlite), e.g. `file:intune.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)`.")).
		Field(service.NewStringField(sqFieldTable).
			Description("The table; its primary key is the upsert's conflict target.").
			Default("managed_devices")).
		Field(service.NewStringField(sqFieldInitStatement).
			Description("Statements run once when the output connects, e.g. the table's CREATE TABLE IF NOT EXISTS.").
			Default(""))
}

func init() {
	err := service.RegisterBatchOutput("intune_sqlite", sqliteOutputSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			out, err := newSQLiteOutput(conf, mgr)
			// SQLite has one writer: parallel batches would only wait on its lock.
			return out, service.BatchPolicy{}, 1, err
		})
	if err != nil {
		panic(err)
	}
}

type sqliteOutput struct {
	dsn, table, initStatement string
	report                    *propertyReport

	mu     sync.Mutex
	db     *sql.DB
	upsert *sqliteUpsert // nil until the first batch, and after an error that may be the table's
}

func newSQLiteOutput(conf *service.ParsedConfig, mgr *service.Resources) (*sqliteOutput, error) {
	o := &sqliteOutput{report: newPropertyReport(mgr)}
	var err error
	if o.dsn, err = conf.FieldString(sqFieldDSN); err != nil {
		return nil, err
	}
	if o.table, err = conf.FieldString(sqFieldTable); err != nil {
		return nil, err
	}
	if o.initStatement, err = conf.FieldString(sqFieldInitStatement); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *sqliteOutput) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.db != nil {
		return nil
	}
	db, err := sql.Open("sqlite", o.dsn)
	if err != nil {
		return fmt.Errorf("opening the SQLite database: %w", err)
	}
	// One connection: the transaction of a batch and the statements that
	// describe the table run on it, and SQLite has one writer anyway.
	db.SetMaxOpenConns(1)
	if strings.TrimSpace(o.initStatement) != "" {
		if _, err := db.ExecContext(ctx, o.initStatement); err != nil {
			_ = db.Close()
			return fmt.Errorf("running init_statement: %w", err)
		}
	}
	o.db = db
	return nil
}

func (o *sqliteOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.db == nil {
		return service.ErrNotConnected
	}
	if o.upsert == nil {
		// Read the table at the first batch, not at Connect: the
		// processors before this output (intune_migrate_tables,
		// intune_new_columns) change it before any device gets here.
		u, err := newSQLiteUpsert(ctx, o.db, o.table)
		if err != nil {
			return err
		}
		o.upsert = u
	}
	err := o.upsert.write(ctx, o.db, batch, o.report)
	var berr *service.BatchError
	if err != nil && !errors.As(err, &berr) {
		o.upsert = nil // read the table again: it may have been changed
	}
	return err
}

func (o *sqliteOutput) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.db == nil {
		return nil
	}
	err := o.db.Close()
	o.db = nil
	return err
}
