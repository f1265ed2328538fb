package controllers_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// vendorText is what each vendor's own error says, kept in the condition
// message: its error code where it has one.
var vendorText = map[string]map[string]string{
	v1alpha1.VendorTines: {
		v1alpha1.ReasonNotFound: "Couldn't find UserCredential", v1alpha1.ReasonForbidden: "do not have permission",
		v1alpha1.ReasonUnauthorized: "sign in",
	},
	v1alpha1.VendorPlainID: {
		v1alpha1.ReasonNotFound: "clientNotFoundError", v1alpha1.ReasonForbidden: "forbiddenEnvironment",
		v1alpha1.ReasonUnauthorized: "HTTP 401",
	},
	v1alpha1.VendorElasticCloud: {
		v1alpha1.ReasonNotFound: "api_keys.key_not_found", v1alpha1.ReasonForbidden: "root.unauthorized.rbac",
		v1alpha1.ReasonUnauthorized: "root.unauthenticated",
	},
}

// TestVendorFaultMatrix runs every fault against every vendor: terminal
// faults end Stalled with the vendor's own code in the message and no fast
// retry; transient ones show Reconciling, call the vendor no faster than
// the backoff (or Retry-After), and recover once the fake heals. Each case
// has a provider of its own: a 401 or a 429 pauses the whole provider.
func TestVendorFaultMatrix(t *testing.T) {
	t.Parallel()
	thief := newThief(t)
	terminal := []struct {
		name   string
		fault  *vendortest.Fault // nil: the credential does not exist
		reason string
	}{
		{"not-found", nil, v1alpha1.ReasonNotFound},
		{"forbidden", &vendortest.Forbidden, v1alpha1.ReasonForbidden},
		{"unauthorized", &vendortest.Unauthorized, v1alpha1.ReasonUnauthorized},
	}
	transient := []struct {
		name    string
		fault   vendortest.Fault
		reason  string
		message string
	}{
		{"rate-limited", vendortest.RateLimited("3"), v1alpha1.ReasonRateLimited, "retry after 3s"},
		{"rate-limited-no-retry-after", vendortest.RateLimited(""), v1alpha1.ReasonRateLimited, "429"},
		{"server-error", vendortest.ServerError, v1alpha1.ReasonVendorUnavailable, "HTTP 500"},
		{"html-502", vendortest.BadGatewayHTML, v1alpha1.ReasonVendorUnavailable, "HTML error page: 502 Bad Gateway"},
		{"broken-json", vendortest.BrokenJSON, v1alpha1.ReasonInvalidResponse, "not the documented JSON"},
		{"reset", vendortest.Reset, v1alpha1.ReasonVendorUnavailable, ""},
		{"slow", vendortest.Latency(vendorTimeout + 2*time.Second), v1alpha1.ReasonVendorUnavailable, "no answer within " + vendorTimeout.String()},
		{"huge-body", vendortest.HugeBody(), v1alpha1.ReasonInvalidResponse, "larger than"},
		{"redirect-other-host", vendortest.Fault{RedirectTo: thief.URL + "/collect"}, v1alpha1.ReasonInvalidResponse, "redirect to another host refused"},
	}
	for _, h := range harnesses() {
		t.Run(h.vendor, func(t *testing.T) {
			t.Parallel()
			for _, tc := range terminal {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					ns := newNamespace(t)
					h.provider(t, ns)
					id := newVendorID()
					if tc.fault != nil {
						h.put(id, nil)
						h.fake.Set(id, *tc.fault)
					}
					rc := waitReason(t, createRC(t, h.credential(ns, tc.name, id)), tc.reason)
					g := gomega.NewWithT(t)
					ready := condition(rc, v1alpha1.ConditionReady)
					g.Expect(ready.Status).To(gomega.Equal(metav1.ConditionFalse))
					g.Expect(ready.Message).To(gomega.ContainSubstring(vendorText[h.vendor][tc.reason]))
					g.Expect(condition(rc, v1alpha1.ConditionStalled).Reason).To(gomega.Equal(tc.reason))
					g.Expect(condition(rc, v1alpha1.ConditionReconciling)).To(gomega.BeNil())
					g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.FailedStatus))
					calls := h.fake.Calls(id)
					g.Expect(calls).To(gomega.BeNumerically("<=", 2), "one call (PlainID: and one retry with a new token)")
					g.Consistently(func() int { return h.fake.Calls(id) }).WithTimeout(2*time.Second).
						Should(gomega.Equal(calls), "terminal errors are not retried before the refresh interval")
				})
			}
			for _, tc := range transient {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					ns := newNamespace(t)
					h.provider(t, ns)
					id := newVendorID()
					h.put(id, nil)
					h.fake.Set(id, tc.fault)
					rc := waitReason(t, createRC(t, h.credential(ns, tc.name, id)), tc.reason)
					g := gomega.NewWithT(t)
					g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring(tc.message))
					g.Expect(condition(rc, v1alpha1.ConditionReconciling).Reason).To(gomega.Equal(tc.reason))
					g.Expect(condition(rc, v1alpha1.ConditionStalled)).To(gomega.BeNil())
					g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.InProgressStatus))

					h.fake.Clear(id) // the vendor heals
					rc = waitReason(t, rc, v1alpha1.ReasonSynced)
					g.Expect(condition(rc, v1alpha1.ConditionReconciling)).To(gomega.BeNil())
					g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.CurrentStatus))
					if tc.name == "reset" {
						return // net/http retries a GET on a dropped reused connection by itself
					}
					times := h.fake.CallTimes(id)
					minGap := 4 * time.Second // backoff starts at 5s ±10%
					if tc.reason == v1alpha1.ReasonRateLimited {
						minGap = 3 * time.Second // Retry-After
					}
					for i := 1; i < len(times); i++ {
						g.Expect(times[i].Sub(times[i-1])).To(gomega.BeNumerically(">=", minGap),
							"call %d came %s after the previous one", i, times[i].Sub(times[i-1]))
					}
				})
			}
		})
	}
	t.Cleanup(func() {
		assertNoSecrets(t)
		if n := thief.requests.Load(); n != 0 {
			t.Errorf("the host a vendor redirected to got %d requests", n)
		}
	})
}

