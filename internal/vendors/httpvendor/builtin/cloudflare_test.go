package builtin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/cloudflaretest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	cloudflareKey     = "cfut_credsynctestkey0000000000000000000000c0ffee00"
	cloudflareAccount = "023e105f4ecef8ad9ca31a8372d0c353"
)

func cloudflareClient(t *testing.T, srv *cloudflaretest.Server, params map[string]string) vendors.Client {
	return httpClient(t, v1alpha1.DefinitionCloudflare, srv.URL, srv.CABundle(), map[string]string{"token": cloudflareKey}, params)
}

// cloudflareID is a token ID as Cloudflare writes them: 32 hex characters.
func cloudflareID(n int) string { return fmt.Sprintf("%032x", n) }

// The definition's defaults: Cloudflare's API, its host, its budget.
func TestCloudflareDefinition(t *testing.T) {
	v := vendorNamed(t, v1alpha1.DefinitionCloudflare)
	spec := &v1alpha1.CredentialProviderSpec{HTTP: &v1alpha1.HTTPProvider{Definition: v1alpha1.DefinitionCloudflare}}
	if u, err := v.URL(spec); err != nil || u != "https://api.cloudflare.com/client/v4" {
		t.Errorf("default URL %q, %v", u, err)
	}
	if len(v.SaaSHosts) != 1 || v.SaaSHosts[0] != "api.cloudflare.com" {
		t.Errorf("hosts %v", v.SaaSHosts)
	}
	if v.Limits != (vendors.Limits{RequestsPerMinute: 180, Burst: 20, MaxConcurrent: 4}) {
		t.Errorf("limits %+v", v.Limits)
	}
	if ref := v.SecretRef(&v1alpha1.CredentialProviderSpec{HTTP: &v1alpha1.HTTPProvider{Definition: "cloudflare",
		Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "cf"}}}}); len(ref.Keys) != 1 || ref.Keys[0] != "token" {
		t.Errorf("secret keys %v", ref.Keys)
	}
}

// User and account tokens read with their GETs (the account's when
// accountId is set), every field mapped: the owner of an account token is
// its creator, a user token has none; last use is reported, absent is
// never used.
func TestCloudflareGet(t *testing.T) {
	srv := cloudflaretest.NewServer(cloudflareKey)
	defer srv.Close()
	created := time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)
	modified := time.Date(2026, 2, 2, 10, 0, 0, 0, time.UTC)
	used := time.Date(2026, 11, 30, 8, 15, 0, 0, time.UTC)
	exp := time.Date(2027, 3, 1, 12, 30, 0, 0, time.UTC)
	user := cloudflaretest.Sample(cloudflareID(1), "dns-edit")
	user.LastUsedAt, user.ExpiresAt = &used, &exp
	srv.Put(user)
	acct := cloudflaretest.Sample(cloudflareID(2), "account-reader")
	acct.AccountID, acct.Owner, acct.ProvisionerID = cloudflareAccount, "ops@example.com", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"
	srv.Put(acct)
	fresh := cloudflaretest.Sample(cloudflareID(3), "never-used")
	srv.Put(fresh)

	userClient := cloudflareClient(t, srv, nil)
	cred, err := userClient.Get(context.Background(), vendors.Ref{ID: cloudflareID(1)})
	if err != nil {
		t.Fatalf("get user token: %v", err)
	}
	if cred.Name != "dns-edit" || cred.Owner != "" || cred.Description != "" || !cred.ReportsUse || cred.Revoked ||
		cred.CreatedAt == nil || !cred.CreatedAt.Equal(created) || cred.UpdatedAt == nil || !cred.UpdatedAt.Equal(modified) ||
		cred.ExpiresAt == nil || !cred.ExpiresAt.Equal(exp) || cred.LastUsedAt == nil || !cred.LastUsedAt.Equal(used) {
		t.Errorf("user token: %+v", cred)
	}
	cred, err = userClient.Get(context.Background(), vendors.Ref{ID: cloudflareID(3)})
	if err != nil {
		t.Fatalf("get unused token: %v", err)
	}
	if cred.Name != "never-used" || cred.LastUsedAt != nil || cred.ExpiresAt != nil || !cred.ReportsUse || cred.Revoked {
		t.Errorf("unused token without expiry: %+v", cred)
	}

	acctClient := cloudflareClient(t, srv, map[string]string{"accountId": cloudflareAccount})
	cred, err = acctClient.Get(context.Background(), vendors.Ref{ID: cloudflareID(2)})
	if err != nil {
		t.Fatalf("get account token: %v", err)
	}
	if cred.Name != "account-reader" || cred.Owner != "ops@example.com" || !cred.ReportsUse || cred.Revoked ||
		cred.LastUsedAt != nil || cred.ExpiresAt != nil || cred.CreatedAt == nil || !cred.CreatedAt.Equal(created) {
		t.Errorf("account token: %+v", cred)
	}
	// An account token is not a user token, and the other way round: the
	// path goes by accountId.
	_, err = userClient.Get(context.Background(), vendors.Ref{ID: cloudflareID(2)})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound,
		InMessage: "Could not route to /user/tokens/" + cloudflareID(2)}.Check(t, err, cloudflareKey)
	_, err = acctClient.Get(context.Background(), vendors.Ref{ID: cloudflareID(1)})
	vendortest.WantError{Class: vendors.ErrNotFound, InMessage: "/accounts/" + cloudflareAccount + "/tokens/"}.Check(t, err, cloudflareKey)
	// Every result field is optional: null or absent is none, not an
	// error, and no status is not revoked.
	for _, result := range []string{
		`{"id":"` + cloudflareID(3) + `","name":null,"status":null,"issued_on":null,"modified_on":null,"last_used_on":null,"expires_on":null,"creator_email_at_creation":null}`,
		`{"id":"` + cloudflareID(3) + `"}`,
	} {
		srv.FailNext(cloudflareID(3), vendortest.Fault{Status: http.StatusOK, ContentType: "application/json",
			Body: `{"success":true,"errors":[],"messages":[],"result":` + result + `}`})
		cred, err = userClient.Get(context.Background(), vendors.Ref{ID: cloudflareID(3)})
		if err != nil || cred.Name != "" || cred.Owner != "" || cred.Revoked || !cred.ReportsUse || cred.CreatedAt != nil || cred.UpdatedAt != nil ||
			cred.ExpiresAt != nil || cred.LastUsedAt != nil {
			t.Errorf("result %s: %+v, %v", result, cred, err)
		}
	}
	// A deleted token is gone.
	srv.Delete(cloudflareID(3))
	_, err = userClient.Get(context.Background(), vendors.Ref{ID: cloudflareID(3)})
	vendortest.WantError{Class: vendors.ErrNotFound}.Check(t, err, cloudflareKey)
}

