package tinestest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const apiKey = "tines-test-key"

// listAnswer is the list endpoint's answer, meta fields kept raw so that
// null and absent can be told apart.
type listAnswer struct {
	Items []map[string]any `json:"user_credentials"`
	Meta  struct {
		CurrentPage    string  `json:"current_page"`
		PreviousPage   *string `json:"previous_page"`
		NextPage       *string `json:"next_page"`
		NextPageNumber *int    `json:"next_page_number"`
		PerPage        int     `json:"per_page"`
		Pages          int     `json:"pages"`
		Count          int     `json:"count"`
	} `json:"meta"`
}

// newServer starts a fake holding credentials 1..n, put in reverse order,
// odd IDs in team 2 folder 1, even IDs in team 3 without a folder.
func newServer(t *testing.T, n int) *tinestest.Server {
	t.Helper()
	s := tinestest.NewServer(apiKey)
	t.Cleanup(s.Close)
	folder := int64(1)
	for i := int64(n); i >= 1; i-- {
		c := tinestest.Sample(i, "cred_"+strconv.FormatInt(i, 10))
		if i%2 == 0 {
			c.TeamID = 3
		} else {
			c.FolderID = &folder
		}
		s.Put(c)
	}
	return s
}

func get(t *testing.T, s *tinestest.Server, target string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	c := vendortest.HTTPClient(s.CABundle())
	t.Cleanup(c.CloseIdleConnections)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func list(t *testing.T, s *tinestest.Server, target string) listAnswer {
	t.Helper()
	resp := get(t, s, target, "Authorization", "Bearer "+apiKey)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", target, resp.StatusCode)
	}
	var a listAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("GET %s: %v", target, err)
	}
	return a
}

// walk follows next_page from target until it is null and returns the item
// IDs and the answers, one per page.
func walk(t *testing.T, s *tinestest.Server, target string) ([]int64, []listAnswer) {
	t.Helper()
	var ids []int64
	var pages []listAnswer
	for next := &target; next != nil; {
		if len(pages) > 100 {
			t.Fatal("next_page never ends")
		}
		a := list(t, s, *next)
		checkCurrentPage(t, *next, a, len(pages)+1)
		for _, it := range a.Items {
			ids = append(ids, int64(it["id"].(float64)))
		}
		pages = append(pages, a)
		next = a.Meta.NextPage
	}
	return ids, pages
}

// checkCurrentPage checks that current_page is fetched's absolute URL
// with page and per_page canonical.
func checkCurrentPage(t *testing.T, fetched string, a listAnswer, page int) {
	t.Helper()
	cur, err := url.Parse(a.Meta.CurrentPage)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := url.Parse(fetched)
	wq, q := want.Query(), cur.Query()
	wq.Set("page", strconv.Itoa(page))
	wq.Set("per_page", strconv.Itoa(a.Meta.PerPage))
	if cur.Scheme != "https" || cur.Host != want.Host || cur.Path != want.Path || !reflect.DeepEqual(q, wq) {
		t.Errorf("current_page = %q, fetched %q", a.Meta.CurrentPage, fetched)
	}
}

