package graphsim

import (
	"strings"
)

// Graph's LIST of managedDevices writes a documented set of properties at
// placeholder defaults (the list-default properties of props.go, the same
// as plugin/intune/schema's managed_device.tsv marks: v1.0's
// activationLockBypassCode, ethernetMacAddress, iccid, notes,
// physicalMemoryInBytes, remoteAssistanceSessionUrl, udid and
// enrollmentProfileName; beta adds bootstrapTokenEscrowed,
// chromeOSDeviceInfo, hardwareInformation, roleScopeTagIds and the two
// Windows malware counts); their real values come only from a single-device GET
// that names them in $select (entity.go). This file makes those real
// values, the "details".
//
// Details are a function of (seed, index, details revision) like the rest
// of a device, drawn from a stream of their own (saltDetails), so adding
// them shifted no value a list shows. They are made only when a GET asks
// for them: a page never pays for them. ChangeDetails gives a device a
// new details revision (saltDetailChange plus the revision), which moves
// notes, physicalMemoryInBytes and batteryLevelPercentage and nothing a
// list shows. The values derived from listed ones (osBuildNumber from
// osVersion, deviceFullQualifiedDomainName from deviceName, the storage
// sizes) are computed while writing, so they follow Change.

// details are the real values of the list-default properties that are not
// already part of the listed device.
type details struct {
	memory      int64  // physicalMemoryInBytes
	ethernetMAC string // 12 upper-case hex digits; "" is null
	notes       string // "" is null
	udid        string // Apple devices only
	iccid       string // devices with a SIM only
	lockCode    string // activationLockBypassCode: supervised iOS devices only; a secret
	// batteryLevel is hardwareInformation's batteryLevelPercentage in
	// tenths of a percent; -1 is null (no battery).
	batteryLevel int
	hw           hardwareDetails
	// remoteSession is remoteAssistanceSessionUrl: the link of a remote
	// assistance session in progress; "" is null. A secret, like lockCode.
	remoteSession string
	// Beta's: Defender's malware counts (Windows), and whether a Mac has
	// escrowed its bootstrap token with Intune.
	activeMalware, remediatedMalware int64
	bootstrapEscrowed                bool
}

// hardwareDetails are the parts of beta's hardwareInformation that are
// not listed elsewhere. Empty strings are written as null.
type hardwareDetails struct {
	cellular, eid                     string // cellularTechnology, esimIdentifier
	language                          string // operatingSystemLanguage
	batterySerial                     string
	chargeCycles                      int64
	tpmSpec, tpmMaker, tpmVersion     string
	edition                           string // operatingSystemEdition (Windows)
	productType                       int64  // operatingSystemProductType: Windows' PRODUCT_* of the edition
	domain                            string // the DNS suffix of deviceFullQualifiedDomainName; "" for the bare name
	vbsHardware, vbs, credentialGuard string // the three deviceGuard states
	ip                                uint32 // ipAddressV4; 0 is null
	prefix                            int    // length of the subnet's prefix
	wired                             [2]uint32
	nWired                            int
	bios                              string // systemManagementBIOSVersion
	productName                       string // Apple's product identifier ("iPhone16,1")
	licensing                         string // deviceLicensingStatus
	licensingError                    int64
	licensingErrorText                string
}

