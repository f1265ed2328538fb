package controllers_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/controllers"
	"github.com/credsync/credsync/internal/metrics"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Expiring and Expired move on the clock alone: the operator wakes at
// expiresAt − expiryWarning and at expiresAt without asking the vendor.
func TestExpiringThenExpiredWithoutVendorCalls(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	exp := clk.Now().Add(14 * time.Second).Truncate(time.Second)
	warnAt := exp.Add(-7 * time.Second)
	c := tinestest.Sample(id, "short-lived")
	c.ExpiresAt = &exp
	tinesFake.Put(c)

	rc := waitReason(t, createRC(t, newCredential(ns, "short-lived", sid, func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.ExpiryWarning = &metav1.Duration{Duration: 7 * time.Second}
	})), v1alpha1.ReasonSynced)
	g := gomega.NewWithT(t)
	g.Expect(clk.Now().Before(warnAt)).To(gomega.BeTrue(), "the first sync took too long for this test to mean anything")
	g.Expect(condition(rc, v1alpha1.ConditionExpiring).Status).To(gomega.Equal(metav1.ConditionFalse))
	calls := tinesFake.Calls(sid)
	g.Expect(calls).To(gomega.Equal(1))

	// Up to just before warnAt: not Expiring yet.
	stepFor(t, clk, time.Second, warnAt.Add(-100*time.Millisecond).Sub(clk.Now()), func(g gomega.Gomega) {
		get(g, rc)
		g.Expect(condition(rc, v1alpha1.ConditionExpiring).Status).To(gomega.Equal(metav1.ConditionFalse), "Expiring turned True early")
	})
	// The clock stops a second after warnAt: a later wake-up fails.
	flipped := stepUntil(t, clk, 100*time.Millisecond, warnAt.Add(time.Second).Sub(clk.Now()), func(g gomega.Gomega) {
		get(g, rc)
		g.Expect(condition(rc, v1alpha1.ConditionExpiring).Status).To(gomega.Equal(metav1.ConditionTrue))
	})
	g.Expect(flipped).To(gomega.BeTemporally(">=", warnAt), "Expiring turned True early")
	g.Expect(flipped).To(gomega.BeTemporally("<", warnAt.Add(5*time.Second)), "Expiring turned True late")
	g.Expect(readyReason(rc.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonSynced))
	g.Expect(condition(rc, v1alpha1.ConditionExpiring).Reason).To(gomega.Equal(v1alpha1.ReasonExpiresSoon))

	stepFor(t, clk, time.Second, exp.Add(-100*time.Millisecond).Sub(clk.Now()), func(g gomega.Gomega) {
		get(g, rc)
		g.Expect(readyReason(rc.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonSynced), "Expired before expiresAt")
	})
	expired := stepUntil(t, clk, 100*time.Millisecond, exp.Add(time.Second).Sub(clk.Now()), func(g gomega.Gomega) {
		hasReason(g, rc, v1alpha1.ReasonExpired)
	})
	g.Expect(expired).To(gomega.BeTemporally(">=", exp), "Expired before expiresAt")
	g.Expect(expired).To(gomega.BeTemporally("<", exp.Add(5*time.Second)), "Expired late")
	g.Expect(condition(rc, v1alpha1.ConditionStalled).Reason).To(gomega.Equal(v1alpha1.ReasonExpired))
	g.Expect(tinesFake.Calls(sid)).To(gomega.Equal(calls), "the vendor was called between the sync and expiry")

	waitEvents(t, rc, []string{"Normal Synced", "Warning Expiring", "Warning Expired"})
}

