package graphsim

// Vocabulary for the real values of the list-default properties
// (details.go): the kind of values Intune reports for the hardware of
// data.go.

// memorySizes are the physicalMemoryInBytes, in GiB, of each chassis:
// phones 3-12, tablets 4-16, laptops 8-64, desktops and virtual machines
// 4-128. Repeats weight the common sizes.
var memorySizes = map[string][]int64{
	"phone":   {3, 4, 4, 6, 6, 8, 8, 12},
	"tablet":  {4, 8, 8, 16},
	"laptop":  {8, 16, 16, 16, 32, 32, 64},
	"desktop": {4, 8, 16, 16, 32, 64, 128},
	"unknown": {4, 8, 8, 16, 32, 64, 128},
}

// wiredShare is the percentage of Windows and macOS devices of a chassis
// that report an Ethernet adapter: most desktops, about half of the
// laptops (a dock or a dongle), most VMs (a virtual NIC), no tablet.
var wiredShare = map[string]int{"desktop": 90, "laptop": 50, "unknown": 80}

// adminNotes are what admins write in a device's notes, with characters
// JSON must escape (quotes, backslash, newline, tab, U+2028) and text in
// other scripts.
var adminNotes = []string{
	"Loaner pool, return to the IT desk",
	"Übergabe an Jürgen — 3. OG",
	`Screen cracked, ticket "INC0012345" open`,
	`Handover files on \\fs01\it\handover`,
	"Battery replaced 2026-03-04\nNext check: Q3",
	"Owner:\tFinance\tcost centre 4711",
	"会议室设备，请勿带走",
	"VIP 🚀 handle with care",
	"Réservé à la direction\u2028ne pas réinitialiser",
	"Kiosk mode; questions to helpdesk@contoso.com",
}

// changedNotes are the notes ChangeDetails moves between: any admin note,
// a few that changes bring, or none.
var changedNotes = append([]string{
	"",
	"Memory upgraded by IT",
	"Reassigned after audit",
	"Zurück vom Reparaturservice ✔",
}, adminNotes...)

var cellularTechnologies = []string{"LTE", "LTE", "5G NR", "GSM"}

var osLanguages = []string{"en-US", "en-US", "en-US", "en-GB", "de-DE", "fr-FR", "ja-JP", "es-ES", "zh-CN", "pt-BR"}

var subnetPrefixes = []int{24, 24, 24, 23, 22}

// iccidCountries are country codes after the ICCID's 89: the US (01),
// the UK, Germany, France, the Netherlands.
var iccidCountries = []string{"01", "01", "44", "49", "33", "31"}

// appleModels give an iOS model's product identifier (hardwareInformation's
// productName) and its chip id, which starts a modern UDID.
var appleModels = map[string]struct {
	product string
	chip    uint64
}{
	"iPhone 15 Pro":              {"iPhone16,1", 0x8130},
	"iPhone 15":                  {"iPhone15,4", 0x8120},
	"iPhone 14":                  {"iPhone14,7", 0x8110},
	"iPhone SE (3rd generation)": {"iPhone14,6", 0x8110},
	"iPhone 16 Pro Max":          {"iPhone17,2", 0x8140},
	"iPad Air (5th generation)":  {"iPad13,16", 0x8103},
	"iPad (10th generation)":     {"iPad13,18", 0x8101},
}

// windowsEditions are operatingSystemEdition and the PRODUCT_* value
// Windows reports as operatingSystemProductType.
var windowsEditions = []struct {
	name        string
	productType int64
}{{"Enterprise", 4}, {"Professional", 48}, {"Education", 121}}
var windowsEditionWeights = []int{70, 20, 10}

var adDomains = []string{"corp.contoso.com", "corp.contoso.com", "emea.contoso.local"}

var tpmSpecs = []string{"2.0, 0, 1.59", "2.0, 0, 1.59", "2.0, 0, 1.38", "2.0, 0, 1.16"}

type tpmChip struct{ maker, version string }

// tpmChips are the TPMs each maker fits (Infineon, Nuvoton, ST).
var tpmChips = map[string][]tpmChip{
	"Dell Inc.":             {{"NTC", "7.2.3.1"}, {"STM", "73.20.17568.4"}},
	"LENOVO":                {{"STM", "73.4.17568.5"}, {"NTC", "7.2.2.0"}, {"IFX", "7.63.3353.0"}},
	"HP":                    {{"IFX", "7.63.3353.0"}, {"IFX", "7.85.4555.0"}},
	"Microsoft Corporation": {{"IFX", "7.85.4555.0"}, {"NTC", "7.2.3.1"}},
}

// vmTPM is Hyper-V's virtual TPM.
var vmTPM = tpmChip{"MSFT", "8.1.0.1"}

const hyperVBIOS = "Hyper-V UEFI Release v4.1"

var biosVersions = map[string][]string{
	"Dell Inc.":             {"1.15.0", "1.21.1", "1.9.2"},
	"LENOVO":                {"N3JET38W (1.19 )", "R1MET48W (1.18 )", "N32ET91W (1.67 )"},
	"HP":                    {"V70 Ver. 01.05.02", "V73 Ver. 01.13.00", "U21 Ver. 02.19.00"},
	"Microsoft Corporation": {"19.100.140", "21.101.140"},
}

var licensingFailures = []struct {
	code int64
	text string
}{
	{-2147024891, "Access is denied."},
	{-2145844844, "The remote server returned an error: (404) Not Found."},
}

// osBuilds are the builds of the versions of osVersions (Windows' is the
// version's tail, see osBuild).
var osBuilds = map[string]string{
	"16.7.10": "20H350", "17.6.1": "21G93", "18.1": "22B83", "18.1.1": "22B91", "18.2": "22C152",
	"12": "SP1A.210812.016", "13": "TP1A.220624.014", "14": "UP1A.231005.007", "15": "AP3A.241105.007",
	"13.7.1": "22H221", "14.7.1": "23H222", "15.1": "24B83", "15.1.1": "24B91",
}
