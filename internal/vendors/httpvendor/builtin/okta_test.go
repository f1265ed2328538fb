package builtin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/oktatest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const oktaKey = "00credsync-test-key-0123456789abcdefghijklmn"

func oktaClient(t *testing.T, srv *oktatest.Server) vendors.Client {
	return httpClient(t, v1alpha1.DefinitionOkta, srv.URL, srv.CABundle(), map[string]string{"token": oktaKey}, nil)
}

// oktaID is an API token ID as Okta writes them: 00T and 17 more.
func oktaID(n int) string { return fmt.Sprintf("00T%017d", n) }

// The definition: no default URL (each org has its domain), Okta's hosts,
// its budget; a provider without spec.http.url is refused.
func TestOktaDefinition(t *testing.T) {
	v := vendorNamed(t, v1alpha1.DefinitionOkta)
	want := []string{"*.okta.com", "*.oktapreview.com", "*.okta-emea.com"}
	if fmt.Sprint(v.SaaSHosts) != fmt.Sprint(want) {
		t.Errorf("hosts %v, want %v", v.SaaSHosts, want)
	}
	if v.Limits != (vendors.Limits{RequestsPerMinute: 60, Burst: 10, MaxConcurrent: 2}) {
		t.Errorf("limits %+v", v.Limits)
	}
	spec := &v1alpha1.CredentialProviderSpec{HTTP: &v1alpha1.HTTPProvider{Definition: v1alpha1.DefinitionOkta,
		Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "s"}}}}
	if u, err := v.URL(spec); err == nil || !errors.Is(err, vendors.ErrInvalidSpec) || !strings.Contains(err.Error(), "spec.http.url is required") {
		t.Errorf("URL without spec.http.url: %q, %v", u, err)
	}
	if _, err := vendortest.NewClient(v, spec, map[string]string{"token": oktaKey}, 5*time.Second); !errors.Is(err, vendors.ErrInvalidSpec) {
		t.Errorf("client without spec.http.url: %v", err)
	}
	spec.HTTP.URL = "https://acme.okta.com"
	if u, err := v.URL(spec); err != nil || !strings.HasPrefix(u, "https://acme.okta.com") {
		t.Errorf("URL %q, %v", u, err)
	}
}

// A token read with its GET, every field Okta has mapped: the owner is
// the user who created it; Okta reports no use.
func TestOktaGet(t *testing.T) {
	srv := oktatest.NewServer(oktaKey)
	defer srv.Close()
	tok := oktatest.Sample(oktaID(11), "My API Token")
	tok.Owner = "00u5ownerid0000000ab"
	srv.Put(tok)
	c := oktaClient(t, srv)
	cred, err := c.Get(context.Background(), vendors.Ref{ID: oktaID(11)})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	created := time.Date(2021, 11, 9, 20, 38, 10, 0, time.UTC)
	updated := time.Date(2021, 11, 11, 20, 38, 10, 0, time.UTC)
	expires := time.Date(2021, 12, 11, 20, 38, 10, 0, time.UTC)
	if cred.Name != "My API Token" || cred.Owner != "00u5ownerid0000000ab" || cred.Description != "" || cred.ReportsUse || cred.Revoked ||
		cred.LastUsedAt != nil || cred.CreatedAt == nil || !cred.CreatedAt.Equal(created) || cred.UpdatedAt == nil || !cred.UpdatedAt.Equal(updated) ||
		cred.ExpiresAt == nil || !cred.ExpiresAt.Equal(expires) {
		t.Errorf("get: %+v", cred)
	}
	// Milliseconds survive.
	tok.ID, tok.CreatedAt = oktaID(12), time.Date(2026, 3, 4, 5, 6, 7, 891e6, time.UTC)
	srv.Put(tok)
	if cred, err := c.Get(context.Background(), vendors.Ref{ID: oktaID(12)}); err != nil || !cred.CreatedAt.Equal(tok.CreatedAt) {
		t.Errorf("created with milliseconds: %+v, %v", cred, err)
	}
	// Optional fields null or absent are none, not an error.
	for _, body := range []string{
		`{"id":"` + oktaID(11) + `","name":"n","userId":null,"created":null,"lastUpdated":null,"expiresAt":null,"_link":null}`,
		`{"id":"` + oktaID(11) + `","name":"n"}`,
	} {
		srv.FailNext(oktaID(11), vendortest.Fault{Status: http.StatusOK, ContentType: "application/json", Body: body})
		cred, err := c.Get(context.Background(), vendors.Ref{ID: oktaID(11)})
		if err != nil || cred.Name != "n" || cred.Owner != "" || cred.Revoked || cred.ReportsUse || cred.CreatedAt != nil || cred.UpdatedAt != nil ||
			cred.ExpiresAt != nil || cred.LastUsedAt != nil {
			t.Errorf("answer %s: %+v, %v", body, cred, err)
		}
	}
	// A token that does not exist.
	_, err = c.Get(context.Background(), vendors.Ref{ID: oktaID(99)})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound,
		InMessage: "HTTP 404 Not Found: E0000007: Not found: Resource not found: " + oktaID(99) + " (ApiToken)"}.Check(t, err, oktaKey)
	if srv.Deletes() != 0 {
		t.Errorf("%d DELETE requests: a client must only GET", srv.Deletes())
	}
}

