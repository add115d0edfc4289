package graphsim

import (
	"io"
	"net/http"
	"strconv"
	"strings"
)

// Intune's read-only policy, enrollment and app collections, beside the
// managed devices (what a tenant's configuration export reads):
//
//	GET /{v}/deviceManagement/deviceCategories
//	GET /{v}/deviceManagement/deviceCompliancePolicies                      [$expand=assignments]
//	GET /{v}/deviceManagement/deviceCompliancePolicies/{id}
//	GET /{v}/deviceManagement/deviceCompliancePolicies/{id}/assignments
//	GET /{v}/deviceManagement/deviceCompliancePolicies/{id}/deviceStatuses
//	GET /{v}/deviceManagement/deviceConfigurations                          (the same four)
//	GET /beta/deviceManagement/configurationPolicies                        (settings catalog; /{id}, /{id}/assignments)
//	GET /{v}/deviceManagement/windowsAutopilotDeviceIdentities
//	GET /{v}/deviceAppManagement/mobileApps                                 (/{id}, /{id}/assignments)
//
// Shapes follow Microsoft's schema (msgraph-metadata's CSDL for which
// properties each version has, the reference pages' JSON representations
// for their order) and, where they differ from it, what tenants answer:
//
//   - The policies and apps are of derived types, each item carrying
//     "@odata.type" and its type's own properties; items of the
//     collection's own type (categories, statuses, Autopilot devices,
//     settings catalog policies) carry none, as OData's minimal metadata
//     has it. v1.0 writes v1.0's properties, beta beta's (roleScopeTagIds
//     and the like); a type v1.0 does not know (androidManagedStoreApp)
//     is left out of v1.0's list.
//   - A deviceStatus's id is "{managedDeviceId}_{policyId}_{userId}",
//     not the GUID the docs show; a device-context status names the user
//     "System account"; deviceConfigurations' statuses have deviceModel
//     null; beta adds "platform": 0; the dates have seven fractional
//     digits and an endless grace period is 9999-12-31T23:59:59.9999999Z
//     (microsoft-graph-docs#9230, microsoft-graph-docs-contrib#2676).
//   - Assignments' ids are "{policyId}_{groupId}"; All devices and All
//     users are the virtual groups adadadad-808e-44e2-905a-0b7873a8a531
//     and acacacac-9df4-4c7d-9d50-4ef0226f57a9.
//   - configurationPolicies is beta's only: v1.0 answers 400 "Resource
//     not found for the segment 'configurationPolicies'." (KelvinTegelaar/CIPP#2566),
//     as it answers a device's detectedApps; its items are written in
//     the order the service writes them (id late, templateReference
//     last), not the docs'.
//
// Each tenant's data follows its devices: a policy has one status per
// listed device of its platform, in the device list's order, with the
// device's name, user and model, and a compliance status that agrees
// with the device's complianceState (intunestatus.go); every Windows
// device (but Cloud PCs) has an Autopilot identity that names it, and a
// few identities are registered but not enrolled yet (autopilot.go);
// the device categories are those the devices use. Statuses and
// Autopilot identities are written while a page is written, like
// devices, never stored; the policies, categories and apps are a few
// dozen items per tenant, made on first use from the seed
// (intunedata.go).
//
// They page like the other collections: $top (else
// Config.IntunePageSize), an absolute @odata.nextLink with a keyset
// $skiptoken that carries the other options, before "value" on odd pages
// and after it on even ones, @odata.count on every page; $select of the
// collection's own type's properties (a derived type's property needs a
// cast Graph has and graphsim has not: 400), $count and $orderby
// accepted, $filter not simulated (400). Every request waits
// Config.Latency, is charged by Config.Throttle, is refused with Intune's
// 403 under Config.Forbidden (quoting the collection's own permission),
// and a Fault whose Resource names the list's request kind applies to its
// pages as Faults apply to managedDevices'.

