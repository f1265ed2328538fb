// Package cloudflaretest is a fake Cloudflare API (v4) over HTTPS, like
// net/http/httptest: user API tokens (/user/tokens) and account API tokens
// (/accounts/{account_id}/tokens) as Cloudflare documents them
// (docs/vendors/cloudflare.md) — GET of one token, lists paginated by page
// number with result_info (per_page 5 to 50), the verify endpoints of each
// token kind, creation and roll (whose answers carry the token's value),
// Cloudflare's {success, errors, messages, result} envelope and error
// bodies, its Ratelimit headers and Retry-After, and per-token faults from
// vendortest.
//
// The fake serves under /client/v4, as api.cloudflare.com does: its URL is
// the API's base URL (https://127.0.0.1:port/client/v4).
package cloudflaretest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// BasePath is where the API lives on the host.
const BasePath = "/client/v4"

// KeyID is the token ID of the key the fake accepts: Put a Token with
// this ID to change what its verify answers (status, expiry).
const KeyID = "a9d1c6e0b7f84e2a9c3d5f7081b2c4d6"

// Token is one API token the fake holds.
type Token struct {
	ID string
	// AccountID is the account of an account API token; "" is a user
	// API token (of the key's user).
	AccountID  string
	Name       string
	CreatedAt  time.Time  // issued_on
	UpdatedAt  time.Time  // modified_on; zero is CreatedAt
	NotBefore  *time.Time // not_before
	LastUsedAt *time.Time // last_used_on: absent when nil
	ExpiresAt  *time.Time // expires_on: absent when nil (never expires)
	// Revoked is a disabled token (status disabled). A token past its
	// ExpiresAt has status expired.
	Revoked bool
	// Owner is creator_email_at_creation: who created an account token,
	// when Cloudflare knows it. User tokens never carry it.
	Owner string
	// ProvisionerID marks a provisioned account token (provisioner_id,
	// provisioner_type).
	ProvisionerID string
	// RequestIPs are condition.request_ip.in (CIDRs).
	RequestIPs []string
	// Value is the token itself: Cloudflare shows it only in the answers of
	// a creation (result.value) and a roll (result). A client must never
	// copy it.
	Value string
}

// ListID is the Scenarios key of every list request; other keys are token
// IDs (GET, roll) and "verify" (both verify endpoints).
const ListID = "list"

// VerifyID is the Scenarios key of the key check.
const VerifyID = "verify"

// Page sizes, as Cloudflare documents them (the default is not stated:
// the reference example shows 20).
const (
	DefaultPerPage = 20
	MinPerPage     = 5
	MaxPerPage     = 50
)

// Rate limit of a token: 1,200 requests per 5 minutes.
const (
	RateLimitQuota  = 1200
	RateLimitWindow = 300
)

// Server is a fake Cloudflare API. Its tokens are filed by ID;
// SetEchoValues puts each token's value in result.value, as Cloudflare's
// creation answers do; SetMaxPerPage forces a page size (result_info.per_page
// says it) below MaxPerPage.
type Server struct {
	vendortest.Scenarios
	vendortest.HTTPS
	*vendortest.Store[string, Token]
	vendortest.Paging

	keyAccount atomic.Value // string
}

// NewServer starts a fake Cloudflare that accepts the user API token key
// (token ID KeyID).
func NewServer(key string) *Server {
	s := &Server{Store: vendortest.NewStore(key, func(t Token) string { return t.ID })}
	mux := http.NewServeMux()
	for _, prefix := range []string{BasePath + "/user", BasePath + "/accounts/{account}"} {
		mux.HandleFunc("GET "+prefix+"/tokens/verify", s.verify)
		mux.HandleFunc("GET "+prefix+"/tokens/{id}", s.get)
		mux.HandleFunc("GET "+prefix+"/tokens", s.list)
		mux.HandleFunc("POST "+prefix+"/tokens", s.create)
		mux.HandleFunc("PUT "+prefix+"/tokens/{id}/value", s.roll)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, routeError(r))
	})
	s.Listen(mux)
	s.URL += BasePath
	return s
}

// SetKeyAccount makes the key an account API token of account (a user API
// token when ""): an account token is refused by the user endpoints, and
// by other accounts' endpoints; a user token may read any account's tokens.
func (s *Server) SetKeyAccount(account string) { s.keyAccount.Store(account) }

// ListCalls returns how many list requests arrived.
func (s *Server) ListCalls() int { return s.Calls(ListID) }