// A disabled token reads as revoked; an expired one does not (its expiry
// says it).
func TestCloudflareRevoked(t *testing.T) {
	srv := cloudflaretest.NewServer(cloudflareKey)
	defer srv.Close()
	disabled := cloudflaretest.Sample(cloudflareID(21), "old")
	disabled.Revoked = true
	srv.Put(disabled)
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	expired := cloudflaretest.Sample(cloudflareID(22), "expired")
	expired.ExpiresAt = &past
	srv.Put(expired)
	c := cloudflareClient(t, srv, nil)
	if cred, err := c.Get(context.Background(), vendors.Ref{ID: cloudflareID(21)}); err != nil || !cred.Revoked {
		t.Fatalf("disabled token: %+v, %v", cred, err)
	}
	wantExpired(t, c, cloudflareID(22), past)
}

// The list goes page by page through the page size Cloudflare forces (7
// here, whatever per_page=50 asks), every token once, and stops after the
// last page by result_info, without an empty call; expired tokens are
// listed (include_expired), disabled ones read as revoked; account tokens
// are in the account's list only.
func TestCloudflareListPagination(t *testing.T) {
	srv := cloudflaretest.NewServer(cloudflareKey)
	defer srv.Close()
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 120 {
		tok := cloudflaretest.Sample(cloudflareID(100+i), fmt.Sprintf("t%d", i))
		switch i {
		case 5:
			tok.ExpiresAt = &past
		case 6:
			tok.Revoked = true
		}
		srv.Put(tok)
	}
	for i := range 12 {
		tok := cloudflaretest.Sample(cloudflareID(1000+i), "acct")
		tok.AccountID, tok.Owner = cloudflareAccount, "ops@example.com"
		srv.Put(tok)
	}
	srv.SetMaxPerPage(7)
	c := cloudflareClient(t, srv, nil)
	seen, pages := vendortest.WalkList(t, c, nil)
	// 120 = 17 pages of 7 and one of 1.
	if len(seen) != 120 || pages != 18 || srv.ListCalls() != 18 {
		t.Fatalf("listed %d tokens in %d pages (%d calls), want 120 in 18", len(seen), pages, srv.ListCalls())
	}
	if it := seen[cloudflareID(105)]; it.Credential == nil || it.Credential.Revoked || it.Credential.ExpiresAt == nil || !it.Credential.ExpiresAt.Equal(past) {
		t.Errorf("expired token in the list: %+v", it.Credential)
	}
	if it := seen[cloudflareID(106)]; it.Credential == nil || !it.Credential.Revoked {
		t.Errorf("disabled token in the list: %+v", it.Credential)
	}
	if it := seen[cloudflareID(107)]; it.Credential == nil || it.Credential.Name != "t7" || !it.Credential.ReportsUse || it.Credential.CreatedAt == nil {
		t.Errorf("token in the list: %+v", it.Credential)
	}

	// Cloudflare's own page size: 50 asked, 50 given; 100 tokens are two
	// pages and two calls, not a third empty one.
	srv.SetMaxPerPage(0)
	for i := range 20 {
		srv.Delete(cloudflareID(100 + i))
	}
	srv.ResetCalls()
	seen, pages = vendortest.WalkList(t, c, nil)
	if len(seen) != 100 || pages != 2 || srv.ListCalls() != 2 {
		t.Fatalf("listed %d tokens in %d pages (%d calls), want 100 in 2", len(seen), pages, srv.ListCalls())
	}

	// The account's list, with an account token as key: its 12 tokens in
	// pages of 5.
	srv.SetKeyAccount(cloudflareAccount)
	srv.SetMaxPerPage(5)
	srv.ResetCalls()
	seen, pages = vendortest.WalkList(t, cloudflareClient(t, srv, map[string]string{"accountId": cloudflareAccount}), nil)
	if len(seen) != 12 || pages != 3 || srv.ListCalls() != 3 {
		t.Fatalf("account list: %d tokens in %d pages (%d calls), want 12 in 3", len(seen), pages, srv.ListCalls())
	}
	for id, it := range seen {
		if it.Credential.Owner != "ops@example.com" {
			t.Errorf("account token %s: owner %q", id, it.Credential.Owner)
		}
	}
}

