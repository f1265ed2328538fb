package builtin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/atlassiantest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	atlassianKey = "ATCTT3xFfGN0credsync-test-org-key"
	atlassianOrg = "9a1jj823-jac8-123d-jj01-63315k059cb2"
)

func atlassianClient(t *testing.T, srv *atlassiantest.Server) vendors.Client {
	return httpClient(t, v1alpha1.DefinitionAtlassian, srv.URL, srv.CABundle(), map[string]string{"token": atlassianKey},
		map[string]string{"orgId": atlassianOrg})
}

// atlassianID is a token ID.
func atlassianID(n int) string { return fmt.Sprintf("tok-%04d", n) }

// A token is read from the list (Atlassian has no GET of one), every
// field mapped: the owner is the user's account ID (never their name or
// email), lastActiveAt the last use (absent: never used, and the vendor
// reports use).
func TestAtlassianGet(t *testing.T) {
	srv := atlassiantest.NewServer(atlassianKey, atlassianOrg)
	defer srv.Close()
	for i := range 30 {
		srv.Put(atlassiantest.Sample(atlassianID(i), fmt.Sprintf("token-%d", i)))
	}
	created := time.Date(2026, 3, 1, 8, 0, 0, 250000000, time.UTC)
	exp := time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC)
	used := time.Date(2026, 8, 1, 17, 2, 11, 0, time.UTC)
	tok := atlassiantest.Sample(atlassianID(99), "deploy-script")
	tok.CreatedAt, tok.ExpiresAt, tok.LastUsedAt = created, &exp, &used
	tok.Owner, tok.OwnerName, tok.OwnerEmail = "712020:0e2b4f61-aaaa-4bbb-8ccc-123456789abc", "Sam Roe", "sam@example.com"
	srv.Put(tok) // the newest: the list's last item, on page 5 of 7 a page
	srv.SetMaxPerPage(7)
	c := atlassianClient(t, srv)
	cred, err := c.Get(context.Background(), vendors.Ref{ID: atlassianID(99)})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if cred.Name != "deploy-script" || cred.Owner != "user 712020:0e2b4f61-aaaa-4bbb-8ccc-123456789abc" || cred.Description != "" ||
		!cred.ReportsUse || cred.Revoked || cred.UpdatedAt != nil {
		t.Errorf("get: %+v", cred)
	}
	if cred.CreatedAt == nil || !cred.CreatedAt.Equal(created) || cred.ExpiresAt == nil || !cred.ExpiresAt.Equal(exp) ||
		cred.LastUsedAt == nil || !cred.LastUsedAt.Equal(used) {
		t.Errorf("created %v, expires %v, last use %v; want %v, %v, %v", cred.CreatedAt, cred.ExpiresAt, cred.LastUsedAt, created, exp, used)
	}
	if b, _ := json.Marshal(cred); strings.Contains(string(b), "sam@example.com") || strings.Contains(string(b), "Sam Roe") {
		t.Errorf("credential holds the owner's personal data: %s", b)
	}
	if srv.ListCalls() != 5 {
		t.Errorf("read walked %d pages, want 5", srv.ListCalls())
	}
	// A never-used token without expiry.
	cred, err = c.Get(context.Background(), vendors.Ref{ID: atlassianID(3)})
	if err != nil || cred.LastUsedAt != nil || !cred.ReportsUse || cred.Owner != "user "+atlassiantest.SampleUser ||
		cred.ExpiresAt == nil || !cred.ExpiresAt.Equal(time.Date(2027, 1, 12, 9, 30, 0, 0, time.UTC)) {
		t.Errorf("sample token: %+v, %v", cred, err)
	}
	// A revoked token is deleted: the whole list is walked, and it is not
	// in it.
	srv.Delete(atlassianID(3))
	srv.ResetCalls()
	_, err = c.Get(context.Background(), vendors.Ref{ID: atlassianID(3)})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "lists no credential"}.Check(t, err, atlassianKey)
	if srv.ListCalls() != 5 {
		t.Errorf("read walked %d pages, want all 5", srv.ListCalls())
	}
}

