package controllers_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// revokedKey is a provider API key the vendor refuses: a secret as well.
const revokedKey = "revoked-key-canary-77aa"

// tinesCredentialsAt puts n credentials at fake and creates their
// RemoteCredentials in ns; it returns the vendor IDs.
func tinesCredentialsAt(t *testing.T, fake *tinestest.Server, ns string, n int) ([]string, []*v1alpha1.RemoteCredential) {
	t.Helper()
	ids := make([]string, n)
	rcs := make([]*v1alpha1.RemoteCredential, n)
	for i := range n {
		id := fakeID()
		ids[i] = strconv.FormatInt(id, 10)
		fake.Put(tinestest.Sample(id, fmt.Sprintf("cred-%d", i)))
		rcs[i] = createRC(t, newCredential(ns, fmt.Sprintf("cred-%d", i), ids[i]))
	}
	return ids, rcs
}

// tinesProviderAt creates a Secret holding key and a CredentialProvider
// "tines" of fake in ns; mutate edits its spec first.
func tinesProviderAt(t *testing.T, ns string, fake *tinestest.Server, key string, mutate ...func(*v1alpha1.CredentialProviderSpec)) {
	t.Helper()
	create(t, apiKeySecret(ns, "tines-api", key))
	spec := tinesSpec("tines-api")
	spec.Tines.URL, spec.CABundle = fake.URL, fake.CABundle()
	for _, m := range mutate {
		m(&spec)
	}
	create(t, &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}, Spec: spec})
}

// syncedFleet starts a Tines fake of the test's own (every call it gets is
// the test's), a Valid provider "tines" of it in a new namespace, and n
// credentials, and waits until they are Synced.
func syncedFleet(t *testing.T, n int) (*tinestest.Server, string, []string, []*v1alpha1.RemoteCredential) {
	t.Helper()
	fake := tinestest.NewServer(tinesKey)
	t.Cleanup(fake.Close)
	ns := newNamespace(t)
	tinesProviderAt(t, ns, fake, tinesKey)
	waitProviderValid(t, ns, "tines")
	ids, rcs := tinesCredentialsAt(t, fake, ns, n)
	for _, rc := range rcs {
		waitReason(t, rc, v1alpha1.ReasonSynced)
	}
	return fake, ns, ids, rcs
}

// A provider whose API key the vendor refuses is Unauthorized (Stalled)
// and costs one vendor call (its key check) per backoff step, however many
// credentials use it: they show ProviderNotReady without calling the
// vendor. Rotating the Secret to a good key brings them all back within
// two minutes.
func TestRevokedThenRotatedProviderKey(t *testing.T) {
	t.Parallel()
	// A fake of this test's own, so that every call it gets is counted.
	fake := tinestest.NewServer(tinesKey)
	defer fake.Close()
	ns, clk := clockedManager(t)
	tinesProviderAt(t, ns, fake, revokedKey)
	start := clk.Now()
	const n = 10
	_, rcs := tinesCredentialsAt(t, fake, ns, n)
	g := gomega.NewWithT(t)
	for _, rc := range rcs {
		// ProviderNotReady comes first with "not found" while the provider
		// is not in the cache yet; then with the vendor's refusal.
		g.Eventually(func(g gomega.Gomega) {
			get(g, rc)
			ready, reconciling := condition(rc, v1alpha1.ConditionReady), condition(rc, v1alpha1.ConditionReconciling)
			g.Expect(ready).NotTo(gomega.BeNil())
			g.Expect(reconciling).NotTo(gomega.BeNil())
			g.Expect(ready.Reason).To(gomega.Equal(v1alpha1.ReasonProviderNotReady))
			g.Expect(ready.Message).To(gomega.ContainSubstring("refused the provider's credentials"))
			g.Expect(reconciling.Reason).To(gomega.Equal(v1alpha1.ReasonProviderNotReady))
		}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
	}
	provider := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}}
	g.Eventually(func(g gomega.Gomega) {
		get(g, provider)
		g.Expect(readyReason(provider.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonUnauthorized))
		g.Expect(kstatus(t, provider, "CredentialProvider")).To(gomega.Equal(status.FailedStatus))
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())

	// Over 20s the backoff steps are 5s, 10s (±10%): the first check and
	// at most two more, whatever n is, and no credential read.
	window := 20 * time.Second
	stepFor(t, clk, time.Second, start.Add(window).Sub(clk.Now()), func(g gomega.Gomega) {
		g.Expect(fake.TotalCalls()).To(gomega.BeNumerically("<=", 3), "vendor calls in %s", window)
	})
	g.Expect(fake.ListCalls()).To(gomega.Equal(fake.TotalCalls()), "a credential of a refused provider was read")
	t.Logf("%d credentials of a provider with a revoked key: %d vendor calls in %s", n, fake.TotalCalls(), window)

	// Rotate the key: the provider reads its Secret every minute.
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines-api"}}
	get(g, secret)
	secret.Data["apiKey"] = []byte(tinesKey)
	g.Expect(k8s.Update(context.Background(), secret)).To(gomega.Succeed())
	rotated := clk.Now()
	stepUntil(t, clk, 2*time.Second, 2*time.Minute, func(g gomega.Gomega) {
		for _, rc := range rcs {
			hasReason(g, rc, v1alpha1.ReasonSynced)
		}
	})
	t.Logf("rotated Secret took effect for all %d credentials after %s", n, clk.Since(rotated))
	g.Expect(clk.Since(rotated)).To(gomega.BeNumerically("<=", 2*time.Minute))
	g.Eventually(func() []string { return eventList(t, provider) }).WithTimeout(eventually).WithPolling(poll).
		Should(gomega.ContainElements("Warning Unauthorized", "Normal Recovered"))
}