// fillDetails fills d.det for d, which current has made, in its current
// details revision.
func (s *Server) fillDetails(st *tenantState, d *device) {
	r := newRNG(d.seed, d.index, saltDetails)
	det := &d.det
	*det = details{batteryLevel: -1}
	h := &det.hw
	h.vbsHardware, h.vbs, h.credentialGuard, h.licensing = "meetHardwareRequirements", "running", "running", "unknown"
	os, hw := d.os, d.hw
	vm := hw.chassis == "unknown" // Hyper-V virtual machines and Cloud PCs

	det.memory = memoryOf(&r, d)
	if d.index%10 == 7 {
		// Like totalStorageSpaceInBytes on every tenth device: above 2^53
		// and odd, so that a client decoding through float64 corrupts it.
		det.memory = 9007199254740993 + 2*int64(r.next()>>24)
	}
	if os == osWindows || os == osMacOS {
		if r.chance(wiredShare[hw.chassis]) {
			mac := r.next() & 0xfcffffffffff // unicast, globally administered
			if vm {
				mac = 0x00155d000000 | mac&0xffffff // Hyper-V's OUI
			}
			det.ethernetMAC = string(appendHex(nil, mac, 12, true))
		}
	}
	if r.chance(10) {
		det.notes = pick(&r, adminNotes)
	}
	switch os {
	case osIOS:
		det.udid = appleUDID(&r, hw.model)
	case osMacOS:
		det.udid = upperGUID(&r)
	}
	sim := false
	switch hw.chassis {
	case "phone":
		sim = r.chance(97) // a few scanners and spares are Wi-Fi only
	case "tablet":
		sim = r.chance(25)
	}
	if sim {
		det.iccid = iccid(&r)
		h.cellular = pick(&r, cellularTechnologies)
		if r.chance(30) {
			h.eid = eid(&r)
		}
	}
	if d.supervised && r.chance(95) {
		det.lockCode = lockCode(&r)
	}

	h.language = pick(&r, osLanguages)
	if d.battery > 0 {
		det.batteryLevel = batteryLevel(&r)
	}
	switch os {
	case osWindows:
		windowsDetails(&r, d)
	case osMacOS:
		h.productName = hw.model
		if d.battery > 0 {
			h.chargeCycles = int64(5 + r.intn(900))
		}
	case osIOS:
		h.productName = appleModels[hw.model].product
	}
	if os == osWindows || os == osMacOS {
		h.prefix = pick(&r, subnetPrefixes)
		h.ip = 10<<24 | uint32(r.intn(1<<16))<<8 | uint32(2+r.intn(250))
		if det.ethernetMAC != "" {
			h.wired[0], h.nWired = h.ip, 1
			if r.chance(15) { // a docking station's second NIC
				h.wired[1], h.nWired = 172<<24|16<<16|uint32(r.intn(1<<16)), 2
			}
		}
	}

	// Drawn after everything above, so that adding them shifted nothing.
	if os == osWindows && r.chance(3) {
		det.remoteSession = "https://start.teamviewer.com/s" + string(appendPad(nil, r.intn(1000000000), 9)) + "/partner/" + alnum(&r, 16, false)
	}
	if os == osWindows {
		if r.chance(4) {
			det.activeMalware = int64(1 + r.intn(3))
		}
		if r.chance(12) {
			det.remediatedMalware = int64(1 + r.intn(9))
		}
	}
	det.bootstrapEscrowed = os == osMacOS && d.ownerType == "company" && r.chance(90)

	revs := st.detailRevs[d.index]
	for k := uint32(1); k <= revs; k++ {
		changeDetails(d, k)
	}
}

