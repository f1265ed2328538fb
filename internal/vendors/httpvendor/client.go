package httpvendor

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// maxListOnlyPages bounds the pages a read of a list-only vendor walks to
// find one credential (inventory sweeps serve such reads first).
const maxListOnlyPages = 100

// Vendor is the registration of definition d: its name is the
// definition's, and it serves providers whose spec.http names it.
func (d *Definition) Vendor() vendors.Vendor {
	v := vendors.Vendor{
		Name:     d.Name,
		Revision: d.Revision,
		Selected: func(spec *v1alpha1.CredentialProviderSpec) bool {
			return spec.HTTP != nil && spec.HTTP.Definition == d.Name
		},
		SecretRef: func(spec *v1alpha1.CredentialProviderSpec) vendors.SecretRef {
			return vendors.SecretRef{Name: spec.HTTP.Auth.SecretRef.Name, Keys: d.secretKeys()}
		},
		CheckRef:  d.checkRef,
		ListOnly:  d.Spec.Get == nil,
		URL:       d.baseURL,
		SaaSHosts: d.Spec.Hosts,
		New:       d.newClient,
	}
	if rl := d.Spec.RateLimit; rl != nil {
		v.Limits = vendors.Limits{RequestsPerMinute: int(rl.RequestsPerMinute), Burst: int(rl.Burst), MaxConcurrent: int(rl.MaxConcurrent)}
	}
	return v
}

// checkRef refuses a userId where no GET path takes one.
func (d *Definition) checkRef(ref vendors.Ref) error {
	if ref.UserID == "" {
		return nil
	}
	if g := d.Spec.Get; g != nil && slices.ContainsFunc(g.Paths, func(p string) bool { return strings.Contains(p, "{userId}") }) {
		return nil
	}
	return fmt.Errorf("%w: spec.userId is not supported by %s providers: their credentials are named by id alone", vendors.ErrInvalidSpec, d.Name)
}

// baseURL is the provider's url, else the definition's.
func (d *Definition) baseURL(spec *v1alpha1.CredentialProviderSpec) (string, error) {
	raw := spec.HTTP.URL
	if raw == "" {
		raw = d.Spec.URL
	}
	if raw == "" {
		return "", fmt.Errorf("%w: spec.http.url is required: definition %s has no default URL", vendors.ErrInvalidSpec, d.Name)
	}
	return vendors.BaseURL(d.Name, raw)
}

// checkParams refuses parameters the definition does not declare and
// required ones that are missing.
func (d *Definition) checkParams(params map[string]string) error {
	declared := map[string]bool{}
	for _, p := range d.Spec.Params {
		declared[p.Name] = true
		if p.Required && params[p.Name] == "" {
			return fmt.Errorf("%w: spec.http.params.%s is required by definition %s", vendors.ErrInvalidSpec, p.Name, d.Name)
		}
	}
	for name := range params {
		if !declared[name] {
			return fmt.Errorf("%w: spec.http.params.%s: definition %s declares no such parameter", vendors.ErrInvalidSpec, name, d.Name)
		}
	}
	return nil
}

// Client reads one account of a definition's vendor.
type Client struct {
	def    *Definition
	base   string
	params map[string]string
	caller *vendors.Caller
	clock  clock.PassiveClock
	secret map[string]string
	// paramVars are the provider's parameters as field expressions see
	// them: every declared one, "" when unset.
	paramVars map[string]string
	// listBase is the list's first page URL (pages must stay on its path);
	// "" when the definition has no list or its paths need what is unset.
	listBase string

	mu       sync.Mutex
	token    string // OAuth2 access token
	tokenExp time.Time
	// issued is the last access token issued (a string), for redaction
	// without the lock (an error of the token call itself holds it).
	issued atomic.Value
}

var _ vendors.Client = (*Client)(nil)

func (d *Definition) newClient(cfg vendors.Config) (vendors.Client, error) {
	base, err := d.baseURL(cfg.Spec)
	if err != nil {
		return nil, err
	}
	if err := d.checkParams(cfg.Spec.HTTP.Params); err != nil {
		return nil, err
	}
	clk := cfg.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	params := maps.Clone(cfg.Spec.HTTP.Params)
	c := &Client{def: d, base: base, params: params, paramVars: d.paramVars(params), caller: cfg.Caller, clock: clk, secret: cfg.Secret}
	if h := d.Spec.RateLimitHeaders; h != nil {
		cfg.Caller.SetRateLimitHeaders(rateLimitReader(h))
	}
	if l := d.Spec.List; l != nil {
		if path, err := c.fill(l.Paths, vendors.Ref{}); err == nil {
			c.listBase = base + path
		}
	}
	return c, nil
}