// Request kinds of these collections (RequestRecord.Kind), which a
// Fault's Resource names.
const (
	KindDeviceCategories               = "deviceCategories"                  // GET .../deviceCategories
	KindCompliancePolicies             = "deviceCompliancePolicies"          // GET .../deviceCompliancePolicies
	KindCompliancePolicyAssignments    = "deviceCompliancePolicyAssignments" // GET .../deviceCompliancePolicies/{id}/assignments
	KindComplianceDeviceStatuses       = "deviceComplianceDeviceStatuses"    // GET .../deviceCompliancePolicies/{id}/deviceStatuses
	KindDeviceConfigurations           = "deviceConfigurations"              // GET .../deviceConfigurations
	KindDeviceConfigurationAssignments = "deviceConfigurationAssignments"    // GET .../deviceConfigurations/{id}/assignments
	KindConfigurationDeviceStatuses    = "deviceConfigurationDeviceStatuses" // GET .../deviceConfigurations/{id}/deviceStatuses
	KindConfigurationPolicies          = "configurationPolicies"             // GET /beta/deviceManagement/configurationPolicies (v1.0 answers 400)
	KindConfigurationPolicyAssignments = "configurationPolicyAssignments"    // GET /beta/.../configurationPolicies/{id}/assignments
	KindAutopilotDevices               = "windowsAutopilotDeviceIdentities"  // GET .../windowsAutopilotDeviceIdentities
	KindMobileApps                     = "mobileApps"                        // GET /{v}/deviceAppManagement/mobileApps
	KindMobileAppAssignments           = "mobileAppAssignments"              // GET .../mobileApps/{id}/assignments
	KindIntuneItem                     = "intuneItem"                        // GET of one item of any of the above, by its id
)

// IntuneResources are the list kinds above, which Fault.Resource may name.
var IntuneResources = []string{
	KindDeviceCategories, KindCompliancePolicies, KindCompliancePolicyAssignments, KindComplianceDeviceStatuses,
	KindDeviceConfigurations, KindDeviceConfigurationAssignments, KindConfigurationDeviceStatuses,
	KindConfigurationPolicies, KindConfigurationPolicyAssignments, KindAutopilotDevices, KindMobileApps,
	KindMobileAppAssignments,
}

// DefaultIntunePageSize is Config.IntunePageSize. Microsoft documents no
// page size for these collections; 1000 is what Intune's managedDevices
// uses (a tenant's 384 device configurations came in one page,
// microsoft/Intune-PowerShell-SDK#26).
const DefaultIntunePageSize = 1000

// ver is a set of Graph versions: which have a property, an item or a
// collection.
type ver uint8

const (
	inV1 ver = 1 << iota
	inBeta
	inBoth = inV1 | inBeta
)

func verOf(beta bool) ver {
	if beta {
		return inBeta
	}
	return inV1
}

// intuneList describes one kind of list: its items' type and how a page
// of it is asked for.
type intuneList struct {
	kind     string
	typeName string      // the items' type, in $select's errors
	marker   string      // the skip token's key, as written: "LastDeviceCategoryId"
	props    [2][]string // the items' own type's properties (v1.0, beta), which $select may name
	scopes   string      // the permissions Intune's 403 quotes
	service  string      // the Intune service in its nested messages
}

func (l *intuneList) propsOf(beta bool) []string {
	if beta {
		return l.props[1]
	}
	return l.props[0]
}

// intuneCollection is one collection and its relationships.
type intuneCollection struct {
	parent, name string // its path: {parent}/{name}
	in           ver    // versions that serve it
	list         *intuneList
	assignments  *intuneList                      // nil: none
	statuses     *intuneList                      // nil: none
	records      func(c *intuneCatalog) []*record // nil: generated (Autopilot)
}

const (
	configScopes   = "DeviceManagementConfiguration.Read.All, DeviceManagementConfiguration.ReadWrite.All"
	configService  = "DeviceConfiguration/StatelessDeviceConfigurationFEService"
	devicesScopes  = "DeviceManagementManagedDevices.Read.All, DeviceManagementManagedDevices.ReadWrite.All"
	devicesService = "DeviceFE/StatelessDeviceFEService"
)

