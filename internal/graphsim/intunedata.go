package graphsim

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"
)

// The tenant's small Intune collections, made once from the seed: the
// device categories its devices use, a handful of compliance policies and
// configuration profiles (at least one of each per platform, so that every
// device reports a status for each kind), settings catalog policies and
// the apps an organisation deploys. Each tenant (seed) has its own ids,
// dates, names (one of two naming styles), settings, assignments and
// selection of the optional items.

// intuneCatalog is one tenant's small collections, in listing order.
type intuneCatalog struct {
	categories       []*record
	compliance       []*record
	configurations   []*record
	settingsPolicies []*record
	mobileApps       []*record
	// perOS are, per platform, the compliance policies (index 0) and
	// configuration profiles (1) that its devices report a status for.
	perOS [2][osCount][]*record
}

// Salts of the catalogue's streams.
const (
	saltCatalog   = 0x17e00000
	saltGroups    = saltCatalog + 1
	saltStatus    = 0x57a70000 // plus the revision of the device: a status per (device, revision, policy)
	saltAutopilot = 0xa7000000
)

// The virtual groups Intune assigns to "All devices" and "All users".
const (
	allDevicesGroup = "adadadad-808e-44e2-905a-0b7873a8a531"
	allUsersGroup   = "acacacac-9df4-4c7d-9d50-4ef0226f57a9"
)

// guidText is a GUID without its quotes.
func guidText(g guid) string {
	b := appendGUID(nil, g)
	return string(b[1 : len(b)-1])
}

// catalogBuilder draws the catalogue.
type catalogBuilder struct {
	r      rng
	seed   int64
	style  int    // naming style: 0 "Windows - Baseline", 1 "WIN-CMP-Baseline"
	groups []guid // the tenant's Entra groups that policies are assigned to
}

func (cb *catalogBuilder) id() string { return guidText(newGUID(&cb.r)) }

// dates draws a creation date and a later modification, both before
// dataNow.
func (cb *catalogBuilder) dates() (created, modified int64) {
	first := unixOf(2020, time.March, 1)
	created = first + int64(cb.r.intn(int(dataNow-first-30*day)))
	modified = created + int64(cb.r.intn(int(dataNow-created)))
	return created, modified
}

// name picks the tenant's style of name.
func (cb *catalogBuilder) name(names [2]string) string { return names[cb.style] }

func buildIntuneCatalog(seed int64) *intuneCatalog {
	cb := &catalogBuilder{r: newRNG(seed, 0, saltCatalog), seed: seed}
	cb.style = cb.r.intn(2)
	g := newRNG(seed, 0, saltGroups)
	for range 6 {
		cb.groups = append(cb.groups, newGUID(&g))
	}
	c := &intuneCatalog{}
	c.categories = cb.categories()
	c.compliance = cb.policies(complianceTemplates, cb.compliancePolicy)
	c.configurations = cb.policies(configurationTemplates, cb.configurationProfile)
	c.settingsPolicies = cb.settingsPolicies()
	c.mobileApps = cb.mobileApps()
	for k, list := range [][]*record{c.compliance, c.configurations} {
		for _, r := range list {
			r.nth = len(c.perOS[k][r.os])
			c.perOS[k][r.os] = append(c.perOS[k][r.os], r)
		}
	}
	return c
}

// categoryDescriptions describe the categories devices use (data.go's
// categories but "Unknown", which is a device without one).
var categoryDescriptions = map[string]string{
	"Sales":       "Laptops and phones of the sales team",
	"Engineering": "Developer workstations and test devices",
	"Finance":     "Devices with access to finance systems",
	"Frontline":   "Shared devices of store and warehouse staff",
	"Kiosk":       "Single-app kiosks and signage",
}

func (cb *catalogBuilder) categories() []*record {
	var out []*record
	seen := map[string]bool{}
	for _, name := range categories {
		if name == "Unknown" || seen[name] {
			continue
		}
		seen[name] = true
		b := newRecord(cb.id(), "")
		b.str("id", b.r.id).str("displayName", name).str("description", categoryDescriptions[name])
		b.only(inBeta, func() { b.strs("roleScopeTagIds", "0") })
		b.r.name = name
		out = append(out, b.done())
	}
	return out
}

// policyTemplate is one compliance policy or configuration profile a
// tenant may have.
type policyTemplate struct {
	typ    string    // its derived type
	os     osKind    // the platform it targets
	names  [2]string // its name in each naming style
	desc   string
	chance int // percent of tenants that have it (100: every tenant)
	build  func(cb *catalogBuilder, b *recordBuilder)
}

// policies makes the tenant's policies from the templates: those every
// tenant has and those the dice give it.
func (cb *catalogBuilder) policies(templates []policyTemplate, base func(t *policyTemplate) *recordBuilder) []*record {
	var out []*record
	for k := range templates {
		t := &templates[k]
		if t.chance < 100 && !cb.r.chance(t.chance) {
			continue
		}
		b := base(t)
		t.build(cb, b)
		rec := b.done()
		rec.os, rec.name = t.os, cb.name(t.names)
		out = append(out, rec)
	}
	return out
}

