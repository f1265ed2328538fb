package builtin_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/gitlabtest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const gitlabKey = "glpat-credsync-test-key"

// vendorNamed is the built-in definition name's registration.
func vendorNamed(t *testing.T, name string) vendors.Vendor {
	t.Helper()
	for _, v := range builtin.Vendors() {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no built-in definition %s", name)
	return vendors.Vendor{}
}

// httpClient builds a client of the built-in name for a fake at url.
func httpClient(t *testing.T, name, url string, caBundle []byte, secret map[string]string, params map[string]string) vendors.Client {
	t.Helper()
	spec := &v1alpha1.CredentialProviderSpec{
		HTTP:     &v1alpha1.HTTPProvider{Definition: name, URL: url, Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "s"}}, Params: params},
		CABundle: caBundle,
	}
	c, err := vendortest.NewClient(vendorNamed(t, name), spec, secret, 5*time.Second)
	if err != nil {
		t.Fatalf("new %s client: %v", name, err)
	}
	t.Cleanup(c.Close)
	return c
}

// gitlabClient is a client of the gitlab built-in, or with params
// projectId or groupId of gitlab-project or gitlab-group.
func gitlabClient(t *testing.T, srv *gitlabtest.Server, params map[string]string) vendors.Client {
	def := v1alpha1.DefinitionGitLab
	switch {
	case params["projectId"] != "":
		def = v1alpha1.DefinitionGitLabProject
	case params["groupId"] != "":
		def = v1alpha1.DefinitionGitLabGroup
	}
	return httpClient(t, def, srv.URL, srv.CABundle(), map[string]string{"token": gitlabKey}, params)
}

// verifyOnce fails t unless c's key check passes, in one request that
// srv keys verifyKey.
func verifyOnce(t *testing.T, c vendors.Client, srv interface{ Calls(id string) int }, verifyKey string) {
	t.Helper()
	if err := c.Verify(context.Background()); err != nil {
		t.Fatalf("key check: %v", err)
	}
	if n := srv.Calls(verifyKey); n != 1 {
		t.Fatalf("key check made %d calls of %s", n, verifyKey)
	}
}

// getAndList is c's read of id and its first list page. It fails t on an
// error, and on a canary in either (vendortest.NoCanaryIn).
func getAndList(t *testing.T, c vendors.Client, id string) (*vendors.Credential, *vendors.Page) {
	t.Helper()
	cred, err := c.Get(context.Background(), vendors.Ref{ID: id})
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	page, err := c.ListPage(context.Background(), nil, "")
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	vendortest.NoCanaryIn(t, cred, page)
	return cred, page
}

// wantExpired fails t unless c reads id as not revoked, expiring at exp.
func wantExpired(t *testing.T, c vendors.Client, id string, exp time.Time) {
	t.Helper()
	if cred, err := c.Get(context.Background(), vendors.Ref{ID: id}); err != nil || cred.Revoked || cred.ExpiresAt == nil || !cred.ExpiresAt.Equal(exp) {
		t.Fatalf("expired token: %+v, %v", cred, err)
	}
}

// wantReadFaults fails t unless c's read of id, which srv fails once with
// each fault, reads a 5xx as the status alone (its body is not the
// vendor speaking), and a 401 while the key check passes as the token
// missing.
func wantReadFaults(t *testing.T, srv interface {
	FailNext(id string, faults ...vendortest.Fault)
}, c vendors.Client, id string) {
	t.Helper()
	srv.FailNext(id, vendortest.ServerError)
	_, err := c.Get(context.Background(), vendors.Ref{ID: id})
	vendortest.WantError{Class: vendors.ErrUnavailable, InMessage: "HTTP 500"}.Check(t, err)
	if err.Error() != "HTTP 500 Internal Server Error" {
		t.Errorf("5xx error %q: want the status alone", err)
	}
	srv.FailNext(id, vendortest.Unauthorized)
	_, err = c.Get(context.Background(), vendors.Ref{ID: id})
	vendortest.WantError{Class: vendors.ErrNotFound, InMessage: "accepts the key"}.Check(t, err)
}

// wantOwned fails t unless each of items is mapped with owner and a
// creation time.
func wantOwned(t *testing.T, items map[string]vendors.Item, owner string) {
	t.Helper()
	for id, it := range items {
		if it.Credential.Owner != owner || it.Credential.CreatedAt == nil {
			t.Fatalf("item %s not mapped: %+v", id, it.Credential)
		}
	}
}