var (
	compliancePolicyProps = [2][]string{
		{"id", "createdDateTime", "description", "lastModifiedDateTime", "displayName", "version"},
		{"roleScopeTagIds", "id", "createdDateTime", "description", "lastModifiedDateTime", "displayName", "version"},
	}
	configurationProps = [2][]string{
		{"id", "lastModifiedDateTime", "createdDateTime", "description", "displayName", "version"},
		{"id", "lastModifiedDateTime", "roleScopeTagIds", "supportsScopeTags", "deviceManagementApplicabilityRuleOsEdition",
			"deviceManagementApplicabilityRuleOsVersion", "deviceManagementApplicabilityRuleDeviceMode", "createdDateTime",
			"description", "displayName", "version"},
	}
	statusProps = [2][]string{
		{"id", "deviceDisplayName", "userName", "deviceModel", "complianceGracePeriodExpirationDateTime", "status", "lastReportedDateTime", "userPrincipalName"},
		{"id", "deviceDisplayName", "userName", "deviceModel", "platform", "complianceGracePeriodExpirationDateTime", "status", "lastReportedDateTime", "userPrincipalName"},
	}
	mobileAppProps = [2][]string{
		{"id", "displayName", "description", "publisher", "largeIcon", "createdDateTime", "lastModifiedDateTime", "isFeatured",
			"privacyInformationUrl", "informationUrl", "owner", "developer", "notes", "publishingState"},
		{"id", "displayName", "description", "publisher", "largeIcon", "createdDateTime", "lastModifiedDateTime", "isFeatured",
			"privacyInformationUrl", "informationUrl", "owner", "developer", "notes", "uploadState", "publishingState", "isAssigned",
			"roleScopeTagIds", "dependentAppCount", "supersedingAppCount", "supersededAppCount"},
	}
	autopilotProps = [2][]string{
		{"id", "groupTag", "purchaseOrderIdentifier", "serialNumber", "productKey", "manufacturer", "model", "enrollmentState",
			"lastContactedDateTime", "addressableUserName", "userPrincipalName", "resourceName", "skuNumber", "systemFamily",
			"azureActiveDirectoryDeviceId", "managedDeviceId", "displayName"},
		{"id", "deploymentProfileAssignmentStatus", "deploymentProfileAssignmentDetailedStatus", "deploymentProfileAssignedDateTime",
			"groupTag", "purchaseOrderIdentifier", "serialNumber", "productKey", "manufacturer", "model", "enrollmentState",
			"lastContactedDateTime", "addressableUserName", "userPrincipalName", "resourceName", "skuNumber", "systemFamily",
			"azureActiveDirectoryDeviceId", "azureAdDeviceId", "managedDeviceId", "displayName", "deviceAccountUpn",
			"deviceAccountPassword", "deviceFriendlyName", "remediationState", "remediationStateLastModifiedDateTime",
			"userlessEnrollmentStatus"},
	}
	settingsPolicyProps = []string{"createdDateTime", "creationSource", "description", "lastModifiedDateTime", "name", "platforms",
		"priorityMetaData", "roleScopeTagIds", "settingCount", "technologies", "id", "templateReference"}
)

