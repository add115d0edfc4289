package intune

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// A table a release before tenants made is keyed by the device's (or app's,
// or pair's) own id and has no tenant_id. migrateTenantTable gives it the
// column and the key (tenant_id, ...) in place, in one transaction: every
// row kept, tagged with the tenant it came from (the one tenant that
// release read), the row count checked before the commit.

// errLegacyTenantUnknown is a table to migrate without a tenant to give its
// rows.
var errLegacyTenantUnknown = errors.New("its rows were written before tenant_id, by one tenant that nothing here names")

// migrateTenantTable migrates table if it exists and has no tenant_id;
// migrated tells whether it did, rows how many rows the table holds.
func migrateTenantTable(ctx context.Context, t *tableColumns, legacyTenant string) (migrated bool, rows int64, err error) {
	cols, err := t.describe(ctx)
	if err != nil || len(cols) == 0 || cols.has(schema.TenantIDColumn) {
		return false, 0, err
	}
	if legacyTenant == "" {
		return false, 0, fmt.Errorf("table %s must be migrated to hold tenant_id, but %w: set tenant_id (INTUNE_TENANT_ID) to that tenant for one run", t.table, errLegacyTenantUnknown)
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return false, 0, fmt.Errorf("migrating %s: %w", t.table, err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op once committed
	var before int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+t.qualified()).Scan(&before); err != nil {
		return false, 0, fmt.Errorf("migrating %s: counting its rows: %w", t.table, err)
	}
	if t.driver == "sqlite" {
		err = t.migrateSQLite(ctx, tx, cols, legacyTenant)
	} else {
		err = t.migratePostgres(ctx, tx, cols, legacyTenant)
	}
	if err != nil {
		return false, 0, fmt.Errorf("migrating %s to hold tenant_id: %w", t.table, err)
	}
	var after, tagged int64
	q := fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE %s = $1) FROM %s`, schema.TenantIDColumn, t.qualified())
	if t.driver == "sqlite" {
		q = fmt.Sprintf(`SELECT count(*), sum(%s = ?) FROM %s`, schema.TenantIDColumn, t.qualified())
	}
	var sum sql.NullInt64
	if err := tx.QueryRowContext(ctx, q, legacyTenant).Scan(&after, &sum); err != nil {
		return false, 0, fmt.Errorf("migrating %s: counting its rows again: %w", t.table, err)
	}
	tagged = sum.Int64
	if after != before || tagged != before {
		return false, 0, fmt.Errorf("migrating %s: %d rows before, %d after (%d with tenant %s): rolled back", t.table, before, after, tagged, legacyTenant)
	}
	if err := tx.Commit(); err != nil {
		return false, 0, fmt.Errorf("migrating %s: %w", t.table, err)
	}
	return true, after, nil
}

// tableColumn is one column of a table as the database describes it.
type tableColumn struct {
	name, typ string
	pk        int  // its place in the primary key, 1-based; 0: not in it
	generated bool // computed by the database, never written
}

type tableDescription []tableColumn

func (d tableDescription) has(name string) bool {
	for _, c := range d {
		if c.name == name {
			return true
		}
	}
	return false
}

// key is the primary key's columns, in order.
func (d tableDescription) key() []string {
	var key []string
	for place := 1; ; place++ {
		n := len(key)
		for _, c := range d {
			if c.pk == place {
				key = append(key, c.name)
			}
		}
		if len(key) == n {
			return key
		}
	}
}

// written is the columns rows are written to: all but generated ones.
func (d tableDescription) written() []string {
	var cols []string
	for _, c := range d {
		if !c.generated {
			cols = append(cols, schema.QuoteIdent(c.name))
		}
	}
	return cols
}

// describe reads the table's columns; none when the table does not exist.
func (t *tableColumns) describe(ctx context.Context) (tableDescription, error) {
	var rows *sql.Rows
	var err error
	if t.driver == "sqlite" {
		// hidden: 0 a column, 2 and 3 a generated one (VIRTUAL, STORED).
		rows, err = t.db.QueryContext(ctx, `SELECT name, type, pk, hidden IN (2, 3) FROM pragma_table_xinfo(?)`, t.table)
	} else {
		schemaName, name := splitTableName(t.table)
		rows, err = t.db.QueryContext(ctx, `
			SELECT c.column_name, c.data_type, COALESCE(k.ordinal_position, 0), c.is_generated = 'ALWAYS'
			FROM information_schema.columns c
			LEFT JOIN information_schema.table_constraints tc
			  ON tc.table_schema = c.table_schema AND tc.table_name = c.table_name AND tc.constraint_type = 'PRIMARY KEY'
			LEFT JOIN information_schema.key_column_usage k
			  ON k.constraint_name = tc.constraint_name AND k.table_schema = c.table_schema AND k.column_name = c.column_name
			WHERE c.table_name = $1 AND c.table_schema = COALESCE(NULLIF($2, ''), current_schema())
			ORDER BY c.ordinal_position`, name, schemaName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", t.table, err)
	}
	defer rows.Close()
	var d tableDescription
	for rows.Next() {
		var c tableColumn
		if err := rows.Scan(&c.name, &c.typ, &c.pk, &c.generated); err != nil {
			return nil, fmt.Errorf("reading the columns of %s: %w", t.table, err)
		}
		d = append(d, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the columns of %s: %w", t.table, err)
	}
	return d, nil
}

// migratePostgres adds tenant_id, fills it, and puts it first in the
// primary key: PostgreSQL alters a table in a transaction.
func (t *tableColumns) migratePostgres(ctx context.Context, tx *sql.Tx, d tableDescription, tenant string) error {
	table := t.qualified()
	stmts := []string{fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s %s`, table, schema.TenantIDColumn, schema.TenantIDType("postgres"))}
	if _, err := tx.ExecContext(ctx, stmts[0]); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET %s = $1`, table, schema.TenantIDColumn), tenant); err != nil {
		return err
	}
	key := d.key()
	if len(key) == 0 {
		return nil // the rejected rows' table has no key
	}
	var constraint string
	schemaName, name := splitTableName(t.table)
	if err := tx.QueryRowContext(ctx, `SELECT constraint_name FROM information_schema.table_constraints
		WHERE constraint_type = 'PRIMARY KEY' AND table_name = $1 AND table_schema = COALESCE(NULLIF($2, ''), current_schema())`,
		name, schemaName).Scan(&constraint); err != nil {
		return fmt.Errorf("finding its primary key: %w", err)
	}
	_, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s DROP CONSTRAINT %s, ADD PRIMARY KEY (%s)`,
		table, schema.QuoteIdent(constraint), quotedKey(key)))
	return err
}

