// Package gitlabtest is a fake GitLab instance over HTTPS, like
// net/http/httptest: personal, project and group access tokens as GitLab's
// REST API v4 documents them (docs/vendors/gitlab.md) — GET of one token,
// lists paginated by the Link header with per_page capped at 100, the
// key check GET /personal_access_tokens/self, rotation (whose answer
// carries the new token), GitLab's error bodies and rate-limit headers, and
// per-token faults from vendortest.
package gitlabtest

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
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

// Server is a fake GitLab. Its tokens are filed by ID; SetEchoValues
// puts each token's value in token, as GitLab's creation and rotation
// answers do; SetMaxPerPage forces a page size below MaxPerPage.
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS
	*vendortest.Store[int64, Token]
	vendortest.Paging

	nextID   atomic.Int64
	nonAdmin atomic.Bool
}

// selfID is the ID of the personal access token the key is.
const selfID = 1

// NewServer starts a fake GitLab that accepts the token key (as the
// personal access token selfID).
func NewServer(key string) *Server {
	s := &Server{Store: vendortest.NewStore(key, func(t Token) int64 { return t.ID })}
	s.nextID.Store(1000)
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

// render is t as s answers it: with its value when echoing.
func (s *Server) render(t Token) map[string]any {
	out := render(t)
	if s.EchoValues() {
		out["token"] = t.Value
	}
	return out
}

// SetNonAdmin makes the key a non-admin's: GitLab then answers 401, not
// 404, for a personal access token that does not exist.
func (s *Server) SetNonAdmin(nonAdmin bool) { s.nonAdmin.Store(nonAdmin) }

// ListCalls returns how many list requests arrived.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

func (s *Server) authorized(r *http.Request) bool {
	key := s.Key()
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return tok == key
	}
	return key != "" && r.Header.Get("PRIVATE-TOKEN") == key
}

// fault applies a scenario for key, or answers 401 to a wrong key: true
// when it answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, key string) bool {
	if s.Intercept(w, r, key, errorBody) {
		return true
	}
	if !s.authorized(r) {
		vendortest.WriteError(w, http.StatusUnauthorized, errorBody)
		return true
	}
	return false
}

func (s *Server) self(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, "self") {
		return
	}
	t, ok := s.Get(selfID)
	if !ok {
		t = Token{ID: selfID, Kind: Personal, Name: "credsync", Scopes: []string{"read_api"}, UserID: 1,
			CreatedAt: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	}
	vendortest.WriteJSON(w, http.StatusOK, render(t))
}

func (s *Server) get(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.fault(w, r, r.PathValue("id")) {
			return
		}
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		t, ok := s.Get(id)
		if err != nil || !ok || t.Kind != kind || t.Resource != r.PathValue("resource") {
			status := http.StatusNotFound
			if s.nonAdmin.Load() && kind == Personal {
				status = http.StatusUnauthorized
			}
			vendortest.WriteError(w, status, errorBody)
			return
		}
		vendortest.WriteJSON(w, http.StatusOK, s.render(t))
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
		all := s.Select(func(t Token) bool { return t.Kind == kind && t.Resource == r.PathValue("resource") })
		perPage := s.PerPage(min(vendortest.Positive(q.Get("per_page"), DefaultPerPage), MaxPerPage))
		page := vendortest.Positive(q.Get("page"), 1)
		pages := max((len(all)+perPage-1)/perPage, 1)
		items := vendortest.Render(vendortest.Page(all, (page-1)*perPage, perPage), s.render)
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
		vendortest.WriteJSON(w, http.StatusOK, items)
	}
}

// rotate answers POST /personal_access_tokens/:id/rotate: the new token,
// with its value in token.
func (s *Server) rotate(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, r.PathValue("id")) {
		return
	}
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	t, ok := s.Update(id, func(t *Token) { t.Revoked = true })
	if !ok {
		vendortest.WriteError(w, http.StatusNotFound, errorBody)
		return
	}
	t.ID, t.Revoked, t.CreatedAt = s.nextID.Add(1), false, time.Now().UTC()
	t.Value = fmt.Sprintf("glpat-rotated%d", t.ID)
	s.Put(t)
	body := render(t)
	body["token"] = t.Value
	vendortest.WriteJSON(w, http.StatusOK, body)
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

func errorBody(status int) (string, string) {
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

// Sample returns a personal access token with realistic defaults.
func Sample(id int64, name string) Token {
	return Token{ID: id, Kind: Personal, Name: name, Description: "used by " + name, Scopes: []string{"read_api"},
		UserID: 42, CreatedAt: time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)}
}
