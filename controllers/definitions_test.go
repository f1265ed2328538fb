package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/gitlabtest"
)

const gitlabKey = "glpat-envtest-key"

// gitlabProvider creates a Secret and a CredentialProvider "gitlab" of
// the built-in definition (or def) against srv.
func gitlabProvider(t *testing.T, ns, def string, srv *gitlabtest.Server, inv *v1alpha1.Inventory) {
	t.Helper()
	create(t, testenv.ProviderSecret(ns, "gitlab-api", map[string]string{"token": gitlabKey}))
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gitlab"},
		Spec: v1alpha1.CredentialProviderSpec{
			HTTP: &v1alpha1.HTTPProvider{Definition: def, URL: srv.URL,
				Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "gitlab-api"}}},
			CABundle:  srv.CABundle(),
			Inventory: inv,
		},
	})
}

func gitlabCredential(ns, name, id string, mutate ...func(*v1alpha1.RemoteCredential)) *v1alpha1.RemoteCredential {
	return newCredential(ns, name, id, append([]func(*v1alpha1.RemoteCredential){func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.ProviderRef.Name = "gitlab"
	}}, mutate...)...)
}

// The gitlab built-in through the manager: a used token is Synced with
// its owner and last use, one never used for longer than unusedAfter is
// Unused (NeverUsed), a revoked one is Revoked and Stalled, a missing one
// NotFound; the inventory lists every page the vendor forces and counts
// the unused tokens.
func TestGitLabDefinition(t *testing.T) {
	t.Parallel()
	srv := gitlabtest.NewServer(gitlabKey)
	defer srv.Close()
	srv.SetMaxPerPage(3)
	now := time.Now().UTC()
	used := now.Add(-2 * time.Hour).Truncate(time.Second)
	for i := range 8 {
		tok := gitlabtest.Sample(int64(500+i), "token")
		tok.CreatedAt = now.Add(-400 * 24 * time.Hour)
		if i%2 == 0 {
			tok.LastUsedAt = &used
		}
		srv.Put(tok)
	}
	revoked := gitlabtest.Sample(600, "revoked")
	revoked.Revoked = true
	srv.Put(revoked)

	ns := newNamespace(t)
	gitlabProvider(t, ns, v1alpha1.DefinitionGitLab, srv, &v1alpha1.Inventory{
		Interval: metav1.Duration{Duration: time.Hour}, UnusedAfter: &metav1.Duration{Duration: 90 * 24 * time.Hour}})
	waitProviderValid(t, ns, "gitlab")
	ninety := &metav1.Duration{Duration: 90 * 24 * time.Hour}
	create(t, gitlabCredential(ns, "used", "500", func(rc *v1alpha1.RemoteCredential) { rc.Spec.UnusedAfter = ninety }))
	create(t, gitlabCredential(ns, "never", "501", func(rc *v1alpha1.RemoteCredential) { rc.Spec.UnusedAfter = ninety }))
	create(t, gitlabCredential(ns, "revoked", "600"))
	create(t, gitlabCredential(ns, "missing", "999"))

	rc := waitReason(t, gitlabCredential(ns, "used", "500"), v1alpha1.ReasonSynced)
	if rc.Status.Vendor != "gitlab" || rc.Status.Owner != "user 42" || rc.Status.LastUsedAt == nil || !rc.Status.LastUsedAt.Time.Equal(used.Truncate(time.Hour)) ||
		!meta.IsStatusConditionFalse(rc.Status.Conditions, v1alpha1.ConditionUnused) {
		t.Errorf("used token: %+v", rc.Status)
	}
	rc = waitReason(t, gitlabCredential(ns, "never", "501"), v1alpha1.ReasonSynced)
	if c := condition(rc, v1alpha1.ConditionUnused); c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonNeverUsed {
		t.Errorf("never-used token: Unused %+v", c)
	}
	rc = waitReason(t, gitlabCredential(ns, "revoked", "600"), v1alpha1.ReasonRevoked)
	if !meta.IsStatusConditionTrue(rc.Status.Conditions, v1alpha1.ConditionStalled) || rc.Status.Name != "revoked" {
		t.Errorf("revoked token: %+v", rc.Status)
	}
	waitReason(t, gitlabCredential(ns, "missing", "999"), v1alpha1.ReasonNotFound)

	provider := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gitlab"}}
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		get(g, provider)
		inv := provider.Status.Inventory
		g.Expect(inv).NotTo(gomega.BeNil())
		g.Expect(inv.Total).To(gomega.BeEquivalentTo(9))
		g.Expect(inv.Managed).To(gomega.BeEquivalentTo(3))
		g.Expect(inv.Unused).NotTo(gomega.BeNil())
		// Never used, created 400 days ago: 501, 503, 505, 507 and the revoked 600.
		g.Expect(*inv.Unused).To(gomega.BeEquivalentTo(5))
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
	if provider.Status.Vendor != "gitlab" {
		t.Errorf("provider vendor %q", provider.Status.Vendor)
	}
	if srv.ListCalls() < 3 {
		t.Errorf("%d list calls; the vendor forces 3 a page: want at least 3", srv.ListCalls())
	}
	for _, u := range provider.Status.Inventory.UnmanagedCredentials {
		if u.ID == "502" && (u.LastUsedAt == nil || u.Owner != "user 42") {
			t.Errorf("unmanaged 502: %+v, want its last use and owner", u)
		}
	}
}

