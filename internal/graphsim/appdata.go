package graphsim

// Vocabulary of detected apps. The core titles of each platform are the
// software found on nearly every managed device of a corporate tenant
// (browsers, Office, the Intune agents, runtimes, security agents), in the
// spelling Intune's inventory reports them; the rest of a tenant's
// catalogue is generated from the word lists below.

// detectedAppPlatforms are detectedAppPlatformType's values for the
// devices of each operating system. Android devices are taken to be
// Android Enterprise work profiles, as in most corporate tenants (see
// https://learn.microsoft.com/graph/api/resources/intune-devices-detectedapp
// for the enum: unknown, windows, windowsMobile, windowsHolographic, ios,
// macOS, chromeOS, androidOSP, androidDeviceAdministrator,
// androidWorkProfile, androidDedicatedAndFullyManaged).
var detectedAppPlatforms = [osCount]string{
	osWindows: "windows",
	osIOS:     "ios",
	osAndroid: "androidWorkProfile",
	osMacOS:   "macOS",
}

// coreTitle is an app found on a share of the devices of its platform,
// each device holding one of its versions.
type coreTitle struct {
	name, publisher string
	presence        int // per mille of the platform's devices that hold it
	size            int64
	versions        []coreVersion // newest first
}

type coreVersion struct {
	version string
	weight  int
}

func v1(version string) []coreVersion { return []coreVersion{{version, 1}} }

