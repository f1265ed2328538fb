// Package grafanatest is a fake Grafana (a Grafana Cloud stack or a
// self-hosted instance) over HTTPS, like net/http/httptest: service
// accounts and their tokens as Grafana's service account HTTP API
// documents them (docs/vendors/grafana.md) — the tokens of one account as
// a bare array (GET /api/serviceaccounts/:id/tokens, the account by
// numeric ID or UID, no pagination), the search GET
// /api/serviceaccounts/search (the key check), one account GET
// /api/serviceaccounts/:id, Grafana's error bodies ({"message": ...}), and
// per-request faults from vendortest. Grafana has no GET of one token.
package grafanatest

import (
	"cmp"
	"crypto/md5" //nolint:gosec // Grafana's avatar URLs are MD5 hashes; nothing secret
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Token is one service account token the fake holds.
type Token struct {
	// ID is the token's numeric ID, in decimal: Grafana answers it as a
	// JSON number.
	ID   string
	Name string
	// Owner is the numeric ID, in decimal, of the service account the
	// token belongs to (Put creates the account when it is unknown).
	Owner     string
	CreatedAt time.Time // written with its zone, as Go's time.Time marshals
	// LastUsedAt nil: never used (null). ExpiresAt nil: never expires
	// (null).
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	Revoked    bool
	// Value is the token itself (glsa_...): only the creation answer
	// carries it, in key (see SetEchoValues). A client must never copy it.
	Value string
}

// ServiceAccount is one service account the fake holds.
type ServiceAccount struct {
	ID         int64
	UID        string
	Name       string
	Login      string
	Role       string // Viewer, Editor, Admin or None
	IsDisabled bool
	IsExternal bool
	CreatedAt  time.Time
}

// ListID is the Scenarios key of every token list request; "verify" is
// the key check's (the search), and "account" one account's GET.
const ListID = "list"

// DefaultPerPage is the search's page size when perpage is not a
// positive number.
const DefaultPerPage = 1000

// Server is a fake Grafana with one organization (ID 1). Its tokens are
// filed by ID; Delete is Grafana's revocation (it deletes a token it
// revokes); SetEchoValues puts each listed token's value in key, which
// Grafana's list never carries (only the creation answer does).
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS
	*vendortest.Store[string, Token]

	mu       sync.Mutex // guards accounts
	accounts map[int64]ServiceAccount
}

// NewServer starts a fake Grafana that accepts the service account
// token key.
func NewServer(key string) *Server {
	s := &Server{Store: vendortest.NewStore(key, func(t Token) string { return t.ID }), accounts: map[int64]ServiceAccount{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/serviceaccounts/search", s.search)
	mux.HandleFunc("GET /api/serviceaccounts/{sa}/tokens", s.list)
	mux.HandleFunc("GET /api/serviceaccounts/{sa}", s.account)
	s.Listen(mux)
	return s
}

// PutServiceAccount adds or replaces a service account.
func (s *Server) PutServiceAccount(sa ServiceAccount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[sa.ID] = sa
}

// Put adds or replaces a token, and creates its service account (named
// sa-<id>) when the fake has none of that ID. Its ID and Owner must be
// decimal numbers.
func (s *Server) Put(t Token) {
	if _, err := strconv.ParseInt(t.ID, 10, 64); err != nil {
		panic(fmt.Sprintf("grafanatest: token ID %q is not a number", t.ID))
	}
	owner, err := strconv.ParseInt(t.Owner, 10, 64)
	if err != nil {
		panic(fmt.Sprintf("grafanatest: token owner %q is not a service account ID", t.Owner))
	}
	s.mu.Lock()
	if _, ok := s.accounts[owner]; !ok {
		s.accounts[owner] = SampleServiceAccount(owner, fmt.Sprintf("sa-%d", owner))
	}
	s.mu.Unlock()
	s.Store.Put(t)
}

// ListCalls returns how many token list requests arrived.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

// fault applies a scenario for key, or answers a wrong token with
// Grafana's 401: true when it answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, key string) bool {
	if s.Intercept(w, r, key, errorBody) {
		return true
	}
	tok, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if accepted := s.Key(); !bearer || accepted == "" || tok != accepted {
		vendortest.WriteError(w, http.StatusUnauthorized, errorBody)
		return true
	}
	return false
}

// lookup finds the service account of a path's {sa}: a numeric ID, or a
// UID. found is false for an unknown UID (Grafana: 404); an unknown
// numeric ID is not checked (Grafana's ListTokens answers 200 []).
func (s *Server) lookup(ref string) (sa ServiceAccount, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id, err := strconv.ParseInt(ref, 10, 64); err == nil {
		sa, ok := s.accounts[id]
		if !ok {
			sa = ServiceAccount{ID: id}
		}
		return sa, true
	}
	for _, sa := range s.accounts {
		if sa.UID == ref {
			return sa, true
		}
	}
	return ServiceAccount{}, false
}

// tokensOf are the service account's tokens by ID.
func (s *Server) tokensOf(id int64) []Token {
	out := s.Select(func(t Token) bool { return t.Owner == strconv.FormatInt(id, 10) })
	slices.SortFunc(out, func(a, b Token) int {
		x, _ := strconv.ParseInt(a.ID, 10, 64)
		y, _ := strconv.ParseInt(b.ID, 10, 64)
		return cmp.Compare(x, y)
	})
	return out
}

// list answers GET /api/serviceaccounts/:sa/tokens: every token of the
// account, one bare array.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, ListID) {
		return
	}
	sa, ok := s.lookup(r.PathValue("sa"))
	if !ok {
		vendortest.WriteError(w, http.StatusNotFound, errorBody)
		return
	}
	echo := s.EchoValues()
	items := vendortest.Render(s.tokensOf(sa.ID), func(t Token) map[string]any {
		item := render(t, time.Now())
		if echo {
			item["key"] = t.Value
		}
		return item
	})
	vendortest.WriteJSON(w, http.StatusOK, items)
}

