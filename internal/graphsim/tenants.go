package graphsim

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"
)

// Several tenants, as a managed service provider (MSP) reads them: one
// multi-tenant app registration (one client id, one secret or
// certificate) consented to in each customer's tenant, one token per
// tenant from {login}/{tenant}/oauth2/v2.0/token, and Graph requests with
// that tenant's token. Graph's URLs name no tenant: the token decides
// whose data a request reads (its "tid" claim).
//
// Tenants serves them all on one address. Each tenant is a Server of its
// own, with its own devices and apps (its own seed), its own throttle
// bucket (Intune's limits are per app per tenant), its own faults, token
// outages, mutations, export jobs, request log and Stats; Tenant(i)
// returns it, for a test's expected devices (DeviceID, EmittedDevice,
// ...). A token request is routed by the tenant in its path: an unknown
// tenant gets Entra's AADSTS90002, as from a Server. The tokens issued
// are JWT-shaped (header.claims.signature, unsigned) and their claims
// carry the tenant ("tid", "iss"), the app ("appid") and the audience
// ("aud"), as Entra's access tokens do; a Graph request is routed to the
// tenant its token names, and that tenant checks the token is one it
// issued (the signature part is random), so a token of tenant A reads A's
// data only, and one altered to name B is refused by B with Graph's 401.
// A request without a token, or with one naming no tenant, is answered
// as a Server answers a token it never issued (401 InvalidAuthenticationToken).
//
// Two ways a customer's tenant stops working, both seen by MSPs:
//
//   - Revoked: the tenant's administrator removed the app, and Entra
//     refuses the client credentials grant (TenantsConfig.Revocation says
//     how): deleting the enterprise application (the app's service
//     principal, which admin consent created) makes the app unknown in the
//     directory, 400 unauthorized_client AADSTS700016 "Application with
//     identifier '...' was not found in the directory '...'"; disabling it
//     gives 400 unauthorized_client AADSTS7000112 "Application
//     '{appId}'({name}) is disabled.". Both in Entra's error body (error,
//     error_description, error_codes, timestamp, trace_id,
//     correlation_id, error_uri). Sources: the AADSTS reference,
//     https://learn.microsoft.com/entra/identity-platform/reference-error-codes
//     (700016 UnauthorizedClient_DoesNotMatchRequest, 7000112
//     UnauthorizedClientApplicationDisabled); Azure.Identity's
//     troubleshooting guide ("For multi-tenant apps, ensure the
//     application has been added to the desired tenant by a tenant
//     admin", https://github.com/Azure/azure-sdk-for-net/pull/26716);
//     a client credentials 700016 with its status, HTTP 400
//     unauthorized_client,
//     https://github.com/microsoftgraph/msgraph-sdk-powershell/issues/2439;
//     7000112 as unauthorized_client,
//     https://github.com/Worklytics/psoxy/pull/74. AADSTS65001
//     (invalid_grant, consent_required) is the delegated flows' answer
//     and not simulated: the client credentials grant has no user to ask.
//   - Forbidden: the token is issued but carries no permission, as when
//     the administrator revoked the app's permissions (its app role
//     assignments) while leaving the enterprise application: Entra still
//     issues app-only tokens without a "roles" claim
//     (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
//     "Controlling tokens without the roles claim"). Intune then refuses
//     every deviceManagement request with its nested 403 (Config.Forbidden,
//     without Config.ReadWrite): Graph's error body, code "Forbidden",
//     message Intune's JSON document "Application is not authorized to
//     perform this operation. Application must have one of the following
//     scopes: DeviceManagementManagedDevices.Read.All, ...", innerError
//     with date, request-id and client-request-id, as a real tenant
//     answered in https://github.com/mondoohq/cnspec/issues/1708. This
//     holds for the managedDevices list, a device's GET, detectedApps and
//     its relationships, export jobs (whose creation quotes the ReadWrite
//     scopes) and every such request inside a $batch, which itself still
//     answers 200 with each request's 403 inside, as Graph does.
//
// The managed identity endpoint (IMDS) serves tenant 0: a managed
// identity belongs to the tenant of its Azure resource.
//
// Over HTTP (admin.go's endpoints, for a simulator in another process):
//
//	GET  /_graphsim/tenants                      -> [{"index":0,"id":"...","revoked":"","forbidden":false}, ...]
//	POST /_graphsim/tenants/{id or index}/mutate  (and faults, details, stats): that tenant's admin endpoint
//	GET  /_graphsim/stats                        -> the Stats of all tenants added up
type Tenants struct {
	cfg       TenantsConfig
	tenants   []*Server
	ids       []string
	byID      map[string]int // lower-case tenant id -> index
	byStorage map[string]int // blob container -> index
	revoked   map[int]bool
	forbidden map[int]bool
	// none answers what names no tenant: token requests for an unknown
	// tenant (AADSTS90002) and Graph requests whose token names none
	// (401). Its tenant id has a '/', which no path segment can hold.
	none *Server
}

