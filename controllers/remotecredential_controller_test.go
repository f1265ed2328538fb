package controllers_test

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

func TestTinesSyncedMapsStatus(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tinesProvider(t, ns)
	id := fakeID()
	exp := time.Now().Add(10 * 24 * time.Hour).UTC().Truncate(time.Second)
	folder := int64(9)
	c := tinestest.Sample(id, "github_token")
	c.Description, c.ExpiresAt, c.FolderID = "GitHub PAT", &exp, &folder
	c.Metadata = map[string]string{"client_secret": "metadata-canary-0d1f"}
	tinesFake.Put(c)

	rc := waitReason(t, createRC(t, newCredential(ns, "github", strconv.FormatInt(id, 10))), v1alpha1.ReasonSynced)
	g := gomega.NewWithT(t)
	st := rc.Status
	g.Expect(st.Vendor).To(gomega.Equal("tines"))
	g.Expect(st.Name).To(gomega.Equal("github_token"))
	g.Expect(st.Description).To(gomega.Equal("GitHub PAT"))
	g.Expect(st.CreatedAt.UTC()).To(gomega.Equal(time.Date(2021, 3, 26, 12, 34, 16, 0, time.UTC)))
	g.Expect(st.ExpiresAt.UTC()).To(gomega.Equal(exp))
	g.Expect(st.Tines).To(gomega.Equal(&v1alpha1.TinesCredentialStatus{
		Mode: "TEXT", TeamID: ptr(int64(2)), FolderID: &folder, ReadAccess: "TEAM",
		RestrictionType: "UNRESTRICTED", Slug: "github_token", OwnerEmail: "jane.doe@example.com",
	}))
	g.Expect(condition(rc, v1alpha1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionTrue))
	expiring := condition(rc, v1alpha1.ConditionExpiring)
	g.Expect(expiring).NotTo(gomega.BeNil())
	g.Expect(expiring.Status).To(gomega.Equal(metav1.ConditionTrue))
	g.Expect(expiring.Reason).To(gomega.Equal(v1alpha1.ReasonExpiresSoon))
	g.Expect(condition(rc, v1alpha1.ConditionStalled)).To(gomega.BeNil())
	g.Expect(condition(rc, v1alpha1.ConditionReconciling)).To(gomega.BeNil())
	for _, c := range rc.Status.Conditions {
		g.Expect(c.ObservedGeneration).To(gomega.Equal(rc.Generation), "condition %s", c.Type)
	}
	g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.CurrentStatus))
	g.Expect(objectJSON(t, rc)).NotTo(gomega.ContainSubstring("metadata-canary-0d1f"))
	g.Expect(logs.String()).NotTo(gomega.ContainSubstring("metadata-canary-0d1f"))
	g.Expect(logs.String()).NotTo(gomega.ContainSubstring(tinesKey))
}

func TestTinesNotExpiring(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tinesProvider(t, ns)
	far, never := fakeID(), fakeID()
	exp := time.Now().Add(365 * 24 * time.Hour)
	c := tinestest.Sample(far, "far")
	c.ExpiresAt = &exp
	tinesFake.Put(c)
	tinesFake.Put(tinestest.Sample(never, "never"))

	rc := waitReason(t, createRC(t, newCredential(ns, "far", strconv.FormatInt(far, 10))), v1alpha1.ReasonSynced)
	g := gomega.NewWithT(t)
	g.Expect(condition(rc, v1alpha1.ConditionExpiring).Status).To(gomega.Equal(metav1.ConditionFalse))
	g.Expect(condition(rc, v1alpha1.ConditionExpiring).Reason).To(gomega.Equal(v1alpha1.ReasonNotExpiring))

	rc = waitReason(t, createRC(t, newCredential(ns, "never", strconv.FormatInt(never, 10))), v1alpha1.ReasonSynced)
	g.Expect(rc.Status.ExpiresAt).To(gomega.BeNil())
	g.Expect(condition(rc, v1alpha1.ConditionExpiring)).To(gomega.BeNil(), "no Expiring condition without an expiry")
}

