package graphsim

import (
	"encoding/base64"
	"encoding/binary"
	"strings"
)

// property is one top-level property of microsoft.graph.managedDevice and
// how to write its value. The tables below are in the resource's documented
// order, which is the order Graph writes them and the order $select keeps.
type property struct {
	name  string
	key   string // `"name":`, precomputed
	write func(b []byte, d *device) []byte
	// listDefault marks the properties Graph's LIST leaves at a
	// placeholder: write gives the placeholder, real the value only a
	// single-device GET naming the property in $select returns (it reads
	// d.det, which fillDetails fills; details.go).
	listDefault bool
	real        func(b []byte, d *device) []byte
}

func prop(name string, write func(b []byte, d *device) []byte) property {
	return property{name: name, key: `"` + name + `":`, write: write}
}

// listDefault is a property that lists and unselected GETs write as
// placeholder, and that only a single-device GET with $select shows as
// real: Microsoft's "Return default value in LIST managedDevices. Real
// value only returned in single device GET call with device id and
// included in select parameter". Making a property list-default is
// wrapping its row in this.
func listDefault(name string, placeholder, real func(b []byte, d *device) []byte) property {
	p := prop(name, placeholder)
	p.listDefault, p.real = true, real
	return p
}

// value returns the writer of p's value: the real one when real is set
// and p is list-default, else the one lists use.
func (p *property) value(real bool) func(b []byte, d *device) []byte {
	if real && p.listDefault {
		return p.real
	}
	return p.write
}

func str(get func(d *device) string) func([]byte, *device) []byte {
	return func(b []byte, d *device) []byte { return appendString(b, get(d)) }
}

func date(get func(d *device) int64) func([]byte, *device) []byte {
	return func(b []byte, d *device) []byte { return appendDateTime(b, get(d)) }
}

func boolean(get func(d *device) bool) func([]byte, *device) []byte {
	return func(b []byte, d *device) []byte { return appendBool(b, get(d)) }
}

