package graphsim

// Vocabulary for generated devices. Enum values are spelled as Graph v1.0
// spells them; models, versions and names are the kind a real tenant holds.

type osKind uint8

const (
	osWindows osKind = iota
	osIOS
	osAndroid
	osMacOS
	osCount
)

var osNames = [osCount]string{"Windows", "iOS", "Android", "macOS"}

// osWeights skews the fleet the way corporate tenants are skewed: mostly
// Windows, then phones, few Macs.
var osWeights = []int{60, 18, 15, 7}

type hardware struct {
	manufacturer, model string
	storageGB           int64  // nominal disk size
	chassis             string // beta chassisType
}

var hardwareByOS = [osCount][]hardware{
	osWindows: {
		{"Dell Inc.", "Latitude 5440", 512, "laptop"},
		{"Dell Inc.", "Latitude 7450", 512, "laptop"},
		{"Dell Inc.", "OptiPlex 7010", 256, "desktop"},
		{"LENOVO", "21HD0018US", 512, "laptop"},
		{"LENOVO", "20XW00GKUS", 256, "laptop"},
		{"HP", "HP EliteBook 840 G10 Notebook PC", 512, "laptop"},
		{"HP", "HP ProDesk 400 G9 Desktop Mini PC", 256, "desktop"},
		{"Microsoft Corporation", "Surface Laptop 5", 256, "laptop"},
		{"Microsoft Corporation", "Surface Pro 9", 256, "tablet"},
		{"Microsoft Corporation", "Cloud PC Enterprise 2vCPU/8GB/128GB", 128, "unknown"},
		{"Microsoft Corporation", "Virtual Machine", 128, "unknown"},
	},
	osIOS: {
		{"Apple", "iPhone 15 Pro", 256, "phone"},
		{"Apple", "iPhone 15", 128, "phone"},
		{"Apple", "iPhone 14", 128, "phone"},
		{"Apple", "iPhone SE (3rd generation)", 64, "phone"},
		{"Apple", "iPhone 16 Pro Max", 512, "phone"},
		{"Apple", "iPad Air (5th generation)", 64, "tablet"},
		{"Apple", "iPad (10th generation)", 64, "tablet"},
	},
	osAndroid: {
		{"samsung", "SM-S918B", 256, "phone"},
		{"samsung", "SM-A546B", 128, "phone"},
		{"samsung", "SM-X700", 128, "tablet"},
		{"Google", "Pixel 8", 128, "phone"},
		{"Google", "Pixel 9 Pro", 256, "phone"},
		{"motorola", "moto g power 5G - 2024", 128, "phone"},
		{"Zebra Technologies", "TC52", 32, "phone"},
	},
	osMacOS: {
		{"Apple", "MacBookPro18,3", 512, "laptop"},
		{"Apple", "MacBookAir10,1", 256, "laptop"},
		{"Apple", "Mac14,2", 512, "laptop"},
		{"Apple", "Mac15,3", 1024, "laptop"},
		{"Apple", "iMac21,1", 512, "desktop"},
	},
}

var osVersions = [osCount][]string{
	osWindows: {"10.0.19045.5131", "10.0.22631.4460", "10.0.22631.4602", "10.0.26100.2314", "10.0.26100.2605"},
	osIOS:     {"16.7.10", "17.6.1", "18.1", "18.1.1", "18.2"},
	osAndroid: {"12", "13", "14", "14", "15"},
	osMacOS:   {"13.7.1", "14.7.1", "15.1", "15.1.1"},
}

var firstNames = []string{
	"James", "Mary", "Olivia", "Liam", "Noah", "Emma", "Ava", "Sophia", "Lucas", "Mia",
	"Ethan", "Amelia", "Oliver", "Harper", "Elijah", "Aria", "Mateo", "Chloe", "Daniel", "Grace",
	"Hiroshi", "Priya", "Wei", "Fatima", "Carlos", "Aisha", "Ivan", "Nora", "Kenji", "Leila",
}

// unicodeFirstNames give "Zoë's MacBook Pro" and friends: a parser that
// mangles UTF-8 shows up at once.
var unicodeFirstNames = []string{
	"Zoë", "José", "Björn", "Søren", "Łukasz", "François", "Ana María", "Øyvind",
	"Chloé", "Jürgen", "Małgorzata", "Zoltán", "Ñuño", "陽翔", "Дмитрий", "Ελένη",
}

var lastNames = []string{
	"Smith", "Johnson", "Garcia", "Brown", "Nguyen", "Kim", "Patel", "Müller", "O'Brien", "Schmidt",
	"Rossi", "Tanaka", "Kowalski", "Silva", "Andersson", "Dubois", "Novak", "Hansen", "Yılmaz", "Ivanova",
}

