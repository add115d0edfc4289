package graphsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The small collections (categories, policies, settings catalog, apps and
// their assignments) are a few dozen items per tenant: each is made once,
// as a record of its properties in Graph's order, each property's JSON
// value written in advance and marked with the versions that have it.

// record is one item of a small collection.
type record struct {
	id     string
	typ    string // its derived type ("windows10CompliancePolicy"); "" when it is of the collection's own type
	in     ver    // the versions that list it
	fields []field
	assign []*record // its assignments, for the collections that have them

	// For the truth and for statuses.
	name string
	os   osKind // the platform whose devices report a status for it; osCount: none
	nth  int    // its position among its collection's policies of platform os
}

// field is one property of a record.
type field struct {
	name string
	in   ver
	raw  []byte
}

// recordBuilder appends fields to a record, marked with the versions
// in (inBoth unless set otherwise).
type recordBuilder struct {
	r  *record
	in ver
}

func newRecord(id, typ string) *recordBuilder {
	return &recordBuilder{r: &record{id: id, typ: typ, in: inBoth, os: osCount}, in: inBoth}
}

func (b *recordBuilder) raw(name string, v []byte) *recordBuilder {
	b.r.fields = append(b.r.fields, field{name: name, in: b.in, raw: v})
	return b
}

func (b *recordBuilder) str(name, v string) *recordBuilder { return b.raw(name, appendString(nil, v)) }

// text is a string, or null when it is empty.
func (b *recordBuilder) text(name, v string) *recordBuilder {
	return b.raw(name, appendNullString(nil, v))
}

func (b *recordBuilder) null(name string) *recordBuilder { return b.raw(name, []byte("null")) }

func (b *recordBuilder) flag(name string, v bool) *recordBuilder {
	return b.raw(name, strconv.AppendBool(nil, v))
}

func (b *recordBuilder) num(name string, v int64) *recordBuilder {
	return b.raw(name, strconv.AppendInt(nil, v, 10))
}

// date is a DateTimeOffset in whole seconds, as the older Intune services
// write them.
func (b *recordBuilder) date(name string, unix int64) *recordBuilder {
	return b.raw(name, appendDateTime(nil, unix))
}

// ticks is a DateTimeOffset with .NET's seven fractional digits.
func (b *recordBuilder) ticks(name string, unix int64, frac int) *recordBuilder {
	return b.raw(name, appendTicks(nil, unix, frac))
}

func (b *recordBuilder) strs(name string, v ...string) *recordBuilder {
	out := []byte{'['}
	for k, s := range v {
		if k > 0 {
			out = append(out, ',')
		}
		out = appendString(out, s)
	}
	return b.raw(name, append(out, ']'))
}

// only makes the fields fn adds those of the versions in.
func (b *recordBuilder) only(in ver, fn func()) *recordBuilder {
	old := b.in
	b.in = in
	fn()
	b.in = old
	return b
}

func (b *recordBuilder) done() *record { return b.r }

// appendTicks writes a DateTimeOffset with seven fractional digits:
// "2020-06-14T20:52:52.8841394Z"; unix foreverTime is written
// "9999-12-31T23:59:59.9999999Z", .NET's DateTime.MaxValue.
func appendTicks(b []byte, unix int64, frac int) []byte {
	if unix == foreverTime {
		frac = 9999999
	}
	b = appendDateTime(b, unix)
	b = b[:len(b)-2] // 'Z' and the quote
	b = append(b, '.')
	b = appendPad(b, frac%10000000, 7)
	return append(b, 'Z', '"')
}

// appendRecord writes r as version v lists it: "@odata.type" for a
// derived type, then its fields of v, only those named in sel when sel
// is not nil (names of the collection's own type), then, when expand is
// set, its assignments with their context.
func (s *Server) appendRecord(b []byte, r *record, v ver, sel []string, expand string) []byte {
	b = append(b, '{')
	n := 0
	if r.typ != "" {
		b = append(b, `"@odata.type":"#microsoft.graph.`...)
		b = append(b, r.typ...)
		b = append(b, '"')
		n++
	}
	for k := range r.fields {
		f := &r.fields[k]
		if f.in&v == 0 || sel != nil && !containsName(sel, f.name) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, f.name...)
		b = append(b, '"', ':')
		b = append(b, f.raw...)
		n++
	}
	if expand != "" {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, `"assignments@odata.context":`...)
		b = appendString(b, expand+"('"+r.id+"')/assignments")
		b = append(b, `,"assignments":[`...)
		m := 0
		for _, a := range r.assign {
			if a.in&v == 0 {
				continue
			}
			if m > 0 {
				b = append(b, ',')
			}
			b = s.appendRecord(b, a, v, nil, "")
			m++
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

func containsName(names []string, name string) bool {
	for _, n := range names {
		if n == name {
			return true
		}
	}
	return false
}

// selectedNames turns a parsed $select into property names.
func selectedNames(sel []int, props []string) []string {
	if sel == nil {
		return nil
	}
	out := make([]string, len(sel))
	for k, i := range sel {
		out[k] = props[i]
	}
	return out
}

// recordIndex finds the record with id among records (ids compare
// case-insensitively, as Graph's keys do).
func recordIndex(records []*record, id string) (int, bool) {
	for k, r := range records {
		if strings.EqualFold(r.id, id) {
			return k, true
		}
	}
	return 0, false
}

// recordPage plans the page of records (the ones version v lists) that
// starts after position skip.
func (s *Server) recordPage(records []*record, v ver, q *listQuery) (page []*record, before, total int, more bool) {
	size := s.intunePageSize(q)
	for k, r := range records {
		if r.in&v == 0 {
			continue
		}
		total++
		switch {
		case k <= q.skip:
			before++
		case len(page) < size:
			page = append(page, r)
		default:
			more = true
		}
	}
	return page, before, total, more
}

// serveRecordList answers a page of records: a collection's or one
// item's assignments.
func (s *Server) serveRecordList(w *exchange, r *http.Request, ids requestIDs, beta bool, l *intuneList, records []*record, path, missing, expandNav string) {
	v := verOf(beta)
	index := func(id string) (int, bool) { return recordIndex(records, id) }
	q, expanded, msg := s.intuneQuery(r, l, beta, expandNav, index)
	p := &intunePage{list: l, q: q, msg: msg, missing: missing}
	if msg == "" && missing == "" {
		page, before, total, more := s.recordPage(records, v, &q)
		size := s.intunePageSize(&q)
		props := l.propsOf(beta)
		sel := selectedNames(q.selected, props)
		expand := ""
		if expanded {
			expand = s.cfg.ScopeHost + "/" + versionName(beta) + "/$metadata#" + path
		}
		p.number, p.count, p.n = before/size+1, total, len(page)
		p.context = s.intuneContext(beta, path, q.selected, props, expanded)
		p.item = func(b []byte, k int) []byte { return s.appendRecord(b, page[k], v, sel, expand) }
		if more {
			last := page[len(page)-1].id
			p.next = func(host string) []byte { return keysetLink(r, q.carry, host, l.marker, last) }
		}
	}
	s.serveIntunePage(w, r, ids, p)
}

// serveIntuneRecords answers a small collection's list.
func (s *Server) serveIntuneRecords(w *exchange, r *http.Request, ids requestIDs, beta bool, c *intuneCollection) {
	if !s.allowOnly(w, r, ids, http.MethodGet) {
		return
	}
	if c.records == nil {
		s.serveAutopilot(w, r, ids, beta, c)
		return
	}
	expand := ""
	if c.assignments != nil {
		expand = "assignments"
	}
	s.serveRecordList(w, r, ids, beta, c.list, c.records(s.intuneCatalog()), c.parent+"/"+c.name, "", expand)
}

// serveIntuneAssignments answers one item's assignments.
func (s *Server) serveIntuneAssignments(w *exchange, r *http.Request, ids requestIDs, beta bool, c *intuneCollection, key string) {
	if !s.allowOnly(w, r, ids, http.MethodGet) {
		return
	}
	records := c.records(s.intuneCatalog())
	var assign []*record
	missing := key
	if k, ok := recordIndex(records, key); ok && records[k].in&verOf(beta) != 0 {
		assign, missing = records[k].assign, ""
		key = records[k].id
	}
	path := c.parent + "/" + c.name + "('" + key + "')/assignments"
	s.serveRecordList(w, r, ids, beta, c.assignments, assign, path, missing, "")
}

// serveIntuneItem answers GET of one item of a collection, as Graph
// answers an entity: its context ends in /$entity, $select and (where
// there are assignments) $expand work, a collection's options are 400.
// Faults do not apply to it; it is logged as KindIntuneItem.
func (s *Server) serveIntuneItem(w *exchange, r *http.Request, ids requestIDs, beta bool, c *intuneCollection, key string) {
	if !s.allowOnly(w, r, ids, http.MethodGet) {
		return
	}
	s.intunePageRequests.Add(1)
	v := verOf(beta)
	props := c.list.propsOf(beta)
	nav := ""
	if c.assignments != nil {
		nav = "assignments"
	}
	q, expanded, msg := s.intuneQuery(r, c.list, beta, nav, func(string) (int, bool) { return 0, false })
	if msg == "" {
		msg = entityOnly(&q)
	}
	if !s.intuneReadable(w, r, ids, c.list, msg) {
		return
	}
	var item func(b []byte) []byte
	if c.records != nil {
		records := c.records(s.intuneCatalog())
		if k, ok := recordIndex(records, key); ok && records[k].in&v != 0 {
			rec, sel, expand := records[k], selectedNames(q.selected, props), ""
			if expanded {
				expand = s.cfg.ScopeHost + "/" + versionName(beta) + "/$metadata#" + c.parent + "/" + c.name
			}
			item = func(b []byte) []byte { return s.appendRecord(b, rec, v, sel, expand) }
		}
	} else if i, ok := s.autopilotIndex(key); ok {
		st, cols := s.state(), autopilotColumns(beta)
		item = func(b []byte) []byte {
			var a autopilotDevice
			s.autopilotAt(st, i, &a)
			return appendColumns(b, &a, cols, q.selected)
		}
	}
	if item == nil {
		s.notFoundKey(w, ids, key)
		return
	}
	if !s.latency(w, r) {
		return
	}
	s.writeEntity(w, s.intuneContext(beta, c.parent+"/"+c.name, q.selected, props, expanded)+"/$entity", item)
}

// entityOnly refuses, on a single item, the options of a collection.
func entityOnly(q *listQuery) string {
	for _, o := range q.carry {
		switch strings.ToLower(o.key) {
		case "$top", "$skip", "$filter", "$orderby", "$count":
			return notCollection
		}
	}
	if q.skip >= 0 {
		return notCollection
	}
	return ""
}

// writeEntity answers one item with its context.
func (s *Server) writeEntity(w *exchange, context string, item func(b []byte) []byte) {
	b := []byte(`{"@odata.context":`)
	b = appendString(b, context)
	at := len(b)
	b = item(b)
	if len(b) > at+2 {
		b[at] = ','
	} else {
		b = append(b[:at], '}')
	}
	if writeBody(w, http.StatusOK, graphContentType, b) == nil {
		s.intunePagesServed.Add(1)
	}
}

// intuneCatalog returns the tenant's small collections, made on first
// use.
func (s *Server) intuneCatalog() *intuneCatalog {
	s.intuneOnce.Do(func() { s.intune = buildIntuneCatalog(s.cfg.Seed) })
	return s.intune
}

// unixOf is t in Unix seconds, for the catalogue's fixed dates.
func unixOf(y int, m time.Month, d int) int64 { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() }
