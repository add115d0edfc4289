package graphsim

import (
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
	if s.cfg.Latency > 0 {
		t := time.NewTimer(s.cfg.Latency)
		select {
		case <-r.Context().Done():
			t.Stop()
			return
		case <-t.C:
		}
	}

	size := s.cfg.PageSize
	if q.top > 0 {
		size = q.top
	}
	start := q.skip + 1
	ext := s.extent(&q, start, size)

	// The page number decides where the nextLink goes: before "value" on
	// odd pages, after it on even ones, so that a client parser meets both.
	total := s.cfg.Devices
	before := start
	if q.filtered {
		total, before = s.matchesBefore(q.os, s.cfg.Devices), s.matchesBefore(q.os, start)
	}
	oddPage := (before/size)%2 == 0

	var d device
	var next []byte
	if ext.more {
		s.generate(ext.last, &d)
		next = s.nextLink(r, &q, d.name, ext.last)
	}

	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := (*bp)[:0]
	b = append(b, `{"@odata.context":`...)
	b = appendString(b, s.contextURL(version, props, q.selected))
	b = append(b, `,"@odata.count":`...)
	b = strconv.AppendInt(b, int64(total), 10)
	if next != nil && oddPage {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, string(next))
	}
	b = append(b, `,"value":[`...)

	w.Header().Set("Content-Type", graphContentType)
	w.WriteHeader(http.StatusOK)
	first := true
	for i := ext.first; i >= 0 && i <= ext.last; i++ {
		if q.filtered && s.osOf(i) != q.os {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		s.generate(i, &d)
		if q.selected == nil {
			b = appendDevice(b, &d, props)
		} else {
			b = appendSelected(b, &d, props, q.selected)
		}
		if len(b) >= flushAt {
			if _, err := w.Write(b); err != nil {
				*bp = b
				return // the client went away
			}
			b = b[:0]
		}
	}
	b = append(b, ']')
	if next != nil && !oddPage {
		b = append(b, `,"@odata.nextLink":`...)
		b = appendString(b, string(next))
	}
	b = append(b, '}')
	_, err := w.Write(b)
	*bp = b
	if err == nil {
		s.pagesServed.Add(1)
	}
}

// pageExtent is the index range of one page: the devices of the page are
// those in first..last that match the filter. first is -1 for an empty page.
type pageExtent struct {
	first, last int
	more        bool // a matching device follows last: the page needs a nextLink
}

func (s *Server) extent(q *query, start, size int) pageExtent {
	n := s.cfg.Devices
	ext := pageExtent{first: -1, last: -1}
	if start >= n {
		return ext
	}
	if !q.filtered {
		ext.first, ext.last = start, min(start+size, n)-1
		ext.more = ext.last+1 < n
		return ext
	}
	if q.os >= osCount {
		return ext
	}
	// Filtering tests operatingSystem alone, which is far cheaper than
	// generating devices.
	found := 0
	i := start
	for ; i < n && found < size; i++ {
		if s.osOf(i) == q.os {
			if ext.first < 0 {
				ext.first = i
			}
			ext.last = i
			found++
		}
	}
	for ; found == size && i < n; i++ {
		if s.osOf(i) == q.os {
			ext.more = true
			break
		}
	}
	return ext
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
