package builtin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/grafanatest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const grafanaKey = "glsa_credsyncTestKey0123456789abcdef_0a1b2c3d"

func grafanaClient(t *testing.T, srv *grafanatest.Server, serviceAccount string) vendors.Client {
	return httpClient(t, v1alpha1.DefinitionGrafana, srv.URL, srv.CABundle(), map[string]string{"token": grafanaKey},
		map[string]string{"serviceAccountId": serviceAccount})
}

// The registration: no default URL (a stack's or a self-hosted
// Grafana's is the provider's), Grafana Cloud's hosts, the service
// account required.
func TestGrafanaRegistration(t *testing.T) {
	v := vendorNamed(t, v1alpha1.DefinitionGrafana)
	if !slices.Equal(v.SaaSHosts, []string{"*.grafana.net"}) {
		t.Errorf("hosts %v", v.SaaSHosts)
	}
	spec := func(url string, params map[string]string) *v1alpha1.CredentialProviderSpec {
		return &v1alpha1.CredentialProviderSpec{HTTP: &v1alpha1.HTTPProvider{Definition: v1alpha1.DefinitionGrafana, URL: url,
			Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "s"}}, Params: params}}
	}
	secret := map[string]string{"token": grafanaKey}
	if _, err := vendortest.NewClient(v, spec("", map[string]string{"serviceAccountId": "3"}), secret, time.Second); !errors.Is(err, vendors.ErrInvalidSpec) || !strings.Contains(err.Error(), "spec.http.url is required") {
		t.Errorf("no url: %v", err)
	}
	if _, err := vendortest.NewClient(v, spec("https://127.0.0.1:1", nil), secret, time.Second); !errors.Is(err, vendors.ErrInvalidSpec) || !strings.Contains(err.Error(), "serviceAccountId") {
		t.Errorf("no serviceAccountId: %v", err)
	}
}

// A token is read from its service account's list (Grafana has no GET of
// one), every field mapped: the owner is the service account, times keep
// their instant whatever their zone, a null expiration never expires, a
// null lastUsedAt is never used (the vendor reports use).
func TestGrafanaGet(t *testing.T) {
	srv := grafanatest.NewServer(grafanaKey)
	defer srv.Close()
	srv.PutServiceAccount(grafanatest.SampleServiceAccount(3, "ci"))
	cest := time.FixedZone("CEST", 2*3600)
	created := time.Date(2026, 3, 23, 12, 31, 2, 500000000, cest)
	used := time.Date(2026, 3, 24, 8, 15, 0, 0, time.UTC)
	exp := time.Date(2027, 3, 30, 10, 31, 2, 0, time.UTC)
	tok := grafanatest.Sample("7", "credsync")
	tok.CreatedAt, tok.LastUsedAt, tok.ExpiresAt = created, &used, &exp
	srv.Put(tok)
	srv.Put(grafanatest.Sample("8", "never-used"))
	other := grafanatest.Sample("9", "other-account")
	other.Owner = "4"
	srv.Put(other)
	for _, ref := range []string{"3", "sa-uid-3"} {
		c := grafanaClient(t, srv, ref)
		cred, err := c.Get(context.Background(), vendors.Ref{ID: "7"})
		if err != nil {
			t.Fatalf("get via %s: %v", ref, err)
		}
		if cred.Name != "credsync" || cred.Owner != "service account "+ref || cred.Description != "" || !cred.ReportsUse || cred.Revoked || cred.UpdatedAt != nil {
			t.Errorf("get via %s: %+v", ref, cred)
		}
		if cred.CreatedAt == nil || !cred.CreatedAt.Equal(created) || cred.LastUsedAt == nil || !cred.LastUsedAt.Equal(used) ||
			cred.ExpiresAt == nil || !cred.ExpiresAt.Equal(exp) {
			t.Errorf("created %v, last use %v, expires %v; want %v, %v, %v", cred.CreatedAt, cred.LastUsedAt, cred.ExpiresAt, created, used, exp)
		}
		cred, err = c.Get(context.Background(), vendors.Ref{ID: "8"})
		if err != nil || cred.LastUsedAt != nil || cred.ExpiresAt != nil || !cred.ReportsUse || cred.Revoked ||
			!cred.CreatedAt.Equal(time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("never-used token via %s: %+v, %v", ref, cred, err)
		}
		// Another account's token is not in this one's list.
		_, err = c.Get(context.Background(), vendors.Ref{ID: "9"})
		vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "lists no credential 9"}.Check(t, err, grafanaKey)
	}
	// An unknown UID is Grafana's 404; an unknown numeric ID lists nothing.
	_, err := grafanaClient(t, srv, "sa-uid-404").Get(context.Background(), vendors.Ref{ID: "7"})
	vendortest.WantError{Class: vendors.ErrNotFound, InMessage: "HTTP 404 Not Found: Not found"}.Check(t, err, grafanaKey)
	_, err = grafanaClient(t, srv, "404").Get(context.Background(), vendors.Ref{ID: "7"})
	vendortest.WantError{Class: vendors.ErrNotFound, InMessage: "lists no credential 7"}.Check(t, err, grafanaKey)
}

