package controllers_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
)

// plainidProviderAt creates the Secret "plainid-admin" and the provider
// "plainid" in ns, reaching the PlainID fake at url (its URL, or a spelling
// of it); mutate edits the provider's spec.
func plainidProviderAt(t *testing.T, ns string, fake *plainidtest.Server, url string, mutate ...func(*v1alpha1.CredentialProviderSpec)) {
	t.Helper()
	create(t, testenv.ProviderSecret(ns, "plainid-admin", map[string]string{"clientId": plainClientID, "clientSecret": plainSecret}))
	spec := v1alpha1.CredentialProviderSpec{
		PlainID:  &v1alpha1.PlainIDProvider{URL: url, ClientSecretRef: v1alpha1.SecretReference{Name: "plainid-admin"}},
		CABundle: fake.CABundle(),
	}
	for _, m := range mutate {
		m(&spec)
	}
	create(t, &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "plainid"}, Spec: spec})
}

func TestPlainIDOneTokenPerProvider(t *testing.T) {
	t.Parallel()
	// A fake of this test's own, so token requests are counted exactly.
	fake := plainidtest.NewServer(plainClientID, plainSecret)
	defer fake.Close()
	ns := newNamespace(t)
	plainidProviderAt(t, ns, fake, fake.URL+"/")
	var rcs []*v1alpha1.RemoteCredential
	for i := range 20 {
		id := fmt.Sprintf("PVNTYSTFE2L9R4OJ%04d", i)
		c := plainidtest.Sample(id, fmt.Sprintf("ci-%d", i))
		secret := vendorCanary
		c.Secret = &secret
		if i == 0 {
			c.OwnerID, c.OwnerType, c.Permission, c.TokenDuration = "-", "TENANT", "VIEWER", "PT60M"
		}
		fake.Put(c)
		rcs = append(rcs, createRC(t, newCredential(ns, fmt.Sprintf("ci-%d", i), id, func(rc *v1alpha1.RemoteCredential) {
			rc.Spec.ProviderRef.Name = "plainid"
		})))
	}
	for _, rc := range rcs {
		waitReason(t, rc, v1alpha1.ReasonSynced)
	}
	g := gomega.NewWithT(t)
	g.Expect(fake.TokenRequests()).To(gomega.Equal(1), "one token shared by 20 credentials")

	tenant := waitReason(t, rcs[0], v1alpha1.ReasonSynced)
	g.Expect(tenant.Status.Vendor).To(gomega.Equal("plainid"))
	g.Expect(tenant.Status.Name).To(gomega.Equal("ci-0"))
	g.Expect(tenant.Status.TokenDuration).To(gomega.Equal("PT60M"))
	g.Expect(tenant.Status.PlainID).To(gomega.Equal(&v1alpha1.PlainIDCredentialStatus{OwnerType: "TENANT", Permission: "VIEWER"}))
	env := waitReason(t, rcs[1], v1alpha1.ReasonSynced)
	g.Expect(env.Status.TokenDuration).To(gomega.Equal("PT1440M"))
	g.Expect(env.Status.PlainID).To(gomega.Equal(&v1alpha1.PlainIDCredentialStatus{
		OwnerID: "b0e1f961-2061-4f83-8392-b5aa19fed0c1", OwnerType: "ENVIRONMENT", Permission: "ADMIN"}))
	g.Expect(tenant.Status.ExpiresAt).To(gomega.BeNil())
	g.Expect(condition(tenant, v1alpha1.ConditionExpiring)).To(gomega.BeNil())

	// The token expires early: the next syncs get exactly one new token.
	fake.ExpireTokens()
	for i, rc := range rcs[:5] {
		requestSync(t, rc, fmt.Sprintf("expired-%d", i))
	}
	for _, rc := range rcs[:5] {
		g.Eventually(func(g gomega.Gomega) {
			get(g, rc)
			g.Expect(rc.Status.LastHandledSyncRequest).To(gomega.HavePrefix("expired-"))
			g.Expect(condition(rc, v1alpha1.ConditionReady).Reason).To(gomega.Equal(v1alpha1.ReasonSynced))
		}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
	}
	g.Expect(fake.TokenRequests()).To(gomega.Equal(2), "exactly one new token after the 401")

	haystack := objectJSON(t, rcs) + logs.String()
	for _, s := range append(fake.IssuedTokens(), vendorCanary, plainSecret) {
		g.Expect(haystack).NotTo(gomega.ContainSubstring(s))
	}
}

func TestElasticOwnAndUserScopedKeys(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	elasticProvider(t, ns, "ece")
	own, other := newVendorID(), newVendorID()
	exp := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	k := elastictest.Sample(own, elasticUser, "ci deploy key")
	k.ExpirationDate = &exp
	canary := vendorCanary
	k.Key = &canary
	elastic.Put(k)
	elastic.Put(elastictest.Sample(other, "u-someone-else", "someone's key"))

	rc := waitReason(t, createRC(t, newCredential(ns, "own", own, func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.ProviderRef.Name = "ece"
	})), v1alpha1.ReasonSynced)
	g := gomega.NewWithT(t)
	g.Expect(rc.Status.Vendor).To(gomega.Equal("elasticCloud"))
	g.Expect(rc.Status.Description).To(gomega.Equal("ci deploy key"))
	g.Expect(rc.Status.ExpiresAt.UTC()).To(gomega.Equal(exp))
	g.Expect(rc.Status.CreatedAt.UTC()).To(gomega.Equal(time.Date(2025, 1, 1, 9, 30, 12, 0, time.UTC)))
	g.Expect(rc.Status.ElasticCloud).To(gomega.Equal(&v1alpha1.ElasticCloudCredentialStatus{UserID: elasticUser, OrganizationID: "1436802349"}))
	g.Expect(condition(rc, v1alpha1.ConditionExpiring).Status).To(gomega.Equal(metav1.ConditionFalse))

	// Someone else's key: only through the ECE user-scoped path.
	notMine := waitReason(t, createRC(t, newCredential(ns, "not-mine", other, func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.ProviderRef.Name = "ece"
	})), v1alpha1.ReasonNotFound)
	g.Expect(condition(notMine, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("api_keys.key_not_found"))
	scoped := waitReason(t, createRC(t, newCredential(ns, "scoped", other, func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.ProviderRef.Name = "ece"
		rc.Spec.UserID = "u-someone-else"
	})), v1alpha1.ReasonSynced)
	g.Expect(scoped.Status.ElasticCloud.UserID).To(gomega.Equal("u-someone-else"))
	g.Expect(elastic.PathCalls("/api/v1/users/u-someone-else/auth/keys/" + other)).To(gomega.BeNumerically(">=", 1))
	g.Expect(objectJSON(t, rc) + logs.String()).NotTo(gomega.ContainSubstring(vendorCanary))
}

// requestSync sets the sync annotation, as a user would with kubectl annotate.
func requestSync(t *testing.T, rc *v1alpha1.RemoteCredential, value string) {
	t.Helper()
	g := gomega.NewWithT(t)
	get(g, rc)
	patch := client.MergeFrom(rc.DeepCopy())
	if rc.Annotations == nil {
		rc.Annotations = map[string]string{}
	}
	rc.Annotations[v1alpha1.SyncRequestedAtAnnotation] = value
	g.Expect(k8s.Patch(context.Background(), rc, patch)).To(gomega.Succeed())
}
