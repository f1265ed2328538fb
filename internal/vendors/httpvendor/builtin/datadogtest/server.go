// Package datadogtest is a fake Datadog API site over HTTPS, like
// net/http/httptest: API keys as Datadog's v2 key-management API documents
// them (docs/vendors/datadog.md) — GET of one key (whose answer carries
// the full key, as Datadog's does), the list in JSON:API shape paginated
// by page[number] (from 0) and page[size] (default 10, at most 100) with
// meta.page.total_filtered_count, the key check GET /api/v2/validate_keys,
// Datadog's error bodies ({"errors":["..."]}) and X-RateLimit-* headers,
// and per-key faults from vendortest.
package datadogtest

import (
	"cmp"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Token is one API key (or application key) the fake holds.
type Token struct {
	// ApplicationKey: an application key (/api/v2/application_keys,
	// owned_by, last_used_at), not an API key.
	ApplicationKey bool
	// ID is the key's UUID.
	ID       string
	Name     string
	Category string // "default" unless set
	// Owner is the ID of the user who created the key
	// (relationships.created_by); ModifiedBy the last to modify it
	// (relationships.modified_by, null when "").
	Owner      string
	ModifiedBy string
	CreatedAt  time.Time
	UpdatedAt  time.Time // modified_at; CreatedAt when zero
	LastUsedAt *time.Time
	// RemoteConfigReadEnabled is attributes.remote_config_read_enabled.
	RemoteConfigReadEnabled bool
	// Value is the key itself: Datadog's GET answer carries it in
	// attributes.key (and attributes.last4 its last 4 characters). A
	// client must never copy it.
	Value string
}

// ListID is the Scenarios key of every list request; other keys are key
// IDs (and "verify" for the key check).
const ListID = "list"

// Page sizes, as Datadog documents them.
const (
	DefaultPageSize = 10
	MaxPageSize     = 100
	// MaxAllowed is meta.max_allowed: how many API keys an org may hold.
	MaxAllowed = 200
)

// Server is a fake Datadog site. Its keys are filed by ID; Delete is
// Datadog's revocation; SetEchoValues puts each key's value in the list
// items' attributes.key too (Datadog's list items are partial objects
// without it; its GET answers always carry it); SetMaxPerPage forces a
// page size below MaxPageSize.
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS
	// Store's key is the API key (SetKey changes it alone).
	*vendortest.Store[string, Token]
	vendortest.Paging

	appKey atomic.Value // string
}

// NewServer starts a fake Datadog site that accepts the API key apiKey
// with the application key appKey.
func NewServer(apiKey, appKey string) *Server {
	s := &Server{Store: vendortest.NewStore(apiKey, func(t Token) string { return t.ID })}
	s.appKey.Store(appKey)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/validate_keys", s.validate)
	mux.HandleFunc("GET /api/v2/api_keys/{id}", s.get(false))
	mux.HandleFunc("GET /api/v2/api_keys", s.list(false))
	mux.HandleFunc("GET /api/v2/application_keys/{id}", s.get(true))
	mux.HandleFunc("GET /api/v2/application_keys", s.list(true))
	s.Listen(mux)
	return s
}

// SetKeys changes the accepted keys (a rotation of the provider's keys).
func (s *Server) SetKeys(apiKey, appKey string) {
	s.SetKey(apiKey)
	s.appKey.Store(appKey)
}

// ListCalls returns how many list requests arrived.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

func (s *Server) authorized(r *http.Request) bool {
	apiKey, appKey := s.Key(), s.appKey.Load().(string)
	return apiKey != "" && appKey != "" &&
		r.Header.Get("DD-API-KEY") == apiKey && r.Header.Get("DD-APPLICATION-KEY") == appKey
}

