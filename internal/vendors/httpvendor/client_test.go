package httpvendor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// newTestClient compiles def (YAML) as the definition "t" and builds its
// client for a server at url.
func newTestClient(t *testing.T, def, url string, caBundle []byte, secret, params map[string]string) vendors.Client {
	t.Helper()
	spec := &v1alpha1.CredentialVendorSpec{}
	if err := yaml.UnmarshalStrict([]byte(def), spec); err != nil {
		t.Fatal(err)
	}
	d, err := httpvendor.Compile("t", spec)
	if err != nil {
		t.Fatal(err)
	}
	c, err := vendortest.NewClient(d.Vendor(), &v1alpha1.CredentialProviderSpec{
		HTTP:     &v1alpha1.HTTPProvider{Definition: "t", URL: url, Params: params, Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "s"}}},
		CABundle: caBundle,
	}, secret, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

const itemFields = `
fields:
  id: string(item.id)
  name: item.name
`

// Basic auth sends the Secret's username and password; {userId} and a
// provider parameter fill the GET's path, each one escaped segment.
func TestBasicAuthAndPathTemplates(t *testing.T) {
	srv := vendortest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "svc" || p != "pw-1234" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.EscapedPath() != "/orgs/acme%2Fteam/users/u%201/keys/k1" && r.URL.Path != "/me" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		vendortest.JSON(w, http.StatusOK, []byte(`{"id":"k1","name":"basic"}`))
	}))
	defer srv.Close()
	def := `
auth: {type: Basic}
params: [{name: org, required: true}]
keyCheck: {paths: [/me]}
get: {paths: ['/orgs/{org}/users/{userId}/keys/{id}']}
` + itemFields
	c := newTestClient(t, def, srv.URL, vendortest.CABundle(srv), map[string]string{"username": "svc", "password": "pw-1234"}, map[string]string{"org": "acme/team"})
	if err := c.Verify(context.Background()); err != nil {
		t.Fatalf("key check: %v", err)
	}
	cred, err := c.Get(context.Background(), vendors.Ref{ID: "k1", UserID: "u 1"})
	if err != nil || cred.Name != "basic" {
		t.Fatalf("get: %+v, %v", cred, err)
	}
}

