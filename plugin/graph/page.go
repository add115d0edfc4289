package graph

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PageBody is what one collection response holds.
type PageBody struct {
	// Devices are the elements of "value", each the exact bytes Graph sent
	// (sub-slices of the response body: nothing is decoded or re-encoded, so
	// an Int64 above 2^53 or an escaped string arrives unchanged).
	Devices [][]byte
	// NextLink is @odata.nextLink, unescaped; empty on the last page.
	NextLink string
	// Count is @odata.count when present. Graph does not document its meaning
	// for this collection: use it for progress estimates only.
	Count    int64
	HasCount bool
}

// maxDepth bounds nesting so that a hostile body cannot exhaust the stack.
const maxDepth = 512

// ParsePage splits a collection response into its devices without building
// values. It reads the body once, accepts "@odata.nextLink" before or after
// "value", and rejects anything that is not one complete JSON object with a
// "value" array: a truncated page is an error, never a short page.
// devices is reused (truncated) to save an allocation per page.
func ParsePage(body []byte, devices [][]byte) (PageBody, error) {
	s := scanner{b: body}
	page := PageBody{Devices: devices[:0]}
	sawValue := false

	s.skipSpace()
	if err := s.expect('{'); err != nil {
		return page, err
	}
	s.skipSpace()
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			s.skipSpace()
			key, err := s.key()
			if err != nil {
				return page, err
			}
			s.skipSpace()
			if err := s.expect(':'); err != nil {
				return page, err
			}
			s.skipSpace()
			switch key {
			case "value":
				if sawValue {
					return page, s.errorf("duplicate \"value\"")
				}
				sawValue = true
				if page.Devices, err = s.elements(page.Devices); err != nil {
					return page, err
				}
			case "@odata.nextLink":
				if page.NextLink, err = s.stringOrNull(); err != nil {
					return page, fmt.Errorf("@odata.nextLink: %w", err)
				}
			case "@odata.count":
				start := s.i
				if err := s.skipValue(0); err != nil {
					return page, err
				}
				// Only a progress estimate: an odd value (a quoted number, as
				// IEEE754Compatible OData servers send Int64) is read if it
				// can be and otherwise ignored, never a reason to fail a page.
				raw := strings.Trim(string(body[start:s.i]), `"`)
				if n, err := strconv.ParseInt(raw, 10, 64); err == nil && n >= 0 {
					page.Count, page.HasCount = n, true
				}
			default:
				if err := s.skipValue(0); err != nil {
					return page, err
				}
			}
			s.skipSpace()
			c, err := s.next()
			if err != nil {
				return page, err
			}
			if c == '}' {
				break
			}
			if c != ',' {
				return page, s.errorf("want ',' or '}' after a property, found %q", c)
			}
		}
	}
	s.skipSpace()
	if s.i != len(body) {
		return page, s.errorf("data after the page object")
	}
	if !sawValue {
		return page, errors.New("page has no \"value\" array")
	}
	return page, nil
}

// ErrTruncated reports a body that ended before its JSON did.
var ErrTruncated = errors.New("unexpected end of page body (truncated response?)")

type scanner struct {
	b []byte
	i int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid page JSON at byte %d: %s", s.i, fmt.Sprintf(format, args...))
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) next() (byte, error) {
	if s.i >= len(s.b) {
		return 0, ErrTruncated
	}
	c := s.b[s.i]
	s.i++
	return c, nil
}

func (s *scanner) expect(want byte) error {
	c, err := s.next()
	if err != nil {
		return err
	}
	if c != want {
		s.i--
		return s.errorf("want %q, found %q", want, c)
	}
	return nil
}

