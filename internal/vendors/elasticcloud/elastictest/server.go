// Package elastictest is a fake Elastic Cloud / Elastic Cloud Enterprise
// API over HTTPS, like net/http/httptest: GET /api/v1/users/auth/keys/{id}
// (the caller's own keys) and GET /api/v1/users/{user_id}/auth/keys/{id}
// (any user's key, ECE), "Authorization: ApiKey <key>" auth, documented
// payloads and error bodies with x-cloud-error-codes, x-ratelimit-* headers
// on every answer, and per-key-ID faults from vendortest.
package elastictest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// RateLimit is what the fake announces in x-ratelimit-limit. Elastic
// publishes no numbers; remaining counts down from it and stops at 0
// without ever refusing a request (use a vendortest.RateLimited fault).
const RateLimit = 1000

// Error codes the fake answers with. Those for 429 and 5xx are not
// documented by Elastic: plausible stand-ins.
const (
	CodeKeyNotFound     = "api_keys.key_not_found"
	CodeUserNotFound    = "api_keys.user_not_found"
	CodeUnauthenticated = "root.unauthenticated"
	CodeRBAC            = "root.unauthorized.rbac"
	CodeRateLimited     = "root.too_many_requests"
	CodeUnexpected      = "root.unexpected_error"
)

// errorCodesHeader carries the codes of an error answer.
const errorCodesHeader = "X-Cloud-Error-Codes"

// APIKey is one API key the fake holds, as Elastic documents its metadata.
type APIKey struct {
	ID             string
	UserID         string
	OrganizationID string
	Description    string
	CreationDate   time.Time
	ExpirationDate *time.Time
	// Key is the secret itself, which Elastic sends only at creation. When
	// set the fake sends it anyway, so tests can prove clients drop it.
	Key *string
}

// Server is a fake Elastic Cloud API.
type Server struct {
	vendortest.Scenarios
	// URL is the API's base URL (https://127.0.0.1:port), without /api/v1.
	URL string

	srv     *httptest.Server
	mu      sync.Mutex
	apiKeys map[string]string // accepted API key → the user it belongs to
	users   map[string]bool
	keys    map[string]APIKey
	paths   map[string]int // escaped request path → requests
	served  int
}

// NewServer starts a fake that accepts no API key yet: see AddAPIKey.
func NewServer() *Server {
	s := &Server{
		apiKeys: map[string]string{}, users: map[string]bool{},
		keys: map[string]APIKey{}, paths: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/users/auth/keys/{id}", s.getOwnKey)
	mux.HandleFunc("GET /api/v1/users/{user_id}/auth/keys/{id}", s.getUserKey)
	s.srv = vendortest.NewTLSServer(s.common(mux))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

// CABundle is the PEM a provider's caBundle needs to trust the fake.
func (s *Server) CABundle() []byte { return vendortest.CABundle(s.srv) }

// AddAPIKey makes the fake accept key as belonging to userID (who becomes
// a known user).
func (s *Server) AddAPIKey(key, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiKeys[key] = userID
	s.users[userID] = true
}

// RemoveAPIKey stops accepting key (a revocation): later requests get 401.
func (s *Server) RemoveAPIKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apiKeys, key)
}

// Put adds or replaces an API key's metadata; its user becomes known.
func (s *Server) Put(k APIKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[k.ID] = k
	s.users[k.UserID] = true
}

// Delete removes an API key: later requests get 404 api_keys.key_not_found.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, id)
}

// PathCalls returns how many requests were made for path, as escaped on
// the wire (/api/v1/users/u%2F1/auth/keys/k1): it tells which endpoint a
// client used. Calls (from Scenarios) counts by key ID over both.
func (s *Server) PathCalls(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.paths[path]
}

// common records every request and sends the rate-limit headers.
func (s *Server) common(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.paths[r.URL.EscapedPath()]++
		s.served++
		remaining := max(RateLimit-s.served, 0)
		s.mu.Unlock()
		w.Header().Set("X-Ratelimit-Limit", strconv.Itoa(RateLimit))
		w.Header().Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-Ratelimit-Interval", "1m")
		next.ServeHTTP(w, r)
	})
}