// account answers GET /api/serviceaccounts/:sa: one account, with its
// token count.
func (s *Server) account(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, "account") {
		return
	}
	sa, ok := s.lookup(r.PathValue("sa"))
	s.mu.Lock()
	_, known := s.accounts[sa.ID]
	s.mu.Unlock()
	if !ok || !known {
		vendortest.WriteError(w, http.StatusNotFound, errorBody)
		return
	}
	out := s.renderAccount(sa)
	out["createdAt"], out["updatedAt"], out["teams"] = sa.CreatedAt, sa.CreatedAt, []string{}
	delete(out, "accessControl")
	delete(out, "isExternal")
	vendortest.WriteJSON(w, http.StatusOK, out)
}

// search answers GET /api/serviceaccounts/search: accounts by name, the
// query (a substring of the name), disabled=true and expiredTokens=true
// filters, perpage (default 1000) and page (from 1).
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, "verify") {
		return
	}
	q := r.URL.Query()
	perPage, page := vendortest.Positive(q.Get("perpage"), DefaultPerPage), vendortest.Positive(q.Get("page"), 1)
	now := time.Now()
	s.mu.Lock()
	var all []ServiceAccount
	for _, sa := range s.accounts {
		if text := q.Get("query"); text != "" && !strings.Contains(strings.ToLower(sa.Name), strings.ToLower(text)) {
			continue
		}
		if q.Get("disabled") == "true" && !sa.IsDisabled {
			continue
		}
		all = append(all, sa)
	}
	s.mu.Unlock()
	if q.Get("expiredTokens") == "true" {
		all = slices.DeleteFunc(all, func(sa ServiceAccount) bool {
			return !slices.ContainsFunc(s.tokensOf(sa.ID), func(t Token) bool { return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) })
		})
	}
	slices.SortFunc(all, func(a, b ServiceAccount) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	accounts := vendortest.Render(vendortest.Page(all, (page-1)*perPage, perPage), s.renderAccount)
	vendortest.WriteJSON(w, http.StatusOK, map[string]any{"totalCount": len(all), "serviceAccounts": accounts, "page": page, "perPage": perPage})
}

