package plainidtest_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	clientID     = "ADMINCLIENT000000001"
	clientSecret = "admin-secret"
	envA         = "b0e1f961-2061-4f83-8392-b5aa19fed0c1"
	envB         = "6f1c2a7e-0000-4000-8000-000000000000"
)

// listPath is the list endpoint with filter[ownerId] URL-encoded, as a
// client sends it, plus extra raw query.
func listPath(owner, extra string) string {
	p := "/env-mgmt/1.0/api-key/clients?filter%5BownerId%5D=" + url.QueryEscape(owner)
	if extra != "" {
		p += "&" + extra
	}
	return p
}

type listAnswer struct {
	Data   []map[string]any `json:"data"`
	Total  int              `json:"total"`
	Limit  int              `json:"limit"`
	Offset int              `json:"offset"`
}

type fake struct {
	*plainidtest.Server
	t     *testing.T
	http  *http.Client
	token string
}

// newServer starts a fake with four clients in envA (C1..C4, C3 a VIEWER
// with a secret), one in envB and two tenant clients (one with ownerId
// null, one with "-"), put in no particular order, and fetches a token.
func newServer(t *testing.T) *fake {
	t.Helper()
	s := plainidtest.NewServer(clientID, clientSecret)
	t.Cleanup(s.Close)
	f := &fake{Server: s, t: t, http: vendortest.HTTPClient(s.CABundle())}
	t.Cleanup(f.http.CloseIdleConnections)
	secret := "s3cr3t"
	for _, c := range []plainidtest.Client{
		plainidtest.Sample("C4", "four"),
		plainidtest.Sample("C1", "one"),
		{ID: "C3", OwnerID: envA, OwnerType: "ENVIRONMENT", Name: "three", TokenDuration: "PT60M", Permission: "VIEWER", Secret: &secret},
		plainidtest.Sample("C2", "two"),
		{ID: "B1", OwnerID: envB, OwnerType: "ENVIRONMENT", Name: "b", TokenDuration: "PT60M", Permission: "ADMIN"},
		{ID: "T2", OwnerID: "-", OwnerType: "TENANT", Name: "t2", TokenDuration: "PT60M", Permission: "ADMIN"},
		{ID: "T1", OwnerType: "TENANT", Name: "t1", TokenDuration: "PT60M", Permission: "ADMIN"},
	} {
		s.Put(c)
	}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {clientSecret}}
	resp, err := f.http.PostForm(s.URL+"/api/1.0/api-key/token", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		t.Fatalf("token: status %d, %v", resp.StatusCode, err)
	}
	f.token = tok.AccessToken
	return f
}

