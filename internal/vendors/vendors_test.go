package vendors_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"99999999999999999999", 24 * time.Hour, true},
		{"Mon, 23 Nov 2026 12:01:30 GMT", 90 * time.Second, true},
		{"Mon, 23 Nov 2026 11:00:00 GMT", 0, true},
		{"soon", 0, false},
		{"Fri, 31 Dec 2100 23:59:59 GMT", 24 * time.Hour, true},
	}
	for _, tc := range cases {
		got, ok := vendors.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestReasonAndClass(t *testing.T) {
	cases := []struct {
		status   int
		reason   string
		terminal bool
	}{
		{404, v1alpha1.ReasonNotFound, true},
		{410, v1alpha1.ReasonNotFound, true},
		{403, v1alpha1.ReasonForbidden, true},
		{401, v1alpha1.ReasonUnauthorized, true},
		{429, v1alpha1.ReasonRateLimited, false},
		{500, v1alpha1.ReasonVendorUnavailable, false},
		{503, v1alpha1.ReasonVendorUnavailable, false},
		{408, v1alpha1.ReasonVendorUnavailable, false},
		{400, v1alpha1.ReasonInvalidResponse, false},
		{302, v1alpha1.ReasonInvalidResponse, false},
	}
	for _, tc := range cases {
		err := &vendors.Error{Class: vendors.ClassForStatus(tc.status), Status: tc.status}
		reason, terminal := vendors.Reason(err)
		if reason != tc.reason || terminal != tc.terminal {
			t.Errorf("status %d: reason %s terminal %v; want %s %v", tc.status, reason, terminal, tc.reason, tc.terminal)
		}
	}
	if r, terminal := vendors.Reason(errors.New("something else")); r != v1alpha1.ReasonVendorUnavailable || terminal {
		t.Errorf("unclassified error: %s %v", r, terminal)
	}
}

func TestErrorText(t *testing.T) {
	cases := map[string]string{
		`{"message":"m"}`:                              "m",
		`{"error":"e"}`:                                "e",
		`{"error":{"message":"nested"}}`:               "nested",
		`{"errors":[{"message":"a"},{"message":"b"}]}`: "a; b",
		`["x","y"]`:                                    "x; y",
		`plain text`:                                   "plain text",
		`{"unrelated":1}`:                              "",
	}
	for in, want := range cases {
		if got := vendors.ErrorText([]byte(in)); got != want {
			t.Errorf("ErrorText(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestCallerFailCleansAndRedacts(t *testing.T) {
	c, err := vendors.NewCaller("test", nil, time.Second, nil, "s3cr3t-value", "abc")
	if err != nil {
		t.Fatal(err)
	}
	resp := &vendors.Response{Status: 502, Header: http.Header{"Retry-After": {"4"}}}
	msg := "<html><head><title>Bad s3cr3t-value gateway</title></head></html>"
	err = c.Fail(resp, "", msg)
	if !errors.Is(err, vendors.ErrUnavailable) || vendors.RetryAfter(err) != 4*time.Second {
		t.Fatalf("err = %v, retryAfter %v", err, vendors.RetryAfter(err))
	}
	if got := err.Error(); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "HTML error page: Bad [redacted] gateway") {
		t.Errorf("message = %q", got)
	}
	long := c.Fail(&vendors.Response{Status: 500, Header: http.Header{}}, "code", strings.Repeat("x\n", 1000))
	if n := len([]rune(long.Error())); n > 300 {
		t.Errorf("message not capped: %d runes", n)
	}
	if strings.Contains(long.Error(), "\n") {
		t.Error("control characters kept")
	}
}

func TestNewCallerRejectsBadCABundle(t *testing.T) {
	if _, err := vendors.NewCaller("test", []byte("not a pem"), time.Second, nil); !errors.Is(err, vendors.ErrInvalidSpec) {
		t.Fatalf("err = %v, want InvalidSpec", err)
	}
}

func TestPathSegment(t *testing.T) {
	for _, bad := range []string{"", ".", ".."} {
		if _, err := vendors.PathSegment("id", bad); !errors.Is(err, vendors.ErrInvalidSpec) {
			t.Errorf("PathSegment(%q) = %v, want InvalidSpec", bad, err)
		}
	}
	if got, _ := vendors.PathSegment("id", "a/b c"); got != "a%2Fb%20c" {
		t.Errorf("escaped = %q", got)
	}
}

func TestRegistry(t *testing.T) {
	v := vendors.Vendor{
		Name:      "x",
		Selected:  func(s *v1alpha1.CredentialProviderSpec) bool { return s.Tines != nil },
		SecretRef: func(*v1alpha1.CredentialProviderSpec) vendors.SecretRef { return vendors.SecretRef{} },
		New:       func(vendors.Config) (vendors.Client, error) { return nil, nil },
	}
	r := vendors.NewRegistry(v)
	if _, err := r.For(&v1alpha1.CredentialProviderSpec{}); !errors.Is(err, vendors.ErrInvalidSpec) {
		t.Errorf("no block: %v", err)
	}
	got, err := r.For(&v1alpha1.CredentialProviderSpec{Tines: &v1alpha1.TinesProvider{}})
	if err != nil || got.Name != "x" {
		t.Fatalf("For = %v, %v", got, err)
	}
	// A vendor registered without CheckRef names credentials by id alone.
	if got.CheckRef == nil {
		t.Fatal("CheckRef not filled in")
	}
	if err := got.CheckRef(vendors.Ref{ID: "1"}); err != nil {
		t.Errorf("CheckRef(id) = %v", err)
	}
	if err := got.CheckRef(vendors.Ref{ID: "1", UserID: "u"}); !errors.Is(err, vendors.ErrInvalidSpec) || !strings.Contains(err.Error(), "spec.userId") {
		t.Errorf("CheckRef(id, userId) = %v, want InvalidSpec naming spec.userId", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("registering a vendor twice did not panic")
		}
	}()
	r.Register(v)
}

func TestBaseURL(t *testing.T) {
	good := map[string]string{
		"https://acme.tines.com":           "https://acme.tines.com",
		"https://ece.internal:12443/":      "https://ece.internal:12443",
		"https://gw.example.com/plainid//": "https://gw.example.com/plainid",
	}
	for in, want := range good {
		if got, err := vendors.BaseURL("v", in); err != nil || got != want {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "http://acme.tines.com", "https://", "https://u:p@acme.tines.com",
		"https://acme.tines.com/?x=1", "https://acme.tines.com?", "https://acme.tines.com/#f", "acme.tines.com"} {
		if _, err := vendors.BaseURL("v", bad); !errors.Is(err, vendors.ErrInvalidSpec) {
			t.Errorf("BaseURL(%q) = %v, want InvalidSpec", bad, err)
		}
	}
}

// tinesLike is a vendor's metadata for TestCredentialApplyTo.
type tinesLike struct{ mode string }

func (m tinesLike) ApplyTo(st *v1alpha1.RemoteCredentialStatus) {
	st.Tines = &v1alpha1.TinesCredentialStatus{Mode: m.mode}
}

// ApplyTo makes a status's metadata that of the credential: what another
// vendor (or an older answer) wrote is cleared, the fields the reconciler
// owns are kept, and times are cut to seconds.
func TestCredentialApplyTo(t *testing.T) {
	conditions := []metav1.Condition{{Type: "Synced", Status: metav1.ConditionTrue}}
	old := metav1.NewTime(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC))
	st := v1alpha1.RemoteCredentialStatus{
		ObservedGeneration:     3,
		Vendor:                 v1alpha1.VendorTines,
		LastHandledSyncRequest: "r1",
		Conditions:             conditions,
		Name:                   "old",
		Description:            "old",
		UpdatedAt:              &old,
		ExpiresAt:              &old,
		TokenDuration:          "PT1H",
		PlainID:                &v1alpha1.PlainIDCredentialStatus{Permission: "ADMIN"},
		ElasticCloud:           &v1alpha1.ElasticCloudCredentialStatus{UserID: "u"},
	}
	created := time.Date(2026, 11, 23, 12, 0, 0, 999_000_000, time.FixedZone("CET", 3600))
	c := &vendors.Credential{Name: "n", CreatedAt: &created, Vendor: tinesLike{mode: "TEXT"}}
	c.ApplyTo(&st)

	want := v1alpha1.RemoteCredentialStatus{
		ObservedGeneration:     3,
		Vendor:                 v1alpha1.VendorTines,
		LastHandledSyncRequest: "r1",
		Conditions:             conditions,
		Name:                   "n",
		CreatedAt:              ptr(metav1.NewTime(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC))),
		Tines:                  &v1alpha1.TinesCredentialStatus{Mode: "TEXT"},
	}
	if !equality.Semantic.DeepEqual(st, want) {
		t.Errorf("status = %+v\nwant     %+v", st, want)
	}

	// A credential without vendor metadata clears every vendor block.
	(&vendors.Credential{Name: "m"}).ApplyTo(&st)
	if st.Name != "m" || st.CreatedAt != nil || st.Tines != nil || st.PlainID != nil || st.ElasticCloud != nil || st.TokenDuration != "" {
		t.Errorf("status = %+v, want only the name", st)
	}
}

func ptr[T any](v T) *T { return &v }

// A closed Caller refuses requests without sending them: the error is of
// class VendorUnavailable, with no HTTP status.
func TestCallerClose(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	c, err := vendors.NewCaller("test", vendortest.CABundle(srv), time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	do := func() (*vendors.Response, error) {
		req, err := c.NewRequest(context.Background(), http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Do(req)
	}
	if _, err := do(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	resp, err := do()
	var e *vendors.Error
	if resp != nil || !errors.Is(err, vendors.ErrUnavailable) || !errors.As(err, &e) || e.Status != 0 || !strings.Contains(err.Error(), "client closed") {
		t.Fatalf("after Close: %+v, %v; want an unanswered VendorUnavailable error", resp, err)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("%d requests reached the server, want 1 (none after Close)", n)
	}
}