// quotedKey is tenant_id and then key, quoted, for a PRIMARY KEY clause.
func quotedKey(key []string) string {
	parts := []string{schema.TenantIDColumn}
	for _, k := range key {
		parts = append(parts, schema.QuoteIdent(k))
	}
	return strings.Join(parts, ", ")
}

// migrateSQLite rebuilds a keyed table, as SQLite's documentation says a
// primary key is changed ("Making Other Kinds Of Table Schema Changes",
// sqlite.org/lang_altertable.html#otheralter): a new table from the old
// one's own statement (so every column added since, generated ones
// included, stays as it was), the rows copied, the old table dropped, the
// new one renamed, the indexes made again. A table without a key only
// gets the column.
func (t *tableColumns) migrateSQLite(ctx context.Context, tx *sql.Tx, d tableDescription, tenant string) error {
	table := t.qualified()
	key := d.key()
	if len(key) == 0 {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`ALTER TABLE %s ADD COLUMN %s %s`, table, schema.TenantIDColumn, schema.TenantIDType("sqlite"))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(`UPDATE %s SET %s = ?`, table, schema.TenantIDColumn), tenant)
		return err
	}
	create, err := sqliteCreateStatement(ctx, tx, t.table)
	if err != nil {
		return err
	}
	tmp := t.table + "_tenant_migration"
	create, err = sqliteTenantDDL(create, tmp, key)
	if err != nil {
		return err
	}
	cols := strings.Join(d.written(), ", ")
	return rebuildSQLiteTable(ctx, tx, t.table, tmp, create,
		fmt.Sprintf(`INSERT INTO %s (%s, %s) SELECT ?, %s FROM %s`, schema.QuoteIdent(tmp), schema.TenantIDColumn, cols, cols, table), tenant)
}