// Events mark transitions: the first sync, a metadata change (naming the
// fields), a failure, a recovery. (A refresh that finds nothing new emits
// none: TestNoOpRefreshWritesNothing.)
func TestEventsOnTransitionsOnly(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	exp := time.Now().Add(400 * 24 * time.Hour)
	c := tinestest.Sample(id, "evented")
	c.ExpiresAt = &exp
	tinesFake.Put(c)
	rc := waitReason(t, createRC(t, newCredential(ns, "evented", sid)), v1alpha1.ReasonSynced)
	waitEvents(t, rc, []string{"Normal Synced"})
	g := gomega.NewWithT(t)

	c.Name, c.Description = "renamed", "now described"
	tinesFake.Put(c)
	requestSync(t, rc, "1")
	waitEvents(t, rc, []string{"Normal Synced", "Normal Synced"})
	g.Expect(eventNotes(t, rc)).To(gomega.ContainElement("vendor metadata changed: name, description"))

	tinesFake.Set(sid, vendortest.NotFound)
	requestSync(t, rc, "2")
	waitEvents(t, rc, []string{"Normal Synced", "Normal Synced", "Warning NotFound"})

	tinesFake.Clear(sid)
	requestSync(t, rc, "3")
	waitEvents(t, rc, []string{"Normal Synced", "Normal Synced", "Warning NotFound", "Normal Recovered"})
}

