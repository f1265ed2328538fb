package plainid_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	listEnv   = "e2c5d7a0-1f3b-4c8e-9a61-5d0f7b2e4c93"
	otherEnv  = "0f9e8d7c-6b5a-4d3c-8b2a-1e0f9d8c7b6a"
	envCount  = 60
	tenantIDs = 3
)

// listServer is a fake tenant with 3 tenant clients, 60 clients of
// listEnv and one of otherEnv, every one answered with the secret canary.
func listServer(t *testing.T) *plainidtest.Server {
	t.Helper()
	srv := plainidtest.NewServer(adminID, adminSecret)
	t.Cleanup(srv.Close)
	for i := range tenantIDs {
		c := plainidtest.Sample(fmt.Sprintf("PTENANT%013d", i), fmt.Sprintf("tenant-%d", i))
		c.OwnerType, c.OwnerID = "TENANT", []string{"", "-"}[i%2] // null and "-" are both seen
		c.Secret = ptr(secretCanary)
		srv.Put(c)
	}
	for i := range envCount {
		c := plainidtest.Sample(envClientID(i), fmt.Sprintf("env-%d", i))
		c.OwnerID, c.Permission, c.TokenDuration = listEnv, "VIEWER", "PT60M"
		c.Secret = ptr(secretCanary)
		srv.Put(c)
	}
	other := plainidtest.Sample("POTHERENV00000000001", "other")
	other.OwnerID, other.Secret = otherEnv, ptr(secretCanary)
	srv.Put(other)
	return srv
}

func envClientID(i int) string { return fmt.Sprintf("PENV%016d", i) }

func owners(ids ...string) *v1alpha1.Inventory {
	return &v1alpha1.Inventory{PlainID: &v1alpha1.PlainIDInventory{OwnerIDs: ids}}
}

func listPage(c vendors.Client, inv *v1alpha1.Inventory, cursor string) (*vendors.Page, error) {
	return c.ListPage(context.Background(), inv, cursor)
}

func itemIDs(p *vendors.Page) []string {
	var out []string
	for _, it := range p.Items {
		out = append(out, it.Ref.ID)
	}
	return out
}

// assertPageHasNoSecret fails when the page, or the statuses its items
// give, hold the client secret, the vendor's secret field or a token.
func assertPageHasNoSecret(t *testing.T, srv *plainidtest.Server, p *vendors.Page) {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, srv, "page", string(b))
	for _, it := range p.Items {
		st := status(it.Credential)
		sb, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		assertNoSecrets(t, srv, "status", string(sb))
		assertNoSecrets(t, srv, "item", fmt.Sprintf("%+v %+v %+v", *it.Credential, st, st.PlainID))
	}
}

// Tenant clients, then the environment's 50 at a time; every client once.
func TestListPagePages(t *testing.T) {
	srv := listServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	inv := owners(plainidtest.TenantOwner, listEnv)

	var envIDs []string
	for i := range envCount {
		envIDs = append(envIDs, envClientID(i))
	}
	pages := []struct {
		cursor string
		want   []string
		next   string
	}{
		{cursor: "", want: []string{"PTENANT0000000000000", "PTENANT0000000000001", "PTENANT0000000000002"}, next: "1:0"},
		{cursor: "1:0", want: envIDs[:50], next: "1:50"},
		{cursor: "1:50", want: envIDs[50:], next: ""},
	}
	var listed []string
	for _, pc := range pages {
		page, err := listPage(c, inv, pc.cursor)
		if err != nil {
			t.Fatalf("cursor %q: %v", pc.cursor, err)
		}
		if got := itemIDs(page); !slices.Equal(got, pc.want) || page.Next != pc.next {
			t.Errorf("cursor %q: %d items %v, next %q; want %d items %v, next %q",
				pc.cursor, len(got), got, page.Next, len(pc.want), pc.want, pc.next)
		}
		assertPageHasNoSecret(t, srv, page)
		for _, it := range page.Items {
			if it.Partial() || it.Ref.UserID != "" {
				t.Errorf("item %+v: missing %v, want a complete item named by id", it.Ref, it.Missing)
			}
		}
		listed = append(listed, itemIDs(page)...)
	}
	if len(listed) != tenantIDs+envCount || len(slices.Compact(slices.Sorted(slices.Values(listed)))) != len(listed) {
		t.Errorf("listed %d clients (%d distinct), want %d once each", len(listed), len(slices.Compact(slices.Sorted(slices.Values(listed)))), tenantIDs+envCount)
	}
	if a, b, o := srv.Calls(plainidtest.ListID(plainidtest.TenantOwner)), srv.Calls(plainidtest.ListID(listEnv)), srv.Calls(plainidtest.ListID(otherEnv)); a != 1 || b != 2 || o != 0 {
		t.Errorf("list requests: tenant %d, env %d, other env %d; want 1, 2, 0", a, b, o)
	}
	if n := srv.TokenRequests(); n != 1 {
		t.Errorf("token requests = %d, want 1 (reused across pages)", n)
	}
}

