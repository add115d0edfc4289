package intune

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	_ "github.com/lib/pq"  // the postgres driver, as Benthos' sql components register it
	_ "modernc.org/sqlite" // the sqlite driver, likewise

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// tableColumns knows the columns of one PostgreSQL or SQLite table that
// stores the whole device in _raw, and adds one for a property: a generated
// column computed from _raw, so that the statement that adds it also fills
// every row already stored, and every row written later is filled by the
// database without the pipeline's statement changing.
type tableColumns struct {
	driver string // "postgres" or "sqlite"
	table  string // as configured: name, or schema.name in PostgreSQL
	db     *sql.DB
}

// errNoTable is returned while the table does not exist yet: the output
// creates it when it connects, which may be after the first device passed.
var errNoTable = errors.New("the table does not exist yet")

func openTableColumns(driver, dsn, table string) (*tableColumns, error) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("opening the %s database: %w", driver, err)
	}
	// Adding a column is rare and must not compete with the output for
	// SQLite's single writer more than it has to.
	db.SetMaxOpenConns(1)
	return &tableColumns{driver: driver, table: table, db: db}, nil
}

// columns returns the names of the table's columns, generated ones included.
func (t *tableColumns) columns(ctx context.Context) (map[string]bool, error) {
	var rows *sql.Rows
	var err error
	if t.driver == "sqlite" {
		rows, err = t.db.QueryContext(ctx, `SELECT name FROM pragma_table_xinfo(?)`, t.table)
	} else {
		schemaName, name := splitTableName(t.table)
		rows, err = t.db.QueryContext(ctx, `SELECT column_name FROM information_schema.columns
			WHERE table_name = $1 AND table_schema = COALESCE(NULLIF($2, ''), current_schema())`, name, schemaName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", t.table, err)
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("reading the columns of %s: %w", t.table, err)
		}
		cols[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", t.table, err)
	}
	if len(cols) == 0 {
		return nil, errNoTable
	}
	if !cols[schema.RawColumn] {
		return nil, fmt.Errorf("%s has no %s column: it was created by an intune-benthos before the whole device was kept; rename it (ALTER TABLE %s RENAME TO %s_old) and sync again to rebuild it",
			t.table, schema.RawColumn, t.table, t.table)
	}
	return cols, nil
}

// add adds col as a column computed from _raw and returns its type.
func (t *tableColumns) add(ctx context.Context, col schema.Column) (string, error) {
	typ := col.Type(t.driver)
	var stmt string
	if t.driver == "sqlite" {
		// SQLite adds only VIRTUAL generated columns to a table; they are
		// computed when read, which fills old rows just as well.
		stmt = fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s %s GENERATED ALWAYS AS (%s) VIRTUAL`,
			t.qualified(), schema.QuoteIdent(col.Name), typ, col.Expr(t.driver))
	} else {
		stmt = fmt.Sprintf(`ALTER TABLE %s ADD COLUMN IF NOT EXISTS %s %s GENERATED ALWAYS AS (%s) STORED`,
			t.qualified(), schema.QuoteIdent(col.Name), typ, col.Expr(t.driver))
	}
	if _, err := t.db.ExecContext(ctx, stmt); err != nil {
		if t.driver == "sqlite" && strings.Contains(err.Error(), "duplicate column name") {
			return typ, nil // another process added it first
		}
		return "", fmt.Errorf("adding column %s to %s: %w", col.Name, t.table, err)
	}
	return typ, nil
}

// addPlain adds a column that the pipeline writes (not computed), NULL in
// the rows already stored.
func (t *tableColumns) addPlain(ctx context.Context, name, typ string) error {
	stmt := fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s %s`, t.qualified(), schema.QuoteIdent(name), typ)
	if _, err := t.db.ExecContext(ctx, stmt); err != nil {
		if strings.Contains(err.Error(), "duplicate column name") || strings.Contains(err.Error(), "already exists") {
			return nil // another process added it first
		}
		return fmt.Errorf("adding column %s to %s: %w", name, t.table, err)
	}
	return nil
}

// qualified is the table's name quoted for a statement, with its schema
// in PostgreSQL.
func (t *tableColumns) qualified() string {
	if t.driver == "sqlite" {
		return schema.QuoteIdent(t.table)
	}
	schemaName, name := splitTableName(t.table)
	if schemaName != "" {
		return schema.QuoteIdent(schemaName) + "." + schema.QuoteIdent(name)
	}
	return schema.QuoteIdent(name)
}

// create creates the table as the shipped configs' init_statement does.
func (t *tableColumns) create(ctx context.Context) error {
	_, err := t.db.ExecContext(ctx, schema.CreateTable(t.driver, t.table, ""))
	return err
}

func (t *tableColumns) close() error { return t.db.Close() }

// splitTableName splits PostgreSQL's schema.table.
func splitTableName(table string) (schemaName, name string) {
	if i := strings.LastIndexByte(table, '.'); i >= 0 {
		return table[:i], table[i+1:]
	}
	return "", table
}
