package graphsim

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ManagedIdentityPath is the token endpoint of the Azure Instance Metadata
// Service (IMDS), served on the simulator's own address.
const ManagedIdentityPath = "/metadata/identity/oauth2/token"

// DefaultManagedIdentityClientID is the client id the managed identity
// endpoint reports when Config.ManagedIdentityClientID is not set and the
// request names none.
const DefaultManagedIdentityClientID = "33333333-3333-3333-3333-333333333333"

// imdsErrorBody is the error shape of IMDS' identity endpoint: Entra's
// error and description, no codes or ids.
type imdsErrorBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// imdsTokenBody is IMDS' token answer, every value a string, in the order
// Microsoft's documentation shows.
type imdsTokenBody struct {
	AccessToken  string `json:"access_token"`
	ClientID     string `json:"client_id"`
	ExpiresIn    string `json:"expires_in"`
	ExpiresOn    string `json:"expires_on"`
	ExtExpiresIn string `json:"ext_expires_in"`
	NotBefore    string `json:"not_before"`
	Resource     string `json:"resource"`
	TokenType    string `json:"token_type"`
}

func imdsError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, "application/json; charset=utf-8", imdsErrorBody{Error: code, Description: description})
}

// serveManagedIdentity answers GET /metadata/identity/oauth2/token as IMDS
// does (api-version 2018-02-01): Metadata: true, api-version and resource
// required, client_id optional. Token outages apply here too.
func (s *Server) serveManagedIdentity(w *exchange, r *http.Request) {
	n := s.tokenRequests.Add(1)
	h := w.Header()
	h.Set("Date", httpDate(s.now()))

	if n <= int64(s.cfg.TokenOutage) {
		s.faultsInjected.Add(1)
		status := s.cfg.TokenOutageStatus
		w.fault = FaultKind(strconv.Itoa(status))
		if status == http.StatusTooManyRequests {
			h.Set("Retry-After", "1")
			imdsError(w, status, "too_many_requests", "Too many requests. Please retry later.")
			return
		}
		imdsError(w, status, "temporarily_unavailable", "A transient error has occurred. Please retry later.")
		return
	}
	if r.Method != http.MethodGet {
		h.Set("Allow", http.MethodGet)
		imdsError(w, http.StatusMethodNotAllowed, "invalid_request", "Only GET requests are supported.")
		return
	}
	// IMDS refuses what came through a proxy.
	if r.Header.Get("X-Forwarded-For") != "" {
		imdsError(w, http.StatusBadRequest, "invalid_request", "Requests with an X-Forwarded-For header are not accepted.")
		return
	}
	if r.Header.Get("Metadata") != "true" {
		imdsError(w, http.StatusBadRequest, "invalid_request", "Required metadata header not specified")
		return
	}
	q := r.URL.Query()
	if q.Get("api-version") == "" {
		imdsError(w, http.StatusBadRequest, "invalid_request", "Required query variable 'api-version' is missing")
		return
	}
	resource := q.Get("resource")
	if resource == "" {
		imdsError(w, http.StatusBadRequest, "invalid_request", "Required audience parameter not specified")
		return
	}
	if strings.TrimRight(resource, "/") != s.cfg.ScopeHost {
		// IMDS passes Entra's refusal on.
		imdsError(w, http.StatusBadRequest, "invalid_resource",
			"AADSTS500011: The resource principal named "+resource+" was not found in the tenant named "+s.cfg.TenantID+
				". This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. "+
				"You might have sent your authentication request to the wrong tenant.")
		return
	}
	clientID := q.Get("client_id")
	if want := s.cfg.ManagedIdentityClientID; want != "" {
		if clientID != "" && !strings.EqualFold(clientID, want) {
			imdsError(w, http.StatusBadRequest, "invalid_request", "Identity not found")
			return
		}
		clientID = want
	}
	if clientID == "" {
		clientID = DefaultManagedIdentityClientID
	}

	token := s.issueTokenFor(clientID)
	now := s.now()
	expiresIn := strconv.FormatInt(max(int64(s.cfg.TokenLifetime/time.Second)-1, 0), 10)
	writeJSON(w, http.StatusOK, "application/json; charset=utf-8", imdsTokenBody{
		AccessToken:  token,
		ClientID:     clientID,
		ExpiresIn:    expiresIn,
		ExpiresOn:    strconv.FormatInt(now.Add(s.cfg.TokenLifetime).Unix(), 10),
		ExtExpiresIn: expiresIn,
		NotBefore:    strconv.FormatInt(now.Unix(), 10),
		Resource:     resource,
		TokenType:    "Bearer",
	})
}