// A status other than ALLOWED reads as revoked; an expired token does not
// (its expiry says it).
func TestAtlassianRevoked(t *testing.T) {
	srv := atlassiantest.NewServer(atlassianKey, atlassianOrg)
	defer srv.Close()
	blocked := atlassiantest.Sample(atlassianID(21), "blocked")
	blocked.Status = "BLOCKED"
	srv.Put(blocked)
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := atlassiantest.Sample(atlassianID(22), "expired")
	expired.ExpiresAt = &past
	srv.Put(expired)
	c := atlassianClient(t, srv)
	if cred, err := c.Get(context.Background(), vendors.Ref{ID: atlassianID(21)}); err != nil || !cred.Revoked {
		t.Fatalf("blocked token: %+v, %v", cred, err)
	}
	wantExpired(t, c, atlassianID(22), past)
}

// The list follows links.next through the pages (7 a page here), every
// token once, whether next is the next page's URL or a bare cursor (sent
// back as cursor=).
func TestAtlassianListPagination(t *testing.T) {
	srv := atlassiantest.NewServer(atlassianKey, atlassianOrg)
	defer srv.Close()
	for i := range 120 {
		srv.Put(atlassiantest.Sample(atlassianID(100+i), "t"))
	}
	srv.SetMaxPerPage(7)
	c := atlassianClient(t, srv)
	for _, bare := range []bool{false, true} {
		t.Run(fmt.Sprint("bare cursor ", bare), func(t *testing.T) {
			srv.SetBareCursor(bare)
			srv.ResetCalls()
			seen, pages := vendortest.WalkList(t, c, func(next string) {
				if !strings.HasPrefix(next, srv.URL+"/admin/api-access/v1/orgs/"+atlassianOrg+"/api-tokens?") || !strings.Contains(next, "cursor=") {
					t.Fatalf("next page %q", next)
				}
			})
			wantOwned(t, seen, "user "+atlassiantest.SampleUser)
			// 17 pages of 7 and one of 1; the last has no next.
			if len(seen) != 120 || pages != 18 || srv.ListCalls() != 18 {
				t.Fatalf("listed %d tokens in %d pages (%d calls), want 120 in 18", len(seen), pages, srv.ListCalls())
			}
		})
	}
}