// TenantsConfig describes the tenants of NewTenants.
type TenantsConfig struct {
	Count int // tenants to simulate, at least 1
	// Base is each tenant's configuration: devices, page size, latency,
	// throttle, apps, faults, credentials (the app is the same
	// everywhere). Tenant i gets Seed Base.Seed+i, so that each tenant has
	// devices and apps of its own, and the i-th of TenantIDs as TenantID
	// (Base.TenantID is not used).
	Base Config
	// Devices, when set, gives tenant i Devices[i] devices instead of
	// Base.Devices (tenants past its end keep Base.Devices).
	Devices []int
	// Revoked are the indexes of tenants whose administrator removed the
	// app: their token endpoint refuses it, as Revocation says.
	Revoked []int
	// Revocation is how the Revoked tenants' administrators removed the
	// app; "" is RevocationDeleted.
	Revocation Revocation
	// Forbidden are the indexes of tenants whose tokens are issued
	// without permissions: Graph answers every deviceManagement request
	// with Intune's 403 (their Config.Forbidden is set, Config.ReadWrite
	// cleared). A tenant is not both revoked and forbidden.
	Forbidden []int
}

// Revocation is how a tenant's administrator took an app away, which
// decides what Entra's token endpoint answers it (see Tenants).
type Revocation string

const (
	// RevocationDeleted: the enterprise application (the app's service
	// principal in the tenant) was deleted, which removes the admin
	// consent with it: 400 unauthorized_client, AADSTS700016.
	RevocationDeleted Revocation = "deleted"
	// RevocationDisabled: the enterprise application was disabled
	// ("Enabled for users to sign in?" set to No): 400
	// unauthorized_client, AADSTS7000112.
	RevocationDisabled Revocation = "disabled"
)

// AppDisplayName is the app's name in Entra's messages that quote it
// (AADSTS7000112).
const AppDisplayName = "intune-benthos"

// ParseRevocation reads "deleted" or "disabled"; "" is RevocationDeleted.
func ParseRevocation(s string) (Revocation, error) {
	switch r := Revocation(s); r {
	case "":
		return RevocationDeleted, nil
	case RevocationDeleted, RevocationDisabled:
		return r, nil
	}
	return "", fmt.Errorf("revocation %q: want %s or %s", s, RevocationDeleted, RevocationDisabled)
}

// TenantID returns the id of the i-th tenant of a Tenants: a version 4
// GUID whose last group is i, the rest a function of i alone (not of the
// seed), so a file of tenant ids serves any seed.
func TenantID(i int) string { return string(appendIndexedGUID(nil, 0, i, saltTenant)) }

// saltTenant draws the tenant ids.
const saltTenant = 0x7e7a7e7a

