package graphsim

import (
	"net/http"
	"strings"
)

// A compliance policy's or configuration profile's deviceStatuses: one
// status per listed device of the policy's platform, in the device list's
// order, written while the page is written (a tenant of a million devices
// costs no memory for them). A status follows its device as the tenant
// holds it now: its name, user, model, check-in; and a compliance status
// agrees with the device's complianceState: a compliant device is
// compliant with each of its platform's policies (now and then
// "remediated"), a noncompliant or in-grace device is nonCompliant with
// one of them (the others compliant) with the device's grace period
// expiry, a device in conflict or error has that status for one of them,
// and unknown and configManager devices report unknown and notApplicable
// for all. A configuration profile's
// statuses are mostly compliant (Intune's "succeeded"), some pending
// (unknown), in error, in conflict or not applicable; a device's change
// (Change) draws them anew.

// column is one property of a generated item and how to write it.
type column[T any] struct {
	name  string
	in    ver
	write func(b []byte, x *T) []byte
}

// columnsFor returns the columns version beta has, in order.
func columnsFor[T any](all []column[T], beta bool) []column[T] {
	v := verOf(beta)
	var out []column[T]
	for _, c := range all {
		if c.in&v != 0 {
			out = append(out, c)
		}
	}
	return out
}

// appendColumns writes x with the columns, only those of sel (indexes
// into cols, ascending) when sel is not nil.
func appendColumns[T any](b []byte, x *T, cols []column[T], sel []int) []byte {
	b = append(b, '{')
	n := len(cols)
	if sel != nil {
		n = len(sel)
	}
	for k := 0; k < n; k++ {
		c := &cols[k]
		if sel != nil {
			c = &cols[sel[k]]
		}
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, c.name...)
		b = append(b, '"', ':')
		b = c.write(b, x)
	}
	return append(b, '}')
}

// policyStatus is one device's status for one policy.
type policyStatus struct {
	d            device
	policyID     string
	status       string
	grace        int64
	reported     int64
	frac         int
	modelUnknown bool // a configuration profile's status: deviceModel null
}

// systemAccount is what a status of a device without a user (a
// device-context report) names as its user.
const systemAccount = "System account"

func (p *policyStatus) appendID(b []byte) []byte {
	b = append(b, '"')
	b = appendDeviceID(b, p.d.seed, p.d.index)
	b = append(b, '_')
	b = append(b, p.policyID...)
	b = append(b, '_')
	g := appendGUID(nil, p.d.userID)
	b = append(b, g[1:len(g)-1]...)
	return append(b, '"')
}

var statusColumns = []column[policyStatus]{
	{"id", inBoth, func(b []byte, p *policyStatus) []byte { return p.appendID(b) }},
	{"deviceDisplayName", inBoth, func(b []byte, p *policyStatus) []byte { return appendString(b, p.d.name) }},
	{"userName", inBoth, func(b []byte, p *policyStatus) []byte {
		if p.d.userless {
			return appendString(b, systemAccount)
		}
		return appendString(b, p.d.displayName)
	}},
	{"deviceModel", inBoth, func(b []byte, p *policyStatus) []byte {
		if p.modelUnknown {
			return append(b, "null"...)
		}
		return appendString(b, p.d.hw.model)
	}},
	{"platform", inBeta, func(b []byte, _ *policyStatus) []byte { return append(b, '0') }},
	{"complianceGracePeriodExpirationDateTime", inBoth, func(b []byte, p *policyStatus) []byte { return appendTicks(b, p.grace, 0) }},
	{"status", inBoth, func(b []byte, p *policyStatus) []byte { return appendString(b, p.status) }},
	{"lastReportedDateTime", inBoth, func(b []byte, p *policyStatus) []byte { return appendTicks(b, p.reported, p.frac) }},
	{"userPrincipalName", inBoth, func(b []byte, p *policyStatus) []byte {
		if p.d.userless {
			return appendString(b, systemAccount)
		}
		return appendString(b, p.d.upn)
	}},
}

// Configuration profiles' statuses, weighted.
var (
	configStatuses      = []string{"compliant", "unknown", "error", "conflict", "notApplicable", "remediated"}
	configStatusWeights = []int{88, 4, 3, 2, 2, 1}
)

// The kinds of policy that report statuses: perOS's index.
const (
	compliancePolicyKind = 0
	configurationKind    = 1
)

