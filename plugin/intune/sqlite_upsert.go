package intune

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/benthosdev/benthos/v4/public/service"

	"github.com/intune-benthos/intune-benthos/plugin/intune/contract"
	"github.com/intune-benthos/intune-benthos/plugin/intune/schema"
)

// sqliteUpsert is the statement intune_sqlite writes a table's rows with,
// and where each of its arguments comes from.
type sqliteUpsert struct {
	query string
	// metaArgs are the arguments taken from a message's metadata (or its
	// body, or a constant), in order; slots places the schema's columns.
	metaArgs []sqliteArg
	slots    []int // per schema column (schemaOrder), its place in the arguments; -1 if not written
	nargs    int
}

// sqliteArg is one argument a device's row gets from outside its properties.
type sqliteArg struct {
	at   int
	from func(msg *service.Message, body []byte) any
}

func metaOr(key string, missing any) func(*service.Message, []byte) any {
	return func(msg *service.Message, _ []byte) any {
		if v, ok := msg.MetaGet(key); ok {
			return v
		}
		return missing
	}
}

// sqliteWrittenFrom says where each column the output writes, besides the
// schema's, comes from.
var sqliteWrittenFrom = map[string]func(*service.Message, []byte) any{
	schema.TenantIDColumn:         metaOr(contract.TenantID, ""),
	"id":                          metaOr(contract.DeviceID, nil),
	schema.RawColumn:              func(_ *service.Message, body []byte) any { return boundView(body) },
	schema.SyncIDColumn:           metaOr(contract.SyncID, nil),
	schema.SyncedAtColumn:         metaOr(contract.SyncStartedAt, nil),
	schema.DetailsFetchedAtColumn: metaOr(contract.DetailsFetchedAt, nil),
	schema.DeletedColumn:          func(*service.Message, []byte) any { return int64(0) },
}

// newSQLiteUpsert reads table's columns and key and makes its upsert.
func newSQLiteUpsert(ctx context.Context, db *sql.DB, table string) (*sqliteUpsert, error) {
	d, err := (&tableColumns{driver: "sqlite", table: table, db: db}).describe(ctx)
	if err != nil {
		return nil, err
	}
	if len(d) == 0 {
		return nil, fmt.Errorf("table %s does not exist: create it with init_statement", table)
	}
	key := d.key()
	if len(key) == 0 {
		return nil, fmt.Errorf("table %s has no primary key for the upsert to meet a device already stored", table)
	}
	u := &sqliteUpsert{slots: make([]int, len(schemaOrder))}
	for i := range u.slots {
		u.slots[i] = -1
	}
	var names, sets []string
	inKey := map[string]bool{}
	for _, k := range key {
		inKey[k] = true
	}
	for _, c := range d {
		if c.generated {
			continue
		}
		if from, ok := sqliteWrittenFrom[c.name]; ok {
			u.metaArgs = append(u.metaArgs, sqliteArg{at: len(names), from: from})
		} else if i, ok := schemaColumnIndex[c.name]; ok {
			u.slots[i] = len(names)
		} else {
			continue // a column of the user's own: left to its default
		}
		names = append(names, schema.QuoteIdent(c.name))
		if !inKey[c.name] {
			sets = append(sets, schema.QuoteIdent(c.name)+" = excluded."+schema.QuoteIdent(c.name))
		}
	}
	for _, need := range []string{"id", schema.RawColumn} {
		if !d.has(need) {
			return nil, fmt.Errorf("table %s has no %s column: it is not a table of devices", table, need)
		}
	}
	u.nargs = len(names)
	quoted := make([]string, len(key))
	for i, k := range key {
		quoted[i] = schema.QuoteIdent(k)
	}
	u.query = fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s) ON CONFLICT (%s) DO UPDATE SET %s",
		schema.QuoteIdent(table), strings.Join(names, ", "), strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", "),
		strings.Join(quoted, ", "), strings.Join(sets, ", "))
	return u, nil
}

// schemaColumnIndex is each schema column's place in schemaOrder, by
// column name (the id column is written from the metadata instead).
var schemaColumnIndex = func() map[string]int {
	m := map[string]int{}
	for i, c := range schemaOrder {
		if c.Property != "id" {
			m[c.Name] = i
		}
	}
	return m
}()

// errUnreadableDevice is a message whose body is not a device: it cannot
// be written whatever the database's state, so it goes to the dead letter.
var errUnreadableDevice = errors.New("not a device")

// write upserts the batch in one transaction. A device refused for its
// content is left out and named in the returned batch error; any other
// error rolls the whole batch back.
func (u *sqliteUpsert) write(ctx context.Context, db *sql.DB, batch service.MessageBatch, report *propertyReport) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning a transaction: %w", err)
	}
	defer func() { _ = tx.Rollback() }() // a no-op once committed
	stmt, err := tx.PrepareContext(ctx, u.query)
	if err != nil {
		return fmt.Errorf("preparing the upsert: %w", err)
	}
	defer stmt.Close()

	args := make([]any, u.nargs)
	refused := map[int]error{}
	for i, msg := range batch {
		if err := u.fill(msg, args, report); err != nil {
			refused[i] = err
			continue
		}
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			if _, content := refusedForContent(err); content {
				// SQLite undid this statement only: the transaction
				// goes on with the rest of the batch.
				refused[i] = err
				continue
			}
			return err
		}
	}
	commitErr := tx.Commit()
	if commitErr != nil {
		commitErr = fmt.Errorf("committing %d devices: %w", len(batch), commitErr)
		if len(refused) == 0 {
			return commitErr
		}
	}
	if len(refused) == 0 {
		return nil
	}
	// The refused devices go to the dead letter. If the commit failed, a
	// refusal rolled the whole transaction back (a trigger's
	// RAISE(ROLLBACK), a constraint's ON CONFLICT ROLLBACK): every other
	// device is sent again.
	var berr *service.BatchError
	for i := range batch {
		err, ok := refused[i]
		if !ok {
			if commitErr == nil {
				continue
			}
			err = commitErr
		}
		if berr == nil {
			berr = service.NewBatchError(batch, err)
		}
		berr.Failed(i, err)
	}
	return berr
}

// fill sets args to the row of one device.
func (u *sqliteUpsert) fill(msg *service.Message, args []any, report *propertyReport) error {
	id, _ := msg.MetaGet(contract.DeviceID)
	if op, _ := msg.MetaGet(contract.Operation); op == contract.OpDelete {
		return fmt.Errorf("device %s: %w: a deletion, which intune_sqlite does not write (route it to a statement of its own)", id, errUnreadableDevice)
	}
	body, err := msg.AsBytes()
	if err != nil {
		return fmt.Errorf("device %s: %w: %v", id, errUnreadableDevice, err)
	}
	for _, a := range u.metaArgs {
		args[a.at] = a.from(msg, body)
	}
	syncID, _ := msg.MetaGet(contract.SyncID)
	err = sqliteRow(body, u.slots, args, func(col *schema.Column, value []byte) {
		report.reportMismatch(syncID, id, col, value)
	})
	if err != nil {
		return fmt.Errorf("device %s: %w: %v", id, errUnreadableDevice, err)
	}
	return nil
}
