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

// Server is a fake Grafana with one organization (ID 1).
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS

	mu         sync.Mutex
	key        string
	accounts   map[int64]ServiceAccount
	tokens     map[string]Token
	echoValues bool
}

// NewServer starts a fake Grafana that accepts the service account
// token key.
func NewServer(key string) *Server {
	s := &Server{key: key, accounts: map[int64]ServiceAccount{}, tokens: map[string]Token{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/serviceaccounts/search", s.search)
	mux.HandleFunc("GET /api/serviceaccounts/{sa}/tokens", s.list)
	mux.HandleFunc("GET /api/serviceaccounts/{sa}", s.account)
	s.Listen(mux)
	return s
}

// SetKey changes the accepted token (a rotation of the provider's token).
func (s *Server) SetKey(k string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = k
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
	defer s.mu.Unlock()
	if _, ok := s.accounts[owner]; !ok {
		s.accounts[owner] = SampleServiceAccount(owner, fmt.Sprintf("sa-%d", owner))
	}
	s.tokens[t.ID] = t
}

// Delete removes a token (Grafana deletes a token it revokes): it leaves
// the list.
func (s *Server) Delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, id)
}

// SetEchoValues makes every listed token carry its value in key.
// Grafana's list never does (only the creation answer carries key): this
// is for tests that prove a client copies it nowhere.
func (s *Server) SetEchoValues(echo bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echoValues = echo
}

// ListCalls returns how many token list requests arrived.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

// fault applies a scenario for key, or answers a wrong token with
// Grafana's 401: true when it answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, key string) bool {
	if f, ok := s.Record(key); ok && vendortest.Apply(w, r, f, errorBody) {
		return true
	}
	s.mu.Lock()
	tok, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ok := bearer && s.key != "" && tok == s.key
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusUnauthorized)
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
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Token
	for _, t := range s.tokens {
		if t.Owner == strconv.FormatInt(id, 10) {
			out = append(out, t)
		}
	}
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
		writeError(w, http.StatusNotFound)
		return
	}
	s.mu.Lock()
	echo := s.echoValues
	s.mu.Unlock()
	items := []map[string]any{}
	for _, t := range s.tokensOf(sa.ID) {
		item := render(t, time.Now())
		if echo {
			item["key"] = t.Value
		}
		items = append(items, item)
	}
	writeJSON(w, http.StatusOK, items)
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
		writeError(w, http.StatusNotFound)
		return
	}
	out := s.renderAccount(sa)
	out["createdAt"], out["updatedAt"], out["teams"] = sa.CreatedAt, sa.CreatedAt, []string{}
	delete(out, "accessControl")
	delete(out, "isExternal")
	writeJSON(w, http.StatusOK, out)
}

// search answers GET /api/serviceaccounts/search: accounts by name, the
// query (a substring of the name), disabled=true and expiredTokens=true
// filters, perpage (default 1000) and page (from 1).
func (s *Server) search(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, "verify") {
		return
	}
	q := r.URL.Query()
	perPage, page := positive(q.Get("perpage"), DefaultPerPage), positive(q.Get("page"), 1)
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
	start := min((page-1)*perPage, len(all))
	end := min(start+perPage, len(all))
	accounts := make([]map[string]any, 0, end-start)
	for _, sa := range all[start:end] {
		accounts = append(accounts, s.renderAccount(sa))
	}
	writeJSON(w, http.StatusOK, map[string]any{"totalCount": len(all), "serviceAccounts": accounts, "page": page, "perPage": perPage})
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

func writeError(w http.ResponseWriter, status int) {
	ct, body := errorBody(status)
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// RateLimited is a 429 with Retry-After in seconds: Grafana documents no
// rate limit for this API, nor rate-limit headers; the body is its
// {"message"} shape (not confirmed). now dates the answer.
func RateLimited(now time.Time, retryAfterSeconds int) vendortest.Fault {
	_, body := errorBody(http.StatusTooManyRequests)
	return vendortest.Fault{Status: http.StatusTooManyRequests, RetryAfter: strconv.Itoa(retryAfterSeconds),
		ContentType: "application/json", Body: body, Header: http.Header{"Date": {now.UTC().Format(http.TimeFormat)}}}
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
