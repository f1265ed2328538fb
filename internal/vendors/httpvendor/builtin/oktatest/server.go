// Package oktatest is a fake Okta org over HTTPS, like net/http/httptest:
// the org's API tokens (SSWS tokens) as Okta's Management API documents
// them (docs/vendors/okta.md) — GET of one token, the list (a bare array
// paginated by the Link header rel="next" with an after cursor and limit
// at most 200), the key check GET /api/v1/users/me, revocation by DELETE
// (recorded: a client must never send it), Okta's error bodies and
// X-Rate-Limit-* headers, and per-token faults from vendortest.
//
// Only active tokens exist for Okta: a revoked token is answered 404 and
// left out of the list.
package oktatest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// KeyUserID is the user behind the key the fake accepts (/users/me).
const KeyUserID = "00u1credsynckey0x7d6"

// Token is one API token the fake holds.
type Token struct {
	ID         string // 00T...
	Name       string
	Owner      string // userId: the admin who created the token
	ClientName string // clientName, e.g. "Okta API"
	// TokenWindow is how long the token lives unused (ISO 8601 duration,
	// "P30D" when empty).
	TokenWindow string
	// Network is the token's network condition: connection (ANYWHERE when
	// empty), include and exclude (network zone IDs).
	Network   Network
	CreatedAt time.Time  // created
	UpdatedAt time.Time  // lastUpdated; zero is CreatedAt
	ExpiresAt *time.Time // expiresAt; null when nil
	// Revoked tokens are not answered at all (404, absent from the list).
	Revoked bool
	// Value is the token itself. Okta never answers it (docs/vendors/okta.md,
	// section 9); SetEchoValues makes the fake answer it anyway.
	Value string
}

// Network is a token's network condition.
type Network struct {
	Connection       string
	Include, Exclude []string
}

// Scenarios keys: ListID for every list request, VerifyID for the key
// check, DeleteID for every DELETE; other keys are token IDs.
const (
	ListID   = "list"
	VerifyID = "verify"
	DeleteID = "delete"
)

// Page sizes of the 2022 spec (today's does not say).
const (
	DefaultLimit = 20
	MaxLimit     = 200
)

// RateLimit is the X-Rate-Limit-Limit the fake reports (the real figure
// differs per endpoint and org).
const RateLimit = 1200

// Server is a fake Okta org. Its tokens are filed by ID; SetEchoValues
// puts each token's value in tokenValue, a field Okta does not have (a
// stand-in for a secret an answer might carry one day); SetMaxPerPage
// forces a page size below MaxLimit.
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS
	*vendortest.Store[string, Token]
	vendortest.Paging
}

// NewServer starts a fake Okta org that accepts the API token key (of
// user KeyUserID).
func NewServer(key string) *Server {
	s := &Server{Store: vendortest.NewStore(key, func(t Token) string { return t.ID })}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/users/me", s.me)
	mux.HandleFunc("GET /api/v1/api-tokens/{id}", s.get)
	mux.HandleFunc("GET /api/v1/api-tokens", s.list)
	mux.HandleFunc("DELETE /api/v1/api-tokens/{id}", s.revoke)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, notFoundBody(r.URL.Path, "Resource"))
	})
	s.Listen(mux)
	return s
}

// ListCalls returns how many list requests arrived.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

// Deletes returns how many DELETE requests arrived (a revocation each).
func (s *Server) Deletes() int { return s.Calls(DeleteID) }

// oktaError is Okta's error body (schema Error).
type oktaError struct {
	ErrorCode    string       `json:"errorCode"`
	ErrorSummary string       `json:"errorSummary"`
	ErrorLink    string       `json:"errorLink"`
	ErrorID      string       `json:"errorId"`
	ErrorCauses  []errorCause `json:"errorCauses"`
}

type errorCause struct {
	ErrorSummary string `json:"errorSummary"`
}

func errorJSON(code, summary, id string) string {
	b, _ := json.Marshal(oktaError{ErrorCode: code, ErrorSummary: summary, ErrorLink: code, ErrorID: id, ErrorCauses: []errorCause{}})
	return string(b)
}

// Okta's documented error bodies (docs/vendors/okta.md, section 7).
var (
	unauthorizedBody = errorJSON("E0000011", "Invalid token provided", "oaeY-4G_TBUTBSZAn9n7oZCfw")
	forbiddenBody    = errorJSON("E0000006", "You do not have permission to perform the requested action", "sampleNUSD_8fdkFd8fs8SDBK")
	rateLimitedBody  = errorJSON("E0000047", "API call exceeded rate limit due to too many requests.", "sampleQPivGUj_ND5v78vbYWW")
	// Not in the stored docs: Okta's code for an internal error.
	serverErrorBody = errorJSON("E0000009", "Internal Server Error", "oaeInternal0aB1cD2eF3gH4i")
)

