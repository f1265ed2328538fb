// Package gitlabtest is a fake GitLab instance over HTTPS, like
// net/http/httptest: personal, project and group access tokens as GitLab's
// REST API v4 documents them (docs/vendors/gitlab.md) — GET of one token,
// lists paginated by the Link header with per_page capped at 100, the
// key check GET /personal_access_tokens/self, rotation (whose answer
// carries the new token), GitLab's error bodies and rate-limit headers, and
// per-token faults from vendortest.
package gitlabtest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Kinds of token.
const (
	Personal = "personal"
	Project  = "project"
	Group    = "group"
)

// Token is one access token the fake holds.
type Token struct {
	ID          int64
	Kind        string // Personal, Project or Group
	Resource    string // the project's or group's ID (Project, Group)
	Name        string
	Description string
	Scopes      []string
	UserID      int64
	AccessLevel int // Project, Group
	CreatedAt   time.Time
	LastUsedAt  *time.Time
	ExpiresAt   *time.Time // a date: GitLab answers YYYY-MM-DD
	Revoked     bool
	// Value is the token itself: GitLab shows it only in the answer of a
	// creation or rotation. A client must never copy it.
	Value string
}

// ListID is the Scenarios key of every list request; other keys are token
// IDs (and "self" for the key check).
const ListID = "list"

// Page sizes, as GitLab documents them.
const (
	DefaultPerPage = 20
	MaxPerPage     = 100
)

// Server is a fake GitLab.
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS

	mu         sync.Mutex
	key        string
	selfID     int64
	tokens     map[int64]Token
	maxPerPage int
	nextID     int64
	echoValues bool
	nonAdmin   bool
}

// NewServer starts a fake GitLab that accepts the token key (as the
// personal access token selfID).
func NewServer(key string) *Server {
	s := &Server{key: key, selfID: 1, tokens: map[int64]Token{}, nextID: 1000}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v4/personal_access_tokens/self", s.self)
	mux.HandleFunc("GET /api/v4/personal_access_tokens/{id}", s.get(Personal))
	mux.HandleFunc("GET /api/v4/personal_access_tokens", s.list(Personal))
	mux.HandleFunc("POST /api/v4/personal_access_tokens/{id}/rotate", s.rotate)
	mux.HandleFunc("GET /api/v4/projects/{resource}/access_tokens/{id}", s.get(Project))
	mux.HandleFunc("GET /api/v4/projects/{resource}/access_tokens", s.list(Project))
	mux.HandleFunc("GET /api/v4/groups/{resource}/access_tokens/{id}", s.get(Group))
	mux.HandleFunc("GET /api/v4/groups/{resource}/access_tokens", s.list(Group))
	s.Listen(mux)
	return s
}

// SetKey changes the accepted key (a rotation of the provider's token).
func (s *Server) SetKey(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = k
}

// Put adds or replaces a token.
func (s *Server) Put(t Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[t.ID] = t
}

// Delete removes a token: later requests get 404.
func (s *Server) Delete(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, id)
}

// SetMaxPerPage makes lists hand back at most n tokens a page whatever
// per_page asks; n <= 0 restores GitLab's MaxPerPage.
func (s *Server) SetMaxPerPage(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxPerPage = n
}

// SetEchoValues makes every answer carry each token's value in token, as
// GitLab's creation and rotation answers do: a client must copy it
// nowhere.
func (s *Server) SetEchoValues(echo bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echoValues = echo
}

// render is t as s answers it: with its value when echoing.
func (s *Server) render(t Token) map[string]any {
	out := render(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.echoValues {
		out["token"] = t.Value
	}
	return out
}

// SetNonAdmin makes the key a non-admin's: GitLab then answers 401, not
// 404, for a personal access token that does not exist.
func (s *Server) SetNonAdmin(nonAdmin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nonAdmin = nonAdmin
}

// ListCalls returns how many list requests arrived.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

func (s *Server) authorized(r *http.Request) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return tok == s.key
	}
	return s.key != "" && r.Header.Get("PRIVATE-TOKEN") == s.key
}

// fault applies a scenario for key, or answers 401 to a wrong key: true
// when it answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, key string) bool {
	if f, ok := s.Record(key); ok && vendortest.Apply(w, r, f, s.errorBody) {
		return true
	}
	if !s.authorized(r) {
		s.writeError(w, http.StatusUnauthorized)
		return true
	}
	return false
}

func (s *Server) self(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, "self") {
		return
	}
	s.mu.Lock()
	t, ok := s.tokens[s.selfID]
	s.mu.Unlock()
	if !ok {
		t = Token{ID: s.selfID, Kind: Personal, Name: "credsync", Scopes: []string{"read_api"}, UserID: 1,
			CreatedAt: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	}
	writeJSON(w, http.StatusOK, render(t))
}

func (s *Server) get(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.fault(w, r, r.PathValue("id")) {
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		s.mu.Lock()
		t, ok := s.tokens[id]
		s.mu.Unlock()
		if err != nil || !ok || t.Kind != kind || t.Resource != r.PathValue("resource") {
			s.mu.Lock()
			status := http.StatusNotFound
			if s.nonAdmin && kind == Personal {
				status = http.StatusUnauthorized
			}
			s.mu.Unlock()
			s.writeError(w, status)
			return
		}
		writeJSON(w, http.StatusOK, s.render(t))
	}
}

