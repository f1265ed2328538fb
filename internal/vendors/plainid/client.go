// Package plainid reads PlainID API client metadata through the Policy
// Management APIs: a client-credentials token from
// POST {url}/api/1.0/api-key/token, then
// GET {url}/env-mgmt/1.0/api-key/clients/{id} with "Authorization: Bearer <token>".
package plainid

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// Keys of the provider's Secret.
const (
	// ClientIDKey holds the ID of the API client credsync authenticates as.
	ClientIDKey = "clientId"
	// ClientSecretKey holds that API client's secret.
	ClientSecretKey = "clientSecret"
)

const (
	tokenPath   = "/api/1.0/api-key/token"
	clientsPath = "/env-mgmt/1.0/api-key/clients/"

	// maxRefreshMargin is how long before expires_in a token is replaced;
	// tokens living less than ten times this are replaced at 90% of their life.
	maxRefreshMargin = 60 * time.Second
	// maxTokenLifetime caps expires_in, against a bogus answer.
	maxTokenLifetime = 365 * 24 * time.Hour
	// minTokenLen is the shortest access token accepted: a shorter one could
	// not be told apart from ordinary text when scrubbing it from answers.
	minTokenLen = 8
)

// Vendor is PlainID's registration.
func Vendor() vendors.Vendor {
	return vendors.Vendor{
		Name:     v1alpha1.VendorPlainID,
		Selected: func(spec *v1alpha1.CredentialProviderSpec) bool { return spec.PlainID != nil },
		SecretRef: func(spec *v1alpha1.CredentialProviderSpec) vendors.SecretRef {
			return vendors.SecretRef{
				Name: spec.PlainID.ClientSecretRef.Name,
				Keys: []string{ClientIDKey, ClientSecretKey},
			}
		},
		CheckRef: vendors.IDOnly(v1alpha1.VendorPlainID),
		URL:      func(spec *v1alpha1.CredentialProviderSpec) (string, error) { return baseURL(spec.PlainID) },
		// The regional APIs, api.{region}.plainid.io.
		SaaSHosts: []string{"*.plainid.io"},
		New:       newClient,
	}
}

// Client reads one PlainID tenant. It holds one access token, shared by all
// credentials of the provider: reused until shortly before it expires,
// replaced at once when the API rejects it. Safe for concurrent use.
type Client struct {
	base         string
	clientID     string
	clientSecret string
	caller       *vendors.Caller
	clock        clock.PassiveClock

	mu      sync.Mutex
	tok     token
	pending *tokenCall // the token request in flight, if any
}

var _ vendors.Client = (*Client)(nil)

// token is an access token and when to stop reusing it.
type token struct {
	value string
	// refreshAt is when to fetch a new token; zero when the vendor gave no
	// lifetime: the token is then reused until the API rejects it.
	refreshAt time.Time
}

func (t token) valid(now time.Time) bool {
	return t.value != "" && (t.refreshAt.IsZero() || now.Before(t.refreshAt))
}

// tokenCall is one token request that concurrent Gets wait for together.
type tokenCall struct {
	done  chan struct{}
	value string
	err   error
}

// newClient returns a client for the tenant in cfg.Spec.PlainID. It does not
// call the vendor.
func newClient(cfg vendors.Config) (vendors.Client, error) {
	base, err := baseURL(cfg.Spec.PlainID)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:         base,
		clientID:     cfg.Secret[ClientIDKey],
		clientSecret: cfg.Secret[ClientSecretKey],
		caller:       cfg.Caller,
		clock:        cfg.Clock,
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	return c, nil
}

// baseURL is the spec's url (https, may carry a path prefix) or, without
// one, https://api.{region}.plainid.io.
func baseURL(p *v1alpha1.PlainIDProvider) (string, error) {
	if p.URL != "" {
		return vendors.BaseURL("plainid", p.URL)
	}
	if !validRegion(p.Region) {
		return "", fmt.Errorf("%w: plainid region %q is not a region name such as us1", vendors.ErrInvalidSpec, p.Region)
	}
	return "https://api." + p.Region + ".plainid.io", nil
}