// v1Properties is every property of the v1.0 resource.
var v1Properties = []property{
	prop("id", func(b []byte, d *device) []byte { return appendQuotedID(b, d) }),
	prop("userId", func(b []byte, d *device) []byte {
		if d.userless {
			return append(b, `""`...)
		}
		return appendGUID(b, d.userID)
	}),
	prop("deviceName", str(func(d *device) string { return d.name })),
	prop("managedDeviceOwnerType", str(func(d *device) string { return d.ownerType })),
	prop("enrolledDateTime", date(func(d *device) int64 { return d.enrolled })),
	prop("lastSyncDateTime", date(func(d *device) int64 { return d.lastSync })),
	prop("operatingSystem", str(func(d *device) string { return osNames[d.os] })),
	prop("complianceState", str(func(d *device) string { return d.compliance })),
	prop("jailBroken", str(func(d *device) string { return d.jailBroken })),
	prop("managementAgent", str(func(d *device) string { return d.agent })),
	prop("osVersion", str(func(d *device) string { return d.osVersion })),
	prop("easActivated", boolean(func(d *device) bool { return d.easActivated })),
	prop("easDeviceId", str(func(d *device) string { return d.easDeviceID })),
	prop("easActivationDateTime", date(func(d *device) int64 { return d.easActivation })),
	prop("azureADRegistered", func(b []byte, d *device) []byte { return appendTriBool(b, d.aadRegistered) }),
	prop("deviceEnrollmentType", str(func(d *device) string { return d.enrollmentType })),
	listDefault("activationLockBypassCode", nullValue, nullable(func(d *device) string { return d.det.lockCode })),
	prop("emailAddress", str(func(d *device) string { return d.email })),
	prop("azureADDeviceId", func(b []byte, d *device) []byte { return appendGUID(b, d.aadDeviceID) }),
	prop("deviceRegistrationState", str(func(d *device) string { return d.registration })),
	prop("deviceCategoryDisplayName", str(func(d *device) string { return d.category })),
	prop("isSupervised", boolean(func(d *device) bool { return d.supervised })),
	prop("exchangeLastSuccessfulSyncDateTime", date(func(d *device) int64 { return d.exchangeLastSync })),
	prop("exchangeAccessState", str(func(d *device) string { return d.exchangeState })),
	prop("exchangeAccessStateReason", str(func(d *device) string { return d.exchangeReason })),
	listDefault("remoteAssistanceSessionUrl", nullValue, nullable(func(d *device) string { return d.det.remoteSession })),
	prop("remoteAssistanceSessionErrorDetails", nullValue),
	prop("isEncrypted", boolean(func(d *device) bool { return d.encrypted })),
	prop("userPrincipalName", str(func(d *device) string { return d.upn })),
	prop("model", str(func(d *device) string { return d.hw.model })),
	prop("manufacturer", str(func(d *device) string { return d.hw.manufacturer })),
	prop("imei", str(func(d *device) string { return d.imei })),
	prop("complianceGracePeriodExpirationDateTime", date(func(d *device) int64 { return d.graceExpiry })),
	prop("serialNumber", str(func(d *device) string { return d.serial })),
	prop("phoneNumber", str(func(d *device) string { return d.phone })),
	prop("androidSecurityPatchLevel", str(func(d *device) string { return d.patchLevel })),
	prop("userDisplayName", func(b []byte, d *device) []byte { return appendNullString(b, d.displayName) }),
	prop("configurationManagerClientEnabledFeatures", appendCMFeatures),
	prop("wiFiMacAddress", str(func(d *device) string { return d.wifiMAC })),
	prop("deviceHealthAttestationState", appendHealth),
	prop("subscriberCarrier", str(func(d *device) string { return d.carrier })),
	prop("meid", str(func(d *device) string { return d.meid })),
	prop("totalStorageSpaceInBytes", func(b []byte, d *device) []byte { return appendInt(b, d.total) }),
	prop("freeStorageSpaceInBytes", func(b []byte, d *device) []byte { return appendInt(b, d.free) }),
	prop("managedDeviceName", str(func(d *device) string { return d.managedName })),
	prop("partnerReportedThreatState", str(func(d *device) string { return d.threatState })),
	prop("requireUserEnrollmentApproval", func(b []byte, d *device) []byte { return appendTriBool(b, d.requireApproval) }),
	prop("managementCertificateExpirationDate", date(func(d *device) int64 { return d.certExpiry })),
	// Graph leaves these null or 0 in lists and fills them only on a
	// single-device GET that selects them.
	listDefault("iccid", nullValue, nullable(func(d *device) string { return d.det.iccid })),
	listDefault("udid", nullValue, nullable(func(d *device) string { return d.det.udid })),
	listDefault("notes", nullValue, nullable(func(d *device) string { return d.det.notes })),
	listDefault("ethernetMacAddress", nullValue, nullable(func(d *device) string { return d.det.ethernetMAC })),
	listDefault("physicalMemoryInBytes", zeroValue, func(b []byte, d *device) []byte { return appendInt(b, d.det.memory) }),
	prop("deviceActionResults", appendActions),
	// In the metadata since 2024 and 2025; the docs page lags behind.
	// Users found it null in every list and set on a GET of the device
	// (microsoft-graph-docs-contrib#1455, microsoft-graph-docs#19907).
	listDefault("enrollmentProfileName", nullValue, func(b []byte, d *device) []byte { return appendNullString(b, d.enrollmentProfile) }),
	prop("managementState", str(func(d *device) string { return d.managementState })),
}

// betaProperties is v1Properties followed by some of what beta adds,
// among them every property beta's list leaves at a default.
var betaProperties = append(v1Properties[:len(v1Properties):len(v1Properties)],
	listDefault("hardwareInformation", func(b []byte, _ *device) []byte { return append(b, hardwarePlaceholder...) }, appendHardware),
	listDefault("roleScopeTagIds", func(b []byte, _ *device) []byte { return append(b, "[]"...) }, func(b []byte, d *device) []byte {
		b = append(b, `["0"`...)
		if d.roleScopeTag > 0 {
			b = append(b, ',', '"', byte('0'+d.roleScopeTag), '"')
		}
		return append(b, ']')
	}),
	prop("chassisType", str(func(d *device) string { return d.hw.chassis })),
	prop("usersLoggedOn", appendLoggedOn),
	// Beta's metadata describes these as left at a default by lists too.
	listDefault("bootstrapTokenEscrowed", falseValue, boolean(func(d *device) bool { return d.det.bootstrapEscrowed })),
	// ChromeOS devices only, which this tenant has none of: [] is their value.
	listDefault("chromeOSDeviceInfo", emptyList, emptyList),
	listDefault("windowsActiveMalwareCount", zeroValue, func(b []byte, d *device) []byte { return appendInt(b, d.det.activeMalware) }),
	listDefault("windowsRemediatedMalwareCount", zeroValue, func(b []byte, d *device) []byte { return appendInt(b, d.det.remediatedMalware) }),
)