// fault applies a scenario for key, or answers a wrong key with status
// (Datadog: 401 from validate_keys, 403 elsewhere): true when it answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, key string, status int) bool {
	if s.Intercept(w, r, key, errorBody) {
		return true
	}
	if !s.authorized(r) {
		vendortest.WriteError(w, status, errorBody)
		return true
	}
	rateHeaders(w.Header(), time.Now(), 399)
	return false
}

// rateHeaders sets the X-RateLimit-* headers of Datadog's answers: a
// window of an hour (calendar aligned), the reset in seconds from now.
func rateHeaders(h http.Header, now time.Time, remaining int) {
	reset := now.Truncate(time.Hour).Add(time.Hour).Sub(now)
	h.Set("X-RateLimit-Limit", "400")
	h.Set("X-RateLimit-Period", "3600")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", strconv.Itoa(int(reset.Seconds())+1))
	h.Set("X-RateLimit-Name", "api_keys")
}

// validate answers GET /api/v2/validate_keys: 200 {"status":"ok"} when
// both keys are right.
func (s *Server) validate(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, "verify", http.StatusUnauthorized) {
		return
	}
	vendortest.WriteJSON(w, http.StatusOK, map[string]any{"status": "ok"})
}

// get answers GET /api/v2/api_keys/:id: the full key, attributes.key
// included.
func (s *Server) get(app bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if s.fault(w, r, id, http.StatusForbidden) {
			return
		}
		t, ok := s.Get(id)
		if !ok || t.ApplicationKey != app {
			msg := "API key not found"
			if app {
				msg = "Application key not found"
			}
			writeJSONError(w, http.StatusNotFound, msg)
			return
		}
		vendortest.WriteJSON(w, http.StatusOK, map[string]any{"data": render(t, true)})
	}
}

// list answers GET /api/v2/api_keys: keys by creation (then ID), a page
// of page[size] (default 10, at most 100) numbered from 0, and meta with
// max_allowed and page.total_filtered_count.
func (s *Server) list(app bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { s.listKind(w, r, app) }
}

func (s *Server) listKind(w http.ResponseWriter, r *http.Request, app bool) {
	if s.fault(w, r, ListID, http.StatusForbidden) {
		return
	}
	q := r.URL.Query()
	size, number := DefaultPageSize, 0
	if v := q.Get("page[size]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeJSONError(w, http.StatusBadRequest, "page[size] must be a positive integer")
			return
		}
		size = min(n, MaxPageSize)
	}
	if v := q.Get("page[number]"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeJSONError(w, http.StatusBadRequest, "page[number] must be a non-negative integer")
			return
		}
		number = n
	}
	size = s.PerPage(size)
	all := s.Select(func(t Token) bool { return t.ApplicationKey == app })
	slices.SortFunc(all, func(a, b Token) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	echo := s.EchoValues()
	items := vendortest.Render(vendortest.Page(all, number*size, size), func(t Token) map[string]any { return render(t, echo) })
	vendortest.WriteJSON(w, http.StatusOK, map[string]any{
		"data": items,
		"meta": map[string]any{"max_allowed": MaxAllowed, "page": map[string]any{"total_filtered_count": len(all)}},
	})
}

// timeFormat is how Datadog writes times: microseconds, +00:00.
const timeFormat = "2006-01-02T15:04:05.000000-07:00"