// notFoundBody is Okta's 404: "Not found: Resource not found: <id>
// (<type>)". The type named for API tokens is not confirmed: ApiToken.
func notFoundBody(id, kind string) string {
	return errorJSON("E0000007", fmt.Sprintf("Not found: Resource not found: %s (%s)", id, kind), "oaeNotFound9xYz8wVu7tSr6q")
}

// errorBody renders a Status-only fault on r with Okta's bodies.
func errorBody(r *http.Request) vendortest.ErrorBody {
	return func(status int) (string, string) {
		switch status {
		case http.StatusUnauthorized:
			return "application/json", unauthorizedBody
		case http.StatusForbidden:
			return "application/json", forbiddenBody
		case http.StatusNotFound:
			id := r.PathValue("id")
			if id == "" {
				id = r.URL.Path
			}
			return "application/json", notFoundBody(id, "ApiToken")
		case http.StatusTooManyRequests:
			return "application/json", rateLimitedBody
		}
		return "application/json", serverErrorBody
	}
}

func writeError(w http.ResponseWriter, status int, body string) {
	vendortest.JSON(w, status, []byte(body))
}

// fault applies a scenario for key, or answers 401 to a wrong key (one
// not sent as "SSWS <key>"): true when it answered. Every answer carries
// the X-Rate-Limit-* headers.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, key string) bool {
	s.rateHeaders(w)
	if s.Intercept(w, r, key, errorBody(r)) {
		return true
	}
	if accepted := s.Key(); accepted == "" || r.Header.Get("Authorization") != "SSWS "+accepted {
		writeError(w, http.StatusUnauthorized, unauthorizedBody)
		return true
	}
	return false
}

// rateHeaders sets the X-Rate-Limit-* headers: the limit, what is left,
// and the window's reset as Unix seconds (the next minute).
func (s *Server) rateHeaders(w http.ResponseWriter) {
	now := time.Now()
	h := w.Header()
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(RateLimit))
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(max(RateLimit-1-s.TotalCalls(), 1)))
	h.Set("X-Rate-Limit-Reset", strconv.FormatInt(now.Truncate(time.Minute).Add(time.Minute).Unix(), 10))
	h.Set("Date", now.UTC().Format(http.TimeFormat))
}

// me answers GET /api/v1/users/me: the key's user, with the personal data
// Okta returns (which a client must not keep).
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, VerifyID) {
		return
	}
	self := fmt.Sprintf("https://%s/api/v1/users/%s", r.Host, KeyUserID)
	vendortest.WriteJSON(w, http.StatusOK, map[string]any{
		"id":              KeyUserID,
		"status":          "ACTIVE",
		"created":         "2025-06-02T09:11:00.000Z",
		"activated":       "2025-06-02T09:11:01.000Z",
		"statusChanged":   "2025-06-02T09:11:01.000Z",
		"lastLogin":       "2026-03-01T08:00:00.000Z",
		"lastUpdated":     "2026-01-10T12:00:00.000Z",
		"passwordChanged": "2025-06-02T09:12:00.000Z",
		"type":            map[string]any{"id": "oty1credsynctype0x7d6"},
		"profile": map[string]any{
			"firstName": "Isaac", "lastName": "Brock", "email": "isaac.brock@example.com",
			"login": "isaac.brock@example.com", "mobilePhone": "555-415-1337",
		},
		"credentials": map[string]any{"password": map[string]any{}, "provider": map[string]any{"type": "OKTA", "name": "OKTA"}},
		"_links":      map[string]any{"self": map[string]any{"href": self}},
	})
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.fault(w, r, id) {
		return
	}
	t, ok := s.Get(id)
	if !ok || t.Revoked { // Okta answers no revoked token
		writeError(w, http.StatusNotFound, notFoundBody(id, "ApiToken"))
		return
	}
	vendortest.WriteJSON(w, http.StatusOK, s.render(r, t))
}

