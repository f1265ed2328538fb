// Package atlassiantest is a fake Atlassian admin API over HTTPS, like
// net/http/httptest: the user API tokens of one organization as the API
// Access REST API documents them (docs/vendors/atlassian.md) — the list
// GET /admin/api-access/v1/orgs/:orgId/api-tokens ({"data":[...],
// "links":{"self","next","prev"}}, paginated by an opaque cursor that
// links.next carries as a full URL, or bare), the key check
// .../api-tokens/count (a bare integer), the q and status filters, the
// admin APIs' error bodies and X-RateLimit-* headers (the reset an ISO
// 8601 date), and per-request faults from vendortest. Atlassian has no
// GET of one token.
package atlassiantest

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Token is one user API token the fake holds.
type Token struct {
	ID string
	// Name is the token's label.
	Name string
	// Status is "ALLOWED" unless set (the only documented value).
	Status    string
	CreatedAt time.Time
	// ExpiresAt and LastUsedAt (lastActiveAt): nil leaves the field out.
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	// Owner is the account ID of the user the token belongs to;
	// OwnerName and OwnerEmail are that user's name and email.
	Owner      string
	OwnerName  string
	OwnerEmail string
	Scopes     []string
	// Value is the token itself: no read answer carries it (see
	// SetEchoValues). A client must never copy it.
	Value string
}

// ListID is the Scenarios key of every list request; "verify" is the key
// check's (.../api-tokens/count).
const ListID = "list"

// DefaultPageSize is the fake's page size: Atlassian's default is not
// confirmed.
const DefaultPageSize = 20

// Server is a fake Atlassian admin API for one organization. Its tokens
// are filed by ID; Delete is Atlassian's revocation (it deletes a revoked
// token); SetEchoValues puts each token's value in token, which
// Atlassian's read answers never carry (only the creation of an API key
// answers one); SetMaxPerPage forces a page size below DefaultPageSize.
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS
	*vendortest.Store[string, Token]
	vendortest.Paging

	orgID      string
	bareCursor atomic.Bool
	noScope    atomic.Bool
}

// NewServer starts a fake Atlassian admin API that accepts the
// organization API key key for the organization orgID.
func NewServer(key, orgID string) *Server {
	s := &Server{Store: vendortest.NewStore(key, func(t Token) string { return t.ID }), orgID: orgID}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/api-access/v1/orgs/{orgId}/api-tokens/count", s.count)
	mux.HandleFunc("GET /admin/api-access/v1/orgs/{orgId}/api-tokens", s.list)
	s.Listen(mux)
	return s
}

// SetBareCursor makes links.next the bare cursor, not the next page's
// URL: Atlassian's admin APIs do both (ID-8618). A bare cursor comes back
// as the query parameter cursor.
func (s *Server) SetBareCursor(bare bool) { s.bareCursor.Store(bare) }

// SetInsufficientScope makes the key one without read:tokens:admin:
// Atlassian answers 401 ADMIN-401-2.
func (s *Server) SetInsufficientScope(noScope bool) { s.noScope.Store(noScope) }

// ListCalls returns how many list requests arrived.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

// fault applies a scenario for key, or answers a wrong key (401), a key
// without the scope (401 ADMIN-401-2) or another organization (404, not
// confirmed): true when it answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, key string) bool {
	if s.Intercept(w, r, key, errorBody) {
		return true
	}
	tok, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	accepted := s.Key()
	switch {
	case !bearer || accepted == "" || tok != accepted:
		vendortest.WriteError(w, http.StatusUnauthorized, errorBody)
	case s.noScope.Load():
		vendortest.WriteJSON(w, http.StatusUnauthorized, errorsBody("ADMIN-401-2", http.StatusUnauthorized, "INSUFFICIENT_SCOPE", InsufficientScope))
	case r.PathValue("orgId") != s.orgID:
		vendortest.WriteError(w, http.StatusNotFound, errorBody)
	default:
		rateHeaders(w.Header(), time.Now(), 99)
		return false
	}
	return true
}

// InsufficientScope is the detail of Atlassian's 401 ADMIN-401-2 (AX-196).
const InsufficientScope = "Insufficient scope. Create a new API Key for your Organization with the scopes the request needs."

// matching are the tokens the request's q and status filters select, in
// the list's order (creation, then ID).
func (s *Server) matching(q url.Values) []Token {
	text, status := strings.ToLower(q.Get("q")), q.Get("status")
	out := s.Select(func(t Token) bool {
		if text != "" && !strings.Contains(strings.ToLower(t.Name+"\n"+t.OwnerName+"\n"+t.OwnerEmail), text) {
			return false
		}
		return status == "" || statusOf(t) == status
	})
	slices.SortFunc(out, func(a, b Token) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// count answers .../api-tokens/count: how many tokens the filters
// select, as a bare integer.
func (s *Server) count(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, "verify") {
		return
	}
	vendortest.JSON(w, http.StatusOK, []byte(strconv.Itoa(len(s.matching(r.URL.Query())))))
}

// list answers .../api-tokens: one page from the cursor's offset, and
// links with self, next (absent on the last page) and prev (absent on
// the first).
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, ListID) {
		return
	}
	q := r.URL.Query()
	offset := 0
	if c := q.Get("cursor"); c != "" {
		var ok bool
		if offset, ok = decodeCursor(c); !ok {
			vendortest.WriteJSON(w, http.StatusBadRequest, errorsBody("ADMIN-400-1", http.StatusBadRequest, "BAD_REQUEST", "Invalid cursor."))
			return
		}
	}
	all := s.matching(q)
	size := s.PerPage(DefaultPageSize)
	echo, bare := s.EchoValues(), s.bareCursor.Load()
	start := min(offset, len(all))
	end := min(start+size, len(all))
	items := vendortest.Render(all[start:end], func(t Token) map[string]any {
		item := render(t, r.PathValue("orgId"))
		if echo {
			item["token"] = t.Value
		}
		return item
	})
	at := func(offset int) string {
		c := encodeCursor(offset)
		if bare {
			return c
		}
		q := r.URL.Query()
		q.Set("cursor", c)
		return (&url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}).String()
	}
	links := map[string]any{"self": (&url.URL{Scheme: "https", Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}).String()}
	if end < len(all) {
		links["next"] = at(end)
	}
	if start > 0 {
		links["prev"] = at(max(start-size, 0))
	}
	vendortest.WriteJSON(w, http.StatusOK, map[string]any{"data": items, "links": links})
}