// compliancePolicy writes a compliance policy's base properties, in the
// order Graph writes them (beta puts roleScopeTagIds first).
func (cb *catalogBuilder) compliancePolicy(t *policyTemplate) *recordBuilder {
	id := cb.id()
	created, modified := cb.dates()
	b := newRecord(id, t.typ)
	b.only(inBeta, func() { b.strs("roleScopeTagIds", "0") })
	b.str("id", id).ticks("createdDateTime", created, cb.r.intn(1e7)).str("description", t.desc).
		ticks("lastModifiedDateTime", modified, cb.r.intn(1e7)).str("displayName", cb.name(t.names)).
		num("version", int64(1+cb.r.intn(12)))
	b.r.assign = cb.assignments(id, false, false)
	return b
}

// configurationProfile writes a configuration profile's base properties.
func (cb *catalogBuilder) configurationProfile(t *policyTemplate) *recordBuilder {
	id := cb.id()
	created, modified := cb.dates()
	b := newRecord(id, t.typ)
	b.str("id", id).ticks("lastModifiedDateTime", modified, cb.r.intn(1e7))
	b.only(inBeta, func() {
		b.strs("roleScopeTagIds", "0").flag("supportsScopeTags", true).
			null("deviceManagementApplicabilityRuleOsEdition").null("deviceManagementApplicabilityRuleOsVersion").
			null("deviceManagementApplicabilityRuleDeviceMode")
	})
	b.ticks("createdDateTime", created, cb.r.intn(1e7)).str("description", t.desc).
		str("displayName", cb.name(t.names)).num("version", int64(1+cb.r.intn(8)))
	b.r.assign = cb.assignments(id, true, false)
	return b
}

// assignments draws a policy's targets: a group or two, All devices or
// All users, now and then an excluded group. intent adds a configuration
// profile's "intent": "apply" in beta; settingsCatalog writes beta's
// shape only.
func (cb *catalogBuilder) assignments(policyID string, intent, settingsCatalog bool) []*record {
	var targets []struct {
		typ, group string
	}
	switch n := cb.r.intn(10); {
	case n < 2:
		targets = append(targets, struct{ typ, group string }{"allDevicesAssignmentTarget", allDevicesGroup})
	case n < 3:
		targets = append(targets, struct{ typ, group string }{"allLicensedUsersAssignmentTarget", allUsersGroup})
	case n < 4:
		// Not assigned: a draft, or one kept for later.
	default:
		for _, k := range pickDistinct(&cb.r, len(cb.groups), 1+cb.r.intn(2)) {
			targets = append(targets, struct{ typ, group string }{"groupAssignmentTarget", guidText(cb.groups[k])})
		}
	}
	if len(targets) > 0 && cb.r.chance(20) {
		targets = append(targets, struct{ typ, group string }{"exclusionGroupAssignmentTarget", guidText(cb.groups[len(cb.groups)-1])})
	}
	var out []*record
	for _, t := range targets {
		id := policyID + "_" + t.group
		b := newRecord(id, "")
		b.str("id", id)
		if intent {
			b.only(inBeta, func() { b.str("intent", "apply") })
		}
		b.only(inBeta, func() { b.str("source", "direct").str("sourceId", policyID) })
		v1 := appendTarget(nil, t.typ, t.group, false)
		beta := appendTarget(nil, t.typ, t.group, true)
		if settingsCatalog {
			b.raw("target", beta)
		} else {
			b.only(inV1, func() { b.raw("target", v1) }).only(inBeta, func() { b.raw("target", beta) })
		}
		out = append(out, b.done())
	}
	return out
}

// appendTarget writes an assignment's target; beta adds the assignment
// filter's id and type.
func appendTarget(b []byte, typ, group string, beta bool) []byte {
	b = append(b, `{"@odata.type":"#microsoft.graph.`...)
	b = append(b, typ...)
	b = append(b, '"')
	if beta {
		b = append(b, `,"deviceAndAppManagementAssignmentFilterId":null,"deviceAndAppManagementAssignmentFilterType":"none"`...)
	}
	if typ == "groupAssignmentTarget" || typ == "exclusionGroupAssignmentTarget" {
		b = append(b, `,"groupId":`...)
		b = appendString(b, group)
	}
	return append(b, '}')
}

// pickDistinct returns k distinct indexes below n.
func pickDistinct(r *rng, n, k int) []int {
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	shuffle(r, perm)
	return perm[:min(k, n)]
}

// Values shared by the templates.
var (
	windowsMinimum = []string{"10.0.19045.4780", "10.0.22621.3880", "10.0.22631.4037"}
	iosMinimum     = []string{"16.7", "17.0", "17.5"}
	androidMinimum = []string{"11.0", "12.0", "13.0"}
	macMinimum     = []string{"13.6", "14.0", "14.5"}
	threatLevels   = []string{"unavailable", "secured", "low", "medium"}
)