// A CredentialVendor end to end: one that compiles serves a provider; one
// whose CEL does not compile is Ready=False InvalidSpec naming the
// expression, and so is the provider naming it, until it is fixed.
func TestCredentialVendor(t *testing.T) {
	t.Parallel()
	srv := gitlabtest.NewServer(gitlabKey)
	defer srv.Close()
	srv.Put(gitlabtest.Sample(700, "custom"))
	ns := newNamespace(t)
	name := "selfhosted-" + ns
	spec := v1alpha1.CredentialVendorSpec{}
	if err := yaml.UnmarshalStrict([]byte(customGitLab), &spec); err != nil {
		t.Fatal(err)
	}
	spec.Fields.Name = "item.name +"
	cv := &v1alpha1.CredentialVendor{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(t, cv)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), cv) })
	waitReady(t, cv, func() []metav1.Condition { return cv.Status.Conditions }, v1alpha1.ReasonInvalidSpec, "fields.name")
	g := gomega.NewWithT(t)
	if s := kstatus(t, cv, "CredentialVendor"); s != status.FailedStatus {
		t.Errorf("kstatus of a definition that does not compile: %s, want Failed", s)
	}

	gitlabProvider(t, ns, name, srv, nil)
	provider := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "gitlab"}}
	waitReady(t, provider, func() []metav1.Condition { return provider.Status.Conditions }, v1alpha1.ReasonInvalidSpec, "does not compile")

	get(g, cv)
	cv.Spec.Fields.Name = "item.name"
	if err := k8s.Update(context.Background(), cv); err != nil {
		t.Fatal(err)
	}
	waitProviderValid(t, ns, "gitlab")
	create(t, gitlabCredential(ns, "custom", "700"))
	rc := waitReason(t, gitlabCredential(ns, "custom", "700"), v1alpha1.ReasonSynced)
	if rc.Status.Vendor != name || rc.Status.Name != "custom" {
		t.Errorf("custom vendor's credential: vendor %q, name %q", rc.Status.Vendor, rc.Status.Name)
	}
	get(g, cv)
	if c := meta.FindStatusCondition(cv.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("fixed CredentialVendor: Ready %+v", c)
	}
	if s := kstatus(t, cv, "CredentialVendor"); s != status.CurrentStatus {
		t.Errorf("kstatus of a definition that compiles: %s, want Current", s)
	}

	// A definition whose mapping costs more than its costLimit: the key
	// check (no mapping) passes, the read fails, saying so.
	costly := &v1alpha1.CredentialVendor{ObjectMeta: metav1.ObjectMeta{Name: "costly-" + ns}, Spec: *spec.DeepCopy()}
	costly.Spec.Fields.Name = "item.name"
	costly.Spec.Fields.Description = "[1, 2, 3, 4, 5, 6, 7, 8].map(x, [1, 2, 3, 4, 5, 6, 7, 8].map(y, x * y)).size() > 0 ? item.name : ''"
	limit := int64(50)
	costly.Spec.CostLimit = &limit
	create(t, costly)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), costly) })
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "costly"},
		Spec: v1alpha1.CredentialProviderSpec{
			HTTP: &v1alpha1.HTTPProvider{Definition: costly.Name, URL: srv.URL,
				Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "gitlab-api"}}},
			CABundle: srv.CABundle(),
		},
	})
	waitProviderValid(t, ns, "costly")
	create(t, newCredential(ns, "costly", "700", func(rc *v1alpha1.RemoteCredential) { rc.Spec.ProviderRef.Name = "costly" }))
	rc = waitReason(t, newCredential(ns, "costly", "700"), v1alpha1.ReasonInvalidResponse)
	if msg := condition(rc, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "fields.description exceeded the definition's CEL cost limit") {
		t.Errorf("over the cost limit: %q", msg)
	}
}