// intuneCollections are the collections served, by their path segment
// (lower case).
var intuneCollections = map[string]*intuneCollection{
	"devicecategories": {
		parent: "deviceManagement", name: "deviceCategories", in: inBoth,
		list: &intuneList{kind: KindDeviceCategories, typeName: "microsoft.graph.deviceCategory", marker: "LastDeviceCategoryId",
			props:  [2][]string{{"id", "displayName", "description"}, {"id", "displayName", "description", "roleScopeTagIds"}},
			scopes: devicesScopes, service: devicesService},
		records: func(c *intuneCatalog) []*record { return c.categories },
	},
	"devicecompliancepolicies": {
		parent: "deviceManagement", name: "deviceCompliancePolicies", in: inBoth,
		list: &intuneList{kind: KindCompliancePolicies, typeName: "microsoft.graph.deviceCompliancePolicy", marker: "LastDeviceCompliancePolicyId",
			props: compliancePolicyProps, scopes: configScopes, service: configService},
		assignments: &intuneList{kind: KindCompliancePolicyAssignments, typeName: "microsoft.graph.deviceCompliancePolicyAssignment",
			marker: "LastDeviceCompliancePolicyAssignmentId", props: [2][]string{{"id", "target"}, {"id", "source", "sourceId", "target"}},
			scopes: configScopes, service: configService},
		statuses: &intuneList{kind: KindComplianceDeviceStatuses, typeName: "microsoft.graph.deviceComplianceDeviceStatus",
			marker: "LastDeviceComplianceDeviceStatusId", props: statusProps, scopes: configScopes, service: configService},
		records: func(c *intuneCatalog) []*record { return c.compliance },
	},
	"deviceconfigurations": {
		parent: "deviceManagement", name: "deviceConfigurations", in: inBoth,
		list: &intuneList{kind: KindDeviceConfigurations, typeName: "microsoft.graph.deviceConfiguration", marker: "LastDeviceConfigurationId",
			props: configurationProps, scopes: configScopes, service: configService},
		assignments: &intuneList{kind: KindDeviceConfigurationAssignments, typeName: "microsoft.graph.deviceConfigurationAssignment",
			marker: "LastDeviceConfigurationAssignmentId", props: [2][]string{{"id", "target"}, {"id", "intent", "source", "sourceId", "target"}},
			scopes: configScopes, service: configService},
		statuses: &intuneList{kind: KindConfigurationDeviceStatuses, typeName: "microsoft.graph.deviceConfigurationDeviceStatus",
			marker: "LastDeviceConfigurationDeviceStatusId", props: statusProps, scopes: configScopes, service: configService},
		records: func(c *intuneCatalog) []*record { return c.configurations },
	},
	"configurationpolicies": {
		parent: "deviceManagement", name: "configurationPolicies", in: inBeta,
		list: &intuneList{kind: KindConfigurationPolicies, typeName: "microsoft.graph.deviceManagementConfigurationPolicy",
			marker: "LastConfigurationPolicyId", props: [2][]string{nil, settingsPolicyProps},
			scopes: configScopes, service: "DeviceConfigV2/DCV2GraphService"},
		assignments: &intuneList{kind: KindConfigurationPolicyAssignments, typeName: "microsoft.graph.deviceManagementConfigurationPolicyAssignment",
			marker: "LastConfigurationPolicyAssignmentId", props: [2][]string{nil, {"id", "source", "sourceId", "target"}},
			scopes: configScopes, service: "DeviceConfigV2/DCV2GraphService"},
		records: func(c *intuneCatalog) []*record { return c.settingsPolicies },
	},
	"windowsautopilotdeviceidentities": {
		parent: "deviceManagement", name: "windowsAutopilotDeviceIdentities", in: inBoth,
		list: &intuneList{kind: KindAutopilotDevices, typeName: "microsoft.graph.windowsAutopilotDeviceIdentity", marker: "LastWindowsAutopilotDeviceIdentityId",
			props:  autopilotProps,
			scopes: "DeviceManagementServiceConfig.Read.All, DeviceManagementServiceConfig.ReadWrite.All", service: "Enrollment/StatelessEnrollmentFEService"},
	},
	"mobileapps": {
		parent: "deviceAppManagement", name: "mobileApps", in: inBoth,
		list: &intuneList{kind: KindMobileApps, typeName: "microsoft.graph.mobileApp", marker: "LastMobileAppId",
			props: mobileAppProps, scopes: appsScopes, service: appsService},
		assignments: &intuneList{kind: KindMobileAppAssignments, typeName: "microsoft.graph.mobileAppAssignment",
			marker: "LastMobileAppAssignmentId", props: [2][]string{{"id", "intent", "target", "settings"}, {"id", "intent", "target", "settings", "source", "sourceId"}},
			scopes: appsScopes, service: appsService},
		records: func(c *intuneCatalog) []*record { return c.mobileApps },
	},
}

const (
	appsScopes  = "DeviceManagementApps.Read.All, DeviceManagementApps.ReadWrite.All"
	appsService = "AppLifecycle/StatelessAppMetadataFEService"
)