// A revoked token is gone for Okta: 404, never a revoked credential.
func TestOktaRevoked(t *testing.T) {
	srv := oktatest.NewServer(oktaKey)
	defer srv.Close()
	tok := oktatest.Sample(oktaID(21), "old")
	tok.Revoked = true
	srv.Put(tok)
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := oktatest.Sample(oktaID(22), "expired")
	expired.ExpiresAt = &past
	srv.Put(expired)
	c := oktaClient(t, srv)
	_, err := c.Get(context.Background(), vendors.Ref{ID: oktaID(21)})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "Resource not found"}.Check(t, err)
	wantExpired(t, c, oktaID(22), past)
}

// The list follows the Link header's rel="next" (an after cursor) through
// the pages Okta forces (7 here, whatever limit=200 asks), every active
// token once, revoked ones left out.
func TestOktaListPagination(t *testing.T) {
	srv := oktatest.NewServer(oktaKey)
	defer srv.Close()
	for i := range 123 {
		tok := oktatest.Sample(oktaID(100+i), fmt.Sprintf("t%d", i))
		tok.Revoked = i%41 == 40 // 3 revoked
		srv.Put(tok)
	}
	srv.SetMaxPerPage(7)
	c := oktaClient(t, srv)
	seen, pages := vendortest.WalkList(t, c, func(next string) {
		if !strings.Contains(next, "after=") {
			t.Fatalf("next page %q", next)
		}
	})
	// 120 active tokens = 17 pages of 7 and one of 1.
	if len(seen) != 120 || pages != 18 || srv.ListCalls() != 18 {
		t.Fatalf("listed %d tokens in %d pages (%d calls), want 120 in 18", len(seen), pages, srv.ListCalls())
	}
	if _, ok := seen[oktaID(140)]; ok {
		t.Errorf("revoked token %s listed", oktaID(140))
	}
	if it := seen[oktaID(107)]; it.Credential == nil || it.Credential.Name != "t7" || it.Credential.Owner != "00uXXXXXXXXXXXXXXXXX" ||
		it.Credential.ReportsUse || it.Credential.CreatedAt == nil || it.Credential.ExpiresAt == nil {
		t.Errorf("token in the list: %+v", it.Credential)
	}

	// Okta's own page size: limit=200 gives the 120 in one page, one call.
	srv.SetMaxPerPage(0)
	srv.ResetCalls()
	page, err := c.ListPage(context.Background(), nil, "")
	if err != nil || len(page.Items) != 120 || page.Next != "" || srv.ListCalls() != 1 {
		t.Fatalf("one page of 200: %d items, next %q, %d calls, %v", len(page.Items), page.Next, srv.ListCalls(), err)
	}
	if srv.Deletes() != 0 {
		t.Errorf("%d DELETE requests: a client must only GET", srv.Deletes())
	}
}