func nullValue(b []byte, _ *device) []byte { return append(b, "null"...) }

func zeroValue(b []byte, _ *device) []byte { return append(b, '0') }

func falseValue(b []byte, _ *device) []byte { return append(b, "false"...) }

func emptyList(b []byte, _ *device) []byte { return append(b, "[]"...) }

// nullable writes a string that is null when empty.
func nullable(get func(d *device) string) func([]byte, *device) []byte {
	return func(b []byte, d *device) []byte { return appendNullString(b, get(d)) }
}

// findProperty looks a $select name up case-insensitively, as Graph does.
func findProperty(props []property, name string) int {
	for k := range props {
		if strings.EqualFold(props[k].name, name) {
			return k
		}
	}
	return -1
}

// appendDevice writes d as a JSON object with the given properties.
func appendDevice(b []byte, d *device, props []property) []byte {
	b = append(b, '{')
	for k := range props {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, props[k].key...)
		b = props[k].write(b, d)
	}
	return append(b, '}')
}

// appendSelected writes d with only the properties at indexes sel, as a
// list does.
func appendSelected(b []byte, d *device, props []property, sel []int) []byte {
	return appendFields(b, d, props, sel, false)
}

// appendFields writes d with the properties at indexes sel; with real, the
// list-default ones carry their real values (d.det filled).
func appendFields(b []byte, d *device, props []property, sel []int, real bool) []byte {
	b = append(b, '{')
	for n, k := range sel {
		if n > 0 {
			b = append(b, ',')
		}
		p := &props[k]
		b = append(b, p.key...)
		b = p.value(real)(b, d)
	}
	return append(b, '}')
}

func appendQuotedID(b []byte, d *device) []byte {
	b = append(b, '"')
	b = appendDeviceID(b, d.seed, d.index)
	return append(b, '"')
}

func appendGUID(b []byte, g guid) []byte {
	if g == (guid{}) {
		// Intune's "no such object", e.g. azureADDeviceId of an unregistered device.
		return append(b, `"00000000-0000-0000-0000-000000000000"`...)
	}
	b = append(b, '"')
	b = appendHex(b, g[0]>>32, 8, false)
	b = append(b, '-')
	b = appendHex(b, g[0]>>16, 4, false)
	b = append(b, '-')
	b = appendHex(b, 0x4000|g[0]&0x0fff, 4, false)
	b = append(b, '-')
	b = appendHex(b, 0x8000|(g[1]>>48)&0x3fff, 4, false)
	b = append(b, '-')
	b = appendHex(b, g[1], 12, false)
	return append(b, '"')
}

func appendHash(b []byte, h hash256) []byte {
	b = append(b, '"')
	for _, v := range h {
		b = appendHex(b, v, 16, true)
	}
	return append(b, '"')
}

// aikHeader starts a BCRYPT_RSAKEY_BLOB: magic "RSA1", 2048 bits, a 3-byte
// exponent and a 256-byte modulus, then the exponent 65537.
var aikHeader = []byte{'R', 'S', 'A', '1', 0, 8, 0, 0, 3, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}

// appendAIK writes the attestation identity key as Windows reports it: the
// base64 of the TPM key's public blob.
func appendAIK(b []byte, modulus *[32]uint64) []byte {
	var blob [27 + 256]byte
	copy(blob[:], aikHeader)
	for k, v := range modulus {
		binary.BigEndian.PutUint64(blob[27+8*k:], v)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, blob[:])
	return append(b, '"')
}

var cmFeatureNames = []string{
	"inventory", "modernApps", "resourceAccess", "deviceConfiguration", "compliancePolicy", "windowsUpdateForBusiness",
}

func appendCMFeatures(b []byte, d *device) []byte {
	if d.cmFeatures < 0 {
		return append(b, "null"...)
	}
	b = append(b, '{')
	for k, name := range cmFeatureNames {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, name...)
		b = append(b, '"', ':')
		b = appendBool(b, d.cmFeatures&(1<<k) != 0)
	}
	return append(b, '}')
}

