package intune

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/benthosdev/benthos/v4/public/service"
)

const (
	mtFieldDriver       = "driver"
	mtFieldDSN          = "dsn"
	mtFieldTables       = "tables"
	mtFieldLegacyTenant = "legacy_tenant_id"
	mtFieldPlainColumns = "plain_device_columns"
)

func migrateTablesSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Integration").
		Summary("Brings the PostgreSQL or SQLite tables of an earlier intune-benthos to this release's shape before any message reaches them: a table keyed by `id` alone gets `tenant_id`, filled with the tenant its rows came from, and the key (`tenant_id`, ...).").
		Description(`
The shipped ` + "`config/sqlite.yaml`, `config/postgres.yaml`, `config/apps-sqlite.yaml` and `config/apps-postgres.yaml`" + `
run it first. Each listed table that exists and has no ` + "`tenant_id`" + ` column is migrated in one transaction:

- PostgreSQL: ` + "`ALTER TABLE ... ADD COLUMN tenant_id`" + `, every row given ` + "`legacy_tenant_id`" + `, and the primary key
  rebuilt as (` + "`tenant_id`" + `, its columns).
- SQLite, which cannot change a primary key in place: a new table from the old one's own statement (so
  that every column added since stays), the rows copied, the old table dropped, the new one renamed,
  its indexes made again.

With ` + "`plain_device_columns`" + ` (SQLite, ` + "`config/sqlite.yaml`" + `), a table whose device columns an earlier release had
SQLite compute from ` + "`_raw`" + ` (STORED generated columns) is rebuilt the same way with them as plain columns,
their values kept, for ` + "`intune_sqlite`" + ` to write: a column whose definition is not exactly the one a
release wrote (the user's own) stays as it is.

The row count is checked before the commit (equal, every row tagged); otherwise nothing changes. A
table that does not exist is left to the output to create, and one that has ` + "`tenant_id`" + ` is left as it
is. The migration runs when the processor starts, or, when the database cannot be reached then, before
the first message passes: no message reaches the tables before it is done. Messages pass unchanged.`).
		Field(service.NewStringEnumField(mtFieldDriver, "postgres", "sqlite").
			Description("The database of the tables.")).
		Field(service.NewStringField(mtFieldDSN).
			Description("The database's data source name, as the output's `dsn`.").
			Secret()).
		Field(service.NewStringListField(mtFieldTables).
			Description("The tables to migrate (in PostgreSQL, `schema.table` also).").
			Example([]string{"managed_devices", "managed_devices_rejected"})).
		Field(service.NewStringField(mtFieldLegacyTenant).
			Description("The tenant whose rows a table from before `tenant_id` holds: the one tenant that release read. Empty refuses to migrate such a table, naming it.").
			Example("${INTUNE_TENANT_ID:}").
			Default("")).
		Field(service.NewBoolField(mtFieldPlainColumns).
			Description("SQLite: make the device columns an earlier release generated from `_raw` plain columns, which the output `intune_sqlite` writes (computing them in SQLite cost a quarter of a sync's CPU).").
			Default(false))
}

func init() {
	err := service.RegisterProcessor("intune_migrate_tables", migrateTablesSpec(),
		func(conf *service.ParsedConfig, mgr *service.Resources) (service.Processor, error) {
			return newMigrateTablesProcessor(conf, mgr)
		})
	if err != nil {
		panic(err)
	}
}

// migrateAtStartWithin bounds the migration tried when the processor
// starts; past it, or with the database away, the first message waits for
// it instead.
var migrateAtStartWithin = 2 * time.Minute

type migrateTablesProcessor struct {
	tables []*tableColumns
	legacy string
	plain  bool // plain_device_columns
	log    *service.Logger

	mu   sync.Mutex
	done bool
	last string // the last failure logged, so that a retry does not repeat it
}

func newMigrateTablesProcessor(conf *service.ParsedConfig, mgr *service.Resources) (*migrateTablesProcessor, error) {
	driver, err := conf.FieldString(mtFieldDriver)
	if err != nil {
		return nil, err
	}
	dsn, err := conf.FieldString(mtFieldDSN)
	if err != nil {
		return nil, err
	}
	names, err := conf.FieldStringList(mtFieldTables)
	if err != nil {
		return nil, err
	}
	p := &migrateTablesProcessor{log: mgr.Logger()}
	if p.legacy, err = conf.FieldString(mtFieldLegacyTenant); err != nil {
		return nil, err
	}
	if p.plain, err = conf.FieldBool(mtFieldPlainColumns); err != nil {
		return nil, err
	}
	if p.plain && driver != "sqlite" {
		return nil, fmt.Errorf("%s: only SQLite tables are written by intune_sqlite", mtFieldPlainColumns)
	}
	if dsn == "" {
		return nil, fmt.Errorf("%s: the tables' data source name is empty", mtFieldDSN)
	}
	for _, name := range names {
		t, err := openTableColumns(driver, dsn, name)
		if err != nil {
			return nil, err
		}
		p.tables = append(p.tables, t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), migrateAtStartWithin)
	defer cancel()
	if err := p.migrate(ctx); errors.Is(err, errLegacyTenantUnknown) {
		// Nothing can fix it but the config: refuse to start.
		_ = p.Close(ctx)
		return nil, err
	} else if err != nil {
		p.log.Warnf("The tables are migrated before the first message instead: %v", err)
	}
	return p, nil
}

// migrate migrates every table that needs it, once.
func (p *migrateTablesProcessor) migrate(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done {
		return nil
	}
	for _, t := range p.tables {
		migrated, rows, err := migrateTenantTable(ctx, t, p.legacy)
		if err != nil {
			return err
		}
		if migrated {
			p.log.Warnf("Table %s migrated: it has tenant_id now, first in its key; its %d rows were kept and given tenant %s", t.table, rows, p.legacy)
		}
		if !p.plain {
			continue
		}
		made, rows, err := migratePlainColumns(ctx, t)
		if err != nil {
			return err
		}
		if made > 0 {
			p.log.Warnf("Table %s migrated: %d device columns SQLite computed from _raw are plain columns now, which intune_sqlite writes; its %d rows were kept", t.table, made, rows)
		}
	}
	p.done = true
	return nil
}

// Process holds each message until the tables are migrated: one written
// to a table of the old shape would be refused (its ON CONFLICT names a
// key the table does not have).
func (p *migrateTablesProcessor) Process(ctx context.Context, msg *service.Message) (service.MessageBatch, error) {
	for {
		err := p.migrate(ctx)
		if err == nil {
			return service.MessageBatch{msg}, nil
		}
		p.mu.Lock()
		if err.Error() != p.last {
			p.last = err.Error()
			p.log.Errorf("%v; messages wait, and the migration is tried again every %s", err, retryColumnsEvery)
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retryColumnsEvery):
		}
	}
}

func (p *migrateTablesProcessor) Close(context.Context) error {
	var errs []error
	for _, t := range p.tables {
		errs = append(errs, t.close())
	}
	return errors.Join(errs...)
}
