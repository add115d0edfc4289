package graphsim

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// The app collections:
//
//	GET /{v1.0|beta}/deviceManagement/detectedApps                        every app, in listing order
//	GET /{v1.0|beta}/deviceManagement/detectedApps/{id}                   one app
//	GET /{v1.0|beta}/deviceManagement/detectedApps/{id}/managedDevices    the devices holding it (managedDevice objects)
//	GET /beta/deviceManagement/managedDevices/{id}/detectedApps           the apps of one device (beta only)
//
// Keys may be written in OData's parentheses too: detectedApps('{id}').
// They page like managedDevices: $top (else Config.AppPageSize), a keyset
// $skiptoken in an absolute @odata.nextLink that carries the other
// options, placed before "value" on odd pages and after it on even ones,
// @odata.count on every page. $select works on all of them, $count and
// $orderby are accepted (the order stays the listing's), $filter is not
// simulated (400). On the app list, $expand=managedDevices is accepted and
// expands nothing, which is what Graph does: expanding the relationship
// works on a single app only, see
// https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/3193.
// Each request of these collections waits Config.Latency, is refused with
// Intune's 403 under Config.Forbidden, and an unknown or removed app or
// device is 404 ResourceNotFound.

// detectedAppProps are the detectedApp's properties in the resource's
// documented order, which is the order Graph writes them.
var detectedAppProps = []string{"id", "displayName", "version", "sizeInByte", "deviceCount", "publisher", "platform"}

func appPropName(k int) string { return detectedAppProps[k] }

func findAppProperty(name string) int {
	for k, p := range detectedAppProps {
		if strings.EqualFold(p, name) {
			return k
		}
	}
	return -1
}

// appendApp writes app a as Graph does, with only the properties sel when
// it is not nil.
func (s *Server) appendApp(b []byte, v *appView, a int, sel []int) []byte {
	e := v.entry(a)
	b = append(b, '{')
	n := len(detectedAppProps)
	if sel != nil {
		n = len(sel)
	}
	for k := 0; k < n; k++ {
		p := k
		if sel != nil {
			p = sel[k]
		}
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, detectedAppProps[p]...)
		b = append(b, '"', ':')
		switch p {
		case 0:
			b = append(b, '"')
			b = appendAppID(b, s.cfg.Seed, a)
			b = append(b, '"')
		case 1:
			b = appendString(b, e.name)
		case 2:
			b = appendString(b, e.version)
		case 3:
			b = strconv.AppendInt(b, e.size, 10)
		case 4:
			b = strconv.AppendInt(b, int64(v.counts[a]), 10)
		case 5:
			b = appendString(b, e.publisher)
		case 6:
			b = appendString(b, detectedAppPlatforms[e.os])
		}
	}
	return append(b, '}')
}

// AppID returns the id of the app with index a (apps are numbered in
// listing order, those ChangeApps creates after the others).
func (s *Server) AppID(a int) string { return string(appendAppID(nil, s.cfg.Seed, a)) }

// listSpec describes one app collection for its query parser.
type listSpec struct {
	typeName string                      // the items' type, for error messages
	find     func(name string) int       // a $select name's property index, -1 if none
	expand   string                      // the navigation property $expand takes (and ignores); "" for none
	marker   string                      // the skip token's key, lower case, followed by '='
	index    func(id string) (int, bool) // the index the skip token's id names
}

// listQuery is a parsed request of an app collection.
type listQuery struct {
	top      int
	selected []int // property indexes in resource order; nil: all
	skip     int   // index of the skip token's item; -1: first page
	carry    []queryOption
}

// parseListQuery validates the OData options of an app collection request
// the way parseQuery does those of managedDevices. A non-empty message
// means 400 BadRequest.
func parseListQuery(raw string, sp *listSpec) (listQuery, string) {
	q := listQuery{skip: -1}
	var msg string
	q.carry, msg = eachOption(raw, func(key, name, value string) (bool, string) {
		var msg string
		switch name {
		case "$top":
			q.top, msg = parseTop(value)
		case "$select":
			q.selected, msg = parseSelect(value, sp.typeName, sp.find)
		case "$skiptoken":
			i, ok := parseKeyset(value, sp.marker, sp.index)
			if !ok {
				return false, "The skip token '" + value + "' is not valid."
			}
			q.skip = i
			return false, ""
		case "$count":
			msg = checkCount(value)
		case "$orderby":
		case "$filter":
			if strings.TrimSpace(value) != "" {
				msg = "Invalid filter clause"
			}
		case "$expand":
			if sp.expand == "" {
				return false, "Unrecognized query argument specified: '" + key + "'."
			}
			for _, nav := range strings.Split(value, ",") {
				if nav = strings.TrimSpace(nav); nav != "" && !strings.EqualFold(nav, sp.expand) {
					return false, "Could not find a property named '" + nav + "' on type '" + sp.typeName + "'."
				}
			}
		default:
			msg = "Unrecognized query argument specified: '" + key + "'."
		}
		return true, msg
	})
	return q, msg
}