// A key revoked while its credentials are synced: the first read that
// gets the 401 makes the provider check its key, which the vendor refuses:
// the provider turns Unauthorized and every credential ProviderNotReady,
// the others without calling the vendor.
func TestKeyRevokedWhileSynced(t *testing.T) {
	t.Parallel()
	fake, ns, ids, rcs := syncedFleet(t, 5)
	fake.SetAPIKey("another-key-entirely")
	reads := fake.TotalCalls() - fake.ListCalls()
	requestSync(t, rcs[0], "after-revocation")
	for _, rc := range rcs {
		waitReason(t, rc, v1alpha1.ReasonProviderNotReady)
	}
	g := gomega.NewWithT(t)
	provider := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}}
	get(g, provider)
	g.Expect(readyReason(provider.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonUnauthorized))
	g.Expect(fake.TotalCalls()-fake.ListCalls()-reads).To(gomega.Equal(1), "credential reads after the revocation")
	g.Expect(fake.Calls(ids[0])).To(gomega.Equal(2))
}

// A provider deleted under synced credentials: they show ProviderNotReady
// at once (not at their next hourly refresh), without a vendor call, and
// sync again when it is created again.
func TestProviderDeletedWhileSynced(t *testing.T) {
	t.Parallel()
	fake, ns, ids, rcs := syncedFleet(t, 3)
	g := gomega.NewWithT(t)
	provider := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}}
	get(g, provider)
	g.Expect(k8s.Delete(context.Background(), provider)).To(gomega.Succeed())
	reads := fake.TotalCalls() - fake.ListCalls()
	for _, rc := range rcs {
		rc := waitReason(t, rc, v1alpha1.ReasonProviderNotReady)
		g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("not found"))
	}
	g.Expect(fake.TotalCalls()-fake.ListCalls()).To(gomega.Equal(reads), "credential reads after the deletion")

	create(t, &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}, Spec: provider.Spec})
	for _, rc := range rcs {
		waitReason(t, rc, v1alpha1.ReasonSynced)
	}
	g.Expect(fake.Calls(ids[0])).To(gomega.Equal(2), "reads of a credential: before and after the provider came back")
}

// A 429 pauses the whole provider until Retry-After, not just the
// credential that got it.
func TestRateLimitPausesWholeProvider(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	fake := clockedTines(t, clk)
	tinesProviderAt(t, ns, fake, tinesKey)
	waitProviderValid(t, ns, "tines")
	ids, rcs := tinesCredentialsAt(t, fake, ns, 5)
	for _, rc := range rcs {
		waitReason(t, rc, v1alpha1.ReasonSynced)
	}
	calls := func() int {
		n := 0
		for _, id := range ids {
			n += fake.Calls(id)
		}
		return n
	}
	before := calls()

	fake.FailNext(ids[0], vendortest.RateLimited("8"))
	requestSync(t, rcs[0], "1")
	waitReason(t, rcs[0], v1alpha1.ReasonRateLimited)
	// The pause runs from the 429 itself.
	times := fake.CallTimes(ids[0])
	limited := times[len(times)-1]
	for i, rc := range rcs[1:] {
		requestSync(t, rc, strconv.Itoa(i))
	}
	g := gomega.NewWithT(t)
	stepFor(t, clk, 500*time.Millisecond, limited.Add(7*time.Second).Sub(clk.Now()), func(g gomega.Gomega) {
		g.Expect(calls()).To(gomega.Equal(before+1), "a credential of the rate-limited provider called the vendor before Retry-After")
	})
	stepUntil(t, clk, 500*time.Millisecond, time.Minute, func(g gomega.Gomega) {
		for _, rc := range rcs {
			get(g, rc)
			g.Expect(rc.Status.LastHandledSyncRequest).To(gomega.Equal(rc.Annotations[v1alpha1.SyncRequestedAtAnnotation]))
			g.Expect(readyReason(rc.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonSynced))
		}
	})
	for _, id := range ids {
		times := fake.CallTimes(id)
		last := times[len(times)-1]
		g.Expect(last).To(gomega.BeTemporally(">=", limited.Add(7*time.Second)), "credential %s called %s after the 429", id, last.Sub(limited))
	}
}