// errorItem is one element of an answer's errors.
type errorItem struct {
	Code       int         `json:"code"`
	Message    string      `json:"message"`
	ErrorChain []errorItem `json:"error_chain,omitempty"`
}

// envelope is Cloudflare's answer: {success, errors, messages, result}
// and, for lists, result_info.
type envelope struct {
	Success    bool        `json:"success"`
	Errors     []errorItem `json:"errors"`
	Messages   []message   `json:"messages"`
	Result     any         `json:"result"`
	ResultInfo *resultInfo `json:"result_info,omitempty"`
}

type message struct {
	Code    int     `json:"code"`
	Message string  `json:"message"`
	Type    *string `json:"type"`
}

type resultInfo struct {
	Page       int `json:"page"`
	PerPage    int `json:"per_page"`
	Count      int `json:"count"`
	TotalCount int `json:"total_count"`
}

// Error bodies. Cloudflare's reference has none per status: these are the
// bodies observed in public reports (docs/vendors/cloudflare.md, section
// 7), some without messages and result, as observed.
const (
	badHeadersBody   = `{"success":false,"errors":[{"code":6003,"message":"Invalid request headers","error_chain":[{"code":6111,"message":"Invalid format for Authorization header"}]}],"messages":[],"result":null}`
	invalidTokenBody = `{"success":false,"errors":[{"code":1000,"message":"Invalid API Token"}]}`
	unauthorizedBody = `{"success":false,"errors":[{"code":9109,"message":"Invalid access token"}],"messages":[],"result":null}`
	forbiddenBody    = `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}]}`
	// Not confirmed: the 429 body, and the 5xx one.
	rateLimitedBody = `{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[],"result":null}`
	serverErrorBody = `{"success":false,"errors":[{"code":10001,"message":"Internal server error"}],"messages":[],"result":null}`
)

// routeError is the 404 of a path: not confirmed for tokens; Cloudflare's
// answer for an unknown object identifier is of this form.
func routeError(r *http.Request) string {
	path := strings.TrimPrefix(r.URL.Path, BasePath)
	b, _ := json.Marshal(envelope{Errors: []errorItem{{Code: 7003,
		Message: "Could not route to " + path + ", perhaps your object identifier is invalid?"}}, Messages: []message{}})
	return string(b)
}

// errorBody renders a Status-only fault on r with Cloudflare's bodies.
func errorBody(r *http.Request) vendortest.ErrorBody {
	return func(status int) (string, string) {
		switch status {
		case http.StatusBadRequest:
			return "application/json", badHeadersBody
		case http.StatusUnauthorized:
			return "application/json", unauthorizedBody
		case http.StatusForbidden:
			return "application/json", forbiddenBody
		case http.StatusNotFound:
			return "application/json", routeError(r)
		case http.StatusTooManyRequests:
			return "application/json", rateLimitedBody
		}
		return "application/json", serverErrorBody
	}
}

// notTokenChar reports a character no Cloudflare API token holds (they
// are letters, digits, '_' and '-'): a token with one is a malformed
// Authorization header to Cloudflare, a 400, not a 401.
func notTokenChar(r rune) bool {
	return !strings.ContainsRune(tokenChars, r)
}

// tokenChars are the characters of a Cloudflare API token.
const tokenChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

func writeError(w http.ResponseWriter, status int, body string) {
	vendortest.JSON(w, status, []byte(body))
}

// fault applies a scenario for key, then Cloudflare's authentication: a
// missing or malformed Authorization header (a token with a character no
// token has) is a 400 (code 6003), a wrong token a 401
// (on verify, "Invalid API Token"), a token of the wrong kind or account
// a 403 (on verify, "Invalid API Token" too). True when it answered.
func (s *Server) fault(w http.ResponseWriter, r *http.Request, key string) bool {
	s.rateHeaders(w)
	if s.Intercept(w, r, key, errorBody(r)) {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" || strings.ContainsFunc(tok, notTokenChar) {
		writeError(w, http.StatusBadRequest, badHeadersBody)
		return true
	}
	accepted := s.Key()
	validKey := accepted != "" && tok == accepted
	keyAccount, _ := s.keyAccount.Load().(string)
	verify := key == VerifyID
	account := r.PathValue("account")
	switch {
	case !validKey && verify:
		writeError(w, http.StatusUnauthorized, invalidTokenBody)
	case !validKey:
		writeError(w, http.StatusUnauthorized, unauthorizedBody)
	case verify && keyAccount != account:
		// Observed for an account token sent to /user/tokens/verify; the
		// other way round is assumed to answer alike.
		writeError(w, http.StatusUnauthorized, invalidTokenBody)
	case keyAccount != "" && keyAccount != account:
		writeError(w, http.StatusForbidden, forbiddenBody)
	default:
		return false
	}
	return true
}