func seq(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

func TestListWalk(t *testing.T) {
	tests := []struct {
		name       string
		creds      int
		query      string
		maxPerPage int
		perPage    int // meta.per_page on every page
		pages      int
	}{
		{"default page size", 7, "", 0, 20, 1},
		{"three per page", 7, "?per_page=3&page=1", 0, 3, 3},
		{"exact pages", 6, "?per_page=3", 0, 3, 2},
		{"server gives fewer than asked", 7, "?per_page=500&page=1", 2, 2, 4},
		{"asked fewer than the server cap", 7, "?per_page=4", 5, 4, 2},
		{"per_page capped at 500", 501, "?per_page=1000", 0, 500, 2},
		{"unusable per_page falls back", 21, "?per_page=abc&page=0", 0, 20, 2},
		{"empty tenant", 0, "?per_page=500", 0, 500, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, tt.creds)
			s.SetMaxPerPage(tt.maxPerPage)
			ids, pages := walk(t, s, s.URL+"/api/v1/user_credentials"+tt.query)
			if want := seq(1, int64(tt.creds)); !reflect.DeepEqual(ids, want) {
				t.Errorf("ids = %v, want %v", ids, want)
			}
			if want := max(tt.pages, 1); len(pages) != want {
				t.Errorf("fetched %d pages, want %d", len(pages), want)
			}
			for i, p := range pages {
				m := p.Meta
				if m.Count != tt.creds || m.Pages != tt.pages || m.PerPage != tt.perPage {
					t.Errorf("page %d: count, pages, per_page = %d, %d, %d; want %d, %d, %d",
						i+1, m.Count, m.Pages, m.PerPage, tt.creds, tt.pages, tt.perPage)
				}
				if (i == 0) != (m.PreviousPage == nil) {
					t.Errorf("page %d: previous_page = %v", i+1, m.PreviousPage)
				}
				if i > 0 && m.PreviousPage != nil && *m.PreviousPage != pages[i-1].Meta.CurrentPage {
					t.Errorf("page %d: previous_page = %q, want %q", i+1, *m.PreviousPage, pages[i-1].Meta.CurrentPage)
				}
			}
			if got := s.ListCalls(); got != len(pages) {
				t.Errorf("ListCalls = %d, want %d", got, len(pages))
			}
			if got := s.TotalCalls(); got != len(pages) {
				t.Errorf("TotalCalls = %d, want %d: list calls recorded elsewhere", got, len(pages))
			}
			for _, id := range ids {
				if n := s.Calls(strconv.FormatInt(id, 10)); n != 0 {
					t.Errorf("Calls(%d) = %d, want 0: list calls recorded under an item", id, n)
				}
			}
		})
	}
}

func TestListLastPageQuirk(t *testing.T) {
	s := newServer(t, 5)
	base := s.URL + "/api/v1/user_credentials?per_page=2"
	first := list(t, s, base+"&page=1")
	if first.Meta.NextPage == nil || first.Meta.NextPageNumber == nil || *first.Meta.NextPageNumber != 2 {
		t.Fatalf("page 1: next_page %v, next_page_number %v", first.Meta.NextPage, first.Meta.NextPageNumber)
	}
	last := list(t, s, base+"&page=3")
	if last.Meta.NextPage != nil {
		t.Errorf("last page: next_page = %q, want null", *last.Meta.NextPage)
	}
	if last.Meta.NextPageNumber == nil || *last.Meta.NextPageNumber != 4 {
		t.Errorf("last page: next_page_number = %v, want 4 (non-null, as seen at Tines)", last.Meta.NextPageNumber)
	}
	past := list(t, s, base+"&page=4")
	if len(past.Items) != 0 || past.Meta.NextPage != nil || past.Meta.NextPageNumber != nil {
		t.Errorf("past the last page: %d items, next_page %v, next_page_number %v",
			len(past.Items), past.Meta.NextPage, past.Meta.NextPageNumber)
	}
}

func TestListNextPageLoop(t *testing.T) {
	s := newServer(t, 5)
	s.SetNextPageLoop(true)
	for _, page := range []string{"1", "3"} {
		target := s.URL + "/api/v1/user_credentials?per_page=2&page=" + page
		for range 3 {
			a := list(t, s, target)
			if a.Meta.NextPage == nil || *a.Meta.NextPage != a.Meta.CurrentPage {
				t.Fatalf("page %s: next_page = %v, want current_page %q", page, a.Meta.NextPage, a.Meta.CurrentPage)
			}
			target = *a.Meta.NextPage
		}
	}
}

