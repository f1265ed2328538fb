package builtin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/datadogtest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	datadogAPIKey = "dd-api-credsync-test-key-0000001"
	datadogAppKey = "dd-app-credsync-test-key-00000000000002"
)

func datadogClient(t *testing.T, srv *datadogtest.Server) vendors.Client {
	return httpClient(t, v1alpha1.DefinitionDatadog, srv.URL, srv.CABundle(),
		map[string]string{"apiKey": datadogAPIKey, "appKey": datadogAppKey}, nil)
}

// datadogID is a key ID in Datadog's UUID form.
func datadogID(n int) string { return fmt.Sprintf("9286a10e-fe08-48ba-9884-%012d", n) }

// The registration: both keys from the Secret, the nine Datadog sites.
func TestDatadogRegistration(t *testing.T) {
	v := vendorNamed(t, v1alpha1.DefinitionDatadog)
	spec := &v1alpha1.CredentialProviderSpec{HTTP: &v1alpha1.HTTPProvider{Definition: v1alpha1.DefinitionDatadog,
		Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "dd"}}}}
	if ref := v.SecretRef(spec); ref.Name != "dd" || !slices.Equal(ref.Keys, []string{"apiKey", "appKey"}) {
		t.Errorf("secret ref %+v", ref)
	}
	if u, err := v.URL(spec); err != nil || u != "https://api.datadoghq.com" {
		t.Errorf("default url %q, %v", u, err)
	}
	for _, h := range []string{"api.datadoghq.com", "api.us3.datadoghq.com", "api.us5.datadoghq.com", "api.datadoghq.eu",
		"api.ap1.datadoghq.com", "api.ap2.datadoghq.com", "api.uk1.datadoghq.com", "api.ddog-gov.com", "api.us2.ddog-gov.com"} {
		if !slices.Contains(v.SaaSHosts, h) {
			t.Errorf("hosts %v lack %s", v.SaaSHosts, h)
		}
	}
	if len(v.SaaSHosts) != 9 {
		t.Errorf("hosts %v: want the nine sites", v.SaaSHosts)
	}
}

// An API key read with its GET, every field mapped: the owner is the user
// who created it, modified_at is the update, date_last_used the last use
// (null: never used, and the vendor reports use).
func TestDatadogGet(t *testing.T) {
	srv := datadogtest.NewServer(datadogAPIKey, datadogAppKey)
	defer srv.Close()
	created := time.Date(2025, 9, 8, 9, 24, 42, 999350000, time.UTC)
	modified := time.Date(2026, 1, 3, 12, 0, 0, 123456000, time.UTC)
	used := time.Date(2026, 3, 30, 8, 15, 0, 0, time.UTC)
	tok := datadogtest.Sample(datadogID(1), "ci-metrics")
	tok.CreatedAt, tok.UpdatedAt, tok.LastUsedAt = created, modified, &used
	tok.Owner, tok.ModifiedBy = "0d3e3a4b-1111-4222-8333-444455556666", ""
	srv.Put(tok)
	srv.Put(datadogtest.Sample(datadogID(2), "never-used"))
	c := datadogClient(t, srv)
	cred, err := c.Get(context.Background(), vendors.Ref{ID: datadogID(1)})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if cred.Name != "ci-metrics" || cred.Owner != "user 0d3e3a4b-1111-4222-8333-444455556666" || cred.Description != "" ||
		!cred.ReportsUse || cred.Revoked || cred.ExpiresAt != nil {
		t.Errorf("get: %+v", cred)
	}
	if cred.CreatedAt == nil || !cred.CreatedAt.Equal(created) || cred.UpdatedAt == nil || !cred.UpdatedAt.Equal(modified) ||
		cred.LastUsedAt == nil || !cred.LastUsedAt.Equal(used) {
		t.Errorf("created %v, updated %v, last use %v; want %v, %v, %v", cred.CreatedAt, cred.UpdatedAt, cred.LastUsedAt, created, modified, used)
	}
	cred, err = c.Get(context.Background(), vendors.Ref{ID: datadogID(2)})
	if err != nil || cred.LastUsedAt != nil || !cred.ReportsUse || cred.Owner != "user "+datadogtest.SampleUser {
		t.Errorf("never-used key: %+v, %v", cred, err)
	}
	// A revoked key is deleted: 404 with Datadog's message.
	srv.Delete(datadogID(2))
	_, err = c.Get(context.Background(), vendors.Ref{ID: datadogID(2)})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "API key not found"}.Check(t, err, datadogAPIKey, datadogAppKey)
}