var complianceTemplates = []policyTemplate{
	{typ: "windows10CompliancePolicy", os: osWindows, chance: 100,
		names: [2]string{"Windows 10/11 - Baseline compliance", "WIN-CMP-Baseline"},
		desc:  "Minimum OS build, BitLocker, Secure Boot and code integrity for corporate Windows devices",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			r := &cb.r
			b.flag("passwordRequired", true).flag("passwordBlockSimple", true).flag("passwordRequiredToUnlockFromIdle", false).
				num("passwordMinutesOfInactivityBeforeLock", 15).null("passwordExpirationDays").
				num("passwordMinimumLength", int64(8+2*r.intn(3))).null("passwordMinimumCharacterSetCount").
				str("passwordRequiredType", "alphanumeric").num("passwordPreviousPasswordBlockCount", 5).
				flag("requireHealthyDeviceReport", true).str("osMinimumVersion", pick(r, windowsMinimum)).null("osMaximumVersion").
				null("mobileOsMinimumVersion").null("mobileOsMaximumVersion").
				flag("earlyLaunchAntiMalwareDriverEnabled", false).flag("bitLockerEnabled", true).
				flag("secureBootEnabled", true).flag("codeIntegrityEnabled", true)
			b.only(inBeta, func() {
				b.flag("memoryIntegrityEnabled", false).flag("kernelDmaProtectionEnabled", false).
					flag("virtualizationBasedSecurityEnabled", false).flag("firmwareProtectionEnabled", false)
			})
			b.flag("storageRequireEncryption", true)
			windowsBetaTail(cb, b, true)
		}},
	{typ: "windows10CompliancePolicy", os: osWindows, chance: 70,
		names: [2]string{"Windows - Defender and firewall", "WIN-CMP-Defender"},
		desc:  "Requires an active firewall, Microsoft Defender Antivirus with current signatures",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			b.flag("passwordRequired", false).flag("passwordBlockSimple", false).flag("passwordRequiredToUnlockFromIdle", false).
				null("passwordMinutesOfInactivityBeforeLock").null("passwordExpirationDays").null("passwordMinimumLength").
				null("passwordMinimumCharacterSetCount").str("passwordRequiredType", "deviceDefault").
				null("passwordPreviousPasswordBlockCount").flag("requireHealthyDeviceReport", false).
				null("osMinimumVersion").null("osMaximumVersion").null("mobileOsMinimumVersion").null("mobileOsMaximumVersion").
				flag("earlyLaunchAntiMalwareDriverEnabled", false).flag("bitLockerEnabled", false).
				flag("secureBootEnabled", false).flag("codeIntegrityEnabled", false)
			b.only(inBeta, func() {
				b.flag("memoryIntegrityEnabled", false).flag("kernelDmaProtectionEnabled", false).
					flag("virtualizationBasedSecurityEnabled", false).flag("firmwareProtectionEnabled", false)
			})
			b.flag("storageRequireEncryption", false)
			windowsBetaTail(cb, b, false)
		}},
	{typ: "iosCompliancePolicy", os: osIOS, chance: 100,
		names: [2]string{"iOS/iPadOS - Corporate devices", "IOS-CMP-Corporate"},
		desc:  "Passcode, minimum iOS version and no jailbreak",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			r := &cb.r
			b.flag("passcodeBlockSimple", true).null("passcodeExpirationDays").num("passcodeMinimumLength", 6).
				num("passcodeMinutesOfInactivityBeforeLock", 5)
			b.only(inBeta, func() { b.num("passcodeMinutesOfInactivityBeforeScreenTimeout", 5) })
			b.num("passcodePreviousPasscodeBlockCount", 3).null("passcodeMinimumCharacterSetCount").
				str("passcodeRequiredType", "numeric").flag("passcodeRequired", true).
				str("osMinimumVersion", pick(r, iosMinimum)).null("osMaximumVersion")
			b.only(inBeta, func() { b.null("osMinimumBuildVersion").null("osMaximumBuildVersion") })
			b.flag("securityBlockJailbrokenDevices", true).flag("deviceThreatProtectionEnabled", r.chance(30)).
				str("deviceThreatProtectionRequiredSecurityLevel", pick(r, threatLevels)).flag("managedEmailProfileRequired", false)
			b.only(inBeta, func() { b.strs("restrictedApps").str("advancedThreatProtectionRequiredSecurityLevel", "unavailable") })
		}},
	{typ: "iosCompliancePolicy", os: osIOS, chance: 40,
		names: [2]string{"iOS/iPadOS - BYOD minimum OS", "IOS-CMP-BYOD"},
		desc:  "",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			b.flag("passcodeBlockSimple", false).null("passcodeExpirationDays").num("passcodeMinimumLength", 4).
				null("passcodeMinutesOfInactivityBeforeLock")
			b.only(inBeta, func() { b.null("passcodeMinutesOfInactivityBeforeScreenTimeout") })
			b.null("passcodePreviousPasscodeBlockCount").null("passcodeMinimumCharacterSetCount").
				str("passcodeRequiredType", "deviceDefault").flag("passcodeRequired", true).
				str("osMinimumVersion", "16.0").null("osMaximumVersion")
			b.only(inBeta, func() { b.null("osMinimumBuildVersion").null("osMaximumBuildVersion") })
			b.flag("securityBlockJailbrokenDevices", true).flag("deviceThreatProtectionEnabled", false).
				str("deviceThreatProtectionRequiredSecurityLevel", "unavailable").flag("managedEmailProfileRequired", false)
			b.only(inBeta, func() { b.strs("restrictedApps").str("advancedThreatProtectionRequiredSecurityLevel", "unavailable") })
		}},
	{typ: "androidWorkProfileCompliancePolicy", os: osAndroid, chance: 100,
		names: [2]string{"Android Enterprise - Work profile", "AND-CMP-WorkProfile"},
		desc:  "Personally-owned devices with a work profile",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			r := &cb.r
			b.flag("passwordRequired", true).num("passwordMinimumLength", 6).str("passwordRequiredType", "numericComplex").
				num("passwordMinutesOfInactivityBeforeLock", 5).null("passwordExpirationDays").null("passwordPreviousPasswordBlockCount").
				flag("securityPreventInstallAppsFromUnknownSources", true).flag("securityDisableUsbDebugging", false).
				flag("securityRequireVerifyApps", true).flag("deviceThreatProtectionEnabled", false).
				str("deviceThreatProtectionRequiredSecurityLevel", "unavailable").flag("securityBlockJailbrokenDevices", true).
				str("osMinimumVersion", pick(r, androidMinimum)).null("osMaximumVersion").
				str("minAndroidSecurityPatchLevel", time.Unix(dataNow-int64(120+r.intn(120))*day, 0).UTC().Format("2006-01")+"-01").
				flag("storageRequireEncryption", true).flag("securityRequireSafetyNetAttestationBasicIntegrity", true).
				flag("securityRequireSafetyNetAttestationCertifiedDevice", true).flag("securityRequireGooglePlayServices", true).
				flag("securityRequireUpToDateSecurityProviders", false).flag("securityRequireCompanyPortalAppIntegrity", true)
			b.only(inBeta, func() {
				b.null("passwordSignInFailureCountBeforeFactoryReset").str("requiredPasswordComplexity", "none").
					str("securityRequiredAndroidSafetyNetEvaluationType", "basic")
			})
		}},
	{typ: "macOSCompliancePolicy", os: osMacOS, chance: 100,
		names: [2]string{"macOS - Baseline compliance", "MAC-CMP-Baseline"},
		desc:  "FileVault, firewall, System Integrity Protection",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			r := &cb.r
			b.flag("passwordRequired", true).flag("passwordBlockSimple", true).null("passwordExpirationDays").
				num("passwordMinimumLength", 10).num("passwordMinutesOfInactivityBeforeLock", 15).
				num("passwordPreviousPasswordBlockCount", 5).null("passwordMinimumCharacterSetCount").
				str("passwordRequiredType", "alphanumeric").str("osMinimumVersion", pick(r, macMinimum)).null("osMaximumVersion").
				flag("systemIntegrityProtectionEnabled", true).flag("deviceThreatProtectionEnabled", false).
				str("deviceThreatProtectionRequiredSecurityLevel", "unavailable").flag("storageRequireEncryption", true).
				flag("firewallEnabled", true).flag("firewallBlockAllIncoming", false).flag("firewallEnableStealthMode", r.chance(50))
			b.only(inBeta, func() {
				b.null("osMinimumBuildVersion").null("osMaximumBuildVersion").
					str("gatekeeperAllowedAppSource", "macAppStoreAndIdentifiedDevelopers").
					str("advancedThreatProtectionRequiredSecurityLevel", "unavailable")
			})
		}},
}