// The key check (key, org ID and scope at once), and Atlassian's errors:
// each of its error shapes' message, Retry-After for 429 (its
// X-RateLimit-Reset, an ISO date, is not read).
func TestAtlassianErrors(t *testing.T) {
	srv := atlassiantest.NewServer(atlassianKey, atlassianOrg)
	defer srv.Close()
	srv.Put(atlassiantest.Sample(atlassianID(31), "x"))
	c := atlassianClient(t, srv)
	verifyOnce(t, c, srv, "verify")
	wrong := httpClient(t, v1alpha1.DefinitionAtlassian, srv.URL, srv.CABundle(), map[string]string{"token": "ATCTT-wrong"},
		map[string]string{"orgId": atlassianOrg})
	vendortest.WantError{Class: vendors.ErrUnauthorized, Reason: v1alpha1.ReasonUnauthorized, InMessage: "HTTP 401 Unauthorized: Unauthorized"}.
		Check(t, wrong.Verify(context.Background()), "ATCTT-wrong")
	otherOrg := httpClient(t, v1alpha1.DefinitionAtlassian, srv.URL, srv.CABundle(), map[string]string{"token": atlassianKey},
		map[string]string{"orgId": "other-org"})
	vendortest.WantError{Class: vendors.ErrNotFound, InMessage: "HTTP 404 Not Found: Not Found"}.Check(t, otherOrg.Verify(context.Background()), atlassianKey)
	// Without orgId the definition is refused.
	spec := &v1alpha1.CredentialProviderSpec{HTTP: &v1alpha1.HTTPProvider{Definition: v1alpha1.DefinitionAtlassian,
		Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "s"}}}}
	if _, err := vendortest.NewClient(vendorNamed(t, v1alpha1.DefinitionAtlassian), spec, map[string]string{"token": atlassianKey}, time.Second); !errors.Is(err, vendors.ErrInvalidSpec) || !strings.Contains(err.Error(), "orgId") {
		t.Errorf("no orgId: %v", err)
	}
	srv.SetInsufficientScope(true)
	vendortest.WantError{Class: vendors.ErrUnauthorized, InMessage: atlassiantest.InsufficientScope}.Check(t, c.Verify(context.Background()), atlassianKey)
	srv.SetInsufficientScope(false)
	srv.FailNext(atlassiantest.ListID, vendortest.Forbidden)
	_, err := c.Get(context.Background(), vendors.Ref{ID: atlassianID(31)})
	vendortest.WantError{Class: vendors.ErrForbidden, Reason: v1alpha1.ReasonForbidden, InMessage: atlassiantest.PermissionDenied}.Check(t, err)
	srv.FailNext(atlassiantest.ListID, vendortest.NotFound)
	_, err = c.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "HTTP 404 Not Found: Not Found"}.Check(t, err)
	srv.FailNext(atlassiantest.ListID, atlassiantest.RateLimited(time.Now(), 30))
	_, err = c.Get(context.Background(), vendors.Ref{ID: atlassianID(31)})
	vendortest.WantError{Class: vendors.ErrRateLimited, Reason: v1alpha1.ReasonRateLimited, InMessage: "Too Many Requests", RetryAfter: 30 * time.Second}.Check(t, err)
	// Without Retry-After nothing says how long: the ISO reset is not read.
	f := atlassiantest.RateLimited(time.Now(), 20)
	f.RetryAfter = ""
	srv.FailNext(atlassiantest.ListID, f)
	_, err = c.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrRateLimited}.Check(t, err)
	// A cursor Atlassian does not know: 400, with its detail.
	_, err = c.ListPage(context.Background(), nil, srv.URL+"/admin/api-access/v1/orgs/"+atlassianOrg+"/api-tokens?cursor=bogus")
	vendortest.WantError{Class: vendors.ErrInvalidResponse, InMessage: "Invalid cursor."}.Check(t, err)
	// A next page elsewhere is not followed.
	_, err = c.ListPage(context.Background(), nil, srv.URL+"/admin/api-access/v1/orgs/"+atlassianOrg+"/api-keys")
	vendortest.WantError{Class: vendors.ErrInvalidResponse, InMessage: "points away from the list"}.Check(t, err)
}

// A canary planted in every list item (Atlassian's read answers carry no
// secret; the fake adds one) lands nowhere in what the client maps;
// canaries in error answers and connections come back in no error.
func TestAtlassianCanaries(t *testing.T) {
	srv := atlassiantest.NewServer(atlassianKey, atlassianOrg)
	defer srv.Close()
	tok := atlassiantest.Sample(atlassianID(41), "x")
	tok.Value = "ATATT-" + vendortest.Canary
	srv.Put(tok)
	srv.SetEchoValues(true)
	c := atlassianClient(t, srv)
	if cred, page := getAndList(t, c, atlassianID(41)); len(page.Items) != 1 || cred.Name != "x" {
		t.Fatalf("get %+v, list %+v", cred, page)
	}
	documented := func(m string) string {
		b, _ := json.Marshal(map[string]any{"errors": []any{map[string]string{"code": "ADMIN-500", "status": "500", "title": m, "detail": m}}})
		return string(b)
	}
	vendortest.CheckCanaries(t, srv, canaryCalls(c, atlassianID(41), atlassiantest.ListID, atlassiantest.ListID, "verify"), vendortest.CanaryFaults(documented), nil)
	vendortest.CheckTransport(t, atlassianKey, transport(v1alpha1.DefinitionAtlassian, map[string]string{"token": atlassianKey},
		map[string]string{"orgId": atlassianOrg}, atlassianID(1)))
}
