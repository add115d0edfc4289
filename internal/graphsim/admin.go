package graphsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// The admin endpoints let a test drive a simulator running in another
// process (cmd/graphsim). They need no token: the simulator guards nothing.
//
//	POST /_graphsim/mutate  {"change":[1,2],"touch":[3],"change_apps":[5],"change_details":[6],"remove":[4],"add":5}
//	                        -> {"count":N,"first_added":K}
//	POST /_graphsim/faults  [{"page":2,"attempt":1,"kind":"429","retry_after":"1.5"}, ...]
//	                        -> {"faults":N}
//	POST /_graphsim/details {"stall_after":N}
//	                        -> {"stall_after":N}
//	GET  /_graphsim/stats   -> Stats as JSON (its field names)
//
// A mutation applies change, touch, change_apps (ChangeApps),
// change_details (ChangeDetails), remove and then add; first_added is what
// Add returned. Posting faults replaces the script and restarts the
// attempt counts, like SetFaults. Posting details sets the stall of
// single-device GETs, like SetStallDetailsAfter: 0 clears it.
const adminPrefix = "/_graphsim/"

// maxAdminBody bounds an admin request: room for a few hundred thousand
// indexes.
const maxAdminBody = 16 << 20

type mutateRequest struct {
	Change     []int `json:"change"`
	Touch      []int `json:"touch"`
	ChangeApps []int `json:"change_apps"`
	// ChangeDetails: see ChangeDetails.
	ChangeDetails []int `json:"change_details"`
	Remove        []int `json:"remove"`
	Add           int   `json:"add"`
}

type detailsRequest struct {
	StallAfter *int `json:"stall_after"`
}

type mutateResponse struct {
	Count      int `json:"count"`
	FirstAdded int `json:"first_added"`
}

func (s *Server) serveAdmin(w http.ResponseWriter, r *http.Request) {
	s.serveAdminAt(w, r, r.URL.Path[len(adminPrefix):])
}

// serveAdminAt answers the admin endpoint path (what follows /_graphsim/,
// or /_graphsim/tenants/{tenant}/ for one of Tenants).
func (s *Server) serveAdminAt(w http.ResponseWriter, r *http.Request, path string) {
	if path != "mutate" && path != "faults" && path != "details" && path != "stats" {
		adminError(w, http.StatusNotFound, "unknown admin endpoint "+strconv.Quote(r.URL.Path)+" (want /_graphsim/mutate, /_graphsim/faults, /_graphsim/details or /_graphsim/stats)")
		return
	}
	if path == "stats" {
		// What a benchmark in another process counts a run by.
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			adminError(w, http.StatusMethodNotAllowed, r.URL.Path+" takes GET")
			return
		}
		writeJSON(w, http.StatusOK, "application/json", s.Stats())
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		adminError(w, http.StatusMethodNotAllowed, r.URL.Path+" takes POST")
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	switch path {
	case "mutate":
		var m mutateRequest
		if err := dec.Decode(&m); err != nil {
			adminError(w, http.StatusBadRequest, "mutate: "+err.Error())
			return
		}
		if err := s.checkMutation(&m); err != nil {
			adminError(w, http.StatusBadRequest, "mutate: "+err.Error())
			return
		}
		s.Change(m.Change...)
		s.Touch(m.Touch...)
		s.ChangeApps(m.ChangeApps...)
		s.ChangeDetails(m.ChangeDetails...)
		s.Remove(m.Remove...)
		first := s.Add(m.Add)
		writeJSON(w, http.StatusOK, "application/json", mutateResponse{Count: s.Count(), FirstAdded: first})
	case "faults":
		var faults []Fault
		if err := dec.Decode(&faults); err != nil {
			adminError(w, http.StatusBadRequest, "faults: "+err.Error())
			return
		}
		s.SetFaults(faults) // each was validated as it was decoded
		writeJSON(w, http.StatusOK, "application/json", map[string]int{"faults": len(faults)})
	case "details":
		var d detailsRequest
		if err := dec.Decode(&d); err != nil {
			adminError(w, http.StatusBadRequest, "details: "+err.Error())
			return
		}
		if d.StallAfter == nil || *d.StallAfter < 0 {
			adminError(w, http.StatusBadRequest, `details: want {"stall_after":N}, N >= 0 (0 clears the stall)`)
			return
		}
		s.SetStallDetailsAfter(*d.StallAfter)
		writeJSON(w, http.StatusOK, "application/json", map[string]int{"stall_after": *d.StallAfter})
	}
}

// checkMutation refuses indexes that do not exist: over HTTP a silently
// ignored index would be a test bug found much later.
func (s *Server) checkMutation(m *mutateRequest) error {
	n := s.state().devices
	for _, list := range []struct {
		name    string
		indexes []int
	}{{"change", m.Change}, {"touch", m.Touch}, {"change_apps", m.ChangeApps}, {"change_details", m.ChangeDetails}, {"remove", m.Remove}} {
		for _, i := range list.indexes {
			if i < 0 || i >= n {
				return fmt.Errorf("%s: no device %d (the tenant has indexes 0..%d)", list.name, i, n-1)
			}
		}
	}
	if m.Add < 0 {
		return fmt.Errorf("add: %d is negative", m.Add)
	}
	return nil
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, "application/json", map[string]string{"error": msg})
}