// windowsBetaTail writes what beta's windows10CompliancePolicy has after
// storageRequireEncryption.
func windowsBetaTail(cb *catalogBuilder, b *recordBuilder, baseline bool) {
	b.only(inBeta, func() {
		b.flag("activeFirewallRequired", !baseline).flag("defenderEnabled", !baseline).null("defenderVersion").
			flag("signatureOutOfDate", !baseline).flag("rtpEnabled", !baseline).flag("antivirusRequired", !baseline).
			flag("antiSpywareRequired", !baseline).raw("validOperatingSystemBuildRanges", []byte("[]")).
			flag("deviceThreatProtectionEnabled", false).str("deviceThreatProtectionRequiredSecurityLevel", "unavailable").
			flag("configurationManagerComplianceRequired", false).flag("tpmRequired", baseline).
			null("deviceCompliancePolicyScript").raw("wslDistributions", []byte("[]"))
	})
}

// omaSetting is one OMA-URI setting of a custom profile.
type omaSetting struct {
	typ, name, description, uri string
	value                       string // raw JSON
}

// appendOMASettings writes custom profile settings; beta adds
// secretReferenceValueId and isEncrypted.
func appendOMASettings(settings []omaSetting, beta bool) []byte {
	b := []byte{'['}
	for k, o := range settings {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"@odata.type":"#microsoft.graph.`...)
		b = append(b, o.typ...)
		b = append(b, `","displayName":`...)
		b = appendString(b, o.name)
		b = append(b, `,"description":`...)
		b = appendNullString(b, o.description)
		b = append(b, `,"omaUri":`...)
		b = appendString(b, o.uri)
		if beta {
			b = append(b, `,"secretReferenceValueId":null,"isEncrypted":false`...)
		}
		b = append(b, `,"value":`...)
		b = append(b, o.value...)
		b = append(b, '}')
	}
	return append(b, ']')
}

func omaSettings(b *recordBuilder, settings []omaSetting) {
	b.only(inV1, func() { b.raw("omaSettings", appendOMASettings(settings, false)) })
	b.only(inBeta, func() { b.raw("omaSettings", appendOMASettings(settings, true)) })
}

