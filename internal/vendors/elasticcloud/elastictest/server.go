// Package elastictest is a fake Elastic Cloud / Elastic Cloud Enterprise
// API over HTTPS, like net/http/httptest: GET /api/v1/users/auth/keys/{id}
// (the caller's own keys) and GET /api/v1/users/{user_id}/auth/keys/{id}
// (any user's key, ECE), the lists GET /api/v1/users/auth/keys,
// GET /api/v1/users/{user_id}/auth/keys and GET /api/v1/users/auth/keys/_all
// (ECE, platform admins), "Authorization: ApiKey <key>" auth, documented
// payloads and error bodies with x-cloud-error-codes, x-ratelimit-* headers
// on every answer, ESS's disappearing expired keys (SetDeleteExpired), and
// per-key-ID faults from vendortest.
package elastictest

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
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

// Scenarios keys of the list endpoints: list requests are recorded under
// them (never under a key ID), faults set for them (FailNext, Set) answer
// list requests, and Calls counts them. Every other key is a key ID (a key
// whose ID is one of these would share its record).
const (
	// ListID is GET /api/v1/users/auth/keys, the caller's own keys.
	ListID = "list"
	// ListAllID is GET /api/v1/users/auth/keys/_all, every user's keys.
	ListAllID = "list:_all"
)

// UserListID is the Scenarios key of GET /api/v1/users/{user_id}/auth/keys.
func UserListID(userID string) string { return "list:user:" + userID }

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
	vendortest.HTTPS
	// Now is the fake's clock for key expiry (SetDeleteExpired); nil means
	// time.Now. Set it before the first request.
	Now func() time.Time

	mu            sync.Mutex
	apiKeys       map[string]string // accepted API key → the user it belongs to
	users         map[string]bool
	admins        map[string]bool // platform admins: may list _all
	keys          map[string]APIKey
	paths         map[string]int // escaped request path → requests
	served        int
	lists         int
	deleteExpired bool
}