func (f *fake) get(path, token string) *http.Response {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.http.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func (f *fake) list(path string) listAnswer {
	f.t.Helper()
	resp := f.get(path, f.token)
	if resp.StatusCode != http.StatusOK {
		f.t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	var a listAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		f.t.Fatal(err)
	}
	return a
}

// errorName returns the name of a PlainID error answer.
func errorName(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e struct {
		ID     string `json:"id"`
		Status int    `json:"status"`
		Name   string `json:"name"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil {
		t.Fatal(err)
	}
	if e.Status != resp.StatusCode || e.ID == "" {
		t.Errorf("error body %+v for status %d", e, resp.StatusCode)
	}
	return e.Name
}

func ids(a listAnswer) []string {
	out := []string{}
	for _, c := range a.Data {
		out = append(out, c["id"].(string))
	}
	return out
}

func TestListWalk(t *testing.T) {
	tests := []struct {
		name  string
		owner string
		limit string
		pages int
		want  []string
	}{
		{"environment, default limit", envA, "", 1, []string{"C1", "C2", "C3", "C4"}},
		{"environment, two per page", envA, "limit=2", 2, []string{"C1", "C2", "C3", "C4"}},
		{"environment, three per page", envA, "limit=3", 2, []string{"C1", "C2", "C3", "C4"}},
		{"other environment", envB, "limit=50", 1, []string{"B1"}},
		{"tenant clients", plainidtest.TenantOwner, "limit=1", 2, []string{"T1", "T2"}},
		{"unknown environment", "nope", "", 1, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newServer(t)
			got, pages := []string{}, 0
			for offset := 0; ; {
				extra := strings.TrimPrefix(tt.limit+"&offset="+strconv.Itoa(offset), "&")
				a := f.list(listPath(tt.owner, extra))
				pages++
				if a.Total != len(tt.want) || a.Offset != offset {
					t.Errorf("total %d offset %d, want %d %d", a.Total, a.Offset, len(tt.want), offset)
				}
				got = append(got, ids(a)...)
				offset += a.Limit
				if offset >= a.Total || pages > 10 {
					break
				}
			}
			if !reflect.DeepEqual(got, tt.want) || pages != tt.pages {
				t.Errorf("ids %v in %d pages, want %v in %d", got, pages, tt.want, tt.pages)
			}
			if n := f.Calls(plainidtest.ListID(tt.owner)); n != pages || f.ListCalls() != pages {
				t.Errorf("Calls(ListID) = %d, ListCalls = %d, want %d", n, f.ListCalls(), pages)
			}
			for _, id := range tt.want {
				if n := f.Calls(id); n != 0 {
					t.Errorf("Calls(%s) = %d: list calls recorded under an item", id, n)
				}
			}
		})
	}
}

func TestListWindow(t *testing.T) {
	tests := []struct {
		query         string
		status        int
		name          string // error name
		limit, offset int
		want          []string
	}{
		{"", http.StatusOK, "", 50, 0, []string{"C1", "C2", "C3", "C4"}},
		{"limit=2&offset=1", http.StatusOK, "", 2, 1, []string{"C2", "C3"}},
		{"limit=50&offset=3", http.StatusOK, "", 50, 3, []string{"C4"}},
		{"offset=4", http.StatusOK, "", 50, 4, []string{}},
		{"offset=99", http.StatusOK, "", 50, 99, []string{}},
		{"limit=1", http.StatusOK, "", 1, 0, []string{"C1"}},
		{"limit=0", http.StatusBadRequest, "invalidRequest", 0, 0, nil},
		{"limit=51", http.StatusBadRequest, "invalidRequest", 0, 0, nil},
		{"limit=ten", http.StatusBadRequest, "invalidRequest", 0, 0, nil},
		{"offset=-1", http.StatusBadRequest, "invalidRequest", 0, 0, nil},
		{"offset=x", http.StatusBadRequest, "invalidRequest", 0, 0, nil},
		{"filter%5Bpermission%5D=VIEWER", http.StatusOK, "", 50, 0, []string{"C3"}},
		{"filter%5Bname%5D=two", http.StatusOK, "", 50, 0, []string{"C2"}},
	}
	f := newServer(t)
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp := f.get(listPath(envA, tt.query), f.token)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status != http.StatusOK {
				if name := errorName(t, resp); name != tt.name {
					t.Errorf("name %q, want %q", name, tt.name)
				}
				return
			}
			var a listAnswer
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
				t.Fatal(err)
			}
			if a.Limit != tt.limit || a.Offset != tt.offset || !reflect.DeepEqual(ids(a), tt.want) {
				t.Errorf("limit %d offset %d ids %v, want %d %d %v", a.Limit, a.Offset, ids(a), tt.limit, tt.offset, tt.want)
			}
		})
	}
}

func TestListErrors(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		token  string
		status int
		error  string
		record string // the Scenarios key the request is recorded under
	}{
		{"missing ownerId", "/env-mgmt/1.0/api-key/clients?limit=50&offset=0", "good", http.StatusBadRequest,
			"MissingRequiredFilterParameterError", plainidtest.ListID("")},
		{"empty ownerId", listPath("", ""), "good", http.StatusBadRequest,
			"MissingRequiredFilterParameterError", plainidtest.ListID("")},
		{"no token", listPath(envA, ""), "", http.StatusUnauthorized, "unauthorizedError", plainidtest.ListID(envA)},
		{"bad token", listPath(envA, ""), "forged", http.StatusUnauthorized, "unauthorizedError", plainidtest.ListID(envA)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newServer(t)
			token := tt.token
			if token == "good" {
				token = f.token
			}
			resp := f.get(tt.path, token)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if name := errorName(t, resp); name != tt.error {
				t.Errorf("name %q, want %q", name, tt.error)
			}
			if n := f.Calls(tt.record); n != 1 {
				t.Errorf("Calls(%q) = %d, want 1", tt.record, n)
			}
		})
	}
}

func TestListItemsRenderedAsGet(t *testing.T) {
	f := newServer(t)
	for _, tc := range []struct{ owner, id string }{{envA, "C3"}, {"-", "T1"}, {"-", "T2"}} {
		var one map[string]any
		if err := json.NewDecoder(f.get("/env-mgmt/1.0/api-key/clients/"+tc.id, f.token).Body).Decode(&one); err != nil {
			t.Fatal(err)
		}
		var found map[string]any
		for _, c := range f.list(listPath(tc.owner, "")).Data {
			if c["id"] == tc.id {
				found = c
			}
		}
		if !reflect.DeepEqual(found, one) {
			t.Errorf("%s listed as %v\nwant the GET's %v", tc.id, found, one)
		}
	}
}

func TestListUnencodedFilterAndFaults(t *testing.T) {
	f := newServer(t)
	f.FailNext(plainidtest.ListID(envA), vendortest.Fault{}, vendortest.RateLimited("3"))
	f.Set(plainidtest.ListID(envB), vendortest.Forbidden)
	if a := f.list("/env-mgmt/1.0/api-key/clients?filter[ownerId]=" + envA); a.Total != 4 {
		t.Errorf("unencoded filter: total %d, want 4", a.Total)
	}
	resp := f.get(listPath(envA, ""), f.token)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("second list: status %d Retry-After %q, want 429 3", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if a := f.list(listPath(envA, "")); a.Total != 4 {
		t.Errorf("third list: total %d", a.Total)
	}
	resp = f.get(listPath(envB, ""), f.token)
	if resp.StatusCode != http.StatusForbidden || errorName(t, resp) != "forbiddenEnvironment" {
		t.Errorf("envB list: status %d, want 403 forbiddenEnvironment", resp.StatusCode)
	}
	if f.Calls(plainidtest.ListID(envA)) != 3 || f.ListCalls() != 4 {
		t.Errorf("Calls(ListID(envA)) = %d, ListCalls = %d; want 3, 4", f.Calls(plainidtest.ListID(envA)), f.ListCalls())
	}
	for _, id := range []string{"C1", "C2", "C3", "C4", "B1"} {
		if n := f.Calls(id); n != 0 {
			t.Errorf("Calls(%s) = %d, want 0", id, n)
		}
	}
}
