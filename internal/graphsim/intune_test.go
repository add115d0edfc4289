package graphsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// intuneEnv is a tenant of 300 devices whose policy, enrollment and app
// lists page by 4 unless asked otherwise.
func intuneEnv(t *testing.T, mod func(*Config), setup ...func(*Server)) *env {
	cfg := Config{Devices: 300, Seed: 11, IntunePageSize: 4}
	if mod != nil {
		mod(&cfg)
	}
	return newEnv(t, cfg, setup...)
}

// itemIDs returns the "id" of each item.
func itemIDs(t *testing.T, items []json.RawMessage) []string {
	t.Helper()
	var ids []string
	for _, raw := range items {
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &v); err != nil || v.ID == "" {
			t.Fatalf("item without an id: %s", raw)
		}
		ids = append(ids, v.ID)
	}
	return ids
}

// intuneList is one list a client reads and what it must find there.
type intuneListCase struct {
	path string
	want []string // the ids, in listing order
}

// intuneLists are every list of intune.go in version, with the ids the
// truth says they hold.
func intuneLists(t *testing.T, s *Server, version string) []intuneListCase {
	t.Helper()
	beta := version == "beta"
	v := "/" + version
	var out []intuneListCase
	var ids []string
	for _, c := range s.DeviceCategories() {
		ids = append(ids, c.ID)
	}
	out = append(out, intuneListCase{v + "/deviceManagement/deviceCategories", ids})
	for _, coll := range []struct {
		name     string
		policies []IntunePolicy
		statuses func(string) ([]PolicyDeviceStatus, bool)
	}{
		{"deviceCompliancePolicies", s.CompliancePolicies(), s.ComplianceDeviceStatuses},
		{"deviceConfigurations", s.DeviceConfigurations(), s.ConfigurationDeviceStatuses},
	} {
		ids = nil
		for _, p := range coll.policies {
			ids = append(ids, p.ID)
			var assigned []string
			for _, a := range p.Assignments {
				assigned = append(assigned, a.ID)
			}
			out = append(out, intuneListCase{v + "/deviceManagement/" + coll.name + "/" + p.ID + "/assignments", assigned})
			statuses, ok := coll.statuses(p.ID)
			if !ok {
				t.Fatalf("no statuses for %s", p.ID)
			}
			var sids []string
			for _, st := range statuses {
				sids = append(sids, st.ID)
			}
			out = append(out, intuneListCase{v + "/deviceManagement/" + coll.name + "('" + p.ID + "')/deviceStatuses", sids})
		}
		out = append(out, intuneListCase{v + "/deviceManagement/" + coll.name, ids})
	}
	if beta {
		ids = nil
		for _, p := range s.ConfigurationPolicies() {
			ids = append(ids, p.ID)
			var assigned []string
			for _, a := range p.Assignments {
				assigned = append(assigned, a.ID)
			}
			out = append(out, intuneListCase{v + "/deviceManagement/configurationPolicies/" + p.ID + "/assignments", assigned})
		}
		out = append(out, intuneListCase{v + "/deviceManagement/configurationPolicies", ids})
	}
	ids = nil
	for _, a := range s.AutopilotDevices() {
		ids = append(ids, a.ID)
	}
	out = append(out, intuneListCase{v + "/deviceManagement/windowsAutopilotDeviceIdentities", ids})
	ids = nil
	for _, a := range s.MobileApps() {
		if a.BetaOnly && !beta {
			continue
		}
		ids = append(ids, a.ID)
		var assigned []string
		for _, x := range a.Assignments {
			assigned = append(assigned, x.ID)
		}
		out = append(out, intuneListCase{v + "/deviceAppManagement/mobileApps/" + a.ID + "/assignments", assigned})
	}
	out = append(out, intuneListCase{v + "/deviceAppManagement/mobileApps", ids})
	return out
}

// Every list, in both versions, with the default page size and with
// $top: each item exactly once, in the truth's order, in the pages the
// page size makes, the nextLink before "value" on odd pages.
func TestIntuneListsPageEveryItemOnce(t *testing.T) {
	e := intuneEnv(t, nil)
	total := 0
	for _, version := range []string{"v1.0", "beta"} {
		for _, lc := range intuneLists(t, e.sim, version) {
			for _, top := range []int{0, 3, 1000} {
				first, size := lc.path, 4
				if top > 0 {
					first, size = lc.path+"?$top="+strconv.Itoa(top), top
				}
				pages := walk(t, e, first)
				var items []json.RawMessage
				for p, body := range pages {
					pg := decodePage(t, body)
					if pg.Count == nil || int(*pg.Count) != len(lc.want) {
						t.Fatalf("%s page %d: @odata.count %v, want %d", first, p+1, pg.Count, len(lc.want))
					}
					if pg.NextLink != "" && nextLinkFirst(body) != (p%2 == 0) {
						t.Errorf("%s page %d: nextLink on the wrong side of value", first, p+1)
					}
					if pg.NextLink != "" && top > 0 && !strings.Contains(pg.NextLink, "$top="+strconv.Itoa(top)+"&$skiptoken=") {
						t.Errorf("%s: nextLink %q does not carry $top", first, pg.NextLink)
					}
					if len(pg.Value) > size || pg.NextLink != "" && len(pg.Value) != size {
						t.Errorf("%s page %d: %d items, page size %d", first, p+1, len(pg.Value), size)
					}
					items = append(items, pg.Value...)
				}
				if want := max(1, (len(lc.want)+size-1)/size); len(pages) != want {
					t.Errorf("%s: %d pages, want %d", first, len(pages), want)
				}
				got := itemIDs(t, items)
				if !slices.Equal(got, lc.want) {
					t.Fatalf("%s: ids\n%v\nwant\n%v", first, got, lc.want)
				}
				seen := map[string]bool{}
				for _, id := range got {
					if seen[id] {
						t.Fatalf("%s: %s twice", first, id)
					}
					seen[id] = true
				}
				total += len(got)
			}
		}
	}
	if total < 3000 {
		t.Errorf("only %d items read: the tenant is too small to test paging", total)
	}
	if st := e.sim.Stats(); st.IntunePageRequests == 0 || st.IntunePageRequests != st.IntunePagesServed || st.PageRequests != 0 {
		t.Errorf("stats %+v", st)
	}
}