// canaryCalls are the canary rows (vendortest.CheckCanaries) of c: its
// read of id, its first list page and its key check, whose requests the
// fake keys getKey, listKey and verifyKey.
func canaryCalls(c vendors.Client, id, getKey, listKey, verifyKey string) []vendortest.CanaryCall {
	return []vendortest.CanaryCall{
		{Name: "get", Key: getKey, Call: func() error { _, err := c.Get(context.Background(), vendors.Ref{ID: id}); return err }},
		{Name: "list", Key: listKey, Call: func() error { _, err := c.ListPage(context.Background(), nil, ""); return err }},
		{Name: "verify", Key: verifyKey, Call: func() error { return c.Verify(context.Background()) }, AnyOK: true},
	}
}

// rawGet is the body of a GET of u with header by a plain client that
// trusts caBundle: what a fake answers, without a vendor client.
func rawGet(t *testing.T, caBundle []byte, u string, header map[string]string) []byte {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := vendortest.HTTPClient(caBundle).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return body
}

// transport is the connect of vendortest.CheckTransport for the built-in
// def: a client's read of id, first list page and key check.
func transport(def string, secret, params map[string]string, id string) func(t *testing.T, url string, caBundle []byte) []error {
	return func(t *testing.T, url string, caBundle []byte) []error {
		c := httpClient(t, def, url, caBundle, secret, params)
		_, err := c.Get(context.Background(), vendors.Ref{ID: id})
		_, lerr := c.ListPage(context.Background(), nil, "")
		return []error{err, lerr, c.Verify(context.Background())}
	}
}

// Personal, project and group tokens read with their GETs, every field
// mapped: a date-only expiry is midnight UTC, the owner is the user, last
// use is reported.
func TestGitLabGet(t *testing.T) {
	srv := gitlabtest.NewServer(gitlabKey)
	defer srv.Close()
	used := time.Date(2026, 11, 30, 8, 15, 0, 0, time.UTC)
	exp := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	pat := gitlabtest.Sample(11, "ci-deploy")
	pat.LastUsedAt, pat.ExpiresAt = &used, &exp
	project := gitlabtest.Sample(12, "project-bot")
	project.Kind, project.Resource, project.AccessLevel = gitlabtest.Project, "7", 30
	group := gitlabtest.Sample(13, "group-bot")
	group.Kind, group.Resource = gitlabtest.Group, "acme"
	for _, tok := range []gitlabtest.Token{pat, project, group} {
		srv.Put(tok)
	}
	cases := []struct {
		id     string
		params map[string]string
		name   string
	}{
		{"11", nil, "ci-deploy"},
		{"12", map[string]string{"projectId": "7"}, "project-bot"},
		{"13", map[string]string{"groupId": "acme"}, "group-bot"},
	}
	for _, tc := range cases {
		cred, err := gitlabClient(t, srv, tc.params).Get(context.Background(), vendors.Ref{ID: tc.id})
		if err != nil {
			t.Fatalf("get %s: %v", tc.id, err)
		}
		if cred.Name != tc.name || cred.Owner != "user 42" || cred.Description != "used by "+tc.name || !cred.ReportsUse || cred.Revoked ||
			cred.CreatedAt == nil || !cred.CreatedAt.Equal(time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("get %s: %+v", tc.id, cred)
		}
	}
	cred, _ := gitlabClient(t, srv, nil).Get(context.Background(), vendors.Ref{ID: "11"})
	if cred.ExpiresAt == nil || !cred.ExpiresAt.Equal(exp) || cred.LastUsedAt == nil || !cred.LastUsedAt.Equal(used) {
		t.Errorf("expiry %v, last use %v; want %v, %v", cred.ExpiresAt, cred.LastUsedAt, exp, used)
	}
	// A project token is not found as a personal one.
	_, err := gitlabClient(t, srv, nil).Get(context.Background(), vendors.Ref{ID: "12"})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "404 Not Found"}.Check(t, err, gitlabKey)
	// A non-admin's key gets 401 for a token it cannot see; the key check
	// passes, so the token is what is missing.
	srv.SetNonAdmin(true)
	_, err = gitlabClient(t, srv, nil).Get(context.Background(), vendors.Ref{ID: "12"})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "accepts the key"}.Check(t, err, gitlabKey)
}

