package tines_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/tines"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const apiKey = "tines-canary-key-3f9a"

func newClient(t *testing.T, srv *tinestest.Server, key string, timeout time.Duration) vendors.Client {
	t.Helper()
	return clientAt(t, srv.URL+"/", srv.CABundle(), key, timeout)
}

// clientAt is a client for the tenant at url, whose certificate caBundle holds.
func clientAt(t *testing.T, url string, caBundle []byte, key string, timeout time.Duration) vendors.Client {
	t.Helper()
	spec := &v1alpha1.CredentialProviderSpec{
		Tines:    &v1alpha1.TinesProvider{URL: url, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "s"}},
		CABundle: caBundle,
	}
	c, err := vendortest.NewClient(tines.Vendor(), spec, map[string]string{"apiKey": key}, timeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// status is the RemoteCredential status c gives.
func status(c *vendors.Credential) v1alpha1.RemoteCredentialStatus {
	var st v1alpha1.RemoteCredentialStatus
	c.ApplyTo(&st)
	return st
}

func TestCheckRefRefusesUserID(t *testing.T) {
	v := tines.Vendor()
	if err := v.CheckRef(vendors.Ref{ID: "1"}); err != nil {
		t.Errorf("CheckRef(id) = %v", err)
	}
	err := v.CheckRef(vendors.Ref{ID: "1", UserID: "u-1"})
	if !errors.Is(err, vendors.ErrInvalidSpec) || !strings.Contains(err.Error(), "spec.userId") {
		t.Errorf("CheckRef(id, userId) = %v, want InvalidSpec naming spec.userId", err)
	}
}

func TestGetMapsDocumentedFields(t *testing.T) {
	srv := tinestest.NewServer(apiKey)
	defer srv.Close()
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	folder := int64(1)
	c := tinestest.Sample(4821, "tines_github_credential")
	c.ExpiresAt, c.FolderID, c.Description = &exp, &folder, "GitHub"
	c.Metadata = map[string]string{"token": "metadata-canary-77"}
	srv.Put(c)

	got, err := newClient(t, srv, apiKey, time.Second).Get(context.Background(), vendors.Ref{ID: "4821"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "tines_github_credential" || got.Description != "GitHub" {
		t.Errorf("name/description = %q/%q", got.Name, got.Description)
	}
	if got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) {
		t.Errorf("expiresAt = %v, want %v", got.ExpiresAt, exp)
	}
	if got.CreatedAt == nil || !got.CreatedAt.Equal(c.CreatedAt) {
		t.Errorf("createdAt = %v, want %v", got.CreatedAt, c.CreatedAt)
	}
	st := status(got)
	if st.PlainID != nil || st.ElasticCloud != nil || st.TokenDuration != "" {
		t.Errorf("fields Tines does not have are set: %+v", st)
	}
	ts := st.Tines
	if ts == nil || ts.Mode != "TEXT" || *ts.TeamID != 2 || *ts.FolderID != 1 || ts.ReadAccess != "TEAM" ||
		ts.RestrictionType != "UNRESTRICTED" || ts.Slug != "tines_github_credential" || ts.OwnerEmail != "jane.doe@example.com" {
		t.Errorf("tines status = %+v", ts)
	}
	if srv.Calls("4821") != 1 {
		t.Errorf("calls = %d, want 1", srv.Calls("4821"))
	}
}

func TestGetNoExpiryNoFolder(t *testing.T) {
	srv := tinestest.NewServer(apiKey)
	defer srv.Close()
	srv.Put(tinestest.Sample(7, "plain"))
	got, err := newClient(t, srv, apiKey, time.Second).Get(context.Background(), vendors.Ref{ID: "7"})
	if err != nil {
		t.Fatal(err)
	}
	ts := status(got).Tines
	if ts == nil {
		t.Fatal("no tines status")
	}
	if got.ExpiresAt != nil || ts.FolderID != nil {
		t.Errorf("expiresAt=%v folderId=%v, want nil", got.ExpiresAt, ts.FolderID)
	}
}

func TestGetErrors(t *testing.T) {
	srv := tinestest.NewServer(apiKey)
	defer srv.Close()
	srv.Put(tinestest.Sample(1, "one"))
	other := vendortest.NewTLSServer(nil)
	defer other.Close()

	cases := []struct {
		name       string
		id         string
		key        string
		fault      *vendortest.Fault
		class      error
		reason     string
		inMessage  string
		notIn      string
		retryAfter time.Duration
	}{
		// Tines' error bodies are undocumented: the status alone.
		{name: "missing", id: "404", class: vendors.ErrNotFound, reason: "NotFound", inMessage: "HTTP 404 Not Found", notIn: "Couldn't find"},
		{name: "forbidden", id: "1", fault: &vendortest.Forbidden, class: vendors.ErrForbidden, reason: "Forbidden", inMessage: "HTTP 403 Forbidden", notIn: "permission"},
		{name: "bad key", id: "1", key: "bad-key-canary-9", class: vendors.ErrUnauthorized, reason: "Unauthorized", inMessage: "HTTP 401 Unauthorized", notIn: "sign in"},
		{name: "rate limited seconds", id: "1", fault: ptr(vendortest.RateLimited("7")), class: vendors.ErrRateLimited, reason: "RateLimited", retryAfter: 7 * time.Second},
		{name: "rate limited date", id: "1", fault: ptr(vendortest.RateLimited(time.Now().Add(90 * time.Second).UTC().Format("Mon, 02 Jan 2006 15:04:05 GMT"))), class: vendors.ErrRateLimited, reason: "RateLimited", retryAfter: 88 * time.Second},
		{name: "rate limited bare", id: "1", fault: ptr(vendortest.RateLimited("")), class: vendors.ErrRateLimited, reason: "RateLimited"},
		{name: "server error", id: "1", fault: &vendortest.ServerError, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "HTTP 500 Internal Server Error", notIn: "went wrong"},
		{name: "html 502", id: "1", fault: &vendortest.BadGatewayHTML, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "HTTP 502 Bad Gateway", notIn: "nginx"},
		{name: "broken json", id: "1", fault: &vendortest.BrokenJSON, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "not the documented JSON"},
		{name: "empty body", id: "1", fault: &vendortest.EmptyBody, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "empty answer"},
		{name: "huge body", id: "1", fault: ptr(vendortest.HugeBody()), class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "larger than"},
		{name: "slow", id: "1", fault: ptr(vendortest.Latency(3 * time.Second)), class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "no answer within"},
		{name: "reset", id: "1", fault: &vendortest.Reset, class: vendors.ErrUnavailable, reason: "VendorUnavailable"},
		{name: "redirect elsewhere", id: "1", fault: &vendortest.Fault{RedirectTo: other.URL + "/steal"}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "redirect to another host refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				srv.FailNext(tc.id, *tc.fault)
			}
			key := apiKey
			if tc.key != "" {
				key = tc.key
			}
			_, err := newClient(t, srv, key, time.Second).Get(context.Background(), vendors.Ref{ID: tc.id})
			vendortest.WantError{Class: tc.class, Reason: tc.reason, InMessage: tc.inMessage, NotInMessage: tc.notIn, RetryAfter: tc.retryAfter}.
				Check(t, err, apiKey, "bad-key-canary-9")
		})
	}
}