// paramVars are params as field expressions see them: every declared
// parameter, "" when unset.
func (d *Definition) paramVars(params map[string]string) map[string]string {
	out := make(map[string]string, len(d.Spec.Params))
	for _, p := range d.Spec.Params {
		out[p.Name] = params[p.Name]
	}
	return out
}

// rateLimitReader reads a definition's rate-limit headers: how long to
// hold calls when nothing remains. A reset given as a time is reckoned
// from now, when the vendor answered: the Caller takes it from the
// answer's Date (as Okta's own SDK reckons X-Rate-Limit-Reset).
func rateLimitReader(h *v1alpha1.VendorRateLimitHeaders) func(get func(string) string, now time.Time) (time.Duration, bool) {
	return func(get func(string) string, now time.Time) (time.Duration, bool) {
		if strings.TrimSpace(get(h.Remaining)) != "0" {
			return 0, false
		}
		reset := strings.TrimSpace(get(h.Reset))
		if h.ResetKind == v1alpha1.ResetDate {
			t, err := time.Parse(time.RFC3339, reset)
			if err != nil {
				if t, err = http.ParseTime(reset); err != nil {
					return 0, false
				}
			}
			d := t.Sub(now)
			return d, d > 0
		}
		n, err := strconv.ParseFloat(reset, 64)
		if err != nil || n < 0 || n > 1e11 {
			return 0, false
		}
		d := time.Duration(min(n, 3600) * float64(time.Second))
		if h.ResetKind == v1alpha1.ResetEpochSeconds {
			d = time.Unix(int64(n), 0).Sub(now)
		}
		return d, d > 0
	}
}

// fill returns the first template whose every placeholder has a value,
// filled (each value one escaped path segment).
func (c *Client) fill(templates []string, ref vendors.Ref) (string, error) {
	values := map[string]string{"id": ref.ID, "userId": ref.UserID}
	for k, v := range c.params {
		values[k] = v
	}
	for _, t := range templates {
		ok := true
		var bad error
		out := placeholder.ReplaceAllStringFunc(t, func(m string) string {
			name := m[1 : len(m)-1]
			v := values[name]
			if v == "" {
				ok = false
				return m
			}
			seg, err := vendors.PathSegment(name, v)
			if err != nil {
				bad = err
			}
			return seg
		})
		if bad != nil {
			return "", bad
		}
		if ok {
			return out, nil
		}
	}
	return "", fmt.Errorf("%w: none of definition %s's paths has a value for each of its {placeholders}: set the parameters it needs in spec.http.params", vendors.ErrInvalidSpec, c.def.Name)
}

// Get reads one credential: its GET, or for a list-only vendor its list.
func (c *Client) Get(ctx context.Context, ref vendors.Ref) (*vendors.Credential, error) {
	if c.def.Spec.Get == nil {
		return c.getFromList(ctx, ref)
	}
	path, err := c.fill(c.def.Spec.Get.Paths, ref)
	if err != nil {
		return nil, err
	}
	resp, body, err := c.getJSON(ctx, c.base+path)
	if refused := (*vendors.Error)(nil); errors.As(err, &refused) && errors.Is(err, vendors.ErrUnauthorized) && c.Verify(ctx) == nil {
		// Some vendors (GitLab, for a token the key cannot see) answer 401
		// for a credential while accepting the key: the key check just
		// passed, so the credential is what is missing.
		return nil, &vendors.Error{Class: vendors.ErrNotFound, Status: refused.Status,
			Message: fmt.Sprintf("%s answers %d for this credential but accepts the key: it does not exist, or the key cannot see it", c.def.Name, refused.Status)}
	}
	if err != nil {
		return nil, err
	}
	item, err := evalValue(c.def.getItem, map[string]any{"body": body})
	if err != nil {
		return nil, c.caller.Invalid(resp, "%v", err)
	}
	it, err := c.mapItem(item)
	if err != nil {
		return nil, c.caller.Invalid(resp, "%v", err)
	}
	if it.Ref.ID != ref.ID {
		return nil, c.caller.Invalid(resp, "answer is for credential %q, not %q", it.Ref.ID, ref.ID)
	}
	return it.Credential, nil
}