// A .mobileconfig payload, base64 as Graph sends Edm.Binary.
const wifiMobileconfig = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0"><dict><key>PayloadContent</key><array><dict><key>SSID_STR</key><string>CONTOSO-CORP</string>
<key>EncryptionType</key><string>WPA2</string><key>PayloadType</key><string>com.apple.wifi.managed</string></dict></array>
<key>PayloadDisplayName</key><string>Contoso Wi-Fi</string><key>PayloadType</key><string>Configuration</string></dict></plist>
`

var configurationTemplates = []policyTemplate{
	{typ: "windows10CustomConfiguration", os: osWindows, chance: 100,
		names: [2]string{"Windows - OneDrive Known Folder Move", "WIN-CFG-OneDriveKFM"},
		desc:  "Silently moves Desktop, Documents and Pictures to OneDrive",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			tenant := guidText(newGUID(&cb.r))
			omaSettings(b, []omaSetting{
				{typ: "omaSettingString", name: "KFMSilentOptIn", uri: "./Device/Vendor/MSFT/Policy/Config/OneDriveNGSC~Policy~OneDriveNGSC/KFMSilentOptIn",
					value: string(appendString(nil, `<enabled/><data id="KFMSilentOptIn_TextBox" value="`+tenant+`"/>`))},
				{typ: "omaSettingInteger", name: "SilentAccountConfig", description: "Sign users in to OneDrive with their Windows credentials",
					uri: "./Device/Vendor/MSFT/Policy/Config/OneDriveNGSC~Policy~OneDriveNGSC/SilentAccountConfig", value: "1"},
			})
		}},
	{typ: "windows10CustomConfiguration", os: osWindows, chance: 60,
		names: [2]string{"Windows - Update active hours", "WIN-CFG-ActiveHours"},
		desc:  "",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			start := 6 + cb.r.intn(3)
			omaSettings(b, []omaSetting{
				{typ: "omaSettingInteger", name: "ActiveHoursStart", uri: "./Device/Vendor/MSFT/Policy/Config/Update/ActiveHoursStart", value: strconv.Itoa(start)},
				{typ: "omaSettingInteger", name: "ActiveHoursEnd", uri: "./Device/Vendor/MSFT/Policy/Config/Update/ActiveHoursEnd", value: strconv.Itoa(start + 12)},
				{typ: "omaSettingBoolean", name: "Block Cortana", description: `Sets "AllowCortana" to 0`, uri: "./Device/Vendor/MSFT/Policy/Config/Experience/AllowCortana", value: "false"},
			})
		}},
	{typ: "iosUpdateConfiguration", os: osIOS, chance: 100,
		names: [2]string{"iOS/iPadOS - Update window", "IOS-CFG-Updates"},
		desc:  "Installs iOS updates outside working hours",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			b.only(inBeta, func() { b.flag("isEnabled", true) })
			b.str("activeHoursStart", "08:00:00.0000000").str("activeHoursEnd", "18:00:00.0000000")
			b.only(inBeta, func() { b.null("desiredOsVersion") })
			b.strs("scheduledInstallDays", "monday", "tuesday", "wednesday", "thursday", "friday")
			if cb.r.chance(50) {
				b.num("utcTimeOffsetInMinutes", -300)
			} else {
				b.num("utcTimeOffsetInMinutes", 60)
			}
			b.only(inBeta, func() {
				b.null("enforcedSoftwareUpdateDelayInDays").str("updateScheduleType", "updateOutsideOfActiveHours").
					raw("customUpdateTimeWindows", []byte("[]"))
			})
		}},
	{typ: "macOSCustomConfiguration", os: osMacOS, chance: 100,
		names: [2]string{"macOS - Corporate Wi-Fi", "MAC-CFG-WiFi"},
		desc:  "Custom profile: Contoso Wi-Fi",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			b.str("payloadName", "Contoso Wi-Fi").str("payloadFileName", "contoso-wifi.mobileconfig").
				str("payload", base64.StdEncoding.EncodeToString([]byte(wifiMobileconfig)))
			b.only(inBeta, func() { b.str("deploymentChannel", "deviceChannel") })
		}},
	{typ: "androidWorkProfileCustomConfiguration", os: osAndroid, chance: 100,
		names: [2]string{"Android Enterprise - Work profile custom", "AND-CFG-Custom"},
		desc:  "",
		build: func(cb *catalogBuilder, b *recordBuilder) {
			omaSettings(b, []omaSetting{
				{typ: "omaSettingBoolean", name: "Disallow cross-profile copy and paste", uri: "./Vendor/MSFT/WorkProfile/DisallowCrossProfileCopyPaste", value: "true"},
				{typ: "omaSettingString", name: "Work profile name", uri: "./Vendor/MSFT/WorkProfile/WorkProfileName", value: `"Contoso \\ Work"`},
			})
		}},
}

// settingsTemplate is one settings catalog policy a tenant may have.
type settingsTemplate struct {
	names                                  [2]string
	desc, platforms, technologies          string
	templateID, family, template, tversion string
	settings                               [2]int // a count between these
	chance                                 int
}

var settingsTemplates = []settingsTemplate{
	{names: [2]string{"Windows - Microsoft Defender Antivirus", "WIN-ES-Antivirus"}, desc: "Real-time protection, cloud-delivered protection, PUA blocking",
		platforms: "windows10", technologies: "mdm,microsoftSense", templateID: "804339ad-1553-4478-a742-138fb5807418_1",
		family: "endpointSecurityAntivirus", template: "Microsoft Defender Antivirus", tversion: "Version 1", settings: [2]int{8, 30}, chance: 100},
	{names: [2]string{"Windows - Firewall rules", "WIN-ES-FirewallRules"}, desc: "",
		platforms: "windows10", technologies: "mdm,microsoftSense", templateID: "19c8aa67-f286-4861-9aa0-f23541d31680_1",
		family: "endpointSecurityFirewall", template: "Microsoft Defender Firewall Rules", tversion: "Version 1", settings: [2]int{1, 4}, chance: 70},
	{names: [2]string{"Windows - Edge security", "WIN-SC-Edge"}, desc: "SmartScreen, password manager off, extensions allow-list",
		platforms: "windows10", technologies: "mdm", family: "none", settings: [2]int{5, 40}, chance: 100},
	{names: [2]string{"Windows - Windows Hello for Business", "WIN-SC-WHfB"}, desc: "",
		platforms: "windows10", technologies: "mdm", family: "none", settings: [2]int{3, 9}, chance: 60},
	{names: [2]string{"macOS - Gatekeeper and firewall", "MAC-SC-Gatekeeper"}, desc: "Allows the App Store and identified developers; firewall on",
		platforms: "macOS", technologies: "mdm,appleRemoteManagement", family: "none", settings: [2]int{2, 6}, chance: 100},
	{names: [2]string{"iOS/iPadOS - Restrictions", "IOS-SC-Restrictions"}, desc: "",
		platforms: "iOS", technologies: "mdm,appleRemoteManagement", family: "none", settings: [2]int{4, 25}, chance: 70},
}

func (cb *catalogBuilder) settingsPolicies() []*record {
	var out []*record
	for _, t := range settingsTemplates {
		if t.chance < 100 && !cb.r.chance(t.chance) {
			continue
		}
		id := cb.id()
		created, modified := cb.dates()
		name := cb.name(t.names)
		b := newRecord(id, "")
		b.in = inBeta
		b.r.in = inBeta
		ref := []byte(`{"templateId":`)
		ref = appendString(ref, t.templateID)
		ref = append(ref, `,"templateFamily":`...)
		ref = appendString(ref, t.family)
		ref = append(ref, `,"templateDisplayName":`...)
		ref = appendNullString(ref, t.template)
		ref = append(ref, `,"templateDisplayVersion":`...)
		ref = appendNullString(ref, t.tversion)
		ref = append(ref, '}')
		b.ticks("createdDateTime", created, cb.r.intn(1e7)).null("creationSource").str("description", t.desc).
			ticks("lastModifiedDateTime", modified, cb.r.intn(1e7)).str("name", name).str("platforms", t.platforms).
			null("priorityMetaData").strs("roleScopeTagIds", "0").
			num("settingCount", int64(t.settings[0]+cb.r.intn(t.settings[1]-t.settings[0]+1))).
			str("technologies", t.technologies).str("id", id).raw("templateReference", ref)
		b.r.name = name
		b.r.assign = cb.assignments(id, false, true)
		for _, a := range b.r.assign {
			a.in = inBeta
		}
		out = append(out, b.done())
	}
	return out
}

// appTemplate is one app a tenant may deploy.
type appTemplate struct {
	typ, name, publisher, description string
	in                                ver // inBeta: a type v1.0 does not know
	chance                            int
	build                             func(cb *catalogBuilder, b *recordBuilder)
}

func win32(file, install, uninstall, folder, exe string, size int64) func(cb *catalogBuilder, b *recordBuilder) {
	return func(cb *catalogBuilder, b *recordBuilder) {
		b.str("committedContentVersion", "1").str("fileName", file).num("size", size+int64(cb.r.intn(1<<20))).
			str("installCommandLine", install).str("uninstallCommandLine", uninstall).
			str("applicableArchitectures", "x64").null("allowedArchitectures").
			null("minimumFreeDiskSpaceInMB").null("minimumMemoryInMB").null("minimumNumberOfProcessors").null("minimumCpuSpeedInMHz")
		rule := []byte(`[{"@odata.type":"#microsoft.graph.win32LobAppFileSystemRule","ruleType":"detection","path":`)
		rule = appendString(rule, folder)
		rule = append(rule, `,"fileOrFolderName":`...)
		rule = appendString(rule, exe)
		rule = append(rule, `,"check32BitOn64System":false,"operationType":"exists","operator":"notConfigured","comparisonValue":null}]`...)
		b.raw("rules", rule).
			raw("installExperience", []byte(`{"runAsAccount":"system","deviceRestartBehavior":"basedOnReturnCode"}`)).
			raw("returnCodes", []byte(`[{"returnCode":0,"type":"success"},{"returnCode":1707,"type":"success"},{"returnCode":3010,"type":"softReboot"},{"returnCode":1641,"type":"hardReboot"},{"returnCode":1618,"type":"retry"}]`)).
			null("msiInformation").str("setupFilePath", strings.TrimSuffix(file, ".intunewin")+".exe").
			str("minimumSupportedWindowsRelease", "2H20")
		b.only(inBeta, func() { b.str("displayVersion", "").flag("allowAvailableUninstall", cb.r.chance(50)) })
	}
}

func iosStore(bundle, url string) func(cb *catalogBuilder, b *recordBuilder) {
	return func(cb *catalogBuilder, b *recordBuilder) {
		b.str("bundleId", bundle).str("appStoreUrl", url).
			raw("applicableDeviceType", []byte(`{"iPad":true,"iPhoneAndIPod":true}`))
		minimum := 12 + cb.r.intn(5)
		versions := []int{8, 9, 10, 11, 12, 13, 14, 15}
		b.only(inV1, func() { b.raw("minimumSupportedOperatingSystem", iosMinimumOS(versions, minimum)) })
		b.only(inBeta, func() {
			b.raw("minimumSupportedOperatingSystem", iosMinimumOS(append(versions, 16, 17, 18, 26), minimum))
		})
	}
}

// iosMinimumOS writes iosMinimumOperatingSystem: one flag per version,
// the app's minimum set.
func iosMinimumOS(versions []int, minimum int) []byte {
	b := []byte{'{'}
	for k, v := range versions {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `"v`...)
		b = strconv.AppendInt(b, int64(v), 10)
		b = append(b, `_0":`...)
		b = strconv.AppendBool(b, v == minimum)
	}
	return append(b, '}')
}

