// Package tinestest is a fake Tines tenant over HTTPS, like net/http/httptest:
// GET /api/v1/user_credentials/{id} with Bearer or X-User-Token auth,
// documented payloads, and per-credential faults from vendortest.
package tinestest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Credential is one credential the fake holds, as Tines documents it.
type Credential struct {
	ID              int64
	Name            string
	Description     string
	Mode            string
	TeamID          int64
	FolderID        *int64
	ReadAccess      string
	Slug            string
	RestrictionType string
	CreatedAt       time.Time
	UpdatedAt       time.Time
	ExpiresAt       *time.Time
	OwnerEmail      string
	// Metadata is free-form and may hold anything, secrets included: a
	// client must never copy it anywhere.
	Metadata map[string]string
}

// Server is a fake Tines tenant.
type Server struct {
	vendortest.Scenarios
	// URL is the tenant's base URL (https://127.0.0.1:port).
	URL string

	srv    *httptest.Server
	mu     sync.Mutex
	apiKey string
	creds  map[string]Credential
}

// NewServer starts a fake tenant that accepts apiKey.
func NewServer(apiKey string) *Server {
	s := &Server{apiKey: apiKey, creds: map[string]Credential{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/user_credentials/{id}", s.getCredential)
	s.srv = vendortest.NewTLSServer(mux)
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// CABundle is the PEM a provider's caBundle needs to trust the fake.
func (s *Server) CABundle() []byte { return vendortest.CABundle(s.srv) }

// SetAPIKey changes the accepted API key (a rotation).
func (s *Server) SetAPIKey(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKey = k
}

// Put adds or replaces a credential.
func (s *Server) Put(c Credential) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.creds[strconv.FormatInt(c.ID, 10)] = c
}

// Delete removes a credential: later requests get 404.
func (s *Server) Delete(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.creds, strconv.FormatInt(id, 10))
}

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return tok == s.apiKey
	}
	return r.Header.Get("X-User-Token") == s.apiKey && s.apiKey != ""
}

func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if f, ok := s.Record(id); ok && vendortest.Apply(w, r, f, func(status int) (string, string) { return errorBody(status, id) }) {
		return
	}
	if !s.authorized(r) {
		writeError(w, http.StatusUnauthorized, id)
		return
	}
	s.mu.Lock()
	c, ok := s.creds[id]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, id)
		return
	}
	b, _ := json.Marshal(render(c))
	vendortest.JSON(w, http.StatusOK, b)
}

func writeError(w http.ResponseWriter, status int, id string) {
	ct, body := errorBody(status, id)
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = fmt.Fprint(w, body)
}

// errorBody mimics Tines: Rails-style bodies that vary by status.
func errorBody(status int, id string) (string, string) {
	switch status {
	case http.StatusUnauthorized:
		return "application/json", `{"error":"You need to sign in or sign up before continuing."}`
	case http.StatusForbidden:
		return "application/json", `{"errors":[{"message":"You do not have permission to access this credential"}]}`
	case http.StatusNotFound:
		msg, _ := json.Marshal("Couldn't find UserCredential with 'id'=" + id)
		return "application/json", `{"errors":[{"message":` + string(msg) + `}]}`
	case http.StatusTooManyRequests:
		return "text/plain", "Retry later\n"
	default:
		return "application/json", `{"errors":[{"message":"Something went wrong"}]}`
	}
}

func render(c Credential) map[string]any {
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	var expires any
	if c.ExpiresAt != nil {
		expires = ts(*c.ExpiresAt)
	}
	var folder any
	if c.FolderID != nil {
		folder = *c.FolderID
	}
	meta := c.Metadata
	if meta == nil {
		meta = map[string]string{}
	}
	first, last, _ := strings.Cut(strings.Split(c.OwnerEmail, "@")[0], ".")
	return map[string]any{
		"id": c.ID, "name": c.Name, "mode": c.Mode, "team_id": c.TeamID, "folder_id": folder,
		"read_access": c.ReadAccess, "shared_team_slugs": []string{}, "slug": c.Slug,
		"created_at": ts(c.CreatedAt), "updated_at": ts(c.UpdatedAt), "description": c.Description,
		"allowed_hosts": []string{}, "metadata": meta, "restriction_type": c.RestrictionType,
		"test_credential_enabled": false, "expires_at": expires,
		"owner": map[string]any{"user_id": 1, "first_name": first, "last_name": last, "email": c.OwnerEmail},
	}
}

// Sample returns a credential with realistic defaults; id and name set.
func Sample(id int64, name string) Credential {
	created := time.Date(2021, 3, 26, 12, 34, 16, 540e6, time.UTC)
	return Credential{
		ID: id, Name: name, Mode: "TEXT", TeamID: 2, ReadAccess: "TEAM",
		Slug: name, RestrictionType: "UNRESTRICTED", CreatedAt: created, UpdatedAt: created,
		OwnerEmail: "jane.doe@example.com",
	}
}