// customGitLab is a CredentialVendor of GitLab's personal access tokens,
// as a cluster admin would write it.
const customGitLab = `
auth: {type: Bearer}
keyCheck: {paths: [/api/v4/personal_access_tokens/self]}
get: {paths: ['/api/v4/personal_access_tokens/{id}']}
fields:
  id: string(item.id)
  name: item.name
  createdAt: item.created_at
  lastUsedAt: item.last_used_at
  active: '!item.revoked'
errors: {message: 'body.message'}
`

// A list-only definition (no get): the provider's credentials due
// together are read from one list, shared, and a credential the list does
// not hold is NotFound.
func TestListOnlyDefinition(t *testing.T) {
	t.Parallel()
	srv := gitlabtest.NewServer(gitlabKey)
	defer srv.Close()
	for i := range 5 {
		srv.Put(gitlabtest.Sample(int64(800+i), "listed"))
	}
	srv.SetMaxPerPage(2)
	ns := newNamespace(t)
	name := "listonly-" + ns
	spec := v1alpha1.CredentialVendorSpec{}
	if err := yaml.UnmarshalStrict([]byte(customGitLab), &spec); err != nil {
		t.Fatal(err)
	}
	spec.Get = nil
	spec.List = &v1alpha1.VendorListCall{Paths: []string{"/api/v4/personal_access_tokens"}, Pagination: v1alpha1.VendorPagination{Type: v1alpha1.PaginationLink}}
	cv := &v1alpha1.CredentialVendor{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	create(t, cv)
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), cv) })
	gitlabProvider(t, ns, name, srv, nil)
	waitProviderValid(t, ns, "gitlab")
	for i := range 5 {
		create(t, gitlabCredential(ns, fmt.Sprintf("listed-%d", i), fmt.Sprint(800+i), func(rc *v1alpha1.RemoteCredential) {
			rc.Spec.RefreshInterval = &metav1.Duration{Duration: time.Hour}
		}))
	}
	create(t, gitlabCredential(ns, "gone", "899"))
	for i := range 5 {
		waitReason(t, gitlabCredential(ns, fmt.Sprintf("listed-%d", i), ""), v1alpha1.ReasonSynced)
	}
	rc := waitReason(t, gitlabCredential(ns, "gone", ""), v1alpha1.ReasonNotFound)
	if msg := condition(rc, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "lists no credential 899") {
		t.Errorf("not listed: %q", msg)
	}
	// 3 pages a list; six credentials created at once share few lists,
	// never one each, and no GET is made.
	if n := srv.ListCalls(); n > 9 || n%3 != 0 {
		t.Errorf("%d list calls for 6 credentials read together (3 pages a list): want one or two lists, never six", n)
	}
	for i := range 5 {
		if n := srv.Calls(fmt.Sprint(800 + i)); n != 0 {
			t.Errorf("token %d: %d GETs of a list-only vendor", 800+i, n)
		}
	}
}