func managedPlay(pkg string) func(cb *catalogBuilder, b *recordBuilder) {
	return func(cb *catalogBuilder, b *recordBuilder) {
		b.str("packageId", pkg).str("appIdentifier", pkg).num("usedLicenseCount", 0).num("totalLicenseCount", 0).
			str("appStoreUrl", "https://play.google.com/store/apps/details?id="+pkg).flag("isPrivate", false).
			flag("isSystemApp", false).raw("appTracks", []byte("[]")).flag("supportsOemConfig", false)
	}
}

func androidStore(pkg string) func(cb *catalogBuilder, b *recordBuilder) {
	return func(cb *catalogBuilder, b *recordBuilder) {
		b.str("packageId", pkg).str("appStoreUrl", "https://play.google.com/store/apps/details?id="+pkg)
		m := []byte(`{"v4_0":false,"v4_0_3":false,"v4_1":false,"v4_2":false,"v4_3":false,"v4_4":false,"v5_0":false,"v5_1":false,"v6_0":false,"v7_0":false,"v7_1":false,"v8_0":true,"v8_1":false,"v9_0":false,"v10_0":false,"v11_0":false}`)
		b.raw("minimumSupportedOperatingSystem", m)
	}
}

func storeForBusiness(pkg string) func(cb *catalogBuilder, b *recordBuilder) {
	return func(cb *catalogBuilder, b *recordBuilder) {
		total := int64(50 * (1 + cb.r.intn(20)))
		b.num("usedLicenseCount", total*int64(30+cb.r.intn(70))/100).num("totalLicenseCount", total).null("productKey").
			str("licenseType", "online").str("packageIdentityName", pkg)
	}
}

