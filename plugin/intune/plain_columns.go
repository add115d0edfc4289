package intune

import (
	"context"
	"fmt"
	"strings"

	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// Releases before intune_sqlite had SQLite compute every device column from
// _raw (STORED generated columns). intune_sqlite writes such a table as it
// is, leaving those columns to SQLite, but at the CPU it was made to save;
// migratePlainColumns turns them into plain columns, their values kept, so
// that the output writes them. Only a column whose definition is exactly
// the one a release wrote (the schema's expression) is changed: a column
// the user defined stays as it is.

// plainColumnsTemp is the table a rebuild fills before it takes the name.
const plainColumnsTemp = "_plain_columns_migration"

// migratePlainColumns rebuilds table with its generated device columns made
// plain, in one transaction, the row count checked before the commit;
// converted is how many columns changed (0: nothing to do).
func migratePlainColumns(ctx context.Context, t *tableColumns) (converted int, rows int64, err error) {
	d, err := t.describe(ctx)
	if err != nil || len(d) == 0 {
		return 0, 0, err
	}
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("migrating %s: %w", t.table, err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op once committed
	create, err := sqliteCreateStatement(ctx, tx, t.table)
	if err != nil {
		return 0, 0, fmt.Errorf("migrating %s: %w", t.table, err)
	}
	plain, made := plainDeviceColumns(create)
	if len(made) == 0 {
		return 0, 0, nil
	}
	head := createTableHead.FindStringIndex(plain)
	if head == nil {
		return 0, 0, fmt.Errorf("migrating %s: cannot read its statement: %.80q", t.table, create)
	}
	tmp := t.table + plainColumnsTemp
	plain = "CREATE TABLE " + schema.QuoteIdent(tmp) + " (" + plain[head[1]:]

	// Every column that is not generated in the new table: those written
	// before, and those made plain, which the old table computed.
	var cols []string
	for _, c := range d {
		if !c.generated || made[c.name] {
			cols = append(cols, schema.QuoteIdent(c.name))
		}
	}
	list := strings.Join(cols, ", ")
	var before, after int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+t.qualified()).Scan(&before); err != nil {
		return 0, 0, fmt.Errorf("migrating %s: counting its rows: %w", t.table, err)
	}
	err = rebuildSQLiteTable(ctx, tx, t.table, tmp, plain,
		fmt.Sprintf(`INSERT INTO %s (%s) SELECT %s FROM %s`, schema.QuoteIdent(tmp), list, list, t.qualified()))
	if err != nil {
		return 0, 0, fmt.Errorf("migrating %s to plain columns: %w", t.table, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM `+t.qualified()).Scan(&after); err != nil {
		return 0, 0, fmt.Errorf("migrating %s: counting its rows again: %w", t.table, err)
	}
	if after != before {
		return 0, 0, fmt.Errorf("migrating %s to plain columns: %d rows before, %d after: rolled back", t.table, before, after)
	}
	if err := tx.Commit(); err != nil {
		return 0, 0, fmt.Errorf("migrating %s: %w", t.table, err)
	}
	return len(made), after, nil
}

// plainDeviceColumns is create with each device column that a release
// defined as generated from _raw defined as a plain column instead; made
// names them.
func plainDeviceColumns(create string) (plain string, made map[string]bool) {
	made = map[string]bool{}
	for _, c := range schema.Columns() {
		if c.Property == "id" {
			continue
		}
		generated := c.Name + " " + c.Type("sqlite") + " GENERATED ALWAYS AS (" + schema.SQLiteExpr(c.Kind, c.Property) + ") STORED"
		at := generatedDefinition(create, generated)
		if at < 0 {
			continue
		}
		create = create[:at] + c.Name + " " + c.Type("sqlite") + create[at+len(generated):]
		made[c.Name] = true
	}
	return create, made
}

// generatedDefinition finds def as a whole column definition in create:
// after "(" or "," and white space, and before "," or ")".
func generatedDefinition(create, def string) int {
	for from := 0; ; {
		i := strings.Index(create[from:], def)
		if i < 0 {
			return -1
		}
		i += from
		before := strings.TrimRight(create[:i], " \t\r\n")
		after := strings.TrimLeft(create[i+len(def):], " \t\r\n")
		if strings.HasSuffix(before, "(") || strings.HasSuffix(before, ",") {
			if strings.HasPrefix(after, ",") || strings.HasPrefix(after, ")") || strings.HasPrefix(after, "--") {
				return i
			}
		}
		from = i + len(def)
	}
}
