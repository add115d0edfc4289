package graphsim

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// query is a parsed managedDevices request.
type query struct {
	top      int   // 0: not given
	selected []int // property indexes in resource order; nil: all
	filtered bool
	os       osKind // with filtered; osCount matches nothing
	skip     int    // index of the skip token's LastDeviceId; -1: first page
	// carry holds the options a nextLink repeats, in request order, so the
	// client can follow it verbatim.
	carry []queryOption
}

type queryOption struct{ key, value string }

const maxTop = 999999

// parseQuery validates the OData options of a collection request the way
// Graph does. A non-empty message means 400 BadRequest.
func (s *Server) parseQuery(raw string, props []property) (query, string) {
	q := query{skip: -1}
	var top, sel, filter, skiptoken, count *string
	var msg string
	q.carry, msg = eachOption(raw, func(key, name, value string) (bool, string) {
		switch name {
		case "$top":
			top = &value
		case "$select":
			sel = &value
		case "$filter":
			filter = &value
		case "$skiptoken":
			skiptoken = &value
			return false, ""
		case "$count":
			count = &value
		case "$orderby":
			// Accepted and ignored: devices always come in index order.
		default:
			return false, "Unrecognized query argument specified: '" + key + "'."
		}
		return true, ""
	})
	if msg != "" {
		return q, msg
	}

	if top != nil {
		if q.top, msg = parseTop(*top); msg != "" {
			return q, msg
		}
	}
	if count != nil {
		if msg = checkCount(*count); msg != "" {
			return q, msg
		}
	}
	if filter != nil && strings.TrimSpace(*filter) != "" {
		os, ok := parseFilter(*filter)
		if !ok {
			return q, "Invalid filter clause"
		}
		q.filtered, q.os = true, os
	}
	if sel != nil {
		if q.selected, msg = parseSelect(*sel, "microsoft.graph.managedDevice", func(name string) int { return findProperty(props, name) }); msg != "" {
			return q, msg
		}
	}
	if skiptoken != nil {
		i, ok := s.parseSkipToken(*skiptoken)
		if !ok {
			return q, "The skip token '" + *skiptoken + "' is not valid."
		}
		q.skip = i
	}
	return q, ""
}

// eachOption walks the OData options of a raw query the way Graph reads
// them: it refuses malformed percent-encoding and an option given twice,
// ignores parameters that are not OData options and hands opt each option
// as written, its lower-case name and its value. opt refuses one with a
// message, else says whether a nextLink carries it; eachOption returns
// those to carry, in request order.
func eachOption(raw string, opt func(key, name, value string) (carry bool, msg string)) ([]queryOption, string) {
	var carry []queryOption
	seen := map[string]bool{}
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return carry, "The query specified in the URI is not valid. Malformed percent-encoding in '" + part + "'."
		}
		if !strings.HasPrefix(key, "$") {
			continue // Graph ignores parameters that are not OData options
		}
		name := strings.ToLower(key)
		if seen[name] {
			return carry, "Query option '" + name + "' was specified more than once, it must be specified at most once."
		}
		seen[name] = true
		keep, msg := opt(key, name, value)
		if msg != "" {
			return carry, msg
		}
		if keep {
			carry = append(carry, queryOption{key, value})
		}
	}
	return carry, ""
}

// parseTop reads $top; a non-empty message means 400 BadRequest.
func parseTop(v string) (int, string) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil || n < 0:
		return 0, "Invalid value '" + v + "' for $top query option found. The $top query option requires a non-negative integer value."
	case n == 0:
		return 0, "Invalid value '0' for $top query option found. The $top query option requires a positive integer value."
	case n > maxTop:
		return 0, "The limit of '" + strconv.Itoa(maxTop) + "' for Top query has been exceeded. The value from the incoming request is '" + v + "'."
	}
	return n, ""
}

// checkCount validates $count; a non-empty message means 400 BadRequest.
func checkCount(v string) string {
	if !strings.EqualFold(v, "true") && !strings.EqualFold(v, "false") {
		return "Invalid value '" + v + "' for $count query option found. Valid values are 'true', 'false'."
	}
	return ""
}

