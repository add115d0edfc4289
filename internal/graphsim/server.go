package graphsim

import (
	"crypto/x509"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes the simulated tenant. The zero value is a valid, empty
// tenant; New fills in the defaults documented on each field.
type Config struct {
	Devices       int           // number of devices in the tenant
	Seed          int64         // deterministic generation: same seed, same bytes
	PageSize      int           // page size when the request has no $top (0 => 1000, Intune's default)
	Latency       time.Duration // added before answering each page of a Graph collection (managedDevices, detectedApps and their relationships), each single-device GET, and once per $batch
	TenantID      string        // default "00000000-0000-0000-0000-0000000000aa"
	ClientID      string        // default "11111111-1111-1111-1111-111111111111"
	ClientSecret  string        // default "graphsim-secret"
	ScopeHost     string        // default "https://graph.microsoft.com"; the scope must be ScopeHost+"/.default"
	Forbidden     bool          // the app lacks DeviceManagementManagedDevices.Read.All (and the permissions of intune.go's collections): managedDevices answers Intune's nested 403
	TokenLifetime time.Duration // lifetime of issued tokens, default 1h (expires_in is one second less)

	// Credentials besides ClientSecret (see assertion.go and
	// managedidentity.go); each works for Graph like a secret.
	//
	// ClientCertificate, when set, is registered on the app: a
	// client_assertion (jwt-bearer) signed by its key, naming it by x5t#S256
	// or x5t, is accepted.
	ClientCertificate *x509.Certificate
	// FederatedToken, when set, is the one federated assertion accepted
	// (workload identity federation): a client_assertion equal to it.
	FederatedToken string
	// ManagedIdentityClientID, when set, is the client id of the managed
	// identity that GET /metadata/identity/oauth2/token serves: a request
	// naming another client_id is refused. Unset, any is accepted.
	ManagedIdentityClientID string

	// Misbehaviour, for testing clients (see faults.go).
	Faults            []Fault // scripted faults of managedDevices responses (and, by Fault.Resource, of intune.go's lists); SetFaults replaces them; New panics on an invalid one
	TokenOutage       int     // the first TokenOutage token requests fail with TokenOutageStatus and Entra's error body
	TokenOutageStatus int     // 503 (default) or 429, which comes with Retry-After: 1; other statuses are sent as given with 503's body
	// TokenEnforcedLifetime, when positive, makes Graph refuse tokens older
	// than it while expires_in still announces TokenLifetime: tokens that
	// expire early, as revocation or clock skew make them.
	TokenEnforcedLifetime time.Duration

	// Single-device GETs and $batch (entity.go, batch.go).
	//
	// GoneOnGet and GoneOnGetEvery make devices "vanish": listings still
	// show them, but a single-device GET (direct or inside a $batch)
	// answers 404, as for a device deleted between the list and the GET.
	// GoneOnGet names them by index; GoneOnGetEvery N > 0 adds every
	// index i with i%N == N-1 (the Nth, the 2Nth, ...).
	GoneOnGet      []int
	GoneOnGetEvery int
	// StallDetailsAfter, when positive, lets that many single-device GETs
	// that find their device be answered and makes every later one hang
	// until the client gives up or the stall is cleared
	// (SetStallDetailsAfter, POST /_graphsim/details): a crash test's way
	// to stop a client in the middle of fetching details.
	StallDetailsAfter int

	// ExtraProperties are added to every device of both versions after
	// Graph's own properties (see ExtraProperty); New panics on a value that
	// is not JSON.
	ExtraProperties []ExtraProperty

	// Detected apps, the software inventory (apps.go). The zero value has
	// none: detectedApps lists nothing.
	//
	// DetectedApps is the number of distinct detectedApps, (name, version)
	// pairs, in the tenant; each is on at least one device of
	// Config.Devices (none without devices).
	DetectedApps int
	// AppsPerDevice is the mean number of apps on a Windows device (macOS
	// devices hold 45% of it, iOS a fifth, Android a sixth); 0 => 150
	// (DefaultAppsPerDevice) when DetectedApps > 0.
	AppsPerDevice int
	// AppPageSize is the page size of detectedApps and of its
	// relationships when the request has no $top; 0 => 1000
	// (DefaultAppPageSize).
	AppPageSize int

	// IntunePageSize is the page size of the policy, enrollment and app
	// collections (intune.go: deviceCategories, deviceCompliancePolicies,
	// deviceConfigurations, configurationPolicies,
	// windowsAutopilotDeviceIdentities, mobileApps, their assignments and
	// deviceStatuses) when the request has no $top; 0 => 1000
	// (DefaultIntunePageSize).
	IntunePageSize int

	// Throttle is Graph's request budget per app (throttle.go), charged
	// by every Graph request; the zero value is off. IntuneThrottle is the
	// documented one.
	Throttle Throttle

	// Export jobs (export.go).
	//
	// ReadWrite: the app holds DeviceManagementManagedDevices.ReadWrite.All,
	// without which creating an export job is refused with Intune's 403.
	ReadWrite bool
	// An export job completes at the first poll that comes ExportDelay or
	// more after its creation and after ExportPolls polls that answered it
	// was in progress (both 0: the first poll finds it completed).
	ExportDelay time.Duration
	ExportPolls int
	// StorageURL is the base URL ("http://127.0.0.1:9091") at which the
	// caller serves StorageHandler, the storage host that completed jobs'
	// download links name. Empty, the Server starts a loopback listener
	// of its own for it when the first job completes; Close stops it.
	StorageURL string
}

// Defaults filled in by New.
const (
	DefaultTenantID     = "00000000-0000-0000-0000-0000000000aa"
	DefaultClientID     = "11111111-1111-1111-1111-111111111111"
	DefaultClientSecret = "graphsim-secret"
	DefaultScopeHost    = "https://graph.microsoft.com"
	DefaultPageSize     = 1000
)

// Stats counts what the simulator has answered. PagesServed counts whole,
// well-formed pages: not the truncated or malformed ones of faults.
type Stats struct {
	TokenRequests, TokensIssued, PageRequests, PagesServed int64
	BadRequests                                            int64 // Graph 400 answers
	FaultsInjected                                         int64 // scripted faults applied, token outages included
	// AppPageRequests and AppPagesServed count, like PageRequests and
	// PagesServed, the pages of detectedApps and its relationships.
	AppPageRequests, AppPagesServed int64
	Throttled                       int64 // 429s of Config.Throttle (scripted 429s count in FaultsInjected)
	ExportJobs                      int64 // export jobs created
	Downloads                       int64 // exports served whole by the storage host
	// BatchRequests counts the $batch POSTs answered (200), BatchItems the
	// requests inside them. DeviceGets counts single-device GETs answered
	// 200, direct or inside a batch; DetailGets those of them whose $select
	// named at least one list-default property.
	BatchRequests, BatchItems int64
	DeviceGets, DetailGets    int64
	// IntunePageRequests and IntunePagesServed count, like PageRequests
	// and PagesServed, the pages (and single items) of the policy,
	// enrollment and app collections of intune.go.
	IntunePageRequests, IntunePagesServed int64
}

// Server is an http.Handler serving both the token endpoint and Graph. It is
// safe for concurrent use.
type Server struct {
	cfg Config
	now func() time.Time // replaced by tests that need tokens to expire

	v1Props, betaProps []property // the versions' properties, ExtraProperties included

	tokenRequests, tokensIssued atomic.Int64
	pageRequests, pagesServed   atomic.Int64
	badRequests                 atomic.Int64
	faultsInjected              atomic.Int64

	mu     sync.Mutex
	tokens map[string]tokenInfo // by access token
	issued []string             // every token, in issue order

	federated atomic.Pointer[string] // Config.FederatedToken, replaced by SetFederatedToken

	faultMu  sync.Mutex
	faults   []Fault
	attempts map[faultPage]int // page of a listing -> requests since the faults were set

	logMu    sync.Mutex
	log      []RequestRecord
	logBase  int // sequence number of log[0]
	logLimit int // maxRequestLog, lowered by tests

	mutMu  sync.Mutex                  // serialises mutations; readers never take it
	tenant atomic.Pointer[tenantState] // the mutations, replaced whole by each one

	osIndexOnce sync.Once
	osIndex     [][osCount]int32 // devices per OS per block of osBlock, built on first $filter

	appsOnce                        sync.Once
	apps                            *appIndex // the base inventory, built on first use (apps.go)
	appPageRequests, appPagesServed atomic.Int64

	throttleMu sync.Mutex
	buckets    map[string]*bucket // by tenant/client (throttle.go)
	throttled  atomic.Int64

	exports exportState // jobs and the storage host (export.go)

	intuneOnce                            sync.Once
	intune                                *intuneCatalog // the small collections of intune.go, made on first use
	intunePageRequests, intunePagesServed atomic.Int64
	autopilotOnce                         sync.Once
	autopilotBlocks                       []int32 // Autopilot-registered devices per block of osBlock (autopilot.go)

	goneOnGet                 map[int]bool // Config.GoneOnGet
	batchRequests, batchItems atomic.Int64
	deviceGets, detailGets    atomic.Int64
	fetchMu                   sync.Mutex
	fetches                   map[int]int // index -> detail GETs answered 200 (DetailFetches)
	stall                     stallState  // Config.StallDetailsAfter (entity.go)
	deviceFaultMu             sync.Mutex
	deviceFaults              map[int]FaultKind // SetDeviceFault (entity.go)

	// Set by NewTenants before the Server answers anything (tenants.go);
	// their zero values are a single tenant's behaviour.
	tenantTokens bool       // issue tokens that name their tenant (tid), which Tenants routes Graph requests by
	revocation   Revocation // the tenant's admin took the app away: the token endpoint refuses it
}

// SetFederatedToken replaces the federated token accepted as client
// assertion ("" accepts none), as a token issuer's rotation does: the old
// one is refused from now on.
func (s *Server) SetFederatedToken(token string) { s.federated.Store(&token) }

// New returns a simulator for cfg.
func New(cfg Config) *Server {
	if cfg.Devices < 0 {
		cfg.Devices = 0
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.TenantID == "" {
		cfg.TenantID = DefaultTenantID
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.ClientSecret == "" {
		cfg.ClientSecret = DefaultClientSecret
	}
	if cfg.ScopeHost == "" {
		cfg.ScopeHost = DefaultScopeHost
	}
	cfg.ScopeHost = strings.TrimRight(cfg.ScopeHost, "/")
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = time.Hour
	}
	if cfg.DetectedApps < 0 {
		cfg.DetectedApps = 0
	}
	if cfg.AppsPerDevice <= 0 && cfg.DetectedApps > 0 {
		cfg.AppsPerDevice = DefaultAppsPerDevice
	}
	if cfg.AppPageSize <= 0 {
		cfg.AppPageSize = DefaultAppPageSize
	}
	if cfg.IntunePageSize <= 0 {
		cfg.IntunePageSize = DefaultIntunePageSize
	}
	if !cfg.Throttle.enabled() {
		cfg.Throttle = Throttle{}
	}
	cfg.StorageURL = strings.TrimRight(cfg.StorageURL, "/")
	if cfg.TokenOutageStatus == 0 {
		cfg.TokenOutageStatus = http.StatusServiceUnavailable
	}
	for _, e := range cfg.ExtraProperties {
		if err := e.validate(); err != nil {
			panic("graphsim: " + err.Error())
		}
	}
	s := &Server{cfg: cfg, now: time.Now, tokens: make(map[string]tokenInfo), logLimit: maxRequestLog, buckets: make(map[string]*bucket)}
	s.exports.init()
	s.v1Props = withExtras(v1Properties, cfg.ExtraProperties)
	s.betaProps = withExtras(betaProperties, cfg.ExtraProperties)
	s.SetFaults(cfg.Faults)
	s.SetFederatedToken(cfg.FederatedToken)
	s.tenant.Store(&tenantState{devices: cfg.Devices, appCell: &appViewCell{}})
	s.goneOnGet = make(map[int]bool, len(cfg.GoneOnGet))
	for _, i := range cfg.GoneOnGet {
		s.goneOnGet[i] = true
	}
	s.fetches = make(map[int]int)
	s.SetStallDetailsAfter(cfg.StallDetailsAfter)
	return s
}

// Config returns the configuration with defaults filled in.
func (s *Server) Config() Config { return s.cfg }

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		TokenRequests: s.tokenRequests.Load(),
		TokensIssued:  s.tokensIssued.Load(),
		PageRequests:  s.pageRequests.Load(),
		PagesServed:   s.pagesServed.Load(),
		BadRequests:   s.badRequests.Load(),

		FaultsInjected: s.faultsInjected.Load(),

		AppPageRequests: s.appPageRequests.Load(),
		AppPagesServed:  s.appPagesServed.Load(),
		Throttled:       s.throttled.Load(),
		ExportJobs:      s.exports.created.Load(),
		Downloads:       s.exports.downloads.Load(),

		BatchRequests: s.batchRequests.Load(),
		BatchItems:    s.batchItems.Load(),
		DeviceGets:    s.deviceGets.Load(),
		DetailGets:    s.detailGets.Load(),

		IntunePageRequests: s.intunePageRequests.Load(),
		IntunePagesServed:  s.intunePagesServed.Load(),
	}
}

