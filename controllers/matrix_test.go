package controllers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
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
// message: its error code where it documents one, else the HTTP status
// (Tines' error bodies are not documented: nothing of them is kept).
var vendorText = map[string]map[string]string{
	v1alpha1.VendorTines: {
		v1alpha1.ReasonNotFound: "HTTP 404 Not Found", v1alpha1.ReasonForbidden: "HTTP 403 Forbidden",
		v1alpha1.ReasonUnauthorized: "HTTP 401 Unauthorized",
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
		{"html-502", vendortest.BadGatewayHTML, v1alpha1.ReasonVendorUnavailable, "HTTP 502 Bad Gateway"},
		// What a server says when it fails, or a 4xx that is not the
		// vendor's documented JSON, is never reflected (assertNoSecrets
		// looks for reflectCanary everywhere).
		{"canary-5xx-json", vendortest.Fault{Status: http.StatusInternalServerError, ContentType: "application/json",
			Body: `{"message":"` + reflectCanary + `","errors":[{"code":"` + reflectCanary + `","message":"` + reflectCanary + `"}],"name":"` + reflectCanary + `"}`},
			v1alpha1.ReasonVendorUnavailable, "HTTP 500 Internal Server Error"},
		{"canary-5xx-text", vendortest.Fault{Status: http.StatusServiceUnavailable, ContentType: "text/plain", Body: "db_password=" + reflectCanary},
			v1alpha1.ReasonVendorUnavailable, "HTTP 503 Service Unavailable"},
		{"canary-4xx-text", vendortest.Fault{Status: http.StatusBadRequest, ContentType: "text/plain", Body: "db_password=" + reflectCanary},
			v1alpha1.ReasonInvalidResponse, "HTTP 400 Bad Request"},
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
					// Retries wait on a backoff: on a fake clock.
					ns, clk := clockedManager(t)
					h.provider(t, ns)
					id := newVendorID()
					h.fake.SetClockOf(id, clk.Now)
					h.put(id, nil)
					h.fake.Set(id, tc.fault)
					rc := waitReason(t, createRC(t, h.credential(ns, tc.name, id)), tc.reason)
					g := gomega.NewWithT(t)
					g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring(tc.message))
					g.Expect(condition(rc, v1alpha1.ConditionReconciling).Reason).To(gomega.Equal(tc.reason))
					g.Expect(condition(rc, v1alpha1.ConditionStalled)).To(gomega.BeNil())
					g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.InProgressStatus))

					h.fake.Clear(id) // the vendor heals
					stepUntil(t, clk, 500*time.Millisecond, time.Minute, func(g gomega.Gomega) {
						hasReason(g, rc, v1alpha1.ReasonSynced)
					})
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
	secrets := []string{vendorCanary, tinesKey, plainSecret, elasticKey, revokedKey, reflectCanary}
	secrets = append(secrets, plainFake.IssuedTokens()...)
	for _, s := range secrets {
		g.Expect(haystack).NotTo(gomega.ContainSubstring(s), "a secret leaked")
	}
}

// reflectCanary stands in answers, certificates and pages that are not the
// vendor's documented words: none of it may come back in a status, event,
// log line or metric.
const reflectCanary = "reflected-canary-db-password-71c4"

// TestNothingReflected: a TLS certificate's names and a closed port's
// state do not come back. A provider whose vendor presents a certificate
// it does not trust (its names hold a canary), and one whose vendor's port
// is closed, read with fixed transport classes.
func TestNothingReflected(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	untrusted := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	}))
	untrusted.TLS = &tls.Config{Certificates: []tls.Certificate{canaryCertificate(t, reflectCanary+".example")}}
	untrusted.StartTLS()
	t.Cleanup(untrusted.Close)
	closed := httptest.NewTLSServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	g := gomega.NewWithT(t)
	for _, tc := range []struct{ name, url, message string }{
		{"untrusted", untrusted.URL, "TLS verification failed"},
		{"closed", closedURL, "connection failed"},
	} {
		create(t, apiKeySecret(ns, tc.name, tinesKey))
		spec := tinesSpec(tc.name)
		spec.Tines.URL = tc.url
		create(t, &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name}, Spec: spec})
		rc := newCredential(ns, tc.name, "4821", func(rc *v1alpha1.RemoteCredential) { rc.Spec.ProviderRef.Name = tc.name })
		rc = waitReason(t, createRC(t, rc), v1alpha1.ReasonVendorUnavailable)
		msg := condition(rc, v1alpha1.ConditionReady).Message
		g.Expect(msg).To(gomega.ContainSubstring(tc.message))
		_, port, _ := net.SplitHostPort(strings.TrimPrefix(tc.url, "https://"))
		g.Expect(msg).NotTo(gomega.Or(gomega.ContainSubstring("127.0.0.1"), gomega.ContainSubstring(":"+port), gomega.ContainSubstring("refused")))
		// The provider's status is written after its account's check,
		// which the credential may have read first.
		p := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tc.name}}
		waitReady(t, p, func() []metav1.Condition { return p.Status.Conditions }, "", tc.message)
	}
	assertNoSecrets(t)
}

// canaryCertificate is a self-signed certificate for 127.0.0.1 that also
// names dnsName and has it as its subject.
func canaryCertificate(t *testing.T, dnsName string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: dnsName, Organization: []string{dnsName}},
		DNSNames:     []string{dnsName},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
