package elasticcloud_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/elasticcloud"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	apiKey    = "essu_ec-canary-api-key-7d41"
	badKey    = "bad-key-canary-9"
	keyCanary = "key-field-canary-5b2e" // the vendor's key field: a secret
	userID    = "u-1"
)

func providerSpec(srv *elastictest.Server) *v1alpha1.CredentialProviderSpec {
	return &v1alpha1.CredentialProviderSpec{
		ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: srv.URL + "/", APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "s"}},
		CABundle:     srv.CABundle(),
	}
}

func clientFor(t *testing.T, spec *v1alpha1.CredentialProviderSpec, key string, timeout time.Duration) (vendors.Client, error) {
	t.Helper()
	c, err := vendortest.NewClient(elasticcloud.Vendor(), spec, map[string]string{"apiKey": key}, timeout)
	if err == nil {
		t.Cleanup(c.Close)
	}
	return c, err
}

// status is the RemoteCredential status c gives.
func status(c *vendors.Credential) v1alpha1.RemoteCredentialStatus {
	var st v1alpha1.RemoteCredentialStatus
	c.ApplyTo(&st)
	return st
}

func newClient(t *testing.T, srv *elastictest.Server, key string, timeout time.Duration) vendors.Client {
	t.Helper()
	c, err := clientFor(t, providerSpec(srv), key, timeout)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newServer starts a fake that accepts apiKey for userID and holds k1 of
// userID and k2 of u-2, both answered with a key field.
func newServer(t *testing.T) *elastictest.Server {
	t.Helper()
	srv := elastictest.NewServer()
	t.Cleanup(srv.Close)
	srv.AddAPIKey(apiKey, userID)
	for _, k := range []elastictest.APIKey{
		elastictest.Sample("k1", userID, "ci key"),
		elastictest.Sample("k2", "u-2", "deploy bot"),
	} {
		k.Key = ptr(keyCanary)
		srv.Put(k)
	}
	return srv
}

// assertNoSecret fails when v, as JSON or text, holds a secret.
func assertNoSecret(t *testing.T, v any) {
	t.Helper()
	var b []byte
	if e, ok := v.(error); ok {
		b = []byte(e.Error())
	} else if j, err := json.Marshal(v); err == nil {
		b = j
	} else {
		t.Fatal(err)
	}
	for _, secret := range []string{apiKey, badKey, keyCanary} {
		if strings.Contains(string(b), secret) {
			t.Errorf("%s holds secret %q", b, secret)
		}
	}
}

func TestVendorRegistration(t *testing.T) {
	v := elasticcloud.Vendor()
	spec := &v1alpha1.CredentialProviderSpec{ElasticCloud: &v1alpha1.ElasticCloudProvider{
		APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "ec-api"},
	}}
	if v.Name != v1alpha1.VendorElasticCloud || !v.Selected(spec) {
		t.Errorf("registration = %+v", v)
	}
	// A userId names the key's owner (ECE's user-scoped endpoint).
	if err := v.CheckRef(vendors.Ref{ID: "k1", UserID: userID}); err != nil {
		t.Errorf("CheckRef(id, userId) = %v, want the userId accepted", err)
	}
	if err := v.CheckRef(vendors.Ref{ID: "k1"}); err != nil {
		t.Errorf("CheckRef(id) = %v", err)
	}
	if v.Selected(&v1alpha1.CredentialProviderSpec{Tines: &v1alpha1.TinesProvider{}}) {
		t.Error("selected for a tines spec")
	}
	if ref := v.SecretRef(spec); ref.Name != "ec-api" || len(ref.Keys) != 1 || ref.Keys[0] != "apiKey" {
		t.Errorf("default secret ref = %+v", ref)
	}
	spec.ElasticCloud.APIKeySecretRef.Key = "token"
	if ref := v.SecretRef(spec); ref.Keys[0] != "token" {
		t.Errorf("secret ref = %+v, want key token", ref)
	}
}

func TestNewRejectsBadURL(t *testing.T) {
	for _, u := range []string{"http://api.elastic-cloud.com", "ftp://h", "https://", "https://h/api?x=1", "https://h/#f", "::"} {
		spec := &v1alpha1.CredentialProviderSpec{ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: u}}
		if _, err := clientFor(t, spec, apiKey, time.Second); !errors.Is(err, vendors.ErrInvalidSpec) {
			t.Errorf("url %q: err = %v, want InvalidSpec", u, err)
		}
	}
}