// rateHeaders sets the Ratelimit headers Cloudflare sends on every answer
// (r requests left, t seconds to the window's end).
func (s *Server) rateHeaders(w http.ResponseWriter) {
	left := max(RateLimitQuota-s.TotalCalls(), 0)
	w.Header().Set("Ratelimit", fmt.Sprintf(`"default";r=%d;t=%d`, left, RateLimitWindow))
	w.Header().Set("Ratelimit-Policy", fmt.Sprintf(`"default";q=%d;w=%d`, RateLimitQuota, RateLimitWindow))
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, VerifyID) {
		return
	}
	t, ok := s.Get(KeyID)
	if !ok {
		t = Token{ID: KeyID, CreatedAt: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	}
	result := map[string]any{"id": t.ID, "status": status(t)}
	if t.NotBefore != nil {
		result["not_before"] = timestamp(*t.NotBefore)
	}
	if t.ExpiresAt != nil {
		result["expires_on"] = timestamp(*t.ExpiresAt)
	}
	vendortest.WriteJSON(w, http.StatusOK, envelope{Success: true, Errors: []errorItem{}, Result: result,
		Messages: []message{{Code: 10000, Message: "This API Token is valid and active"}}})
}

// token answers a request for the path's token with a fault, or a 404
// when the path's kind (user or account) has no token of its ID; ok when
// it did not answer.
func (s *Server) token(w http.ResponseWriter, r *http.Request) (t Token, ok bool) {
	id := r.PathValue("id")
	if s.fault(w, r, id) {
		return t, false
	}
	if t, ok = s.Get(id); !ok || t.AccountID != r.PathValue("account") {
		writeError(w, http.StatusNotFound, routeError(r))
		return t, false
	}
	return t, true
}

func (s *Server) get(w http.ResponseWriter, r *http.Request) {
	if t, ok := s.token(w, r); ok {
		vendortest.WriteJSON(w, http.StatusOK, envelope{Success: true, Errors: []errorItem{}, Messages: []message{}, Result: s.render(t)})
	}
}

// list answers a list: tokens by ID (direction asc or desc), expired ones
// only with include_expired=true, per_page clamped to 5..50 (whether
// Cloudflare caps or refuses is not confirmed), result_info with the page
// size used.
func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, ListID) {
		return
	}
	q := r.URL.Query()
	includeExpired := q.Get("include_expired") == "true"
	all := s.Select(func(t Token) bool {
		return t.AccountID == r.PathValue("account") && (includeExpired || status(t) != "expired")
	})
	perPage := s.PerPage(min(max(vendortest.Positive(q.Get("per_page"), DefaultPerPage), MinPerPage), MaxPerPage))
	if q.Get("direction") == "desc" {
		slices.Reverse(all)
	}
	page := vendortest.Positive(q.Get("page"), 1)
	items := vendortest.Render(vendortest.Page(all, (page-1)*perPage, perPage), s.render)
	vendortest.WriteJSON(w, http.StatusOK, envelope{Success: true, Errors: []errorItem{}, Messages: []message{}, Result: items,
		ResultInfo: &resultInfo{Page: page, PerPage: perPage, Count: len(items), TotalCount: len(all)}})
}