// Items are mapped as Get maps a client.
func TestListPageMapsLikeGet(t *testing.T) {
	srv := listServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	first, err := listPage(c, owners(plainidtest.TenantOwner, listEnv), "")
	if err != nil {
		t.Fatal(err)
	}
	second, err := listPage(c, owners(plainidtest.TenantOwner, listEnv), "1:0")
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Items) != tenantIDs || len(second.Items) != 50 {
		t.Fatalf("pages of %d and %d items, want %d and 50", len(first.Items), len(second.Items), tenantIDs)
	}
	tenant, env := first.Items[1], second.Items[7]
	wantTenant := v1alpha1.PlainIDCredentialStatus{OwnerType: "TENANT", Permission: "ADMIN"}
	if st := status(tenant.Credential); tenant.Credential.Name != "tenant-1" || st.PlainID == nil || *st.PlainID != wantTenant || st.TokenDuration != "PT1440M" {
		t.Errorf("tenant item = %+v, status %+v", *tenant.Credential, st)
	}
	wantEnv := v1alpha1.PlainIDCredentialStatus{OwnerID: listEnv, OwnerType: "ENVIRONMENT", Permission: "VIEWER"}
	if st := status(env.Credential); env.Credential.Name != "env-7" || env.Credential.Description != "env-7 client" ||
		st.PlainID == nil || *st.PlainID != wantEnv || st.TokenDuration != "PT60M" {
		t.Errorf("env item = %+v, status %+v", *env.Credential, st)
	}
	for _, it := range []vendors.Item{first.Items[0], tenant, env} {
		got, err := c.Get(context.Background(), it.Ref)
		if err != nil {
			t.Fatal(err)
		}
		if ls, gs := status(it.Credential), status(got); !reflect.DeepEqual(ls, gs) {
			t.Errorf("item %s status = %+v, get status = %+v", it.Ref.ID, ls, gs)
		}
	}
}

// Without owners there is nothing to list: InvalidSpec, and no request.
func TestListPageNeedsOwners(t *testing.T) {
	srv := listServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	for name, inv := range map[string]*v1alpha1.Inventory{
		"no inventory":   nil,
		"no plainid":     {},
		"no ownerIds":    {PlainID: &v1alpha1.PlainIDInventory{}},
		"empty ownerIds": owners(),
	} {
		t.Run(name, func(t *testing.T) {
			page, err := listPage(c, inv, "")
			if page != nil || !errors.Is(err, vendors.ErrInvalidSpec) || !strings.Contains(err.Error(), "ownerIds") {
				t.Errorf("page = %+v, err = %v; want InvalidSpec naming ownerIds", page, err)
			}
			if reason, terminal := vendors.Reason(err); reason != "InvalidSpec" || !terminal {
				t.Errorf("reason = %s (terminal %v), want terminal InvalidSpec", reason, terminal)
			}
		})
	}
	if srv.TotalCalls() != 0 || srv.ListCalls() != 0 || srv.TokenRequests() != 0 {
		t.Errorf("requests: total %d, lists %d, tokens %d; want none", srv.TotalCalls(), srv.ListCalls(), srv.TokenRequests())
	}
}

// A cursor the client did not make is refused without a request.
func TestListPageBadCursor(t *testing.T) {
	srv := listServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	inv := owners(plainidtest.TenantOwner, listEnv)
	for _, cursor := range []string{"x", "1", "1:", ":0", "2:0", "-1:0", "0:-50", "a:0", "0:b", "1:0:0", " 1:0"} {
		t.Run(cursor, func(t *testing.T) {
			page, err := listPage(c, inv, cursor)
			if page != nil || !errors.Is(err, vendors.ErrInvalidResponse) || !strings.Contains(err.Error(), "list cursor") {
				t.Errorf("page = %+v, err = %v; want InvalidResponse naming the cursor", page, err)
			}
		})
	}
	if srv.TotalCalls() != 0 || srv.ListCalls() != 0 {
		t.Errorf("requests: total %d, lists %d; want none", srv.TotalCalls(), srv.ListCalls())
	}
}