func TestGetMapsDocumentedFields(t *testing.T) {
	srv := newServer(t)
	exp := time.Date(2027, 4, 1, 0, 0, 0, 0, time.UTC)
	k := elastictest.Sample("k1", userID, "ci key")
	k.ExpirationDate, k.Key = &exp, ptr(keyCanary)
	srv.Put(k)

	got, err := newClient(t, srv, apiKey, time.Second).Get(context.Background(), vendors.Ref{ID: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "ci key" || got.Description != "ci key" {
		t.Errorf("name/description = %q/%q, want the description in both", got.Name, got.Description)
	}
	if got.CreatedAt == nil || !got.CreatedAt.Equal(k.CreationDate) {
		t.Errorf("createdAt = %v, want %v", got.CreatedAt, k.CreationDate)
	}
	if got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp) {
		t.Errorf("expiresAt = %v, want %v", got.ExpiresAt, exp)
	}
	st := status(got)
	if got.UpdatedAt != nil || st.TokenDuration != "" || st.Tines != nil || st.PlainID != nil {
		t.Errorf("fields Elastic does not have are set: %+v", st)
	}
	if ec := st.ElasticCloud; ec == nil || ec.UserID != userID || ec.OrganizationID != "1436802349" {
		t.Errorf("elasticCloud status = %+v", ec)
	}
	assertNoSecret(t, got)
	if n := srv.PathCalls("/api/v1/users/auth/keys/k1"); n != 1 || srv.TotalCalls() != 1 {
		t.Errorf("own-key calls = %d, total %d, want 1, 1", n, srv.TotalCalls())
	}
}

func TestGetNoExpiryNoOrganization(t *testing.T) {
	srv := newServer(t)
	k := elastictest.Sample("k3", userID, "")
	k.OrganizationID = ""
	srv.Put(k)
	got, err := newClient(t, srv, apiKey, time.Second).Get(context.Background(), vendors.Ref{ID: "k3"})
	if err != nil {
		t.Fatal(err)
	}
	ec := status(got).ElasticCloud
	if ec == nil {
		t.Fatal("no elasticCloud status")
	}
	if got.ExpiresAt != nil || got.Name != "" || ec.OrganizationID != "" {
		t.Errorf("expiresAt=%v name=%q organizationId=%q, want all empty", got.ExpiresAt, got.Name, ec.OrganizationID)
	}
}

func TestGetUserScoped(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, apiKey, time.Second)

	got, err := c.Get(context.Background(), vendors.Ref{ID: "k2", UserID: "u-2"})
	if err != nil {
		t.Fatal(err)
	}
	if ec := status(got).ElasticCloud; got.Description != "deploy bot" || ec == nil || ec.UserID != "u-2" {
		t.Errorf("credential = %+v, status %+v", got, ec)
	}
	assertNoSecret(t, got)
	if srv.PathCalls("/api/v1/users/u-2/auth/keys/k2") != 1 || srv.PathCalls("/api/v1/users/auth/keys/k2") != 0 {
		t.Error("the user-scoped endpoint was not the one used")
	}
	// k2 is not the caller's own key: the own-key endpoint does not see it.
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "k2"}); !errors.Is(err, vendors.ErrNotFound) {
		t.Errorf("own-key endpoint for another user's key: err = %v, want NotFound", err)
	}
}

func TestGetEscapesPathSegments(t *testing.T) {
	srv := newServer(t)
	srv.Put(elastictest.Sample("a/b c", "u/1", "odd"))
	_, err := newClient(t, srv, apiKey, time.Second).Get(context.Background(), vendors.Ref{ID: "a/b c", UserID: "u/1"})
	if err != nil {
		t.Fatal(err)
	}
	if srv.PathCalls("/api/v1/users/u%2F1/auth/keys/a%2Fb%20c") != 1 {
		t.Error("path segments were not escaped")
	}
}