// create answers POST .../tokens: the new token, with its value in
// result.value. The body needs a name.
func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	if s.fault(w, r, "create") {
		return
	}
	var req struct {
		Name      string     `json:"name"`
		ExpiresOn *time.Time `json:"expires_on"`
		NotBefore *time.Time `json:"not_before"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Name == "" {
		b, _ := json.Marshal(envelope{Errors: []errorItem{{Code: 1001, Message: "name is required"}}, Messages: []message{}})
		writeError(w, http.StatusBadRequest, string(b))
		return
	}
	now := time.Now().UTC().Truncate(time.Second)
	t := Token{ID: randomHex(16), AccountID: r.PathValue("account"), Name: req.Name, CreatedAt: now,
		NotBefore: req.NotBefore, ExpiresAt: req.ExpiresOn, Value: newValue(r.PathValue("account") != "")}
	s.Put(t)
	out := render(t)
	out["value"] = t.Value
	vendortest.WriteJSON(w, http.StatusOK, envelope{Success: true, Errors: []errorItem{}, Messages: []message{}, Result: out})
}

// roll answers PUT .../tokens/{id}/value: a new value for the token, the
// bare secret as result.
func (s *Server) roll(w http.ResponseWriter, r *http.Request) {
	t, ok := s.token(w, r)
	if !ok {
		return
	}
	t.Value, t.UpdatedAt = newValue(t.AccountID != ""), time.Now().UTC().Truncate(time.Second)
	s.Put(t)
	vendortest.WriteJSON(w, http.StatusOK, envelope{Success: true, Errors: []errorItem{}, Messages: []message{}, Result: t.Value})
}

// status is a token's status: disabled, expired or active.
func status(t Token) string {
	switch {
	case t.Revoked:
		return "disabled"
	case t.ExpiresAt != nil && !time.Now().Before(*t.ExpiresAt):
		return "expired"
	}
	return "active"
}

// render is s's answer for t: with its value when echoing.
func (s *Server) render(t Token) map[string]any {
	out := render(t)
	if s.EchoValues() {
		out["value"] = t.Value
	}
	return out
}

// render is a token as Cloudflare answers it (without its value): every
// documented field, the optional ones only when set.
func render(t Token) map[string]any {
	updated := t.UpdatedAt
	if updated.IsZero() {
		updated = t.CreatedAt
	}
	ips := t.RequestIPs
	if ips == nil {
		ips = []string{"123.123.123.0/24", "2606:4700::/32"}
	}
	out := map[string]any{
		"id":          t.ID,
		"name":        t.Name,
		"status":      status(t),
		"issued_on":   timestamp(t.CreatedAt),
		"modified_on": timestamp(updated),
		"condition": map[string]any{"request_ip": map[string]any{
			"in": ips, "not_in": []string{"123.123.123.100/24", "2606:4700:4700::/48"}}},
		"policies": []any{map[string]any{
			"id":     "f267e341f3dd4697bd3b9f71dd96247f",
			"effect": "allow",
			"permission_groups": []any{map[string]any{
				"id": "c8fed203ed3043cba015a93ad1616f1f", "name": "Zone Read",
				"meta": map[string]any{"category": "category", "deprecated": "deprecated", "description": "description",
					"editable": "editable", "eol_at": "2019-12-27T18:11:19.117Z", "label": "load_balancer_admin",
					"scopes": "com.cloudflare.api.account", "visibility": "visibility"},
			}},
			"resources": map[string]any{"com.cloudflare.api.account.zone.22b1de5f1c0e4b3ea97bb1e963b06a43": "*"},
		}},
	}
	if t.LastUsedAt != nil {
		out["last_used_on"] = timestamp(*t.LastUsedAt)
	}
	if t.NotBefore != nil {
		out["not_before"] = timestamp(*t.NotBefore)
	}
	if t.ExpiresAt != nil {
		out["expires_on"] = timestamp(*t.ExpiresAt)
	}
	if t.AccountID != "" && t.Owner != "" {
		out["creator_email_at_creation"] = t.Owner
	}
	if t.AccountID != "" && t.ProvisionerID != "" {
		out["provisioner_id"] = t.ProvisionerID
		out["provisioner_type"] = "com.cloudflare.api.oauthtoken"
	}
	return out
}

// timestamp is t as Cloudflare writes times: RFC 3339, UTC, no fraction.
func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// RateLimited is Cloudflare's 429: Retry-After in seconds, the Ratelimit
// headers with nothing left, and an error body (not confirmed).
func RateLimited(now time.Time, retryAfter int) vendortest.Fault {
	_ = now // Cloudflare's headers count seconds, not times
	return vendortest.Fault{Status: http.StatusTooManyRequests, RetryAfter: strconv.Itoa(retryAfter),
		ContentType: "application/json", Body: rateLimitedBody, Header: http.Header{
			"Ratelimit":        {fmt.Sprintf(`"default";r=0;t=%d`, retryAfter)},
			"Ratelimit-Policy": {fmt.Sprintf(`"default";q=%d;w=%d`, RateLimitQuota, RateLimitWindow)},
		}}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newValue is a new token value: cfut_ (user) or cfat_ (account), 40
// characters and a checksum.
func newValue(account bool) string {
	prefix := "cfut_"
	if account {
		prefix = "cfat_"
	}
	return prefix + randomHex(20) + randomHex(4)
}

// Sample returns a user API token with realistic defaults: issued
// 2026-02-01 10:00 UTC, modified a day later, never used, no expiry.
func Sample(id, name string) Token {
	created := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	return Token{ID: id, Name: name, CreatedAt: created, UpdatedAt: created.Add(24 * time.Hour),
		NotBefore: &created, Value: "cfut_" + strings.Repeat("0", 40) + "c0ffee01"}
}