// appendAppSkipToken is the keyset of the app lists, in Intune's style:
// LastDetectedAppId%3d'<id>'.
func (s *Server) appendAppSkipToken(b []byte, a int) []byte {
	b = append(b, "LastDetectedAppId%3d'"...)
	b = appendAppID(b, s.cfg.Seed, a)
	return append(b, '\'')
}

func (s *Server) appSpec(v *appView) *listSpec {
	return &listSpec{
		typeName: "microsoft.graph.detectedApp",
		find:     findAppProperty,
		marker:   "lastdetectedappid=",
		index:    func(id string) (int, bool) { return appIndexFromID(s.cfg.Seed, id, v.total) },
	}
}

// listPreamble does what every app collection request does before its
// page: count it, check the method, parse the query, check the token,
// refuse a bad query and, under Config.Forbidden, the request.
func (s *Server) listPreamble(w *exchange, r *http.Request, ids requestIDs, sp *listSpec) (listQuery, bool) {
	s.appPageRequests.Add(1)
	if !s.allowOnly(w, r, ids, http.MethodGet) {
		return listQuery{}, false
	}
	q, msg := parseListQuery(r.URL.RawQuery, sp)
	if !s.authorize(w, r, ids) {
		return q, false
	}
	if msg != "" {
		s.badRequest(w, ids, msg)
		return q, false
	}
	if s.cfg.Forbidden {
		s.graphError(w, ids, http.StatusForbidden, "Forbidden", intuneForbidden(ids.request))
		return q, false
	}
	return q, true
}

// notFoundKey answers Graph's 404 for a path segment (or key) that names
// nothing.
func (s *Server) notFoundKey(w *exchange, ids requestIDs, key string) {
	s.graphError(w, ids, http.StatusNotFound, "ResourceNotFound", "Resource not found for the segment '"+key+"'.")
}

func versionName(beta bool) string {
	if beta {
		return "beta"
	}
	return "v1.0"
}

// metadata is an @odata.context: the $metadata URL, the path and the
// selected properties, which Graph names in it.
func (s *Server) metadata(version, path string, sel []int, name func(int) string) string {
	u := s.cfg.ScopeHost + "/" + version + "/$metadata#" + path
	if sel == nil {
		return u
	}
	b := make([]byte, 0, len(u)+len(sel)*24)
	b = append(append(b, u...), '(')
	for n, k := range sel {
		if n > 0 {
			b = append(b, ',')
		}
		b = append(b, name(k)...)
	}
	return string(append(b, ')'))
}

func (s *Server) pageSize(q *listQuery) int {
	if q.top > 0 {
		return q.top
	}
	return s.cfg.AppPageSize
}

// serveDetectedApps answers the list of every app.
func (s *Server) serveDetectedApps(w *exchange, r *http.Request, ids requestIDs, beta bool) {
	st := s.state()
	v := s.appView(st)
	sp := s.appSpec(v)
	sp.expand = "managedDevices"
	q, ok := s.listPreamble(w, r, ids, sp)
	if !ok || !s.latency(w, r) {
		return
	}
	ctx := s.metadata(versionName(beta), "deviceManagement/detectedApps", q.selected, appPropName)
	s.writeAppPage(w, r, v, &q, v.listed, ctx)
}

// listedApp is the index of the app id key names, if it is listed.
func (s *Server) listedApp(v *appView, key string) (int, bool) {
	a, ok := appIndexFromID(s.cfg.Seed, key, v.total)
	return a, ok && v.lists(a)
}

// serveDetectedApp answers one app.
func (s *Server) serveDetectedApp(w *exchange, r *http.Request, ids requestIDs, beta bool, key string) {
	st := s.state()
	v := s.appView(st)
	sp := s.appSpec(v)
	sp.expand = "managedDevices"
	q, ok := s.listPreamble(w, r, ids, sp)
	if !ok {
		return
	}
	a, ok := s.listedApp(v, key)
	if !ok {
		s.notFoundKey(w, ids, key)
		return
	}
	b := []byte(`{"@odata.context":`)
	b = appendString(b, s.metadata(versionName(beta), "deviceManagement/detectedApps", q.selected, appPropName)+"/$entity")
	b = append(b, ',')
	b = append(b, s.appendApp(nil, v, a, q.selected)[1:]...)
	if writeBody(w, http.StatusOK, graphContentType, b) == nil {
		s.appPagesServed.Add(1)
	}
}

