package graphsim

import (
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
func (s *Server) serveCollection(w http.ResponseWriter, r *http.Request, ids requestIDs, beta bool) {
	s.pageRequests.Add(1)
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.graphError(w, ids, http.StatusMethodNotAllowed, "Request_BadRequest", "Specified HTTP method is not allowed for the request target.")
		return
	}
	if !s.authorize(w, r, ids) {
		return
	}
	props, version := v1Properties, "v1.0"
	if beta {
		props, version = betaProperties, "beta"
	}
	q, msg := s.parseQuery(r.URL.RawQuery, props)
	if msg != "" {
		s.badRequest(w, ids, msg)
		return
	}
	if s.cfg.Forbidden {
		// Intune's activity id is its own; reusing the request id keeps
		// the two findable together.
		s.graphError(w, ids, http.StatusForbidden, "Forbidden", intuneForbidden(ids.request))
		return
	}
	if s.cfg.Latency > 0 && !sleep(r, s.cfg.Latency) {
		return
	}
	// One snapshot of the mutations serves the whole request, so a page
	// is consistent even while a test mutates the tenant.
	st := s.state()
	pl := s.plan(st, &q)
	s.servePage(w, r, st, &q, &pl, props, version)
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

// servePage writes the page.
func (s *Server) servePage(w http.ResponseWriter, r *http.Request, st *tenantState, q *query, pl *pagePlan, props []property, version string) {
	var next []byte
	if pl.ext.more {
		var d device
		s.current(st, pl.ext.last, &d)
		next = s.nextLink(r, q, d.name, pl.ext.last)
	}
	pg := pageWriter{s: s, st: st, q: q, pl: pl, props: props, version: version, next: next}
	w.Header().Set("Content-Type", graphContentType)
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
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, s.contextURL(p.version, p.props, q.selected))
	b = append(b, `,"@odata.count":`...)
	b = strconv.AppendInt(b, int64(pl.total), 10)
	if p.next != nil && oddPage {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, string(p.next))
	}
	b = append(b, `,"value":[`...)

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
		s.current(st, i, &d)
		if q.selected == nil {
			b = appendDevice(b, &d, p.props)
		} else {
			b = appendSelected(b, &d, p.props, q.selected)
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
	b = append(b, ']')
	if p.next != nil && !oddPage {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, string(p.next))
	}
	b = append(b, '}')
	_, err := out.Write(b)
	*bp = b
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
// scheme and host, its path, the options it carried and Intune's keyset skip
// token.
func (s *Server) nextLink(r *http.Request, q *query, lastName string, last int) []byte {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	b := make([]byte, 0, 256)
	b = append(b, scheme...)
	b = append(b, "://"...)
	b = append(b, r.Host...)
	b = append(b, r.URL.EscapedPath()...)
	b = append(b, '?')
	for _, o := range q.carry {
		b = append(b, o.key...)
		b = append(b, '=')
		b = appendEscaped(b, o.value, "'(),*")
		b = append(b, '&')
	}
	b = append(b, "$skiptoken="...)
	var id [36]byte
	return appendSkipToken(b, lastName, appendDeviceID(id[:0], s.cfg.Seed, last))
}

// contextURL is @odata.context; Graph names the selected properties in it.
func (s *Server) contextURL(version string, props []property, sel []int) string {
	u := s.cfg.ScopeHost + "/" + version + "/$metadata#deviceManagement/managedDevices"
	if sel == nil {
		return u
	}
	u += "("
	for n, k := range sel {
		if n > 0 {
			u += ","
		}
		u += props[k].name
	}
	return u + ")"
}