// NewServer starts a fake that accepts no API key yet: see AddAPIKey.
func NewServer() *Server {
	s := &Server{
		apiKeys: map[string]string{}, users: map[string]bool{}, admins: map[string]bool{},
		keys: map[string]APIKey{}, paths: map[string]int{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/users/auth/keys/{id}", s.getOwnKey)
	mux.HandleFunc("GET /api/v1/users/{user_id}/auth/keys/{id}", s.getUserKey)
	mux.HandleFunc("GET /api/v1/users/auth/keys", s.listOwnKeys)
	// More specific than .../keys/{id}, so it wins: a key whose ID is
	// "_all" cannot be read by ID, as at ECE.
	mux.HandleFunc("GET /api/v1/users/auth/keys/_all", s.listAllKeys)
	mux.HandleFunc("GET /api/v1/users/{user_id}/auth/keys", s.listUserKeys)
	s.Listen(s.common(mux))
	return s
}

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

// SetPlatformAdmin makes userID a platform admin or not. Only a platform
// admin's API key may list every user's keys (.../auth/keys/_all); others
// get 403 root.unauthorized.rbac. Nobody is an admin at first.
func (s *Server) SetPlatformAdmin(userID string, admin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.admins[userID] = admin
}

// SetDeleteExpired makes the fake behave like ESS: a key whose expiration
// date has passed (by Now) is no longer listed and its GET answers 404
// api_keys.key_not_found. Off at first: expired keys are served as any.
func (s *Server) SetDeleteExpired(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleteExpired = on
}

// ListCalls returns how many list requests arrived, of any of the three
// lists, answered or not. Calls(ListID), Calls(ListAllID) and
// Calls(UserListID(u)) count each list.
func (s *Server) ListCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
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
	caller, ok := s.authenticated(w, r)
	if !ok {
		return
	}
	s.answerKey(w, id, caller)
}

func (s *Server) getUserKey(w http.ResponseWriter, r *http.Request) {
	id, user := r.PathValue("id"), r.PathValue("user_id")
	if s.fault(w, r, id) {
		return
	}
	if !s.userScoped(w, r, user) {
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
	gone := ok && s.expired(k)
	s.mu.Unlock()
	if !ok || gone || k.UserID != user {
		writeError(w, http.StatusNotFound, CodeKeyNotFound, "The API key ["+id+"] can't be found")
		return
	}
	b, _ := json.Marshal(render(k))
	vendortest.JSON(w, http.StatusOK, b)
}

// listOwnKeys answers GET /api/v1/users/auth/keys: the caller's keys.
func (s *Server) listOwnKeys(w http.ResponseWriter, r *http.Request) {
	if s.listFault(w, r, ListID) {
		return
	}
	caller, ok := s.authenticated(w, r)
	if !ok {
		return
	}
	s.answerKeys(w, func(k APIKey) bool { return k.UserID == caller })
}

// listAllKeys answers GET /api/v1/users/auth/keys/_all: every user's keys,
// for platform admins only.
func (s *Server) listAllKeys(w http.ResponseWriter, r *http.Request) {
	if s.listFault(w, r, ListAllID) {
		return
	}
	caller, ok := s.authenticated(w, r)
	if !ok {
		return
	}
	s.mu.Lock()
	admin := s.admins[caller]
	s.mu.Unlock()
	if !admin {
		code, message := errorFor(http.StatusForbidden)
		writeError(w, http.StatusForbidden, code, message)
		return
	}
	s.answerKeys(w, func(APIKey) bool { return true })
}

// listUserKeys answers GET /api/v1/users/{user_id}/auth/keys: one user's
// keys (any caller may ask, as for one user's key by ID).
func (s *Server) listUserKeys(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user_id")
	if s.listFault(w, r, UserListID(user)) {
		return
	}
	if !s.userScoped(w, r, user) {
		return
	}
	s.answerKeys(w, func(k APIKey) bool { return k.UserID == user })
}

// authenticated returns the user of the request's key, or answers 401.
func (s *Server) authenticated(w http.ResponseWriter, r *http.Request) (string, bool) {
	caller, ok := s.caller(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, CodeUnauthenticated, "The supplied authentication is invalid")
	}
	return caller, ok
}

// userScoped answers a user-scoped request's errors, as ECE does: 401
// without a known key, 404 for an unknown user. It reports whether the
// request may go on.
func (s *Server) userScoped(w http.ResponseWriter, r *http.Request, user string) bool {
	if _, ok := s.authenticated(w, r); !ok {
		return false
	}
	s.mu.Lock()
	known := s.users[user]
	s.mu.Unlock()
	if !known {
		writeError(w, http.StatusNotFound, CodeUserNotFound, "The user ["+user+"] can't be found")
		return false
	}
	return true
}

// listFault counts a list request and applies id's fault, if any; it
// reports whether it answered.
func (s *Server) listFault(w http.ResponseWriter, r *http.Request, id string) bool {
	s.mu.Lock()
	s.lists++
	s.mu.Unlock()
	return s.fault(w, r, id)
}

// answerKeys sends {"keys":[...]}: the keys that pass keep and have not
// disappeared, by ID, rendered as the GET renders them.
func (s *Server) answerKeys(w http.ResponseWriter, keep func(APIKey) bool) {
	s.mu.Lock()
	items := make([]APIKey, 0, len(s.keys))
	for _, k := range s.keys {
		if keep(k) && !s.expired(k) {
			items = append(items, k)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(items, func(a, b APIKey) int { return cmp.Compare(a.ID, b.ID) })
	out := make([]map[string]any, 0, len(items))
	for _, k := range items {
		out = append(out, render(k))
	}
	b, _ := json.Marshal(map[string]any{"keys": out})
	vendortest.JSON(w, http.StatusOK, b)
}

// expired reports whether k has disappeared: SetDeleteExpired is on and
// its expiration date has passed. The caller holds s.mu.
func (s *Server) expired(k APIKey) bool {
	if !s.deleteExpired || k.ExpirationDate == nil {
		return false
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	return !now().Before(*k.ExpirationDate)
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