// windowsDetails fills what only Windows reports in hardwareInformation.
func windowsDetails(r *rng, d *device) {
	h := &d.det.hw
	vm := d.hw.chassis == "unknown"
	e := windowsEditions[r.weighted(windowsEditionWeights)]
	if strings.HasPrefix(d.hw.model, "Cloud PC") {
		e = windowsEditions[0] // Windows 365 runs Enterprise
	}
	h.edition, h.productType = e.name, e.productType
	if r.chance(40) {
		h.domain = pick(r, adDomains) // hybrid joined: the AD domain's suffix
	}
	if !vm {
		switch n := r.intn(100); {
		case n < 4:
			h.vbsHardware = "secureBootRequired"
		case n < 7:
			h.vbsHardware = "dmaProtectionRequired"
		}
	}
	switch {
	case d.health.enabled&healthVSM == 0:
		h.vbs, h.credentialGuard = "notConfigured", "virtualizationBasedSecurityNotRunning"
	case r.chance(30):
		h.credentialGuard = "notConfigured"
	}
	h.tpmSpec = pick(r, tpmSpecs)
	chip := vmTPM
	if chips := tpmChips[d.hw.manufacturer]; !vm && len(chips) > 0 {
		chip = pick(r, chips)
	}
	h.tpmMaker, h.tpmVersion = chip.maker, chip.version
	h.bios = hyperVBIOS
	if versions := biosVersions[d.hw.manufacturer]; !vm && len(versions) > 0 {
		h.bios = pick(r, versions)
	}
	switch n := r.intn(100); {
	case d.aadDeviceID == guid{}:
		h.licensing = "deviceIsNotAzureActiveDirectoryJoined"
	case n < 90:
		h.licensing = "deviceLicenseRefreshSucceed"
	case n < 95:
		h.licensing = "licenseRefreshPending"
	default:
		f := pick(r, licensingFailures)
		h.licensing, h.licensingError, h.licensingErrorText = "deviceLicenseRefreshFailed", f.code, f.text
	}
	if d.battery > 0 {
		h.batterySerial = alnum(r, 10, true)
		h.chargeCycles = int64(5 + r.intn(900))
	}
}

// changeDetails applies details revision k: notes, physicalMemoryInBytes
// and batteryLevelPercentage (of devices with a battery) each take a value
// different from revision k-1's. Nothing a list shows moves.
func changeDetails(d *device, k uint32) {
	r := newRNG(d.seed, d.index, saltDetailChange+uint64(k))
	det := &d.det
	det.notes = other(&r, changedNotes, det.notes)
	if d.index%10 == 7 {
		mem := 9007199254740993 + 2*int64(r.next()>>24)
		if mem == det.memory {
			mem += 2
		}
		det.memory = mem
	} else {
		// A resized VM or a memory upgrade: any size of the chassis
		// but the current one (a Cloud PC takes the VMs' sizes).
		det.memory = other(&r, gibibytes(memorySizes[d.hw.chassis]), det.memory)
	}
	if det.batteryLevel >= 0 {
		level := batteryLevel(&r)
		if level == det.batteryLevel {
			level = level%1000 + 10
		}
		det.batteryLevel = level
	}
}

// DeviceDetails returns the exact JSON object of the real values of every
// list-default property of the version ({"activationLockBypassCode":...,
// ...}, in resource order) for device i in its current revision: what a
// single-device GET selecting them all answers, without its context.
func (s *Server) DeviceDetails(i int, beta bool) []byte {
	props := s.propsOf(beta)
	var d device
	st := s.state()
	s.current(st, i, &d)
	s.fillDetails(st, &d)
	return appendFields(nil, &d, props, listDefaults(props), true)
}

// listDefaults returns the indexes of the list-default properties of props.
func listDefaults(props []property) []int {
	var sel []int
	for k := range props {
		if props[k].listDefault {
			sel = append(sel, k)
		}
	}
	return sel
}

// memoryOf draws physicalMemoryInBytes for d's chassis.
func memoryOf(r *rng, d *device) int64 {
	if strings.HasPrefix(d.hw.model, "Cloud PC") {
		return 8 << 30 // its SKU names it: 2vCPU/8GB/128GB
	}
	return pick(r, memorySizes[d.hw.chassis]) << 30
}

func gibibytes(sizes []int64) []int64 {
	out := make([]int64, len(sizes))
	for k, v := range sizes {
		out[k] = v << 30
	}
	return out
}

// batteryLevel draws a charge level in tenths of a percent: whole percents
// mostly, as Windows and Android report it, some with a tenth.
func batteryLevel(r *rng) int {
	v := 10 * (5 + r.intn(96))
	if v < 1000 && r.chance(20) {
		v += 1 + r.intn(9)
	}
	return v
}

