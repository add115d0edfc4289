package graphsim

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// serveToken answers POST /{tenant}/oauth2/v2.0/token, the client
// credentials grant of Entra ID v2, with Entra's error codes. The client
// authenticates with the secret, or with a client_assertion (checkAssertion)
// when the request carries one.
func (s *Server) serveToken(w *exchange, r *http.Request, tenant string) {
	n := s.tokenRequests.Add(1)
	ids := newRequestIDs(r)
	h := w.Header()
	h.Set("x-ms-request-id", ids.request)
	h.Set("client-request-id", ids.client)
	h.Set("Date", httpDate(s.now()))
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")

	if n <= int64(s.cfg.TokenOutage) {
		s.tokenOutage(w, ids)
		return
	}

	if r.Method != http.MethodPost {
		h.Set("Allow", http.MethodPost)
		s.entraError(w, ids, http.StatusMethodNotAllowed, "invalid_request", 900561,
			"The endpoint only accepts POST requests. Received a "+r.Method+" request.")
		return
	}
	if !strings.EqualFold(tenant, s.cfg.TenantID) {
		s.entraError(w, ids, http.StatusBadRequest, "invalid_request", 90002,
			"Tenant '"+tenant+"' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. "+
				"Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		s.entraError(w, ids, http.StatusBadRequest, "invalid_request", 900144,
			"The request body must contain the following parameter: 'grant_type'.")
		return
	}
	form := r.PostForm
	clientID, secret := form.Get("client_id"), form.Get("client_secret")
	// RFC 6749 client_secret_basic, which Entra accepts as well.
	if user, pass, ok := r.BasicAuth(); ok && clientID == "" {
		clientID, _ = url.QueryUnescape(user)
		secret, _ = url.QueryUnescape(pass)
	}

	if gt := form.Get("grant_type"); gt != "client_credentials" {
		s.entraError(w, ids, http.StatusBadRequest, "unsupported_grant_type", 70003,
			"The app requested an unsupported grant type '"+gt+"'.")
		return
	}
	if !strings.EqualFold(clientID, s.cfg.ClientID) || s.revocation == RevocationDeleted {
		// Also what a tenant that deleted the app's enterprise
		// application (its service principal) answers: the app is
		// unknown there (tenants.go).
		s.entraError(w, ids, http.StatusBadRequest, "unauthorized_client", 700016,
			"Application with identifier '"+clientID+"' was not found in the directory '"+s.cfg.TenantID+"'. "+
				"This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. "+
				"You may have sent your authentication request to the wrong tenant.")
		return
	}
	if s.revocation == RevocationDisabled {
		s.entraError(w, ids, http.StatusBadRequest, "unauthorized_client", 7000112,
			"Application '"+s.cfg.ClientID+"'("+AppDisplayName+") is disabled.")
		return
	}
	if form.Has("client_assertion") || form.Has("client_assertion_type") {
		if !s.checkAssertion(w, ids, r, form) {
			return
		}
	} else if secret != s.cfg.ClientSecret {
		// Never echo the secret that was sent: only the app it was meant for.
		s.entraError(w, ids, http.StatusUnauthorized, "invalid_client", 7000215,
			"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, "+
				"not the client secret ID, for a secret added to app '"+s.cfg.ClientID+"'.")
		return
	}
	if scope := form.Get("scope"); scope != s.cfg.ScopeHost+"/.default" {
		s.entraError(w, ids, http.StatusBadRequest, "invalid_scope", 1002012,
			"The provided value for scope "+scope+" is not valid. Client credential flows must have a scope value "+
				"with /.default suffixed to the resource identifier (application ID URI).")
		return
	}

	token := s.issueToken()
	expiresIn := strconv.FormatInt(max(int64(s.cfg.TokenLifetime/time.Second)-1, 0), 10)
	body := `{"token_type":"Bearer","expires_in":` + expiresIn + `,"ext_expires_in":` + expiresIn +
		`,"access_token":"` + token + `"}`
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(body))
}

// issueToken makes an opaque token of the app that looks like the start of
// a JWT, so that log scrubbers keyed on "eyJ" are exercised, and remembers
// it.
func (s *Server) issueToken() string { return s.issueTokenFor(s.cfg.ClientID) }

// issueTokenFor issues a token to the given client (application) id, which
// Graph's throttling counts requests by.
func (s *Server) issueTokenFor(client string) string {
	var b [48]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("graphsim: crypto/rand failed: " + err.Error())
	}
	token := "eyJ0eXAi" + base64.RawURLEncoding.EncodeToString(b[:])
	if s.tenantTokens {
		token = tenantToken(s.cfg.ScopeHost, s.cfg.TenantID, client, b[:])
	}
	now := s.now()
	s.mu.Lock()
	s.tokens[token] = tokenInfo{issued: now, expiry: now.Add(s.cfg.TokenLifetime), client: strings.ToLower(client)}
	s.issued = append(s.issued, token)
	s.mu.Unlock()
	s.tokensIssued.Add(1)
	return token
}

// tokenInfo is what the simulator remembers of an issued token.
type tokenInfo struct {
	issued, expiry time.Time
	revoked        bool   // by a Fault401: refused from then on
	client         string // the client id it was issued to, lower case
}

// revokedMessage is Graph's answer to a token it no longer accepts before
// its announced expiry.
const revokedMessage = "Access token has expired or is not yet valid."

// bearer returns the token of a request's Authorization header, "" if none.
func bearer(r *http.Request) string {
	scheme, token, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// authorize checks the bearer token of a Graph request, answering Graph's
// 401 when it fails.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, ids requestIDs) bool {
	token := bearer(r)
	if token == "" {
		s.graphError(w, ids, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty.")
		return false
	}
	s.mu.Lock()
	info, known := s.tokens[token]
	s.mu.Unlock()
	now := s.now()
	enforced := s.cfg.TokenEnforcedLifetime
	switch {
	case !known:
		s.graphError(w, ids, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
		return false
	case info.revoked:
		s.graphError(w, ids, http.StatusUnauthorized, "InvalidAuthenticationToken", revokedMessage)
		return false
	case !now.Before(info.expiry), enforced > 0 && now.Sub(info.issued) >= enforced:
		// An early expiry reads exactly like a normal one: the client
		// cannot tell, and must fetch a new token either way.
		s.graphError(w, ids, http.StatusUnauthorized, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
		return false
	}
	return true
}

// revoke makes Graph refuse token from now on; unknown tokens are ignored.
func (s *Server) revoke(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if info, ok := s.tokens[token]; ok {
		info.revoked = true
		s.tokens[token] = info
	}
}

// tokenOutage answers a token request during Config.TokenOutage: Entra's
// transient error, or its throttling answer when the status is 429.
func (s *Server) tokenOutage(w *exchange, ids requestIDs) {
	s.faultsInjected.Add(1)
	status := s.cfg.TokenOutageStatus
	w.fault = FaultKind(strconv.Itoa(status))
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
		s.entraError(w, ids, status, "temporarily_unavailable", 90055,
			"There are too many incoming requests. Please try again later.")
		return
	}
	s.entraError(w, ids, status, "temporarily_unavailable", 90033,
		"A transient error has occurred. Please try again.")
}