// NewTenants returns a simulator of cfg.Count tenants. It generates no
// data: like a Server's, each tenant's devices are written as they are
// served, and its apps indexed on first use.
func NewTenants(cfg TenantsConfig) (*Tenants, error) {
	if cfg.Count < 1 {
		return nil, fmt.Errorf("tenants: count %d, want at least 1", cfg.Count)
	}
	if len(cfg.Devices) > cfg.Count {
		return nil, fmt.Errorf("tenants: %d device counts for %d tenants", len(cfg.Devices), cfg.Count)
	}
	for i, n := range cfg.Devices {
		if n < 0 {
			return nil, fmt.Errorf("tenants: tenant %d has %d devices", i, n)
		}
	}
	r, err := ParseRevocation(string(cfg.Revocation))
	if err != nil {
		return nil, fmt.Errorf("tenants: %w", err)
	}
	cfg.Revocation = r
	// What New would panic on is an error here.
	for _, f := range cfg.Base.Faults {
		if err := f.Validate(); err != nil {
			return nil, fmt.Errorf("tenants: %w", err)
		}
	}
	for _, e := range cfg.Base.ExtraProperties {
		if err := e.validate(); err != nil {
			return nil, fmt.Errorf("tenants: %w", err)
		}
	}
	t := &Tenants{
		cfg:       cfg,
		byID:      make(map[string]int, cfg.Count),
		byStorage: make(map[string]int, cfg.Count),
	}
	if t.revoked, err = indexSet("revoked", cfg.Revoked, cfg.Count); err != nil {
		return nil, err
	}
	if t.forbidden, err = indexSet("forbidden", cfg.Forbidden, cfg.Count); err != nil {
		return nil, err
	}
	for i := range t.revoked {
		if t.forbidden[i] {
			return nil, fmt.Errorf("tenants: tenant %d is both revoked and forbidden", i)
		}
	}
	for i := range cfg.Count {
		c := cfg.Base
		c.TenantID = TenantID(i)
		c.Seed = cfg.Base.Seed + int64(i)
		if i < len(cfg.Devices) {
			c.Devices = cfg.Devices[i]
		}
		if t.forbidden[i] {
			c.Forbidden, c.ReadWrite = true, false
		}
		s := New(c)
		s.tenantTokens = true
		if t.revoked[i] {
			s.revocation = cfg.Revocation
		}
		t.tenants = append(t.tenants, s)
		t.ids = append(t.ids, c.TenantID)
		t.byID[strings.ToLower(c.TenantID)] = i
		t.byStorage[s.exports.container] = i
	}
	b := cfg.Base
	t.none = New(Config{
		TenantID: "/", ClientID: b.ClientID, ClientSecret: b.ClientSecret, ScopeHost: b.ScopeHost,
		StorageURL: b.StorageURL,
	})
	return t, nil
}

// indexSet checks tenant indexes and returns them as a set.
func indexSet(name string, indexes []int, count int) (map[int]bool, error) {
	set := make(map[int]bool, len(indexes))
	for _, i := range indexes {
		if i < 0 || i >= count {
			return nil, fmt.Errorf("tenants: %s tenant %d: no such tenant (indexes 0..%d)", name, i, count-1)
		}
		set[i] = true
	}
	return set, nil
}

// Len returns the number of tenants.
func (t *Tenants) Len() int { return len(t.tenants) }

// TenantIDs returns the tenants' ids in index order.
func (t *Tenants) TenantIDs() []string { return append([]string(nil), t.ids...) }

// Tenant returns the i-th tenant's simulator, for its ground truth
// (DeviceID, EmittedDevice, DetectedApps, ...), its Stats and Requests,
// and its mutations and faults. It panics if there is no tenant i.
func (t *Tenants) Tenant(i int) *Server { return t.tenants[i] }

// Index returns the index of the tenant with the given id (any case).
func (t *Tenants) Index(tenantID string) (int, bool) {
	i, ok := t.byID[strings.ToLower(tenantID)]
	return i, ok
}

// Revoked reports whether tenant i's administrator removed the app.
func (t *Tenants) Revoked(i int) bool { return t.revoked[i] }

// Forbidden reports whether tenant i's tokens carry no permission.
func (t *Tenants) Forbidden(i int) bool { return t.forbidden[i] }

// Revocation returns how the revoked tenants removed the app.
func (t *Tenants) Revocation() Revocation { return t.cfg.Revocation }

// Stats returns the counters of all tenants added up, with the requests
// that named no tenant (their token requests count as TokenRequests).
func (t *Tenants) Stats() Stats {
	var sum Stats
	add := func(s Stats) {
		a, b := reflect.ValueOf(&sum).Elem(), reflect.ValueOf(s)
		for k := range a.NumField() {
			a.Field(k).SetInt(a.Field(k).Int() + b.Field(k).Int())
		}
	}
	for _, s := range t.tenants {
		add(s.Stats())
	}
	add(t.none.Stats())
	return sum
}

