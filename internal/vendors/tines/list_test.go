package tines_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// metadataCanary stands for a secret in a credential's free-form metadata.
const metadataCanary = "tines-metadata-canary-41c7"

// listServer starts a fake tenant holding n credentials, IDs 101.., each
// with the metadata canary; odd IDs expire and sit in a folder.
func listServer(t *testing.T, n int) *tinestest.Server {
	t.Helper()
	srv := tinestest.NewServer(apiKey)
	t.Cleanup(srv.Close)
	for i := range n {
		c := tinestest.Sample(int64(101+i), fmt.Sprintf("cred_%d", 101+i))
		c.Description = fmt.Sprintf("credential number %d", 101+i)
		c.UpdatedAt = c.CreatedAt.Add(time.Duration(i) * time.Hour)
		c.Metadata = map[string]string{"token": metadataCanary}
		if i%2 == 0 {
			exp := time.Date(2027, 1, 1+i, 0, 0, 0, 0, time.UTC)
			folder := int64(10 + i)
			c.ExpiresAt, c.FolderID = &exp, &folder
		}
		srv.Put(c)
	}
	return srv
}

// walk lists every page from the first until Next is "", at most limit pages.
func walk(t *testing.T, c vendors.Client, limit int) []*vendors.Page {
	t.Helper()
	var pages []*vendors.Page
	cursor := ""
	for {
		if len(pages) == limit {
			t.Fatalf("still a next page after %d pages", limit)
		}
		page, err := c.ListPage(context.Background(), nil, cursor)
		if err != nil {
			t.Fatalf("page %d (cursor %q): %v", len(pages)+1, cursor, err)
		}
		pages = append(pages, page)
		if page.Next == "" {
			return pages
		}
		cursor = page.Next
	}
}

// assertNoListSecret fails when the page, the statuses its items give, or
// their text form hold the metadata canary or the API key.
func assertNoListSecret(t *testing.T, page *vendors.Page) {
	t.Helper()
	b, err := json.Marshal(page)
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{string(b), fmt.Sprintf("%+v", *page)}
	for _, it := range page.Items {
		st := status(it.Credential)
		sb, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		texts = append(texts, string(sb), fmt.Sprintf("%+v", *it.Credential), fmt.Sprintf("%+v", st))
		if st.Tines != nil {
			texts = append(texts, fmt.Sprintf("%+v", *st.Tines))
		}
	}
	for _, text := range texts {
		for _, secret := range []string{metadataCanary, apiKey} {
			if strings.Contains(text, secret) {
				t.Errorf("list result %s holds secret %q", text, secret)
			}
		}
	}
}

