package graphsim

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// flushAt is how much of a page is buffered before it is written: pages are
// streamed, so a $top=999999 page costs no more memory than a small one.
const flushAt = 32 << 10

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, flushAt+8<<10); return &b }}

// serveCollection answers GET {version}/deviceManagement/managedDevices.
func (s *Server) serveCollection(w *exchange, r *http.Request, ids requestIDs, beta bool) {
	s.pageRequests.Add(1)
	if !s.allowOnly(w, r, ids, http.MethodGet) {
		return
	}
	props, version := s.v1Props, "v1.0"
	if beta {
		props, version = s.betaProps, "beta"
	}
	// One snapshot of the mutations serves the whole request, so a page
	// is consistent even while a test mutates the tenant.
	st := s.state()
	// The query is parsed before the token is checked because the page
	// number, and so the fault script, depends on it; a bad query is still
	// answered after a bad token, as Graph does.
	q, msg := s.parseQuery(r.URL.RawQuery, props)
	var pl pagePlan
	var fault *Fault
	if msg == "" {
		pl = s.plan(st, &q)
		w.page = pl.number
		w.attempt, fault = s.attempt(pl.number)
	}
	if fault != nil && fault.Kind.isStatus() {
		s.applied(w, fault)
		s.answerFault(w, r, ids, fault)
		return
	}
	if fault != nil && fault.Kind == FaultSlow {
		s.applied(w, fault)
		if !sleep(r, fault.Delay) {
			return
		}
	}
	if !s.readable(w, r, ids, msg) {
		return
	}
	if !s.latency(w, r) {
		return
	}
	s.servePage(w, r, st, &q, &pl, props, version, fault)
}

// sleep waits d, or less if the client gives up; it reports whether the
// request is still wanted.
func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.Context().Done():
		return false
	case <-t.C:
		return true
	}
}

// latency waits Config.Latency before the answer to x, except inside a
// $batch, which waits once for all its requests; it reports whether the
// request is still wanted.
func (s *Server) latency(x *exchange, r *http.Request) bool {
	return x.batched || s.cfg.Latency <= 0 || sleep(r, s.cfg.Latency)
}

// applied notes that fault shaped the answer to w.
func (s *Server) applied(w *exchange, fault *Fault) {
	w.fault = fault.Kind
	s.faultsInjected.Add(1)
}

// pagePlan is where one page sits in its listing.
type pagePlan struct {
	size, start int
	ext         pageExtent
	total       int // @odata.count: the devices the listing holds
	before      int // listed devices before start
	number      int // 1-based page number
}

func (s *Server) plan(st *tenantState, q *query) pagePlan {
	pl := pagePlan{size: s.cfg.PageSize, start: q.skip + 1}
	if q.top > 0 {
		pl.size = q.top
	}
	pl.ext = s.extent(st, q, pl.start, pl.size)
	pl.total, pl.before = s.listedBefore(st, q, st.devices), s.listedBefore(st, q, pl.start)
	pl.number = pl.before/pl.size + 1
	return pl
}

// servePage writes the page, altered by a page fault if there is one.
func (s *Server) servePage(w *exchange, r *http.Request, st *tenantState, q *query, pl *pagePlan, props []property, version string, fault *Fault) {
	var next []byte
	var lastName string
	if pl.ext.more {
		var d device
		s.current(st, pl.ext.last, &d)
		lastName = d.name
		next = s.nextLink(r, q, lastName, pl.ext.last, "")
	}
	pg := pageWriter{s: s, st: st, q: q, pl: pl, props: props, version: version, next: next, corrupt: -1}
	kind := s.pageFault(w, fault)
	h := w.Header()
	h.Set("Content-Type", graphContentType)
	switch kind {
	case FaultForeignNextLink:
		// On the last page the link names the page itself, so that there
		// is always a link the client must refuse to follow.
		if pl.ext.more {
			pg.next = s.nextLink(r, q, lastName, pl.ext.last, ForeignHost)
		} else {
			pg.next = []byte("https://" + ForeignHost + r.URL.RequestURI())
		}
	case FaultTruncate, FaultMalformed:
		// Both announce the full length, which takes a first pass that
		// only counts: the page is never held whole in memory.
		var c countWriter
		devices, _ := pg.write(&c)
		h.Set("Content-Length", strconv.FormatInt(c.n, 10))
		w.WriteHeader(http.StatusOK)
		if kind == FaultMalformed {
			pg.corrupt = devices / 2
			_, _ = pg.write(w)
			return
		}
		_, _ = pg.write(&cutWriter{w: w, left: c.n / 2})
		_ = http.NewResponseController(w).Flush()
		// net/http closes the connection without finishing the body and
		// without logging: the client reads half and then EOF.
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(http.StatusOK)
	if _, err := pg.write(w); err == nil {
		s.pagesServed.Add(1)
	}
}

// pageWriter renders one page.
type pageWriter struct {
	s       *Server
	st      *tenantState
	q       *query
	pl      *pagePlan
	props   []property
	version string
	next    []byte
	// corrupt is the ordinal of the device whose opening brace becomes
	// '#', which no JSON parser accepts there (the value array's '[' when
	// the page is empty); -1 for none.
	corrupt int
}

// write streams the page to out and returns how many devices it holds.
func (p *pageWriter) write(out io.Writer) (int, error) {
	s, st, q, pl := p.s, p.st, p.q, p.pl
	// The page number decides where the nextLink goes: before "value" on
	// odd pages, after it on even ones, so that a client parser meets both.
	oddPage := pl.number%2 == 1

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := (*bp)[:0]
	ctx := s.metadata(p.version, "deviceManagement/managedDevices", q.selected, func(k int) string { return p.props[k].name })
	b = appendPageHead(b, ctx, pl.total, p.next, oddPage)
	valueAt := len(b) - 1

	// Unfiltered listings of an unmutated tenant skip the per-device test.
	check := q.filtered || len(st.removed) > 0
	var d device
	n := 0
	ext := pl.ext
	for i := ext.first; i >= 0 && i <= ext.last; i++ {
		if check && !s.lists(st, q, i) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		at := len(b)
		s.current(st, i, &d)
		if q.selected == nil {
			b = appendDevice(b, &d, p.props)
		} else {
			b = appendSelected(b, &d, p.props, q.selected)
		}
		if n == p.corrupt {
			b[at] = '#'
		}
		n++
		if len(b) >= flushAt {
			if _, err := out.Write(b); err != nil {
				*bp = b
				return n, err // the client went away
			}
			b = b[:0]
		}
	}
	if n == 0 && p.corrupt >= 0 {
		b[valueAt] = '#'
	}
	b = appendPageTail(b, p.next, oddPage)
	_, err := out.Write(b)
	*bp = b
	return n, err
}

// appendPageHead opens a collection page up to its "value" array's '[':
// the context, the count and, on odd pages, the nextLink (if any).
func appendPageHead(b []byte, context string, count int, next []byte, odd bool) []byte {
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, context)
	b = append(b, `,"@odata.count":`...)
	b = strconv.AppendInt(b, int64(count), 10)
	if next != nil && odd {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, string(next))
	}
	return append(b, `,"value":[`...)
}