func (s *Server) getOwnKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.fault(w, r, id) {
		return
	}
	caller, ok := s.caller(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "The supplied authentication is invalid")
		return
	}
	s.answerKey(w, id, caller)
}

func (s *Server) getUserKey(w http.ResponseWriter, r *http.Request) {
	id, user := r.PathValue("id"), r.PathValue("user_id")
	if s.fault(w, r, id) {
		return
	}
	if _, ok := s.caller(r); !ok {
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "The supplied authentication is invalid")
		return
	}
	s.mu.Lock()
	known := s.users[user]
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, CodeUserNotFound, "The user ["+user+"] can't be found")
		return
	}
	s.answerKey(w, id, user)
}

// fault applies id's fault, if any; it reports whether it answered.
// Status-only faults get Elastic's error body and x-cloud-error-codes.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, id string) bool {
	f, ok := s.Record(id)
	if !ok {
		return false
	}
	if f.Status >= http.StatusBadRequest && f.Body == "" {
		code, _ := errorFor(f.Status)
		w.Header().Set(errorCodesHeader, code)
	}
	return vendortest.Apply(w, r, f, errorBody)
}

// caller returns the user the request's API key belongs to.
func (s *Server) caller(r *http.Request) (string, bool) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "ApiKey ")
	if !ok {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	user, ok := s.apiKeys[key]
	return user, ok
}

// answerKey sends key id if it belongs to user, else 404.
func (s *Server) answerKey(w http.ResponseWriter, id, user string) {
	s.mu.Lock()
	k, ok := s.keys[id]
	s.mu.Unlock()
	if !ok || k.UserID != user {
		writeError(w, http.StatusNotFound, CodeKeyNotFound, "The API key ["+id+"] can't be found")
		return
	}
	b, _ := json.Marshal(render(k))
	vendortest.JSON(w, http.StatusOK, b)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set(errorCodesHeader, code)
	vendortest.JSON(w, status, failedReply(code, message))
}

// errorBody renders Elastic's error answer (BasicFailedReply) for a status.
func errorBody(status int) (string, string) {
	code, message := errorFor(status)
	return "application/json; charset=utf-8", string(failedReply(code, message))
}

func errorFor(status int) (code, message string) {
	switch status {
	case http.StatusUnauthorized:
		return CodeUnauthenticated, "The supplied authentication is invalid"
	case http.StatusForbidden:
		return CodeRBAC, "The current user does not have access to the requested resource"
	case http.StatusNotFound:
		return CodeKeyNotFound, "The API key can't be found"
	case http.StatusTooManyRequests:
		return CodeRateLimited, "Too many requests, try again later"
	default:
		return CodeUnexpected, "An unexpected error occurred"
	}
}

func failedReply(code, message string) []byte {
	b, _ := json.Marshal(map[string]any{
		"errors": []map[string]any{{"code": code, "message": message, "fields": []string{}}},
	})
	return b
}

func render(k APIKey) map[string]any {
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }
	out := map[string]any{"id": k.ID, "description": k.Description, "creation_date": ts(k.CreationDate)}
	if k.UserID != "" {
		out["user_id"] = k.UserID
	}
	if k.OrganizationID != "" {
		out["organization_id"] = k.OrganizationID
	}
	if k.ExpirationDate != nil {
		out["expiration_date"] = ts(*k.ExpirationDate)
	}
	if k.Key != nil {
		out["key"] = *k.Key
	}
	return out
}

// Sample returns an API key with realistic defaults; id, owner and
// description set, no expiration, no secret.
func Sample(id, userID, description string) APIKey {
	return APIKey{
		ID: id, UserID: userID, OrganizationID: "1436802349", Description: description,
		CreationDate: time.Date(2025, 1, 1, 9, 30, 12, 491e6, time.UTC),
	}
}