// render is t as Datadog answers it: with attributes.key (the full
// key, as the GET answers) when withKey, else as a list's partial item.
// The fields Datadog's recorded answers add to the schema
// (used_in_last_24_hours, last_used_date, leak_information) are there.
func render(t Token, withKey bool) map[string]any {
	category := t.Category
	if category == "" {
		category = "default"
	}
	updated := t.UpdatedAt
	if updated.IsZero() {
		updated = t.CreatedAt
	}
	var lastUsed any
	used24h := false
	if t.LastUsedAt != nil {
		lastUsed = t.LastUsedAt.UTC().Format(timeFormat)
		used24h = time.Since(*t.LastUsedAt) < 24*time.Hour
	}
	last4 := t.Value
	if len(last4) > 4 {
		last4 = last4[len(last4)-4:]
	}
	attrs := map[string]any{
		"name": t.Name, "last4": last4, "category": category,
		"created_at": t.CreatedAt.UTC().Format(timeFormat), "modified_at": updated.UTC().Format(timeFormat),
		"date_last_used": lastUsed, "remote_config_read_enabled": t.RemoteConfigReadEnabled,
		"used_in_last_24_hours": used24h,
		"last_used_date":        map[string]any{"timestamp": lastUsed, "description": "Last used date of the API key"},
	}
	if withKey {
		attrs["key"] = t.Value
	}
	user := func(id string) map[string]any {
		if id == "" {
			return map[string]any{"data": nil}
		}
		return map[string]any{"data": map[string]any{"id": id, "type": "users"}}
	}
	if t.ApplicationKey {
		// An application key: scopes, last_used_at, owned_by; no
		// category, modified_at or remote config.
		app := map[string]any{"name": t.Name, "last4": last4, "created_at": attrs["created_at"], "last_used_at": lastUsed, "scopes": nil}
		if withKey {
			app["key"] = t.Value
		}
		return map[string]any{"id": t.ID, "type": "application_keys", "attributes": app,
			"relationships": map[string]any{"owned_by": user(t.Owner)}}
	}
	return map[string]any{
		"id": t.ID, "type": "api_keys", "attributes": attrs,
		"relationships": map[string]any{
			"created_by": user(t.Owner), "modified_by": user(t.ModifiedBy),
			"leak_information": map[string]any{"data": nil},
		},
	}
}

// errorBody is Datadog's error answer (APIErrorResponse) for a status.
func errorBody(status int) (string, string) {
	msg := map[int]string{
		http.StatusBadRequest:      "Bad Request",
		http.StatusUnauthorized:    "Unauthorized",
		http.StatusForbidden:       "Forbidden",
		http.StatusNotFound:        "Not found",
		http.StatusTooManyRequests: "Too many requests",
	}[status]
	if msg == "" {
		msg = "Internal Server Error"
	}
	b, _ := json.Marshal(map[string]any{"errors": []string{msg}})
	return "application/json", string(b)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	vendortest.WriteJSON(w, status, map[string]any{"errors": []string{msg}})
}

// RateLimited is Datadog's 429: {"errors":["Too many requests"]} and its
// X-RateLimit-* headers, the reset in seconds from now. Datadog sends no
// Retry-After (its own client waits X-RateLimit-Reset); now dates the
// answer.
func RateLimited(now time.Time, retryAfterSeconds int) vendortest.Fault {
	_, body := errorBody(http.StatusTooManyRequests)
	return vendortest.Fault{Status: http.StatusTooManyRequests, ContentType: "application/json", Body: body, Header: http.Header{
		"Date":                  {now.UTC().Format(http.TimeFormat)},
		"X-Ratelimit-Limit":     {"400"},
		"X-Ratelimit-Period":    {"3600"},
		"X-Ratelimit-Remaining": {"0"},
		"X-Ratelimit-Reset":     {strconv.Itoa(retryAfterSeconds)},
		"X-Ratelimit-Name":      {"api_keys"},
	}}
}

// Sample returns an API key with realistic defaults: created by user
// 9919ec9b-ebc7-49ee-8dc8-03626e717cca on 2026-02-01, never used, with a
// 32-character value.
func Sample(id, name string) Token {
	created := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	return Token{ID: id, Name: name, Category: "default", Owner: SampleUser, ModifiedBy: SampleUser,
		CreatedAt: created, UpdatedAt: created, RemoteConfigReadEnabled: true,
		Value: "0123456789abcdef0123456789abcdef"}
}

// SampleUser is the owner of Sample's keys.
const SampleUser = "9919ec9b-ebc7-49ee-8dc8-03626e717cca"