func TestGetRefusesDotSegments(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, apiKey, time.Second)
	for _, ref := range []vendors.Ref{{ID: ".."}, {ID: "."}, {ID: ""}, {ID: "k1", UserID: ".."}} {
		if _, err := c.Get(context.Background(), ref); !errors.Is(err, vendors.ErrInvalidSpec) {
			t.Errorf("ref %+v: err = %v, want InvalidSpec", ref, err)
		}
	}
	if srv.TotalCalls() != 0 {
		t.Errorf("%d requests made for unusable refs", srv.TotalCalls())
	}
}

func TestGetErrors(t *testing.T) {
	srv := newServer(t)
	other := vendortest.NewTLSServer(nil)
	defer other.Close()
	echo := `{"errors":[{"code":"root.invalid_data","message":"key ` + apiKey + ` broke"}]}`
	serverEcho := `{"errors":[{"code":"root.unexpected_error","message":"db_password=hunter2 key ` + apiKey + `"}]}`

	cases := []struct {
		name       string
		ref        vendors.Ref
		key        string
		fault      *vendortest.Fault
		class      error
		code       string
		inMessage  string
		notIn      string
		retryAfter time.Duration
	}{
		{name: "missing key", ref: vendors.Ref{ID: "nope"}, class: vendors.ErrNotFound, code: "api_keys.key_not_found", inMessage: "api_keys.key_not_found: The API key [nope] can't be found"},
		{name: "unknown user", ref: vendors.Ref{ID: "k1", UserID: "nobody"}, class: vendors.ErrNotFound, code: "api_keys.user_not_found", inMessage: "The user [nobody] can't be found"},
		{name: "key of another user", ref: vendors.Ref{ID: "k1", UserID: "u-2"}, class: vendors.ErrNotFound, code: "api_keys.key_not_found", inMessage: "api_keys.key_not_found"},
		{name: "not found fault", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.NotFound, class: vendors.ErrNotFound, code: "api_keys.key_not_found", inMessage: "HTTP 404 Not Found: api_keys.key_not_found"},
		{name: "bad key", ref: vendors.Ref{ID: "k1"}, key: badKey, class: vendors.ErrUnauthorized, code: "root.unauthenticated", inMessage: "HTTP 401 Unauthorized: root.unauthenticated"},
		{name: "bad key user path", ref: vendors.Ref{ID: "k1", UserID: userID}, key: badKey, class: vendors.ErrUnauthorized, code: "root.unauthenticated", inMessage: "authentication is invalid"},
		{name: "forbidden", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.Forbidden, class: vendors.ErrForbidden, code: "root.unauthorized.rbac", inMessage: "does not have access"},
		{name: "rate limited seconds", ref: vendors.Ref{ID: "k1"}, fault: ptr(vendortest.RateLimited("7")), class: vendors.ErrRateLimited, code: "root.too_many_requests", retryAfter: 7 * time.Second},
		{name: "rate limited date", ref: vendors.Ref{ID: "k1"}, fault: ptr(vendortest.RateLimited(time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat))), class: vendors.ErrRateLimited, code: "root.too_many_requests", retryAfter: 88 * time.Second},
		{name: "rate limited bare", ref: vendors.Ref{ID: "k1"}, fault: ptr(vendortest.RateLimited("")), class: vendors.ErrRateLimited, code: "root.too_many_requests"},
		// A 5xx is its status alone, even in Elastic's documented shape.
		{name: "server error", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.ServerError, class: vendors.ErrUnavailable, inMessage: "HTTP 500 Internal Server Error", notIn: "unexpected"},
		{name: "server error echoes", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.Fault{Status: 500, ContentType: "application/json", Body: serverEcho}, class: vendors.ErrUnavailable, inMessage: "HTTP 500 Internal Server Error", notIn: "db_password"},
		{name: "error echoes secrets", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.Fault{Status: 400, ContentType: "application/json", Body: echo}, class: vendors.ErrInvalidResponse, code: "root.invalid_data", inMessage: "key [redacted] broke"},
		{name: "several errors", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.Fault{Status: 400, ContentType: "application/json", Body: `{"errors":[{"code":"a.one","message":"first","fields":["x"]},{"code":"b.two","message":"second"}]}`}, class: vendors.ErrInvalidResponse, code: "a.one, b.two", inMessage: "first; second"},
		// The header's code is kept for a 4xx; the body of another shape is not.
		{name: "code from header only", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.Fault{Status: 409, ContentType: "text/plain", Body: "upstream connect error", Header: http.Header{"X-Cloud-Error-Codes": {"root.conflict"}}}, class: vendors.ErrInvalidResponse, code: "root.conflict", inMessage: "HTTP 409 Conflict: root.conflict", notIn: "upstream connect error"},
		{name: "5xx header and body", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.Fault{Status: 503, ContentType: "text/plain", Body: "upstream connect error", Header: http.Header{"X-Cloud-Error-Codes": {"root.unavailable"}}}, class: vendors.ErrUnavailable, inMessage: "HTTP 503 Service Unavailable", notIn: "upstream connect error"},
		{name: "html 502", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.BadGatewayHTML, class: vendors.ErrUnavailable, inMessage: "HTTP 502 Bad Gateway", notIn: "nginx"},
		{name: "broken json", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.BrokenJSON, class: vendors.ErrInvalidResponse, inMessage: "not the documented JSON"},
		{name: "empty body", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.EmptyBody, class: vendors.ErrInvalidResponse, inMessage: "empty answer"},
		{name: "huge body", ref: vendors.Ref{ID: "k1"}, fault: ptr(vendortest.HugeBody()), class: vendors.ErrInvalidResponse, inMessage: "larger than"},
		{name: "slow", ref: vendors.Ref{ID: "k1"}, fault: ptr(vendortest.Latency(3 * time.Second)), class: vendors.ErrUnavailable, inMessage: "no answer within"},
		{name: "reset", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.Reset, class: vendors.ErrUnavailable},
		{name: "redirect elsewhere", ref: vendors.Ref{ID: "k1"}, fault: &vendortest.Fault{RedirectTo: other.URL + "/steal"}, class: vendors.ErrInvalidResponse, inMessage: "redirect to another host refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.fault != nil {
				srv.FailNext(tc.ref.ID, *tc.fault)
			}
			key := apiKey
			if tc.key != "" {
				key = tc.key
			}
			_, err := newClient(t, srv, key, time.Second).Get(context.Background(), tc.ref)
			vendortest.WantError{Class: tc.class, InMessage: tc.inMessage, NotInMessage: tc.notIn, RetryAfter: tc.retryAfter}.Check(t, err)
			var verr *vendors.Error
			if !errors.As(err, &verr) || verr.Code != tc.code {
				t.Errorf("code = %q, want %q (err %v)", verr.Code, tc.code, err)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestInvalidAnswers(t *testing.T) {
	srv := newServer(t)
	k := `"key":"` + keyCanary + `"`
	cases := map[string]string{
		"another key":         `{"id":"k9","description":"x","creation_date":"2025-01-01T00:00:00Z",` + k + `}`,
		"no id":               `{"description":"x","creation_date":"2025-01-01T00:00:00Z",` + k + `}`,
		"no creation_date":    `{"id":"k1","description":"x",` + k + `}`,
		"bad creation_date":   `{"id":"k1","description":"x","creation_date":"yesterday",` + k + `}`,
		"bad expiration_date": `{"id":"k1","description":"x","creation_date":"2025-01-01T00:00:00Z","expiration_date":"` + keyCanary + `",` + k + `}`,
		"id is a number":      `{"id":1,"description":"x","creation_date":"2025-01-01T00:00:00Z",` + k + `}`,
		"error body on 200":   `{"errors":[{"code":"api_keys.key_not_found","message":"gone"}]}`,
		"array":               `[{"id":"k1",` + k + `}]`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			srv.FailNext("k1", vendortest.Fault{Status: 200, ContentType: "application/json", Body: body})
			_, err := newClient(t, srv, apiKey, time.Second).Get(context.Background(), vendors.Ref{ID: "k1"})
			if !errors.Is(err, vendors.ErrInvalidResponse) {
				t.Fatalf("err = %v, want InvalidResponse", err)
			}
			assertNoSecret(t, err)
		})
	}
}

