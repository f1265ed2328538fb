// Package httpvendor is the vendor of definitions: a vendor declared as
// data (v1alpha1.CredentialVendorSpec) — its auth, key check, GET, list
// and pagination, and CEL expressions that map an answer to a
// credential's fields. The built-in definitions (package builtin) and a
// cluster's CredentialVendors both run here; CEL is compiled once per
// definition and every evaluation is cost-limited.
package httpvendor

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"

	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// Definition is a compiled vendor definition.
type Definition struct {
	Name string
	Spec *v1alpha1.CredentialVendorSpec
	// Revision identifies the spec: a provider's client is rebuilt when
	// its definition's revision changes.
	Revision string

	getItem, listItems, next, total, errMessage, errCode, errUnauthorized, accepted *expr
	fields                                                                          fieldExprs
}

// fieldExprs are the compiled fields.*.
type fieldExprs struct {
	id, name, description, owner, createdAt, updatedAt, expiresAt, lastUsedAt, active *expr
}

// placeholder is a {name} in a path template.
var placeholder = regexp.MustCompile(`\{([A-Za-z][A-Za-z0-9]*)\}`)

// Load reads a definition written as YAML or JSON (a built-in's file, or
// a fuzzer's input) and compiles it. Unknown fields are refused.
func Load(name string, data []byte) (*Definition, error) {
	spec := &v1alpha1.CredentialVendorSpec{}
	if err := yaml.UnmarshalStrict(data, spec); err != nil {
		return nil, fmt.Errorf("definition %s: %v", name, err)
	}
	return Compile(name, spec)
}