// The request budget of spec.rateLimit is shared by the provider's
// credentials: 20 of them at 60/min with a burst of 5 take about 15s.
func TestProviderRateLimitBudget(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	fake := clockedTines(t, clk)
	tinesProviderAt(t, ns, fake, tinesKey, func(spec *v1alpha1.CredentialProviderSpec) {
		spec.RateLimit = &v1alpha1.RateLimit{RequestsPerMinute: 60, Burst: 5}
	})
	ids, _ := tinesCredentialsAt(t, fake, ns, 20)
	stepUntil(t, clk, 500*time.Millisecond, time.Minute, func(g gomega.Gomega) {
		list := &v1alpha1.RemoteCredentialList{}
		g.Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(gomega.Succeed())
		g.Expect(list.Items).To(gomega.HaveLen(20))
		for i := range list.Items {
			rc := &list.Items[i]
			g.Expect(readyReason(rc.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonSynced), "%s", rc.Name)
			g.Expect(rc.Status.ObservedGeneration).To(gomega.Equal(rc.Generation))
		}
	})
	var first, last time.Time
	for _, id := range ids {
		for _, at := range fake.CallTimes(id) {
			if first.IsZero() || at.Before(first) {
				first = at
			}
			if at.After(last) {
				last = at
			}
		}
	}
	g := gomega.NewWithT(t)
	g.Expect(fake.TotalCalls()-fake.ListCalls()).To(gomega.Equal(20), "one call per credential")
	// 5 at once, then one a second: the 20th no sooner than 15s after the first.
	g.Expect(last.Sub(first)).To(gomega.BeNumerically(">=", 14*time.Second), "20 calls within %s", last.Sub(first))
}

// Status patches that fail (a conflict, then a server error) lose nothing:
// the operator fetches again and writes what the vendor says by then, and
// the first-sync event is emitted once, after the write that succeeded.
func TestStatusPatchFailuresLoseNothing(t *testing.T) {
	t.Parallel()
	ns := fmt.Sprintf("%s%d", apiFaultPrefix, nsCounter.Add(1))
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	clk := clockedManagerIn(t, ns)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	c := tinestest.Sample(id, "first-name")
	tinesFake.Put(c)
	rc := createRC(t, newCredential(ns, "contended", sid))
	g := gomega.NewWithT(t)
	// The first fetch's write fails; the vendor's answer changes meanwhile.
	g.Eventually(func() int { return tinesFake.Calls(sid) }).WithTimeout(eventually).WithPolling(poll).Should(gomega.BeNumerically(">=", 1))
	c.Name = "second-name"
	tinesFake.Put(c)

	// Each failed write is retried after a backoff step (5s, then 10s).
	stepUntil(t, clk, time.Second, time.Minute, func(g gomega.Gomega) {
		hasReason(g, rc, v1alpha1.ReasonSynced)
	})
	g.Expect(rc.Status.Name).To(gomega.Equal("second-name"), "the status holds the vendor's latest answer")
	g.Expect(tinesFake.Calls(sid)).To(gomega.Equal(len(apiFaultSequence)+1), "one fetch per write attempt")
	waitEvents(t, rc, []string{"Normal Synced"})
}

// RemoteCredentials naming the same credential of the same provider share
// one vendor read per refresh.
func TestSameCredentialReadOncePerRefresh(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	tinesFake.Put(tinestest.Sample(id, "shared"))
	var rcs []*v1alpha1.RemoteCredential
	for i := range 3 {
		rcs = append(rcs, createRC(t, newCredential(ns, fmt.Sprintf("team-%d", i), sid, func(rc *v1alpha1.RemoteCredential) {
			rc.Spec.RefreshInterval = &metav1.Duration{Duration: 10 * time.Second}
		})))
	}
	for _, rc := range rcs {
		waitReason(t, rc, v1alpha1.ReasonSynced)
	}
	first := tinesFake.Calls(sid)
	g := gomega.NewWithT(t)
	g.Expect(first).To(gomega.BeNumerically("<=", 3))
	// Two refreshes (at 10s ±10% each) in 21s: one read each.
	stepFor(t, clk, time.Second, 21*time.Second, func(g gomega.Gomega) {
		g.Expect(tinesFake.Calls(sid)-first).To(gomega.BeNumerically("<=", 2), "reads of a credential named by 3 RemoteCredentials")
	})
	g.Consistently(func() int { return tinesFake.Calls(sid) - first }).WithTimeout(time.Second).WithPolling(poll).
		Should(gomega.BeNumerically("<=", 2), "reads of a credential named by 3 RemoteCredentials")
	g.Expect(tinesFake.Calls(sid)-first).To(gomega.BeNumerically(">=", 1), "the refreshes happened")
	for _, rc := range rcs {
		get(g, rc)
		g.Expect(rc.Status.Name).To(gomega.Equal("shared"))
	}
}
