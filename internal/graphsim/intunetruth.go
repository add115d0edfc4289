package graphsim

import (
	"encoding/json"
	"strings"
	"time"
)

// Ground truth of the policy, enrollment and app collections (intune.go),
// for tests of clients that read them: what the tenant holds now, as
// Graph's lists write it.

// DeviceCategory is one device category.
type DeviceCategory struct {
	ID, DisplayName, Description string
}

// IntuneAssignment is one assignment of a policy or app.
type IntuneAssignment struct {
	ID string
	// Target is the target's type without its namespace:
	// groupAssignmentTarget, exclusionGroupAssignmentTarget,
	// allDevicesAssignmentTarget or allLicensedUsersAssignmentTarget.
	Target string
	// GroupID is the group a group target names; for All devices and All
	// users, the virtual group Intune's ids use
	// (adadadad-808e-44e2-905a-0b7873a8a531,
	// acacacac-9df4-4c7d-9d50-4ef0226f57a9).
	GroupID string
	Intent  string // mobile apps: required or available; "" for policies
}

// IntunePolicy is a compliance policy or a configuration profile.
type IntunePolicy struct {
	ID, DisplayName string
	ODataType       string // "#microsoft.graph.windows10CompliancePolicy", ...
	// OperatingSystem is the platform whose devices report a status for
	// it, as managedDevice's operatingSystem spells it.
	OperatingSystem string
	Assignments     []IntuneAssignment
}

// SettingsCatalogPolicy is one configurationPolicies item (beta).
type SettingsCatalogPolicy struct {
	ID, Name, Platforms, Technologies string
	TemplateFamily                    string // "none" unless made from a template
	SettingCount                      int
	Assignments                       []IntuneAssignment
}

// MobileApp is one mobileApps item.
type MobileApp struct {
	ID, DisplayName, Publisher string
	ODataType                  string // "#microsoft.graph.win32LobApp", ...
	BetaOnly                   bool   // of a type v1.0 does not have (androidManagedStoreApp): v1.0's list leaves it out
	Assignments                []IntuneAssignment
}

// PolicyDeviceStatus is one device's status for a policy, as its
// deviceStatuses list writes it.
type PolicyDeviceStatus struct {
	ID                        string // {managedDeviceId}_{policyId}_{userId}
	DeviceID                  string // the managed device's id
	DeviceIndex               int
	DeviceDisplayName         string
	UserName                  string // "System account" for a device without a user
	UserPrincipalName         string // likewise
	DeviceModel               string // "" when Graph writes null (configuration profiles)
	Status                    string // complianceStatus: compliant, nonCompliant, error, ...
	GracePeriodExpirationTime time.Time
	LastReportedTime          time.Time
}

// AutopilotDevice is one windowsAutopilotDeviceIdentity.
type AutopilotDevice struct {
	ID, SerialNumber, Manufacturer, Model string
	GroupTag, PurchaseOrderIdentifier     string
	EnrollmentState                       string // enrolled, or notContacted
	// ManagedDeviceID is the managed device's id while Intune holds it,
	// else "00000000-0000-0000-0000-000000000000".
	ManagedDeviceID   string
	AzureADDeviceID   string
	UserPrincipalName string
	// DeviceIndex is the managed device's index, or -1 for a device
	// registered but not enrolled yet.
	DeviceIndex int
}

// DeviceCategories returns the tenant's device categories, in listing
// order: those its devices' deviceCategoryDisplayName names.
func (s *Server) DeviceCategories() []DeviceCategory {
	var out []DeviceCategory
	for _, r := range s.intuneCatalog().categories {
		out = append(out, DeviceCategory{ID: r.id, DisplayName: r.name, Description: r.text("description")})
	}
	return out
}

// CompliancePolicies returns the compliance policies, in listing order.
func (s *Server) CompliancePolicies() []IntunePolicy {
	return policiesOf(s.intuneCatalog().compliance)
}

// DeviceConfigurations returns the configuration profiles, in listing
// order.
func (s *Server) DeviceConfigurations() []IntunePolicy {
	return policiesOf(s.intuneCatalog().configurations)
}

func policiesOf(records []*record) []IntunePolicy {
	var out []IntunePolicy
	for _, r := range records {
		out = append(out, IntunePolicy{ID: r.id, DisplayName: r.name, ODataType: "#microsoft.graph." + r.typ,
			OperatingSystem: osNames[r.os], Assignments: assignmentsOf(r)})
	}
	return out
}

func assignmentsOf(r *record) []IntuneAssignment {
	var out []IntuneAssignment
	for _, a := range r.assign {
		var target struct {
			Type    string `json:"@odata.type"`
			GroupID string `json:"groupId"`
		}
		_ = json.Unmarshal(a.value("target", inBeta), &target)
		group := target.GroupID
		switch target.Type {
		case "#microsoft.graph.allDevicesAssignmentTarget":
			group = allDevicesGroup
		case "#microsoft.graph.allLicensedUsersAssignmentTarget":
			group = allUsersGroup
		}
		out = append(out, IntuneAssignment{ID: a.id, Target: strings.TrimPrefix(target.Type, "#microsoft.graph."),
			GroupID: group, Intent: a.text("intent")})
	}
	return out
}

