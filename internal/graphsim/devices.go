package graphsim

import (
	"strconv"
	"strings"
	"time"
)

// dataNow anchors every generated date, so that the same seed gives the same
// bytes whatever the wall clock says. Sync dates fall in the weeks before it.
var dataNow = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC).Unix()

const day = 24 * 60 * 60

// device holds one generated managedDevice. Values that are cheap to format
// (GUIDs, hashes) are kept as numbers and formatted while writing.
type device struct {
	seed  int64
	index int
	os    osKind
	hw    hardware

	userless                  bool
	userID, aadDeviceID       guid
	firstName                 string // of the user, which Apple device names use
	name, displayName         string
	upn, email, managedName   string
	ownerType, compliance     string
	jailBroken, agent         string
	osVersion, enrollmentType string
	registration, category    string
	exchangeState             string
	exchangeReason            string
	threatState               string
	easDeviceID               string
	serial, imei, meid, phone string
	patchLevel, wifiMAC       string
	carrier                   string

	enrolled, lastSync, easActivation, exchangeLastSync int64
	graceExpiry, certExpiry                             int64

	easActivated, supervised, encrypted bool
	aadRegistered, requireApproval      triBool

	cmFeatures        int8 // -1: null; else a bit per feature
	hasHealth         bool
	health            healthState
	total, free       int64
	actions           [3]actionResult
	nActions          int
	enrollmentProfile string // enrollmentProfileName: "" is null
	managementState   string

	roleScopeTag int // beta: 0 means ["0"], n>0 means ["0","n"]
	loggedOn     [3]logon
	nLoggedOn    int
	battery      int64 // beta: battery health percentage, 0 for desktops

	det details // the real values of the list-default properties, filled only by fillDetails (details.go)
}

type guid [2]uint64

type actionResult struct {
	name, state     string
	start, lastSeen int64
}

type logon struct {
	user guid
	at   int64
}

type healthState struct {
	status             string
	lastUpdate, issued int64
	resets, restarts   int64
	enabled            uint16 // a bit per on/off property, see the health* bits below
	pcr0, sbFP, ciPol  hash256
	aik                [32]uint64 // modulus of the TPM's RSA-2048 attestation identity key
}

// hash256 holds 256 random bits, written as 64 hex digits (a SHA-256 sized
// hash, as TPM PCR values are).
type hash256 [4]uint64

// OperatingSystem returns the operatingSystem of device i. It draws from its
// own stream, so $filter can test millions of devices without generating
// them.
func (s *Server) OperatingSystem(i int) string { return osNames[s.osOf(i)] }

func (s *Server) osOf(i int) osKind {
	r := newRNG(s.cfg.Seed, i, saltOS)
	return osKind(r.weighted(osWeights))
}

// DeviceID returns the id of device i. Its last group is the index in hex,
// which is what lets a skip token's LastDeviceId find its place again.
func (s *Server) DeviceID(i int) string { return string(appendDeviceID(nil, s.cfg.Seed, i)) }

func appendDeviceID(b []byte, seed int64, i int) []byte {
	return appendIndexedGUID(b, seed, i, saltID)
}

// appendIndexedGUID appends the version 4 GUID drawn for index i of seed and
// salt, whose last group is i: unique per index, and readable in logs.
func appendIndexedGUID(b []byte, seed int64, i int, salt uint64) []byte {
	r := newRNG(seed, i, salt)
	a, c := r.next(), r.next()
	b = appendHex(b, a>>32, 8, false)
	b = append(b, '-')
	b = appendHex(b, a>>16, 4, false)
	b = append(b, '-')
	b = appendHex(b, 0x4000|a&0x0fff, 4, false)
	b = append(b, '-')
	b = appendHex(b, 0x8000|(c>>48)&0x3fff, 4, false)
	b = append(b, '-')
	return appendHex(b, uint64(i), 12, false)
}

// indexFromID inverts appendDeviceID: it returns the index a device id
// encodes, and whether the id is one this tenant would have issued.
func (s *Server) indexFromID(id string) (int, bool) {
	if len(id) != 36 {
		return 0, false
	}
	v, err := strconv.ParseUint(id[24:], 16, 64)
	if err != nil || v >= uint64(s.state().devices) {
		return 0, false
	}
	i := int(v)
	var buf [36]byte
	return i, strings.EqualFold(string(appendDeviceID(buf[:0], s.cfg.Seed, i)), id)
}

// Device returns the exact JSON of device i, in its current revision, as
// the v1.0 collection serves it without $select.
func (s *Server) Device(i int) []byte {
	var d device
	s.current(s.state(), i, &d)
	return appendDevice(nil, &d, s.v1Props)
}

// BetaDevice returns the exact JSON of device i as the beta collection
// serves it without $select.
func (s *Server) BetaDevice(i int) []byte {
	var d device
	s.current(s.state(), i, &d)
	return appendDevice(nil, &d, s.betaProps)
}

