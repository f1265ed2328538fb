// Package plainidtest is a fake PlainID tenant over HTTPS, like
// net/http/httptest: the client-credentials token endpoint (form-encoded or
// JSON), GET /env-mgmt/1.0/api-key/clients/{id} and the list
// GET /env-mgmt/1.0/api-key/clients?filter[ownerId]=... with Bearer tokens
// that expire, documented payloads and error bodies, and per-client faults
// from vendortest.
package plainidtest

import (
	"cmp"
	"crypto/rand"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// TokenEndpoint is the Scenarios key of the token endpoint: faults set for
// it (FailNext, Set) answer token requests, and Calls(TokenEndpoint) counts
// them. Every other key is a client ID.
const TokenEndpoint = "POST /api/1.0/api-key/token"

// ListID is the Scenarios key of list requests for ownerID (an environment
// ID, or "-" for tenant clients; a request without filter[ownerId] is
// recorded under ListID("")): list requests are recorded under it (never
// under a client ID), faults set for it (FailNext, Set) answer them, and
// Calls(ListID(ownerID)) counts them.
func ListID(ownerID string) string { return "list:" + ownerID }

// TenantOwner is the filter[ownerId] that lists tenant clients.
const TenantOwner = "-"

// Page sizes of the list endpoint, as PlainID documents them.
const (
	DefaultLimit = 50
	MaxLimit     = 50
)

// DefaultTokenLifetime is how long issued tokens live unless
// SetTokenLifetime says otherwise.
const DefaultTokenLifetime = 86400 * time.Second

// Client is one API client the fake holds, as PlainID documents it.
type Client struct {
	// ID is the client's ID (PlainID: 20 upper-case letters and digits).
	ID string
	// OwnerID is the owning environment; "" is rendered as null, and "-"
	// as "-" (both are seen for tenant clients).
	OwnerID string
	// OwnerType is ENVIRONMENT or TENANT.
	OwnerType string
	// Name and Description of the client.
	Name        string
	Description string
	// TokenDuration is the ISO-8601 lifetime of the client's tokens (PT60M).
	TokenDuration string
	// Permission is ADMIN or VIEWER.
	Permission string
	// Secret is rendered as "secret": null by default, as PlainID documents
	// for GET. Set it to prove a client never copies it anywhere.
	Secret *string
}

// Server is a fake PlainID tenant.
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS

	mu           sync.Mutex
	clientID     string
	clientSecret string
	lifetime     time.Duration
	tokens       map[string]time.Time // valid token -> expiry
	issued       []string
	clients      map[string]Client
	lists        int
}

// NewServer starts a fake tenant whose token endpoint accepts the API
// client clientID with clientSecret.
func NewServer(clientID, clientSecret string) *Server {
	s := &Server{
		clientID:     clientID,
		clientSecret: clientSecret,
		lifetime:     DefaultTokenLifetime,
		tokens:       map[string]time.Time{},
		clients:      map[string]Client{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/1.0/api-key/token", s.issueToken)
	mux.HandleFunc("GET /env-mgmt/1.0/api-key/clients/{id}", s.getClient)
	mux.HandleFunc("GET /env-mgmt/1.0/api-key/clients", s.listClients)
	s.Listen(mux)
	return s
}

// SetClientSecret changes the accepted client secret (a rotation). Tokens
// already issued stay valid until they expire.
func (s *Server) SetClientSecret(secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clientSecret = secret
}

// SetTokenLifetime sets the lifetime of tokens issued from now on; the
// answer's expires_in is d in whole seconds.
func (s *Server) SetTokenLifetime(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lifetime = d
}

// ExpireTokens invalidates every token issued so far: the next GET with
// one of them answers 401.
func (s *Server) ExpireTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = map[string]time.Time{}
}

// TokenRequests returns how many token requests arrived, answered or not.
func (s *Server) TokenRequests() int { return s.Calls(TokenEndpoint) }

// TokensIssued returns how many tokens were issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.issued)
}

// IssuedTokens returns every token issued, expired ones included, so that
// tests can prove none leaks.
func (s *Server) IssuedTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// Put adds or replaces a client.
func (s *Server) Put(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[c.ID] = c
}

// Delete removes a client: later requests get 404 clientNotFoundError.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.clients, id)
}