// Compile checks a definition and compiles its expressions. Its error
// names the field at fault (a *CompileError for an expression).
func Compile(name string, spec *v1alpha1.CredentialVendorSpec) (*Definition, error) {
	spec = spec.DeepCopy()
	if err := check(spec); err != nil {
		return nil, err
	}
	limit := uint64(DefaultCostLimit)
	if spec.CostLimit != nil && *spec.CostLimit > 0 {
		limit = uint64(*spec.CostLimit)
	}
	c := newCompiler(limit)
	d := &Definition{Name: name, Spec: spec, Revision: revision(spec)}
	f := &spec.Fields
	for _, x := range []struct {
		to    **expr
		field string
		src   string
		vars  []string
	}{
		{&d.fields.id, "fields.id", f.ID, itemVars},
		{&d.fields.name, "fields.name", f.Name, itemVars},
		{&d.fields.description, "fields.description", f.Description, itemVars},
		{&d.fields.owner, "fields.owner", f.Owner, itemVars},
		{&d.fields.createdAt, "fields.createdAt", f.CreatedAt, itemVars},
		{&d.fields.updatedAt, "fields.updatedAt", f.UpdatedAt, itemVars},
		{&d.fields.expiresAt, "fields.expiresAt", f.ExpiresAt, itemVars},
		{&d.fields.lastUsedAt, "fields.lastUsedAt", f.LastUsedAt, itemVars},
		{&d.fields.active, "fields.active", f.Active, itemVars},
		{&d.errMessage, "errors.message", spec.Errors.Message, bodyVars},
		{&d.errCode, "errors.code", spec.Errors.Code, bodyVars},
		{&d.errUnauthorized, "errors.unauthorized", spec.Errors.Unauthorized, bodyVars},
		{&d.accepted, "keyCheck.accepted", spec.KeyCheck.Accepted, bodyVars},
	} {
		e, err := c.compile(x.field, x.src, x.vars)
		if err != nil {
			return nil, err
		}
		*x.to = e
	}
	var err error
	if spec.Get != nil {
		if d.getItem, err = c.compile("get.item", spec.Get.Item, bodyVars); err != nil {
			return nil, err
		}
	}
	if l := spec.List; l != nil {
		if d.listItems, err = c.compile("list.items", l.Items, bodyVars); err != nil {
			return nil, err
		}
		if d.next, err = c.compile("list.pagination.next", l.Pagination.Next, pageVars); err != nil {
			return nil, err
		}
		if d.total, err = c.compile("list.pagination.total", l.Pagination.Total, pageVars); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// revision hashes a spec.
func revision(spec *v1alpha1.CredentialVendorSpec) string {
	b, _ := json.Marshal(spec) // a spec always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// check refuses what the CRD's schema cannot: templates naming unknown
// placeholders, a pagination without what its type needs, a bad URL.
func check(spec *v1alpha1.CredentialVendorSpec) error {
	if spec.Get == nil && spec.List == nil {
		return fmt.Errorf("a definition needs get, list or both")
	}
	if spec.URL != "" {
		if _, err := vendors.BaseURL("definition", spec.URL); err != nil {
			return fmt.Errorf("url: must be an https:// URL without user, query or fragment")
		}
	}
	if strings.TrimSpace(spec.Fields.ID) == "" {
		return fmt.Errorf("fields.id is required")
	}
	switch spec.Auth.Type {
	case v1alpha1.AuthBearer, v1alpha1.AuthBasic:
	case v1alpha1.AuthHeader:
		if len(spec.Auth.Headers) == 0 {
			return fmt.Errorf("auth: type Header needs headers")
		}
	case v1alpha1.AuthOAuth2ClientCredentials:
		if !strings.HasPrefix(spec.Auth.TokenPath, "/") {
			return fmt.Errorf("auth: type OAuth2ClientCredentials needs a tokenPath starting with /")
		}
	default:
		return fmt.Errorf("auth.type %q: must be Bearer, Header, Basic or OAuth2ClientCredentials", spec.Auth.Type)
	}
	params := map[string]bool{"id": true, "userId": true}
	for _, p := range spec.Params {
		if params[p.Name] {
			return fmt.Errorf("params: %q is declared twice or reserved", p.Name)
		}
		params[p.Name] = true
	}
	checkPath := func(field, path string, allowed ...string) error {
		if !strings.HasPrefix(path, "/") || strings.Contains(path, "#") || strings.Contains(path, "..") {
			return fmt.Errorf("%s %q: must start with / and hold no # or dot-dot", field, path)
		}
		if _, err := url.Parse(placeholder.ReplaceAllString(path, "x")); err != nil {
			return fmt.Errorf("%s %q: not a URL path", field, path)
		}
		for _, m := range placeholder.FindAllStringSubmatch(path, -1) {
			if !params[m[1]] || (m[1] == "id" || m[1] == "userId") && !slices.Contains(allowed, m[1]) {
				return fmt.Errorf("%s %q: {%s} is not a declared parameter here", field, path, m[1])
			}
		}
		return nil
	}
	if len(spec.KeyCheck.Paths) == 0 {
		return fmt.Errorf("keyCheck.paths: at least one path")
	}
	for i, p := range spec.KeyCheck.Paths {
		if err := checkPath(fmt.Sprintf("keyCheck.paths[%d]", i), p); err != nil {
			return err
		}
	}
	if g := spec.Get; g != nil {
		for i, p := range g.Paths {
			if err := checkPath(fmt.Sprintf("get.paths[%d]", i), p, "id", "userId"); err != nil {
				return err
			}
			if !strings.Contains(p, "{id}") {
				return fmt.Errorf("get.paths[%d] %q: must hold {id}", i, p)
			}
		}
		if len(g.Paths) == 0 {
			return fmt.Errorf("get.paths: at least one path")
		}
	}
	if l := spec.List; l != nil {
		if len(l.Paths) == 0 {
			return fmt.Errorf("list.paths: at least one path")
		}
		for i, p := range l.Paths {
			if err := checkPath(fmt.Sprintf("list.paths[%d]", i), p); err != nil {
				return err
			}
		}
		pg := l.Pagination
		switch pg.Type {
		case "", v1alpha1.PaginationNone, v1alpha1.PaginationLink:
		case v1alpha1.PaginationNextURL:
			if pg.Next == "" {
				return fmt.Errorf("list.pagination: type NextURL needs next")
			}
		case v1alpha1.PaginationCursor:
			if pg.Next == "" || pg.Param == "" {
				return fmt.Errorf("list.pagination: type Cursor needs next and param")
			}
		case v1alpha1.PaginationPage:
			if pg.Param == "" {
				return fmt.Errorf("list.pagination: type Page needs param")
			}
		case v1alpha1.PaginationOffset:
			if pg.Param == "" {
				return fmt.Errorf("list.pagination: type Offset needs param")
			}
		default:
			return fmt.Errorf("list.pagination.type %q: must be None, Link, NextURL, Cursor, Page or Offset", pg.Type)
		}
	}
	for _, h := range spec.Hosts {
		if _, err := vendors.ParseHostPatterns(h); err != nil {
			return fmt.Errorf("hosts: %v", err)
		}
	}
	if h := spec.RateLimitHeaders; h != nil && h.ResetKind != v1alpha1.ResetEpochSeconds && h.ResetKind != v1alpha1.ResetSeconds && h.ResetKind != v1alpha1.ResetDate {
		return fmt.Errorf("rateLimitHeaders.resetKind %q: must be EpochSeconds, Seconds or Date", h.ResetKind)
	}
	return nil
}

// ReportsUse reports whether the definition maps last use.
func (d *Definition) ReportsUse() bool { return d.fields.lastUsedAt != nil }

// secretKeys are the Secret keys the definition's auth reads.
func (d *Definition) secretKeys() []string {
	a := &d.Spec.Auth
	switch a.Type {
	case v1alpha1.AuthHeader:
		keys := make([]string, 0, len(a.Headers))
		for _, h := range a.Headers {
			if !slices.Contains(keys, h.SecretKey) {
				keys = append(keys, h.SecretKey)
			}
		}
		return keys
	case v1alpha1.AuthBasic:
		return []string{or(a.UsernameKey, "username"), or(a.PasswordKey, "password")}
	case v1alpha1.AuthOAuth2ClientCredentials:
		return []string{or(a.ClientIDKey, "clientId"), or(a.ClientSecretKey, "clientSecret")}
	}
	return []string{or(a.SecretKey, "token")}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Custom resolves the cluster's CredentialVendors for the registry
// (vendors.Registry.Definitions): each is compiled once per generation.
type Custom struct {
	// Get reads a CredentialVendor; a nil object (and nil error) when
	// there is none of that name.
	Get func(name string) (*v1alpha1.CredentialVendor, error)

	mu    sync.Mutex
	cache map[string]customEntry
}

type customEntry struct {
	uid        string
	generation int64
	vendor     *vendors.Vendor
	err        error
}

// Vendor returns the registration of the CredentialVendor name.
func (c *Custom) Vendor(name string) (*vendors.Vendor, error) {
	cv, err := c.Get(name)
	if err != nil {
		return nil, err
	}
	if cv == nil {
		return nil, fmt.Errorf("%w: no vendor definition named %s: neither a built-in nor a CredentialVendor", vendors.ErrInvalidSpec, name)
	}
	v, err := c.Compiled(cv)
	if err != nil {
		return nil, fmt.Errorf("%w: CredentialVendor %s: %v", vendors.ErrInvalidSpec, name, err)
	}
	return v, nil
}

// Compiled is cv's registration, compiled once per UID and generation
// (for the providers that name it and for its own status alike); its
// error is Compile's, naming the field at fault.
func (c *Custom) Compiled(cv *v1alpha1.CredentialVendor) (*vendors.Vendor, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.cache[cv.Name]; ok && e.uid == string(cv.UID) && e.generation == cv.Generation {
		return e.vendor, e.err
	}
	e := customEntry{uid: string(cv.UID), generation: cv.Generation}
	if d, err := Compile(cv.Name, &cv.Spec); err != nil {
		e.err = err
	} else {
		v := d.Vendor()
		e.vendor = &v
	}
	if c.cache == nil {
		c.cache = map[string]customEntry{}
	}
	c.cache[cv.Name] = e
	return e.vendor, e.err
}