// ConfigurationPolicies returns the settings catalog policies (beta), in
// listing order.
func (s *Server) ConfigurationPolicies() []SettingsCatalogPolicy {
	var out []SettingsCatalogPolicy
	for _, r := range s.intuneCatalog().settingsPolicies {
		var ref struct {
			Family string `json:"templateFamily"`
		}
		_ = json.Unmarshal(r.value("templateReference", inBeta), &ref)
		var n int
		_ = json.Unmarshal(r.value("settingCount", inBeta), &n)
		out = append(out, SettingsCatalogPolicy{ID: r.id, Name: r.name, Platforms: r.text("platforms"),
			Technologies: r.text("technologies"), TemplateFamily: ref.Family, SettingCount: n, Assignments: assignmentsOf(r)})
	}
	return out
}

// MobileApps returns the apps, in listing order; v1.0's list holds those
// that are not BetaOnly.
func (s *Server) MobileApps() []MobileApp {
	var out []MobileApp
	for _, r := range s.intuneCatalog().mobileApps {
		out = append(out, MobileApp{ID: r.id, DisplayName: r.name, Publisher: r.text("publisher"),
			ODataType: "#microsoft.graph." + r.typ, BetaOnly: r.in&inV1 == 0, Assignments: assignmentsOf(r)})
	}
	return out
}

// ComplianceDeviceStatuses returns the deviceStatuses of the compliance
// policy with the given id, in listing order; false if there is none.
func (s *Server) ComplianceDeviceStatuses(policyID string) ([]PolicyDeviceStatus, bool) {
	return s.deviceStatuses(s.intuneCatalog().compliance, compliancePolicyKind, policyID)
}

// ConfigurationDeviceStatuses returns the deviceStatuses of the
// configuration profile with the given id, in listing order; false if
// there is none.
func (s *Server) ConfigurationDeviceStatuses(policyID string) ([]PolicyDeviceStatus, bool) {
	return s.deviceStatuses(s.intuneCatalog().configurations, configurationKind, policyID)
}

func (s *Server) deviceStatuses(records []*record, kind int, policyID string) ([]PolicyDeviceStatus, bool) {
	k, ok := recordIndex(records, policyID)
	if !ok {
		return nil, false
	}
	pol, st, cat := records[k], s.state(), s.intuneCatalog()
	out := []PolicyDeviceStatus{}
	var p policyStatus
	for i := 0; i < st.devices; i++ {
		if !st.listed(i) || s.osOf(i) != pol.os {
			continue
		}
		s.current(st, i, &p.d)
		s.statusOf(st, cat, kind, pol, &p)
		id := p.appendID(nil)
		ps := PolicyDeviceStatus{ID: string(id[1 : len(id)-1]), DeviceID: s.DeviceID(i), DeviceIndex: i,
			DeviceDisplayName: p.d.name, UserName: p.d.displayName, UserPrincipalName: p.d.upn, Status: p.status,
			GracePeriodExpirationTime: time.Unix(p.grace, 0).UTC(), LastReportedTime: time.Unix(p.reported, int64(p.frac)*100).UTC()}
		if p.d.userless {
			ps.UserName, ps.UserPrincipalName = systemAccount, systemAccount
		}
		if !p.modelUnknown {
			ps.DeviceModel = p.d.hw.model
		}
		if p.grace == foreverTime {
			ps.GracePeriodExpirationTime = ps.GracePeriodExpirationTime.Add(999999900)
		}
		out = append(out, ps)
	}
	return out, true
}

// AutopilotDevices returns the Windows Autopilot device identities, in
// listing order.
func (s *Server) AutopilotDevices() []AutopilotDevice {
	st := s.state()
	n := s.autopilotBefore(st.devices) + s.autopilotExtras()
	numbers, _ := s.autopilotNumbers(st, -1, n)
	out := make([]AutopilotDevice, 0, len(numbers))
	var a autopilotDevice
	for _, k := range numbers {
		s.autopilotAt(st, k, &a)
		id := appendAutopilotID(nil, a.seed, a.n)
		aad := appendGUID(nil, a.aad)
		d := AutopilotDevice{ID: string(id), SerialNumber: a.serial, Manufacturer: a.manufacturer, Model: a.model,
			GroupTag: a.groupTag, PurchaseOrderIdentifier: a.order, EnrollmentState: a.state,
			ManagedDeviceID: a.managed, AzureADDeviceID: string(aad[1 : len(aad)-1]), UserPrincipalName: a.upn, DeviceIndex: k}
		if d.ManagedDeviceID == "" {
			d.ManagedDeviceID = "00000000-0000-0000-0000-000000000000"
		}
		if k >= autopilotExtraBase {
			d.DeviceIndex = -1
		}
		out = append(out, d)
	}
	return out
}

// value returns the JSON of the record's property name in version v,
// nil if it has none.
func (r *record) value(name string, v ver) []byte {
	for k := range r.fields {
		if f := &r.fields[k]; f.name == name && f.in&v != 0 {
			return f.raw
		}
	}
	return nil
}

// text returns the record's string property name ("" if it is null or
// absent), in beta, which has every property v1.0 has.
func (r *record) text(name string) string {
	var s string
	_ = json.Unmarshal(r.value(name, inBeta), &s)
	return s
}