// appleUDID is an iPhone's or iPad's UDID: since Apple's A12 chips the
// chip id and the ECID ("00008110-001A2B3C4D5E802E"); a quarter get the
// 40 lower-case hex digits of older hardware, which the model table does
// not list but fleets still hold.
func appleUDID(r *rng, model string) string {
	if r.chance(25) {
		b := appendHex(nil, r.next(), 16, false)
		b = appendHex(b, r.next(), 16, false)
		return string(appendHex(b, r.next(), 8, false))
	}
	chip := appleModels[model].chip
	if chip == 0 {
		chip = 0x8110
	}
	b := appendHex(nil, chip, 8, true)
	b = append(b, '-')
	return string(appendHex(b, r.next(), 16, true))
}

// upperGUID is a Mac's hardware UUID, upper-case as System Information
// shows it.
func upperGUID(r *rng) string {
	a, c := r.next(), r.next()
	b := appendHex(nil, a>>32, 8, true)
	b = append(b, '-')
	b = appendHex(b, a>>16, 4, true)
	b = append(b, '-')
	b = appendHex(b, a, 4, true)
	b = append(b, '-')
	b = appendHex(b, c>>48, 4, true)
	b = append(b, '-')
	return string(appendHex(b, c, 12, true))
}

// iccid is a SIM's ICCID: 89 (telecommunications), a country code, the
// issuer's and the account's digits and a Luhn check digit; 19 or 20
// digits, as issuers use both.
func iccid(r *rng) string {
	n := 19
	if r.chance(60) {
		n = 20
	}
	b := make([]byte, 0, n)
	b = append(b, "89"...)
	b = append(b, pick(r, iccidCountries)...)
	for len(b) < n-1 {
		b = append(b, byte('0'+r.intn(10)))
	}
	return string(append(b, luhnDigit(b)))
}