// A revoked token reads as revoked; an expired one does not (its expiry
// says it).
func TestGrafanaRevoked(t *testing.T) {
	srv := grafanatest.NewServer(grafanaKey)
	defer srv.Close()
	revoked := grafanatest.Sample("21", "old")
	revoked.Revoked = true
	srv.Put(revoked)
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := grafanatest.Sample("22", "expired")
	expired.ExpiresAt = &past
	srv.Put(expired)
	c := grafanaClient(t, srv, grafanatest.SampleAccount)
	if cred, err := c.Get(context.Background(), vendors.Ref{ID: "21"}); err != nil || !cred.Revoked {
		t.Fatalf("revoked token: %+v, %v", cred, err)
	}
	wantExpired(t, c, "22", past)
}

// The list is one page: every token of the account, in one call.
func TestGrafanaList(t *testing.T) {
	srv := grafanatest.NewServer(grafanaKey)
	defer srv.Close()
	for i := range 150 {
		srv.Put(grafanatest.Sample(fmt.Sprint(100+i), "t"))
	}
	other := grafanatest.Sample("999", "other")
	other.Owner = "4"
	srv.Put(other)
	seen, pages := vendortest.WalkList(t, grafanaClient(t, srv, grafanatest.SampleAccount), nil)
	wantOwned(t, seen, "service account 3")
	if _, other := seen["999"]; len(seen) != 150 || other || pages != 1 || srv.ListCalls() != 1 {
		t.Fatalf("listed %d tokens in %d pages (%d calls), want the account's 150 in one", len(seen), pages, srv.ListCalls())
	}
}

// The key check (the service account search), and Grafana's errors: its
// message for 401/403/404, Retry-After for 429.
func TestGrafanaErrors(t *testing.T) {
	srv := grafanatest.NewServer(grafanaKey)
	defer srv.Close()
	srv.Put(grafanatest.Sample("31", "x"))
	c := grafanaClient(t, srv, grafanatest.SampleAccount)
	verifyOnce(t, c, srv, "verify")
	wrong := httpClient(t, v1alpha1.DefinitionGrafana, srv.URL, srv.CABundle(), map[string]string{"token": "glsa_wrong"},
		map[string]string{"serviceAccountId": grafanatest.SampleAccount})
	vendortest.WantError{Class: vendors.ErrUnauthorized, Reason: v1alpha1.ReasonUnauthorized, InMessage: grafanatest.InvalidAPIKey}.
		Check(t, wrong.Verify(context.Background()), "glsa_wrong")
	_, err := wrong.Get(context.Background(), vendors.Ref{ID: "31"})
	vendortest.WantError{Class: vendors.ErrUnauthorized, InMessage: grafanatest.InvalidAPIKey}.Check(t, err, "glsa_wrong")
	srv.FailNext("verify", vendortest.Forbidden)
	vendortest.WantError{Class: vendors.ErrForbidden, Reason: v1alpha1.ReasonForbidden, InMessage: grafanatest.AccessDenied}.Check(t, c.Verify(context.Background()))
	srv.FailNext(grafanatest.ListID, vendortest.Forbidden)
	_, err = c.Get(context.Background(), vendors.Ref{ID: "31"})
	vendortest.WantError{Class: vendors.ErrForbidden, InMessage: grafanatest.AccessDenied}.Check(t, err)
	srv.FailNext(grafanatest.ListID, vendortest.NotFound)
	_, err = c.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "HTTP 404 Not Found: Not found"}.Check(t, err)
	srv.FailNext(grafanatest.ListID, grafanatest.RateLimited(time.Now(), 30))
	_, err = c.Get(context.Background(), vendors.Ref{ID: "31"})
	vendortest.WantError{Class: vendors.ErrRateLimited, Reason: v1alpha1.ReasonRateLimited, InMessage: grafanatest.TooManyRequests, RetryAfter: 30 * time.Second}.Check(t, err)
	srv.FailNext(grafanatest.ListID, vendortest.Fault{Status: 400})
	_, err = c.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrInvalidResponse, InMessage: grafanatest.InvalidAccountID}.Check(t, err)
}

// A canary planted in every listed token's key (Grafana's list carries no
// secret; the fake adds one) lands nowhere in what the client maps;
// canaries in error answers and connections come back in no error.
func TestGrafanaCanaries(t *testing.T) {
	srv := grafanatest.NewServer(grafanaKey)
	defer srv.Close()
	tok := grafanatest.Sample("41", "x")
	tok.Value = "glsa_" + vendortest.Canary
	srv.Put(tok)
	srv.SetEchoValues(true)
	c := grafanaClient(t, srv, grafanatest.SampleAccount)
	if cred, page := getAndList(t, c, "41"); len(page.Items) != 1 || cred.Name != "x" {
		t.Fatalf("get %+v, list %+v", cred, page)
	}
	documented := func(m string) string {
		b, _ := json.Marshal(map[string]any{"extra": nil, "message": m, "messageId": "internal", "statusCode": 500, "traceID": ""})
		return string(b)
	}
	vendortest.CheckCanaries(t, srv, canaryCalls(c, "41", grafanatest.ListID, grafanatest.ListID, "verify"), vendortest.CanaryFaults(documented), nil)
	vendortest.CheckTransport(t, grafanaKey, transport(v1alpha1.DefinitionGrafana, map[string]string{"token": grafanaKey},
		map[string]string{"serviceAccountId": grafanatest.SampleAccount}, "1"))
}