func TestTinesExpired(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tinesProvider(t, ns)
	id := fakeID()
	exp := time.Now().Add(-time.Hour)
	c := tinestest.Sample(id, "old")
	c.ExpiresAt = &exp
	tinesFake.Put(c)

	rc := waitReason(t, createRC(t, newCredential(ns, "old", strconv.FormatInt(id, 10))), v1alpha1.ReasonExpired)
	g := gomega.NewWithT(t)
	g.Expect(condition(rc, v1alpha1.ConditionReady).Status).To(gomega.Equal(metav1.ConditionFalse))
	g.Expect(condition(rc, v1alpha1.ConditionStalled).Reason).To(gomega.Equal(v1alpha1.ReasonExpired))
	g.Expect(condition(rc, v1alpha1.ConditionExpiring).Status).To(gomega.Equal(metav1.ConditionTrue))
	g.Expect(rc.Status.Name).To(gomega.Equal("old"), "metadata is still written for an expired credential")
	g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.FailedStatus))
}

func TestRateLimitedHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	fake := clockedTines(t, clk)
	tinesProviderAt(t, ns, fake, tinesKey)
	waitProviderValid(t, ns, "tines")
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	fake.Put(tinestest.Sample(id, "limited"))
	fake.FailNext(sid, vendortest.RateLimited("8"))

	rc := waitReason(t, createRC(t, newCredential(ns, "limited", sid)), v1alpha1.ReasonRateLimited)
	g := gomega.NewWithT(t)
	g.Expect(condition(rc, v1alpha1.ConditionReconciling).Reason).To(gomega.Equal(v1alpha1.ReasonRateLimited))
	g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("retry after 8s"))
	stepUntil(t, clk, 500*time.Millisecond, 20*time.Second, func(g gomega.Gomega) {
		hasReason(g, rc, v1alpha1.ReasonSynced)
	})
	times := fake.CallTimes(sid)
	g.Expect(times).To(gomega.HaveLen(2))
	g.Expect(times[1].Sub(times[0])).To(gomega.BeNumerically(">=", 8*time.Second), "retried before Retry-After")
}

func TestMissingProviderThenCreated(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	id := fakeID()
	tinesFake.Put(tinestest.Sample(id, "late"))
	rc := waitReason(t, createRC(t, newCredential(ns, "late", strconv.FormatInt(id, 10))), v1alpha1.ReasonProviderNotReady)
	g := gomega.NewWithT(t)
	g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("CredentialProvider " + ns + "/tines not found"))
	g.Expect(condition(rc, v1alpha1.ConditionReconciling).Reason).To(gomega.Equal(v1alpha1.ReasonProviderNotReady))
	g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.InProgressStatus))
	g.Expect(tinesFake.Calls(strconv.FormatInt(id, 10))).To(gomega.Equal(0))

	tinesProvider(t, ns)
	waitReason(t, rc, v1alpha1.ReasonSynced)
}

func TestMissingSecretThenCreated(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"},
		Spec:       tinesSpec("tines-api"),
	})
	id := fakeID()
	tinesFake.Put(tinestest.Sample(id, "secretless"))
	rc := waitReason(t, createRC(t, newCredential(ns, "secretless", strconv.FormatInt(id, 10))), v1alpha1.ReasonProviderNotReady)
	g := gomega.NewWithT(t)
	// A manager whose cache has not seen the provider yet first says it is
	// missing; its check (the Secret is missing) wakes the credential.
	g.Eventually(func(g gomega.Gomega) {
		get(g, rc)
		g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("Secret " + ns + "/tines-api not found"))
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
	provider := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}}
	g.Eventually(func(g gomega.Gomega) {
		get(g, provider)
		g.Expect(readyReason(provider.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonSecretNotFound))
	}).WithTimeout(eventually).Should(gomega.Succeed())

	create(t, apiKeySecret(ns, "tines-api", tinesKey))
	start := clk.Now()
	stepUntil(t, clk, time.Second, time.Minute, func(g gomega.Gomega) {
		hasReason(g, rc, v1alpha1.ReasonSynced)
	})
	t.Logf("picked up the Secret after %s", clk.Since(start))
	stepUntil(t, clk, time.Second, time.Minute, func(g gomega.Gomega) {
		get(g, provider)
		g.Expect(readyReason(provider.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonValid))
	})
	waitEvents(t, provider, []string{"Warning SecretNotFound", "Normal Recovered"})
	waitEvents(t, rc, []string{"Warning ProviderNotReady", "Normal Recovered"})
}