// The policies and apps are of several derived types, each item with its
// "@odata.type" and its type's own properties; items of the collection's
// own type carry none. v1.0 writes v1.0's properties, beta beta's.
func TestIntuneItemsHaveTheirTypes(t *testing.T) {
	e := intuneEnv(t, nil)
	types := func(version, path string) map[string]int {
		items, _ := collect(t, e, "/"+version+path)
		out := map[string]int{}
		for _, raw := range items {
			var v map[string]json.RawMessage
			if err := decodeStrict(raw, &v); err != nil {
				t.Fatal(err)
			}
			var typ string
			_ = json.Unmarshal(v["@odata.type"], &typ)
			out[typ]++
			keys := topLevelKeys(t, raw)
			_, hasScopeTags := v["roleScopeTagIds"]
			if strings.Contains(path, "Categories") || strings.Contains(path, "Policies") || strings.Contains(path, "Configurations") ||
				strings.Contains(path, "mobileApps") {
				if hasScopeTags != (version == "beta") {
					t.Errorf("%s %s: roleScopeTagIds present %v", version, path, hasScopeTags)
				}
			}
			if typ != "" && keys[0] != "@odata.type" {
				t.Errorf("%s %s: @odata.type is not first: %v", version, path, keys)
			}
		}
		return out
	}
	for _, version := range []string{"v1.0", "beta"} {
		compliance := types(version, "/deviceManagement/deviceCompliancePolicies")
		for _, typ := range []string{"windows10CompliancePolicy", "iosCompliancePolicy", "androidWorkProfileCompliancePolicy", "macOSCompliancePolicy"} {
			if compliance["#microsoft.graph."+typ] == 0 {
				t.Errorf("%s: no %s among %v", version, typ, compliance)
			}
		}
		configurations := types(version, "/deviceManagement/deviceConfigurations")
		if len(configurations) < 4 || configurations[""] > 0 {
			t.Errorf("%s: configuration types %v", version, configurations)
		}
		apps := types(version, "/deviceAppManagement/mobileApps")
		for _, typ := range []string{"win32LobApp", "iosStoreApp", "webApp"} {
			if apps["#microsoft.graph."+typ] == 0 {
				t.Errorf("%s: no %s among %v", version, typ, apps)
			}
		}
		if managed := apps["#microsoft.graph.androidManagedStoreApp"]; (managed > 0) != (version == "beta") {
			t.Errorf("%s: %d androidManagedStoreApp, a type only beta has", version, managed)
		}
		for _, path := range []string{"/deviceManagement/deviceCategories", "/deviceManagement/windowsAutopilotDeviceIdentities"} {
			if got := types(version, path); len(got) != 1 || got[""] == 0 {
				t.Errorf("%s %s: types %v, want none written", version, path, got)
			}
		}
	}
	if got := types("beta", "/deviceManagement/configurationPolicies"); len(got) != 1 || got[""] == 0 {
		t.Errorf("configurationPolicies: types %v", got)
	}

	// The collections' own properties come in the order their lists name
	// them, which is what $select takes.
	for _, version := range []string{"v1.0", "beta"} {
		beta := version == "beta"
		pol := e.sim.CompliancePolicies()[0]
		items, _ := collect(t, e, "/"+version+"/deviceManagement/deviceCompliancePolicies/"+pol.ID+"/deviceStatuses")
		want := strings.Join(statusProps[b2i(beta)], ",")
		if got := strings.Join(topLevelKeys(t, items[0]), ","); got != want {
			t.Errorf("%s status keys\n%s\nwant\n%s", version, got, want)
		}
		items, _ = collect(t, e, "/"+version+"/deviceManagement/windowsAutopilotDeviceIdentities")
		want = strings.Join(autopilotProps[b2i(beta)], ",")
		for _, raw := range items {
			if got := strings.Join(topLevelKeys(t, raw), ","); got != want {
				t.Fatalf("%s autopilot keys\n%s\nwant\n%s", version, got, want)
			}
		}
		items, _ = collect(t, e, "/"+version+"/deviceManagement/deviceCompliancePolicies")
		keys := topLevelKeys(t, items[0])
		want = "@odata.type," + strings.Join(compliancePolicyProps[b2i(beta)], ",")
		if got := strings.Join(keys[:len(compliancePolicyProps[b2i(beta)])+1], ","); got != want {
			t.Errorf("%s compliance policy keys\n%s\nwant\n%s", version, got, want)
		}
	}
	items, _ := collect(t, e, "/beta/deviceManagement/configurationPolicies")
	if got := strings.Join(topLevelKeys(t, items[0]), ","); got != strings.Join(settingsPolicyProps, ",") {
		t.Errorf("configurationPolicies keys %s", got)
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// deviceRow is what a status must agree with.
type deviceRow struct {
	ID                string `json:"id"`
	DeviceName        string `json:"deviceName"`
	OperatingSystem   string `json:"operatingSystem"`
	ComplianceState   string `json:"complianceState"`
	UserPrincipalName string `json:"userPrincipalName"`
	UserDisplayName   string `json:"userDisplayName"`
	Model             string `json:"model"`
	SerialNumber      string `json:"serialNumber"`
	Manufacturer      string `json:"manufacturer"`
	AzureADDeviceID   string `json:"azureADDeviceId"`
}

// listDevices reads the managed devices a client sees, by id.
func listDevices(t *testing.T, e *env) (map[string]deviceRow, []string) {
	t.Helper()
	items, _ := collect(t, e, devicesPath+"?$select=id,deviceName,operatingSystem,complianceState,userPrincipalName,userDisplayName,model,serialNumber,manufacturer,azureADDeviceId")
	out := map[string]deviceRow{}
	var order []string
	for _, raw := range items {
		var d deviceRow
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		out[d.ID] = d
		order = append(order, d.ID)
	}
	return out, order
}

type statusRow struct {
	ID                string  `json:"id"`
	DeviceDisplayName string  `json:"deviceDisplayName"`
	UserName          string  `json:"userName"`
	DeviceModel       *string `json:"deviceModel"`
	Grace             string  `json:"complianceGracePeriodExpirationDateTime"`
	Status            string  `json:"status"`
	LastReported      string  `json:"lastReportedDateTime"`
	UserPrincipalName string  `json:"userPrincipalName"`
}

// Each policy has one status per listed device of its platform, and each
// status is one of the devices a client lists: its name, user and model;
// a compliance policy's status agrees with the device's complianceState.
func TestDeviceStatusesReferToTheDevices(t *testing.T) {
	e := intuneEnv(t, func(c *Config) { c.IntunePageSize = 50 })
	e.sim.Remove(10, 11, 12)
	devices, order := listDevices(t, e)
	perOS := map[string]int{}
	for _, d := range devices {
		perOS[d.OperatingSystem]++
	}
	valid := []string{"unknown", "notApplicable", "compliant", "remediated", "nonCompliant", "error", "conflict", "notAssigned"}
	for _, coll := range []struct {
		name     string
		policies []IntunePolicy
	}{{"deviceCompliancePolicies", e.sim.CompliancePolicies()}, {"deviceConfigurations", e.sim.DeviceConfigurations()}} {
		compliance := coll.name == "deviceCompliancePolicies"
		failing := map[string]int{} // device -> policies it fails
		seen := map[string]int{}
		statuses := map[string]int{}
		for _, pol := range coll.policies {
			items, _ := collect(t, e, "/v1.0/deviceManagement/"+coll.name+"/"+pol.ID+"/deviceStatuses")
			if len(items) != perOS[pol.OperatingSystem] {
				t.Errorf("%s %s (%s): %d statuses, %d devices", coll.name, pol.DisplayName, pol.OperatingSystem, len(items), perOS[pol.OperatingSystem])
			}
			var last int
			for _, raw := range items {
				var s statusRow
				if err := decodeStrict(raw, &s); err != nil {
					t.Fatalf("status %s: %v", raw, err)
				}
				parts := strings.Split(s.ID, "_")
				if len(parts) != 3 || parts[1] != pol.ID || len(parts[2]) != 36 {
					t.Fatalf("status id %q", s.ID)
				}
				d, ok := devices[parts[0]]
				if !ok {
					t.Fatalf("status %s names no listed device", s.ID)
				}
				if at := slices.Index(order, d.ID); at < last {
					t.Errorf("statuses are not in the device list's order")
				} else {
					last = at
				}
				seen[d.ID]++
				statuses[s.Status]++
				user, upn := d.UserDisplayName, d.UserPrincipalName
				if upn == "" {
					user, upn = systemAccount, systemAccount
				}
				model := d.Model
				if !compliance {
					model = "<null>"
				}
				got := "<null>"
				if s.DeviceModel != nil {
					got = *s.DeviceModel
				}
				if d.OperatingSystem != pol.OperatingSystem || s.DeviceDisplayName != d.DeviceName || s.UserName != user ||
					s.UserPrincipalName != upn || got != model {
					t.Fatalf("status %+v does not match device %+v", s, d)
				}
				if !slices.Contains(valid, s.Status) {
					t.Fatalf("status %q", s.Status)
				}
				for _, date := range []string{s.Grace, s.LastReported} {
					if _, err := time.Parse(time.RFC3339Nano, date); err != nil || len(date) != len("2020-06-14T20:52:52.8841394Z") {
						t.Fatalf("date %q", date)
					}
				}
				if !compliance {
					continue
				}
				switch d.ComplianceState {
				case "compliant":
					if s.Status != "compliant" && s.Status != "remediated" {
						t.Errorf("compliant device %s: %s", d.ID, s.Status)
					}
				case "noncompliant", "inGracePeriod":
					if s.Status == "nonCompliant" {
						failing[d.ID]++
						if s.Grace == "9999-12-31T23:59:59.9999999Z" {
							t.Errorf("failing status without a grace period: %+v", s)
						}
					}
				}
			}
		}
		for id, d := range devices {
			if n := len(policiesOf2(coll.policies, d.OperatingSystem)); seen[id] != n {
				t.Errorf("%s: device %s has %d statuses for %d policies", coll.name, id, seen[id], n)
			}
			if compliance && (d.ComplianceState == "noncompliant" || d.ComplianceState == "inGracePeriod") && failing[id] != 1 {
				t.Errorf("%s device %s fails %d policies, want 1", d.ComplianceState, id, failing[id])
			}
		}
		if statuses["compliant"] == 0 || !compliance && (statuses["error"]+statuses["conflict"] == 0) || compliance && statuses["nonCompliant"] == 0 {
			t.Errorf("%s: statuses %v", coll.name, statuses)
		}
	}
}

func policiesOf2(policies []IntunePolicy, os string) []IntunePolicy {
	var out []IntunePolicy
	for _, p := range policies {
		if p.OperatingSystem == os {
			out = append(out, p)
		}
	}
	return out
}

// Statuses follow the tenant: a removed device's leaves the list, an
// enrolled one's joins it, a changed one's may change.
func TestDeviceStatusesFollowTheTenant(t *testing.T) {
	e := intuneEnv(t, func(c *Config) { c.Devices = 60 })
	pol := e.sim.CompliancePolicies()[0]
	before, _ := e.sim.ComplianceDeviceStatuses(pol.ID)
	victim := before[2].DeviceIndex
	e.sim.Remove(victim)
	first := e.sim.Add(40)
	after, _ := e.sim.ComplianceDeviceStatuses(pol.ID)
	items, _ := collect(t, e, "/beta/deviceManagement/deviceCompliancePolicies/"+pol.ID+"/deviceStatuses?$top=7")
	got := itemIDs(t, items)
	var want []string
	added := 0
	for _, s := range after {
		want = append(want, s.ID)
		if s.DeviceIndex == victim {
			t.Errorf("removed device %d still has a status", victim)
		}
		if s.DeviceIndex >= first {
			added++
		}
	}
	if !slices.Equal(got, want) || added == 0 {
		t.Errorf("after the mutation: %d statuses listed, truth %d, %d of new devices", len(got), len(want), added)
	}
}

// Every Windows device but Cloud PCs has one Autopilot identity naming
// it; some are registered and not enrolled yet; a device removed from
// Intune keeps its registration.
func TestAutopilotIdentitiesNameTheDevices(t *testing.T) {
	e := intuneEnv(t, func(c *Config) { c.IntunePageSize = 25 })
	victim := -1
	for i := 0; i < 300 && victim < 0; i++ {
		if e.sim.autopilotEligible(i) {
			victim = i
		}
	}
	e.sim.Remove(victim)
	devices, _ := listDevices(t, e)
	items, _ := collect(t, e, "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities")
	type identity struct {
		ID, SerialNumber, Model, Manufacturer, EnrollmentState, LastContactedDateTime string
		ManagedDeviceID                                                               string `json:"managedDeviceId"`
		AzureID                                                                       string `json:"azureActiveDirectoryDeviceId"`
	}
	const zero = "00000000-0000-0000-0000-000000000000"
	named := map[string]bool{}
	pending, orphans := 0, 0
	for _, raw := range items {
		var a identity
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if a.ManagedDeviceID == zero {
			if a.EnrollmentState != "notContacted" {
				t.Errorf("identity without a device: %+v", a)
			}
			if a.LastContactedDateTime == "0001-01-01T00:00:00Z" {
				pending++
			} else {
				orphans++
			}
			continue
		}
		d, ok := devices[a.ManagedDeviceID]
		if !ok || named[d.ID] {
			t.Fatalf("identity %+v names no listed device, or one named before", a)
		}
		named[d.ID] = true
		if d.OperatingSystem != "Windows" || strings.HasPrefix(d.Model, "Cloud PC") || a.EnrollmentState != "enrolled" ||
			a.SerialNumber != d.SerialNumber || a.Model != d.Model || a.Manufacturer != d.Manufacturer ||
			d.AzureADDeviceID != zero && a.AzureID != d.AzureADDeviceID {
			t.Errorf("identity %+v does not match device %+v", a, d)
		}
	}
	for id, d := range devices {
		if d.OperatingSystem == "Windows" && !strings.HasPrefix(d.Model, "Cloud PC") && !named[id] {
			t.Errorf("Windows device %s (%s) has no identity", id, d.Model)
		}
	}
	if pending != 300/25 || orphans != 1 {
		t.Errorf("%d identities not enrolled yet, %d of removed devices; want %d and 1", pending, orphans, 300/25)
	}
	truth := e.sim.AutopilotDevices()
	if len(truth) != len(items) {
		t.Errorf("truth %d, listed %d", len(truth), len(items))
	}
	for k, a := range truth {
		if a.DeviceIndex >= 0 && a.ManagedDeviceID != zero && a.ManagedDeviceID != e.sim.DeviceID(a.DeviceIndex) {
			t.Errorf("truth %d: %+v", k, a)
		}
	}
	// One identity, by its id.
	resp, body := e.get(t, "/beta/deviceManagement/windowsAutopilotDeviceIdentities/"+truth[3].ID, e.token)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"serialNumber":"`+truth[3].SerialNumber+`"`)) ||
		!bytes.Contains(body, []byte(`windowsAutopilotDeviceIdentities/$entity"`)) {
		t.Errorf("GET of one identity: %d %s", resp.StatusCode, body)
	}
}

// configurationPolicies is beta's only: v1.0 does not know the segment
// and answers 400, as Graph does; so are androidManagedStoreApps.
func TestBetaOnlyResourcesAreRefusedOnV1(t *testing.T) {
	e := intuneEnv(t, nil)
	pol := e.sim.ConfigurationPolicies()[0]
	for _, path := range []string{
		"/v1.0/deviceManagement/configurationPolicies",
		"/v1.0/deviceManagement/configurationPolicies?$top=2",
		"/v1.0/deviceManagement/configurationPolicies/" + pol.ID + "/assignments",
	} {
		resp, body := e.get(t, path, e.token)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		if ge := decodeGraphError(t, resp, body); ge.Error.Code != "BadRequest" ||
			ge.Error.Message != "Resource not found for the segment 'configurationPolicies'." {
			t.Errorf("%s: %+v", path, ge.Error)
		}
	}
	if resp, body := e.get(t, "/beta/deviceManagement/configurationPolicies/"+pol.ID+"/assignments", e.token); resp.StatusCode != 200 {
		t.Errorf("beta: %d %s", resp.StatusCode, body)
	}
	for _, a := range e.sim.MobileApps() {
		if !a.BetaOnly {
			continue
		}
		if resp, _ := e.get(t, "/v1.0/deviceAppManagement/mobileApps/"+a.ID, e.token); resp.StatusCode != http.StatusNotFound {
			t.Errorf("v1.0 GET of %s %s: %d", a.ODataType, a.ID, resp.StatusCode)
		}
		if resp, _ := e.get(t, "/beta/deviceAppManagement/mobileApps('"+a.ID+"')", e.token); resp.StatusCode != http.StatusOK {
			t.Errorf("beta GET of %s: %d", a.ID, resp.StatusCode)
		}
	}
	if recs := e.sim.Requests(); recs[1].Kind != KindConfigurationPolicies || recs[1].Status != 400 {
		t.Errorf("record %+v", recs[1])
	}
}

// $select takes the collection's own properties only, $expand its
// assignments; the context names both.
func TestIntuneSelectAndExpand(t *testing.T) {
	e := intuneEnv(t, nil)
	items, _ := collect(t, e, "/v1.0/deviceManagement/deviceCompliancePolicies?$select=displayName,id&$top=2")
	for _, raw := range items {
		if keys := strings.Join(topLevelKeys(t, raw), ","); keys != "@odata.type,id,displayName" {
			t.Errorf("selected keys %s", keys)
		}
	}
	_, body := e.get(t, "/v1.0/deviceManagement/deviceCompliancePolicies?$select=displayName,id", e.token)
	if pg := decodePage(t, body); pg.Context != "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/deviceCompliancePolicies(id,displayName)" {
		t.Errorf("context %q", pg.Context)
	}

	policies := e.sim.CompliancePolicies()
	items, _ = collect(t, e, "/beta/deviceManagement/deviceCompliancePolicies?$expand=assignments")
	if len(items) != len(policies) {
		t.Fatalf("%d policies", len(items))
	}
	for k, raw := range items {
		var p struct {
			ID          string `json:"id"`
			Context     string `json:"assignments@odata.context"`
			Assignments []struct {
				ID       string `json:"id"`
				Source   string `json:"source"`
				SourceID string `json:"sourceId"`
				Target   struct {
					Type       string  `json:"@odata.type"`
					FilterID   *string `json:"deviceAndAppManagementAssignmentFilterId"`
					FilterType string  `json:"deviceAndAppManagementAssignmentFilterType"`
					GroupID    string  `json:"groupId"`
				} `json:"target"`
			} `json:"assignments"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		want := policies[k]
		if p.ID != want.ID || p.Context != "https://graph.microsoft.com/beta/$metadata#deviceManagement/deviceCompliancePolicies('"+want.ID+"')/assignments" ||
			len(p.Assignments) != len(want.Assignments) {
			t.Fatalf("policy %d: %s", k, raw)
		}
		for n, a := range p.Assignments {
			w := want.Assignments[n]
			if a.ID != w.ID || a.ID != want.ID+"_"+w.GroupID || a.Source != "direct" || a.SourceID != want.ID ||
				a.Target.Type != "#microsoft.graph."+w.Target || a.Target.FilterType != "none" {
				t.Errorf("assignment %+v, want %+v", a, w)
			}
		}
	}
	_, body = e.get(t, "/beta/deviceManagement/deviceCompliancePolicies?$expand=assignments&$select=id", e.token)
	if pg := decodePage(t, body); !strings.HasSuffix(pg.Context, "deviceCompliancePolicies(id,assignments())") {
		t.Errorf("context %q", pg.Context)
	}

	for path, msg := range map[string]string{
		"/v1.0/deviceManagement/deviceCompliancePolicies?$select=passwordRequired":      "Could not find a property named 'passwordRequired' on type 'microsoft.graph.deviceCompliancePolicy'.",
		"/v1.0/deviceManagement/deviceCategories?$select=roleScopeTagIds":               "Could not find a property named 'roleScopeTagIds' on type 'microsoft.graph.deviceCategory'.",
		"/v1.0/deviceManagement/deviceConfigurations?$expand=deviceStatuses":            "Could not find a property named 'deviceStatuses' on type 'microsoft.graph.deviceConfiguration'.",
		"/v1.0/deviceManagement/windowsAutopilotDeviceIdentities?$expand=x":             "Unrecognized query argument specified: '$expand'.",
		"/v1.0/deviceAppManagement/mobileApps?$filter=isof('x')":                        "Invalid filter clause",
		"/v1.0/deviceAppManagement/mobileApps?$top=0":                                   "Invalid value '0' for $top query option found. The $top query option requires a positive integer value.",
		"/v1.0/deviceManagement/deviceCategories?$skiptoken=nonsense":                   "The skip token 'nonsense' is not valid.",
		"/v1.0/deviceManagement/deviceCompliancePolicies/" + policies[0].ID + "?$top=1": notCollection,
	} {
		resp, body := e.get(t, path, e.token)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
			continue
		}
		if ge := decodeGraphError(t, resp, body); ge.Error.Message != msg {
			t.Errorf("%s: %q", path, ge.Error.Message)
		}
	}
}

// Without the permission, Intune's nested 403 names the collection's own
// scopes; an unknown policy is 404; no token is 401.
func TestIntuneForbiddenNotFoundAndUnauthorized(t *testing.T) {
	e := intuneEnv(t, func(c *Config) { c.Forbidden = true })
	for path, scope := range map[string]string{
		"/v1.0/deviceManagement/deviceCompliancePolicies":         "DeviceManagementConfiguration.Read.All",
		"/beta/deviceManagement/configurationPolicies":            "DeviceManagementConfiguration.Read.All",
		"/v1.0/deviceManagement/windowsAutopilotDeviceIdentities": "DeviceManagementServiceConfig.Read.All",
		"/v1.0/deviceAppManagement/mobileApps":                    "DeviceManagementApps.Read.All",
		"/v1.0/deviceManagement/deviceCategories":                 "DeviceManagementManagedDevices.Read.All",
	} {
		resp, body := e.get(t, path, e.token)
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %d", path, resp.StatusCode)
		}
		ge := decodeGraphError(t, resp, body)
		var inner struct{ Message string }
		if json.Unmarshal([]byte(ge.Error.Message), &inner) != nil || !strings.Contains(inner.Message, scope) {
			t.Errorf("%s: %q", path, ge.Error.Message)
		}
	}
	e = intuneEnv(t, nil)
	for _, path := range []string{
		"/v1.0/deviceManagement/deviceCompliancePolicies/4f3c7a51-0000-4000-8000-000000000001/deviceStatuses",
		"/v1.0/deviceManagement/deviceConfigurations/nope/assignments",
		"/v1.0/deviceManagement/deviceConfigurations/nope",
		"/v1.0/deviceAppManagement/mobileApps/nope",
	} {
		resp, body := e.get(t, path, e.token)
		if resp.StatusCode != http.StatusNotFound || decodeGraphError(t, resp, body).Error.Code != "ResourceNotFound" {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	for _, path := range []string{"/v1.0/deviceAppManagement/x", "/v1.0/deviceManagement/mobileApps", "/v1.0/deviceAppManagement/deviceCategories"} {
		if resp, _ := e.get(t, path, e.token); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
	if resp, _ := e.get(t, "/v1.0/deviceManagement/deviceCategories", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %d", resp.StatusCode)
	}
}

// A fault scripted for a page of one of these lists is served there, and
// only there: managedDevices' script does not reach them, theirs does not
// reach managedDevices.
func TestIntuneFaultsAreServed(t *testing.T) {
	e := intuneEnv(t, func(c *Config) { c.PageSize = 5 })
	pol := e.sim.CompliancePolicies()[0]
	statuses := "/v1.0/deviceManagement/deviceCompliancePolicies/" + pol.ID + "/deviceStatuses?$top=5"
	e.sim.SetFaults([]Fault{
		{Resource: KindComplianceDeviceStatuses, Page: 2, Attempt: 1, Kind: Fault503, RetryAfter: "2"},
		{Page: 2, Kind: Fault500}, // managedDevices'
		{Resource: KindMobileApps, Page: 1, Attempt: 1, Kind: Fault429},
		{Resource: KindAutopilotDevices, Page: 1, Attempt: 1, Kind: FaultMalformed},
		{Resource: KindDeviceCategories, Page: 1, Attempt: 1, Kind: FaultForeignNextLink},
		{Resource: KindDeviceConfigurations, Page: 1, Attempt: 1, Kind: Fault403},
	})
	e.sim.ResetRequests()
	_, body := e.get(t, statuses, e.token)
	next := decodePage(t, body).NextLink
	resp, body := e.get(t, next, e.token)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" ||
		decodeGraphError(t, resp, body).Error.Code != "ServiceUnavailable" {
		t.Fatalf("page 2, attempt 1: %d %s", resp.StatusCode, body)
	}
	if resp, body := e.get(t, next, e.token); resp.StatusCode != http.StatusOK || len(decodePage(t, body).Value) != 5 {
		t.Fatalf("page 2, attempt 2: %d %s", resp.StatusCode, body)
	}
	recs := e.sim.Requests()
	if r := recs[1]; r.Kind != KindComplianceDeviceStatuses || r.Page != 2 || r.Attempt != 1 || r.Fault != Fault503 || r.RetryAfter != 2*time.Second {
		t.Errorf("record %+v", r)
	}
	if r := recs[2]; r.Page != 2 || r.Attempt != 2 || r.Fault != "" || r.Status != 200 {
		t.Errorf("record %+v", r)
	}
	// Another policy's statuses share the page's attempts: its page 2 is
	// attempt 3, which no fault names.
	other := e.sim.CompliancePolicies()[1]
	items, _ := collect(t, e, "/v1.0/deviceManagement/deviceCompliancePolicies/"+other.ID+"/deviceStatuses?$top=5")
	if len(items) == 0 {
		t.Error("no statuses")
	}

	if resp, _ := e.get(t, "/v1.0/deviceAppManagement/mobileApps", e.token); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("mobileApps: %d", resp.StatusCode)
	}
	resp, body = e.get(t, "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities", e.token)
	if resp.StatusCode != http.StatusOK || json.Valid(body) || resp.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
		t.Errorf("malformed autopilot page: %d, valid %v", resp.StatusCode, json.Valid(body))
	}
	if pg := decodePage(t, mustGet(t, e, "/v1.0/deviceManagement/deviceCategories")); !strings.HasPrefix(pg.NextLink, "https://"+ForeignHost+"/v1.0/deviceManagement/deviceCategories?$skiptoken=") {
		t.Errorf("foreign nextLink %q", pg.NextLink)
	}
	resp, body = e.get(t, "/v1.0/deviceManagement/deviceConfigurations", e.token)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(decodeGraphError(t, resp, body).Error.Message, "DeviceManagementConfiguration.Read.All") {
		t.Errorf("403 fault: %d %s", resp.StatusCode, body)
	}
	// managedDevices keep their own script.
	_, body = e.get(t, devicesPath, e.token)
	if resp, _ := e.get(t, decodePage(t, body).NextLink, e.token); resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("managedDevices page 2: %d", resp.StatusCode)
	}
	// A page cut short drops the connection, as managedDevices' does.
	e.sim.SetFaults([]Fault{{Resource: KindMobileApps, Kind: FaultTruncate}})
	if _, _, err := fetch(t, e, "/beta/deviceAppManagement/mobileApps", e.token); err == nil {
		t.Error("a truncated page was read whole")
	}
	if st := e.sim.Stats(); st.FaultsInjected != 7 {
		t.Errorf("faults injected: %d", st.FaultsInjected)
	}
}

func mustGet(t *testing.T, e *env, path string) []byte {
	t.Helper()
	resp, body := e.get(t, path, e.token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
	}
	return body
}

func TestIntuneFaultSyntax(t *testing.T) {
	f, err := ParseFault("resource=deviceComplianceDeviceStatuses,page=2,kind=503,retry_after=1")
	if err != nil || f.Resource != KindComplianceDeviceStatuses || f.Page != 2 {
		t.Fatalf("%+v %v", f, err)
	}
	b, err := json.Marshal(f)
	if err != nil || !strings.Contains(string(b), `"resource":"deviceComplianceDeviceStatuses"`) {
		t.Fatalf("%s %v", b, err)
	}
	var back Fault
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("round trip %+v %v", back, err)
	}
	if _, err := ParseFault("resource=managedDevicez,kind=500"); err == nil || !strings.Contains(err.Error(), "mobileApps") {
		t.Errorf("unknown resource: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"kind":"500","resource":"users"}`), &back); err == nil {
		t.Error("unknown resource accepted over JSON")
	}
}

// These requests take from the app's throttle bucket like any Graph
// request, directly and inside a $batch.
func TestIntuneRequestsAreThrottled(t *testing.T) {
	var clock *fakeClock
	e := intuneEnv(t, func(c *Config) { c.Throttle = Throttle{Requests: 4, Window: 20 * time.Second} }, withClock(&clock))
	pol := e.sim.CompliancePolicies()[0]
	for _, path := range []string{
		"/v1.0/deviceManagement/deviceCompliancePolicies",
		"/v1.0/deviceManagement/deviceCompliancePolicies/" + pol.ID + "/deviceStatuses",
		"/beta/deviceManagement/configurationPolicies",
		"/v1.0/deviceManagement/windowsAutopilotDeviceIdentities",
	} {
		if resp, body := e.get(t, path, e.token); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
	}
	resp, body := e.get(t, "/v1.0/deviceAppManagement/mobileApps", e.token)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "5" {
		t.Fatalf("fifth request: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	clock.Advance(5 * time.Second)
	items, _ := postBatch(t, e, "v1.0", batchOf(t, gets("/deviceManagement/deviceCategories", "deviceAppManagement/mobileApps?$top=1")...))
	statuses := []int{items["1"].Status, items["2"].Status}
	slices.Sort(statuses)
	if statuses[0] != 200 || statuses[1] != 429 {
		t.Errorf("batch statuses %v", statuses)
	}
	if st := e.sim.Stats(); st.Throttled != 2 {
		t.Errorf("throttled %d", st.Throttled)
	}
	recs := e.sim.Requests()
	if r := recs[len(recs)-2]; r.Kind != KindMobileApps || r.Status != 429 || r.RetryAfter != 5*time.Second {
		t.Errorf("record %+v", r)
	}
}

// Each tenant has its own policies, apps and Autopilot devices, and its
// statuses name its own devices.
func TestIntunePerTenant(t *testing.T) {
	ts, srv := newTenantsEnv(t, TenantsConfig{Count: 3, Base: Config{Devices: 40, Seed: 9}, Forbidden: []int{2}})
	e0, e1 := tenantEnv(t, ts, srv, 0), tenantEnv(t, ts, srv, 1)
	p0, p1 := ts.Tenant(0).CompliancePolicies(), ts.Tenant(1).CompliancePolicies()
	if p0[0].ID == p1[0].ID {
		t.Fatal("two tenants share a policy id")
	}
	items, _ := collect(t, e1, "/v1.0/deviceManagement/deviceCompliancePolicies/"+p1[0].ID+"/deviceStatuses")
	devices, _ := listDevices(t, e1)
	for _, id := range itemIDs(t, items) {
		if _, ok := devices[strings.Split(id, "_")[0]]; !ok {
			t.Errorf("tenant 1's status %s names no device of tenant 1", id)
		}
	}
	if resp, _ := e0.get(t, "/v1.0/deviceManagement/deviceCompliancePolicies/"+p1[0].ID+"/deviceStatuses", e0.token); resp.StatusCode != http.StatusNotFound {
		t.Errorf("tenant 0 reads tenant 1's policy: %d", resp.StatusCode)
	}
	if got := itemIDs(t, mustCollect(t, e0, "/v1.0/deviceAppManagement/mobileApps")); got[0] != ts.Tenant(0).MobileApps()[0].ID {
		t.Errorf("tenant 0's apps %v", got)
	}
	e2 := tenantEnv(t, ts, srv, 2)
	if resp, _ := e2.get(t, "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities", e2.token); resp.StatusCode != http.StatusForbidden {
		t.Errorf("forbidden tenant: %d", resp.StatusCode)
	}
	if st := ts.Stats(); st.IntunePageRequests < 4 {
		t.Errorf("stats %+v", st)
	}
}

func mustCollect(t *testing.T, e *env, path string) []json.RawMessage {
	t.Helper()
	items, _ := collect(t, e, path)
	return items
}

// The same seed gives the same bytes, another seed other data.
func TestIntuneDeterminism(t *testing.T) {
	read := func(seed int64) []byte {
		e := intuneEnv(t, func(c *Config) { c.Seed, c.IntunePageSize = seed, 1000 })
		var all []byte
		for _, version := range []string{"v1.0", "beta"} {
			for _, lc := range intuneLists(t, e.sim, version) {
				for _, raw := range mustCollect(t, e, lc.path) {
					all = append(all, raw...)
				}
			}
		}
		return all
	}
	a, b, c := read(4), read(4), read(5)
	if !bytes.Equal(a, b) {
		t.Error("same seed, other bytes")
	}
	if bytes.Equal(a, c) {
		t.Error("other seed, same bytes")
	}
}

// Statuses of a tenant of 100,000 devices are written while the page is,
// never stored: a page costs what it writes, wherever it is.
func TestDeviceStatusPagesCostTheirOwnSize(t *testing.T) {
	s := New(Config{Devices: 100_000, Seed: 2})
	token := s.issueToken()
	pol := s.CompliancePolicies()[0]
	url := "/v1.0/deviceManagement/deviceCompliancePolicies/" + pol.ID + "/deviceStatuses"
	page := func(u string) (int64, []byte) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		before := ms.TotalAlloc
		w := &recordingDiscard{discard: discard{h: http.Header{}}}
		s.ServeHTTP(w, req)
		runtime.ReadMemStats(&ms)
		return int64(ms.TotalAlloc - before), w.body
	}
	page(url) // builds the index of operating systems
	cost, body := page(url)
	pg := decodePage(t, body)
	if len(pg.Value) != 1000 || pg.Count == nil || *pg.Count < 50_000 {
		t.Fatalf("page of %d, count %v", len(pg.Value), pg.Count)
	}
	u := pg.NextLink[strings.Index(pg.NextLink, "/v1.0/"):]
	for range 20 { // further in
		_, body = page(u)
		next := decodePage(t, body).NextLink
		u = next[strings.Index(next, "/v1.0/"):]
	}
	later, _ := page(u)
	// About 2.3 MB, the page's body included; the 60,000 statuses of the
	// policy would be ten times that.
	if cost > 8<<20 || later > 8<<20 {
		t.Errorf("a page of 1000 statuses allocated %d then %d bytes", cost, later)
	}
}

// recordingDiscard keeps the body of one answer.
type recordingDiscard struct {
	discard
	body []byte
}

func (r *recordingDiscard) Write(b []byte) (int, error) {
	r.body = append(r.body, b...)
	return len(b), nil
}

// The categories are those the devices are in.
func TestDeviceCategoriesAreTheDevicesCategories(t *testing.T) {
	e := intuneEnv(t, nil)
	names := map[string]bool{}
	for _, raw := range mustCollect(t, e, "/v1.0/deviceManagement/deviceCategories") {
		var c struct{ ID, DisplayName, Description string }
		if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" || c.Description == "" {
			t.Fatalf("category %s", raw)
		}
		names[c.DisplayName] = true
	}
	used := map[string]bool{}
	for _, raw := range mustCollect(t, e, devicesPath+"?$select=deviceCategoryDisplayName") {
		var d struct{ DeviceCategoryDisplayName string }
		if err := json.Unmarshal(raw, &d); err != nil {
			t.Fatal(err)
		}
		if d.DeviceCategoryDisplayName != "Unknown" {
			used[d.DeviceCategoryDisplayName] = true
		}
	}
	if len(used) == 0 || len(used) != len(names) {
		t.Errorf("categories %v, devices use %v", names, used)
	}
	for name := range used {
		if !names[name] {
			t.Errorf("devices use %q, which is no category", name)
		}
	}
}
