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
	Latency       time.Duration // added before answering each managedDevices page
	TenantID      string        // default "00000000-0000-0000-0000-0000000000aa"
	ClientID      string        // default "11111111-1111-1111-1111-111111111111"
	ClientSecret  string        // default "graphsim-secret"
	ScopeHost     string        // default "https://graph.microsoft.com"; the scope must be ScopeHost+"/.default"
	Forbidden     bool          // the app lacks DeviceManagementManagedDevices.Read.All: managedDevices answers Intune's nested 403
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
	Faults            []Fault // scripted faults of managedDevices responses; SetFaults replaces them; New panics on an invalid one
	TokenOutage       int     // the first TokenOutage token requests fail with TokenOutageStatus and Entra's error body
	TokenOutageStatus int     // 503 (default) or 429, which comes with Retry-After: 1; other statuses are sent as given with 503's body
	// TokenEnforcedLifetime, when positive, makes Graph refuse tokens older
	// than it while expires_in still announces TokenLifetime: tokens that
	// expire early, as revocation or clock skew make them.
	TokenEnforcedLifetime time.Duration

	// ExtraProperties are added to every device of both versions after
	// Graph's own properties (see ExtraProperty); New panics on a value that
	// is not JSON.
	ExtraProperties []ExtraProperty
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
	attempts map[int]int // page -> requests since the faults were set

	logMu    sync.Mutex
	log      []RequestRecord
	logBase  int // sequence number of log[0]
	logLimit int // maxRequestLog, lowered by tests

	mutMu  sync.Mutex                  // serialises mutations; readers never take it
	tenant atomic.Pointer[tenantState] // the mutations, replaced whole by each one

	osIndexOnce sync.Once
	osIndex     [][osCount]int32 // devices per OS per block of osBlock, built on first $filter
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
	if cfg.TokenOutageStatus == 0 {
		cfg.TokenOutageStatus = http.StatusServiceUnavailable
	}
	for _, e := range cfg.ExtraProperties {
		if err := e.validate(); err != nil {
			panic("graphsim: " + err.Error())
		}
	}
	s := &Server{cfg: cfg, now: time.Now, tokens: make(map[string]tokenInfo), logLimit: maxRequestLog}
	s.v1Props = withExtras(v1Properties, cfg.ExtraProperties)
	s.betaProps = withExtras(betaProperties, cfg.ExtraProperties)
	s.SetFaults(cfg.Faults)
	s.SetFederatedToken(cfg.FederatedToken)
	s.tenant.Store(&tenantState{devices: cfg.Devices})
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
		x.token = true
		s.serveManagedIdentity(x, r)
		return
	}
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(segs) == 4 && strings.EqualFold(segs[1], "oauth2") && strings.EqualFold(segs[2], "v2.0") && strings.EqualFold(segs[3], "token") {
		x.token = true
		s.serveToken(x, r, segs[0])
		return
	}
	s.serveGraph(x, r, segs)
}

// serveGraph answers everything that is not the token endpoint.
func (s *Server) serveGraph(w *exchange, r *http.Request, segs []string) {
	ids := newRequestIDs(r)
	h := w.Header()
	h.Set("request-id", ids.request)
	h.Set("client-request-id", ids.client)
	h.Set("Date", httpDate(s.now()))
	h.Set("Cache-Control", "no-cache")
	h.Set("Strict-Transport-Security", "max-age=31536000")
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","ScaleUnit":"002","RoleInstance":"AM2PEPF0000A1B2"}}`)

	want := [...]string{"", "deviceManagement", "managedDevices"}
	beta := false
	for k, seg := range segs {
		ok := false
		switch {
		case k == 0:
			beta = strings.EqualFold(seg, "beta")
			ok = beta || strings.EqualFold(seg, "v1.0")
		case k < len(want):
			ok = strings.EqualFold(seg, want[k])
		}
		if !ok {
			s.graphError(w, ids, http.StatusNotFound, "ResourceNotFound", "Resource not found for the segment '"+seg+"'.")
			return
		}
	}
	if len(segs) < len(want) {
		s.graphError(w, ids, http.StatusNotFound, "ResourceNotFound", "Resource not found for the segment '"+segs[len(segs)-1]+"'.")
		return
	}
	s.serveCollection(w, r, ids, beta)
}