func newGUID(r *rng) guid { return guid{r.next(), r.next()} }

// generate fills d with device i. Every value comes from streams seeded by
// (seed, index), never from shared state, so devices can be produced in any
// order and concurrently.
func (s *Server) generate(i int, d *device) {
	*d = device{seed: s.cfg.Seed, index: i, os: s.osOf(i)}
	r := newRNG(s.cfg.Seed, i, saltDevice)
	os := d.os
	d.hw = pick(&r, hardwareByOS[os])
	d.osVersion = pick(&r, osVersions[os])
	d.agent = pick(&r, managementAgents[os])
	d.enrollmentType = pick(&r, enrollmentTypes[os])

	// The user. Userless devices (kiosks, shared PCs) have empty user fields.
	d.userless = d.enrollmentType == "windowsBulkUserless" || d.enrollmentType == "appleBulkWithoutUser" || r.chance(3)
	first := pick(&r, firstNames)
	foldedFirst := ""
	if r.chance(20) {
		k := r.intn(len(unicodeFirstNames))
		first, foldedFirst = unicodeFirstNames[k], foldedUnicodeFirst[k]
	} else {
		foldedFirst = strings.ToLower(first)
	}
	lastK := r.intn(len(lastNames))
	last := lastNames[lastK]
	domain := pick(&r, domains)
	commaStyle := r.chance(10)
	d.userID = newGUID(&r)
	if !d.userless {
		local := foldedFirst + "." + foldedLastNames[lastK]
		if foldedFirst == "" {
			local = "u" + strconv.Itoa(i) + "." + foldedLastNames[lastK]
		}
		d.upn = local + "@" + domain
		if !r.chance(10) {
			d.email = d.upn
		}
		if commaStyle {
			d.displayName = last + ", " + first
		} else {
			d.displayName = first + " " + last
		}
	}

	// Dates: last sync within the last month for most, stale for some.
	if r.chance(12) {
		d.lastSync = dataNow - int64(30*day+r.intn(200*day))
	} else {
		d.lastSync = dataNow - int64(r.intn(30*day))
	}
	firstEnroll := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC).Unix()
	d.enrolled = firstEnroll + int64(r.intn(int(d.lastSync-day-firstEnroll)))

	d.firstName = first
	d.name = s.deviceName(&r, d, first)
	d.managedName = managedDeviceName(d)

	d.ownerType = ownerTypes[r.weighted(ownerWeights)]
	d.compliance = complianceStates[r.weighted(complianceWeights)]
	switch d.compliance {
	case "inGracePeriod":
		d.graceExpiry = d.lastSync + int64(day+r.intn(3*day))
	case "noncompliant":
		d.graceExpiry = d.lastSync - int64(r.intn(10*day))
	default:
		d.graceExpiry = foreverTime
	}

	d.jailBroken = "Unknown"
	if os == osIOS || os == osAndroid {
		d.jailBroken = "False"
		if r.chance(1) {
			d.jailBroken = "True"
		}
	}

	d.easActivated = r.chance(20)
	d.easActivation, d.exchangeLastSync = neverTime, neverTime
	if d.easActivated {
		d.easActivation = d.enrolled + int64(r.intn(5*day))
		d.exchangeLastSync = d.lastSync - int64(r.intn(2*day))
	}
	d.serial = serialNumber(&r, d.hw.manufacturer)
	switch os {
	case osIOS:
		d.easDeviceID = "Appl" + d.serial
	case osAndroid:
		d.easDeviceID = "androidc" + strconv.FormatUint(r.next()%1e10, 10)
	default:
		d.easDeviceID = string(appendHex(appendHex(nil, r.next(), 16, true), r.next(), 16, true))
	}

	d.aadRegistered = 2
	if os != osWindows && r.chance(15) {
		d.aadRegistered = 1
	}
	if r.chance(4) {
		d.aadRegistered = 0
	}
	d.registration = registrationStates[r.weighted(registrationWeights)]
	if d.registration != "notRegistered" {
		d.aadDeviceID = newGUID(&r)
	}
	d.category = pick(&r, categories)
	d.supervised = os == osIOS && d.ownerType == "company" && d.enrollmentType != "userEnrollment"
	d.exchangeState = exchangeAccessStates[r.weighted(exchangeAccessWeights)]
	d.exchangeReason = "none"
	if d.exchangeState != "none" {
		d.exchangeReason = pick(&r, exchangeAccessReasons)
	}
	d.encrypted = os == osIOS || r.chance(85)

	phone := d.hw.chassis == "phone"
	if phone {
		d.imei = imei(&r)
		if r.chance(40) {
			d.phone = "+1425555" + strconv.Itoa(1000+r.intn(9000))
		}
		if r.chance(60) {
			d.carrier = pick(&r, carriers)
		}
		if r.chance(2) {
			d.meid = string(appendHex(nil, r.next(), 14, true))
		}
	}
	if os == osAndroid {
		d.patchLevel = time.Unix(dataNow-int64(r.intn(400*day)), 0).UTC().Format("2006-01") + "-01"
	}
	if d.hw.model != "Virtual Machine" && !strings.HasPrefix(d.hw.model, "Cloud PC") {
		d.wifiMAC = string(appendHex(nil, r.next(), 12, true))
	}

	d.cmFeatures = -1
	if d.agent == "configurationManagerClientMdm" {
		d.cmFeatures = int8(r.next() & 0x3f)
	}
	if os == osWindows {
		d.hasHealth = true
		s.healthOf(&r, d)
	}

	// Storage. Every tenth device reports a size above 2^53 that a float64
	// cannot hold (odd, so the nearest doubles are both off by one): a
	// client that decodes device JSON into float64 corrupts it, visibly.
	gb := d.hw.storageGB
	d.total = gb*1_000_000_000 - int64(r.intn(int(gb*40_000_000)))
	d.free = d.total * int64(5+r.intn(75)) / 100
	if i%10 == 3 {
		d.total = 9007199254740993 + 2*int64(r.next()>>24)
	}

	d.threatState = threatStates[r.weighted(threatWeights)]
	switch n := r.intn(100); {
	case n < 1:
		d.requireApproval = 2
	case n < 10:
		d.requireApproval = 1
	}
	d.certExpiry = d.lastSync + int64(r.intn(365*day))
	if r.chance(3) {
		d.certExpiry = neverTime
	}

	d.nActions = r.weighted(actionCountWeights)
	for k := 0; k < d.nActions; k++ {
		start := d.enrolled + int64(r.intn(int(d.lastSync-d.enrolled)))
		d.actions[k] = actionResult{
			name:     pick(&r, actionNames),
			state:    actionStates[r.weighted(actionWeights)],
			start:    start,
			lastSeen: start + int64(r.intn(2*day)),
		}
	}

	// Properties Microsoft added to v1.0 later (enrollmentProfileName in
	// 2024, managementState in 2025) come from a stream of their own, so
	// that they shift no value generated before them.
	p := newRNG(s.cfg.Seed, i, saltAdded)
	if profiles := enrollmentProfiles[d.enrollmentType]; len(profiles) > 0 && !p.chance(10) {
		d.enrollmentProfile = pick(&p, profiles)
	}
	d.managementState = managementStates[p.weighted(managementStateWeights)]

	// Beta-only values come from their own stream: adding one never shifts
	// a v1.0 value.
	b := newRNG(s.cfg.Seed, i, saltBeta)
	d.roleScopeTag = 0
	if b.chance(25) {
		d.roleScopeTag = 1 + b.intn(9)
	}
	if os == osWindows && !d.userless {
		d.nLoggedOn = 1 + b.intn(3)
		d.loggedOn[0] = logon{user: d.userID, at: d.lastSync - int64(b.intn(3*day))}
		for k := 1; k < d.nLoggedOn; k++ {
			d.loggedOn[k] = logon{user: newGUID(&b), at: d.lastSync - int64(b.intn(60*day))}
		}
	}
	if d.hw.chassis != "desktop" && d.hw.chassis != "unknown" {
		d.battery = int64(70 + b.intn(31))
	}
}