// The key check at the verify endpoint of the key's kind, and Cloudflare's
// errors: its errors[0].message for 401/403/404, Retry-After for 429.
func TestCloudflareErrors(t *testing.T) {
	srv := cloudflaretest.NewServer(cloudflareKey)
	defer srv.Close()
	srv.Put(cloudflaretest.Sample(cloudflareID(31), "x"))
	c := cloudflareClient(t, srv, nil)
	verifyOnce(t, c, srv, cloudflaretest.VerifyID)
	wrong := httpClient(t, v1alpha1.DefinitionCloudflare, srv.URL, srv.CABundle(), map[string]string{"token": "cfut_wrong-key"}, nil)
	vendortest.WantError{Class: vendors.ErrUnauthorized, Reason: v1alpha1.ReasonUnauthorized, InMessage: "HTTP 401 Unauthorized: 1000: Invalid API Token"}.
		Check(t, wrong.Verify(context.Background()), "cfut_wrong-key")
	_, err := wrong.ListPage(context.Background(), nil, "")
	vendortest.WantError{Class: vendors.ErrUnauthorized, InMessage: "Invalid access token"}.Check(t, err, "cfut_wrong-key")
	// A token no Cloudflare token could be (a pasted quote in it) is a
	// malformed header to Cloudflare, a 400 with code 6003: the key is
	// refused all the same (errors.unauthorized), not InvalidResponse.
	const malformed = `cfut_"pasted"`
	bad := httpClient(t, v1alpha1.DefinitionCloudflare, srv.URL, srv.CABundle(), map[string]string{"token": malformed}, nil)
	vendortest.WantError{Class: vendors.ErrUnauthorized, Reason: v1alpha1.ReasonUnauthorized, InMessage: "HTTP 400 Bad Request: 6003: Invalid request headers"}.
		Check(t, bad.Verify(context.Background()), malformed)
	// Any other 400 is what it was: InvalidResponse.
	srv.FailNext(cloudflareID(31), vendortest.Fault{Status: http.StatusBadRequest, ContentType: "application/json",
		Body: `{"success":false,"errors":[{"code":7003,"message":"Could not route to /user/tokens, perhaps your object identifier is invalid?"}]}`})
	_, err = c.Get(context.Background(), vendors.Ref{ID: cloudflareID(31)})
	vendortest.WantError{Class: vendors.ErrInvalidResponse, InMessage: "7003"}.Check(t, err)

	// An account token is checked at its account's verify endpoint; at
	// the user's it is refused.
	srv.SetKeyAccount(cloudflareAccount)
	if err := cloudflareClient(t, srv, map[string]string{"accountId": cloudflareAccount}).Verify(context.Background()); err != nil {
		t.Fatalf("account key check: %v", err)
	}
	vendortest.WantError{Class: vendors.ErrUnauthorized, InMessage: "Invalid API Token"}.Check(t, c.Verify(context.Background()), cloudflareKey)
	// ... and cannot read the user's tokens.
	_, err = c.Get(context.Background(), vendors.Ref{ID: cloudflareID(31)})
	vendortest.WantError{Class: vendors.ErrForbidden, Reason: v1alpha1.ReasonForbidden, InMessage: "HTTP 403 Forbidden: 10000: Authentication error"}.Check(t, err, cloudflareKey)
	srv.SetKeyAccount("")

	srv.FailNext(cloudflareID(31), vendortest.Forbidden)
	_, err = c.Get(context.Background(), vendors.Ref{ID: cloudflareID(31)})
	vendortest.WantError{Class: vendors.ErrForbidden, Reason: v1alpha1.ReasonForbidden, InMessage: "Authentication error"}.Check(t, err)
	srv.FailNext(cloudflareID(31), vendortest.NotFound)
	_, err = c.Get(context.Background(), vendors.Ref{ID: cloudflareID(31)})
	vendortest.WantError{Class: vendors.ErrNotFound, Reason: v1alpha1.ReasonNotFound, InMessage: "perhaps your object identifier is invalid?"}.Check(t, err)
	srv.FailNext(cloudflareID(31), cloudflaretest.RateLimited(time.Now(), 30))
	_, err = c.Get(context.Background(), vendors.Ref{ID: cloudflareID(31)})
	vendortest.WantError{Class: vendors.ErrRateLimited, Reason: v1alpha1.ReasonRateLimited, InMessage: "Please wait and consider throttling your request speed",
		RetryAfter: 29 * time.Second}.Check(t, err)
	wantReadFaults(t, srv, c, cloudflareID(31))
}