// statusOf fills p with the status of device d (p.d, filled by current)
// for policy pol, of kind compliancePolicyKind or configurationKind.
func (s *Server) statusOf(st *tenantState, c *intuneCatalog, kind int, pol *record, p *policyStatus) {
	d := &p.d
	p.policyID, p.modelUnknown = pol.id, kind == configurationKind
	rev := uint64(st.changes[d.index])
	r := newRNG(s.cfg.Seed, d.index, saltStatus+uint64(kind)<<12+uint64(pol.nth)<<4+rev<<16)
	p.reported = d.lastSync - int64(r.intn(6*3600))
	p.frac = r.intn(1e7)
	p.grace = foreverTime
	if kind == configurationKind {
		p.status = configStatuses[r.weighted(configStatusWeights)]
		return
	}
	// The policy a noncompliant device fails: one of its platform's.
	culprit := newRNG(s.cfg.Seed, d.index, saltStatus+0xc0)
	failing := culprit.intn(max(len(c.perOS[kind][d.os]), 1)) == pol.nth
	p.status = "compliant"
	switch d.compliance {
	case "compliant":
		if r.chance(2) {
			p.status = "remediated"
		}
	case "noncompliant", "inGracePeriod":
		if failing {
			p.status, p.grace = "nonCompliant", d.graceExpiry
		}
	case "unknown":
		p.status = "unknown"
	case "configManager":
		p.status = "notApplicable"
	case "conflict", "error":
		if failing {
			p.status = d.compliance
		}
	}
}

// statusKind is the kind of statuses c's policies report.
func statusKind(c *intuneCollection) int {
	if c.list.kind == KindCompliancePolicies {
		return compliancePolicyKind
	}
	return configurationKind
}

// serveDeviceStatuses answers a policy's deviceStatuses.
func (s *Server) serveDeviceStatuses(w *exchange, r *http.Request, ids requestIDs, beta bool, c *intuneCollection, key string) {
	if !s.allowOnly(w, r, ids, http.MethodGet) {
		return
	}
	cat := s.intuneCatalog()
	records := c.records(cat)
	var pol *record
	if k, ok := recordIndex(records, key); ok && records[k].in&verOf(beta) != 0 {
		pol = records[k]
	}
	st := s.state()
	index := func(id string) (int, bool) {
		// {deviceId}_{policyId}_{userId}: the device's id finds the place.
		if pol == nil || len(id) < 37 || !strings.HasPrefix(strings.ToLower(id[36:]), "_"+strings.ToLower(pol.id)+"_") {
			return 0, false
		}
		return s.indexFromID(id[:36])
	}
	q, _, msg := s.intuneQuery(r, c.statuses, beta, "", index)
	p := &intunePage{list: c.statuses, q: q, msg: msg}
	if pol == nil {
		p.missing = key
	}
	if msg == "" && pol != nil {
		kind := statusKind(c)
		dq := query{filtered: true, os: pol.os, skip: q.skip}
		size := s.intunePageSize(&q)
		start := q.skip + 1
		ext := s.extent(st, &dq, start, size)
		var page []int32
		for i := ext.first; i >= 0 && i <= ext.last; i++ {
			if s.lists(st, &dq, i) {
				page = append(page, int32(i))
			}
		}
		p.number = s.listedBefore(st, &dq, start)/size + 1
		p.count = s.listedBefore(st, &dq, st.devices)
		p.n = len(page)
		props := c.statuses.propsOf(beta)
		p.context = s.intuneContext(beta, c.parent+"/"+c.name+"('"+pol.id+"')/deviceStatuses", q.selected, props, false)
		cols := columnsFor(statusColumns, beta)
		var ps policyStatus
		p.item = func(b []byte, k int) []byte {
			s.current(st, int(page[k]), &ps.d)
			s.statusOf(st, cat, kind, pol, &ps)
			return appendColumns(b, &ps, cols, q.selected)
		}
		if ext.more {
			var last policyStatus
			s.current(st, int(page[len(page)-1]), &last.d)
			last.policyID = pol.id
			id := last.appendID(nil)
			p.next = func(host string) []byte {
				return keysetLink(r, q.carry, host, c.statuses.marker, string(id[1:len(id)-1]))
			}
		}
	}
	s.serveIntunePage(w, r, ids, p)
}