// getFromList walks the list until it finds ref.
func (c *Client) getFromList(ctx context.Context, ref vendors.Ref) (*vendors.Credential, error) {
	cursor := ""
	for range maxListOnlyPages {
		page, err := c.ListPage(ctx, nil, cursor)
		if err != nil {
			return nil, err
		}
		for _, it := range page.Items {
			if it.Ref.ID == ref.ID {
				return it.Credential, nil
			}
		}
		if page.Next == "" {
			return nil, vendors.NotListed(c.def.Name, ref.ID)
		}
		cursor = page.Next
	}
	return nil, &vendors.Error{Class: vendors.ErrInvalidResponse, Message: fmt.Sprintf("list longer than %d pages: credential not found in it", maxListOnlyPages)}
}

// Verify makes the key check.
func (c *Client) Verify(ctx context.Context) error {
	path, err := c.fill(c.def.Spec.KeyCheck.Paths, vendors.Ref{})
	if err != nil {
		return err
	}
	if c.def.accepted == nil {
		_, err = c.get(ctx, c.base+path)
		return err
	}
	resp, body, err := c.getJSON(ctx, c.base+path)
	if err != nil {
		return err
	}
	ok, err := evalBool(c.def.accepted, map[string]any{"body": body}, false)
	if err != nil {
		return c.caller.Invalid(resp, "%v", err)
	}
	if !ok {
		return &vendors.Error{Class: vendors.ErrUnauthorized, Status: resp.Status,
			Message: "the key check's answer says the key is not usable (keyCheck.accepted)"}
	}
	return nil
}

// Close releases the client's connections.
func (c *Client) Close() { c.caller.Close() }

// ListPage lists one page. The cursor is the URL of the page; a vendor's
// next URL is followed only while it stays on the list's scheme, host and
// path (the key is sent to it).
func (c *Client) ListPage(ctx context.Context, _ *v1alpha1.Inventory, cursor string) (*vendors.Page, error) {
	if c.def.Spec.List == nil {
		return nil, fmt.Errorf("%w: definition %s has no list", vendors.ErrInvalidSpec, c.def.Name)
	}
	if c.listBase == "" {
		_, err := c.fill(c.def.Spec.List.Paths, vendors.Ref{})
		return nil, err
	}
	pg := c.def.Spec.List.Pagination
	u := cursor
	if u == "" {
		u = c.firstPage()
	} else if !vendors.OnList(u, c.listBase) {
		return nil, &vendors.Error{Class: vendors.ErrInvalidResponse, Message: "the next page's URL points away from the list: not followed"}
	}
	resp, body, err := c.getJSON(ctx, u)
	if err != nil {
		return nil, err
	}
	vars := map[string]any{"body": body, "headers": lowerHeaders(resp.Header)}
	items, err := evalList(c.def.listItems, vars)
	if err != nil {
		return nil, c.caller.Invalid(resp, "list answer: %v", err)
	}
	page := &vendors.Page{Items: make([]vendors.Item, 0, len(items))}
	for i, raw := range items {
		it, err := c.mapItem(raw)
		if err != nil {
			return nil, c.caller.Invalid(resp, "item %d of the page: %v", i+1, err)
		}
		page.Items = append(page.Items, it)
	}
	next, err := c.nextPage(pg, u, resp, vars, len(items))
	if err != nil {
		return nil, c.caller.Invalid(resp, "%v", err)
	}
	page.Next = next
	return page, nil
}

// firstPage is the URL of the list's first page.
func (c *Client) firstPage() string {
	l := c.def.Spec.List
	q := url.Values{}
	for k, v := range l.Query {
		q.Set(k, v)
	}
	switch pg := l.Pagination; pg.Type {
	case v1alpha1.PaginationPage:
		q.Set(pg.Param, strconv.Itoa(firstPageNumber(pg)))
	case v1alpha1.PaginationOffset:
		q.Set(pg.Param, "0")
	}
	if len(q) == 0 {
		return c.listBase
	}
	sep := "?"
	if strings.Contains(c.listBase, "?") {
		sep = "&"
	}
	return c.listBase + sep + q.Encode()
}

