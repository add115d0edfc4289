package graphsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Windows Autopilot device identities: every Windows device of the
// tenant but Cloud PCs (which Windows 365 provisions without Autopilot)
// was registered by its hardware hash, and its identity names it: its
// serial number, manufacturer and model, its Entra device id and, while
// Intune holds it, its managed device id and last contact; a device
// removed from Intune keeps its registration (managedDeviceId
// "00000000-0000-0000-0000-000000000000", enrollmentState notContacted)
// until it enrols again. Then come the devices bought and registered but
// not enrolled yet, one per 25 of Config.Devices: no managed device, never
// contacted, a purchase order more often than not. Identities are
// written while a page is written, like devices; their order is the
// devices' order, then the not yet enrolled ones.
//
// Intune's skip token for this list is a keyset on the serial number
// (LastSerialNumber='...', microsoft-graph-docs#8186); graphsim's adds
// the identity's id after it, which finds the place without an index of
// serial numbers.

// autopilotExtraBase marks the identities without a device: their number
// is autopilotExtraBase plus their rank, which their id's last group
// holds as a device id's holds its index.
const autopilotExtraBase = 1 << 40

// autopilotDevice is one identity, ready to write.
type autopilotDevice struct {
	seed                        int64
	n                           int // its number: a device's index, or autopilotExtraBase plus its rank
	serial, manufacturer, model string
	family, groupTag, order     string
	state                       string
	contacted                   int64
	userName, upn               string
	aad                         guid
	managed                     string // the managed device's id; "" for none
	profileStatus               string
	profileAssigned             int64
}

// autopilotExtras is how many identities have no device yet.
func (s *Server) autopilotExtras() int { return s.cfg.Devices / 25 }

// autopilotEligible reports whether device i is registered with
// Autopilot: a Windows device that is not a Cloud PC. It draws only the
// device's operating system and hardware, which come first in their
// streams.
func (s *Server) autopilotEligible(i int) bool {
	if s.osOf(i) != osWindows {
		return false
	}
	r := newRNG(s.cfg.Seed, i, saltDevice)
	return !strings.HasPrefix(pick(&r, hardwareByOS[osWindows]).model, "Cloud PC")
}

// autopilotBefore counts the registered devices among indexes 0..pos-1,
// from an index per block of osBlock devices built on first use.
func (s *Server) autopilotBefore(pos int) int {
	s.autopilotOnce.Do(func() {
		n := s.cfg.Devices
		idx := make([]int32, (n+osBlock-1)/osBlock)
		for i := 0; i < n; i++ {
			if s.autopilotEligible(i) {
				idx[i/osBlock]++
			}
		}
		s.autopilotBlocks = idx
	})
	pos = min(pos, s.state().devices)
	block := min(pos, s.cfg.Devices) / osBlock
	n := 0
	for b := 0; b < block; b++ {
		n += int(s.autopilotBlocks[b])
	}
	for i := block * osBlock; i < pos; i++ {
		if s.autopilotEligible(i) {
			n++
		}
	}
	return n
}

func appendAutopilotID(b []byte, seed int64, n int) []byte {
	return appendIndexedGUID(b, seed, n, saltAutopilot)
}

// autopilotIndex finds the number an identity's id encodes, if this
// tenant has it now.
func (s *Server) autopilotIndex(id string) (int, bool) {
	if len(id) != 36 {
		return 0, false
	}
	v, err := strconv.ParseUint(id[24:], 16, 64)
	if err != nil {
		return 0, false
	}
	n := int(v)
	switch {
	case n >= autopilotExtraBase:
		if n-autopilotExtraBase >= s.autopilotExtras() {
			return 0, false
		}
	case n >= s.state().devices || !s.autopilotEligible(n):
		return 0, false
	}
	var buf [36]byte
	return n, strings.EqualFold(string(appendAutopilotID(buf[:0], s.cfg.Seed, n)), id)
}

// systemFamily is the SMBIOS system family Windows reports for a model.
func systemFamily(model string) string {
	switch {
	case strings.HasPrefix(model, "Latitude"):
		return "Latitude"
	case strings.HasPrefix(model, "OptiPlex"):
		return "OptiPlex"
	case strings.HasPrefix(model, "21HD"):
		return "ThinkPad T14 Gen 4"
	case strings.HasPrefix(model, "20XW"):
		return "ThinkPad X1 Carbon Gen 9"
	case strings.HasPrefix(model, "HP EliteBook"):
		return "103C_5336AN HP EliteBook"
	case strings.HasPrefix(model, "HP ProDesk"):
		return "103C_53307F HP ProDesk"
	case strings.HasPrefix(model, "Surface"):
		return "Surface"
	case model == "Virtual Machine":
		return "Virtual Machine"
	}
	return ""
}

var autopilotGroupTags = []string{"", "", "Corporate", "Shared", "Developers"}