func TestRecoversAfterFaults(t *testing.T) {
	srv := tinestest.NewServer(apiKey)
	defer srv.Close()
	srv.Put(tinestest.Sample(1, "one"))
	srv.FailNext("1", vendortest.ServerError)
	c := newClient(t, srv, apiKey, time.Second)
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "1"}); !errors.Is(err, vendors.ErrUnavailable) {
		t.Fatalf("first call: %v", err)
	}
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "1"}); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

func TestAnswerForAnotherCredentialIsInvalid(t *testing.T) {
	srv := tinestest.NewServer(apiKey)
	defer srv.Close()
	srv.FailNext("5", vendortest.Fault{Status: 200, ContentType: "application/json", Body: `{"id":6,"name":"x"}`})
	_, err := newClient(t, srv, apiKey, time.Second).Get(context.Background(), vendors.Ref{ID: "5"})
	if !errors.Is(err, vendors.ErrInvalidResponse) {
		t.Fatalf("err = %v, want InvalidResponse", err)
	}
}

// Verify lists one credential with the key: nil when the key is accepted,
// Unauthorized when it is refused.
func TestVerify(t *testing.T) {
	var requests atomic.Int32
	srv := vendortest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Method != http.MethodGet || r.URL.Path != "/api/v1/user_credentials" || r.URL.RawQuery != "per_page=1" {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+apiKey {
			vendortest.JSON(w, http.StatusUnauthorized, []byte(`{"error":"You need to sign in or sign up before continuing."}`))
			return
		}
		vendortest.JSON(w, http.StatusOK, []byte(`{"user_credentials":[],"meta":{"per_page":1,"count":0}}`))
	}))
	defer srv.Close()

	if err := clientAt(t, srv.URL, vendortest.CABundle(srv), apiKey, time.Second).Verify(context.Background()); err != nil {
		t.Fatalf("good key: %v", err)
	}
	err := clientAt(t, srv.URL, vendortest.CABundle(srv), "bad-key-canary-9", time.Second).Verify(context.Background())
	// Tines' error bodies are undocumented: the status alone.
	if !errors.Is(err, vendors.ErrUnauthorized) || err.Error() != "HTTP 401 Unauthorized" {
		t.Fatalf("bad key: err = %v, want Unauthorized with the status alone", err)
	}
	if strings.Contains(err.Error(), "bad-key-canary-9") {
		t.Errorf("error %q holds the key", err)
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("%d requests, want one per Verify", n)
	}
}

// A closed client refuses to read without calling the vendor.
func TestClose(t *testing.T) {
	srv := tinestest.NewServer(apiKey)
	defer srv.Close()
	srv.Put(tinestest.Sample(1, "one"))
	c := newClient(t, srv, apiKey, time.Second)
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "1"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	cred, err := c.Get(context.Background(), vendors.Ref{ID: "1"})
	if cred != nil || !errors.Is(err, vendors.ErrUnavailable) || !strings.Contains(err.Error(), "client closed") {
		t.Fatalf("after Close: %+v, %v; want VendorUnavailable: client closed", cred, err)
	}
	if srv.Calls("1") != 1 {
		t.Errorf("calls = %d, want 1 (none after Close)", srv.Calls("1"))
	}
}

func ptr[T any](v T) *T { return &v }