// deviceName names a device the way its platform does by default, with a
// share of names in other scripts and with characters JSON must escape.
func (s *Server) deviceName(r *rng, d *device, first string) string {
	if r.chance(4) {
		return pick(r, oddDeviceNames) + string(appendPad(nil, d.index%10000, 4))
	}
	switch d.os {
	case osWindows:
		switch {
		case strings.HasPrefix(d.hw.model, "Cloud PC"):
			return "CPC-" + alnum(r, 5, false) + "-" + alnum(r, 3, true)
		case r.chance(40):
			return "DESKTOP-" + alnum(r, 7, true)
		case r.chance(30):
			return "LAPTOP-" + alnum(r, 8, true)
		default:
			return "CONTOSO-" + pick(r, windowsNamePrefixes) + "-" + string(appendPad(nil, r.intn(100000), 5))
		}
	case osIOS, osMacOS:
		kind := appleKind(d.hw.model)
		if d.userless || r.chance(10) {
			return kind
		}
		// Apple writes a typographic apostrophe; people who rename their
		// device type a straight one, which OData doubles in a skip token.
		if r.chance(50) {
			return first + "'s " + kind
		}
		return first + "’s " + kind
	default:
		if d.userless || r.chance(40) {
			return d.hw.model
		}
		local, _, _ := strings.Cut(d.upn, "@")
		return local + "_AndroidEnterprise_" + intuneDate(d.enrolled)
	}
}