func onOff(b []byte, h *healthState, bit uint16) []byte {
	if h.enabled&bit != 0 {
		return append(b, `"Enabled"`...)
	}
	return append(b, `"Disabled"`...)
}

// appendHealth writes deviceHealthAttestationState: Windows only, null for
// the other platforms.
func appendHealth(b []byte, d *device) []byte {
	if !d.hasHealth {
		return append(b, "null"...)
	}
	h := &d.health
	b = append(b, `{"lastUpdateDateTime":`...)
	b = appendDateTime(b, h.lastUpdate)
	b = append(b, `,"contentNamespaceUrl":"https://has.spserv.microsoft.com/","deviceHealthAttestationStatus":`...)
	b = appendString(b, h.status)
	b = append(b, `,"contentVersion":"7","issuedDateTime":`...)
	b = appendDateTime(b, h.issued)
	b = append(b, `,"attestationIdentityKey":`...)
	b = appendAIK(b, &h.aik)
	b = append(b, `,"resetCount":`...)
	b = appendInt(b, h.resets)
	b = append(b, `,"restartCount":`...)
	b = appendInt(b, h.restarts)
	b = append(b, `,"dataExcutionPolicy":`...)
	b = onOff(b, h, healthDEP)
	b = append(b, `,"bitLockerStatus":`...)
	b = onOff(b, h, healthBitLocker)
	b = append(b, `,"bootManagerVersion":`...)
	b = appendString(b, d.osVersion)
	b = append(b, `,"codeIntegrityCheckVersion":`...)
	b = appendString(b, d.osVersion)
	b = append(b, `,"secureBoot":`...)
	b = onOff(b, h, healthSecureBoot)
	b = append(b, `,"bootDebugging":`...)
	b = onOff(b, h, healthBootDebugging)
	b = append(b, `,"operatingSystemKernelDebugging":`...)
	b = onOff(b, h, healthKernelDebugging)
	b = append(b, `,"codeIntegrity":`...)
	b = onOff(b, h, healthCodeIntegrity)
	b = append(b, `,"testSigning":`...)
	b = onOff(b, h, healthTestSigning)
	b = append(b, `,"safeMode":`...)
	b = onOff(b, h, healthSafeMode)
	b = append(b, `,"windowsPE":`...)
	b = onOff(b, h, healthWindowsPE)
	b = append(b, `,"earlyLaunchAntiMalwareDriverProtection":`...)
	b = onOff(b, h, healthELAM)
	b = append(b, `,"virtualSecureMode":`...)
	b = onOff(b, h, healthVSM)
	b = append(b, `,"pcrHashAlgorithm":"SHA256","bootAppSecurityVersion":"1","bootManagerSecurityVersion":"0","tpmVersion":"2.0","pcr0":`...)
	b = appendHash(b, h.pcr0)
	b = append(b, `,"secureBootConfigurationPolicyFingerPrint":`...)
	b = appendHash(b, h.sbFP)
	b = append(b, `,"codeIntegrityPolicy":`...)
	b = appendHash(b, h.ciPol)
	b = append(b, `,"bootRevisionListInfo":"0","operatingSystemRevListInfo":"0","healthStatusMismatchInfo":"","healthAttestationSupportedStatus":"supported"}`...)
	return b
}

func appendActions(b []byte, d *device) []byte {
	b = append(b, '[')
	for k := 0; k < d.nActions; k++ {
		a := &d.actions[k]
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"actionName":`...)
		b = appendString(b, a.name)
		b = append(b, `,"actionState":`...)
		b = appendString(b, a.state)
		b = append(b, `,"startDateTime":`...)
		b = appendDateTime(b, a.start)
		b = append(b, `,"lastUpdatedDateTime":`...)
		b = appendDateTime(b, a.lastSeen)
		b = append(b, '}')
	}
	return append(b, ']')
}

func appendLoggedOn(b []byte, d *device) []byte {
	b = append(b, '[')
	for k := 0; k < d.nLoggedOn; k++ {
		if k > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"userId":`...)
		b = appendGUID(b, d.loggedOn[k].user)
		b = append(b, `,"lastLogOnDateTime":`...)
		b = appendDateTime(b, d.loggedOn[k].at)
		b = append(b, '}')
	}
	return append(b, ']')
}