// appendPageTail closes what appendPageHead opened, with the nextLink (if
// any) after "value" on even pages.
func appendPageTail(b []byte, next []byte, odd bool) []byte {
	b = append(b, ']')
	if next != nil && !odd {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, string(next))
	}
	return append(b, '}')
}

// countWriter counts what a page would write.
type countWriter struct{ n int64 }

func (c *countWriter) Write(b []byte) (int, error) { c.n += int64(len(b)); return len(b), nil }

// cutWriter passes on the first left bytes and then fails.
type cutWriter struct {
	w    io.Writer
	left int64
}

var errCut = errors.New("graphsim: page cut short")

func (c *cutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) <= c.left {
		c.left -= int64(len(b))
		return c.w.Write(b)
	}
	n, err := c.w.Write(b[:c.left])
	c.left = 0
	if err == nil {
		err = errCut
	}
	return n, err
}

// pageExtent is the index range of one page: the devices of the page are
// those in first..last that are listed. first is -1 for an empty page.
type pageExtent struct {
	first, last int
	more        bool // a listed device follows last: the page needs a nextLink
}

func (s *Server) extent(st *tenantState, q *query, start, size int) pageExtent {
	n := st.devices
	ext := pageExtent{first: -1, last: -1}
	if start >= n || q.filtered && q.os >= osCount {
		return ext
	}
	if !q.filtered && len(st.removed) == 0 {
		ext.first, ext.last = start, min(start+size, n)-1
		ext.more = ext.last+1 < n
		return ext
	}
	// Filtering tests operatingSystem alone, which is far cheaper than
	// generating devices.
	found := 0
	i := start
	for ; i < n && found < size; i++ {
		if s.lists(st, q, i) {
			if ext.first < 0 {
				ext.first = i
			}
			ext.last = i
			found++
		}
	}
	for ; found == size && i < n; i++ {
		if s.lists(st, q, i) {
			ext.more = true
			break
		}
	}
	return ext
}

// lists reports whether device i belongs to the listing of q.
func (s *Server) lists(st *tenantState, q *query, i int) bool {
	return st.listed(i) && (!q.filtered || s.osOf(i) == q.os)
}

// listedBefore counts the devices of q's listing among the indexes
// 0..pos-1.
func (s *Server) listedBefore(st *tenantState, q *query, pos int) int {
	pos = min(pos, st.devices)
	if !q.filtered {
		return pos - st.removedBefore(osCount, pos)
	}
	if q.os >= osCount {
		return 0
	}
	return s.matchesBefore(q.os, pos) - st.removedBefore(q.os, pos)
}

// nextLink builds the absolute URL of the next page from the request's own
// scheme and host (or https and host, when given), its path, the options it
// carried and Intune's keyset skip token.
func (s *Server) nextLink(r *http.Request, q *query, lastName string, last int, host string) []byte {
	b := linkPrefix(r, q.carry, host)
	var id [36]byte
	return appendSkipToken(b, lastName, appendDeviceID(id[:0], s.cfg.Seed, last))
}

// linkPrefix is a nextLink up to its skip token's value: the request's
// scheme and host (or https and host, when given), its path and the
// options to carry, then "$skiptoken=".
func linkPrefix(r *http.Request, carry []queryOption, host string) []byte {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if host == "" {
		host = r.Host
	} else {
		scheme = "https"
	}
	b := make([]byte, 0, 256)
	b = append(b, scheme...)
	b = append(b, "://"...)
	b = append(b, host...)
	b = append(b, r.URL.EscapedPath()...)
	b = append(b, '?')
	for _, o := range carry {
		b = append(b, o.key...)
		b = append(b, '=')
		b = appendEscaped(b, o.value, "'(),*")
		b = append(b, '&')
	}
	return append(b, "$skiptoken="...)
}

// pageFault marks fault applied on the answer of a page and returns its
// kind, the one the page's writer must act out; none for a slow fault,
// which has had its effect, or no fault.
func (s *Server) pageFault(w *exchange, fault *Fault) FaultKind {
	if fault == nil || fault.Kind == FaultSlow {
		return ""
	}
	s.applied(w, fault)
	return fault.Kind
}
