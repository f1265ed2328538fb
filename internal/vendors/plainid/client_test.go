package plainid_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/plainid"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	adminID      = "PADMINCLIENT00000001"
	adminSecret  = "plainid-canary-secret-8c1e"
	badSecret    = "bad-secret-canary-9d2f"
	secretCanary = "vendor-secret-canary-51d0"
	clientID     = "PVNTYSTFE2L9R4OJ9YY5"
)

func newServer(t *testing.T) *plainidtest.Server {
	t.Helper()
	srv := plainidtest.NewServer(adminID, adminSecret)
	t.Cleanup(srv.Close)
	srv.Put(plainidtest.Sample(clientID, "ci"))
	return srv
}

func newClient(t *testing.T, srv *plainidtest.Server, secret string, timeout time.Duration) vendors.Client {
	t.Helper()
	spec := &v1alpha1.CredentialProviderSpec{
		PlainID:  &v1alpha1.PlainIDProvider{URL: srv.URL + "/", ClientSecretRef: v1alpha1.SecretReference{Name: "s"}},
		CABundle: srv.CABundle(),
	}
	c, err := vendortest.NewClient(plainid.Vendor(), spec, map[string]string{plainid.ClientIDKey: adminID, plainid.ClientSecretKey: secret}, timeout)
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

func get(c vendors.Client, id string) (*vendors.Credential, error) {
	return c.Get(context.Background(), vendors.Ref{ID: id})
}

// assertNoSecrets fails when text holds the client secret, the vendor's
// secret field, or any token the server issued.
func assertNoSecrets(t *testing.T, srv *plainidtest.Server, what, text string) {
	t.Helper()
	for _, s := range append([]string{adminSecret, badSecret, secretCanary}, srv.IssuedTokens()...) {
		if strings.Contains(text, s) {
			t.Errorf("%s %q holds a secret", what, text)
		}
	}
}

func credentialJSON(t *testing.T, c *vendors.Credential) string {
	t.Helper()
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestGetMapsDocumentedFields(t *testing.T) {
	srv := newServer(t)
	c := plainidtest.Sample(clientID, "ci")
	c.Description, c.TokenDuration, c.Permission = "CI client", "PT60M", "VIEWER"
	c.Secret = ptr(secretCanary)
	srv.Put(c)

	got, err := get(newClient(t, srv, adminSecret, time.Second), clientID)
	if err != nil {
		t.Fatal(err)
	}
	st := status(got)
	if got.Name != "ci" || got.Description != "CI client" || st.TokenDuration != "PT60M" {
		t.Errorf("name/description/tokenDuration = %q/%q/%q", got.Name, got.Description, st.TokenDuration)
	}
	want := v1alpha1.PlainIDCredentialStatus{OwnerID: c.OwnerID, OwnerType: "ENVIRONMENT", Permission: "VIEWER"}
	if st.PlainID == nil || *st.PlainID != want {
		t.Errorf("plainid status = %+v, want %+v", st.PlainID, want)
	}
	if got.CreatedAt != nil || got.UpdatedAt != nil || got.ExpiresAt != nil || st.Tines != nil || st.ElasticCloud != nil {
		t.Errorf("unexpected fields set: %+v, status %+v", got, st)
	}
	assertNoSecrets(t, srv, "credential", credentialJSON(t, got))
	if srv.Calls(clientID) != 1 || srv.TokenRequests() != 1 {
		t.Errorf("calls = %d, token requests = %d, want 1 and 1", srv.Calls(clientID), srv.TokenRequests())
	}
}

func TestTenantClientHasNoOwner(t *testing.T) {
	for _, owner := range []string{"", "-"} { // rendered as null and "-"
		t.Run("ownerId="+owner, func(t *testing.T) {
			srv := newServer(t)
			c := plainidtest.Sample("PTENANTCLIENT0000001", "tenant")
			c.OwnerID, c.OwnerType = owner, "TENANT"
			srv.Put(c)
			got, err := get(newClient(t, srv, adminSecret, time.Second), c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if p := status(got).PlainID; p == nil || p.OwnerID != "" || p.OwnerType != "TENANT" {
				t.Errorf("plainid status = %+v, want no owner, TENANT", p)
			}
		})
	}
}

type errorCase struct {
	name         string
	id           string
	key          string // Scenarios key of the faults; id when empty
	faults       []vendortest.Fault
	secret       string
	class        error
	reason       string
	inMessage    string
	notInMessage string
	retryAfter   time.Duration
}

func TestGetErrors(t *testing.T) {
	srv := newServer(t)
	for _, tc := range append(getErrorCases(t), tokenErrorCases()...) {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.key
			if key == "" {
				key = tc.id
			}
			srv.FailNext(key, tc.faults...)
			defer srv.Clear(key)
			secret := adminSecret
			if tc.secret != "" {
				secret = tc.secret
			}
			_, err := get(newClient(t, srv, secret, time.Second), tc.id)
			checkError(t, srv, tc, err)
		})
	}
}

func checkError(t *testing.T, srv *plainidtest.Server, tc errorCase, err error) {
	t.Helper()
	vendortest.WantError{Class: tc.class, Reason: tc.reason, InMessage: tc.inMessage, NotInMessage: tc.notInMessage, RetryAfter: tc.retryAfter}.Check(t, err)
	assertNoSecrets(t, srv, "error", err.Error())
}

func getErrorCases(t *testing.T) []errorCase {
	other := vendortest.NewTLSServer(nil)
	t.Cleanup(other.Close)
	// HTTP dates drop the fraction of a second: expect 88-90s.
	httpDate := time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat)
	forbiddenTenant := vendortest.Fault{Status: 403, ContentType: "application/json",
		Body: `{"id":"EW41XA","status":403,"name":"forbiddenTenant","message":"Access to the tenant is forbidden"}`}
	return []errorCase{
		{name: "missing", id: "PMISSING", class: vendors.ErrNotFound, reason: "NotFound", inMessage: "clientNotFoundError: Client PMISSING not found"},
		{name: "deleted", id: "PDELETED", faults: []vendortest.Fault{vendortest.NotFound}, class: vendors.ErrNotFound, reason: "NotFound", inMessage: "Client PDELETED not found"},
		{name: "forbidden environment", id: clientID, faults: []vendortest.Fault{vendortest.Forbidden}, class: vendors.ErrForbidden, reason: "Forbidden", inMessage: "HTTP 403 Forbidden: forbiddenEnvironment"},
		{name: "forbidden tenant", id: clientID, faults: []vendortest.Fault{forbiddenTenant}, class: vendors.ErrForbidden, reason: "Forbidden", inMessage: "forbiddenTenant"},
		{name: "unauthorized twice", id: clientID, faults: []vendortest.Fault{vendortest.Unauthorized, vendortest.Unauthorized}, class: vendors.ErrUnauthorized, reason: "Unauthorized", inMessage: "HTTP 401 Unauthorized: unauthorizedError"},
		{name: "rate limited seconds", id: clientID, faults: []vendortest.Fault{vendortest.RateLimited("7")}, class: vendors.ErrRateLimited, reason: "RateLimited", inMessage: "tooManyRequests", retryAfter: 7 * time.Second},
		{name: "rate limited date", id: clientID, faults: []vendortest.Fault{vendortest.RateLimited(httpDate)}, class: vendors.ErrRateLimited, reason: "RateLimited", retryAfter: 88 * time.Second},
		{name: "rate limited bare", id: clientID, faults: []vendortest.Fault{vendortest.RateLimited("")}, class: vendors.ErrRateLimited, reason: "RateLimited"},
		// A 5xx is its status alone, even in PlainID's documented shape.
		{name: "server error", id: clientID, faults: []vendortest.Fault{vendortest.ServerError}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "HTTP 500 Internal Server Error", notInMessage: "internalServerError"},
		{name: "html 502", id: clientID, faults: []vendortest.Fault{vendortest.BadGatewayHTML}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "HTTP 502 Bad Gateway", notInMessage: "nginx"},
		// A 4xx body of another shape is not PlainID's words: the status alone.
		{name: "plain 400", id: clientID, faults: []vendortest.Fault{{Status: 400, ContentType: "text/plain", Body: "db_password=hunter2"}}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "HTTP 400 Bad Request", notInMessage: "db_password"},
		{name: "broken json", id: clientID, faults: []vendortest.Fault{vendortest.BrokenJSON}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "not the documented JSON"},
		{name: "empty body", id: clientID, faults: []vendortest.Fault{vendortest.EmptyBody}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "empty answer"},
		{name: "huge body", id: clientID, faults: []vendortest.Fault{vendortest.HugeBody()}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "larger than"},
		{name: "slow", id: clientID, faults: []vendortest.Fault{vendortest.Latency(3 * time.Second)}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "no answer within"},
		// The GET reuses the token request's connection; net/http retries an
		// idempotent request once when a reused connection drops, so reset twice.
		{name: "reset", id: clientID, faults: []vendortest.Fault{vendortest.Reset, vendortest.Reset}, class: vendors.ErrUnavailable, reason: "VendorUnavailable"},
		{name: "redirect elsewhere", id: clientID, faults: []vendortest.Fault{{RedirectTo: other.URL + "/steal"}}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "redirect to another host refused"},
		{name: "answer for another client", id: clientID, faults: []vendortest.Fault{okJSON(`{"id":"POTHER","name":"x"}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: `answer is for client "POTHER"`},
		{name: "answer without id", id: clientID, faults: []vendortest.Fault{okJSON(`{"name":"x"}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "answer has no id"},
		{name: "malformed tokenDuration", id: clientID, faults: []vendortest.Fault{okJSON(`{"id":"` + clientID + `","tokenDuration":"60 minutes","secret":"` + secretCanary + `"}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: `tokenDuration "60 minutes": not an ISO-8601 duration`},
		{name: "id not for a URL", id: "..", class: vendors.ErrInvalidSpec, reason: "InvalidSpec"},
	}
}

func tokenErrorCases() []errorCase {
	tok := plainidtest.TokenEndpoint
	return []errorCase{
		{name: "token bad client secret", id: clientID, secret: badSecret, class: vendors.ErrUnauthorized, reason: "Unauthorized", inMessage: "plainid token request failed: HTTP 401 Unauthorized: invalidClientCredentials"},
		{name: "token oauth invalid_client", id: clientID, key: tok, faults: []vendortest.Fault{{Status: 400, ContentType: "application/json", Body: `{"error":"invalid_client","error_description":"Client authentication failed"}`}}, class: vendors.ErrUnauthorized, reason: "Unauthorized", inMessage: "token request failed: HTTP 400 Bad Request: invalid_client: Client authentication failed"},
		{name: "token other 400", id: clientID, key: tok, faults: []vendortest.Fault{{Status: 400}}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "token request failed: HTTP 400 Bad Request: invalidRequest"},
		{name: "token forbidden", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.Forbidden}, class: vendors.ErrForbidden, reason: "Forbidden", inMessage: "token request failed"},
		{name: "token rate limited", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.RateLimited("7")}, class: vendors.ErrRateLimited, reason: "RateLimited", inMessage: "token request failed", retryAfter: 7 * time.Second},
		{name: "token server error", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.ServerError}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "token request failed: HTTP 500", notInMessage: "internalServerError"},
		{name: "token server error oauth", id: clientID, key: tok, faults: []vendortest.Fault{{Status: 503, ContentType: "application/json", Body: `{"error":"server_error","error_description":"db_password=hunter2"}`}}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "token request failed: HTTP 503 Service Unavailable", notInMessage: "db_password"},
		{name: "token html 502", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.BadGatewayHTML}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "token request failed: HTTP 502 Bad Gateway", notInMessage: "nginx"},
		{name: "token broken json", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.BrokenJSON}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "token answer is not the documented JSON"},
		{name: "token empty body", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.EmptyBody}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "token answer is not the documented JSON"},
		{name: "token huge body", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.HugeBody()}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "token answer is not the documented JSON"},
		{name: "token without access_token", id: clientID, key: tok, faults: []vendortest.Fault{okJSON(`{"token_type":"Bearer","expires_in":86400}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "no usable access_token"},
		{name: "token too short", id: clientID, key: tok, faults: []vendortest.Fault{okJSON(`{"access_token":"abc","expires_in":86400}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "no usable access_token"},
		{name: "token numeric access_token", id: clientID, key: tok, faults: []vendortest.Fault{okJSON(`{"access_token":73219046518833,"expires_in":86400}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "token answer", notInMessage: "73219046518833"},
		{name: "token bad expires_in", id: clientID, key: tok, faults: []vendortest.Fault{okJSON(`{"access_token":"tok-canary-0123456789","expires_in":"soon"}`)}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "token answer", notInMessage: "tok-canary"},
		{name: "token slow", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.Latency(3 * time.Second)}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "token request failed: vendor unavailable: timeout: no answer within"},
		{name: "token reset", id: clientID, key: tok, faults: []vendortest.Fault{vendortest.Reset}, class: vendors.ErrUnavailable, reason: "VendorUnavailable", inMessage: "token request failed"},
		{name: "token redirect elsewhere", id: clientID, key: tok, faults: []vendortest.Fault{{RedirectTo: "https://example.com/steal"}}, class: vendors.ErrInvalidResponse, reason: "InvalidResponse", inMessage: "redirect to another host refused"},
	}
}

func okJSON(body string) vendortest.Fault {
	return vendortest.Fault{Status: 200, ContentType: "application/json", Body: body}
}

func TestTokenReusedAcrossGets(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	for i := range 20 {
		if _, err := get(c, clientID); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	if srv.TokenRequests() != 1 || srv.Calls(clientID) != 20 {
		t.Errorf("token requests = %d, gets = %d, want 1 and 20", srv.TokenRequests(), srv.Calls(clientID))
	}
}

// getConcurrently runs n Gets at once and returns their errors.
func getConcurrently(c vendors.Client, n int) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = get(c, clientID) })
	}
	wg.Wait()
	return errs
}

func TestConcurrentGetsShareOneToken(t *testing.T) {
	srv := newServer(t)
	srv.FailNext(plainidtest.TokenEndpoint, vendortest.Latency(200*time.Millisecond)) // all Gets wait for it
	c := newClient(t, srv, adminSecret, 2*time.Second)
	for i, err := range getConcurrently(c, 20) {
		if err != nil {
			t.Errorf("get %d: %v", i, err)
		}
	}
	if srv.TokenRequests() != 1 || srv.TokensIssued() != 1 {
		t.Errorf("token requests = %d, issued = %d, want 1", srv.TokenRequests(), srv.TokensIssued())
	}
}

func TestExpiredTokenIsReplacedOnce(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	if _, err := get(c, clientID); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	if _, err := get(c, clientID); err != nil {
		t.Fatalf("get after expiry: %v", err)
	}
	if srv.TokensIssued() != 2 || srv.Calls(clientID) != 3 {
		t.Errorf("tokens = %d, gets = %d, want 2 and 3 (one refused)", srv.TokensIssued(), srv.Calls(clientID))
	}
}

func TestConcurrentRejectionsFetchOneToken(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, adminSecret, 2*time.Second)
	if _, err := get(c, clientID); err != nil {
		t.Fatal(err)
	}
	srv.ExpireTokens()
	for i, err := range getConcurrently(c, 20) {
		if err != nil {
			t.Errorf("get %d: %v", i, err)
		}
	}
	if srv.TokensIssued() != 2 {
		t.Errorf("tokens issued = %d, want 2", srv.TokensIssued())
	}
}

func TestSecondRejectionIsUnauthorized(t *testing.T) {
	srv := newServer(t)
	srv.Set(clientID, vendortest.Unauthorized)
	_, err := get(newClient(t, srv, adminSecret, time.Second), clientID)
	if !errors.Is(err, vendors.ErrUnauthorized) {
		t.Fatalf("err = %v, want Unauthorized", err)
	}
	if srv.TokensIssued() != 2 || srv.Calls(clientID) != 2 {
		t.Errorf("tokens = %d, gets = %d, want 2 and 2", srv.TokensIssued(), srv.Calls(clientID))
	}
	assertNoSecrets(t, srv, "error", err.Error())
}

func TestOneRejectionRecovers(t *testing.T) {
	srv := newServer(t)
	srv.FailNext(clientID, vendortest.Unauthorized)
	if _, err := get(newClient(t, srv, adminSecret, time.Second), clientID); err != nil {
		t.Fatal(err)
	}
	if srv.TokensIssued() != 2 {
		t.Errorf("tokens issued = %d, want 2", srv.TokensIssued())
	}
}

func TestShortLivedTokenIsNotReused(t *testing.T) {
	srv := newServer(t)
	srv.SetTokenLifetime(0) // expires_in 0: within any margin
	c := newClient(t, srv, adminSecret, time.Second)
	for range 3 {
		// The fake refuses the token at once, so each Get fetches a second
		// one and gets 401 again: what matters is that none is reused.
		if _, err := get(c, clientID); !errors.Is(err, vendors.ErrUnauthorized) {
			t.Fatalf("err = %v, want Unauthorized", err)
		}
	}
	if srv.TokensIssued() != 6 {
		t.Errorf("tokens issued = %d, want 6 (a new one for every request)", srv.TokensIssued())
	}
}

func TestRotatedSecret(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	if _, err := get(c, clientID); err != nil {
		t.Fatal(err)
	}
	srv.SetClientSecret("rotated-secret-canary")
	if _, err := get(c, clientID); err != nil {
		t.Fatalf("issued token should outlive the rotation: %v", err)
	}
	srv.ExpireTokens()
	_, err := get(c, clientID)
	if !errors.Is(err, vendors.ErrUnauthorized) || !strings.Contains(err.Error(), "token request failed") {
		t.Fatalf("err = %v, want Unauthorized from the token request", err)
	}
	if _, err := get(newClient(t, srv, "rotated-secret-canary", time.Second), clientID); err != nil {
		t.Fatalf("client with the new secret: %v", err)
	}
}

func TestRecoversAfterTokenFault(t *testing.T) {
	srv := newServer(t)
	srv.FailNext(plainidtest.TokenEndpoint, vendortest.ServerError)
	c := newClient(t, srv, adminSecret, time.Second)
	if _, err := get(c, clientID); !errors.Is(err, vendors.ErrUnavailable) {
		t.Fatalf("first call: %v", err)
	}
	if _, err := get(c, clientID); err != nil {
		t.Fatalf("second call: %v", err)
	}
	if srv.TokenRequests() != 2 || srv.TokensIssued() != 1 {
		t.Errorf("token requests = %d, issued = %d, want 2 and 1", srv.TokenRequests(), srv.TokensIssued())
	}
}

func TestCancelledWhileWaitingForToken(t *testing.T) {
	srv := newServer(t)
	srv.FailNext(plainidtest.TokenEndpoint, vendortest.Latency(500*time.Millisecond))
	c := newClient(t, srv, adminSecret, 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, vendors.Ref{ID: clientID}); !errors.Is(err, vendors.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want VendorUnavailable wrapping the deadline", err)
	}
	// The token request went on without the caller that started it.
	if _, err := get(c, clientID); err != nil {
		t.Fatal(err)
	}
	if srv.TokenRequests() != 1 {
		t.Errorf("token requests = %d, want 1", srv.TokenRequests())
	}
}

// Verify asks for a new token every time: nil when the client's
// credentials are accepted, Unauthorized when they are refused. The token
// it gets serves the reads that follow.
func TestVerify(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	if err := c.Verify(context.Background()); err != nil {
		t.Fatalf("good credentials: %v", err)
	}
	if srv.TokenRequests() != 1 || srv.TokensIssued() != 1 || srv.Calls(clientID) != 0 {
		t.Errorf("token requests = %d, issued = %d, gets = %d, want 1, 1 and 0",
			srv.TokenRequests(), srv.TokensIssued(), srv.Calls(clientID))
	}
	// The token is still valid: a second Verify asks for a fresh one anyway.
	if err := c.Verify(context.Background()); err != nil {
		t.Fatalf("second verify: %v", err)
	}
	if srv.TokenRequests() != 2 || srv.TokensIssued() != 2 {
		t.Errorf("token requests = %d, issued = %d, want 2 and 2", srv.TokenRequests(), srv.TokensIssued())
	}
	if _, err := get(c, clientID); err != nil {
		t.Fatal(err)
	}
	if srv.TokenRequests() != 2 {
		t.Errorf("token requests = %d after a Get, want 2 (the verified token reused)", srv.TokenRequests())
	}

	err := newClient(t, srv, badSecret, time.Second).Verify(context.Background())
	if !errors.Is(err, vendors.ErrUnauthorized) || !strings.Contains(err.Error(), "token request failed") {
		t.Fatalf("wrong secret: err = %v, want Unauthorized from the token request", err)
	}
	assertNoSecrets(t, srv, "error", err.Error())
}

// A closed client calls the vendor no more: neither Verify nor Get.
func TestClose(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, adminSecret, time.Second)
	c.Close()
	if err := c.Verify(context.Background()); !errors.Is(err, vendors.ErrUnavailable) || !strings.Contains(err.Error(), "client closed") {
		t.Fatalf("Verify after Close: err = %v, want VendorUnavailable: client closed", err)
	}
	if cred, err := get(c, clientID); cred != nil || !errors.Is(err, vendors.ErrUnavailable) {
		t.Fatalf("Get after Close: %+v, %v; want VendorUnavailable", cred, err)
	}
	if srv.TotalCalls() != 0 {
		t.Errorf("%d requests reached the server after Close", srv.TotalCalls())
	}
}