func web(url string) func(cb *catalogBuilder, b *recordBuilder) {
	return func(cb *catalogBuilder, b *recordBuilder) {
		b.str("appUrl", url).flag("useManagedBrowser", cb.r.chance(30))
	}
}

var appTemplates = []appTemplate{
	{typ: "win32LobApp", name: "Google Chrome", publisher: "Google LLC", description: "Google Chrome for Enterprise (x64)", chance: 100,
		build: win32("ChromeSetup.intunewin", `msiexec /i "GoogleChromeStandaloneEnterprise64.msi" /qn`, `msiexec /x "{4B9B6E5F-0D2D-3E8A-8A54-3C8E0A1B2C3D}" /qn`,
			`C:\Program Files\Google\Chrome\Application`, "chrome.exe", 112_000_000)},
	{typ: "win32LobApp", name: "7-Zip 24.08 (x64)", publisher: "Igor Pavlov", description: "File archiver", chance: 80,
		build: win32("7z2408-x64.intunewin", `7z2408-x64.exe /S`, `"C:\Program Files\7-Zip\Uninstall.exe" /S`,
			`C:\Program Files\7-Zip`, "7zFM.exe", 1_600_000)},
	{typ: "win32LobApp", name: "Adobe Acrobat Reader (64-bit)", publisher: "Adobe", description: "", chance: 90,
		build: win32("AcroRdrDCx64.intunewin", `setup.exe /sAll /rs /msi EULA_ACCEPT=YES`, `msiexec /x {AC76BA86-1033-1033-7760-BC15014EA700} /qn`,
			`C:\Program Files\Adobe\Acrobat DC\Acrobat`, "Acrobat.exe", 650_000_000)},
	{typ: "win32LobApp", name: "Zoom Workplace", publisher: "Zoom Video Communications, Inc.", description: "Zoom Workplace (64-bit) for admins", chance: 60,
		build: win32("ZoomInstallerFull.intunewin", `msiexec /i ZoomInstallerFull.msi /qn ZoomAutoUpdate=1`, `msiexec /x ZoomInstallerFull.msi /qn`,
			`C:\Program Files\Zoom\bin`, "Zoom.exe", 98_000_000)},
	{typ: "win32LobApp", name: "Cisco Secure Client - AnyConnect VPN", publisher: "Cisco Systems, Inc.", description: "Corporate VPN", chance: 50,
		build: win32("cisco-secure-client-win.intunewin", `msiexec /i "cisco-secure-client-win-core-vpn-predeploy-k9.msi" /qn /norestart`, `msiexec /x "{B5A4B5D6-1F4C-4A0B-9A2E-8C6D3E1F2A3B}" /qn`,
			`C:\Program Files (x86)\Cisco\Cisco Secure Client`, "csc_ui.exe", 78_000_000)},
	{typ: "win32LobApp", name: "Notepad++", publisher: "Notepad++ Team", description: "Text editor \"for developers\"", chance: 40,
		build: win32("npp.8.6.9.Installer.x64.intunewin", `npp.8.6.9.Installer.x64.exe /S`, `"C:\Program Files\Notepad++\uninstall.exe" /S`,
			`C:\Program Files\Notepad++`, "notepad++.exe", 5_200_000)},
	{typ: "iosStoreApp", name: "Microsoft Outlook", publisher: "Microsoft Corporation", description: "Email and calendar", chance: 100,
		build: iosStore("com.microsoft.Office.Outlook", "https://apps.apple.com/us/app/microsoft-outlook/id951937596")},
	{typ: "iosStoreApp", name: "Microsoft Teams", publisher: "Microsoft Corporation", description: "", chance: 100,
		build: iosStore("com.microsoft.skype.teams", "https://apps.apple.com/us/app/microsoft-teams/id1113153706")},
	{typ: "iosStoreApp", name: "Microsoft Authenticator", publisher: "Microsoft Corporation", description: "", chance: 90,
		build: iosStore("com.microsoft.azureauthenticator", "https://apps.apple.com/us/app/microsoft-authenticator/id983156458")},
	{typ: "iosStoreApp", name: "Microsoft Intune Company Portal", publisher: "Microsoft Corporation",
		description: "Microsoft Intune Company Portal used to create user relationship after enrollment.", chance: 100,
		build: iosStore("com.microsoft.CompanyPortal", "https://itunes.apple.com/us/app/microsoft-intune-company-portal/id719171358?mt=8")},
	{typ: "iosStoreApp", name: "Slack", publisher: "Slack Technologies, Inc.", description: "", chance: 40,
		build: iosStore("com.tinyspeck.chatlyio", "https://apps.apple.com/us/app/slack-for-desktop/id618783545")},
	{typ: "androidManagedStoreApp", name: "Microsoft Outlook", publisher: "Microsoft Corporation", in: inBeta, chance: 100,
		build: managedPlay("com.microsoft.office.outlook")},
	{typ: "androidManagedStoreApp", name: "Microsoft Teams", publisher: "Microsoft Corporation", in: inBeta, chance: 100,
		build: managedPlay("com.microsoft.teams")},
	{typ: "androidManagedStoreApp", name: "Intune Company Portal", publisher: "Microsoft Corporation", in: inBeta, chance: 100,
		build: managedPlay("com.microsoft.windowsintune.companyportal")},
	{typ: "androidManagedStoreApp", name: "Microsoft Authenticator", publisher: "Microsoft Corporation", in: inBeta, chance: 80,
		build: managedPlay("com.azure.authenticator")},
	{typ: "androidStoreApp", name: "Zebra StageNow", publisher: "Zebra Technologies", description: "Kiosk provisioning", chance: 30,
		build: androidStore("com.symbol.stagenow")},
	{typ: "microsoftStoreForBusinessApp", name: "Microsoft To Do: Lists, Tasks & Reminders", publisher: "Microsoft Corporation", chance: 50,
		build: storeForBusiness("Microsoft.Todos")},
	{typ: "microsoftStoreForBusinessApp", name: "Company Portal", publisher: "Microsoft Corporation", chance: 60,
		build: storeForBusiness("Microsoft.CompanyPortal")},
	{typ: "webApp", name: "Contoso Intranet", publisher: "Contoso IT", description: "The intranet's start page", chance: 100,
		build: web("https://contoso.sharepoint.com/sites/intranet")},
	{typ: "webApp", name: "Workday", publisher: "Workday, Inc.", chance: 50,
		build: web("https://wd3.myworkday.com/contoso/d/home.htmld")},
	{typ: "webApp", name: "IT Self-Service (ServiceNow)", publisher: "ServiceNow", description: "Tickets & requests", chance: 60,
		build: web("https://contoso.service-now.com/sp?id=index&lang=en")},
}