// IssuedTokens returns every access token issued so far, so that tests can
// check that none of them leaks into logs or errors.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// requestIDs are the ids of one exchange: ours (request-id, also Entra's
// trace id) and the client's (client-request-id, Entra's correlation id).
type requestIDs struct{ request, client string }

func newRequestIDs(r *http.Request) requestIDs {
	ids := requestIDs{request: newUUID(), client: r.Header.Get("client-request-id")}
	if ids.client == "" {
		ids.client = newUUID()
	}
	return ids
}

// ServeHTTP routes to the simulator's admin endpoints, the token endpoint,
// the managed identity endpoint or Graph.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		s.serveAdmin(w, r)
		return
	}
	x := s.arrive(w)
	defer s.depart(x)
	if strings.EqualFold(r.URL.Path, ManagedIdentityPath) {
		x.token, x.kind = true, KindToken
		s.serveManagedIdentity(x, r)
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if isTokenPath(segs) {
		x.token, x.kind = true, KindToken
		s.serveToken(x, r, segs[0])
		return
	}
	s.serveGraph(x, r, segs)
}

// isTokenPath reports whether the path's segments are those of Entra's v2
// token endpoint, {tenant}/oauth2/v2.0/token.
func isTokenPath(segs []string) bool {
	return len(segs) == 4 && strings.EqualFold(segs[1], "oauth2") && strings.EqualFold(segs[2], "v2.0") && strings.EqualFold(segs[3], "token")
}