func TestPrivateCAOnlyWithCABundle(t *testing.T) {
	srv := newServer(t)
	spec := providerSpec(srv)
	spec.CABundle = nil
	c, err := clientFor(t, spec, apiKey, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Get(context.Background(), vendors.Ref{ID: "k1"})
	if reason, _ := vendors.Reason(err); !errors.Is(err, vendors.ErrUnavailable) || reason != v1alpha1.ReasonVendorUnavailable {
		t.Fatalf("without caBundle: err = %v (reason %s), want VendorUnavailable", err, reason)
	}
	assertNoSecret(t, err)
	if _, err := newClient(t, srv, apiKey, time.Second).Get(context.Background(), vendors.Ref{ID: "k1"}); err != nil {
		t.Fatalf("with caBundle: %v", err)
	}
}

func TestRevokedAPIKey(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, apiKey, time.Second)
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "k1"}); err != nil {
		t.Fatal(err)
	}
	srv.RemoveAPIKey(apiKey)
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "k1"}); !errors.Is(err, vendors.ErrUnauthorized) {
		t.Fatalf("after revocation: err = %v, want Unauthorized", err)
	}
}

func TestRecoversAfterFaults(t *testing.T) {
	srv := newServer(t)
	srv.FailNext("k1", vendortest.ServerError)
	c := newClient(t, srv, apiKey, time.Second)
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "k1"}); !errors.Is(err, vendors.ErrUnavailable) {
		t.Fatalf("first call: %v", err)
	}
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "k1"}); err != nil {
		t.Fatalf("second call: %v", err)
	}
}