func TestListFilters(t *testing.T) {
	s := newServer(t, 7)
	tests := []struct {
		query string
		want  []int64
	}{
		{"team_id=2", []int64{1, 3, 5, 7}},
		{"team_id=3", []int64{2, 4, 6}},
		{"folder_id=1", []int64{1, 3, 5, 7}},
		{"team_id=3&folder_id=1", nil},
		{"team_id=99", nil},
		{"team_id=2&per_page=3", []int64{1, 3, 5, 7}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			ids, pages := walk(t, s, s.URL+"/api/v1/user_credentials?"+tt.query)
			if !reflect.DeepEqual(ids, tt.want) {
				t.Errorf("ids = %v, want %v", ids, tt.want)
			}
			if c := pages[0].Meta.Count; c != len(tt.want) {
				t.Errorf("count = %d, want %d", c, len(tt.want))
			}
		})
	}
}

func TestListItemsRenderedAsGet(t *testing.T) {
	s := newServer(t, 0)
	c := tinestest.Sample(4821, "github_token")
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	c.ExpiresAt = &exp
	c.Metadata = map[string]string{"token": "ghp_secret"}
	s.Put(c)
	var one map[string]any
	resp := get(t, s, s.URL+"/api/v1/user_credentials/4821", "Authorization", "Bearer "+apiKey)
	if err := json.NewDecoder(resp.Body).Decode(&one); err != nil {
		t.Fatal(err)
	}
	a := list(t, s, s.URL+"/api/v1/user_credentials")
	if len(a.Items) != 1 || !reflect.DeepEqual(a.Items[0], one) {
		t.Fatalf("list item %v\nwant the GET's %v", a.Items, one)
	}

	s.SetListOmitsOptional(true)
	a = list(t, s, s.URL+"/api/v1/user_credentials")
	delete(one, "expires_at")
	delete(one, "owner")
	if len(a.Items) != 1 || !reflect.DeepEqual(a.Items[0], one) {
		t.Errorf("list item %v\nwant the GET's without expires_at and owner %v", a.Items, one)
	}
}

func TestListAuth(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		want   int
	}{
		{"bearer", []string{"Authorization", "Bearer " + apiKey}, http.StatusOK},
		{"user token", []string{"X-User-Token", apiKey}, http.StatusOK},
		{"none", nil, http.StatusUnauthorized},
		{"wrong bearer", []string{"Authorization", "Bearer nope"}, http.StatusUnauthorized},
		{"wrong user token", []string{"X-User-Token", "nope"}, http.StatusUnauthorized},
		{"wrong scheme", []string{"Authorization", "Token " + apiKey}, http.StatusUnauthorized},
	}
	s := newServer(t, 2)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := get(t, s, s.URL+"/api/v1/user_credentials", tt.header...)
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}

func TestListFaults(t *testing.T) {
	s := newServer(t, 3)
	s.FailNext(tinestest.ListID, vendortest.Fault{}, vendortest.Fault{}, vendortest.RateLimited("1"))
	s.FailNext("1", vendortest.NotFound)
	target := s.URL + "/api/v1/user_credentials?per_page=1"
	want := []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests, http.StatusOK}
	for i, w := range want {
		resp := get(t, s, target, "Authorization", "Bearer "+apiKey)
		if resp.StatusCode != w {
			t.Errorf("list request %d: status %d, want %d", i+1, resp.StatusCode, w)
		}
		if w == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "1" {
			t.Errorf("list request %d: Retry-After %q, want 1", i+1, resp.Header.Get("Retry-After"))
		}
	}
	if n := s.Calls(tinestest.ListID); n != len(want) {
		t.Errorf("Calls(ListID) = %d, want %d", n, len(want))
	}
	if n := s.Calls("1"); n != 0 {
		t.Errorf("Calls(1) = %d, want 0", n)
	}
	// The item's own fault is still pending for its GET.
	if resp := get(t, s, s.URL+"/api/v1/user_credentials/1", "Authorization", "Bearer "+apiKey); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET 1: status %d, want the pending 404", resp.StatusCode)
	}
}
