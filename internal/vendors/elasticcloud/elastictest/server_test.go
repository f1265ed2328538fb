package elastictest_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	aliceKey = "alice-api-key"
	bobKey   = "bob-api-key"
)

// newServer starts a fake where alice owns k1 and k3 (k3 with a secret)
// and bob owns k2; both have an API key, neither is a platform admin.
func newServer(t *testing.T) *elastictest.Server {
	t.Helper()
	s := elastictest.NewServer()
	t.Cleanup(s.Close)
	s.AddAPIKey(aliceKey, "alice")
	s.AddAPIKey(bobKey, "bob")
	secret := "essu_c2VjcmV0"
	k3 := elastictest.Sample("k3", "alice", "deploy")
	k3.Key = &secret
	s.Put(k3)
	s.Put(elastictest.Sample("k2", "bob", "bob's"))
	s.Put(elastictest.Sample("k1", "alice", "ci"))
	return s
}

func get(t *testing.T, s *elastictest.Server, path, apiKey string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if apiKey != "" {
		req.Header.Set("Authorization", "ApiKey "+apiKey)
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

func decode(t *testing.T, resp *http.Response, v any) {
	t.Helper()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// listIDs lists path and returns the key IDs, failing unless it is a 200.
func listIDs(t *testing.T, s *elastictest.Server, path, apiKey string) []string {
	t.Helper()
	resp := get(t, s, path, apiKey)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	var a struct {
		Keys []map[string]any `json:"keys"`
	}
	decode(t, resp, &a)
	ids := []string{}
	for _, k := range a.Keys {
		ids = append(ids, k["id"].(string))
	}
	return ids
}

// errorCode returns the code of an Elastic error answer, checking that
// x-cloud-error-codes agrees.
func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	decode(t, resp, &e)
	if len(e.Errors) != 1 {
		t.Fatalf("errors = %+v", e.Errors)
	}
	if h := resp.Header.Get("X-Cloud-Error-Codes"); h != e.Errors[0].Code {
		t.Errorf("x-cloud-error-codes %q, body code %q", h, e.Errors[0].Code)
	}
	return e.Errors[0].Code
}

func TestLists(t *testing.T) {
	tests := []struct {
		name   string
		path   string
		apiKey string
		admin  bool
		status int
		ids    []string
		code   string
	}{
		{"own keys", "/api/v1/users/auth/keys", aliceKey, false, http.StatusOK, []string{"k1", "k3"}, ""},
		{"own keys of another caller", "/api/v1/users/auth/keys", bobKey, false, http.StatusOK, []string{"k2"}, ""},
		{"all keys as platform admin", "/api/v1/users/auth/keys/_all", aliceKey, true, http.StatusOK, []string{"k1", "k2", "k3"}, ""},
		{"all keys without admin", "/api/v1/users/auth/keys/_all", aliceKey, false, http.StatusForbidden, nil, elastictest.CodeRBAC},
		{"one user's keys", "/api/v1/users/bob/auth/keys", aliceKey, false, http.StatusOK, []string{"k2"}, ""},
		{"unknown user", "/api/v1/users/carol/auth/keys", aliceKey, false, http.StatusNotFound, nil, elastictest.CodeUserNotFound},
		{"own keys without auth", "/api/v1/users/auth/keys", "", false, http.StatusUnauthorized, nil, elastictest.CodeUnauthenticated},
		{"own keys with a wrong key", "/api/v1/users/auth/keys", "nope", false, http.StatusUnauthorized, nil, elastictest.CodeUnauthenticated},
		{"all keys without auth", "/api/v1/users/auth/keys/_all", "", true, http.StatusUnauthorized, nil, elastictest.CodeUnauthenticated},
		{"user keys without auth", "/api/v1/users/bob/auth/keys", "", false, http.StatusUnauthorized, nil, elastictest.CodeUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t)
			s.SetPlatformAdmin("alice", tt.admin)
			resp := get(t, s, tt.path, tt.apiKey)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if resp.Header.Get("X-Ratelimit-Limit") == "" || resp.Header.Get("X-Ratelimit-Remaining") == "" ||
				resp.Header.Get("X-Ratelimit-Interval") == "" {
				t.Errorf("x-ratelimit-* headers missing: %v", resp.Header)
			}
			if tt.status != http.StatusOK {
				if code := errorCode(t, resp); code != tt.code {
					t.Errorf("code %q, want %q", code, tt.code)
				}
				return
			}
			var a struct {
				Keys []map[string]any `json:"keys"`
			}
			decode(t, resp, &a)
			ids := []string{}
			for _, k := range a.Keys {
				ids = append(ids, k["id"].(string))
			}
			if !reflect.DeepEqual(ids, tt.ids) {
				t.Errorf("ids = %v, want %v", ids, tt.ids)
			}
		})
	}
}

func TestListItemsRenderedAsGet(t *testing.T) {
	s := newServer(t)
	var one map[string]any
	decode(t, get(t, s, "/api/v1/users/auth/keys/k3", aliceKey), &one)
	if one["key"] == nil {
		t.Fatalf("GET k3 = %v: the fake should send the secret", one)
	}
	s.SetPlatformAdmin("alice", true)
	for _, path := range []string{"/api/v1/users/auth/keys", "/api/v1/users/auth/keys/_all", "/api/v1/users/alice/auth/keys"} {
		var a struct {
			Keys []map[string]any `json:"keys"`
		}
		decode(t, get(t, s, path, aliceKey), &a)
		var found map[string]any
		for _, k := range a.Keys {
			if k["id"] == "k3" {
				found = k
			}
		}
		if !reflect.DeepEqual(found, one) {
			t.Errorf("%s: k3 = %v\nwant the GET's %v", path, found, one)
		}
	}
}

