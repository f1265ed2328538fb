package controllers_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// Two RemoteCredentials name one credential, one refreshing every 10s and
// one hourly: the 10s one sees a change at the vendor within its interval
// (it never shows the hourly one's older answer), reconciles no more often
// than its schedule asks, and both read through one store.
func TestMixedIntervalsShareReads(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	c := tinestest.Sample(id, "shared")
	tinesFake.Put(c)
	slow := waitReason(t, createRC(t, newCredential(ns, "hourly", sid)), v1alpha1.ReasonSynced)
	fast := waitReason(t, createRC(t, newCredential(ns, "fast", sid, func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.RefreshInterval = &metav1.Duration{Duration: 10 * time.Second}
	})), v1alpha1.ReasonSynced)
	start := clk.Now()
	reconciles := func() int { return logLines("reconciled", `"RemoteCredential": {"name":"fast","namespace":"`+ns+`"}`) }
	before := reconciles()

	c.Name = "renamed"
	tinesFake.Put(c)
	g := gomega.NewWithT(t)
	seen := stepUntil(t, clk, time.Second, 11*time.Second, func(g gomega.Gomega) {
		get(g, fast)
		g.Expect(fast.Status.Name).To(gomega.Equal("renamed"), "the 10s credential did not see the change within its interval (10s ±10%)")
	})
	t.Logf("the 10s credential saw the change after %s", seen.Sub(start))

	// Over 30s: three refreshes at 10s ±10%, each one reconcile.
	window := 30 * time.Second
	stepFor(t, clk, time.Second, start.Add(window).Sub(clk.Now()), func(gomega.Gomega) {})
	time.Sleep(time.Second) // the reconciles of the last step's wake-ups
	g.Expect(reconciles()-before).To(gomega.BeNumerically("<=", 4), "reconciles of the 10s credential in %s", window)
	g.Expect(reconciles()-before).To(gomega.BeNumerically(">=", 2), "the 10s credential was not refreshed")
	get(g, slow)
	g.Expect(slow.Status.Name).To(gomega.Equal("shared"), "the hourly credential was read again before its interval")
}

// logLines counts the manager's log lines with message msg that contain
// every one of parts.
func logLines(msg string, parts ...string) int {
	n := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if !strings.Contains(line, "\t"+msg+"\t") {
			continue
		}
		all := true
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

// Elastic Cloud deletes a key once it expires: the credential, Expired at
// expiresAt, stays Expired (Stalled) when its next refresh gets a 404,
// keeps its metadata and says the vendor no longer lists it. No NotFound
// ever shows.
func TestElasticExpiredKeyStaysExpired(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	// A fake of this test's own: it deletes expired keys, as ESS does.
	fake := elastictest.NewServer()
	defer fake.Close()
	fake.Now = clk.Now
	fake.AddAPIKey(elasticKey, elasticUser)
	fake.SetDeleteExpired(true)
	create(t, apiKeySecret(ns, "ece-api", elasticKey))
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ece"},
		Spec: v1alpha1.CredentialProviderSpec{
			ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: fake.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "ece-api"}},
			CABundle:     fake.CABundle(),
		},
	})
	waitProviderValid(t, ns, "ece")
	id := newVendorID()
	exp := clk.Now().Add(5 * time.Second).Truncate(time.Second)
	k := elastictest.Sample(id, elasticUser, "short-lived deploy key")
	k.ExpirationDate = &exp
	fake.Put(k)

	rc := waitReason(t, createRC(t, newCredential(ns, "short-lived", id, func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.ProviderRef.Name = "ece"
		rc.Spec.RefreshInterval = &metav1.Duration{Duration: 10 * time.Second}
	})), v1alpha1.ReasonSynced)
	// The clock stops a second after expiry, well before the 10s refresh.
	expired := stepUntil(t, clk, 500*time.Millisecond, exp.Add(time.Second).Sub(clk.Now()), func(g gomega.Gomega) {
		hasReason(g, rc, v1alpha1.ReasonExpired)
	})
	g := gomega.NewWithT(t)
	g.Expect(expired).To(gomega.BeTemporally(">=", exp), "Expired before expiresAt")
	g.Expect(fake.Calls(id)).To(gomega.Equal(1), "expiry needs no vendor call")

	stepUntil(t, clk, time.Second, 20*time.Second, func(g gomega.Gomega) {
		get(g, rc)
		g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("the vendor no longer lists it"))
	})
	g.Expect(fake.Calls(id)).To(gomega.BeNumerically(">=", 2), "the refresh after expiry read the vendor")
	g.Expect(readyReason(rc.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonExpired))
	g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("api_keys.key_not_found"))
	g.Expect(condition(rc, v1alpha1.ConditionStalled).Reason).To(gomega.Equal(v1alpha1.ReasonExpired))
	g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.FailedStatus))
	g.Expect(rc.Status.Description).To(gomega.Equal("short-lived deploy key"), "the last metadata is kept")
	g.Expect(rc.Status.ExpiresAt.Time).To(gomega.BeTemporally("==", exp))
	g.Expect(eventList(t, rc)).NotTo(gomega.ContainElement("Warning NotFound"))

	// Pointed at a key the vendor does not have: NotFound. The old key's
	// metadata, its past expiry above all, is not taken for the new one's.
	edited := rc.DeepCopy()
	edited.Spec.ID = newVendorID()
	g.Expect(k8s.Patch(context.Background(), edited, client.MergeFrom(rc))).To(gomega.Succeed())
	rc = waitReason(t, edited, v1alpha1.ReasonNotFound)
	g.Expect(rc.Status.ExpiresAt).To(gomega.BeNil())
	g.Expect(rc.Status.Description).To(gomega.BeEmpty())
	g.Expect(condition(rc, v1alpha1.ConditionExpiring)).To(gomega.BeNil())
}