// routeIntune finds what a path under deviceManagement or
// deviceAppManagement names among these collections; ok is false when
// it names none of them.
func (s *Server) routeIntune(w *exchange, r *http.Request, ids requestIDs, beta bool, segs []string) (kind string, serve func(), ok bool) {
	c := intuneCollections[strings.ToLower(segs[2])]
	if c == nil || !strings.EqualFold(segs[1], c.parent) {
		return "", nil, false
	}
	notFound := func(seg string) (string, func(), bool) {
		return "", func() { s.notFoundKey(w, ids, seg) }, true
	}
	if !beta && c.in&inV1 == 0 {
		// A segment v1.0's model does not have: OData's 400, not 404.
		return c.list.kind, func() { s.badRequest(w, ids, "Resource not found for the segment '"+c.name+"'.") }, true
	}
	switch len(segs) {
	case 3:
		return c.list.kind, func() { s.serveIntuneRecords(w, r, ids, beta, c) }, true
	case 4:
		return KindIntuneItem, func() { s.serveIntuneItem(w, r, ids, beta, c, segs[3]) }, true
	case 5:
		switch {
		case c.assignments != nil && strings.EqualFold(segs[4], "assignments"):
			return c.assignments.kind, func() { s.serveIntuneAssignments(w, r, ids, beta, c, segs[3]) }, true
		case c.statuses != nil && strings.EqualFold(segs[4], "deviceStatuses"):
			return c.statuses.kind, func() { s.serveDeviceStatuses(w, r, ids, beta, c, segs[3]) }, true
		}
		return notFound(segs[4])
	}
	return notFound(segs[5])
}

// intunePage is one planned page of a list of these collections.
type intunePage struct {
	list    *intuneList
	q       listQuery
	msg     string // a 400's message: the query does not parse
	missing string // the key of a parent that does not exist (404), after the token is checked
	number  int    // 1-based page number
	count   int    // @odata.count
	n       int    // items on the page
	context string
	item    func(b []byte, k int) []byte // writes the page's k-th item
	// next writes the page's nextLink with the given host ("" for the
	// request's); nil on the last page.
	next func(host string) []byte
}

