package elasticcloud_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// listServer is newServer plus k3 of userID (expiring) and k4 of u-3, all
// answered with the key field.
func listServer(t *testing.T) *elastictest.Server {
	t.Helper()
	srv := newServer(t)
	exp := time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)
	k3 := elastictest.Sample("k3", userID, "backup")
	k3.ExpirationDate, k3.Key = &exp, ptr(keyCanary)
	k4 := elastictest.Sample("k4", "u-3", "")
	k4.OrganizationID, k4.Key = "", ptr(keyCanary)
	srv.Put(k3)
	srv.Put(k4)
	return srv
}

func allUsers(on bool) *v1alpha1.Inventory {
	return &v1alpha1.Inventory{ElasticCloud: &v1alpha1.ElasticCloudInventory{AllUsers: on}}
}

// refs are the page's item references as "id" or "id@user".
func refs(p *vendors.Page) []string {
	var out []string
	for _, it := range p.Items {
		r := it.Ref.ID
		if it.Ref.UserID != "" {
			r += "@" + it.Ref.UserID
		}
		out = append(out, r)
	}
	return out
}

// The caller's own keys by default; every user's, each naming its owner,
// with allUsers and a platform admin's key. One page, no secret.
func TestListPageScope(t *testing.T) {
	cases := []struct {
		name     string
		inv      *v1alpha1.Inventory
		admin    bool
		cursor   string
		want     []string
		path     string
		forbids  bool
		keyUsers map[string]string // key ID -> status.elasticCloud.userId
	}{
		{name: "no inventory", want: []string{"k1", "k3"}, path: "/api/v1/users/auth/keys"},
		{name: "no elasticCloud block", inv: &v1alpha1.Inventory{}, want: []string{"k1", "k3"}, path: "/api/v1/users/auth/keys"},
		{name: "allUsers off", inv: allUsers(false), want: []string{"k1", "k3"}, path: "/api/v1/users/auth/keys"},
		{name: "admin, allUsers off", inv: allUsers(false), admin: true, want: []string{"k1", "k3"}, path: "/api/v1/users/auth/keys"},
		{name: "own keys with a cursor", inv: allUsers(false), cursor: "whatever", want: []string{"k1", "k3"}, path: "/api/v1/users/auth/keys"},
		{name: "allUsers admin", inv: allUsers(true), admin: true, want: []string{"k1@u-1", "k2@u-2", "k3@u-1", "k4@u-3"}, path: "/api/v1/users/auth/keys/_all"},
		{name: "allUsers not admin", inv: allUsers(true), forbids: true, path: "/api/v1/users/auth/keys/_all"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := listServer(t)
			srv.SetPlatformAdmin(userID, tc.admin)
			c := newClient(t, srv, apiKey, time.Second)
			page, err := c.ListPage(context.Background(), tc.inv, tc.cursor)
			if n := srv.PathCalls(tc.path); n != 1 || srv.ListCalls() != 1 || srv.TotalCalls() != 1 {
				t.Errorf("requests to %s = %d, lists %d, total %d; want 1, 1, 1", tc.path, n, srv.ListCalls(), srv.TotalCalls())
			}
			if tc.forbids {
				var verr *vendors.Error
				if page != nil || !errors.Is(err, vendors.ErrForbidden) || !errors.As(err, &verr) ||
					verr.Code != elastictest.CodeRBAC || !strings.Contains(err.Error(), "root.unauthorized.rbac") {
					t.Fatalf("page = %+v, err = %v; want Forbidden root.unauthorized.rbac", page, err)
				}
				if reason, _ := vendors.Reason(err); reason != "Forbidden" {
					t.Errorf("reason = %s, want Forbidden", reason)
				}
				assertNoSecret(t, err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := refs(page); !slices.Equal(got, tc.want) {
				t.Errorf("listed %v, want %v", got, tc.want)
			}
			if page.Next != "" {
				t.Errorf("next = %q, want none (one page)", page.Next)
			}
			assertNoSecret(t, page)
			for _, it := range page.Items {
				if it.Partial() {
					t.Errorf("item %s is partial", it.Ref.ID)
				}
				st := status(it.Credential)
				assertNoSecret(t, st)
				if s := fmt.Sprintf("%+v %+v %+v", *it.Credential, st, st.ElasticCloud); strings.Contains(s, keyCanary) {
					t.Errorf("item text %s holds the key field", s)
				}
				// The item is what Get of its reference answers.
				got, err := c.Get(context.Background(), it.Ref)
				if err != nil {
					t.Fatalf("get %+v: %v", it.Ref, err)
				}
				if gs := status(got); !reflect.DeepEqual(st, gs) {
					t.Errorf("item %+v status = %+v, get status = %+v", it.Ref, st, gs)
				}
			}
		})
	}
}

// Items are mapped field by field as Get maps a key.
func TestListPageMapsFields(t *testing.T) {
	srv := listServer(t)
	srv.SetPlatformAdmin(userID, true)
	page, err := newClient(t, srv, apiKey, time.Second).ListPage(context.Background(), allUsers(true), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 4 {
		t.Fatalf("%d items, want 4", len(page.Items))
	}
	created := time.Date(2025, 1, 1, 9, 30, 12, 491e6, time.UTC)
	exp := time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)
	k3, k4 := page.Items[2].Credential, page.Items[3].Credential
	if k3.Name != "backup" || k3.Description != "backup" || k3.CreatedAt == nil || !k3.CreatedAt.Equal(created) ||
		k3.ExpiresAt == nil || !k3.ExpiresAt.Equal(exp) || k3.UpdatedAt != nil {
		t.Errorf("k3 = %+v", *k3)
	}
	if ec := status(k3).ElasticCloud; ec == nil || ec.UserID != userID || ec.OrganizationID != "1436802349" {
		t.Errorf("k3 elasticCloud status = %+v", ec)
	}
	if ec := status(k4).ElasticCloud; k4.Name != "" || k4.ExpiresAt != nil || ec == nil || ec.UserID != "u-3" || ec.OrganizationID != "" {
		t.Errorf("k4 = %+v, elasticCloud status %+v", *k4, ec)
	}
}

// ESS drops expired keys from its list: the client lists what it is given.
func TestListPageExpiredKeysDisappear(t *testing.T) {
	srv := listServer(t)
	now := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC) // after k3's expiry
	srv.Now = func() time.Time { return now }
	c := newClient(t, srv, apiKey, time.Second)
	for _, tc := range []struct {
		deleteExpired bool
		want          []string
	}{{false, []string{"k1", "k3"}}, {true, []string{"k1"}}} {
		srv.SetDeleteExpired(tc.deleteExpired)
		page, err := c.ListPage(context.Background(), nil, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := refs(page); !slices.Equal(got, tc.want) {
			t.Errorf("deleteExpired=%v: listed %v, want %v", tc.deleteExpired, got, tc.want)
		}
	}
}

func TestListPageErrors(t *testing.T) {
	srv := listServer(t)
	srv.SetPlatformAdmin(userID, true)
	k := `"key":"` + keyCanary + `"`
	ok := func(body string) *vendortest.Fault {
		return &vendortest.Fault{Status: http.StatusOK, ContentType: "application/json", Body: body}
	}
	cases := []struct {
		name       string
		all        bool
		key        string
		fault      *vendortest.Fault
		class      error
		code       string
		inMessage  string
		notIn      string
		retryAfter time.Duration
	}{
		{name: "bad key", key: badKey, class: vendors.ErrUnauthorized, code: elastictest.CodeUnauthenticated, inMessage: "HTTP 401 Unauthorized: root.unauthenticated"},
		{name: "bad key all", all: true, key: badKey, class: vendors.ErrUnauthorized, code: elastictest.CodeUnauthenticated, inMessage: "authentication is invalid"},
		{name: "rate limited", fault: ptr(vendortest.RateLimited("7")), class: vendors.ErrRateLimited, code: elastictest.CodeRateLimited, retryAfter: 7 * time.Second},
		{name: "rate limited all", all: true, fault: ptr(vendortest.RateLimited("5")), class: vendors.ErrRateLimited, code: elastictest.CodeRateLimited, retryAfter: 5 * time.Second},
		{name: "html 502", fault: &vendortest.BadGatewayHTML, class: vendors.ErrUnavailable, inMessage: "HTTP 502 Bad Gateway", notIn: "nginx"},
		{name: "broken json", fault: &vendortest.BrokenJSON, class: vendors.ErrInvalidResponse, inMessage: "not the documented JSON"},
		{name: "empty body", fault: &vendortest.EmptyBody, class: vendors.ErrInvalidResponse, inMessage: "empty answer"},
		{name: "no keys", fault: ok(`{}`), class: vendors.ErrInvalidResponse, inMessage: "list answer has no keys"},
		{name: "null", fault: ok(`null`), class: vendors.ErrInvalidResponse, inMessage: "list answer has no keys"},
		{name: "key without id", fault: ok(`{"keys":[{"description":"x","creation_date":"2025-01-01T00:00:00Z",` + k + `}]}`), class: vendors.ErrInvalidResponse, inMessage: "key 1 of the list: answer has no id"},
		{name: "key without creation_date", all: true, fault: ok(`{"keys":[{"id":"a","creation_date":"2025-01-01T00:00:00Z"},{"id":"b",` + k + `}]}`), class: vendors.ErrInvalidResponse, inMessage: "key 2 of the list: answer has no creation_date"},
		{name: "key with bad expiry", fault: ok(`{"keys":[{"id":"a","creation_date":"2025-01-01T00:00:00Z","expiration_date":"soon",` + k + `}]}`), class: vendors.ErrInvalidResponse, inMessage: "expiration_date is not an ISO-8601 time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := elastictest.ListID
			if tc.all {
				id = elastictest.ListAllID
			}
			if tc.fault != nil {
				srv.FailNext(id, *tc.fault)
				defer srv.Clear(id)
			}
			key := apiKey
			if tc.key != "" {
				key = tc.key
			}
			before := srv.Calls(id)
			page, err := newClient(t, srv, key, time.Second).ListPage(context.Background(), allUsers(tc.all), "")
			if page != nil {
				t.Fatalf("page = %+v with err %v; want no page", page, err)
			}
			vendortest.WantError{Class: tc.class, InMessage: tc.inMessage, NotInMessage: tc.notIn, RetryAfter: tc.retryAfter}.Check(t, err)
			var verr *vendors.Error
			if !errors.As(err, &verr) || verr.Code != tc.code {
				t.Errorf("err %v: want code %q", err, tc.code)
			}
			if n := srv.Calls(id) - before; n != 1 {
				t.Errorf("requests to %s = %d, want 1", id, n)
			}
			assertNoSecret(t, err)
		})
	}
}
