package controllers_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/atlassiantest"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/cloudflaretest"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/datadogtest"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/gitlabtest"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/grafanatest"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/oktatest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// builtinFake is what TestBuiltinDefinitions needs of a built-in's fake.
type builtinFake struct {
	url      string
	caBundle []byte
	sc       *vendortest.Scenarios
	// put adds token i (revoked when asked and the vendor reports it),
	// its secret value secret; id is its vendor ID.
	put   func(i int, revoked bool, secret string) (id string)
	pages func(n int)
	// echo makes answers carry the tokens' values where the vendor ever does.
	echo        func()
	listCalls   func() int
	rateLimited func(now time.Time, secs int) vendortest.Fault
	close       func()
}

type builtinCase struct {
	def       string
	secret    func(key string) map[string]string
	params    map[string]string
	listOnly  bool
	revokable bool
	start     func(key string) builtinFake
}

func token(key string) map[string]string { return map[string]string{"token": key} }

var builtinCases = []builtinCase{
	{def: v1alpha1.DefinitionGitLab, secret: token, revokable: true, start: func(key string) builtinFake {
		s := gitlabtest.NewServer(key)
		return builtinFake{url: s.URL, caBundle: s.CABundle(), sc: &s.Scenarios, close: s.Close, pages: s.SetMaxPerPage,
			echo: func() { s.SetEchoValues(true) }, listCalls: s.ListCalls, rateLimited: gitlabtest.RateLimited,
			put: func(i int, revoked bool, secret string) string {
				t := gitlabtest.Sample(int64(i), fmt.Sprintf("token-%d", i))
				t.Revoked, t.Value = revoked, secret
				s.Put(t)
				return strconv.Itoa(i)
			}}
	}},
	{def: v1alpha1.DefinitionCloudflare, secret: token, revokable: true, start: func(key string) builtinFake {
		s := cloudflaretest.NewServer(key)
		return builtinFake{url: s.URL, caBundle: s.CABundle(), sc: &s.Scenarios, close: s.Close, pages: s.SetMaxPerPage,
			echo: func() { s.SetEchoValues(true) }, listCalls: s.ListCalls, rateLimited: cloudflaretest.RateLimited,
			put: func(i int, revoked bool, secret string) string {
				t := cloudflaretest.Sample(fmt.Sprintf("%032x", i), fmt.Sprintf("token-%d", i))
				t.Revoked, t.Value = revoked, secret
				s.Put(t)
				return t.ID
			}}
	}},
	{def: v1alpha1.DefinitionOkta, secret: token, start: func(key string) builtinFake {
		s := oktatest.NewServer(key)
		return builtinFake{url: s.URL, caBundle: s.CABundle(), sc: &s.Scenarios, close: s.Close, pages: s.SetMaxPerPage,
			echo: func() { s.SetEchoValues(true) }, listCalls: s.ListCalls, rateLimited: oktatest.RateLimited,
			put: func(i int, _ bool, secret string) string {
				t := oktatest.Sample(fmt.Sprintf("00Tcredsync%09d", i), fmt.Sprintf("token-%d", i))
				exp := time.Now().Add(20 * 24 * time.Hour).UTC().Truncate(time.Second)
				t.ExpiresAt, t.Value = &exp, secret
				s.Put(t)
				return t.ID
			}}
	}},
	{def: v1alpha1.DefinitionDatadog, secret: func(key string) map[string]string {
		return map[string]string{"apiKey": key, "appKey": key + "-app"}
	}, start: func(key string) builtinFake {
		s := datadogtest.NewServer(key, key+"-app")
		return builtinFake{url: s.URL, caBundle: s.CABundle(), sc: &s.Scenarios, close: s.Close, pages: s.SetMaxPerPage,
			echo: func() { s.SetEchoValues(true) }, listCalls: s.ListCalls, rateLimited: datadogtest.RateLimited,
			put: func(i int, _ bool, secret string) string {
				t := datadogtest.Sample(fmt.Sprintf("9286a10e-fe08-48ba-9884-%012d", i), fmt.Sprintf("key-%d", i))
				t.Value = secret
				s.Put(t)
				return t.ID
			}}
	}},
	{def: v1alpha1.DefinitionAtlassian, secret: token, params: map[string]string{"orgId": "acme-org"}, listOnly: true, revokable: true,
		start: func(key string) builtinFake {
			s := atlassiantest.NewServer(key, "acme-org")
			return builtinFake{url: s.URL, caBundle: s.CABundle(), sc: &s.Scenarios, close: s.Close, pages: s.SetMaxPerPage,
				echo: func() { s.SetEchoValues(true) }, listCalls: s.ListCalls, rateLimited: atlassiantest.RateLimited,
				put: func(i int, revoked bool, secret string) string {
					t := atlassiantest.Sample(fmt.Sprintf("tok-%d", i), fmt.Sprintf("token-%d", i))
					if revoked {
						t.Status = "BLOCKED"
					}
					t.Value = secret
					s.Put(t)
					return t.ID
				}}
		}},
	{def: v1alpha1.DefinitionGrafana, secret: token, params: map[string]string{"serviceAccountId": grafanatest.SampleAccount}, listOnly: true, revokable: true,
		start: func(key string) builtinFake {
			s := grafanatest.NewServer(key)
			s.PutServiceAccount(grafanatest.SampleServiceAccount(3, "ci"))
			return builtinFake{url: s.URL, caBundle: s.CABundle(), sc: &s.Scenarios, close: s.Close,
				echo: func() { s.SetEchoValues(true) }, listCalls: s.ListCalls, rateLimited: grafanatest.RateLimited,
				put: func(i int, revoked bool, secret string) string {
					t := grafanatest.Sample(strconv.Itoa(i), fmt.Sprintf("token-%d", i))
					t.Revoked, t.Value = revoked, secret
					s.Put(t)
					return t.ID
				}}
		}},
}