// luhnDigit is the check digit that makes digits valid under Luhn.
func luhnDigit(digits []byte) byte {
	sum := 0
	for k := len(digits) - 1; k >= 0; k-- {
		v := int(digits[k] - '0')
		if (len(digits)-1-k)%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return byte('0' + (10-sum%10)%10)
}

// eid is an eUICC's identifier: 32 digits starting 89049032, the last two
// the check digits of ISO 7064 mod 97-10, as IBANs have.
func eid(r *rng) string {
	b := make([]byte, 0, 32)
	b = append(b, "89049032"...)
	for len(b) < 30 {
		b = append(b, byte('0'+r.intn(10)))
	}
	rem := 0
	for _, c := range append(b[:30:30], '0', '0') {
		rem = (rem*10 + int(c-'0')) % 97
	}
	check := 98 - rem
	return string(append(b, byte('0'+check/10), byte('0'+check%10)))
}

// lockAlphabet is the alphabet of Apple's Activation Lock bypass codes.
const lockAlphabet = "0123456789ACDEFGHJKLMNPQRTUVWXY"

// lockCode is an Activation Lock bypass code: six groups of five.
func lockCode(r *rng) string {
	b := make([]byte, 0, 35)
	for g := 0; g < 6; g++ {
		if g > 0 {
			b = append(b, '-')
		}
		for k := 0; k < 5; k++ {
			b = append(b, lockAlphabet[r.intn(len(lockAlphabet))])
		}
	}
	return string(b)
}

// osBuild is hardwareInformation's osBuildNumber, which follows osVersion.
func osBuild(d *device) string {
	if d.os == osWindows {
		return strings.TrimPrefix(d.osVersion, "10.0.")
	}
	return osBuilds[d.osVersion]
}

// hardwarePlaceholder is beta's hardwareInformation as lists write it:
// every field at its type's default (null strings and nullable numbers, 0,
// false, [], an enum's first member), in the order appendHardware writes
// them.
const hardwarePlaceholder = `{"serialNumber":null,"totalStorageSpace":0,"freeStorageSpace":0,"imei":null,"meid":null,` +
	`"manufacturer":null,"model":null,"phoneNumber":null,"subscriberCarrier":null,"cellularTechnology":null,"wifiMac":null,` +
	`"operatingSystemLanguage":null,"isSupervised":false,"isEncrypted":false,"batterySerialNumber":null,` +
	`"batteryHealthPercentage":0,"batteryChargeCycles":0,"isSharedDevice":false,"sharedDeviceCachedUsers":[],` +
	`"tpmSpecificationVersion":null,"operatingSystemEdition":null,"deviceFullQualifiedDomainName":null,` +
	`"deviceGuardVirtualizationBasedSecurityHardwareRequirementState":"meetHardwareRequirements",` +
	`"deviceGuardVirtualizationBasedSecurityState":"running","deviceGuardLocalSystemAuthorityCredentialGuardState":"running",` +
	`"osBuildNumber":null,"operatingSystemProductType":0,"ipAddressV4":null,"subnetAddress":null,"esimIdentifier":null,` +
	`"systemManagementBIOSVersion":null,"tpmManufacturer":null,"tpmVersion":null,"wiredIPv4Addresses":[],` +
	`"batteryLevelPercentage":null,"residentUsersCount":null,"productName":null,"deviceLicensingStatus":"unknown",` +
	`"deviceLicensingLastErrorCode":0,"deviceLicensingLastErrorDescription":null}`

// appendHardware writes beta's hardwareInformation with its real values,
// as a single-device GET selecting it answers (d.det filled).
func appendHardware(b []byte, d *device) []byte {
	h := &d.det.hw
	b = append(b, `{"serialNumber":`...)
	b = appendNullString(b, d.serial)
	b = append(b, `,"totalStorageSpace":`...)
	b = appendInt(b, d.total)
	b = append(b, `,"freeStorageSpace":`...)
	b = appendInt(b, d.free)
	b = append(b, `,"imei":`...)
	b = appendNullString(b, d.imei)
	b = append(b, `,"meid":`...)
	b = appendNullString(b, d.meid)
	b = append(b, `,"manufacturer":`...)
	b = appendNullString(b, d.hw.manufacturer)
	b = append(b, `,"model":`...)
	b = appendNullString(b, d.hw.model)
	b = append(b, `,"phoneNumber":`...)
	b = appendNullString(b, d.phone)
	b = append(b, `,"subscriberCarrier":`...)
	b = appendNullString(b, d.carrier)
	b = append(b, `,"cellularTechnology":`...)
	b = appendNullString(b, h.cellular)
	b = append(b, `,"wifiMac":`...)
	b = appendNullString(b, d.wifiMAC)
	b = append(b, `,"operatingSystemLanguage":`...)
	b = appendNullString(b, h.language)
	b = append(b, `,"isSupervised":`...)
	b = appendBool(b, d.supervised)
	b = append(b, `,"isEncrypted":`...)
	b = appendBool(b, d.encrypted)
	b = append(b, `,"batterySerialNumber":`...)
	b = appendNullString(b, h.batterySerial)
	b = append(b, `,"batteryHealthPercentage":`...)
	b = appendInt(b, d.battery)
	b = append(b, `,"batteryChargeCycles":`...)
	b = appendInt(b, h.chargeCycles)
	b = append(b, `,"isSharedDevice":`...)
	b = appendBool(b, d.userless)
	b = append(b, `,"sharedDeviceCachedUsers":[],"tpmSpecificationVersion":`...)
	b = appendNullString(b, h.tpmSpec)
	b = append(b, `,"operatingSystemEdition":`...)
	b = appendNullString(b, h.edition)
	b = append(b, `,"deviceFullQualifiedDomainName":`...)
	switch {
	case d.os != osWindows:
		b = append(b, "null"...)
	case h.domain == "":
		b = appendString(b, d.name)
	default:
		b = appendString(b, d.name+"."+h.domain)
	}
	b = append(b, `,"deviceGuardVirtualizationBasedSecurityHardwareRequirementState":`...)
	b = appendString(b, h.vbsHardware)
	b = append(b, `,"deviceGuardVirtualizationBasedSecurityState":`...)
	b = appendString(b, h.vbs)
	b = append(b, `,"deviceGuardLocalSystemAuthorityCredentialGuardState":`...)
	b = appendString(b, h.credentialGuard)
	b = append(b, `,"osBuildNumber":`...)
	b = appendNullString(b, osBuild(d))
	b = append(b, `,"operatingSystemProductType":`...)
	b = appendInt(b, h.productType)
	b = append(b, `,"ipAddressV4":`...)
	b = appendIPv4(b, h.ip)
	b = append(b, `,"subnetAddress":`...)
	b = appendIPv4(b, h.ip&^(1<<(32-h.prefix)-1))
	b = append(b, `,"esimIdentifier":`...)
	b = appendNullString(b, h.eid)
	b = append(b, `,"systemManagementBIOSVersion":`...)
	b = appendNullString(b, h.bios)
	b = append(b, `,"tpmManufacturer":`...)
	b = appendNullString(b, h.tpmMaker)
	b = append(b, `,"tpmVersion":`...)
	b = appendNullString(b, h.tpmVersion)
	b = append(b, `,"wiredIPv4Addresses":[`...)
	for k := 0; k < h.nWired; k++ {
		if k > 0 {
			b = append(b, ',')
		}
		b = appendIPv4(b, h.wired[k])
	}
	b = append(b, `],"batteryLevelPercentage":`...)
	b = appendTenths(b, d.det.batteryLevel)
	b = append(b, `,"residentUsersCount":null,"productName":`...)
	b = appendNullString(b, h.productName)
	b = append(b, `,"deviceLicensingStatus":`...)
	b = appendString(b, h.licensing)
	b = append(b, `,"deviceLicensingLastErrorCode":`...)
	b = appendInt(b, h.licensingError)
	b = append(b, `,"deviceLicensingLastErrorDescription":`...)
	b = appendNullString(b, h.licensingErrorText)
	return append(b, '}')
}

// appendIPv4 writes v as a quoted dotted quad, null for 0.
func appendIPv4(b []byte, v uint32) []byte {
	if v == 0 {
		return append(b, "null"...)
	}
	b = append(b, '"')
	for k := 3; k >= 0; k-- {
		b = appendInt(b, int64(v>>(8*k)&0xff))
		if k > 0 {
			b = append(b, '.')
		}
	}
	return append(b, '"')
}

// appendTenths writes tenths/10 as a JSON number ("87", "42.5"), null
// for a negative value.
func appendTenths(b []byte, tenths int) []byte {
	if tenths < 0 {
		return append(b, "null"...)
	}
	b = appendInt(b, int64(tenths/10))
	if tenths%10 != 0 {
		b = append(b, '.', byte('0'+tenths%10))
	}
	return b
}

// ListDefaultProperties names the properties the version's list leaves at
// a default, in resource order (the schema of plugin/intune checks it
// marks the same ones).
func ListDefaultProperties(beta bool) []string {
	props := v1Properties
	if beta {
		props = betaProperties
	}
	var names []string
	for _, k := range listDefaults(props) {
		names = append(names, props[k].name)
	}
	return names
}

// EmittedDevice is device i (in beta, or v1.0) as a client that never
// hands on a placeholder should: each list-default property with its real
// value when withDetails, else null; every other property as the list
// writes it. It is the oracle tests compare what a client emitted with.
func (s *Server) EmittedDevice(i int, beta, withDetails bool) []byte {
	props := s.propsOf(beta)
	var d device
	st := s.state()
	s.current(st, i, &d)
	if withDetails {
		s.fillDetails(st, &d)
	}
	b := []byte{'{'}
	for k := range props {
		if k > 0 {
			b = append(b, ',')
		}
		p := &props[k]
		b = append(b, p.key...)
		switch {
		case !p.listDefault:
			b = p.write(b, &d)
		case withDetails:
			b = p.real(b, &d)
		default:
			b = append(b, "null"...)
		}
	}
	return append(b, '}')
}