// The key check (/users/me with SSWS), and Okta's errors: its
// errorSummary for 401/403/404, X-Rate-Limit-Reset for 429.
func TestOktaErrors(t *testing.T) {
	srv := oktatest.NewServer(oktaKey)
	defer srv.Close()
	srv.Put(oktatest.Sample(oktaID(31), "x"))
	c := oktaClient(t, srv)
	verifyOnce(t, c, srv, oktatest.VerifyID)
	wrong := httpClient(t, v1alpha1.DefinitionOkta, srv.URL, srv.CABundle(), map[string]string{"token": "00wrong-key"}, nil)
	vendortest.WantError{Class: vendors.ErrUnauthorized, Reason: v1alpha1.ReasonUnauthorized, InMessage: "HTTP 401 Unauthorized: E0000011: Invalid token provided"}.
		Check(t, wrong.Verify(context.Background()), "00wrong-key")
	_, err := wrong.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrUnauthorized, InMessage: "Invalid token provided"}.Check(t, err, "00wrong-key")
	// A wrong key's GET: the key check fails too, so Unauthorized.
	_, err = wrong.Get(context.Background(), vendors.Ref{ID: oktaID(31)})
	vendortest.WantError{Class: vendors.ErrUnauthorized, InMessage: "Invalid token provided"}.Check(t, err, "00wrong-key")

	srv.FailNext(oktaID(31), vendortest.Forbidden)
	_, err = c.Get(context.Background(), vendors.Ref{ID: oktaID(31)})
	vendortest.WantError{Class: vendors.ErrForbidden, Reason: v1alpha1.ReasonForbidden,
		InMessage: "HTTP 403 Forbidden: E0000006: You do not have permission to perform the requested action"}.Check(t, err)
	srv.FailNext(oktatest.ListID, vendortest.Forbidden)
	_, err = c.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrForbidden, InMessage: "You do not have permission"}.Check(t, err)
	srv.FailNext(oktaID(31), vendortest.NotFound)
	_, err = c.Get(context.Background(), vendors.Ref{ID: oktaID(31)})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "Resource not found: " + oktaID(31)}.Check(t, err)
	wantReadFaults(t, srv, c, oktaID(31))

	// 429 without Retry-After (Okta sends none): X-Rate-Limit-Reset, a
	// Unix time 30 s ahead, says how long. Last: the client then holds
	// its calls until the reset.
	srv.FailNext(oktaID(31), oktatest.RateLimited(time.Now(), 30))
	_, err = c.Get(context.Background(), vendors.Ref{ID: oktaID(31)})
	vendortest.WantError{Class: vendors.ErrRateLimited, Reason: v1alpha1.ReasonRateLimited,
		InMessage: "API call exceeded rate limit due to too many requests.", RetryAfter: 28 * time.Second}.Check(t, err)
	// Okta's clock an hour ahead of ours: the reset is reckoned from its
	// Date header, so the wait is still 30 s, not an hour and 30 s.
	c = oktaClient(t, srv)
	srv.FailNext(oktaID(31), oktatest.RateLimited(time.Now().Add(time.Hour), 30))
	_, err = c.Get(context.Background(), vendors.Ref{ID: oktaID(31)})
	vendortest.WantError{Class: vendors.ErrRateLimited, Reason: v1alpha1.ReasonRateLimited, RetryAfter: 28 * time.Second}.Check(t, err)
	if srv.Deletes() != 0 {
		t.Errorf("%d DELETE requests: a client must only GET", srv.Deletes())
	}
}

// Okta's answers carry no secret; a canary in a token value the fake
// answers anyway (tokenValue) lands nowhere in what the client maps;
// canaries in error answers and connections come back in no error.
func TestOktaCanaries(t *testing.T) {
	srv := oktatest.NewServer(oktaKey)
	defer srv.Close()
	tok := oktatest.Sample(oktaID(41), "x")
	tok.Value = "00" + vendortest.Canary
	srv.Put(tok)
	srv.SetEchoValues(true)
	c := oktaClient(t, srv)
	if _, page := getAndList(t, c, oktaID(41)); len(page.Items) != 1 {
		t.Fatalf("page %+v", page)
	}
	// The fake did echo it: the check above can fail.
	var body struct {
		TokenValue string `json:"tokenValue"`
	}
	_ = json.Unmarshal(rawGet(t, srv.CABundle(), srv.URL+"/api/v1/api-tokens/"+oktaID(41), map[string]string{"Authorization": "SSWS " + oktaKey}), &body)
	if body.TokenValue != tok.Value {
		t.Fatalf("fake does not echo the value: %q", body.TokenValue)
	}

	documented := func(m string) string {
		b, _ := json.Marshal(map[string]any{"errorCode": "E0000009", "errorSummary": m, "errorLink": "E0000009",
			"errorId": "oae" + m, "errorCauses": []any{map[string]any{"errorSummary": m}}})
		return string(b)
	}
	// A 401 for a token is only Unauthorized when the key check fails too
	// (otherwise the token is missing, TestOktaErrors).
	vendortest.CheckCanaries(t, vendortest.WithKeyCheck(srv, oktatest.VerifyID),
		canaryCalls(c, oktaID(41), oktaID(41), oktatest.ListID, oktatest.VerifyID), vendortest.CanaryFaults(documented), nil)
	vendortest.CheckTransport(t, oktaKey, transport(v1alpha1.DefinitionOkta, map[string]string{"token": oktaKey}, nil, oktaID(1)))
	if srv.Deletes() != 0 {
		t.Errorf("%d DELETE requests: a client must only GET", srv.Deletes())
	}
}