// nextPage is the URL of the page after u, "" after the last.
func (c *Client) nextPage(pg v1alpha1.VendorPagination, u string, resp *vendors.Response, vars map[string]any, n int) (string, error) {
	switch pg.Type {
	case v1alpha1.PaginationLink:
		return nextLink(resp.Header, u)
	case v1alpha1.PaginationNextURL:
		next, err := evalString(c.def.next, vars)
		if err != nil || next == "" {
			return "", err
		}
		ref, err := url.Parse(u)
		nu, perr := url.Parse(next)
		if err != nil || perr != nil {
			return "", errors.New("list.pagination.next: not a URL")
		}
		return ref.ResolveReference(nu).String(), nil
	case v1alpha1.PaginationCursor:
		next, err := evalString(c.def.next, vars)
		if err != nil || next == "" {
			return "", err
		}
		if strings.HasPrefix(next, "https://") || strings.HasPrefix(next, "http://") {
			return next, nil // a vendor that gives its next page's URL as the cursor
		}
		return withQuery(u, pg.Param, next), nil
	case v1alpha1.PaginationPage:
		more := n > 0
		if c.def.next != nil && more {
			var err error
			if more, err = evalBool(c.def.next, vars, more); err != nil {
				return "", err
			}
		}
		if !more {
			return "", nil
		}
		page, err := strconv.Atoi(queryOf(u, pg.Param))
		if err != nil {
			page = firstPageNumber(pg)
		}
		return withQuery(u, pg.Param, strconv.Itoa(page+1)), nil
	case v1alpha1.PaginationOffset:
		if n == 0 {
			return "", nil
		}
		offset, _ := strconv.Atoi(queryOf(u, pg.Param))
		offset += n
		if c.def.total != nil {
			total, err := evalString(c.def.total, vars)
			if err != nil {
				return "", err
			}
			if t, err := strconv.Atoi(total); err == nil && offset >= t {
				return "", nil
			}
		}
		return withQuery(u, pg.Param, strconv.Itoa(offset)), nil
	}
	return "", nil
}

// firstPageNumber is the number of a Page list's first page.
func firstPageNumber(pg v1alpha1.VendorPagination) int {
	if pg.Start != nil {
		return int(*pg.Start)
	}
	return 1
}

// nextLink is the Link header's rel="next" target, resolved against u.
func nextLink(h http.Header, u string) (string, error) {
	for _, v := range h.Values("Link") {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.Contains(" "+strings.Trim(val, `"`)+" ", " next ") {
					base, err := url.Parse(u)
					next, nerr := url.Parse(target[1 : len(target)-1])
					if err != nil || nerr != nil {
						return "", errors.New("the Link header's next is not a URL")
					}
					return base.ResolveReference(next).String(), nil
				}
			}
		}
	}
	return "", nil
}

func queryOf(u, param string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return p.Query().Get(param)
}

func withQuery(u, param, value string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Set(param, value)
	p.RawQuery = q.Encode()
	return p.String()
}

// mapItem maps one item with the definition's fields.
func (c *Client) mapItem(item any) (vendors.Item, error) {
	vars := map[string]any{"item": item, "params": c.paramVars}
	f := &c.def.fields
	id, err := evalString(f.id, vars)
	if err != nil {
		return vendors.Item{}, err
	}
	if id == "" {
		return vendors.Item{}, errors.New("fields.id: the answer has no id")
	}
	cred := &vendors.Credential{ReportsUse: c.def.ReportsUse()}
	for _, s := range []struct {
		e  *expr
		to *string
	}{{f.name, &cred.Name}, {f.description, &cred.Description}, {f.owner, &cred.Owner}} {
		if *s.to, err = evalString(s.e, vars); err != nil {
			return vendors.Item{}, err
		}
	}
	for _, t := range []struct {
		e  *expr
		to **time.Time
	}{{f.createdAt, &cred.CreatedAt}, {f.updatedAt, &cred.UpdatedAt}, {f.expiresAt, &cred.ExpiresAt}, {f.lastUsedAt, &cred.LastUsedAt}} {
		if *t.to, err = evalTime(t.e, vars); err != nil {
			return vendors.Item{}, err
		}
	}
	active, err := evalBool(f.active, vars, true)
	if err != nil {
		return vendors.Item{}, err
	}
	cred.Revoked = !active
	for _, s := range c.secret {
		vendors.RedactCredential(cred, s)
	}
	if tok := c.issuedToken(); tok != "" {
		vendors.RedactCredential(cred, tok)
	}
	return vendors.Item{Ref: vendors.Ref{ID: id}, Credential: cred}, nil
}