// A canary in the token's value (which creation answers carry, and the
// fake here puts in every answer) lands nowhere in what the client maps;
// canaries in error answers and connections come back in no error.
func TestCloudflareCanaries(t *testing.T) {
	srv := cloudflaretest.NewServer(cloudflareKey)
	defer srv.Close()
	tok := cloudflaretest.Sample(cloudflareID(41), "x")
	tok.Value = "cfut_" + vendortest.Canary
	srv.Put(tok)
	acct := cloudflaretest.Sample(cloudflareID(42), "y")
	acct.AccountID, acct.Value = cloudflareAccount, "cfat_"+vendortest.Canary
	srv.Put(acct)
	srv.SetEchoValues(true)
	c := cloudflareClient(t, srv, nil)
	ac := cloudflareClient(t, srv, map[string]string{"accountId": cloudflareAccount})
	for _, x := range []struct {
		c  vendors.Client
		id string
	}{{c, cloudflareID(41)}, {ac, cloudflareID(42)}} {
		if _, page := getAndList(t, x.c, x.id); len(page.Items) != 1 || page.Items[0].Ref.ID != x.id {
			t.Fatalf("page %+v", page)
		}
	}
	// The fake did echo it: the check above can fail.
	var body struct {
		Result struct {
			Value string `json:"value"`
		} `json:"result"`
	}
	_ = json.Unmarshal(rawGet(t, srv.CABundle(), srv.URL+"/user/tokens/"+cloudflareID(41), map[string]string{"Authorization": "Bearer " + cloudflareKey}), &body)
	if body.Result.Value != tok.Value {
		t.Fatalf("fake does not echo the value: %q", body.Result.Value)
	}

	documented := func(m string) string {
		b, _ := json.Marshal(map[string]any{"success": false, "errors": []any{map[string]any{"code": 10000, "message": m}},
			"messages": []any{}, "result": nil})
		return string(b)
	}
	// A 401 for a token is only Unauthorized when the key check fails too
	// (otherwise the token is missing, TestCloudflareErrors).
	vendortest.CheckCanaries(t, vendortest.WithKeyCheck(srv, cloudflaretest.VerifyID),
		canaryCalls(c, cloudflareID(41), cloudflareID(41), cloudflaretest.ListID, cloudflaretest.VerifyID), vendortest.CanaryFaults(documented), nil)
	vendortest.CheckTransport(t, cloudflareKey, transport(v1alpha1.DefinitionCloudflare, map[string]string{"token": cloudflareKey}, nil, cloudflareID(1)))
}

// The key check reads verify's answer: a disabled key gets a 200 whose
// result.status is not active, and is refused (keyCheck.accepted).
func TestCloudflareDisabledKey(t *testing.T) {
	srv := cloudflaretest.NewServer(cloudflareKey)
	defer srv.Close()
	c := cloudflareClient(t, srv, nil)
	if err := c.Verify(context.Background()); err != nil {
		t.Fatalf("active key: %v", err)
	}
	key := cloudflaretest.Sample(cloudflaretest.KeyID, "credsync")
	key.Revoked = true
	srv.Put(key)
	vendortest.WantError{Class: vendors.ErrUnauthorized, InMessage: "not usable"}.Check(t, c.Verify(context.Background()), cloudflareKey)
}
