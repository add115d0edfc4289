package graphsim

import (
	"fmt"
	"net/http"
	"sync"
)

// One device:
//
//	GET /{v1.0|beta}/deviceManagement/managedDevices/{id}
//	GET /{v1.0|beta}/deviceManagement/managedDevices('{id}')
//
// Without $select Graph answers the device as its list writes it, the
// list-default properties at their placeholders, as a single entity
// (@odata.context ".../$metadata#deviceManagement/managedDevices/$entity").
// With $select it answers only the selected properties, in resource order,
// the list-default ones with their real values (details.go); the context
// names them: ".../managedDevices(id,notes)/$entity". This is the only way
// to read the real values, which is why clients fetch "details" one device
// at a time, in $batch requests of 20 (batch.go).
//
// $select is the one option: a collection's ($top, $skip, $skiptoken,
// $filter, $orderby, $count) is refused with ASP.NET OData's 400, an
// unknown one as the list refuses it, and so is a property the version
// does not have (v1.0 has no hardwareInformation). An unknown or removed
// device, and one that Config.GoneOnGet makes vanish, is Intune's 404.

// notCollection is ASP.NET OData's answer to a collection's option on a
// single entity.
const notCollection = "The query specified in the URI is not valid. The requested resource is not a collection. " +
	"Query options $filter, $orderby, $count, $skip, and $top can be applied only on collections."