// autopilotAt fills a with identity n as the tenant holds it now.
func (s *Server) autopilotAt(st *tenantState, n int, a *autopilotDevice) {
	*a = autopilotDevice{seed: s.cfg.Seed, n: n}
	if n >= autopilotExtraBase {
		s.autopilotExtra(n-autopilotExtraBase, a)
		return
	}
	var d device
	s.current(st, n, &d)
	r := newRNG(s.cfg.Seed, n, saltAutopilot)
	a.serial, a.manufacturer, a.model = d.serial, d.hw.manufacturer, d.hw.model
	a.family = systemFamily(d.hw.model)
	a.groupTag = pick(&r, autopilotGroupTags)
	if d.category != "Unknown" && r.chance(70) {
		a.groupTag = d.category
	}
	if r.chance(40) {
		a.order = purchaseOrder(&r, d.enrolled)
	}
	a.aad = d.aadDeviceID
	if a.aad == (guid{}) {
		a.aad = newGUID(&r)
	}
	a.contacted = d.lastSync
	a.state = "notContacted"
	if st.listed(n) {
		a.state, a.managed = "enrolled", s.DeviceID(n)
	}
	if !d.userless && r.chance(20) {
		a.userName, a.upn = d.displayName, d.upn
	}
	switch k := r.intn(20); {
	case k == 0:
		a.profileStatus, a.profileAssigned = "notAssigned", neverTime
	case k < 3:
		a.profileStatus = "assignedInSync"
	default:
		// Microsoft's own spelling of the value.
		a.profileStatus = "assignedUnkownSyncState"
	}
	if a.profileAssigned == 0 {
		a.profileAssigned = d.enrolled - int64(1+r.intn(30*day))
	}
}

// autopilotExtra fills a with the j-th identity registered but not
// enrolled yet: new hardware (no Cloud PC, no virtual machine).
func (s *Server) autopilotExtra(j int, a *autopilotDevice) {
	r := newRNG(s.cfg.Seed, j, saltAutopilot+1)
	hw := hardwareByOS[osWindows][r.intn(len(hardwareByOS[osWindows])-2)]
	a.manufacturer, a.model, a.family = hw.manufacturer, hw.model, systemFamily(hw.model)
	a.serial = serialNumber(&r, hw.manufacturer)
	a.groupTag = pick(&r, autopilotGroupTags)
	registered := dataNow - int64(r.intn(45*day))
	if r.chance(80) {
		a.order = purchaseOrder(&r, registered)
	}
	a.aad = newGUID(&r)
	a.state, a.contacted = "notContacted", neverTime
	a.profileStatus, a.profileAssigned = "notAssigned", neverTime
	if r.chance(70) {
		a.profileStatus, a.profileAssigned = "assignedUnkownSyncState", registered+int64(r.intn(day))
	}
}

// purchaseOrder is an order number of the year of unix.
func purchaseOrder(r *rng, unix int64) string {
	return "PO-" + strconv.Itoa(time.Unix(unix, 0).UTC().Year()) + "-" + string(appendPad(nil, r.intn(100000), 5))
}

func autoStr(get func(a *autopilotDevice) string) func([]byte, *autopilotDevice) []byte {
	return func(b []byte, a *autopilotDevice) []byte { return appendString(b, get(a)) }
}

func autoConst(v string) func([]byte, *autopilotDevice) []byte {
	q := appendString(nil, v)
	return func(b []byte, _ *autopilotDevice) []byte { return append(b, q...) }
}