func TestListAllNotSwallowedByGetByID(t *testing.T) {
	s := newServer(t)
	s.SetPlatformAdmin("alice", true)
	if ids := listIDs(t, s, "/api/v1/users/auth/keys/_all", aliceKey); len(ids) != 3 {
		t.Errorf("_all listed %v", ids)
	}
	if resp := get(t, s, "/api/v1/users/auth/keys/k1", aliceKey); resp.StatusCode != http.StatusOK {
		t.Errorf("GET k1: status %d", resp.StatusCode)
	}
	if n := s.Calls("_all"); n != 0 {
		t.Errorf("Calls(_all) = %d: the GET by ID served _all", n)
	}
	if n := s.Calls(elastictest.ListAllID); n != 1 {
		t.Errorf("Calls(ListAllID) = %d, want 1", n)
	}
}

func TestListCallsRecorded(t *testing.T) {
	s := newServer(t)
	s.SetPlatformAdmin("alice", true)
	listIDs(t, s, "/api/v1/users/auth/keys", aliceKey)
	listIDs(t, s, "/api/v1/users/auth/keys", aliceKey)
	listIDs(t, s, "/api/v1/users/auth/keys/_all", aliceKey)
	listIDs(t, s, "/api/v1/users/bob/auth/keys", aliceKey)
	for id, want := range map[string]int{
		elastictest.ListID: 2, elastictest.ListAllID: 1, elastictest.UserListID("bob"): 1,
		"k1": 0, "k2": 0, "k3": 0,
	} {
		if n := s.Calls(id); n != want {
			t.Errorf("Calls(%q) = %d, want %d", id, n, want)
		}
	}
	if n := s.ListCalls(); n != 4 {
		t.Errorf("ListCalls = %d, want 4", n)
	}
	if n := s.TotalCalls(); n != 4 {
		t.Errorf("TotalCalls = %d, want 4", n)
	}
	if n := s.PathCalls("/api/v1/users/auth/keys"); n != 2 {
		t.Errorf("PathCalls(own list) = %d, want 2", n)
	}
}

func TestListFaults(t *testing.T) {
	s := newServer(t)
	s.FailNext(elastictest.ListID, vendortest.Fault{}, vendortest.RateLimited("2"))
	s.Set(elastictest.UserListID("bob"), vendortest.Forbidden)
	want := []int{http.StatusOK, http.StatusTooManyRequests, http.StatusOK}
	for i, w := range want {
		resp := get(t, s, "/api/v1/users/auth/keys", aliceKey)
		if resp.StatusCode != w {
			t.Fatalf("list request %d: status %d, want %d", i+1, resp.StatusCode, w)
		}
		if w != http.StatusTooManyRequests {
			continue
		}
		if resp.Header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q", resp.Header.Get("Retry-After"))
		}
		if code := errorCode(t, resp); code != elastictest.CodeRateLimited {
			t.Errorf("code %q", code)
		}
	}
	resp := get(t, s, "/api/v1/users/bob/auth/keys", aliceKey)
	if resp.StatusCode != http.StatusForbidden || errorCode(t, resp) != elastictest.CodeRBAC {
		t.Errorf("bob's list: status %d, want 403 %s", resp.StatusCode, elastictest.CodeRBAC)
	}
	if ids := listIDs(t, s, "/api/v1/users/alice/auth/keys", aliceKey); len(ids) != 2 {
		t.Errorf("alice's list = %v: bob's fault leaked", ids)
	}
}

func TestDeleteExpired(t *testing.T) {
	exp := time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)
	var now atomic.Int64
	now.Store(exp.Add(-time.Second).UnixNano())
	s := newServer(t)
	s.Now = func() time.Time { return time.Unix(0, now.Load()) }
	k1 := elastictest.Sample("k1", "alice", "ci")
	k1.ExpirationDate = &exp
	s.Put(k1)
	s.SetPlatformAdmin("alice", true)

	tests := []struct {
		name          string
		deleteExpired bool
		now           time.Time
		listed        bool
	}{
		{"before expiry", true, exp.Add(-time.Second), true},
		{"at expiry", true, exp, false},
		{"after expiry", true, exp.Add(time.Hour), false},
		{"after expiry, ECE keeps keys", false, exp.Add(time.Hour), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.SetDeleteExpired(tt.deleteExpired)
			now.Store(tt.now.UnixNano())
			want := []string{"k3"}
			if tt.listed {
				want = []string{"k1", "k3"}
			}
			for _, path := range []string{"/api/v1/users/auth/keys", "/api/v1/users/alice/auth/keys"} {
				if ids := listIDs(t, s, path, aliceKey); !reflect.DeepEqual(ids, want) {
					t.Errorf("%s: %v, want %v", path, ids, want)
				}
			}
			if ids := listIDs(t, s, "/api/v1/users/auth/keys/_all", aliceKey); len(ids) != len(want)+1 {
				t.Errorf("_all: %v", ids)
			}
			for _, path := range []string{"/api/v1/users/auth/keys/k1", "/api/v1/users/alice/auth/keys/k1"} {
				resp := get(t, s, path, aliceKey)
				switch {
				case tt.listed && resp.StatusCode != http.StatusOK:
					t.Errorf("GET %s: status %d, want 200", path, resp.StatusCode)
				case !tt.listed && (resp.StatusCode != http.StatusNotFound || errorCode(t, resp) != elastictest.CodeKeyNotFound):
					t.Errorf("GET %s: status %d, want 404 %s", path, resp.StatusCode, elastictest.CodeKeyNotFound)
				}
			}
		})
	}
}