// coreTitles are in order of importance: a tenant whose catalogue or
// AppsPerDevice is too small for all of them keeps the first.
var coreTitles = [osCount][]coreTitle{
	osWindows: {
		{"Microsoft Edge", "Microsoft Corporation", 995, 612_634_112, []coreVersion{
			{"131.0.2903.86", 55}, {"131.0.2903.70", 25}, {"130.0.2849.80", 12}, {"129.0.2792.89", 8}}},
		{"Microsoft Intune Management Extension", "Microsoft Corporation", 990, 71_802_880, v1("1.83.107.0")},
		{"Microsoft Edge Update", "", 985, 0, v1("1.3.195.43")},
		{"Microsoft Edge WebView2 Runtime", "Microsoft Corporation", 980, 598_142_976, []coreVersion{
			{"131.0.2903.86", 70}, {"131.0.2903.70", 30}}},
		{"CrowdStrike Windows Sensor", "CrowdStrike, Inc.", 975, 194_732_032, []coreVersion{
			{"7.19.18913.0", 80}, {"7.18.18809.0", 20}}},
		{"Microsoft Update Health Tools", "Microsoft Corporation", 970, 1_032_192, v1("3.74.0.0")},
		{"Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.40.33810", "Microsoft Corporation", 960, 20_623_360, v1("14.40.33810.0")},
		{"Microsoft OneDrive", "Microsoft Corporation", 950, 386_531_328, []coreVersion{
			{"24.226.1110.0004", 65}, {"24.211.1020.0001", 35}}},
		{"Microsoft 365 Apps for enterprise - en-us", "Microsoft Corporation", 940, 3_221_225_472, []coreVersion{
			{"16.0.18129.20158", 50}, {"16.0.18025.20160", 30}, {"16.0.17928.20286", 20}}},
		{"Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.40.33810", "Microsoft Corporation", 930, 18_210_816, v1("14.40.33810.0")},
		{"Microsoft GameInput", "Microsoft Corporation", 905, 1_589_248, v1("10.1.26100.2454")},
		{"Microsoft Teams", "Microsoft Corporation", 900, 410_566_656, []coreVersion{
			{"24295.605.3225.8804", 60}, {"24277.3507.3205.8385", 40}}},
		{"Windows PC Health Check", "Microsoft Corporation", 880, 11_403_264, v1("3.6.2204.08001")},
		{"Company Portal", "Microsoft Corporation", 850, 52_428_800, v1("11.2.1002.0")},
		{"Microsoft .NET Runtime - 8.0.11 (x64)", "Microsoft Corporation", 700, 79_691_776, v1("8.0.11.34221")},
		{"Google Chrome", "Google LLC", 620, 402_653_184, []coreVersion{
			{"131.0.6778.86", 50}, {"131.0.6778.70", 30}, {"130.0.6723.117", 20}}},
		{"Microsoft Windows Desktop Runtime - 8.0.11 (x64)", "Microsoft Corporation", 600, 92_274_688, v1("8.0.11.34221")},
		{"Adobe Acrobat (64-bit)", "Adobe", 550, 1_468_006_400, []coreVersion{
			{"24.005.20320", 70}, {"24.004.20272", 30}}},
		{"Intel(R) Wireless Bluetooth(R)", "Intel Corporation", 500, 23_068_672, v1("23.80.0.3")},
		// Cisco's installer registers its name with a trailing space.
		{"Cisco Secure Client - AnyConnect VPN ", "Cisco Systems, Inc.", 500, 68_157_440, v1("5.1.5.65")},
		{"Realtek Audio Driver", "Realtek Semiconductor Corp.", 450, 419_430_400, v1("6.0.9549.1")},
		{"Teams Machine-Wide Installer", "Microsoft Corporation", 450, 126_877_696, v1("1.7.0.21052")},
		{"Zoom Workplace (64-bit)", "Zoom Communications, Inc.", 350, 312_475_648, []coreVersion{
			{"6.2.52884", 70}, {"6.2.49583", 30}}},
		{"Dell Command | Update", "Dell Inc.", 300, 52_953_088, v1("5.4.0")},
		{"7-Zip 24.08 (x64)", "Igor Pavlov", 300, 5_767_168, v1("24.08")},
		{"Notepad++ (64-bit x64)", "Notepad++ Team", 200, 15_728_640, []coreVersion{
			{"8.7.1", 60}, {"8.6.9", 40}}},
		{"Microsoft Visual Studio Code", "Microsoft Corporation", 180, 379_584_512, []coreVersion{
			{"1.95.3", 70}, {"1.95.2", 30}}},
		{"Mozilla Firefox (x64 en-US)", "Mozilla", 150, 249_561_088, []coreVersion{
			{"132.0.2", 60}, {"132.0.1", 40}}},
		{"HP Support Assistant", "HP Inc.", 150, 296_747_008, v1("9.38.40.0")},
		{"Microsoft Power BI Desktop (x64)", "Microsoft Corporation", 120, 1_610_612_736, v1("2.138.1203.0")},
		{"Git", "The Git Development Community", 100, 356_515_840, v1("2.47.0.2")},
		{"Python 3.12.7 (64-bit)", "Python Software Foundation", 80, 106_954_752, v1("3.12.7150.0")},
		{"Visual Studio Enterprise 2022", "Microsoft Corporation", 50, 6_442_450_944, v1("17.11.5")},
	},
	osMacOS: {
		{"Company Portal", "Microsoft Corporation", 990, 118_489_088, []coreVersion{{"5.2411.0", 70}, {"5.2410.1", 30}}},
		{"Safari", "Apple Inc.", 990, 213_909_504, []coreVersion{{"18.1.1", 60}, {"18.1", 40}}},
		{"Microsoft Defender", "Microsoft Corporation", 950, 402_653_184, v1("101.24092.0004")},
		{"Microsoft Edge", "Microsoft Corporation", 930, 1_073_741_824, []coreVersion{{"131.0.2903.86", 65}, {"131.0.2903.70", 35}}},
		{"Microsoft Outlook", "Microsoft Corporation", 920, 2_254_857_830, []coreVersion{{"16.91", 60}, {"16.90", 40}}},
		{"Microsoft Word", "Microsoft Corporation", 900, 2_684_354_560, []coreVersion{{"16.91", 60}, {"16.90", 40}}},
		{"Microsoft Excel", "Microsoft Corporation", 890, 2_147_483_648, []coreVersion{{"16.91", 60}, {"16.90", 40}}},
		{"Microsoft Teams", "Microsoft Corporation", 880, 629_145_600, v1("24295.605.3225.8804")},
		{"OneDrive", "Microsoft Corporation", 860, 377_487_360, v1("24.226.1110")},
		{"Microsoft PowerPoint", "Microsoft Corporation", 850, 2_040_109_465, []coreVersion{{"16.91", 60}, {"16.90", 40}}},
		{"Keynote", "Apple Inc.", 700, 713_031_680, v1("14.2")},
		{"Google Chrome", "Google LLC", 600, 1_288_490_188, []coreVersion{{"131.0.6778.86", 60}, {"131.0.6778.70", 40}}},
		{"Slack", "Slack Technologies, LLC", 400, 377_487_360, v1("4.41.105")},
		{"zoom.us", "Zoom Communications, Inc.", 350, 335_544_320, v1("6.2.11")},
	},
	osIOS: {
		{"Microsoft Authenticator", "Microsoft Corporation", 950, 198_180_864, []coreVersion{{"6.8.20", 70}, {"6.8.19", 30}}},
		{"Microsoft Outlook", "Microsoft Corporation", 900, 351_272_960, []coreVersion{{"4.2446.1", 60}, {"4.2445.0", 40}}},
		{"Microsoft Teams", "Microsoft Corporation", 850, 272_629_760, v1("6.25.1")},
		{"Company Portal", "Microsoft Corporation", 800, 99_614_720, v1("5.2411.0")},
		{"Microsoft Edge", "Microsoft Corporation", 600, 324_009_984, v1("131.2903.70")},
		{"OneDrive", "Microsoft Corporation", 500, 241_172_480, v1("15.22.2")},
		{"Microsoft Word", "Microsoft Corporation", 400, 367_001_600, v1("2.91")},
		{"Microsoft Excel", "Microsoft Corporation", 350, 398_458_880, v1("2.91")},
		{"Zoom Workplace", "Zoom Communications, Inc.", 250, 146_800_640, v1("6.2.11")},
		{"Slack", "Slack Technologies, LLC", 200, 183_500_800, v1("24.11.10")},
	},
	osAndroid: {
		{"Intune", "Microsoft Corporation", 980, 104_857_600, v1("24.11.0")},
		{"Microsoft Authenticator", "Microsoft Corporation", 950, 136_314_880, []coreVersion{{"6.2411.7458", 70}, {"6.2410.7020", 30}}},
		{"Company Portal", "Microsoft Corporation", 940, 94_371_840, v1("5.0.6412.0")},
		{"Outlook", "Microsoft Corporation", 900, 283_115_520, []coreVersion{{"4.2445.1", 60}, {"4.2444.2", 40}}},
		{"Microsoft Teams", "Microsoft Corporation", 850, 335_544_320, v1("1416/1.0.0.2024223501")},
		{"Microsoft Edge", "Microsoft Corporation", 600, 419_430_400, v1("131.0.2903.87")},
		{"Chrome", "Google LLC", 550, 377_487_360, v1("131.0.6778.81")},
		{"Microsoft Launcher", "Microsoft Corporation", 300, 73_400_320, v1("6.241003.0.1162318")},
		{"Zoom Workplace", "Zoom Communications, Inc.", 200, 262_144_000, v1("6.2.11.25084")},
	},
}