// serveDevice answers GET of one device.
func (s *Server) serveDevice(w *exchange, r *http.Request, ids requestIDs, beta bool, key string) {
	if !s.allowOnly(w, r, ids, http.MethodGet) {
		return
	}
	props := s.propsOf(beta)
	sel, msg := parseEntityQuery(r.URL.RawQuery, props)
	if !s.readable(w, r, ids, msg) {
		return
	}
	st := s.state()
	i, ok := s.indexFromID(key)
	if !ok || !st.listed(i) || s.GoneOnGet(i) {
		s.deviceNotFound(w, ids, key)
		return
	}
	if kind := s.deviceFault(i); kind != "" {
		s.applied(w, &Fault{Kind: kind})
		s.answerFault(w, r, ids, &Fault{Kind: kind})
		return
	}
	if !s.stall.pass(r) || !s.latency(w, r) {
		return
	}
	d := devicePool.Get().(*device)
	defer devicePool.Put(d)
	s.current(st, i, d)
	details := selectsListDefault(props, sel)
	if details {
		s.fillDetails(st, d)
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := append((*bp)[:0], `{"@odata.context":`...)
	b = appendString(b, s.metadata(versionName(beta), "deviceManagement/managedDevices", sel, func(k int) string { return props[k].name })+"/$entity")
	// The device's own '{' becomes the comma after the context.
	at := len(b)
	if sel == nil {
		b = appendDevice(b, d, props)
	} else {
		b = appendFields(b, d, props, sel, true)
	}
	b[at] = ','
	*bp = b
	w.got = &deviceGet{index: i, details: details}
	if w.batched {
		_ = writeBody(w, http.StatusOK, graphContentType, b) // into the batch's buffer, counted with the batch
		return
	}
	s.countDeviceGet(w.got, 1)
	if writeBody(w, http.StatusOK, graphContentType, b) != nil {
		s.countDeviceGet(w.got, -1)
	}
}

// devicePool holds the devices of single-device GETs: a device is a few
// kilobytes that the property writers make escape, and a client fetching
// details asks for a hundred thousand.
var devicePool = sync.Pool{New: func() any { return new(device) }}

// deviceGet is a single-device GET answered 200, for the counters: a
// direct one counts with its answer, one inside a $batch with the
// batch's, so that a client that never received it is not counted (a
// stalled batch whose client gave up counts nothing). They count just
// before the answer is written, and are taken back if writing it fails,
// so that a client that has read its answer always finds it counted.
type deviceGet struct {
	index   int
	details bool // its $select named a list-default property
}

// countDeviceGet adds n (1, or -1 to take it back) to g's counters.
func (s *Server) countDeviceGet(g *deviceGet, n int) {
	s.deviceGets.Add(int64(n))
	if !g.details {
		return
	}
	s.detailGets.Add(int64(n))
	s.fetchMu.Lock()
	if s.fetches[g.index] += n; s.fetches[g.index] == 0 {
		delete(s.fetches, g.index)
	}
	s.fetchMu.Unlock()
}

// DetailFetches returns, by device id, how many single-device GETs
// (direct or inside a $batch) whose $select named at least one
// list-default property were answered 200 (see deviceGet for when they
// count): what a test compares with "each device's details fetched
// exactly once".
func (s *Server) DetailFetches() map[string]int {
	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	out := make(map[string]int, len(s.fetches))
	for i, n := range s.fetches {
		out[s.DeviceID(i)] = n
	}
	return out
}

// GoneOnGet reports whether device i vanishes for single-device GETs
// (Config.GoneOnGet, Config.GoneOnGetEvery) while listings still show it.
func (s *Server) GoneOnGet(i int) bool {
	n := s.cfg.GoneOnGetEvery
	return s.goneOnGet[i] || n > 0 && i%n == n-1
}

// parseEntityQuery validates the OData options of a single-device GET;
// it returns the $select (nil: everything) or a 400's message.
func parseEntityQuery(raw string, props []property) ([]int, string) {
	var sel []int
	_, msg := eachOption(raw, func(key, name, value string) (bool, string) {
		switch name {
		case "$select":
			var msg string
			sel, msg = parseSelect(value, "microsoft.graph.managedDevice", func(name string) int { return findProperty(props, name) })
			return false, msg
		case "$top", "$skip", "$skiptoken", "$filter", "$orderby", "$count":
			return false, notCollection
		}
		return false, "Unrecognized query argument specified: '" + key + "'."
	})
	return sel, msg
}

// selectsListDefault reports whether sel names a list-default property.
func selectsListDefault(props []property, sel []int) bool {
	for _, k := range sel {
		if props[k].listDefault {
			return true
		}
	}
	return false
}

// deviceNotFound answers Intune's 404 for a device it does not hold.
func (s *Server) deviceNotFound(w http.ResponseWriter, ids requestIDs, key string) {
	quoted := appendString(nil, key) // the key goes into a JSON document of its own
	s.graphError(w, ids, http.StatusNotFound, "ResourceNotFound", intuneMessageAt(
		"An error has occurred - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000", ids.request,
		"DeviceFE/StatelessDeviceFEService/deviceManagement/managedDevices('"+string(quoted[1:len(quoted)-1])+"')"))
}

// stallState is Config.StallDetailsAfter at run time.
type stallState struct {
	mu      sync.Mutex
	after   int           // 0: off
	passed  int           // single-device GETs let through since it was set
	waiting int           // GETs hanging now
	release chan struct{} // closed when the setting changes, which wakes those waiting
}

// SetStallDetailsAfter lets n more single-device GETs (direct or inside a
// $batch) that find their device through and makes every later one hang
// until its client gives up or the setting changes; n <= 0 clears the
// stall. The GETs hanging when it changes go on under the new setting:
// all of them when it is cleared. It is safe to call while requests are
// served.
func (s *Server) SetStallDetailsAfter(n int) {
	st := &s.stall
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.release != nil {
		close(st.release)
	}
	st.after, st.passed, st.release = max(n, 0), 0, make(chan struct{})
}

// pass waits while GETs are stalled; it reports whether the request is
// still wanted.
func (st *stallState) pass(r *http.Request) bool {
	for {
		st.mu.Lock()
		if st.after == 0 || st.passed < st.after {
			if st.after > 0 {
				st.passed++
			}
			st.mu.Unlock()
			return true
		}
		release := st.release
		st.waiting++
		st.mu.Unlock()
		var gone bool
		select {
		case <-r.Context().Done():
			gone = true
		case <-release:
		}
		st.mu.Lock()
		st.waiting--
		st.mu.Unlock()
		if gone {
			return false
		}
	}
}

// StalledGets returns how many single-device GETs hang now under
// SetStallDetailsAfter. A crash test waits for it to be positive before
// killing its client, and for 0 again (the simulator has seen the client
// go) before clearing the stall: a GET released before its client's
// disconnection is noticed would be answered, and counted, after all.
func (s *Server) StalledGets() int {
	s.stall.mu.Lock()
	defer s.stall.mu.Unlock()
	return s.stall.waiting
}

// SetDeviceFault makes every single-device GET of the devices at indices,
// direct or inside a batch, answer kind, one of the status kinds of
// faults.go (429, 500, 503, 403, ...), as Graph answers a client whose
// GETs of some devices fail while the list works; "" clears theirs. A kind
// that is not a status is an error.
func (s *Server) SetDeviceFault(kind FaultKind, indices ...int) error {
	if kind != "" && !kind.isStatus() {
		return fmt.Errorf("device fault %q: want one of the status kinds", kind)
	}
	s.deviceFaultMu.Lock()
	defer s.deviceFaultMu.Unlock()
	next := make(map[int]FaultKind, len(s.deviceFaults)+len(indices))
	for i, k := range s.deviceFaults {
		next[i] = k
	}
	for _, i := range indices {
		if kind == "" {
			delete(next, i)
		} else {
			next[i] = kind
		}
	}
	s.deviceFaults = next
	return nil
}

func (s *Server) deviceFault(i int) FaultKind {
	s.deviceFaultMu.Lock()
	defer s.deviceFaultMu.Unlock()
	return s.deviceFaults[i]
}