func ptr[T any](v T) *T { return &v }

// An answer that echoes the access token in JSON escapes (which the raw
// body scrub cannot see) still yields a credential without it.
func TestEscapedTokenEchoIsRedacted(t *testing.T) {
	srv := newServer(t)
	c := newClient(t, srv, adminSecret, 2*time.Second)
	if _, err := get(c, clientID); err != nil {
		t.Fatal(err)
	}
	tok := srv.IssuedTokens()[0]
	var escaped strings.Builder
	for _, r := range tok {
		fmt.Fprintf(&escaped, `\u%04x`, r)
	}
	body := fmt.Sprintf(`{"id":%q,"ownerId":"b0e1f961-2061-4f83-8392-b5aa19fed0c1","ownerType":"ENVIRONMENT",`+
		`"name":"%s","description":"debug: token %s","secret":null,"tokenDuration":"PT60M","permission":"ADMIN"}`,
		clientID, escaped.String(), escaped.String())
	srv.FailNext(clientID, vendortest.Fault{Status: http.StatusOK, ContentType: "application/json", Body: body})
	cred, err := get(c, clientID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(cred.Name+cred.Description, tok) {
		t.Fatalf("the token reached the credential: %+v", cred)
	}
	if cred.Name != "[redacted]" {
		t.Errorf("name = %q", cred.Name)
	}
}
