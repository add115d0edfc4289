package graph

import "errors"

// EachMember calls fn with each top-level member of the JSON object obj: the
// key's raw bytes (between the quotes, still escaped if escaped is true) and
// the value's exact bytes. Nothing is decoded, so it costs one pass over the
// object; fn's slices alias obj.
func EachMember(obj []byte, fn func(key []byte, escaped bool, value []byte)) error {
	s := scanner{b: obj}
	s.skipSpace()
	if err := s.expect('{'); err != nil {
		return err
	}
	s.skipSpace()
	if s.peek() == '}' {
		s.i++
		return s.end()
	}
	for {
		s.skipSpace()
		keyStart := s.i
		escaped, err := s.skipString()
		if err != nil {
			return err
		}
		key := obj[keyStart+1 : s.i-1]
		s.skipSpace()
		if err := s.expect(':'); err != nil {
			return err
		}
		s.skipSpace()
		valueStart := s.i
		if err := s.skipValue(1); err != nil {
			return err
		}
		fn(key, escaped, obj[valueStart:s.i])
		s.skipSpace()
		c, err := s.next()
		if err != nil {
			return err
		}
		if c == '}' {
			return s.end()
		}
		if c != ',' {
			return s.errorf("want ',' or '}' after a member, found %q", c)
		}
	}
}

// DecodeKey returns a key EachMember reported, unescaped.
func DecodeKey(key []byte, escaped bool) (string, error) {
	if !escaped {
		return string(key), nil
	}
	s := scanner{b: append(append([]byte{'"'}, key...), '"'), i: len(key) + 2}
	return s.decodeString(0, true)
}

// DecodeString returns the value of a JSON string literal (quotes included).
func DecodeString(lit []byte) (string, error) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return "", errors.New("not a JSON string")
	}
	s := scanner{b: lit}
	escaped, err := s.skipString()
	if err != nil || s.i != len(lit) {
		return "", errors.New("not a JSON string")
	}
	return s.decodeString(0, escaped)
}

func (s *scanner) end() error {
	s.skipSpace()
	if s.i != len(s.b) {
		return s.errorf("data after the object")
	}
	return nil
}