// encodeCursor is an opaque cursor for a page starting at offset.
func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"offset":%d}`, offset)))
}

func decodeCursor(c string) (int, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	var v struct {
		Offset *int `json:"offset"`
	}
	if err != nil || json.Unmarshal(b, &v) != nil || v.Offset == nil || *v.Offset < 0 {
		return 0, false
	}
	return *v.Offset, true
}

func statusOf(t Token) string {
	if t.Status == "" {
		return "ALLOWED"
	}
	return t.Status
}

// timeFormat is how the fake writes times: RFC 3339 UTC with
// milliseconds, as the User management API does (the api-access format
// is not confirmed).
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// render is a token of the organization org as Atlassian lists it: every
// documented field, expiresAt and lastActiveAt left out when unset.
func render(t Token, org string) map[string]any {
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	out := map[string]any{
		"id": t.ID, "label": t.Name, "status": statusOf(t), "createdAt": t.CreatedAt.UTC().Format(timeFormat),
		"user":   map[string]any{"id": t.Owner, "orgId": org, "name": t.OwnerName, "email": t.OwnerEmail},
		"scopes": scopes,
	}
	if t.ExpiresAt != nil {
		out["expiresAt"] = t.ExpiresAt.UTC().Format(timeFormat)
	}
	if t.LastUsedAt != nil {
		out["lastActiveAt"] = t.LastUsedAt.UTC().Format(timeFormat)
	}
	return out
}

// errorsBody is the admin APIs' {"errors":[{code,status,title,detail}]}
// shape (AX-196); detail "" leaves it out.
func errorsBody(code string, status int, title, detail string) map[string]any {
	e := map[string]any{"status": strconv.Itoa(status), "title": title}
	if code != "" {
		e["code"] = code
	}
	if detail != "" {
		e["detail"] = detail
	}
	return map[string]any{"errors": []any{e}}
}

// PermissionDenied is the message of the admin APIs' 403.
const PermissionDenied = "User has no permission to access resource."

// errorBody is Atlassian's error answer for a status: the gateway's
// {"code","message"} for 401 (not confirmed), the Spring-style body for
// 403 (community thread), the errors shape (title only) otherwise.
func errorBody(status int) (string, string) {
	var v any
	switch status {
	case http.StatusUnauthorized:
		v = map[string]any{"code": status, "message": "Unauthorized"}
	case http.StatusForbidden:
		v = map[string]any{"timestamp": time.Now().UTC().Format("2006-01-02T15:04:05.000-07:00"), "path": "/admin/api-access/v1/orgs",
			"status": status, "error": "Forbidden", "message": PermissionDenied, "requestId": "b4fce632-202784"}
	default:
		v = errorsBody("", status, http.StatusText(status), "")
	}
	b, _ := json.Marshal(v)
	return "application/json", string(b)
}

// rateHeaders sets the X-RateLimit-* headers every api-access answer
// carries: the reset is the ISO 8601 date of the next minute's window.
func rateHeaders(h http.Header, now time.Time, remaining int) {
	h.Set("X-RateLimit-Limit", "100")
	h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-RateLimit-Reset", now.UTC().Truncate(time.Minute).Add(time.Minute).Format(time.RFC3339))
}

// RateLimited is Atlassian's 429: X-RateLimit-Remaining 0, the reset as
// an ISO 8601 date retryAfterSeconds from now, and Retry-After in seconds
// (documented for Jira and Confluence; for the admin APIs not confirmed:
// clear it to test its absence). The body is the errors shape (not
// confirmed).
func RateLimited(now time.Time, retryAfterSeconds int) vendortest.Fault {
	b, _ := json.Marshal(errorsBody("", http.StatusTooManyRequests, "Too Many Requests", ""))
	return vendortest.Fault{Status: http.StatusTooManyRequests, RetryAfter: strconv.Itoa(retryAfterSeconds),
		ContentType: "application/json", Body: string(b), Header: http.Header{
			"X-Ratelimit-Limit":     {"100"},
			"X-Ratelimit-Remaining": {"0"},
			"X-Ratelimit-Reset":     {now.UTC().Add(time.Duration(retryAfterSeconds) * time.Second).Format(time.RFC3339)},
		}}
}

// Sample returns an ALLOWED token with realistic defaults: Jane Doe's
// (SampleUser), created 2026-01-12, expiring a year later, never used.
func Sample(id, name string) Token {
	created := time.Date(2026, 1, 12, 9, 30, 0, 0, time.UTC)
	exp := created.AddDate(1, 0, 0)
	return Token{ID: id, Name: name, Status: "ALLOWED", CreatedAt: created, ExpiresAt: &exp,
		Owner: SampleUser, OwnerName: "Jane Doe", OwnerEmail: "jane@example.com", Scopes: []string{"read:jira-work"},
		Value: "ATATT3xFfGF0credsyncsample" + id}
}

// SampleUser is the account ID of Sample's owner.
const SampleUser = "5b10ac8d82e05b22cc7d4ef5"