// renderAccount is a service account as the search lists it.
func (s *Server) renderAccount(sa ServiceAccount) map[string]any {
	sum := md5.Sum([]byte(sa.Login)) //nolint:gosec // Grafana's avatar URL is the login's MD5 (a Gravatar hash), not a secret
	return map[string]any{
		"id": sa.ID, "uid": sa.UID, "name": sa.Name, "login": sa.Login, "orgId": 1, "isDisabled": sa.IsDisabled,
		"isExternal": sa.IsExternal, "role": sa.Role, "tokens": len(s.tokensOf(sa.ID)),
		"avatarUrl":     "/avatar/" + hex.EncodeToString(sum[:]),
		"accessControl": map[string]bool{"serviceaccounts:read": true},
	}
}

// render is a token as Grafana lists it (TokenDTO) at now:
// secondsUntilExpiration is 0 unless it expires within 7 days and has not
// expired.
func render(t Token, now time.Time) map[string]any {
	id, _ := strconv.ParseInt(t.ID, 10, 64)
	var lastUsed, expiration any
	secondsLeft, expired := 0.0, false
	if t.LastUsedAt != nil {
		lastUsed = *t.LastUsedAt
	}
	if t.ExpiresAt != nil {
		expiration = *t.ExpiresAt
		left := t.ExpiresAt.Sub(now)
		expired = left <= 0
		if !expired && left < 7*24*time.Hour {
			secondsLeft = left.Seconds()
		}
	}
	return map[string]any{
		"id": id, "name": t.Name, "created": t.CreatedAt, "lastUsedAt": lastUsed, "expiration": expiration,
		"secondsUntilExpiration": secondsLeft, "hasExpired": expired, "isRevoked": t.Revoked,
	}
}

// Grafana's messages.
const (
	InvalidAPIKey    = "Invalid API key"
	AccessDenied     = "You'll need additional permissions to perform this action. Permissions needed: serviceaccounts:read"
	NotFoundMessage  = "Not found"
	InternalError    = "Internal server error"
	TooManyRequests  = "Too many requests"
	InvalidAccountID = "Service Account ID is invalid"
)

// errorBody is Grafana's error answer for a status: errutil's shape for
// 401, the RBAC denial for 403, {"message"} otherwise (429's body is not
// documented).
func errorBody(status int) (string, string) {
	var v any
	switch status {
	case http.StatusUnauthorized:
		v = map[string]any{"extra": nil, "message": InvalidAPIKey, "messageId": "api-key.invalid", "statusCode": status, "traceID": ""}
	case http.StatusForbidden:
		v = map[string]any{"accessErrorId": "ACE0123456789", "message": AccessDenied, "title": "Access denied"}
	case http.StatusBadRequest:
		v = map[string]any{"message": InvalidAccountID, "traceID": ""}
	case http.StatusNotFound:
		v = map[string]any{"message": NotFoundMessage}
	case http.StatusTooManyRequests:
		v = map[string]any{"message": TooManyRequests}
	default:
		v = map[string]any{"message": InternalError}
	}
	b, _ := json.Marshal(v)
	return "application/json", string(b)
}

// RateLimited is a 429 with Retry-After in seconds: Grafana documents no
// rate limit for this API, nor rate-limit headers; the body is its
// {"message"} shape (not confirmed). now dates the answer.
func RateLimited(now time.Time, retryAfterSeconds int) vendortest.Fault {
	_, body := errorBody(http.StatusTooManyRequests)
	return vendortest.Fault{Status: http.StatusTooManyRequests, RetryAfter: strconv.Itoa(retryAfterSeconds),
		ContentType: "application/json", Body: body, Header: http.Header{"Date": {now.UTC().Format(http.TimeFormat)}}}
}

// SampleAccount is the service account of Sample's tokens.
const SampleAccount = "3"

// Sample returns a token of service account 3 with realistic defaults:
// created 2026-02-01, never used, never expiring, not revoked.
func Sample(id, name string) Token {
	return Token{ID: id, Name: name, Owner: SampleAccount, CreatedAt: time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC),
		Value: "glsa_credsyncSampleToken0000000000000_" + fmt.Sprintf("%08x", len(id))}
}

// SampleServiceAccount returns a service account with realistic
// defaults: role Viewer, enabled.
func SampleServiceAccount(id int64, name string) ServiceAccount {
	return ServiceAccount{ID: id, UID: fmt.Sprintf("sa-uid-%d", id), Name: name, Login: "sa-1-" + name, Role: "Viewer",
		CreatedAt: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
}