// Credential metrics come from the cache at scrape time: right values,
// the allow-listed label, and no series once the object is gone.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	tinesProvider(t, ns)
	id := fakeID()
	sid := strconv.FormatInt(id, 10)
	exp := time.Now().Add(10 * 24 * time.Hour).Truncate(time.Second)
	c := tinestest.Sample(id, "metered")
	c.ExpiresAt = &exp
	tinesFake.Put(c)
	start := time.Now().Truncate(time.Second)
	rc := waitReason(t, createRC(t, newCredential(ns, "metered", sid, func(rc *v1alpha1.RemoteCredential) {
		rc.Labels = map[string]string{metricsLabel: "payments", "other": "not-copied"}
		rc.Spec.RefreshInterval = &metav1.Duration{Duration: 30 * time.Minute}
	})), v1alpha1.ReasonSynced)

	g := gomega.NewWithT(t)
	want := map[string]string{"namespace": ns, "name": "metered", "vendor": "tines", "provider": ns + "/tines", metricsLabel: "payments"}
	vendorLabels := map[string]string{"vendor": "tines", "provider": ns + "/tines"}
	// The collector reads the manager's cache, which may lag the API
	// server by a moment: poll.
	g.Eventually(func(g gomega.Gomega) {
		families := scrape(t)
		series := func(name string) *dto.Metric { return findSeries(families, name, want) }
		g.Expect(series(metrics.CredentialReady)).NotTo(gomega.BeNil(), "ready series with labels %v", want)
		g.Expect(series(metrics.CredentialReady).GetGauge().GetValue()).To(gomega.Equal(1.0))
		g.Expect(labelValue(series(metrics.CredentialReady), "reason")).To(gomega.Equal(v1alpha1.ReasonSynced))
		g.Expect(labelValue(series(metrics.CredentialReady), "other")).To(gomega.BeEmpty())
		g.Expect(series(metrics.CredentialExpiration).GetGauge().GetValue()).To(gomega.Equal(float64(exp.Unix())))
		g.Expect(series(metrics.CredentialExpiring).GetGauge().GetValue()).To(gomega.Equal(1.0))
		g.Expect(series(metrics.CredentialRefreshInterval).GetGauge().GetValue()).To(gomega.Equal(1800.0))
		g.Expect(series(metrics.CredentialLastSync)).NotTo(gomega.BeNil())
		g.Expect(series(metrics.CredentialLastSync).GetGauge().GetValue()).To(gomega.And(
			gomega.BeNumerically(">=", float64(start.Unix())), gomega.BeNumerically("<=", float64(time.Now().Unix()))))
		read := findSeries(families, metrics.VendorRequests, map[string]string{"vendor": "tines", "provider": ns + "/tines", "operation": "read", "code": "200"})
		g.Expect(read.GetCounter().GetValue()).To(gomega.Equal(1.0), "the credential's one read")
		verify := findSeries(families, metrics.VendorRequests, map[string]string{"vendor": "tines", "provider": ns + "/tines", "operation": "verify", "code": "200"})
		g.Expect(verify.GetCounter().GetValue()).To(gomega.Equal(1.0), "the provider's one key check")
		g.Expect(findSeries(families, metrics.VendorRequestDuration, vendorLabels).GetHistogram().GetSampleCount()).To(gomega.BeNumerically(">=", 1))
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())

	// A failure shows in ready's value and reason, and in the request codes.
	tinesFake.Set(sid, vendortest.Forbidden)
	requestSync(t, rc, "1")
	waitReason(t, rc, v1alpha1.ReasonForbidden)
	g.Eventually(func(g gomega.Gomega) {
		families := scrape(t)
		ready := findSeries(families, metrics.CredentialReady, want)
		g.Expect(ready).NotTo(gomega.BeNil())
		g.Expect(ready.GetGauge().GetValue()).To(gomega.Equal(0.0))
		g.Expect(labelValue(ready, "reason")).To(gomega.Equal(v1alpha1.ReasonForbidden))
		g.Expect(findSeries(families, metrics.VendorRequests, map[string]string{"provider": ns + "/tines", "code": "403"})).NotTo(gomega.BeNil())
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())

	g.Expect(k8s.Delete(context.Background(), rc)).To(gomega.Succeed())
	g.Eventually(func() []string {
		var left []string
		for name, f := range scrape(t) {
			for _, m := range f.GetMetric() {
				if labelValue(m, "namespace") == ns {
					left = append(left, name)
				}
			}
		}
		return left
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.BeEmpty(), "series of a deleted credential")
}

// scrape reads the manager's metrics endpoint.
func scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	_, families, err := testenv.Scrape(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	return families
}

// metricsText is the manager's metrics endpoint as text.
func metricsText(t *testing.T) string {
	t.Helper()
	text, _, err := testenv.Scrape(metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// findSeries returns the series of family name that has all of labels.
func findSeries(families map[string]*dto.MetricFamily, name string, labels map[string]string) *dto.Metric {
	for _, m := range families[name].GetMetric() {
		match := true
		for k, v := range labels {
			match = match && labelValue(m, k) == v
		}
		if match {
			return m
		}
	}
	return nil
}

func labelValue(m *dto.Metric, name string) string { return testenv.LabelValue(m, name) }

// events returns the events.k8s.io Events about obj, oldest first.
func events(t *testing.T, obj client.Object) []eventsv1.Event {
	t.Helper()
	list := &eventsv1.EventList{}
	if err := k8s.List(context.Background(), list, client.InNamespace(obj.GetNamespace())); err != nil {
		t.Fatal(err)
	}
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.UID == obj.GetUID() {
			out = append(out, e)
		}
	}
	// Creation timestamps have one-second precision: order by event time.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].EventTime.Before(&out[j-1].EventTime); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// eventList is "Type Reason" per occurrence of each event about obj; an
// event that repeated (a series) counts each time.
func eventList(t *testing.T, obj client.Object) []string {
	t.Helper()
	var out []string
	for _, e := range events(t, obj) {
		if e.ReportingController != controllers.EventSource {
			t.Errorf("event %s reported by %q", e.Name, e.ReportingController)
		}
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		for range n {
			out = append(out, e.Type+" "+e.Reason)
		}
	}
	return out
}

func eventNotes(t *testing.T, obj client.Object) []string {
	t.Helper()
	var out []string
	for _, e := range events(t, obj) {
		out = append(out, e.Note)
	}
	return out
}

// waitEvents waits until exactly want (in order) were emitted about obj.
func waitEvents(t *testing.T, obj client.Object, want []string) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func() []string { return eventList(t, obj) }).
		WithTimeout(eventually).WithPolling(poll).Should(gomega.Equal(want))
}
