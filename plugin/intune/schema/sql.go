package schema

import (
	"fmt"
	"regexp"
	"strings"
)

// PostgreSQL and SQLite tables store the whole device in _raw and compute
// every other column from it (generated columns). The database, not the
// pipeline, flattens the device: nothing is parsed twice, a property gets a
// column by adding one (ALTER TABLE ... ADD COLUMN ... GENERATED), and the
// rows already stored are filled by that same statement. The expressions
// below are NULL, never an error, for a value of the wrong JSON type, so a
// strange device cannot stop a batch; the value is still in _raw.

// PostgresFunctions creates the helpers the PostgreSQL expressions call. A
// generated column must be IMMUTABLE; text -> timestamptz is only STABLE
// (it reads TimeZone for strings without an offset), so intune_timestamptz
// accepts only ISO 8601 with an explicit offset (or a bare date, read as
// UTC), for which the result depends on nothing but its input.
const PostgresFunctions = `CREATE OR REPLACE FUNCTION intune_timestamptz(t text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
BEGIN
  -- Graph writes "never" as 0001-01-01T00:00:00Z: NULL, not a day in year 1.
  IF t LIKE '0001-01-01%' THEN RETURN NULL; END IF;
  IF t ~ '^\d{4}-\d\d-\d\d$' THEN RETURN (t || 'T00:00:00Z')::timestamptz; END IF;
  IF t !~ '^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$' THEN RETURN NULL; END IF;
  RETURN t::timestamptz;
EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format THEN RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION intune_boolean(v jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE jsonb_typeof(v) WHEN 'boolean' THEN v::boolean END $$;
CREATE OR REPLACE FUNCTION intune_bigint(v jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(v) = 'number' AND v::numeric = trunc(v::numeric)
  AND v::numeric BETWEEN -9223372036854775808 AND 9223372036854775807 THEN v::numeric::bigint END $$;
CREATE OR REPLACE FUNCTION intune_numeric(v jsonb) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE jsonb_typeof(v) WHEN 'number' THEN v::numeric END $$;
CREATE OR REPLACE FUNCTION intune_jsonb(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT CASE WHEN jsonb_typeof(v) <> 'null' THEN v END $$;`

// PostgresExpr is the expression that computes property's column of kind k
// from _raw (jsonb).
func PostgresExpr(k Kind, property string) string {
	field := "_raw->" + sqlString(property)
	switch k {
	case KindBoolean:
		return "intune_boolean(" + field + ")"
	case KindInt64:
		return "intune_bigint(" + field + ")"
	case KindNumeric:
		return "intune_numeric(" + field + ")"
	case KindDateTime:
		return "intune_timestamptz(_raw->>" + sqlString(property) + ")"
	case KindJSON:
		return "intune_jsonb(" + field + ")"
	}
	return "_raw->>" + sqlString(property)
}

// SQLiteExpr is the expression that computes property's column of kind k
// from _raw (JSON text). SQLite has no date type: a date column holds the
// text Graph sent, NULL for "never" and for text that is not a date.
func SQLiteExpr(k Kind, property string) string {
	path := sqlString("$." + property) // ColumnFor admits identifiers only
	extract := "json_extract(_raw, " + path + ")"
	typ := "json_type(_raw, " + path + ")"
	switch k {
	case KindBoolean:
		return "CASE " + typ + " WHEN 'true' THEN 1 WHEN 'false' THEN 0 END"
	case KindInt64:
		// An integer beyond 64 bits comes out of json_extract as a real.
		return "CASE typeof(" + extract + ") WHEN 'integer' THEN " + extract + " END"
	case KindNumeric:
		return "CASE WHEN " + typ + " IN ('integer', 'real') THEN " + extract + " END"
	case KindDateTime:
		return "CASE WHEN " + extract + " GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*' AND " +
			extract + " NOT GLOB '0001-01-01*' THEN " + extract + " END"
	case KindJSON:
		// -> gives JSON text (a string quoted, an object compact), NULL
		// for a missing property; JSON's null is NULL too.
		return "nullif(_raw -> " + path + ", 'null')"
	}
	return extract
}

// Expr is the expression of column c in dest ("postgres" or "sqlite").
func (c Column) Expr(dest string) string {
	if dest == "sqlite" {
		return SQLiteExpr(c.Kind, c.Property)
	}
	return PostgresExpr(c.Kind, c.Property)
}

// InferredType is the type a column of kind k gets in dest when the table
// does not list its property.
func InferredType(dest string, k Kind) string {
	types := map[string]map[Kind]string{
		"postgres": {KindString: "text", KindBoolean: "boolean", KindInt64: "bigint", KindNumeric: "numeric", KindDateTime: "timestamptz", KindJSON: "jsonb"},
		"sqlite":   {KindString: "TEXT", KindBoolean: "INTEGER", KindInt64: "INTEGER", KindNumeric: "REAL", KindDateTime: "TEXT", KindJSON: "TEXT"},
	}
	return types[dest][k]
}

// QuoteIdent quotes a column or table name for PostgreSQL and SQLite, so
// that a property named like a keyword (order, user) still makes a column.
func QuoteIdent(name string) string { return `"` + strings.ReplaceAll(name, `"`, `""`) + `"` }

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ColumnFor returns the column a property of kind k gets when the table has
// none for it, or an error saying why it gets none: an annotation
// (@odata.type, name@odata.nextLink) is not a property, and a name that is
// not an identifier could not be addressed safely in SQL.
func ColumnFor(property string, k Kind) (Column, error) {
	if strings.Contains(property, "@") {
		return Column{}, fmt.Errorf("%s is an OData annotation, not a property", property)
	}
	if !identifier.MatchString(property) {
		return Column{}, fmt.Errorf("%q is not a name a column can be made from", property)
	}
	name := ColumnName(property)
	if Reserved(name) {
		return Column{}, fmt.Errorf("%s would take the column %s, which the table keeps for itself", property, name)
	}
	return Column{Property: property, Name: name, Kind: k, Types: map[string]string{
		"postgres": InferredType("postgres", k),
		"sqlite":   InferredType("sqlite", k),
	}}, nil
}