// The list goes page by page (page[number] from 0) through the pages
// Datadog forces (7 a page here, whatever page[size]=100 asks), every key
// once, and ends on the empty page; a page that holds every key
// (total_filtered_count) ends the list at once.
func TestDatadogListPagination(t *testing.T) {
	srv := datadogtest.NewServer(datadogAPIKey, datadogAppKey)
	defer srv.Close()
	for i := range 120 {
		srv.Put(datadogtest.Sample(datadogID(100+i), fmt.Sprintf("key-%d", i)))
	}
	c := datadogClient(t, srv)
	walk := func() (map[string]vendors.Item, int) {
		t.Helper()
		seen, pages := vendortest.WalkList(t, c, nil)
		wantOwned(t, seen, "user "+datadogtest.SampleUser)
		return seen, pages
	}
	srv.SetMaxPerPage(7)
	// 17 full pages, one of 1, and the empty page that ends the list.
	if seen, pages := walk(); len(seen) != 120 || pages != 19 || srv.ListCalls() != 19 {
		t.Fatalf("listed %d keys in %d pages (%d calls), want 120 in 19", len(seen), pages, srv.ListCalls())
	}
	srv.SetMaxPerPage(0)
	srv.ResetCalls()
	if seen, pages := walk(); len(seen) != 120 || pages != 3 || srv.ListCalls() != 3 {
		t.Fatalf("listed %d keys in %d pages (%d calls), want 120 in 3 (100, 20, empty)", len(seen), pages, srv.ListCalls())
	}
	for i := range 80 {
		srv.Delete(datadogID(100 + i))
	}
	srv.ResetCalls()
	if seen, pages := walk(); len(seen) != 40 || pages != 1 || srv.ListCalls() != 1 {
		t.Fatalf("listed %d keys in %d pages (%d calls), want 40 in one", len(seen), pages, srv.ListCalls())
	}
}

// The key check (both keys), and Datadog's errors: its message for
// 401/403/404, its X-RateLimit-Reset (seconds) for 429.
func TestDatadogErrors(t *testing.T) {
	srv := datadogtest.NewServer(datadogAPIKey, datadogAppKey)
	defer srv.Close()
	srv.Put(datadogtest.Sample(datadogID(31), "x"))
	c := datadogClient(t, srv)
	verifyOnce(t, c, srv, "verify")
	for _, secret := range []map[string]string{
		{"apiKey": datadogAPIKey, "appKey": "dd-app-wrong"},
		{"apiKey": "dd-api-wrong", "appKey": datadogAppKey},
	} {
		wrong := httpClient(t, v1alpha1.DefinitionDatadog, srv.URL, srv.CABundle(), secret, nil)
		vendortest.WantError{Class: vendors.ErrUnauthorized, Reason: v1alpha1.ReasonUnauthorized, InMessage: "HTTP 401 Unauthorized: Unauthorized"}.
			Check(t, wrong.Verify(context.Background()), "dd-app-wrong", "dd-api-wrong")
		// Outside validate_keys, Datadog answers wrong keys 403.
		_, err := wrong.Get(context.Background(), vendors.Ref{ID: datadogID(31)})
		vendortest.WantError{Class: vendors.ErrForbidden, InMessage: "HTTP 403 Forbidden: Forbidden"}.Check(t, err, "dd-app-wrong", "dd-api-wrong")
	}
	srv.FailNext(datadogID(31), vendortest.Forbidden)
	_, err := c.Get(context.Background(), vendors.Ref{ID: datadogID(31)})
	vendortest.WantError{Class: vendors.ErrForbidden, Reason: v1alpha1.ReasonForbidden, InMessage: "HTTP 403 Forbidden: Forbidden"}.Check(t, err)
	srv.FailNext(datadogtest.ListID, vendortest.NotFound)
	_, err = c.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "HTTP 404 Not Found: Not found"}.Check(t, err)
	srv.FailNext(datadogID(31), datadogtest.RateLimited(time.Now(), 30))
	_, err = c.Get(context.Background(), vendors.Ref{ID: datadogID(31)})
	vendortest.WantError{Class: vendors.ErrRateLimited, Reason: v1alpha1.ReasonRateLimited, InMessage: "Too many requests", RetryAfter: 30 * time.Second}.Check(t, err)
	srv.FailNext(datadogtest.ListID, datadogtest.RateLimited(time.Now(), 7))
	_, err = c.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrRateLimited, RetryAfter: 7 * time.Second}.Check(t, err)
	wantReadFaults(t, srv, c, datadogID(31))
}