// list answers a list: tokens by ID, per_page capped, and GitLab's
// pagination headers (Link with rel="next", "first" and "last",
// X-Page, X-Per-Page, X-Next-Page, X-Total, X-Total-Pages).
func (s *Server) list(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.fault(w, r, ListID) {
			return
		}
		q := r.URL.Query()
		s.mu.Lock()
		var all []Token
		for _, t := range s.tokens {
			if t.Kind == kind && t.Resource == r.PathValue("resource") {
				all = append(all, t)
			}
		}
		perPage := min(positive(q.Get("per_page"), DefaultPerPage), MaxPerPage)
		if s.maxPerPage > 0 {
			perPage = min(perPage, s.maxPerPage)
		}
		s.mu.Unlock()
		slices.SortFunc(all, func(a, b Token) int { return cmp.Compare(a.ID, b.ID) })
		page := positive(q.Get("page"), 1)
		pages := max((len(all)+perPage-1)/perPage, 1)
		start := min((page-1)*perPage, len(all))
		end := min(start+perPage, len(all))
		items := make([]map[string]any, 0, end-start)
		for _, t := range all[start:end] {
			items = append(items, s.render(t))
		}
		at := func(p int) string {
			q := r.URL.Query()
			q.Set("page", strconv.Itoa(p))
			q.Set("per_page", strconv.Itoa(perPage))
			return (&url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}).String()
		}
		links := []string{fmt.Sprintf(`<%s>; rel="first"`, at(1)), fmt.Sprintf(`<%s>; rel="last"`, at(pages))}
		h := w.Header()
		h.Set("X-Page", strconv.Itoa(page))
		h.Set("X-Per-Page", strconv.Itoa(perPage))
		h.Set("X-Total", strconv.Itoa(len(all)))
		h.Set("X-Total-Pages", strconv.Itoa(pages))
		h.Set("X-Next-Page", "")
		if page < pages {
			links = append([]string{fmt.Sprintf(`<%s>; rel="next"`, at(page+1))}, links...)
			h.Set("X-Next-Page", strconv.Itoa(page+1))
		}
		if page > 1 {
			links = append([]string{fmt.Sprintf(`<%s>; rel="prev"`, at(page-1))}, links...)
		}
		h.Set("Link", strings.Join(links, ", "))
		writeJSON(w, http.StatusOK, items)
	}
}

// rotate answers POST /personal_access_tokens/:id/rotate: the new token,
// with its value in token.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, r.PathValue("id")) {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	s.mu.Lock()
	t, ok := s.tokens[id]
	if ok {
		t.Revoked = true
		s.tokens[id] = t
		s.nextID++
		t.ID, t.Revoked, t.CreatedAt = s.nextID, false, time.Now().UTC()
		t.Value = fmt.Sprintf("glpat-rotated%d", t.ID)
		s.tokens[t.ID] = t
	}
	s.mu.Unlock()
	if !ok {
		s.writeError(w, http.StatusNotFound)
		return
	}
	body := render(t)
	body["token"] = t.Value
	writeJSON(w, http.StatusOK, body)
}

// render is a token as GitLab answers it (without its value).
func render(t Token) map[string]any {
	var expires, lastUsed any
	if t.ExpiresAt != nil {
		expires = t.ExpiresAt.UTC().Format(time.DateOnly)
	}
	if t.LastUsedAt != nil {
		lastUsed = t.LastUsedAt.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	active := !t.Revoked && (t.ExpiresAt == nil || time.Now().Before(*t.ExpiresAt))
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{"read_api"}
	}
	out := map[string]any{
		"id": t.ID, "name": t.Name, "revoked": t.Revoked, "created_at": t.CreatedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		"description": t.Description, "scopes": scopes, "user_id": t.UserID, "last_used_at": lastUsed,
		"active": active, "expires_at": expires,
	}
	if t.Kind != Personal {
		out["access_level"] = t.AccessLevel
		out["resource_type"] = t.Kind
		out["resource_id"] = t.Resource
	}
	return out
}

func (s *Server) errorBody(status int) (string, string) {
	switch status {
	case http.StatusUnauthorized:
		return "application/json", `{"message":"401 Unauthorized"}`
	case http.StatusForbidden:
		return "application/json", `{"message":"403 Forbidden"}`
	case http.StatusNotFound:
		return "application/json", `{"message":"404 Not Found"}`
	case http.StatusTooManyRequests:
		return "text/plain", "Retry later"
	}
	return "application/json", `{"message":"500 Internal Server Error"}`
}

func (s *Server) writeError(w http.ResponseWriter, status int) {
	ct, body := s.errorBody(status)
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// RateLimited is GitLab's 429: its RateLimit-* headers (reset as a Unix
// time) and Retry-After in seconds.
func RateLimited(now time.Time, retryAfter int) vendortest.Fault {
	reset := now.Add(time.Duration(retryAfter) * time.Second)
	return vendortest.Fault{Status: http.StatusTooManyRequests, RetryAfter: strconv.Itoa(retryAfter), Header: http.Header{
		"Ratelimit-Limit":     {"2000"},
		"Ratelimit-Observed":  {"2001"},
		"Ratelimit-Remaining": {"0"},
		"Ratelimit-Reset":     {strconv.FormatInt(reset.Unix(), 10)},
		"Ratelimit-Resettime": {reset.UTC().Format(http.TimeFormat)},
	}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	vendortest.JSON(w, status, b)
}

func positive(v string, def int) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return def
	}
	return n
}

// Sample returns a personal access token with realistic defaults.
func Sample(id int64, name string) Token {
	return Token{ID: id, Kind: Personal, Name: name, Description: "used by " + name, Scopes: []string{"read_api"},
		UserID: 42, CreatedAt: time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)}
}
