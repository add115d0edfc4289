package graphsim

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// The device JSON is built by appending to a []byte: it is the hot path of
// every page, and reflection-based encoding would be an order of magnitude
// slower. These helpers are the only places that produce JSON syntax.

const hexLower = "0123456789abcdef"

// appendString appends s as a JSON string. It follows encoding/json (without
// its HTML escaping): '"', '\\' and control characters are escaped, U+2028
// and U+2029 are escaped because JavaScript treats them as line breaks, and
// invalid UTF-8 becomes U+FFFD. strconv.Quote would be wrong here: it emits
// Go escapes such as \x00 and \U0001f600 that JSON does not have.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexLower[c>>4], hexLower[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexLower[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendNullString appends null for an empty string, for the properties
// Graph leaves null rather than empty.
func appendNullString(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendString(b, s)
}

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

// triBool is a nullable boolean: 0 null, 1 false, 2 true.
type triBool uint8

func appendTriBool(b []byte, v triBool) []byte {
	switch v {
	case 1:
		return append(b, "false"...)
	case 2:
		return append(b, "true"...)
	}
	return append(b, "null"...)
}

func appendInt(b []byte, v int64) []byte { return strconv.AppendInt(b, v, 10) }

// Sentinels Intune uses for dates: the .NET DateTime.MinValue for "never"
// and MaxValue for "no deadline" (complianceGracePeriodExpirationDateTime of
// a compliant device).
var (
	neverTime   = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	foreverTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC).Unix()
)

// appendDateTime appends a DateTimeOffset string such as
// "2025-03-14T09:26:53Z", quoted.
func appendDateTime(b []byte, unix int64) []byte {
	t := time.Unix(unix, 0).UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = append(b, '"')
	b = appendPad(b, y, 4)
	b = append(b, '-')
	b = appendPad(b, int(mo), 2)
	b = append(b, '-')
	b = appendPad(b, d, 2)
	b = append(b, 'T')
	b = appendPad(b, h, 2)
	b = append(b, ':')
	b = appendPad(b, mi, 2)
	b = append(b, ':')
	b = appendPad(b, s, 2)
	return append(b, 'Z', '"')
}

// appendPad appends a non-negative v with at least width digits.
func appendPad(b []byte, v, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for v >= 10 || width > 1 {
		i--
		buf[i] = byte('0' + v%10)
		v /= 10
		width--
	}
	i--
	buf[i] = byte('0' + v)
	return append(b, buf[i:]...)
}

// appendHex appends the n low hex digits of v (n <= 16), in upper or lower
// case.
func appendHex(b []byte, v uint64, n int, upper bool) []byte {
	digits := hexLower
	if upper {
		digits = "0123456789ABCDEF"
	}
	for i := n - 1; i >= 0; i-- {
		b = append(b, digits[(v>>(uint(i)*4))&0xf])
	}
	return b
}