func (s *scanner) skipSpace() {
	if s.i < len(s.b) && s.b[s.i] > ' ' {
		return // compact JSON, as Graph sends it
	}
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// elements scans an array and appends each element's bytes to out.
func (s *scanner) elements(out [][]byte) ([][]byte, error) {
	if err := s.expect('['); err != nil {
		return out, err
	}
	s.skipSpace()
	if s.peek() == ']' {
		s.i++
		return out, nil
	}
	for {
		s.skipSpace()
		start := s.i
		if err := s.skipValue(1); err != nil {
			return out, err
		}
		out = append(out, s.b[start:s.i:s.i])
		s.skipSpace()
		c, err := s.next()
		if err != nil {
			return out, err
		}
		if c == ']' {
			return out, nil
		}
		if c != ',' {
			return out, s.errorf("want ',' or ']' in \"value\", found %q", c)
		}
	}
}

// key scans an object key. Keys are compared unescaped, which only costs an
// allocation for the rare key that holds an escape.
func (s *scanner) key() (string, error) {
	start := s.i
	escaped, err := s.skipString()
	if err != nil {
		return "", err
	}
	return s.decodeString(start, escaped)
}

func (s *scanner) stringOrNull() (string, error) {
	if s.peek() == 'n' {
		return "", s.literal("null")
	}
	start := s.i
	escaped, err := s.skipString()
	if err != nil {
		return "", err
	}
	return s.decodeString(start, escaped)
}

func (s *scanner) decodeString(start int, escaped bool) (string, error) {
	raw := s.b[start:s.i]
	if !escaped {
		return string(raw[1 : len(raw)-1]), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", s.errorf("bad string: %v", err)
	}
	return v, nil
}

// skipString moves past a string starting at s.i and tells whether it held
// an escape sequence. Most of a page's bytes are inside strings, so this is
// the hot loop: it looks at eight bytes at a time for the only ones that
// matter ('"', '\\' and control characters) and walks bytes only near them.
func (s *scanner) skipString() (escaped bool, err error) {
	b, i := s.b, s.i
	if i >= len(b) {
		return false, ErrTruncated
	}
	if b[i] != '"' {
		return false, s.errorf("want '\"', found %q", b[i])
	}
	i++
	for {
		for i+8 <= len(b) && !hasStringStop(binary.LittleEndian.Uint64(b[i:])) {
			i += 8
		}
		for i < len(b) && !stringStop[b[i]] {
			i++
		}
		if i >= len(b) {
			s.i = i
			return escaped, ErrTruncated
		}
		switch c := b[i]; c {
		case '"':
			s.i = i + 1
			return escaped, nil
		case '\\':
			escaped = true
			if i+1 >= len(b) {
				s.i = len(b)
				return escaped, ErrTruncated
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					s.i = len(b)
					return escaped, ErrTruncated
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						s.i = i + 2
						return escaped, s.errorf("bad \\u escape")
					}
				}
				i += 6
			default:
				s.i = i + 1
				return escaped, s.errorf("bad escape \\%c", b[i+1])
			}
		default:
			s.i = i
			return escaped, s.errorf("control character in string")
		}
	}
}

// stringStop marks the bytes that end the plain run of a string.
var stringStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// hasStringStop tells whether any of the eight bytes in x is '"', '\\' or
// below 0x20, with the classic "has zero byte" bit trick: a byte equal to
// the pattern becomes zero after xor; a byte below 0x20 borrows when 0x20 is
// subtracted. Bytes >= 0x80 (UTF-8) never match.
func hasStringStop(x uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	return ((q-ones)&^q|(bs-ones)&^bs|(x-ones*0x20)&^x)&highs != 0
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func (s *scanner) literal(word string) error {
	if len(s.b)-s.i < len(word) {
		if string(s.b[s.i:]) == word[:len(s.b)-s.i] {
			return ErrTruncated
		}
		return s.errorf("unexpected %q", s.b[s.i:])
	}
	if string(s.b[s.i:s.i+len(word)]) != word {
		return s.errorf("unexpected character %q", s.b[s.i])
	}
	s.i += len(word)
	return nil
}

// skipValue moves past one JSON value, checking its grammar.
func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return s.errorf("nesting deeper than %d", maxDepth)
	}
	if s.i >= len(s.b) {
		return ErrTruncated
	}
	switch c := s.b[s.i]; {
	case c == '"':
		_, err := s.skipString()
		return err
	case c == '{':
		s.i++
		s.skipSpace()
		if s.peek() == '}' {
			s.i++
			return nil
		}
		for {
			s.skipSpace()
			if _, err := s.skipString(); err != nil {
				return err
			}
			s.skipSpace()
			if err := s.expect(':'); err != nil {
				return err
			}
			s.skipSpace()
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.skipSpace()
			c, err := s.next()
			if err != nil {
				return err
			}
			if c == '}' {
				return nil
			}
			if c != ',' {
				return s.errorf("want ',' or '}' in object, found %q", c)
			}
		}
	case c == '[':
		s.i++
		s.skipSpace()
		if s.peek() == ']' {
			s.i++
			return nil
		}
		for {
			s.skipSpace()
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.skipSpace()
			c, err := s.next()
			if err != nil {
				return err
			}
			if c == ']' {
				return nil
			}
			if c != ',' {
				return s.errorf("want ',' or ']' in array, found %q", c)
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || c >= '0' && c <= '9':
		return s.number()
	default:
		return s.errorf("unexpected character %q", c)
	}
}

// number checks JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.peek() == '-' {
		s.i++
	}
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		s.digits()
	case s.i >= len(s.b):
		return ErrTruncated
	default:
		return s.errorf("bad number")
	}
	if s.peek() == '.' {
		s.i++
		if s.digits() == 0 {
			return s.numberEnd()
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if s.digits() == 0 {
			return s.numberEnd()
		}
	}
	return nil
}

// numberEnd reports a number missing its digits: truncated at the end of the
// body, malformed otherwise.
func (s *scanner) numberEnd() error {
	if s.i >= len(s.b) {
		return ErrTruncated
	}
	return s.errorf("bad number")
}

func (s *scanner) digits() int {
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	return s.i - start
}