// serveGraph answers everything that is not the token endpoint: it finds
// what the path names, charges the throttle and serves it. A $batch is
// not charged itself: each request inside it is (batch.go).
func (s *Server) serveGraph(w *exchange, r *http.Request, segs []string) {
	ids := newRequestIDs(r)
	h := w.Header()
	h.Set("request-id", ids.request)
	h.Set("client-request-id", ids.client)
	h.Set("Date", httpDate(s.now()))
	h.Set("Cache-Control", "no-cache")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"002","RoleInstance":"AM2PEPF0000A1B2"}}`)

	kind, serve := s.route(w, r, ids, segs)
	w.kind = kind
	if kind != KindBatch && !s.admit(w, r, ids) {
		return
	}
	serve()
}

// route finds the resource a Graph path names, and how to answer it. Keys
// may be given as a segment of their own or in OData's parentheses:
// managedDevices/{id} and managedDevices('{id}') are the same.
func (s *Server) route(w *exchange, r *http.Request, ids requestIDs, segs []string) (string, func()) {
	notFound := func(seg string) func() {
		return func() { s.notFoundKey(w, ids, seg) }
	}
	beta := strings.EqualFold(segs[0], "beta")
	switch {
	case !beta && !strings.EqualFold(segs[0], "v1.0"):
		return "", notFound(segs[0])
	case len(segs) < 2:
		return "", notFound(segs[0])
	case len(segs) == 2 && strings.EqualFold(segs[1], "$batch"):
		return KindBatch, func() { s.serveBatch(w, r, ids, segs[0]) }
	case !strings.EqualFold(segs[1], "deviceManagement") && !strings.EqualFold(segs[1], "deviceAppManagement"):
		return "", notFound(segs[1])
	case len(segs) < 3:
		return "", notFound(segs[1])
	}
	segs = splitKeys(segs)
	if kind, serve, ok := s.routeIntune(w, r, ids, beta, segs); ok {
		return kind, serve
	}
	if strings.EqualFold(segs[1], "deviceAppManagement") {
		return "", notFound(segs[2])
	}
	is := func(k int, name string) bool { return k < len(segs) && strings.EqualFold(segs[k], name) }
	switch {
	case is(2, "managedDevices"):
		switch {
		case len(segs) == 3:
			return KindManagedDevices, func() { s.serveCollection(w, r, ids, beta) }
		case len(segs) == 4:
			return KindManagedDevice, func() { s.serveDevice(w, r, ids, beta, segs[3]) }
		case len(segs) == 5 && is(4, "detectedApps") && !beta:
			// The relationship is beta's only: v1.0 does not know the
			// segment, which Graph answers 400, not 404.
			return KindDeviceApps, func() { s.badRequest(w, ids, "Resource not found for the segment 'detectedApps'.") }
		case len(segs) == 5 && is(4, "detectedApps"):
			return KindDeviceApps, func() { s.serveDeviceApps(w, r, ids, segs[3]) }
		}
		return "", notFound(segs[3])
	case is(2, "detectedApps"):
		switch {
		case len(segs) == 3:
			return KindDetectedApps, func() { s.serveDetectedApps(w, r, ids, beta) }
		case len(segs) == 4:
			return KindDetectedApp, func() { s.serveDetectedApp(w, r, ids, beta, segs[3]) }
		case len(segs) == 5 && is(4, "managedDevices"):
			return KindAppDevices, func() { s.serveAppDevices(w, r, ids, beta, segs[3]) }
		case is(4, "managedDevices"):
			return "", notFound(segs[5])
		}
		return "", notFound(segs[4])
	case is(2, "reports") && is(3, "exportJobs"):
		switch len(segs) {
		case 4:
			return KindExportJob, func() { s.serveExportJobs(w, r, ids, beta) }
		case 5:
			return KindExportJob, func() { s.serveExportJob(w, r, ids, beta, segs[4]) }
		}
		return "", notFound(segs[5])
	case is(2, "reports") && len(segs) > 3:
		return "", notFound(segs[3])
	}
	return "", notFound(segs[2])
}

// propsOf returns the properties of the version.
func (s *Server) propsOf(beta bool) []property {
	if beta {
		return s.betaProps
	}
	return s.v1Props
}

// splitKeys turns name('key') (or name(key)) segments after
// deviceManagement into two segments, name and key.
func splitKeys(segs []string) []string {
	var out []string
	for k, seg := range segs {
		open := strings.IndexByte(seg, '(')
		if k < 2 || open <= 0 || !strings.HasSuffix(seg, ")") {
			if out != nil {
				out = append(out, seg)
			}
			continue
		}
		if out == nil {
			out = append(make([]string, 0, len(segs)+2), segs[:k]...)
		}
		key := seg[open+1 : len(seg)-1]
		if len(key) >= 2 && key[0] == '\'' && key[len(key)-1] == '\'' {
			key = key[1 : len(key)-1]
		}
		out = append(out, seg[:open], key)
	}
	if out == nil {
		return segs
	}
	return out
}