func TestFakeSendsRateLimitHeaders(t *testing.T) {
	srv := newServer(t)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(srv.CABundle())
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, path := range []string{"/api/v1/users/auth/keys/k1", "/api/v1/users/auth/keys/nope"} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "ApiKey "+apiKey)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		for _, h := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Interval"} {
			if resp.Header.Get(h) == "" {
				t.Errorf("%s: no %s header", path, h)
			}
		}
		if resp.StatusCode == http.StatusNotFound && resp.Header.Get("X-Cloud-Error-Codes") != "api_keys.key_not_found" {
			t.Errorf("%s: x-cloud-error-codes = %q", path, resp.Header.Get("X-Cloud-Error-Codes"))
		}
	}
}

// Verify lists the caller's own keys: nil when the key is accepted,
// Unauthorized when it is refused.
func TestVerify(t *testing.T) {
	var requests atomic.Int32
	srv := vendortest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if r.Method != http.MethodGet || r.URL.EscapedPath() != "/ece/api/v1/users/auth/keys" || r.URL.RawQuery != "" {
			t.Errorf("unexpected %s %s", r.Method, r.URL)
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "ApiKey "+apiKey {
			w.Header().Set("X-Cloud-Error-Codes", "root.unauthenticated")
			vendortest.JSON(w, http.StatusUnauthorized, []byte(`{"errors":[{"code":"root.unauthenticated","message":"The supplied authentication is invalid"}]}`))
			return
		}
		vendortest.JSON(w, http.StatusOK, []byte(`{"keys":[]}`))
	}))
	defer srv.Close()
	verify := func(key string) error {
		spec := &v1alpha1.CredentialProviderSpec{
			ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: srv.URL + "/ece/", APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "s"}},
			CABundle:     vendortest.CABundle(srv),
		}
		c, err := clientFor(t, spec, key, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return c.Verify(context.Background())
	}

	if err := verify(apiKey); err != nil {
		t.Fatalf("good key: %v", err)
	}
	err := verify(badKey)
	var verr *vendors.Error
	if !errors.Is(err, vendors.ErrUnauthorized) || !errors.As(err, &verr) || verr.Code != "root.unauthenticated" {
		t.Fatalf("bad key: err = %v, want Unauthorized with code root.unauthenticated", err)
	}
	assertNoSecret(t, err)
	if n := requests.Load(); n != 2 {
		t.Errorf("%d requests, want one per Verify", n)
	}
}

// A closed client refuses to read without calling the vendor.
func TestClose(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, apiKey, time.Second)
	if _, err := c.Get(context.Background(), vendors.Ref{ID: "k1"}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	cred, err := c.Get(context.Background(), vendors.Ref{ID: "k1"})
	if cred != nil || !errors.Is(err, vendors.ErrUnavailable) || !strings.Contains(err.Error(), "client closed") {
		t.Fatalf("after Close: %+v, %v; want VendorUnavailable: client closed", cred, err)
	}
	if srv.TotalCalls() != 1 {
		t.Errorf("calls = %d, want 1 (none after Close)", srv.TotalCalls())
	}
}

func ptr[T any](v T) *T { return &v }