func (cb *catalogBuilder) mobileApps() []*record {
	var out []*record
	for k := range appTemplates {
		t := &appTemplates[k]
		if t.chance < 100 && !cb.r.chance(t.chance) {
			continue
		}
		id := cb.id()
		created, modified := cb.dates()
		if t.name == "Microsoft Intune Company Portal" {
			// Added by Intune itself, never modified: .NET's MinValue, as a
			// tenant's list shows it.
			modified = neverTime
		}
		b := newRecord(id, t.typ)
		if t.in != 0 {
			b.r.in = t.in
		}
		featured := cb.r.chance(25)
		b.str("id", id).str("displayName", t.name).str("description", orDefault(t.description, t.name)).str("publisher", t.publisher).
			null("largeIcon").date("createdDateTime", created).date("lastModifiedDateTime", modified).flag("isFeatured", featured).
			null("privacyInformationUrl").null("informationUrl").text("owner", "").text("developer", "").text("notes", "")
		b.only(inBeta, func() { b.num("uploadState", 1) })
		b.str("publishingState", "published")
		assign := cb.appAssignments(id)
		b.only(inBeta, func() {
			b.flag("isAssigned", len(assign) > 0).strs("roleScopeTagIds").num("dependentAppCount", 0).
				num("supersedingAppCount", 0).num("supersededAppCount", 0)
		})
		t.build(cb, b)
		rec := b.done()
		rec.name, rec.assign = t.name, assign
		for _, a := range assign {
			a.in = rec.in
		}
		out = append(out, rec)
	}
	return out
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// appAssignments draws an app's assignments: required for a group or
// all devices, available for all users.
func (cb *catalogBuilder) appAssignments(appID string) []*record {
	var out []*record
	add := func(intent, typ, group string) {
		id := appID + "_" + strconv.Itoa(len(out)) + "_0"
		b := newRecord(id, "")
		b.str("id", id).str("intent", intent)
		b.only(inV1, func() { b.raw("target", appendTarget(nil, typ, group, false)) })
		b.only(inBeta, func() { b.raw("target", appendTarget(nil, typ, group, true)) })
		b.null("settings")
		b.only(inBeta, func() { b.str("source", "direct").null("sourceId") })
		out = append(out, b.done())
	}
	switch n := cb.r.intn(10); {
	case n < 3:
		add("required", "allDevicesAssignmentTarget", allDevicesGroup)
	case n < 6:
		add("available", "allLicensedUsersAssignmentTarget", allUsersGroup)
	case n < 9:
		add("required", "groupAssignmentTarget", guidText(cb.groups[cb.r.intn(len(cb.groups))]))
	}
	return out
}