// getJSON GETs u and decodes a 2xx answer's JSON.
func (c *Client) getJSON(ctx context.Context, u string) (*vendors.Response, any, error) {
	resp, err := c.get(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	if err := c.caller.CheckBody(resp); err != nil {
		return nil, nil, err
	}
	body, err := decodeJSON(resp.Body)
	if err != nil {
		return nil, nil, c.caller.Invalid(resp, "answer is not JSON")
	}
	return resp, body, nil
}

// get sends an authenticated GET of u and returns a 2xx answer, or the
// error for any other, with the vendor's message as errors.message reads
// it.
func (c *Client) get(ctx context.Context, u string) (*vendors.Response, error) {
	req, err := c.caller.NewRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if err := c.authorize(ctx, req); err != nil {
		return nil, err
	}
	resp, err := c.caller.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.OK() {
		return resp, nil
	}
	if resp.Status == http.StatusUnauthorized && c.def.Spec.Auth.Type == v1alpha1.AuthOAuth2ClientCredentials {
		c.mu.Lock()
		c.token = "" // fetch a new one next time
		c.mu.Unlock()
	}
	return nil, c.fail(resp)
}

// fail is the error of a non-2xx answer, with the vendor's code and
// message as the definition reads them from it.
func (c *Client) fail(resp *vendors.Response) error {
	var code, msg string
	refused := false
	if (c.def.errMessage != nil || c.def.errCode != nil || c.def.errUnauthorized != nil) && !resp.Truncated {
		if body, err := decodeJSON(resp.Body); err == nil {
			vars := map[string]any{"body": body}
			msg, _ = evalString(c.def.errMessage, vars) // failing: no message
			code, _ = evalString(c.def.errCode, vars)
			if resp.Status >= 400 && resp.Status < 500 {
				refused, _ = evalBool(c.def.errUnauthorized, vars, false) // failing: not refused
			}
		}
	}
	// The Caller redacts the Secret's values; the OAuth2 access token
	// (not in the Secret) is redacted here.
	if tok := c.issuedToken(); tok != "" {
		msg, code = strings.ReplaceAll(msg, tok, "[redacted]"), strings.ReplaceAll(code, tok, "[redacted]")
	}
	err := c.caller.Fail(resp, code, msg)
	if e, ok := err.(*vendors.Error); ok && refused {
		e.Class = vendors.ErrUnauthorized
	}
	return err
}

// issuedToken is the last OAuth2 access token issued, for redaction: ""
// when none was, or when it is too short to redact without redacting
// ordinary words.
func (c *Client) issuedToken() string {
	if tok, _ := c.issued.Load().(string); len(tok) >= 4 {
		return tok
	}
	return ""
}

// authorize sets the request's credentials.
func (c *Client) authorize(ctx context.Context, req *http.Request) error {
	a := &c.def.Spec.Auth
	switch a.Type {
	case v1alpha1.AuthHeader:
		for _, h := range a.Headers {
			req.Header.Set(h.Name, h.Prefix+c.secret[h.SecretKey])
		}
	case v1alpha1.AuthBasic:
		keys := c.def.secretKeys()
		req.SetBasicAuth(c.secret[keys[0]], c.secret[keys[1]])
	case v1alpha1.AuthOAuth2ClientCredentials:
		tok, err := c.accessToken(ctx)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	default:
		req.Header.Set("Authorization", "Bearer "+c.secret[c.def.secretKeys()[0]])
	}
	return nil
}

// accessToken returns an OAuth2 access token, fetching one (client
// credentials grant) when none is held or it expires within a minute.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && c.clock.Now().Before(c.tokenExp.Add(-time.Minute)) {
		return c.token, nil
	}
	a := &c.def.Spec.Auth
	keys := c.def.secretKeys()
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(a.Scopes) > 0 {
		form.Set("scope", strings.Join(a.Scopes, " "))
	}
	req, err := c.caller.NewRequest(ctx, http.MethodPost, c.base+a.TokenPath, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(c.secret[keys[0]])+":"+url.QueryEscape(c.secret[keys[1]]))))
	resp, err := c.caller.Do(req)
	if err != nil {
		return "", err
	}
	if !resp.OK() {
		return "", c.fail(resp)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := c.caller.DecodeJSON(resp, &tok); err != nil {
		return "", err
	}
	if tok.AccessToken == "" {
		return "", c.caller.Invalid(resp, "token answer has no access_token")
	}
	c.token, c.tokenExp = tok.AccessToken, c.clock.Now().Add(time.Duration(max(tok.ExpiresIn, 60))*time.Second)
	c.issued.Store(tok.AccessToken)
	return c.token, nil
}

// lowerHeaders are an answer's headers for CEL: lower-case names, first
// values.
func lowerHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if len(v) > 0 {
			out[strings.ToLower(k)] = v[0]
		}
	}
	return out
}