// Publishers of the generated apps, a few with the commas and quotes a CSV
// or JSON writer must escape.
var appPublishers = []string{
	"Contoso Ltd.", "Fabrikam, Inc.", "Northwind Traders", "Adventure Works Cycles", "Tailspin Toys",
	"Wide World Importers", "Litware, Inc.", "Proseware, Inc.", "Fourth Coffee", "Woodgrove Bank",
	"Dell Inc.", "HP Inc.", "Lenovo Group Ltd.", "Intel Corporation", "NVIDIA Corporation",
	"Realtek Semiconductor Corp.", "Logitech", "Oracle Corporation", "JetBrains s.r.o.", "Adobe",
	"Autodesk, Inc.", "Citrix Systems, Inc.", "VMware, Inc.", "Docker Inc.", "Postman, Inc.",
	"The Document Foundation", "VideoLAN", "Igor Pavlov", "Tableau Software", "SAP SE",
	"Bluebeam, Inc.", "TechSmith Corporation", "Cisco Systems, Inc.", "Fortinet Inc.", "Palo Alto Networks",
	"Microsoft Corporation", "Microsoft Corporation", "Microsoft Corporation", "Google LLC", "",
	`Blue Yonder "Labs"`, "Société Générale Outils", "株式会社コントソ", "Zoë Software",
}

var appNamePrefixes = []string{
	"Smart", "Secure", "Cloud", "Easy", "Quick", "Data", "Net", "Power", "Print", "Scan",
	"Sync", "Visual", "Remote", "Open", "Micro", "Info", "Flex", "Global", "Field", "Time",
}

var appNameNouns = []string{
	"Viewer", "Manager", "Assistant", "Studio", "Connector", "Agent", "Toolkit", "Client", "Suite", "Editor",
	"Monitor", "Helper", "Runtime", "Driver", "Utility", "Launcher", "Updater", "Explorer", "Workspace", "Designer",
}

var appNameSuffixes = [osCount][]string{
	osWindows: {"", "", " (x64)", " (x86)", " 2022", " 2024", " Plus", " SDK", " - en-us", " Add-in for Outlook"},
	osMacOS:   {"", "", " for Mac", " Helper", " Pro"},
	osIOS:     {"", "", " Mobile", " Go", " for Intune"},
	osAndroid: {"", "", " Mobile", " Go", " for Intune"},
}