// Walking the pages collects every credential exactly once, each mapped as
// Get maps it, and nothing secret.
func TestListPageWalksAllPages(t *testing.T) {
	srv := listServer(t, 7)
	srv.SetMaxPerPage(3)
	c := newClient(t, srv, apiKey, time.Second)

	pages := walk(t, c, 10)
	var sizes []int
	var ids []string
	for _, p := range pages {
		sizes = append(sizes, len(p.Items))
		for _, it := range p.Items {
			ids = append(ids, it.Ref.ID)
		}
		assertNoListSecret(t, p)
	}
	if want := []int{3, 3, 1}; !slices.Equal(sizes, want) {
		t.Errorf("page sizes = %v, want %v", sizes, want)
	}
	if want := []string{"101", "102", "103", "104", "105", "106", "107"}; !slices.Equal(ids, want) {
		t.Errorf("listed ids = %v, want each of %v once", ids, want)
	}
	if n := srv.ListCalls(); n != 3 {
		t.Errorf("list requests = %d, want 3", n)
	}
	next, err := url.Parse(pages[0].Next)
	if err != nil || "https://"+next.Host != srv.URL || next.Path != "/api/v1/user_credentials" || next.Query().Get("page") != "2" {
		t.Errorf("first page's Next = %q, want the tenant's list, page 2", pages[0].Next)
	}

	for _, p := range pages {
		for _, it := range p.Items {
			if it.Partial() {
				t.Errorf("item %s is partial, want complete (the list has expires_at and owner)", it.Ref.ID)
			}
			if it.Ref.UserID != "" {
				t.Errorf("item %s has userId %q", it.Ref.ID, it.Ref.UserID)
			}
			got, err := c.Get(context.Background(), it.Ref)
			if err != nil {
				t.Fatalf("get %s: %v", it.Ref.ID, err)
			}
			lc := it.Credential
			if lc.Name != got.Name || lc.Description != got.Description ||
				!sameTime(lc.CreatedAt, got.CreatedAt) || !sameTime(lc.UpdatedAt, got.UpdatedAt) || !sameTime(lc.ExpiresAt, got.ExpiresAt) {
				t.Errorf("item %s = %+v, get = %+v", it.Ref.ID, *lc, *got)
			}
			if ls, gs := status(lc), status(got); !reflect.DeepEqual(ls, gs) {
				t.Errorf("item %s status = %+v, get status = %+v", it.Ref.ID, ls, gs)
			}
		}
	}

	// Concrete values, so that equal-but-empty mappings cannot pass.
	first := pages[0].Items[0]
	st := status(first.Credential)
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if first.Credential.Name != "cred_101" || first.Credential.Description != "credential number 101" ||
		!sameTime(first.Credential.ExpiresAt, &exp) || st.Tines == nil || st.Tines.Mode != "TEXT" ||
		st.Tines.OwnerEmail != "jane.doe@example.com" || st.Tines.FolderID == nil || *st.Tines.FolderID != 10 {
		t.Errorf("first item = %+v, status %+v", *first.Credential, st.Tines)
	}
	second := pages[0].Items[1]
	if second.Credential.ExpiresAt != nil || status(second.Credential).Tines.FolderID != nil {
		t.Errorf("second item has expiry or folder: %+v", *second.Credential)
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// Items without expires_at and owner cannot vouch for them: partial.
func TestListPagePartialItems(t *testing.T) {
	for _, omit := range []bool{false, true} {
		t.Run(fmt.Sprintf("omit=%v", omit), func(t *testing.T) {
			srv := listServer(t, 3)
			srv.SetListOmitsOptional(omit)
			page, err := newClient(t, srv, apiKey, time.Second).ListPage(context.Background(), nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(page.Items) != 3 || page.Next != "" {
				t.Fatalf("page = %d items, next %q; want 3, none", len(page.Items), page.Next)
			}
			for _, it := range page.Items {
				want := []string(nil)
				if omit {
					want = []string{"expires_at", "owner"}
				}
				if !slices.Equal(it.Missing, want) || it.Partial() != omit {
					t.Errorf("item %s missing %v, want %v", it.Ref.ID, it.Missing, want)
				}
			}
			// What a partial item lacks: 101's expiry and every owner.
			first := status(page.Items[0].Credential)
			if gotExpiry := page.Items[0].Credential.ExpiresAt != nil; gotExpiry == omit {
				t.Errorf("item 101 expiresAt = %v with omit=%v", page.Items[0].Credential.ExpiresAt, omit)
			}
			if gotOwner := first.Tines.OwnerEmail != ""; gotOwner == omit {
				t.Errorf("item 101 ownerEmail = %q with omit=%v", first.Tines.OwnerEmail, omit)
			}
			assertNoListSecret(t, page)
		})
	}
}

// tenant is a TLS server playing a Tines tenant whose first list page
// names next(tenantURL) as meta.next_page (later pages: none). It counts
// the requests its handler gets and the connections made to it, so that
// even a plain-HTTP request, which never reaches the handler, shows.
type tenant struct {
	url      string
	caBundle []byte
	requests atomic.Int32
	conns    atomic.Int32
}

func newTenant(t *testing.T, next func(tenantURL string) string) *tenant {
	t.Helper()
	tn := &tenant{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tn.requests.Add(1)
		if r.URL.Path != "/api/v1/user_credentials" || r.Header.Get("Authorization") != "Bearer "+apiKey {
			http.NotFound(w, r)
			return
		}
		item := `{"id":1,"name":"one","metadata":{"token":"` + metadataCanary + `"},"expires_at":null,"owner":null}`
		nextPage := "null"
		if r.URL.Query().Get("page") == "1" {
			b, _ := json.Marshal(next("https://" + r.Host))
			nextPage = string(b)
		}
		vendortest.JSON(w, http.StatusOK, []byte(`{"user_credentials":[`+item+`],"meta":{"next_page":`+nextPage+`}}`))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			tn.conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tn.url, tn.caBundle = srv.URL, vendortest.CABundle(srv)
	return tn
}

// A next_page off the tenant's credentials list is not followed: the key
// would go with the request.
func TestListPageRefusesNextPageOffTheList(t *testing.T) {
	var elsewhere atomic.Int32
	other := vendortest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		vendortest.JSON(w, http.StatusOK, []byte(`{"user_credentials":[],"meta":{"next_page":null}}`))
	}))
	defer other.Close()
	host := func(u string) string { return strings.TrimPrefix(u, "https://") }

	cases := []struct {
		name string
		next func(tenant string) string
		ok   bool
	}{
		{name: "same list", ok: true, next: func(tenant string) string { return tenant + "/api/v1/user_credentials?page=2&per_page=500" }},
		{name: "other host", next: func(string) string { return other.URL + "/api/v1/user_credentials?page=2&per_page=500" }},
		{name: "other path", next: func(tenant string) string { return tenant + "/api/v1/admin/users?page=2" }},
		{name: "one credential", next: func(tenant string) string { return tenant + "/api/v1/user_credentials/1" }},
		{name: "dot segments", next: func(tenant string) string { return tenant + "/api/v1/user_credentials/../admin?page=2" }},
		{name: "plain http", next: func(tenant string) string { return "http://" + host(tenant) + "/api/v1/user_credentials?page=2" }},
		{name: "user info", next: func(tenant string) string { return "https://x@" + host(tenant) + "/api/v1/user_credentials?page=2" }},
		{name: "fragment", next: func(tenant string) string { return tenant + "/api/v1/user_credentials?page=2#top" }},
		{name: "relative", next: func(string) string { return "/api/v1/user_credentials?page=2" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			elsewhere.Store(0)
			tn := newTenant(t, tc.next)
			c := clientAt(t, tn.url, tn.caBundle, apiKey, time.Second)
			first, err := c.ListPage(context.Background(), nil, "")
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.next(tn.url); first.Next != want || len(first.Items) != 1 || first.Items[0].Ref.ID != "1" {
				t.Fatalf("first page = %+v, want item 1 and next %q", first, want)
			}
			assertNoListSecret(t, first)
			second, err := c.ListPage(context.Background(), nil, first.Next)
			switch {
			case tc.ok && (err != nil || second.Next != "" || len(second.Items) != 1):
				t.Errorf("next page on the list: %+v, %v; want one item, no next", second, err)
			case tc.ok && tn.requests.Load() != 2:
				t.Errorf("tenant requests = %d, want 2", tn.requests.Load())
			case !tc.ok && (second != nil || !errors.Is(err, vendors.ErrInvalidResponse) ||
				!strings.Contains(err.Error(), "points away from the tenant's credentials list")):
				t.Errorf("next page off the list: %+v, %v; want InvalidResponse, not followed", second, err)
			case !tc.ok && (tn.requests.Load() != 1 || tn.conns.Load() != 1):
				t.Errorf("tenant requests = %d on %d connections, want 1 on 1 (the off-list page not fetched)",
					tn.requests.Load(), tn.conns.Load())
			}
			if n := elsewhere.Load(); n != 0 {
				t.Errorf("the other host got %d requests, want none", n)
			}
			if err != nil && strings.Contains(err.Error(), apiKey) {
				t.Errorf("error %q holds the key", err)
			}
		})
	}
}

// A next_page that loops is handed back as it came, so that the caller,
// which remembers the cursors it asked for, sees the loop.
func TestListPageReturnsNextPageVerbatim(t *testing.T) {
	srv := listServer(t, 2)
	srv.SetNextPageLoop(true)
	c := newClient(t, srv, apiKey, time.Second)
	first, err := c.ListPage(context.Background(), nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first.Next, srv.URL+"/api/v1/user_credentials?") {
		t.Fatalf("next = %q, want a page of the tenant's list", first.Next)
	}
	again, err := c.ListPage(context.Background(), nil, first.Next)
	if err != nil {
		t.Fatal(err)
	}
	if again.Next != first.Next || len(again.Items) != 2 {
		t.Errorf("page at %q: %d items, next %q; want 2 items and the same next", first.Next, len(again.Items), again.Next)
	}
}

func TestListPageErrors(t *testing.T) {
	srv := listServer(t, 2)
	item := func(fields string) vendortest.Fault {
		return vendortest.Fault{Status: http.StatusOK, ContentType: "application/json",
			Body: `{"user_credentials":[{"id":101,"name":"ok","metadata":{"token":"` + metadataCanary + `"}},` + fields + `],"meta":{"next_page":null}}`}
	}
	cases := []struct {
		name       string
		key        string
		fault      *vendortest.Fault
		class      error
		reason     string
		inMessage  string
		notIn      string
		retryAfter time.Duration
	}{
		{name: "bad key", key: "bad-key-canary-9", class: vendors.ErrUnauthorized, reason: "Unauthorized", inMessage: "HTTP 401 Unauthorized"},
		{name: "unauthorized fault", fault: &vendortest.Unauthorized, class: vendors.ErrUnauthorized, reason: "Unauthorized", inMessage: "HTTP 401 Unauthorized", notIn: "sign in"},
		{name: "forbidden", fault: &vendortest.Forbidden, class: vendors.ErrForbidden, reason: "Forbidden", inMessage: "HTTP 403", notIn: "permission"},
		{name: "rate limited", fault: ptr(vendortest.RateLimited("7")), class: vendors.ErrRateLimited, reason: "RateLimited", inMessage: "HTTP 429", retryAfter: 7 * time.Second},
		{name: "rate limited date", fault: ptr(vendortest.RateLimited(time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat))), class: vendors.ErrRateLimited, reason: "RateLimited", retryAfter: 88 * time.Second},
		{name: "server error", fault: &vendortest.ServerError, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "HTTP 500", notIn: "went wrong"},
		{name: "html 502", fault: &vendortest.BadGatewayHTML, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "HTTP 502 Bad Gateway", notIn: "nginx"},
		{name: "broken json", fault: &vendortest.BrokenJSON, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "not the documented JSON"},
		{name: "empty body", fault: &vendortest.EmptyBody, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "empty answer"},
		{name: "huge body", fault: ptr(vendortest.HugeBody()), class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "larger than"},
		{name: "item without id", fault: ptr(item(`{"name":"no id","metadata":{"token":"` + metadataCanary + `"}}`)), class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "credential 2 of the page: answer has no id"},
		{name: "item with null id", fault: ptr(item(`{"id":null,"name":"null id"}`)), class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "answer has no id"},
		{name: "item with text id", fault: ptr(item(`{"id":"abc","name":"text id"}`)), class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "credential 2 of the page: not the documented JSON"},
		{name: "item not an object", fault: ptr(item(`[1,2]`)), class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "credential 2 of the page"},
		{name: "item with bad time", fault: ptr(item(`{"id":102,"created_at":"yesterday"}`)), class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "created_at"},
		{name: "no user_credentials", fault: &vendortest.Fault{Status: http.StatusOK, ContentType: "application/json", Body: `{"meta":{"next_page":null}}`}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "no user_credentials"},
		{name: "null user_credentials", fault: &vendortest.Fault{Status: http.StatusOK, ContentType: "application/json", Body: `{"user_credentials":null}`}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "no user_credentials"},
		{name: "slow", fault: ptr(vendortest.Latency(3 * time.Second)), class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "no answer within"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				srv.FailNext(tinestest.ListID, *tc.fault)
				defer srv.Clear(tinestest.ListID)
			}
			key := apiKey
			if tc.key != "" {
				key = tc.key
			}
			before := srv.ListCalls()
			page, err := newClient(t, srv, key, time.Second).ListPage(context.Background(), nil, "")
			if page != nil {
				t.Fatalf("page = %+v with err %v; want no page", page, err)
			}
			vendortest.WantError{Class: tc.class, Reason: tc.reason, InMessage: tc.inMessage, NotInMessage: tc.notIn, RetryAfter: tc.retryAfter}.
				Check(t, err, apiKey, "bad-key-canary-9", metadataCanary)
			if n := srv.ListCalls() - before; n != 1 {
				t.Errorf("list requests = %d, want 1", n)
			}
		})
	}
}