// list answers the list: active tokens by ID after the after cursor,
// limit clamped to 1..200 (whether Okta caps or refuses more is not
// confirmed), and the Link header: rel="self", and rel="next" (with after
// the page's last ID) while tokens remain.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, ListID) {
		return
	}
	q := r.URL.Query()
	after := q.Get("after")
	all := s.Select(func(t Token) bool { return !t.Revoked && t.ID > after })
	limit := s.PerPage(min(vendortest.Positive(q.Get("limit"), DefaultLimit), MaxLimit))
	page := vendortest.Page(all, 0, limit)
	items := vendortest.Render(page, func(t Token) map[string]any { return s.render(r, t) })
	link := func(after string) string {
		v := url.Values{"limit": {strconv.Itoa(limit)}}
		if after != "" {
			v.Set("after", after)
		}
		return (&url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: v.Encode()}).String()
	}
	w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="self"`, link(after)))
	if len(all) > len(page) {
		w.Header().Add("Link", fmt.Sprintf(`<%s>; rel="next"`, link(page[len(page)-1].ID)))
	}
	vendortest.WriteJSON(w, http.StatusOK, items)
}

// revoke answers DELETE /api/v1/api-tokens/{id} (and /current, the
// calling token): 204, the token revoked.
func (s *Server) revoke(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, DeleteID) {
		return
	}
	id := r.PathValue("id")
	if id == "current" {
		s.SetKey("")
	}
	if _, ok := s.Update(id, func(t *Token) { t.Revoked = true }); !ok && id != "current" {
		writeError(w, http.StatusNotFound, notFoundBody(id, "ApiToken"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// render is s's answer for t on r: with its value when echoing.
func (s *Server) render(r *http.Request, t Token) map[string]any {
	out := render(r.Host, t)
	if s.EchoValues() {
		out["tokenValue"] = t.Value
	}
	return out
}

// render is a token as Okta answers it: every field of the ApiToken
// schema, _links as the examples write them.
func render(host string, t Token) map[string]any {
	updated := t.UpdatedAt
	if updated.IsZero() {
		updated = t.CreatedAt
	}
	var expires any
	if t.ExpiresAt != nil {
		expires = timestamp(*t.ExpiresAt)
	}
	window := cmp.Or(t.TokenWindow, "P30D")
	network := map[string]any{"connection": cmp.Or(t.Network.Connection, "ANYWHERE")}
	if len(t.Network.Include) > 0 {
		network["include"] = t.Network.Include
	}
	if len(t.Network.Exclude) > 0 {
		network["exclude"] = t.Network.Exclude
	}
	base := "https://" + host + "/api/v1"
	return map[string]any{
		"name":        t.Name,
		"userId":      t.Owner,
		"tokenWindow": window,
		"network":     network,
		"id":          t.ID,
		"clientName":  cmp.Or(t.ClientName, "Okta API"),
		"expiresAt":   expires,
		"created":     timestamp(t.CreatedAt),
		"lastUpdated": timestamp(updated),
		"_links": map[string]any{
			"self": map[string]any{"href": base + "/api-tokens/" + t.ID, "hints": map[string]any{"allow": []string{"GET", "DELETE"}}},
			"user": map[string]any{"href": base + "/users/" + t.Owner, "hints": map[string]any{"allow": []string{"GET"}}},
		},
	}
}

// timestamp is t as Okta writes times: UTC, milliseconds, Z.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// RateLimited is Okta's 429: E0000047 and the X-Rate-Limit-* headers with
// nothing remaining and the reset retryAfter seconds from now (as Unix
// seconds), now being Okta's clock, which its Date header shows. Okta
// documents no Retry-After: a client waits for the reset.
func RateLimited(now time.Time, retryAfter int) vendortest.Fault {
	reset := now.Add(time.Duration(retryAfter) * time.Second)
	return vendortest.Fault{Status: http.StatusTooManyRequests, ContentType: "application/json", Body: rateLimitedBody,
		Header: http.Header{
			"Date":                   {now.UTC().Format(http.TimeFormat)},
			"X-Rate-Limit-Limit":     {strconv.Itoa(RateLimit)},
			"X-Rate-Limit-Remaining": {"0"},
			"X-Rate-Limit-Reset":     {strconv.FormatInt(reset.Unix(), 10)},
		}}
}

// Sample returns an API token with realistic defaults: created
// 2021-11-09 20:38:10 UTC by user 00uXXXXXXXXXXXXXXXXX, last updated two
// days later, expiring tokenWindow (30 days) after that.
func Sample(id, name string) Token {
	created := time.Date(2021, 11, 9, 20, 38, 10, 0, time.UTC)
	updated := created.Add(48 * time.Hour)
	expires := updated.Add(30 * 24 * time.Hour)
	return Token{ID: id, Name: name, Owner: "00uXXXXXXXXXXXXXXXXX", ClientName: "Okta API", TokenWindow: "P30D",
		Network: Network{Connection: "ANYWHERE"}, CreatedAt: created, UpdatedAt: updated, ExpiresAt: &expires,
		Value: "00" + strings.Repeat("x", 40)}
}