// appleKind is the marketing name Apple puts in a device's default name.
func appleKind(model string) string {
	switch {
	case strings.HasPrefix(model, "iPhone"):
		return "iPhone"
	case strings.HasPrefix(model, "iPad"):
		return "iPad"
	case strings.HasPrefix(model, "MacBookPro"):
		return "MacBook Pro"
	case strings.HasPrefix(model, "iMac"):
		return "iMac"
	default:
		return "MacBook Air"
	}
}

// managedDeviceName follows Intune's "<user>_<OS>_<M/D/YYYY>_<h:mm AM>".
func managedDeviceName(d *device) string {
	local, _, _ := strings.Cut(d.upn, "@")
	if d.userless {
		local = "Userless"
	}
	return local + "_" + osNames[d.os] + "_" + intuneDate(d.enrolled)
}

func intuneDate(unix int64) string {
	return time.Unix(unix, 0).UTC().Format("1/2/2006_3:04 PM")
}

const alnumUpper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func alnum(r *rng, n int, upper bool) string {
	b := make([]byte, n)
	for k := range b {
		c := alnumUpper[r.intn(len(alnumUpper))]
		if !upper && c >= 'A' {
			c += 'a' - 'A'
		}
		b[k] = c
	}
	return string(b)
}

func serialNumber(r *rng, manufacturer string) string {
	switch manufacturer {
	case "Dell Inc.":
		return alnum(r, 7, true)
	case "HP":
		return "5CG" + alnum(r, 7, true)
	case "LENOVO":
		return "PF" + alnum(r, 6, true)
	case "Apple":
		return alnum(r, 10, true)
	case "samsung":
		return "R5C" + alnum(r, 8, true)
	case "Microsoft Corporation":
		return string(appendPad(nil, int(r.next()%1e12), 12))
	default:
		return alnum(r, 11, true)
	}
}

// imei returns a 15-digit IMEI with a valid Luhn check digit, spaced the
// way Intune reports it ("35 291011 234567 8").
func imei(r *rng) string {
	var d [15]byte
	d[0], d[1] = '3', '5'
	for k := 2; k < 14; k++ {
		d[k] = byte('0' + r.intn(10))
	}
	sum := 0
	for k := 0; k < 14; k++ {
		v := int(d[k] - '0')
		if k%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	d[14] = byte('0' + (10-sum%10)%10)
	return string(d[0:2]) + " " + string(d[2:8]) + " " + string(d[8:14]) + " " + string(d[14:])
}

// Bits of healthState.enabled, in the order of the properties they set.
const (
	healthDEP = 1 << iota
	healthBitLocker
	healthSecureBoot
	healthBootDebugging
	healthKernelDebugging
	healthCodeIntegrity
	healthTestSigning
	healthSafeMode
	healthWindowsPE
	healthELAM
	healthVSM
)

func (s *Server) healthOf(r *rng, d *device) {
	h := &d.health
	h.status = pick(r, healthStatuses)
	h.lastUpdate = d.lastSync - int64(r.intn(day))
	h.issued = h.lastUpdate - int64(r.intn(3600))
	h.resets = int64(r.intn(40))
	h.restarts = h.resets + int64(r.intn(400))
	h.enabled = healthDEP | healthSecureBoot | healthCodeIntegrity | healthELAM
	if d.encrypted {
		h.enabled |= healthBitLocker
	}
	if r.chance(60) {
		h.enabled |= healthVSM
	}
	if r.chance(1) {
		h.enabled |= healthBootDebugging | healthTestSigning
	}
	for k := range h.pcr0 {
		h.pcr0[k], h.sbFP[k], h.ciPol[k] = r.next(), r.next(), r.next()
	}
	for k := range h.aik {
		h.aik[k] = r.next()
	}
}

// UPN local parts are ASCII: fold the accented names once, at start-up.
var (
	foldedUnicodeFirst = foldAll(unicodeFirstNames)
	foldedLastNames    = foldAll(lastNames)
)

var asciiFold = strings.NewReplacer(
	"ë", "e", "é", "e", "ö", "o", "ø", "o", "Ø", "o", "ł", "l", "Ł", "l", "ç", "c",
	"á", "a", "í", "i", "ñ", "n", "Ñ", "n", "ü", "u", "ı", "i", "å", "a", "ó", "o", "ş", "s",
)

func foldAll(names []string) []string {
	out := make([]string, len(names))
	for k, n := range names {
		n = strings.ToLower(asciiFold.Replace(n))
		var b strings.Builder
		for _, c := range n {
			if c >= 'a' && c <= 'z' || c == '\'' || c == '-' {
				b.WriteRune(c)
			}
		}
		out[k] = b.String()
	}
	return out
}