// OAuth2 client credentials: one token for many calls, fetched again
// after a 401; the client's secret travels only to the token endpoint.
func TestOAuth2ClientCredentials(t *testing.T) {
	var tokens, calls atomic.Int32
	srv := vendortest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/oauth/token" {
			id, secret, _ := r.BasicAuth()
			if r.Method != http.MethodPost || id != "client-1" || secret != "s3cret-value" || r.FormValue("grant_type") != "client_credentials" || r.FormValue("scope") != "keys:read" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			n := tokens.Add(1)
			vendortest.JSON(w, http.StatusOK, fmt.Appendf(nil, `{"access_token":"at-%d","expires_in":3600,"token_type":"Bearer"}`, n))
			return
		}
		n := calls.Add(1)
		if tok := r.Header.Get("Authorization"); tok != "Bearer at-"+strconv.Itoa(int(tokens.Load())) || n == 3 { // the third call: the token was revoked
			// A vendor that quotes the token it refuses.
			vendortest.JSON(w, http.StatusUnauthorized, fmt.Appendf(nil, `{"error":"token %s revoked"}`, strings.TrimPrefix(tok, "Bearer ")))
			return
		}
		// A vendor that echoes the token in the credential's metadata.
		vendortest.JSON(w, http.StatusOK, fmt.Appendf(nil, `{"id":"k1","name":"oauth","description":"last used with %s"}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
	}))
	defer srv.Close()
	def := `
auth: {type: OAuth2ClientCredentials, tokenPath: /oauth/token, scopes: [keys:read]}
keyCheck: {paths: [/me]}
get: {paths: ['/keys/{id}']}
errors: {message: body.error}
` + itemFields + `
  description: item.description
`
	c := newTestClient(t, def, srv.URL, vendortest.CABundle(srv), map[string]string{"clientId": "client-1", "clientSecret": "s3cret-value"}, nil)
	for range 2 {
		cred, err := c.Get(context.Background(), vendors.Ref{ID: "k1"})
		if err != nil {
			t.Fatal(err)
		}
		if cred.Description != "last used with [redacted]" {
			t.Fatalf("description %q: the access token must be redacted", cred.Description)
		}
	}
	if tokens.Load() != 1 {
		t.Fatalf("%d tokens for two calls, want 1", tokens.Load())
	}
	// The third call gets a 401: the key check that follows fetches a new
	// token and passes, so the credential is what is missing.
	_, err := c.Get(context.Background(), vendors.Ref{ID: "k1"})
	if err == nil {
		t.Fatal("third call: no error")
	}
	if tokens.Load() != 2 {
		t.Fatalf("%d tokens after a 401, want 2", tokens.Load())
	}
	// The key check's 401 quotes the token: redacted.
	c2 := newTestClient(t, def, srv.URL, vendortest.CABundle(srv), map[string]string{"clientId": "client-1", "clientSecret": "s3cret-value"}, nil)
	calls.Store(2)
	if err := c2.Verify(context.Background()); err == nil || strings.Contains(err.Error(), "at-") || !strings.Contains(err.Error(), "[redacted]") {
		t.Fatalf("a 401 quoting the access token: %v", err)
	}
}

// Offset pagination ends when total is reached; NextURL follows a
// relative next link on the list's path and refuses one that leaves it.
func TestOffsetAndNextURLPagination(t *testing.T) {
	const total = 23
	srv := vendortest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		offset, _ := strconv.Atoi(q.Get("offset"))
		var items []map[string]any
		for i := offset; i < min(offset+5, total); i++ { // the vendor forces 5, whatever limit asks
			items = append(items, map[string]any{"id": i, "name": fmt.Sprint("k", i)})
		}
		body := map[string]any{"data": items, "total": total}
		if r.URL.Path == "/next" {
			page, _ := strconv.Atoi(q.Get("p"))
			if page < 4 {
				body["next"] = fmt.Sprintf("/next?offset=%d&p=%d", offset+5, page+1)
			}
		}
		b, _ := json.Marshal(body)
		vendortest.JSON(w, http.StatusOK, b)
	}))
	defer srv.Close()
	walk := func(c vendors.Client) (ids map[string]bool, pages int, err error) {
		ids, cursor := map[string]bool{}, ""
		for {
			page, err := c.ListPage(context.Background(), nil, cursor)
			if err != nil {
				return ids, pages, err
			}
			pages++
			for _, it := range page.Items {
				ids[it.Ref.ID] = true
			}
			if cursor = page.Next; cursor == "" || pages > 20 {
				return ids, pages, nil
			}
		}
	}
	offsetDef := `
auth: {type: Bearer}
keyCheck: {paths: [/me]}
list: {paths: [/offset], query: {limit: "50"}, items: body.data, pagination: {type: Offset, param: offset, total: body.total}}
` + itemFields
	ids, pages, err := walk(newTestClient(t, offsetDef, srv.URL, vendortest.CABundle(srv), map[string]string{"token": "tok-1234"}, nil))
	if err != nil || len(ids) != total || pages != 5 {
		t.Fatalf("offset: %d ids in %d pages (%v), want %d in 5", len(ids), pages, err, total)
	}
	nextDef := `
auth: {type: Bearer}
keyCheck: {paths: [/me]}
list: {paths: [/next], items: body.data, pagination: {type: NextURL, next: 'has(body.next) ? body.next : ""'}}
` + itemFields
	ids, pages, err = walk(newTestClient(t, nextDef, srv.URL, vendortest.CABundle(srv), map[string]string{"token": "tok-1234"}, nil))
	if err != nil || len(ids) != total || pages != 5 {
		t.Fatalf("next URL: %d ids in %d pages (%v), want 5 pages", len(ids), pages, err)
	}
	awayDef := `
auth: {type: Bearer}
keyCheck: {paths: [/me]}
list: {paths: [/next], items: body.data, pagination: {type: NextURL, next: '"https://elsewhere.example/next"'}}
` + itemFields
	_, _, err = walk(newTestClient(t, awayDef, srv.URL, vendortest.CABundle(srv), map[string]string{"token": "tok-1234"}, nil))
	if err == nil {
		t.Fatal("a next URL on another host was followed")
	}
}