// oddDeviceNames hold every character a JSON writer or reader can get wrong:
// a double quote, a backslash, U+2028, a tab, emoji outside the BMP, CJK.
var oddDeviceNames = []string{
	"Ünïcødé-ノートPC-",
	`Conference Room "Fjord" 🚀 `,
	`CONTOSO\KIOSK-`,
	"Lab PC\u2028Line2-",
	"Reception\tTablet-",
	"会議室-Surface-Hub-",
	"Ψ-Test-PC-💻-",
	"Пункт выдачи ",
}

var domains = []string{"contoso.com", "contoso.com", "contoso.com", "fabrikam.onmicrosoft.com"}

var categories = []string{"Unknown", "Unknown", "Unknown", "Sales", "Engineering", "Finance", "Frontline", "Kiosk"}

var carriers = []string{"Verizon", "AT&T", "T-Mobile", "Vodafone", "Orange F", "Telekom.de"}

var complianceStates = []string{"compliant", "noncompliant", "inGracePeriod", "unknown", "configManager", "conflict", "error"}
var complianceWeights = []int{70, 14, 5, 7, 2, 1, 1}

var ownerTypes = []string{"company", "personal", "unknown"}
var ownerWeights = []int{78, 20, 2}

var registrationStates = []string{
	"registered", "notRegistered", "revoked", "keyConflict", "approvalPending",
	"certificateReset", "notRegisteredPendingEnrollment", "unknown",
}
var registrationWeights = []int{85, 4, 1, 1, 1, 1, 5, 2}

var exchangeAccessStates = []string{"none", "unknown", "allowed", "blocked", "quarantined"}
var exchangeAccessWeights = []int{60, 10, 25, 3, 2}

var exchangeAccessReasons = []string{
	"none", "unknown", "exchangeGlobalRule", "exchangeIndividualRule", "exchangeDeviceRule",
	"exchangeUpgrade", "exchangeMailboxPolicy", "other", "compliant", "notCompliant",
	"notEnrolled", "unknownLocation", "mfaRequired", "azureADBlockDueToAccessPolicy",
	"compromisedPassword", "deviceNotKnownWithManagedApp",
}

var threatStates = []string{
	"unknown", "activated", "deactivated", "secured", "lowSeverity", "mediumSeverity",
	"highSeverity", "unresponsive", "compromised", "misconfigured",
}
var threatWeights = []int{70, 5, 2, 15, 2, 2, 1, 1, 1, 1}

var managementAgents = [osCount][]string{
	osWindows: {"mdm", "mdm", "mdm", "configurationManagerClientMdm", "configurationManagerClientMdm", "easMdm", "intuneClient"},
	osIOS:     {"mdm", "mdm", "easMdm"},
	osAndroid: {"mdm", "googleCloudDevicePolicyController", "googleCloudDevicePolicyController", "easMdm"},
	osMacOS:   {"mdm", "mdm", "jamf"},
}

var enrollmentTypes = [osCount][]string{
	osWindows: {"windowsAzureADJoin", "windowsAzureADJoin", "windowsAutoEnrollment", "windowsCoManagement", "windowsBulkUserless", "windowsAzureADJoinUsingDeviceAuth", "userEnrollment"},
	osIOS:     {"appleBulkWithUser", "appleBulkWithUser", "userEnrollment", "appleUserEnrollment", "deviceEnrollmentManager"},
	osAndroid: {"userEnrollment", "userEnrollment", "deviceEnrollmentManager", "unknown"},
	osMacOS:   {"appleBulkWithUser", "appleBulkWithoutUser", "userEnrollment"},
}

// enrollmentProfiles name the profiles of the enrollment types that have
// one (Apple's automated device enrollment, Windows Autopilot); other
// devices have none (null).
var enrollmentProfiles = map[string][]string{
	"appleBulkWithUser":                 {"Corporate iPhone (ADE)", "Corporate iPad (ADE)", "Corporate Mac (ADE)"},
	"appleBulkWithoutUser":              {"Shared iPad (ADE)", "Kiosk Mac (ADE)"},
	"windowsAzureADJoin":                {"Autopilot - User Driven", "Autopilot - Hybrid Join"},
	"windowsAzureADJoinUsingDeviceAuth": {"Autopilot - Self Deploying"},
}

// managementStates are managementState's values, weighted: nearly every
// device is managed.
var managementStates = []string{"managed", "retirePending", "wipePending", "deletePending", "unhealthy", "discovered"}
var managementStateWeights = []int{960, 10, 5, 10, 10, 5}

var actionNames = []string{"syncDevice", "rebootNow", "remoteLock", "retire", "wipe", "resetPasscode", "windowsDefenderScan", "locateDevice"}
var actionStates = []string{"none", "pending", "canceled", "active", "done", "failed", "notSupported"}
var actionWeights = []int{1, 10, 2, 3, 70, 10, 4}

var healthStatuses = []string{"Compliant", "Compliant", "Compliant", "NotCompliant", "Unknown"}

var actionCountWeights = []int{40, 30, 18, 12} // devices with 0, 1, 2, 3 action results

var windowsNamePrefixes = []string{"WS", "LT", "KIOSK"}
