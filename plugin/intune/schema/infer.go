package schema

import (
	"strconv"
	"strings"
)

// KindOf infers the kind of a property the table does not list from one of
// its values (raw JSON), the way Fivetran types a new column: a string is a
// date and time when the property's name says so (…DateTime, …Date) and the
// value looks like one, else text; true and false are booleans; an integer
// that fits in 64 bits is int64, any other number numeric; objects and
// arrays are JSON. A null tells nothing: ok is false until a value does.
func KindOf(property string, value []byte) (k Kind, ok bool) {
	if len(value) == 0 {
		return "", false
	}
	switch c := value[0]; {
	case c == '"':
		if (strings.HasSuffix(property, "DateTime") || strings.HasSuffix(property, "Date")) && LooksLikeDateTime(value) {
			return KindDateTime, true
		}
		return KindString, true
	case c == 't' || c == 'f':
		return KindBoolean, true
	case c == '{' || c == '[':
		return KindJSON, true
	case c == '-' || c >= '0' && c <= '9':
		if isInt64(value) {
			return KindInt64, true
		}
		return KindNumeric, true
	}
	return "", false
}

// LooksLikeDateTime reports whether a JSON string literal starts like an ISO
// 8601 date: "YYYY-MM-DD, then the end or a T.
func LooksLikeDateTime(lit []byte) bool {
	if len(lit) < 12 || lit[0] != '"' {
		return false
	}
	d := lit[1:]
	for i, c := range d[:10] {
		switch i {
		case 4, 7:
			if c != '-' {
				return false
			}
		default:
			if c < '0' || c > '9' {
				return false
			}
		}
	}
	return d[10] == '"' || d[10] == 'T'
}

// IsNever reports whether a DateTimeOffset string literal is Graph's "never",
// 0001-01-01T00:00:00Z (any time on that day counts).
func IsNever(lit []byte) bool {
	return len(lit) > 11 && string(lit[1:11]) == "0001-01-01"
}

// Fits reports whether a raw JSON value is what a column of kind k holds;
// null fits every kind, a text column holds any value (as its JSON text)
// and a JSON column any JSON. A value that does not fit is NULL in the
// column (and whole in _raw).
func Fits(k Kind, value []byte) bool {
	if len(value) == 0 {
		return false
	}
	if string(value) == "null" {
		return true
	}
	switch k {
	case KindString:
		return true
	case KindBoolean:
		return value[0] == 't' || value[0] == 'f'
	case KindInt64:
		return isInt64(value)
	case KindNumeric:
		return value[0] == '-' || value[0] >= '0' && value[0] <= '9'
	case KindDateTime:
		return LooksLikeDateTime(value)
	case KindJSON:
		return true
	}
	return false
}

// isInt64 reports whether a JSON number is an integer within int64, without
// converting it (a device's bytes go through here once per column).
func isInt64(v []byte) bool {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > 19 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	if len(digits) < 19 {
		return true
	}
	_, err := strconv.ParseInt(string(v), 10, 64)
	return err == nil
}