func TestCredentialProviderOfAnotherNamespace(t *testing.T) {
	t.Parallel()
	owner := newNamespace(t)
	tinesProvider(t, owner)
	other := newNamespace(t)
	id := fakeID()
	tinesFake.Put(tinestest.Sample(id, "borrowed"))
	rc := waitReason(t, createRC(t, newCredential(other, "borrowed", strconv.FormatInt(id, 10))), v1alpha1.ReasonProviderNotReady)
	g := gomega.NewWithT(t)
	g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("CredentialProvider " + other + "/tines not found"))
	g.Expect(tinesFake.Calls(strconv.FormatInt(id, 10))).To(gomega.Equal(0))
}

func TestClusterCredentialProvider(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	name := "tines-cluster-" + ns
	create(t, apiKeySecret(clusterNS, name, tinesKey))
	// A Secret of the same name in the credential's namespace must not be used.
	create(t, apiKeySecret(ns, "elsewhere-"+name, tinesKey))
	create(t, &v1alpha1.ClusterCredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       v1alpha1.ClusterCredentialProviderSpec{CredentialProviderSpec: tinesSpec(name)},
	})
	create(t, &v1alpha1.ClusterCredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Name: "elsewhere-" + name},
		Spec:       v1alpha1.ClusterCredentialProviderSpec{CredentialProviderSpec: tinesSpec("elsewhere-" + name)},
	})
	id := fakeID()
	tinesFake.Put(tinestest.Sample(id, "shared"))
	ref := func(provider string) func(*v1alpha1.RemoteCredential) {
		return func(rc *v1alpha1.RemoteCredential) {
			rc.Spec.ProviderRef = v1alpha1.ProviderReference{Name: provider, Kind: v1alpha1.ClusterCredentialProviderKind}
		}
	}
	rc := waitReason(t, createRC(t, newCredential(ns, "shared", strconv.FormatInt(id, 10), ref(name))), v1alpha1.ReasonSynced)
	g := gomega.NewWithT(t)
	g.Expect(rc.Status.Name).To(gomega.Equal("shared"))

	bad := waitReason(t, createRC(t, newCredential(ns, "elsewhere", strconv.FormatInt(id, 10), ref("elsewhere-"+name))), v1alpha1.ReasonProviderNotReady)
	g.Expect(condition(bad, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("Secret " + clusterNS + "/elsewhere-" + name + " not found"))

	cp := &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: name}}
	g.Eventually(func(g gomega.Gomega) {
		get(g, cp)
		g.Expect(readyReason(cp.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonValid))
		g.Expect(kstatus(t, cp, "ClusterCredentialProvider")).To(gomega.Equal(status.CurrentStatus))
	}).WithTimeout(eventually).Should(gomega.Succeed())
}

