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

func TestCallerFailCleansAndRedacts(t *testing.T) {
	c, err := vendors.NewCaller("test", nil, false, nil, time.Second, nil, "s3cr3t-value", "abc")
	if err != nil {
		t.Fatal(err)
	}
	resp := &vendors.Response{Status: 429, Header: http.Header{"Retry-After": {"4"}}}
	err = c.Fail(resp, "too_many", "slow down,\n s3cr3t-value")
	if !errors.Is(err, vendors.ErrRateLimited) || vendors.RetryAfter(err) != 4*time.Second {
		t.Fatalf("err = %v, retryAfter %v", err, vendors.RetryAfter(err))
	}
	if got, want := err.Error(), "HTTP 429 Too Many Requests: too_many: slow down, [redacted] (retry after 4s)"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	// A server error is its status alone, whatever text came with it.
	server := c.Fail(&vendors.Response{Status: 502, Header: http.Header{}}, "code", "db_password=hunter2")
	if got, want := server.Error(), "HTTP 502 Bad Gateway"; got != want {
		t.Errorf("5xx message = %q, want %q", got, want)
	}
	long := c.Fail(&vendors.Response{Status: 400, Header: http.Header{}}, "code", strings.Repeat("x\n", 1000))
	if n := len([]rune(long.Error())); n > 300 {
		t.Errorf("message not capped: %d runes", n)
	}
	if strings.Contains(long.Error(), "\n") {
		t.Error("control characters kept")
	}
}

func TestNewCallerRejectsBadCABundle(t *testing.T) {
	if _, err := vendors.NewCaller("test", nil, false, []byte("not a pem"), time.Second, nil); !errors.Is(err, vendors.ErrInvalidSpec) {
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
		URL:       func(s *v1alpha1.CredentialProviderSpec) (string, error) { return vendors.BaseURL("x", s.Tines.URL) },
		New:       func(vendors.Config) (vendors.Client, error) { return nil, nil },
	}
	noURL := v
	noURL.URL = nil
	func() {
		defer func() {
			if recover() == nil {
				t.Error("registering a vendor without URL did not panic")
			}
		}()
		vendors.NewRegistry(noURL)
	}()
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

// The host rule of a namespaced provider's spec: by default the
// registered vendors' SaaS hosts, else the configured patterns; nothing is
// resolved or dialled to decide.
func TestRegistryCheckHost(t *testing.T) {
	v := vendors.Vendor{
		Name:      "x",
		Selected:  func(s *v1alpha1.CredentialProviderSpec) bool { return s.Tines != nil },
		SecretRef: func(*v1alpha1.CredentialProviderSpec) vendors.SecretRef { return vendors.SecretRef{} },
		URL:       func(s *v1alpha1.CredentialProviderSpec) (string, error) { return vendors.BaseURL("x", s.Tines.URL) },
		SaaSHosts: []string{"*.x.example", "api.x.example:8443"},
		New:       func(vendors.Config) (vendors.Client, error) { return nil, nil },
	}
	spec := func(u string) *v1alpha1.CredentialProviderSpec {
		return &v1alpha1.CredentialProviderSpec{Tines: &v1alpha1.TinesProvider{URL: u}}
	}
	r := vendors.NewRegistry(v)
	r.Destinations = &vendors.Destinations{Resolver: failingResolver{t}}
	if got := r.DefaultNamespacedHosts().String(); got != "*.x.example,api.x.example:8443" {
		t.Errorf("DefaultNamespacedHosts = %q", got)
	}
	for u, allowed := range map[string]bool{
		"https://acme.x.example":         true,
		"https://ACME.X.EXAMPLE.:443":    true,
		"https://x.example":              false,
		"https://127.0.0.1":              false,
		"https://acme.x.example.evil.io": false,
	} {
		err := r.CheckHost(&v, spec(u))
		var dest *vendors.DestinationError
		switch {
		case allowed && err != nil:
			t.Errorf("CheckHost(%s) = %v, want allowed", u, err)
		case !allowed && (!errors.Is(err, vendors.ErrDestinationNotAllowed) || !errors.As(err, &dest)):
			t.Errorf("CheckHost(%s) = %v, want a DestinationError", u, err)
		}
	}
	if err := r.CheckHost(&v, spec("http://acme.x.example")); !errors.Is(err, vendors.ErrInvalidSpec) {
		t.Errorf("CheckHost(http://) = %v, want InvalidSpec", err)
	}
	// Configured patterns replace the default.
	r.Destinations.NamespacedHosts = mustHosts(t, "127.0.0.1")
	if err := r.CheckHost(&v, spec("https://127.0.0.1:9443")); err != nil {
		t.Errorf("CheckHost(127.0.0.1) with it listed = %v", err)
	}
	if err := r.CheckHost(&v, spec("https://acme.x.example")); !errors.Is(err, vendors.ErrDestinationNotAllowed) {
		t.Errorf("CheckHost(SaaS host) outside the configured patterns = %v, want refused", err)
	}
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
	c, err := vendors.NewCaller("test", vendortest.Loopback(), false, vendortest.CABundle(srv), time.Second, nil)
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