var autopilotAllColumns = []column[autopilotDevice]{
	{"id", inBoth, func(b []byte, a *autopilotDevice) []byte {
		b = append(b, '"')
		b = appendAutopilotID(b, a.seed, a.n)
		return append(b, '"')
	}},
	{"deploymentProfileAssignmentStatus", inBeta, autoStr(func(a *autopilotDevice) string { return a.profileStatus })},
	{"deploymentProfileAssignmentDetailedStatus", inBeta, autoConst("none")},
	{"deploymentProfileAssignedDateTime", inBeta, func(b []byte, a *autopilotDevice) []byte { return appendDateTime(b, a.profileAssigned) }},
	{"groupTag", inBoth, autoStr(func(a *autopilotDevice) string { return a.groupTag })},
	{"purchaseOrderIdentifier", inBoth, autoStr(func(a *autopilotDevice) string { return a.order })},
	{"serialNumber", inBoth, autoStr(func(a *autopilotDevice) string { return a.serial })},
	{"productKey", inBoth, autoConst("")},
	{"manufacturer", inBoth, autoStr(func(a *autopilotDevice) string { return a.manufacturer })},
	{"model", inBoth, autoStr(func(a *autopilotDevice) string { return a.model })},
	{"enrollmentState", inBoth, autoStr(func(a *autopilotDevice) string { return a.state })},
	{"lastContactedDateTime", inBoth, func(b []byte, a *autopilotDevice) []byte { return appendDateTime(b, a.contacted) }},
	{"addressableUserName", inBoth, autoStr(func(a *autopilotDevice) string { return a.userName })},
	{"userPrincipalName", inBoth, autoStr(func(a *autopilotDevice) string { return a.upn })},
	{"resourceName", inBoth, autoConst("")},
	{"skuNumber", inBoth, autoConst("")},
	{"systemFamily", inBoth, autoStr(func(a *autopilotDevice) string { return a.family })},
	{"azureActiveDirectoryDeviceId", inBoth, func(b []byte, a *autopilotDevice) []byte { return appendGUID(b, a.aad) }},
	{"azureAdDeviceId", inBeta, func(b []byte, a *autopilotDevice) []byte { return appendGUID(b, a.aad) }},
	{"managedDeviceId", inBoth, func(b []byte, a *autopilotDevice) []byte {
		if a.managed == "" {
			return append(b, `"00000000-0000-0000-0000-000000000000"`...)
		}
		return appendString(b, a.managed)
	}},
	{"displayName", inBoth, autoConst("")},
	{"deviceAccountUpn", inBeta, autoConst("")},
	{"deviceAccountPassword", inBeta, autoConst("")},
	{"deviceFriendlyName", inBeta, autoConst("")},
	{"remediationState", inBeta, autoConst("unknown")},
	{"remediationStateLastModifiedDateTime", inBeta, func(b []byte, _ *autopilotDevice) []byte { return appendDateTime(b, neverTime) }},
	{"userlessEnrollmentStatus", inBeta, autoConst("unknown")},
}

var autopilotColumnsByVersion = [2][]column[autopilotDevice]{
	columnsFor(autopilotAllColumns, false), columnsFor(autopilotAllColumns, true),
}

func autopilotColumns(beta bool) []column[autopilotDevice] {
	if beta {
		return autopilotColumnsByVersion[1]
	}
	return autopilotColumnsByVersion[0]
}

// autopilotNumbers lists the identities in listing order, size of them
// after number skip (-1: from the first), and whether more follow.
func (s *Server) autopilotNumbers(st *tenantState, skip, size int) (page []int, more bool) {
	extras := s.autopilotExtras()
	i, j := skip+1, 0
	if skip >= autopilotExtraBase {
		i, j = st.devices, skip-autopilotExtraBase+1
	}
	for ; i < st.devices; i++ {
		if s.autopilotEligible(i) {
			if len(page) == size {
				return page, true
			}
			page = append(page, i)
		}
	}
	for ; j < extras; j++ {
		if len(page) == size {
			return page, true
		}
		page = append(page, autopilotExtraBase+j)
	}
	return page, false
}

// autopilotRank is how many identities come before number n's successor
// in the listing (n = -1: none).
func (s *Server) autopilotRank(st *tenantState, n int) int {
	if n >= autopilotExtraBase {
		return s.autopilotBefore(st.devices) + n - autopilotExtraBase + 1
	}
	return s.autopilotBefore(n + 1)
}

// serveAutopilot answers windowsAutopilotDeviceIdentities.
func (s *Server) serveAutopilot(w *exchange, r *http.Request, ids requestIDs, beta bool, c *intuneCollection) {
	st := s.state()
	q, _, msg := s.intuneQuery(r, c.list, beta, "", s.autopilotIndex)
	p := &intunePage{list: c.list, q: q, msg: msg}
	if msg == "" {
		size := s.intunePageSize(&q)
		page, more := s.autopilotNumbers(st, q.skip, size)
		p.number = s.autopilotRank(st, q.skip)/size + 1
		p.count = s.autopilotBefore(st.devices) + s.autopilotExtras()
		p.n = len(page)
		props := c.list.propsOf(beta)
		p.context = s.intuneContext(beta, c.parent+"/"+c.name, q.selected, props, false)
		cols := autopilotColumns(beta)
		var a autopilotDevice
		p.item = func(b []byte, k int) []byte {
			s.autopilotAt(st, page[k], &a)
			return appendColumns(b, &a, cols, q.selected)
		}
		if more {
			var last autopilotDevice
			s.autopilotAt(st, page[len(page)-1], &last)
			p.next = func(host string) []byte {
				b := linkPrefix(r, q.carry, host)
				b = append(b, "LastSerialNumber%3d'"...)
				b = appendEscaped(b, strings.ReplaceAll(last.serial, "'", "''"), "'")
				b = append(b, "'%2c"...)
				b = append(b, c.list.marker...)
				b = append(b, "%3d'"...)
				b = appendAutopilotID(b, last.seed, last.n)
				return append(b, '\'')
			}
		}
	}
	s.serveIntunePage(w, r, ids, p)
}
