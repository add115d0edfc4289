// Package graphsim simulates the Microsoft services an Intune export talks
// to: the Entra ID v2 token endpoint (client credentials) and Microsoft
// Graph's deviceManagement/managedDevices collection, in v1.0 and beta;
// with Config.DetectedApps, the software inventory too (detectedApps, an
// app's managedDevices, a device's beta detectedApps, apps.go), and the
// AppInvRawData report export with the storage host that serves it
// (export.go). Graph's per-app throttling is simulated on request
// (Config.Throttle, throttle.go). Beside them it serves Intune's
// read-only policy, enrollment and app collections (intune.go): device
// categories, compliance policies and configuration profiles with their
// assignments and per-device statuses, settings catalog policies (beta),
// Windows Autopilot device identities and mobile apps, each tenant's
// consistent with its devices, statuses and Autopilot identities written
// while a page is written like devices; CompliancePolicies,
// ComplianceDeviceStatuses, AutopilotDevices, MobileApps and their
// siblings (intunetruth.go) are their ground truth.
//
// A client authenticates with the app's secret, with a client assertion
// signed by a configured certificate's key, with a configured federated
// token, or as a managed identity through the Instance Metadata Service's
// token endpoint, which the simulator serves too (assertion.go,
// managedidentity.go). Tokens of every kind work for Graph alike.
//
// It exists for tests, benchmarks and demos, so it is deterministic (every
// device is a pure function of the seed and its index) and cheap: devices are
// generated while a page is written and never stored, so a tenant of a
// million devices costs no more memory than one of ten (apps are a
// relationship and need an index, built on first use: about 10 MB for
// 10,000 devices of 150 apps). Where Microsoft's behaviour is awkward for
// clients (the nextLink before or after "value", Int64 values above 2^53,
// Intune's JSON-in-a-string 403, keyset skip tokens) the simulator
// reproduces it on purpose.
//
// Like Graph, lists write a documented set of properties (the list-default
// ones: activationLockBypassCode, iccid, udid, notes, ethernetMacAddress,
// physicalMemoryInBytes and, in beta, hardwareInformation and
// roleScopeTagIds) at placeholder defaults; their real values, the
// "details" (details.go), come only from a single-device GET naming them
// in $select (entity.go), which clients send in JSON batches of 20
// (batch.go). Tests compare what a client stored with DeviceDetails and
// count its fetches with DetailFetches; devices can vanish between the
// list and the GET (Config.GoneOnGet) and GETs can hang for crash tests
// (SetStallDetailsAfter).
//
// For client resilience tests it misbehaves on request (faults.go): a script
// of faults by page and attempt (throttling, 5xx, HTML from a gateway, slow,
// truncated or malformed pages, a nextLink to another host, revoked tokens),
// token endpoint outages and tokens that expire before they say, with a
// log of every request (its kind, status and Retry-After included). For
// change detection tests the tenant can change between two listings
// (mutations.go): devices change, check in, disappear or enrol, their
// details change where no list shows it (ChangeDetails), and their apps
// are upgraded or uninstalled (ChangeApps). Both are also reachable
// over HTTP (admin.go), for a simulator running in another process. Tests
// compare what a client read with the ground truth: DetectedApps,
// DeviceAppPairs, and PageCounts for the requests each way of reading
// takes.
//
// Tenants (tenants.go) serves several tenants on one address, as a
// managed service provider reads its customers with one multi-tenant app:
// each tenant a Server of its own (its devices, apps, throttle bucket),
// a token request routed by the tenant in its path and a Graph request by
// the tenant its token names; some tenants can have removed the app
// (Entra refuses its tokens) or withheld its permissions (Intune's 403).
package graphsim