// validRegion reports whether r is a DNS label (lower case), as the CRD
// requires: it becomes part of a host name.
func validRegion(r string) bool {
	if r == "" || len(r) > 63 || r[0] == '-' || r[len(r)-1] == '-' {
		return false
	}
	for _, c := range r {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// Get fetches one API client's metadata.
func (c *Client) Get(ctx context.Context, ref vendors.Ref) (*vendors.Credential, error) {
	id, err := vendors.PathSegment("id", ref.ID)
	if err != nil {
		return nil, err
	}
	resp, tok, err := c.getAuthorized(ctx, c.base+clientsPath+id)
	if err != nil {
		return nil, err
	}
	cred, err := vendors.DecodeCredential[apiClient](c.caller, resp, ref.ID)
	if cred != nil {
		// A token echoed with JSON escapes (\/, \u00XX) survives the scrub
		// of the raw body: look again at what was decoded.
		vendors.RedactCredential(cred, tok)
	}
	return cred, err
}

// Verify requests a new token: the vendor accepts the client's credentials
// or refuses them (ErrUnauthorized). The token is kept for the reads.
func (c *Client) Verify(ctx context.Context) error {
	c.mu.Lock()
	c.tok = token{}
	c.mu.Unlock()
	_, err := c.token(ctx)
	return err
}

// Close releases the client's connections.
func (c *Client) Close() { c.caller.Close() }

// listLimit is the most clients PlainID lists per page.
const listLimit = 50

// ListPage lists one page of the API clients of the owners in
// inv.plainid.ownerIds, 50 at a time, owner after owner. The cursor is
// "<owner index>:<offset>".
func (c *Client) ListPage(ctx context.Context, inv *v1alpha1.Inventory, cursor string) (*vendors.Page, error) {
	var owners []string
	if inv != nil && inv.PlainID != nil {
		owners = inv.PlainID.OwnerIDs
	}
	if len(owners) == 0 {
		return nil, fmt.Errorf("%w: inventory.plainid.ownerIds names no owner", vendors.ErrInvalidSpec)
	}
	owner, offset, err := parseCursor(cursor, len(owners))
	if err != nil {
		return nil, err
	}
	u := c.base + strings.TrimSuffix(clientsPath, "/") + "?filter%5BownerId%5D=" + url.QueryEscape(owners[owner]) +
		"&limit=" + strconv.Itoa(listLimit) + "&offset=" + strconv.Itoa(offset)
	resp, tok, err := c.getAuthorized(ctx, u)
	if err != nil {
		return nil, err
	}
	var body struct {
		Data  []apiClient `json:"data"`
		Total *int        `json:"total"`
	}
	if err := c.caller.DecodeJSON(resp, &body); err != nil {
		return nil, err
	}
	if body.Total == nil {
		return nil, c.caller.Invalid(resp, "list answer has no total")
	}
	page := &vendors.Page{Items: make([]vendors.Item, 0, len(body.Data))}
	for i := range body.Data {
		cred, err := body.Data[i].Credential(body.Data[i].ID)
		if err != nil {
			return nil, c.caller.Invalid(resp, "client %d of the list: %v", offset+i+1, err)
		}
		vendors.RedactCredential(cred, tok)
		page.Items = append(page.Items, vendors.Item{Ref: vendors.Ref{ID: body.Data[i].ID}, Credential: cred})
	}
	next := offset + len(body.Data)
	switch {
	case next < *body.Total && len(body.Data) == 0:
		return nil, c.caller.Invalid(resp, "an empty page at offset %d of %d clients", offset, *body.Total)
	case next < *body.Total:
		page.Next = fmt.Sprintf("%d:%d", owner, next)
	case owner+1 < len(owners):
		page.Next = fmt.Sprintf("%d:0", owner+1)
	}
	return page, nil
}

// parseCursor reads a list cursor: the first page of the first owner for "".
func parseCursor(cursor string, owners int) (owner, offset int, err error) {
	if cursor == "" {
		return 0, 0, nil
	}
	o, off, ok := strings.Cut(cursor, ":")
	owner, err1 := strconv.Atoi(o)
	offset, err2 := strconv.Atoi(off)
	if !ok || err1 != nil || err2 != nil || owner < 0 || owner >= owners || offset < 0 {
		return 0, 0, fmt.Errorf("%w: list cursor %q", vendors.ErrInvalidResponse, cursor)
	}
	return owner, offset, nil
}

func redactToken(s, tok string) string { return strings.ReplaceAll(s, tok, "[redacted]") }

// getAuthorized GETs u with the shared token. On a 401 it drops that token
// and tries once more with a new one. It returns a 2xx answer and the
// token it was made with, or the error of any other answer.
func (c *Client) getAuthorized(ctx context.Context, u string) (*vendors.Response, string, error) {
	resp, tok, err := c.getWithToken(ctx, u)
	if err != nil {
		return nil, "", err
	}
	if !resp.OK() {
		code, message := errorFields(resp.Body)
		return nil, tok, c.caller.Fail(resp, redactToken(code, tok), redactToken(message, tok))
	}
	return resp, tok, nil
}

// getWithToken GETs u with the shared token, retrying once with a new one
// after a 401, and returns any answer.
func (c *Client) getWithToken(ctx context.Context, u string) (*vendors.Response, string, error) {
	tok, err := c.token(ctx)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.get(ctx, u, tok)
	if err != nil || resp.Status != http.StatusUnauthorized {
		return resp, tok, err
	}
	c.dropToken(tok)
	if tok, err = c.token(ctx); err != nil {
		return nil, "", err
	}
	resp, err = c.get(ctx, u, tok)
	return resp, tok, err
}

func (c *Client) get(ctx context.Context, u, tok string) (*vendors.Response, error) {
	resp, err := c.caller.Get(ctx, u, "Bearer "+tok)
	if err != nil {
		return nil, err
	}
	// The Caller redacts the Secret's values, not the token: should the
	// answer echo it (a proxy, a debug page), it must go before anything
	// reads the body into an error or a Credential.
	for _, form := range tokenForms(tok) {
		resp.Body = bytes.ReplaceAll(resp.Body, []byte(form), []byte("[redacted]"))
	}
	return resp, nil
}

// tokenForms are the ways a JSON answer may spell tok: as it is, as Go
// escapes it, and with "/" escaped as "\/" (PHP and others).
func tokenForms(tok string) []string {
	forms := []string{tok}
	if b, err := json.Marshal(tok); err == nil {
		forms = append(forms, string(b[1:len(b)-1]))
	}
	return append(forms, strings.ReplaceAll(forms[len(forms)-1], "/", `\/`))
}

// token returns the shared token, fetching a new one when there is none
// or it is about to expire. Concurrent callers share one token request,
// which runs apart from any caller's cancellation (the Caller's timeout
// bounds it); each caller stops waiting when its own ctx ends.
func (c *Client) token(ctx context.Context) (string, error) {
	c.mu.Lock()
	if c.tok.valid(c.clock.Now()) {
		v := c.tok.value
		c.mu.Unlock()
		return v, nil
	}
	call := c.pending
	if call == nil {
		call = &tokenCall{done: make(chan struct{})}
		c.pending = call
		go c.refresh(context.WithoutCancel(ctx), call)
	}
	c.mu.Unlock()
	select {
	case <-call.done:
		return call.value, call.err
	case <-ctx.Done():
		return "", fmt.Errorf("%w: waiting for a plainid token: %w", vendors.ErrUnavailable, ctx.Err())
	}
}

// refresh carries out call and keeps the token it got.
func (c *Client) refresh(ctx context.Context, call *tokenCall) {
	tok, err := c.requestToken(ctx)
	if err != nil {
		err = fmt.Errorf("plainid token request failed: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		c.tok = tok
	}
	call.value, call.err = tok.value, err
	c.pending = nil
	close(call.done)
}

// dropToken forgets tok after the API rejected it, unless another caller
// has replaced it already.
func (c *Client) dropToken(tok string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok.value == tok {
		c.tok = token{}
	}
}

// requestToken asks for a token with the OAuth client-credentials grant,
// form-encoded as public tools send it.
func (c *Client) requestToken(ctx context.Context) (token, error) {
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {c.clientID},
		"client_secret": {c.clientSecret},
	}
	req, err := c.caller.NewRequest(ctx, http.MethodPost, c.base+tokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return token{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	start := c.clock.Now()
	resp, err := c.caller.Do(req)
	if err != nil {
		return token{}, err
	}
	if !resp.OK() {
		return token{}, c.tokenFailure(resp)
	}
	return c.parseToken(resp, start)
}

// tokenFailure classifies a refused token request. Bad credentials answer
// 401, or 400 with an OAuth code (invalid_client, ...): both Unauthorized.
func (c *Client) tokenFailure(resp *vendors.Response) error {
	code, message := errorFields(resp.Body)
	err := c.caller.Fail(resp, code, message)
	var e *vendors.Error
	if badCredentials(resp.Status, code) && errors.As(err, &e) {
		e.Class = vendors.ErrUnauthorized
	}
	return err
}

func badCredentials(status int, code string) bool {
	if status != http.StatusBadRequest {
		return false
	}
	switch code = strings.ToLower(code); code {
	case "invalid_client", "invalid_grant", "unauthorized_client":
		return true
	}
	return strings.Contains(code, "credential") || strings.Contains(code, "unauthorized")
}

// tokenAnswer is the documented token answer; token_type is always Bearer.
// expires_in is in seconds; json.Number also takes it quoted, as some
// gateways send it.
type tokenAnswer struct {
	AccessToken string      `json:"access_token"`
	ExpiresIn   json.Number `json:"expires_in"`
}

// parseToken reads a 2xx token answer. The answer holds the token, so no
// error quotes it, nor the decoder's message (which may quote a value).
func (c *Client) parseToken(resp *vendors.Response, start time.Time) (token, error) {
	var a tokenAnswer
	if resp.Truncated || json.Unmarshal(resp.Body, &a) != nil {
		return token{}, c.caller.Invalid(resp, "token answer is not the documented JSON")
	}
	if len(a.AccessToken) < minTokenLen {
		return token{}, c.caller.Invalid(resp, "token answer has no usable access_token")
	}
	at, err := refreshAt(start, a.ExpiresIn)
	if err != nil {
		return token{}, c.caller.Invalid(resp, "%v", err)
	}
	return token{value: a.AccessToken, refreshAt: at}, nil
}

// refreshAt is when a token requested at start should be replaced: its
// lifetime less 60s, or less 10% of it when that is shorter. Without
// expires_in it is zero: reuse until the API rejects the token.
func refreshAt(start time.Time, expiresIn json.Number) (time.Time, error) {
	if expiresIn == "" {
		return time.Time{}, nil
	}
	secs, err := strconv.ParseFloat(expiresIn.String(), 64)
	if err != nil || math.IsNaN(secs) {
		return time.Time{}, errors.New("expires_in is not a number of seconds")
	}
	secs = min(max(secs, 0), maxTokenLifetime.Seconds())
	lifetime := time.Duration(secs * float64(time.Second))
	return start.Add(lifetime - min(maxRefreshMargin, lifetime/10)), nil
}

// errorFields reads PlainID's error body {"id","status","name","message"}
// (or OAuth's {"error","error_description"}): the vendor's code and
// message. Other bodies (HTML, plain text, other JSON) give nothing: they
// are not the vendor's documented words.
func errorFields(body []byte) (code, message string) {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) == nil {
		code = firstString(m, "name", "error", "code")
		message = firstString(m, "message", "error_description")
	}
	return code, message
}

func firstString(m map[string]json.RawMessage, keys ...string) string {
	for _, k := range keys {
		var s string
		if json.Unmarshal(m[k], &s) == nil && s != "" {
			return s
		}
	}
	return ""
}

// apiClient is the documented answer. Only these fields are read: secret
// and anything else the vendor adds are dropped.
type apiClient struct {
	ID            string `json:"id"`
	OwnerID       string `json:"ownerId"`
	OwnerType     string `json:"ownerType"`
	Name          string `json:"name"`
	Description   string `json:"description"`
	TokenDuration string `json:"tokenDuration"`
	Permission    string `json:"permission"`
}

func (b *apiClient) Credential(id string) (*vendors.Credential, error) {
	if b.ID == "" {
		return nil, errors.New("answer has no id")
	}
	if b.ID != id {
		return nil, fmt.Errorf("answer is for client %s, not %q", quoteShort(b.ID), id)
	}
	// tokenDuration is kept as PlainID writes it (no decision needs its
	// value); only its shape is checked, so that no other text lands in
	// status.
	if b.TokenDuration != "" && !isoDuration.MatchString(b.TokenDuration) {
		return nil, fmt.Errorf("tokenDuration %s: not an ISO-8601 duration", quoteShort(b.TokenDuration))
	}
	m := &metadata{
		TokenDuration: b.TokenDuration,
		Status:        v1alpha1.PlainIDCredentialStatus{OwnerType: b.OwnerType, Permission: b.Permission},
	}
	owner := b.OwnerType  // TENANT: the tenant's own client
	if b.OwnerID != "-" { // tenant clients: null or "-"
		m.Status.OwnerID = b.OwnerID
	}
	if m.Status.OwnerID != "" {
		owner = m.Status.OwnerID
	}
	return &vendors.Credential{
		Owner:       owner,
		Name:        b.Name,
		Description: b.Description,
		Vendor:      m,
	}, nil
}

// metadata is PlainID's part of a RemoteCredential's status: its block
// and the client's token lifetime. Its fields are exported so that
// vendors.RedactCredential reaches them.
type metadata struct {
	TokenDuration string
	Status        v1alpha1.PlainIDCredentialStatus
}

// ApplyTo writes status.tokenDuration and status.plainid.
func (m *metadata) ApplyTo(st *v1alpha1.RemoteCredentialStatus) {
	st.TokenDuration = m.TokenDuration
	st.PlainID = m.Status.DeepCopy()
}

// isoDuration is the shape of an ISO-8601 duration (PT60M, P1DT2H,
// PT0.5S): P, date components, then T and time components.
var isoDuration = regexp.MustCompile(`^P(?:(?:\d+(?:[.,]\d+)?[YMWD])+(?:T(?:\d+(?:[.,]\d+)?[HMS])+)?|T(?:\d+(?:[.,]\d+)?[HMS])+)$`)

// quoteShort quotes a value from an answer for an error message, cut to a
// length that fits a condition message.
func quoteShort(s string) string {
	const maxLen = 64
	if len(s) > maxLen {
		return strconv.Quote(s[:maxLen]) + "…"
	}
	return strconv.Quote(s)
}