// serveAppDevices answers the devices of one app.
func (s *Server) serveAppDevices(w *exchange, r *http.Request, ids requestIDs, beta bool, key string) {
	st := s.state()
	v := s.appView(st)
	props := s.v1Props
	if beta {
		props = s.betaProps
	}
	sp := &listSpec{
		typeName: "microsoft.graph.managedDevice",
		find:     func(name string) int { return findProperty(props, name) },
		marker:   "lastdeviceid=",
		index:    s.indexFromID,
	}
	q, ok := s.listPreamble(w, r, ids, sp)
	if !ok {
		return
	}
	a, ok := s.listedApp(v, key)
	if !ok {
		s.notFoundKey(w, ids, key)
		return
	}
	if !s.latency(w, r) {
		return
	}
	size := s.pageSize(&q)
	devs, more := v.devices(st, a, q.skip, size, make([]int32, 0, min(size, int(v.counts[a]))))
	var d device
	var next []byte
	if more {
		last := int(devs[len(devs)-1])
		s.current(st, last, &d)
		var id [36]byte
		next = appendSkipToken(linkPrefix(r, q.carry, ""), d.name, appendDeviceID(id[:0], s.cfg.Seed, last))
	}
	var idb [64]byte
	path := "deviceManagement/detectedApps('" + string(appendAppID(idb[:0], s.cfg.Seed, a)) + "')/managedDevices"
	ctx := s.metadata(versionName(beta), path, q.selected, func(k int) string { return props[k].name })
	before := v.devicesBefore(st, a, q.skip)
	s.writeList(w, ctx, int(v.counts[a]), next, before/size+1, len(devs), func(b []byte, k int) []byte {
		s.current(st, int(devs[k]), &d)
		if q.selected == nil {
			return appendDevice(b, &d, props)
		}
		return appendSelected(b, &d, props, q.selected)
	})
}

// serveDeviceApps answers the apps of one device (beta).
func (s *Server) serveDeviceApps(w *exchange, r *http.Request, ids requestIDs, key string) {
	st := s.state()
	v := s.appView(st)
	sp := s.appSpec(v)
	q, ok := s.listPreamble(w, r, ids, sp)
	if !ok {
		return
	}
	i, ok := s.indexFromID(key)
	if !ok || !st.listed(i) {
		s.notFoundKey(w, ids, key)
		return
	}
	if !s.latency(w, r) {
		return
	}
	path := "deviceManagement/managedDevices('" + s.DeviceID(i) + "')/detectedApps"
	ctx := s.metadata("beta", path, q.selected, appPropName)
	s.writeAppPage(w, r, v, &q, v.deviceApps(st, i), ctx)
}

// writeAppPage answers the page q asks for of a list of apps, given by
// their indexes in listing order.
func (s *Server) writeAppPage(w *exchange, r *http.Request, v *appView, q *listQuery, apps []int32, ctx string) {
	size := s.pageSize(q)
	start, _ := slices.BinarySearch(apps, int32(q.skip+1))
	end := min(start+size, len(apps))
	page := apps[start:end]
	var next []byte
	if end < len(apps) {
		next = s.appendAppSkipToken(linkPrefix(r, q.carry, ""), int(page[len(page)-1]))
	}
	s.writeList(w, ctx, len(apps), next, start/size+1, len(page), func(b []byte, k int) []byte {
		return s.appendApp(b, v, int(page[k]), q.selected)
	})
}

// writeList streams a collection page of n items, written by item, with
// the nextLink before "value" on odd pages and after it on even ones, as
// the managedDevices pages have it.
func (s *Server) writeList(w *exchange, context string, count int, next []byte, number, n int, item func(b []byte, k int) []byte) {
	h := w.Header()
	h.Set("Content-Type", graphContentType)
	w.WriteHeader(http.StatusOK)
	odd := number%2 == 1
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := (*bp)[:0]
	b = appendPageHead(b, context, count, next, odd)
	for k := 0; k < n; k++ {
		if k > 0 {
			b = append(b, ',')
		}
		b = item(b, k)
		if len(b) >= flushAt {
			if _, err := w.Write(b); err != nil {
				*bp = b
				return // the client went away
			}
			b = b[:0]
		}
	}
	b = appendPageTail(b, next, odd)
	_, err := w.Write(b)
	*bp = b
	if err == nil {
		s.appPagesServed.Add(1)
	}
}