// The full key Datadog's GET answers carry (a canary here, and in list
// items too) lands nowhere in what the client maps; canaries in error
// answers and connections come back in no error.
func TestDatadogCanaries(t *testing.T) {
	srv := datadogtest.NewServer(datadogAPIKey, datadogAppKey)
	defer srv.Close()
	tok := datadogtest.Sample(datadogID(41), "x")
	tok.Value = "ddkey-" + vendortest.Canary
	srv.Put(tok)
	srv.SetEchoValues(true)
	// The fake does carry the key: the checks below can fail.
	raw := rawGet(t, srv.CABundle(), srv.URL+"/api/v2/api_keys/"+datadogID(41), map[string]string{"DD-API-KEY": datadogAPIKey, "DD-APPLICATION-KEY": datadogAppKey})
	if !strings.Contains(string(raw), `"key":"ddkey-`+vendortest.Canary) {
		t.Fatalf("fake's GET answer lacks the key: %s", raw)
	}
	c := datadogClient(t, srv)
	if cred, page := getAndList(t, c, datadogID(41)); len(page.Items) != 1 || cred.Name != "x" {
		t.Fatalf("get %+v, list %+v", cred, page)
	}
	documented := func(m string) string { b, _ := json.Marshal(map[string][]string{"errors": {m}}); return string(b) }
	// A 401 for a key is only Unauthorized when the key check fails too.
	vendortest.CheckCanaries(t, vendortest.WithKeyCheck(srv, "verify"), canaryCalls(c, datadogID(41), datadogID(41), datadogtest.ListID, "verify"),
		vendortest.CanaryFaults(documented), nil)
	vendortest.CheckTransport(t, datadogAppKey, transport(v1alpha1.DefinitionDatadog,
		map[string]string{"apiKey": datadogAPIKey, "appKey": datadogAppKey}, nil, datadogID(1)))
}

// Application keys: the built-in datadog-application-key reads them with
// their GET and list, the owner from owned_by, last use from last_used_at;
// an API key's ID is not an application key; the key itself lands nowhere.
func TestDatadogApplicationKeys(t *testing.T) {
	srv := datadogtest.NewServer(datadogAPIKey, datadogAppKey)
	defer srv.Close()
	used := time.Date(2026, 11, 2, 7, 0, 0, 0, time.UTC)
	app := datadogtest.Sample(datadogID(31), "terraform")
	app.ApplicationKey, app.LastUsedAt, app.Value = true, &used, "appkey-"+vendortest.Canary
	srv.Put(app)
	srv.Put(datadogtest.Sample(datadogID(32), "an-api-key"))
	c := httpClient(t, v1alpha1.DefinitionDatadogApplicationKey, srv.URL, srv.CABundle(),
		map[string]string{"apiKey": datadogAPIKey, "appKey": datadogAppKey}, nil)
	cred, page := getAndList(t, c, datadogID(31))
	if cred.Name != "terraform" || cred.Owner != "user "+datadogtest.SampleUser || cred.LastUsedAt == nil || !cred.LastUsedAt.Equal(used) || !cred.ReportsUse {
		t.Errorf("application key: %+v", cred)
	}
	if len(page.Items) != 1 || page.Items[0].Ref.ID != datadogID(31) {
		t.Fatalf("list: %+v", page)
	}
	_, err := c.Get(context.Background(), vendors.Ref{ID: datadogID(32)})
	vendortest.WantError{Class: vendors.ErrNotFound, InMessage: "Application key not found"}.Check(t, err)
}