// A revoked token reads as revoked; an expired one does not (its expiry
// says it).
func TestGitLabRevoked(t *testing.T) {
	srv := gitlabtest.NewServer(gitlabKey)
	defer srv.Close()
	tok := gitlabtest.Sample(21, "old")
	tok.Revoked = true
	srv.Put(tok)
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := gitlabtest.Sample(22, "expired")
	expired.ExpiresAt = &past
	srv.Put(expired)
	c := gitlabClient(t, srv, nil)
	if cred, err := c.Get(context.Background(), vendors.Ref{ID: "21"}); err != nil || !cred.Revoked {
		t.Fatalf("revoked token: %+v, %v", cred, err)
	}
	wantExpired(t, c, "22", past)
}

// The list follows the Link header through the pages GitLab forces (7 a
// page here, whatever per_page=100 asks), every token once.
func TestGitLabListPagination(t *testing.T) {
	srv := gitlabtest.NewServer(gitlabKey)
	defer srv.Close()
	for i := range 250 {
		srv.Put(gitlabtest.Sample(int64(100+i), "t"))
	}
	srv.SetMaxPerPage(7)
	seen, pages := vendortest.WalkList(t, gitlabClient(t, srv, nil), nil)
	if len(seen) != 250 || pages != 36 || srv.ListCalls() != 36 {
		t.Fatalf("listed %d tokens in %d pages (%d calls), want 250 in 36", len(seen), pages, srv.ListCalls())
	}
}

// The key check, and GitLab's errors: its message for 401/403/404, its
// RateLimit-* headers and Retry-After for 429.
func TestGitLabErrors(t *testing.T) {
	srv := gitlabtest.NewServer(gitlabKey)
	defer srv.Close()
	srv.Put(gitlabtest.Sample(31, "x"))
	c := gitlabClient(t, srv, nil)
	verifyOnce(t, c, srv, "self")
	wrong := httpClient(t, v1alpha1.DefinitionGitLab, srv.URL, srv.CABundle(), map[string]string{"token": "glpat-wrong-key"}, nil)
	vendortest.WantError{Class: vendors.ErrUnauthorized, InMessage: "401 Unauthorized"}.Check(t, wrong.Verify(context.Background()), "glpat-wrong-key")
	srv.FailNext("31", vendortest.Forbidden)
	_, err := c.Get(context.Background(), vendors.Ref{ID: "31"})
	vendortest.WantError{Class: vendors.ErrForbidden, Reason: v1alpha1.ReasonForbidden, InMessage: "403 Forbidden"}.Check(t, err)
	wantReadFaults(t, srv, c, "31")
	srv.FailNext("31", gitlabtest.RateLimited(time.Now(), 30))
	_, err = c.Get(context.Background(), vendors.Ref{ID: "31"})
	vendortest.WantError{Class: vendors.ErrRateLimited, Reason: v1alpha1.ReasonRateLimited, RetryAfter: 29 * time.Second}.Check(t, err)
	// Without Retry-After, RateLimit-Reset says how long.
	f := gitlabtest.RateLimited(time.Now(), 20)
	f.RetryAfter = ""
	srv.FailNext("31", f)
	_, err = c.Get(context.Background(), vendors.Ref{ID: "31"})
	vendortest.WantError{Class: vendors.ErrRateLimited, RetryAfter: 18 * time.Second}.Check(t, err)
}

// A canary in the token's value (which rotation answers carry, and the
// fake here puts in every answer) lands nowhere in what the client maps;
// canaries in error answers and connections come back in no error.
func TestGitLabCanaries(t *testing.T) {
	srv := gitlabtest.NewServer(gitlabKey)
	defer srv.Close()
	tok := gitlabtest.Sample(41, "x")
	tok.Value = "glpat-" + vendortest.Canary
	srv.Put(tok)
	srv.SetEchoValues(true)
	c := gitlabClient(t, srv, nil)
	getAndList(t, c, "41")
	documented := func(m string) string { b, _ := json.Marshal(map[string]string{"message": m}); return string(b) }
	// A 401 for a token is only Unauthorized when the key check fails too
	// (otherwise the token is missing, TestGitLabGet).
	vendortest.CheckCanaries(t, vendortest.WithKeyCheck(srv, "self"), canaryCalls(c, "41", "41", gitlabtest.ListID, "self"),
		vendortest.CanaryFaults(documented), nil)
	vendortest.CheckTransport(t, gitlabKey, transport(v1alpha1.DefinitionGitLab, map[string]string{"token": gitlabKey}, nil, "1"))
}