// Close stops the storage listeners the tenants started, if they did.
func (t *Tenants) Close() error {
	var first error
	for _, s := range append(t.tenants, t.none) {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// ServeHTTP routes a request to its tenant: a token request by the tenant
// in its path, a Graph request by the tenant its token names.
func (t *Tenants) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch path := r.URL.Path; {
	case strings.HasPrefix(path, adminPrefix):
		t.serveAdmin(w, r)
	case strings.EqualFold(path, ManagedIdentityPath):
		t.tenants[0].ServeHTTP(w, r)
	default:
		tenant := tokenTenant(bearer(r))
		if segs := strings.Split(strings.Trim(path, "/"), "/"); isTokenPath(segs) {
			tenant = segs[0]
		}
		i, ok := t.Index(tenant)
		if !ok {
			t.none.ServeHTTP(w, r)
			return
		}
		t.tenants[i].ServeHTTP(w, r)
	}
}

// StorageHandler serves the storage host of every tenant's exports: a
// download link names its tenant's blob container. Set
// Base.StorageURL to where it is served; without it, each tenant starts a
// listener of its own for its exports, as a Server does.
func (t *Tenants) StorageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		container, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		if i, ok := t.byStorage[container]; ok {
			t.tenants[i].StorageHandler().ServeHTTP(w, r)
			return
		}
		t.none.StorageHandler().ServeHTTP(w, r) // BlobNotFound
	})
}

// tenantSummary is a tenant as GET /_graphsim/tenants lists it.
type tenantSummary struct {
	Index     int        `json:"index"`
	ID        string     `json:"id"`
	Revoked   Revocation `json:"revoked"` // "" unless revoked
	Forbidden bool       `json:"forbidden"`
}

func (t *Tenants) serveAdmin(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path[len(adminPrefix):]
	switch {
	case path == "tenants" || path == "stats":
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			adminError(w, http.StatusMethodNotAllowed, r.URL.Path+" takes GET")
			return
		}
		if path == "stats" {
			writeJSON(w, http.StatusOK, "application/json", t.Stats())
			return
		}
		list := make([]tenantSummary, len(t.ids))
		for i, id := range t.ids {
			list[i] = tenantSummary{Index: i, ID: id, Forbidden: t.forbidden[i]}
			if t.revoked[i] {
				list[i].Revoked = t.cfg.Revocation
			}
		}
		writeJSON(w, http.StatusOK, "application/json", list)
		return
	case strings.HasPrefix(path, "tenants/"):
		tenant, endpoint, _ := strings.Cut(path[len("tenants/"):], "/")
		i, ok := t.Index(tenant)
		if n, err := strconv.Atoi(tenant); err == nil && n >= 0 && n < len(t.tenants) {
			i, ok = n, true
		}
		if !ok {
			adminError(w, http.StatusNotFound, "no tenant "+strconv.Quote(tenant)+" (want a tenant id or an index 0.."+strconv.Itoa(len(t.tenants)-1)+")")
			return
		}
		t.tenants[i].serveAdminAt(w, r, endpoint)
		return
	}
	adminError(w, http.StatusNotFound, "unknown admin endpoint "+strconv.Quote(r.URL.Path)+
		" (want /_graphsim/tenants, /_graphsim/stats or /_graphsim/tenants/{tenant}/{mutate,faults,details,stats})")
}

// tenantTokenHeader is the JOSE header of the tokens Tenants issue,
// {"typ":"JWT","alg":"none"}: they are not signed (graphsim remembers
// the tokens it issued instead), and begin with "eyJ0eXAi" as every
// token graphsim issues does.
var tenantTokenHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"none"}`))

// tokenClaims are the claims of a tenant's token that routing reads,
// named as in Entra's v1 access tokens (which Graph's are).
type tokenClaims struct {
	Aud   string `json:"aud"`
	Iss   string `json:"iss"`
	AppID string `json:"appid"`
	Tid   string `json:"tid"`
}

// tenantToken makes a token of tenant for client: header, claims and the
// random bytes as signature.
func tenantToken(scopeHost, tenant, client string, random []byte) string {
	claims, err := json.Marshal(tokenClaims{Aud: scopeHost, Iss: "https://sts.windows.net/" + tenant + "/", AppID: client, Tid: tenant})
	if err != nil {
		panic("graphsim: " + err.Error()) // strings only
	}
	return tenantTokenHeader + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + base64.RawURLEncoding.EncodeToString(random)
}

// tokenTenant returns the tenant a token's claims name, "" for a token
// that is not a tenant's.
func tokenTenant(token string) string {
	header, rest, ok := strings.Cut(token, ".")
	if !ok || header != tenantTokenHeader {
		return ""
	}
	claims, _, ok := strings.Cut(rest, ".")
	if !ok {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(claims)
	if err != nil {
		return ""
	}
	var c tokenClaims
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	return c.Tid
}