// Every built-in through the manager against its fake: the key check
// (and a refused key), reads (GET, or the shared list of a list-only
// vendor), the list with the page size the vendor forces, a revoked
// token, 404, 403 and 429 with the vendor's own headers, and the tokens'
// secret values (which the fakes put in their answers) nowhere in status.
func TestBuiltinDefinitions(t *testing.T) {
	t.Parallel()
	for _, tc := range builtinCases {
		t.Run(tc.def, func(t *testing.T) {
			t.Parallel()
			key := "credsync-key-" + tc.def
			f := tc.start(key)
			defer f.close()
			canary := "secret-" + vendortest.Canary
			const n = 7
			ids := make([]string, 0, n+1)
			for i := 1; i <= n; i++ {
				ids = append(ids, f.put(i, false, canary))
			}
			revoked := ""
			if tc.revokable {
				revoked = f.put(n+1, true, canary)
			}
			if f.pages != nil {
				f.pages(3)
			}
			f.echo()
			ns := newNamespace(t)
			provider := func(name, key string, inv *v1alpha1.Inventory) {
				create(t, testenv.ProviderSecret(ns, name, tc.secret(key)))
				create(t, &v1alpha1.CredentialProvider{
					ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
					Spec: v1alpha1.CredentialProviderSpec{
						HTTP: &v1alpha1.HTTPProvider{Definition: tc.def, URL: f.url, Params: tc.params,
							Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: name}}},
						CABundle:  f.caBundle,
						Inventory: inv,
					},
				})
			}
			provider("vendor", key, &v1alpha1.Inventory{Interval: metav1.Duration{Duration: time.Hour}})
			provider("wrong-key", "not-"+key, nil)
			// Without inventory: its reads are GETs (the sweep serves the
			// first sync of the inventoried provider's credentials).
			provider("plain", key, nil)
			// A 429 that says nothing remains pauses its provider (its other
			// reads wait): the rate-limited credential has one of its own.
			provider("paused", key, nil)
			waitProviderValid(t, ns, "vendor")

			rc := func(name, id, provider string) *v1alpha1.RemoteCredential {
				return newCredential(ns, name, id, func(rc *v1alpha1.RemoteCredential) { rc.Spec.ProviderRef.Name = provider })
			}
			want := map[string]string{"synced": v1alpha1.ReasonSynced, "missing": v1alpha1.ReasonNotFound, "refused": v1alpha1.ReasonProviderNotReady}
			create(t, rc("synced", ids[0], "vendor"))
			create(t, rc("missing", "999999", "vendor"))
			create(t, rc("refused", ids[0], "wrong-key"))
			if revoked != "" {
				create(t, rc("revoked", revoked, "vendor"))
				want["revoked"] = v1alpha1.ReasonRevoked
			}
			if !tc.listOnly {
				// A list-only vendor's reads are its list: faults of one
				// token's GET do not apply.
				f.sc.Set(ids[1], vendortest.Forbidden)
				f.sc.Set(ids[2], f.rateLimited(time.Now(), 120))
				create(t, rc("forbidden", ids[1], "plain"))
				create(t, rc("limited", ids[2], "paused"))
				want["forbidden"], want["limited"] = v1alpha1.ReasonForbidden, v1alpha1.ReasonRateLimited
			}
			for name, reason := range want {
				got := waitReason(t, rc(name, "", ""), reason)
				b, _ := json.Marshal(got.Status)
				if strings.Contains(string(b), vendortest.Canary) || strings.Contains(string(b), key) {
					t.Errorf("%s: status holds a secret: %s", name, b)
				}
				if name == "synced" && (got.Status.Vendor != tc.def || got.Status.Name != "token-1" && got.Status.Name != "key-1") {
					t.Errorf("synced: vendor %q, name %q", got.Status.Vendor, got.Status.Name)
				}
			}
			wrong := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "wrong-key"}}
			waitReady(t, wrong, func() []metav1.Condition { return wrong.Status.Conditions }, v1alpha1.ReasonUnauthorized, "")
			g := gomega.NewWithT(t)
			total := int32(len(ids))
			if revoked != "" {
				total++
			}
			p := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vendor"}}
			g.Eventually(func(g gomega.Gomega) {
				get(g, p)
				g.Expect(p.Status.Inventory).NotTo(gomega.BeNil())
				g.Expect(p.Status.Inventory.Total).To(gomega.Equal(total))
			}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
			if f.pages != nil && f.listCalls() < int(total+2)/3 {
				t.Errorf("%d list calls: the vendor forces 3 a page of %d", f.listCalls(), total)
			}
			b, _ := json.Marshal(p.Status)
			if strings.Contains(string(b), vendortest.Canary) {
				t.Errorf("provider status holds a secret: %s", b)
			}
		})
	}
}