// serveIntunePage answers a request for p, the way serveCollection answers
// managedDevices: the fault scripted for its page first (a status fault
// before the token is checked), then the token, the query, the
// permission, the latency, and the page, altered by a page fault if one
// applies.
func (s *Server) serveIntunePage(w *exchange, r *http.Request, ids requestIDs, p *intunePage) {
	s.intunePageRequests.Add(1)
	var fault *Fault
	if p.msg == "" && p.missing == "" {
		w.page = p.number
		w.attempt, fault = s.attemptAt(p.list.kind, p.number)
	}
	if fault != nil && fault.Kind.isStatus() {
		s.applied(w, fault)
		s.answerIntuneFault(w, r, ids, p.list, fault)
		return
	}
	if fault != nil && fault.Kind == FaultSlow {
		s.applied(w, fault)
		if !sleep(r, fault.Delay) {
			return
		}
	}
	if !s.intuneReadable(w, r, ids, p.list, p.msg) {
		return
	}
	if p.missing != "" {
		s.notFoundKey(w, ids, p.missing)
		return
	}
	if !s.latency(w, r) {
		return
	}
	var next []byte
	if p.next != nil {
		next = p.next("")
	}
	kind := s.pageFault(w, fault)
	h := w.Header()
	h.Set("Content-Type", graphContentType)
	switch kind {
	case FaultForeignNextLink:
		if p.next != nil {
			next = p.next(ForeignHost)
		} else {
			next = []byte("https://" + ForeignHost + r.URL.RequestURI())
		}
	case FaultTruncate, FaultMalformed:
		var c countWriter
		n, _ := p.write(&c, next, -1)
		h.Set("Content-Length", strconv.FormatInt(c.n, 10))
		w.WriteHeader(http.StatusOK)
		if kind == FaultMalformed {
			_, _ = p.write(w, next, n/2)
			return
		}
		_, _ = p.write(&cutWriter{w: w, left: c.n / 2}, next, -1)
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(http.StatusOK)
	if _, err := p.write(w, next, -1); err == nil {
		s.intunePagesServed.Add(1)
	}
}

// write streams the page to out, the item at ordinal corrupt (-1: none)
// with its opening brace replaced by '#' (the value array's '[' when the
// page is empty), and returns how many items it holds.
func (p *intunePage) write(out io.Writer, next []byte, corrupt int) (int, error) {
	odd := p.number%2 == 1
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	b := (*bp)[:0]
	b = appendPageHead(b, p.context, p.count, next, odd)
	valueAt := len(b) - 1
	for k := 0; k < p.n; k++ {
		if k > 0 {
			b = append(b, ',')
		}
		at := len(b)
		b = p.item(b, k)
		if k == corrupt {
			b[at] = '#'
		}
		if len(b) >= flushAt {
			if _, err := out.Write(b); err != nil {
				*bp = b
				return k + 1, err
			}
			b = b[:0]
		}
	}
	if p.n == 0 && corrupt >= 0 {
		b[valueAt] = '#'
	}
	b = appendPageTail(b, next, odd)
	_, err := out.Write(b)
	*bp = b
	return p.n, err
}

// intuneReadable is readable for these collections: a bad token (401), a
// bad query (400), an app without the collection's permission (Intune's
// 403), in that order.
func (s *Server) intuneReadable(w *exchange, r *http.Request, ids requestIDs, l *intuneList, msg string) bool {
	return s.readableOr(w, r, ids, msg, func() { s.intuneForbidden(w, ids, l) })
}

// intuneForbidden answers Intune's nested 403 quoting the permissions the
// list needs.
func (s *Server) intuneForbidden(w http.ResponseWriter, ids requestIDs, l *intuneList) {
	s.graphError(w, ids, http.StatusForbidden, "Forbidden", intuneMessageAt(
		"Application is not authorized to perform this operation. Application must have one of the following scopes: "+
			l.scopes+" - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000", ids.request,
		l.service+"/"+l.path()))
}

// path is the collection path a list's messages name.
func (l *intuneList) path() string {
	for _, c := range intuneCollections {
		if c.list == l || c.assignments == l || c.statuses == l {
			return c.parent + "/" + c.name
		}
	}
	return "deviceManagement"
}

// answerIntuneFault sends a status fault's error; the 403 and 404 name
// the list's own permission and segment.
func (s *Server) answerIntuneFault(w *exchange, r *http.Request, ids requestIDs, l *intuneList, f *Fault) {
	switch f.Kind {
	case Fault403:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		s.intuneForbidden(w, ids, l)
	case Fault404:
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		p := l.path()
		s.notFoundKey(w, ids, p[strings.LastIndexByte(p, '/')+1:])
	default:
		s.answerFault(w, r, ids, f)
	}
}

// intuneQuery parses a list request's options; expand is the navigation
// property $expand may name ("" for none).
func (s *Server) intuneQuery(r *http.Request, l *intuneList, beta bool, expand string, index func(id string) (int, bool)) (listQuery, bool, string) {
	props := l.propsOf(beta)
	sp := &listSpec{
		typeName: l.typeName,
		find: func(name string) int {
			for k, p := range props {
				if strings.EqualFold(p, name) {
					return k
				}
			}
			return -1
		},
		expand: expand,
		marker: strings.ToLower(l.marker) + "=",
		index:  index,
	}
	q, msg := parseListQuery(r.URL.RawQuery, sp)
	expanded := false
	if expand != "" && msg == "" {
		for _, o := range q.carry {
			if strings.EqualFold(o.key, "$expand") && strings.TrimSpace(o.value) != "" {
				expanded = true
			}
		}
	}
	return q, expanded, msg
}

func (s *Server) intunePageSize(q *listQuery) int {
	if q.top > 0 {
		return q.top
	}
	return s.cfg.IntunePageSize
}

// intuneContext is a list's @odata.context: path, the selected properties
// and, when expanded, assignments().
func (s *Server) intuneContext(beta bool, path string, sel []int, props []string, expanded bool) string {
	u := s.cfg.ScopeHost + "/" + versionName(beta) + "/$metadata#" + path
	if sel == nil && !expanded {
		return u
	}
	var b strings.Builder
	b.WriteString(u)
	b.WriteByte('(')
	for n, k := range sel {
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(props[k])
	}
	if expanded {
		if len(sel) > 0 {
			b.WriteByte(',')
		}
		b.WriteString("assignments()")
	}
	b.WriteByte(')')
	return b.String()
}

// keysetLink is a nextLink whose skip token is marker='value'.
func keysetLink(r *http.Request, carry []queryOption, host, marker, value string) []byte {
	b := linkPrefix(r, carry, host)
	b = append(b, marker...)
	b = append(b, "%3d'"...)
	b = appendEscaped(b, strings.ReplaceAll(value, "'", "''"), "'")
	return append(b, '\'')
}