// thief is a TLS server on another host (port) that a vendor redirects to:
// credsync must never call it, so it never sees a credential.
type thief struct {
	URL      string
	requests atomic.Int64
}

func newThief(t *testing.T) *thief {
	th := &thief{}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		th.requests.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	th.URL = srv.URL
	return th
}

// assertNoSecrets checks that no secret (provider credentials, vendor
// secret fields) is in any RemoteCredential, provider or the manager's logs.
func assertNoSecrets(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	rcs := &v1alpha1.RemoteCredentialList{}
	cps := &v1alpha1.CredentialProviderList{}
	ccps := &v1alpha1.ClusterCredentialProviderList{}
	g := gomega.NewWithT(t)
	g.Expect(k8s.List(ctx, rcs)).To(gomega.Succeed())
	g.Expect(k8s.List(ctx, cps)).To(gomega.Succeed())
	g.Expect(k8s.List(ctx, ccps)).To(gomega.Succeed())
	evs := &eventsv1.EventList{}
	g.Expect(k8s.List(ctx, evs)).To(gomega.Succeed())
	g.Expect(evs.Items).NotTo(gomega.BeEmpty(), "the fault matrix made no events")
	haystack := objectJSON(t, rcs) + objectJSON(t, cps) + objectJSON(t, ccps) + objectJSON(t, evs) + logs.String() + metricsText(t)
	secrets := []string{vendorCanary, tinesKey, plainSecret, elasticKey, revokedKey}
	secrets = append(secrets, plainFake.IssuedTokens()...)
	for _, s := range secrets {
		g.Expect(haystack).NotTo(gomega.ContainSubstring(s), "a secret leaked")
	}
}