// parseSelect returns the properties of typeName that $select=v names, by
// their index in resource order (find gives a name's, -1 if none), or nil
// for all of them.
func parseSelect(v, typeName string, find func(name string) int) ([]int, string) {
	var sel []int
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		if name == "*" {
			return nil, ""
		}
		k := find(name)
		if k < 0 {
			return nil, "Could not find a property named '" + name + "' on type '" + typeName + "'."
		}
		if !slices.Contains(sel, k) {
			sel = append(sel, k)
		}
	}
	slices.Sort(sel)
	return sel, ""
}

// parseFilter accepts the one filter the simulator supports,
// "operatingSystem eq '<value>'", with OData's doubled-quote escape in the literal.
// Names and values compare case-insensitively, as Intune does. An unknown
// operating system is valid and matches nothing (osCount).
func parseFilter(f string) (osKind, bool) {
	fields := strings.Fields(f)
	if len(fields) < 3 || !strings.EqualFold(fields[0], "operatingSystem") || !strings.EqualFold(fields[1], "eq") {
		return 0, false
	}
	// The literal may contain spaces: take the rest of the clause verbatim.
	rest := strings.TrimSpace(f)
	rest = strings.TrimSpace(rest[len(fields[0]):])
	rest = strings.TrimSpace(rest[len(fields[1]):])
	if len(rest) < 2 || rest[0] != '\'' || rest[len(rest)-1] != '\'' {
		return 0, false
	}
	lit := rest[1 : len(rest)-1]
	if strings.Contains(strings.ReplaceAll(lit, "''", ""), "'") {
		return 0, false
	}
	lit = strings.ReplaceAll(lit, "''", "'")
	for k, name := range osNames {
		if strings.EqualFold(lit, name) {
			return osKind(k), true
		}
	}
	return osCount, true
}

// Intune's skip token is a keyset: the name and id of the last device of
// the page, percent-encoded inside the query value:
//
//	$skiptoken=LastDeviceName%3d'Zo%c3%ab''s%20iPhone'%2cLastDeviceId%3d'6f1c...-00000000002a'
//
// Only the id matters here: it encodes the device's index.

func appendSkipToken(b []byte, name string, id []byte) []byte {
	b = append(b, "LastDeviceName%3d'"...)
	b = appendEscaped(b, strings.ReplaceAll(name, "'", "''"), "'")
	b = append(b, "'%2cLastDeviceId%3d'"...)
	b = append(b, id...)
	return append(b, '\'')
}

// appendEscaped percent-encodes s for a query value, with lower-case hex as
// Intune writes it, leaving unreserved characters and those in keep as they
// are.
func appendEscaped(b []byte, s, keep string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || strings.IndexByte(keep, c) >= 0 {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexLower[c>>4], hexLower[c&0xf])
	}
	return b
}

// parseSkipToken finds the device index a managedDevices skip token points
// at (its LastDeviceId).
func (s *Server) parseSkipToken(v string) (int, bool) {
	return parseKeyset(v, "lastdeviceid=", s.indexFromID)
}

// parseKeyset finds the index a keyset skip token names after marker
// (lower case, ending in '='). It tolerates clients that decoded the token
// once more or once less than they should: it looks for the marker
// case-insensitively and unescapes up to twice.
func parseKeyset(v, marker string, index func(string) (int, bool)) (int, bool) {
	for attempt := 0; attempt < 3; attempt++ {
		if k := lastIndexFold(v, marker); k >= 0 {
			id := strings.TrimSpace(v[k+len(marker):])
			id = strings.TrimPrefix(id, "'")
			id = strings.TrimSuffix(id, "'")
			if i, ok := index(id); ok {
				return i, true
			}
		}
		u, err := url.QueryUnescape(v)
		if err != nil || u == v {
			break
		}
		v = u
	}
	return 0, false
}

// lastIndexFold is strings.LastIndex with ASCII case folding; the marker is
// lower-case ASCII, so byte offsets in s stay valid.
func lastIndexFold(s, lowerMarker string) int {
	for i := len(s) - len(lowerMarker); i >= 0; i-- {
		match := true
		for j := 0; j < len(lowerMarker); j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lowerMarker[j] {
				match = false
				break
			}
		}
		if match {
			return i
		}
	}
	return -1
}