// A token that expires between two pages is replaced once and the page
// still answers.
func TestListPageTokenExpiresMidWalk(t *testing.T) {
	srv := listServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	inv := owners(plainidtest.TenantOwner, listEnv)
	if _, err := listPage(c, inv, ""); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	page, err := listPage(c, inv, "1:0")
	if err != nil {
		t.Fatalf("page after expiry: %v", err)
	}
	if len(page.Items) != 50 || page.Next != "1:50" {
		t.Errorf("page after expiry: %d items, next %q; want 50, 1:50", len(page.Items), page.Next)
	}
	if srv.TokenRequests() != 2 || srv.TokensIssued() != 2 {
		t.Errorf("token requests = %d, issued = %d, want 2 and 2 (one new token)", srv.TokenRequests(), srv.TokensIssued())
	}
	if n := srv.Calls(plainidtest.ListID(listEnv)); n != 2 {
		t.Errorf("env list requests = %d, want 2 (one refused, one retried)", n)
	}
	if _, err := listPage(c, inv, "1:50"); err != nil || srv.TokenRequests() != 2 {
		t.Errorf("last page: %v, token requests %d; want the new token reused", err, srv.TokenRequests())
	}
	assertPageHasNoSecret(t, srv, page)
}

func TestListPageErrors(t *testing.T) {
	srv := listServer(t)
	inv := owners(plainidtest.TenantOwner, listEnv)
	env := plainidtest.ListID(listEnv)
	cases := []errorCase{
		{name: "unauthorized twice", key: env, faults: []vendortest.Fault{vendortest.Unauthorized, vendortest.Unauthorized}, class: vendors.ErrUnauthorized, reason: "Unauthorized", inMessage: "HTTP 401 Unauthorized: unauthorizedError"},
		{name: "bad client secret", key: env, secret: badSecret, class: vendors.ErrUnauthorized, reason: "Unauthorized", inMessage: "plainid token request failed"},
		{name: "forbidden environment", key: env, faults: []vendortest.Fault{vendortest.Forbidden}, class: vendors.ErrForbidden, reason: "Forbidden", inMessage: "forbiddenEnvironment"},
		{name: "rate limited", key: env, faults: []vendortest.Fault{vendortest.RateLimited("7")}, class: vendors.ErrRateLimited, reason: "RateLimited", inMessage: "tooManyRequests", retryAfter: 7 * time.Second},
		{name: "html 502", key: env, faults: []vendortest.Fault{vendortest.BadGatewayHTML}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "HTTP 502 Bad Gateway", notInMessage: "nginx"},
		{name: "broken json", key: env, faults: []vendortest.Fault{vendortest.BrokenJSON}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "not the documented JSON"},
		{name: "no total", key: env, faults: []vendortest.Fault{okJSON(`{"data":[],"limit":50,"offset":0}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "list answer has no total"},
		{name: "empty page before total", key: env, faults: []vendortest.Fault{okJSON(`{"data":[],"total":60,"limit":50,"offset":0}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "an empty page at offset 0 of 60 clients"},
		{name: "client without id", key: env, faults: []vendortest.Fault{okJSON(`{"data":[{"name":"x","secret":"` + secretCanary + `"}],"total":1}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "answer has no id"},
		{name: "malformed tokenDuration", key: env, faults: []vendortest.Fault{okJSON(`{"data":[{"id":"P1","tokenDuration":"60 minutes","secret":"` + secretCanary + `"}],"total":1}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "not an ISO-8601 duration"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv.FailNext(tc.key, tc.faults...)
			defer srv.Clear(tc.key)
			secret := adminSecret
			if tc.secret != "" {
				secret = tc.secret
			}
			page, err := listPage(newClient(t, srv, secret, time.Second), inv, "1:0")
			if page != nil {
				t.Errorf("page = %+v, want none", page)
			}
			checkError(t, srv, tc, err)
		})
	}
}