// ListCalls returns how many list requests arrived, for any owner,
// answered or not.
func (s *Server) ListCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// tokenRequest is the client-credentials grant, from a form or JSON body.
type tokenRequest struct {
	GrantType    string `json:"grant_type"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) {
	if f, ok := s.Record(TokenEndpoint); ok && vendortest.Apply(w, r, f, errorBody("")) {
		return
	}
	req, ok := readTokenRequest(w, r)
	switch {
	case !ok || req.ClientID == "" || req.ClientSecret == "":
		writeError(w, plainIDError{"EW20XA", http.StatusBadRequest, "invalidRequest", "client_id and client_secret are required"})
	case req.GrantType != "client_credentials":
		writeError(w, plainIDError{"EW22XA", http.StatusBadRequest, "unsupportedGrantType", "Only client_credentials is supported"})
	case !s.validCredentials(req):
		writeError(w, plainIDError{"EW21XA", http.StatusUnauthorized, "invalidClientCredentials", "Invalid client id or secret"})
	default:
		tok, lifetime := s.newToken()
		b, _ := json.Marshal(map[string]any{
			"access_token": tok, "token_type": "Bearer", "expires_in": int64(lifetime / time.Second),
		})
		vendortest.JSON(w, http.StatusOK, b)
	}
}

// readTokenRequest reads a JSON body (as PlainID's docs show) or a
// form-encoded one (as OAuth tools send).
func readTokenRequest(w http.ResponseWriter, r *http.Request) (tokenRequest, bool) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var t tokenRequest
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/json" {
		return t, json.NewDecoder(r.Body).Decode(&t) == nil
	}
	if err := r.ParseForm(); err != nil {
		return t, false
	}
	f := r.PostForm
	return tokenRequest{f.Get("grant_type"), f.Get("client_id"), f.Get("client_secret")}, true
}

func (s *Server) validCredentials(t tokenRequest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.ClientID == s.clientID && t.ClientSecret == s.clientSecret
}

func (s *Server) newToken() (string, time.Duration) {
	tok := "pid_" + rand.Text() + rand.Text()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[tok] = time.Now().Add(s.lifetime)
	s.issued = append(s.issued, tok)
	return tok, s.lifetime
}

func (s *Server) authorized(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

func (s *Server) getClient(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if f, ok := s.Record(id); ok && vendortest.Apply(w, r, f, errorBody(id)) {
		return
	}
	if !s.authorized(r) {
		writeError(w, errorFor(http.StatusUnauthorized, id))
		return
	}
	s.mu.Lock()
	c, ok := s.clients[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, errorFor(http.StatusNotFound, id))
		return
	}
	b, _ := json.Marshal(render(c))
	vendortest.JSON(w, http.StatusOK, b)
}

// listClients answers GET /env-mgmt/1.0/api-key/clients with
// filter[ownerId] (required), optional filter[name] and filter[permission]
// (exact matches), limit and offset: the owner's clients by ID, rendered as
// the GET renders them, with the total.
func (s *Server) listClients(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	owner := q.Get("filter[ownerId]")
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	if f, ok := s.Record(ListID(owner)); ok && vendortest.Apply(w, r, f, errorBody(owner)) {
		return
	}
	if !s.authorized(r) {
		writeError(w, errorFor(http.StatusUnauthorized, ""))
		return
	}
	limit, offset, bad := listWindow(q)
	if bad != nil {
		writeError(w, *bad)
		return
	}
	all := s.ownedBy(owner, q.Get("filter[name]"), q.Get("filter[permission]"))
	page := all[min(offset, len(all)):min(offset+limit, len(all))]
	data := make([]clientJSON, 0, len(page))
	for _, c := range page {
		data = append(data, render(c))
	}
	b, _ := json.Marshal(map[string]any{"data": data, "total": len(all), "limit": limit, "offset": offset})
	vendortest.JSON(w, http.StatusOK, b)
}

// listWindow reads filter[ownerId], limit and offset; it returns PlainID's
// 400 when one is missing or out of range.
func listWindow(q url.Values) (limit, offset int, bad *plainIDError) {
	if q.Get("filter[ownerId]") == "" {
		return 0, 0, &plainIDError{"EW20XA", http.StatusBadRequest, "MissingRequiredFilterParameterError",
			"Missing required filter parameter: ownerId"}
	}
	limit, ok := intParam(q, "limit", DefaultLimit)
	if !ok || limit < 1 || limit > MaxLimit {
		return 0, 0, &plainIDError{"EW20XA", http.StatusBadRequest, "invalidRequest",
			"limit must be between 1 and " + strconv.Itoa(MaxLimit)}
	}
	offset, ok = intParam(q, "offset", 0)
	if !ok || offset < 0 {
		return 0, 0, &plainIDError{"EW20XA", http.StatusBadRequest, "invalidRequest", "offset must be 0 or more"}
	}
	return limit, offset, nil
}

// intParam parses q's name as an integer; def when absent.
func intParam(q url.Values, name string, def int) (int, bool) {
	if !q.Has(name) {
		return def, true
	}
	n, err := strconv.Atoi(q.Get(name))
	return n, err == nil
}

// ownedBy returns owner's clients that pass the optional name and
// permission filters ("" for none), by ID. Owner "-" means tenant clients.
func (s *Server) ownedBy(owner, name, permission string) []Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Client
	for _, c := range s.clients {
		if ownerIs(c, owner) && (name == "" || c.Name == name) && (permission == "" || c.Permission == permission) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b Client) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// ownerIs reports whether c belongs to owner: an environment ID, or "-"
// for tenant clients (ownerType TENANT, ownerId null or "-").
func ownerIs(c Client, owner string) bool {
	tenant := c.OwnerType == "TENANT" || c.OwnerID == "" || c.OwnerID == TenantOwner
	if owner == TenantOwner {
		return tenant
	}
	return !tenant && c.OwnerID == owner
}

// plainIDError is PlainID's error body.
type plainIDError struct {
	ID      string `json:"id"`
	Status  int    `json:"status"`
	Name    string `json:"name"`
	Message string `json:"message"`
}

// errorFor is PlainID's error for status on client id. The 404 and 403
// bodies are documented; the others are plausible (PlainID documents no
// 401 or 429 body).
func errorFor(status int, id string) plainIDError {
	switch status {
	case http.StatusBadRequest:
		return plainIDError{"EW20XA", status, "invalidRequest", "Invalid request"}
	case http.StatusUnauthorized:
		return plainIDError{"EW03XA", status, "unauthorizedError", "Access token is missing, invalid or expired"}
	case http.StatusForbidden:
		return plainIDError{"EW60XA", status, "forbiddenEnvironment", "Access to the environment is forbidden"}
	case http.StatusNotFound:
		return plainIDError{"EW42XA", status, "clientNotFoundError", "Client " + id + " not found"}
	case http.StatusTooManyRequests:
		return plainIDError{"EW90XA", status, "tooManyRequests", "Too many requests"}
	default:
		return plainIDError{"EW00XA", status, "internalServerError", "Internal server error"}
	}
}

// errorBody renders errorFor for vendortest's Status-only faults on id.
func errorBody(id string) vendortest.ErrorBody {
	return func(status int) (string, string) {
		b, _ := json.Marshal(errorFor(status, id))
		return "application/json", string(b)
	}
}

func writeError(w http.ResponseWriter, e plainIDError) {
	b, _ := json.Marshal(e)
	vendortest.JSON(w, e.Status, b)
}

// clientJSON is the documented answer, fields in PlainID's order.
type clientJSON struct {
	ID            string  `json:"id"`
	OwnerID       *string `json:"ownerId"`
	OwnerType     string  `json:"ownerType"`
	Name          string  `json:"name"`
	Description   string  `json:"description"`
	Secret        *string `json:"secret"`
	TokenDuration string  `json:"tokenDuration"`
	Permission    string  `json:"permission"`
}

func render(c Client) clientJSON {
	out := clientJSON{
		ID: c.ID, OwnerType: c.OwnerType, Name: c.Name, Description: c.Description,
		Secret: c.Secret, TokenDuration: c.TokenDuration, Permission: c.Permission,
	}
	if c.OwnerID != "" {
		out.OwnerID = &c.OwnerID
	}
	return out
}

// Sample returns an environment ADMIN client with realistic defaults; id
// and name set.
func Sample(id, name string) Client {
	return Client{
		ID: id, OwnerID: "b0e1f961-2061-4f83-8392-b5aa19fed0c1", OwnerType: "ENVIRONMENT",
		Name: name, Description: name + " client", TokenDuration: "PT1440M", Permission: "ADMIN",
	}
}