func TestSyncRequestedAnnotation(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	tinesFake.Put(tinestest.Sample(id, "before"))
	rc := waitReason(t, createRC(t, newCredential(ns, "annotated", sid)), v1alpha1.ReasonSynced)
	g := gomega.NewWithT(t)
	g.Expect(tinesFake.Calls(sid)).To(gomega.Equal(1))

	c := tinestest.Sample(id, "after")
	tinesFake.Put(c)
	patch := client.MergeFrom(rc.DeepCopy())
	rc.Annotations = map[string]string{v1alpha1.SyncRequestedAtAnnotation: "2026-11-23T12:00:00Z"}
	g.Expect(k8s.Patch(context.Background(), rc, patch)).To(gomega.Succeed())
	g.Eventually(func(g gomega.Gomega) {
		get(g, rc)
		g.Expect(rc.Status.LastHandledSyncRequest).To(gomega.Equal("2026-11-23T12:00:00Z"))
		g.Expect(rc.Status.Name).To(gomega.Equal("after"))
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
	g.Expect(tinesFake.Calls(sid)).To(gomega.Equal(2))
}

func TestNoOpRefreshWritesNothing(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	exp := clk.Now().Add(400 * 24 * time.Hour)
	c := tinestest.Sample(id, "steady")
	c.ExpiresAt = &exp
	tinesFake.Put(c)
	rc := waitReason(t, createRC(t, newCredential(ns, "steady", sid, func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.RefreshInterval = &metav1.Duration{Duration: 10 * time.Second}
	})), v1alpha1.ReasonSynced)
	calls, version := tinesFake.Calls(sid), rc.ResourceVersion

	g := gomega.NewWithT(t)
	stepUntil(t, clk, time.Second, 40*time.Second, func(g gomega.Gomega) {
		g.Expect(tinesFake.Calls(sid)).To(gomega.BeNumerically(">=", calls+2), "two refreshes happen")
	})
	time.Sleep(time.Second) // a status write of the second refresh would come now
	get(g, rc)
	g.Expect(rc.ResourceVersion).To(gomega.Equal(version), "a refresh that found nothing new wrote to the API server")
	g.Expect(eventList(t, rc)).To(gomega.Equal([]string{"Normal Synced"}), "a refresh that found nothing new emitted an event")
}

func TestUserIDOnTinesIsInvalidSpec(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tinesProvider(t, ns)
	id := fakeID()
	tinesFake.Put(tinestest.Sample(id, "user"))
	rc := waitReason(t, createRC(t, newCredential(ns, "user", strconv.FormatInt(id, 10), func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.UserID = "u-1"
	})), v1alpha1.ReasonInvalidSpec)
	g := gomega.NewWithT(t)
	g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("spec.userId"))
	g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.FailedStatus))
	g.Expect(tinesFake.Calls(strconv.FormatInt(id, 10))).To(gomega.Equal(0))
}

func TestNewObjectIsInProgressBeforeFirstSync(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	tinesFake.Put(tinestest.Sample(id, "slow"))
	tinesFake.FailNext(sid, vendortest.Latency(vendorTimeout*3/4))
	// tinesProvider waited until the operator knows the provider:
	// otherwise its first reconcile would write ProviderNotReady at once.
	rc := createRC(t, newCredential(ns, "slow", sid))
	g := gomega.NewWithT(t)
	// Read as unstructured, as Flux does: the typed struct would drop
	// the defaulted observedGeneration: 0.
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("RemoteCredential"))
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(rc), u)).To(gomega.Succeed())
	g.Expect(u.Object["status"]).To(gomega.Equal(map[string]any{"observedGeneration": int64(0)}))
	res, err := status.Compute(u)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(res.Status).To(gomega.Equal(status.InProgressStatus))
	waitReason(t, rc, v1alpha1.ReasonSynced)
}

func createRC(t *testing.T, rc *v1alpha1.RemoteCredential) *v1alpha1.RemoteCredential {
	t.Helper()
	create(t, rc)
	return rc
}

// readyReason is the Ready condition's reason, "" before there is one.
func readyReason(conds []metav1.Condition) string {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

func objectJSON(t *testing.T, obj any) string {
	t.Helper()
	b, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func ptr[T any](v T) *T { return &v }

func TestSecretValueWithTrailingNewline(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	// As `kubectl create secret generic --from-file` makes it.
	create(t, apiKeySecret(ns, "tines-api", tinesKey+"\n"))
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"},
		Spec:       tinesSpec("tines-api"),
	})
	id := fakeID()
	tinesFake.Put(tinestest.Sample(id, "from-file"))
	waitReason(t, createRC(t, newCredential(ns, "from-file", strconv.FormatInt(id, 10))), v1alpha1.ReasonSynced)
}