// sqliteCreateStatement is the statement SQLite keeps for table.
func sqliteCreateStatement(ctx context.Context, tx *sql.Tx, table string) (string, error) {
	var create string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&create); err != nil {
		return "", fmt.Errorf("reading its statement: %w", err)
	}
	return create, nil
}

// rebuildSQLiteTable replaces table by a new one: tmp made by create,
// filled by copy (a statement taking args), the old table dropped, tmp
// renamed, the old table's indexes and triggers made again. The rename runs
// with legacy_alter_table on, so that a view (or another table's trigger)
// naming the table neither stops it nor is rewritten to name tmp: it reads
// the new table by its name.
func rebuildSQLiteTable(ctx context.Context, tx *sql.Tx, table, tmp, create, copy string, args ...any) error {
	// Indexes first, then triggers: a trigger may use what an index makes
	// fast, never the other way round.
	rows, err := tx.QueryContext(ctx, `SELECT sql FROM sqlite_master WHERE type IN ('index', 'trigger') AND tbl_name = ? AND sql IS NOT NULL
		ORDER BY type = 'trigger', rowid`, table)
	if err != nil {
		return fmt.Errorf("reading its indexes and triggers: %w", err)
	}
	var indexes []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			rows.Close()
			return err
		}
		indexes = append(indexes, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	// The flag is the connection's, not the transaction's: set back
	// whatever happens.
	defer func() { _, _ = tx.ExecContext(context.WithoutCancel(ctx), `PRAGMA legacy_alter_table = OFF`) }()
	for _, stmt := range []struct {
		sql  string
		args []any
	}{
		{`DROP TABLE IF EXISTS ` + schema.QuoteIdent(tmp), nil},
		{create, nil},
		{copy, args},
		{`PRAGMA legacy_alter_table = ON`, nil},
		{`DROP TABLE ` + schema.QuoteIdent(table), nil},
		{fmt.Sprintf(`ALTER TABLE %s RENAME TO %s`, schema.QuoteIdent(tmp), schema.QuoteIdent(table)), nil},
	} {
		if _, err := tx.ExecContext(ctx, stmt.sql, stmt.args...); err != nil {
			return fmt.Errorf("%.60s...: %w", stmt.sql, err)
		}
	}
	for _, index := range indexes {
		if _, err := tx.ExecContext(ctx, index); err != nil {
			return fmt.Errorf("making again (%s): %w", index, err)
		}
	}
	return nil
}

var (
	createTableHead = regexp.MustCompile(`(?is)^\s*CREATE\s+TABLE\s+(IF\s+NOT\s+EXISTS\s+)?("[^"]*"|\S+?)\s*\(`)
	primaryKeyTable = regexp.MustCompile(`(?i)\bPRIMARY\s+KEY\s*\(`)
	primaryKeyCol   = regexp.MustCompile(`(?i)\bPRIMARY\s+KEY\b`)
)

// sqliteTenantDDL turns a table's CREATE statement into that of table
// named name with tenant_id first and first in the key: a key of the table
// (PRIMARY KEY (a, b)) becomes PRIMARY KEY (tenant_id, a, b); a column's
// (id TEXT PRIMARY KEY) becomes NOT NULL, and the table's key (tenant_id, id).
func sqliteTenantDDL(create, name string, key []string) (string, error) {
	head := createTableHead.FindStringIndex(create)
	end := strings.LastIndexByte(create, ')')
	if head == nil || end < head[1] {
		return "", fmt.Errorf("cannot read its statement: %.80q", create)
	}
	body, tail := create[head[1]:end], create[end:]
	switch {
	case primaryKeyTable.MatchString(body):
		body = primaryKeyTable.ReplaceAllLiteralString(body, "PRIMARY KEY ("+schema.TenantIDColumn+", ")
	case len(primaryKeyCol.FindAllStringIndex(body, -1)) == 1:
		body = primaryKeyCol.ReplaceAllLiteralString(body, "NOT NULL") + ",\n  PRIMARY KEY (" + quotedKey(key) + ")"
	default:
		return "", fmt.Errorf("cannot find its primary key in its statement: %.80q", create)
	}
	return fmt.Sprintf("CREATE TABLE %s (\n  %s %s,%s%s", schema.QuoteIdent(name), schema.TenantIDColumn, schema.TenantIDType("sqlite"), body, tail), nil
}
