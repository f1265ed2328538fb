package controllers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/elasticcloud/elastictest"
	"github.com/credsync/credsync/internal/vendors/plainid/plainidtest"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// Every inventory test has a fake vendor of its own: a list shows all the
// fake holds, so a shared fake would count other tests' credentials.

// inventoryTines starts a Tines fake holding n credentials with a canary
// in every item's metadata, and creates a provider "tines" of it in ns
// with inventory every interval.
func inventoryTines(t *testing.T, ns string, n int, interval time.Duration) (*tinestest.Server, []int64) {
	t.Helper()
	fake, ids := tinesFakeOf(t, n)
	inventoryProvider(t, ns, fake, interval)
	return fake, ids
}

// tinesFakeOf starts a Tines fake holding n credentials with a canary in
// every item's metadata.
func tinesFakeOf(t *testing.T, n int) (*tinestest.Server, []int64) {
	t.Helper()
	fake := tinestest.NewServer(tinesKey)
	t.Cleanup(fake.Close)
	ids := make([]int64, n)
	for i := range ids {
		ids[i] = fakeID()
		c := tinestest.Sample(ids[i], fmt.Sprintf("cred_%d", i))
		c.Metadata = map[string]string{"token": vendorCanary}
		fake.Put(c)
	}
	return fake, ids
}

// inventoryProvider creates a provider "tines" of fake in ns with
// inventory every interval.
func inventoryProvider(t *testing.T, ns string, fake *tinestest.Server, interval time.Duration) {
	t.Helper()
	tinesProviderAt(t, ns, fake, tinesKey, func(spec *v1alpha1.CredentialProviderSpec) {
		spec.Inventory = &v1alpha1.Inventory{Interval: metav1.Duration{Duration: interval}}
	})
}

// waitInventoried waits until the provider's last sweep listed total
// credentials, managed of them managed, and returns it.
func waitInventoried(t *testing.T, ns, name string, total, managed int32) *v1alpha1.CredentialProvider {
	t.Helper()
	return waitInventoriedOn(t, nil, ns, name, total, managed)
}

// waitInventoriedOn is waitInventoried stepping clk (nil: the real clock)
// by a second at every poll, for a minute at most.
func waitInventoriedOn(t *testing.T, clk *clocktesting.FakeClock, ns, name string, total, managed int32) *v1alpha1.CredentialProvider {
	t.Helper()
	return waitInventoryConditionOn(t, clk, ns, name, func(g gomega.Gomega, p *v1alpha1.CredentialProvider, c *metav1.Condition) {
		g.Expect(c.Reason).To(gomega.Equal(v1alpha1.ReasonListed), "Inventoried: %s", c.Message)
		g.Expect(p.Status.Inventory).NotTo(gomega.BeNil())
		g.Expect(p.Status.Inventory.Total).To(gomega.Equal(total))
		g.Expect(p.Status.Inventory.Managed).To(gomega.Equal(managed))
	})
}

// waitNotInventoried waits until the provider's Inventoried condition is
// False with reason and a message holding text, and returns it.
func waitNotInventoried(t *testing.T, ns, name, reason, text string) *v1alpha1.CredentialProvider {
	t.Helper()
	return waitNotInventoriedOn(t, nil, ns, name, reason, text)
}

// waitNotInventoriedOn is waitNotInventoried stepping clk (nil: the real
// clock) by a second at every poll, for a minute at most.
func waitNotInventoriedOn(t *testing.T, clk *clocktesting.FakeClock, ns, name, reason, text string) *v1alpha1.CredentialProvider {
	t.Helper()
	return waitInventoryConditionOn(t, clk, ns, name, func(g gomega.Gomega, _ *v1alpha1.CredentialProvider, c *metav1.Condition) {
		g.Expect(c.Status).To(gomega.Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(gomega.Equal(reason))
		g.Expect(c.Message).To(gomega.ContainSubstring(text))
	})
}

// waitInventoryConditionOn waits until the provider has an Inventoried
// condition and check passes on it, stepping clk (nil: the real clock) by
// a second at every poll, for a minute at most; it returns the provider.
func waitInventoryConditionOn(t *testing.T, clk *clocktesting.FakeClock, ns, name string, check func(gomega.Gomega, *v1alpha1.CredentialProvider, *metav1.Condition)) *v1alpha1.CredentialProvider {
	t.Helper()
	p := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	inventoried := func(g gomega.Gomega) {
		get(g, p)
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionInventoried)
		g.Expect(c).NotTo(gomega.BeNil(), "no Inventoried condition yet")
		check(g, p, c)
	}
	if clk != nil {
		stepUntil(t, clk, time.Second, time.Minute, inventoried)
		return p
	}
	gomega.NewWithT(t).Eventually(inventoried).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
	return p
}

// Tines pagination across pages (the server hands back 3 per page,
// whatever per_page asks), managed and unmanaged counts with two
// RemoteCredentials naming one credential and one naming an ID the vendor
// does not list, the unmanaged list soonest expiry first, one event for
// new unmanaged credentials, and sweeps that find nothing new write
// nothing and emit nothing.
func TestInventoryTinesPagination(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	fake, ids := tinesFakeOf(t, 10)
	fake.SetMaxPerPage(3)
	soon, later := clk.Now().Add(48*time.Hour).UTC().Truncate(time.Second), clk.Now().Add(96*time.Hour).UTC().Truncate(time.Second)
	for i, exp := range map[int]time.Time{8: later, 9: soon} {
		c := tinestest.Sample(ids[i], fmt.Sprintf("cred_%d", i))
		c.ExpiresAt = &exp
		fake.Put(c)
	}
	sid := func(i int) string { return strconv.FormatInt(ids[i], 10) }
	// The credentials exist (and the manager has seen them) before the
	// provider, so its first sweep counts them.
	for _, rc := range []*v1alpha1.RemoteCredential{
		newCredential(ns, "a", sid(0)), newCredential(ns, "a-again", sid(0)), newCredential(ns, "b", sid(1)),
		newCredential(ns, "not-listed", strconv.FormatInt(fakeID(), 10)),
	} {
		waitReason(t, createRC(t, rc), v1alpha1.ReasonProviderNotReady)
	}
	inventoryProvider(t, ns, fake, 10*time.Second)

	p := waitInventoried(t, ns, "tines", 10, 2)
	g := gomega.NewWithT(t)
	inv := p.Status.Inventory
	g.Expect(inv.Unmanaged).To(gomega.Equal(int32(8)))
	g.Expect(inv.UnmanagedCredentials).To(gomega.HaveLen(8))
	g.Expect(inv.UnmanagedCredentials[0].ID).To(gomega.Equal(sid(9)), "soonest expiry first")
	g.Expect(inv.UnmanagedCredentials[0].ExpiresAt.Time).To(gomega.BeTemporally("==", soon))
	g.Expect(inv.UnmanagedCredentials[1].ID).To(gomega.Equal(sid(8)))
	g.Expect(inv.UnmanagedCredentials[2].ID).To(gomega.Equal(sid(2)), "then those without expiry, by ID")
	g.Expect(inv.UnmanagedCredentials[2].Name).To(gomega.Equal("cred_2"))
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionInventoried).Message).To(gomega.Equal("10 credentials: 2 managed, 8 unmanaged"))
	g.Expect(p.Status.Vendor).To(gomega.Equal(v1alpha1.VendorTines))
	g.Expect(kstatus(t, p, "CredentialProvider")).To(gomega.Equal(status.CurrentStatus))
	version, lists, before := p.ResourceVersion, fake.ListCalls(), p.Status.DeepCopy()

	// The next sweeps (10s apart, 4 pages each) find the same: no write, no event.
	stepUntil(t, clk, time.Second, 2*time.Minute, func(g gomega.Gomega) {
		g.Expect(fake.ListCalls()).To(gomega.BeNumerically(">=", lists+8), "two more sweeps")
	})
	time.Sleep(500 * time.Millisecond) // a write of the last sweep would come now
	get(g, p)
	if p.ResourceVersion != version {
		was, _ := json.Marshal(before)
		now, _ := json.Marshal(p.Status)
		t.Fatalf("a sweep that found nothing new wrote the provider: status\n%s\nnow\n%s", was, now)
	}
	g.Expect(eventList(t, p)).To(gomega.Equal([]string{"Normal Valid", "Warning UnmanagedCredentials"}))
	g.Expect(eventNotes(t, p)).To(gomega.ContainElement(gomega.ContainSubstring("8 credentials at the vendor are named by no RemoteCredential; new: " + sid(9))))

	// A credential made unmanaged by deleting its only RemoteCredential,
	// without any vendor call for it: the next sweep counts it.
	b := &v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "b"}}
	g.Expect(k8s.Delete(context.Background(), b)).To(gomega.Succeed())
	waitInventoriedOn(t, clk, ns, "tines", 10, 1)
	g.Eventually(func() []string { return eventList(t, p) }).WithTimeout(eventually).WithPolling(poll).Should(gomega.Equal(
		[]string{"Normal Valid", "Warning UnmanagedCredentials", "Warning UnmanagedCredentials"}))
	assertNoSecrets(t)
}

// Refreshes are served by the sweep: credentials of a provider with
// inventory sync without a GET each, and keep refreshing from sweeps; a
// credential a sweep no longer lists is confirmed with one GET. Status is
// the same as a GET gives.
func TestInventoryServesRefreshes(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	fake, ids := inventoryTines(t, ns, 5, 10*time.Second)
	fake.SetClock(clk.Now)
	start := clk.Now()
	waitInventoried(t, ns, "tines", 5, 0)
	// timeline says, on a failure, when (fake time from the start) the
	// sweeps listed and the credentials were read by GET.
	timeline := func() string {
		var b strings.Builder
		fmt.Fprintf(&b, "now %s; lists at", clk.Since(start))
		for _, at := range fake.CallTimes(tinestest.ListID) {
			fmt.Fprintf(&b, " %s", at.Sub(start))
		}
		for i, id := range ids {
			for _, at := range fake.CallTimes(strconv.FormatInt(id, 10)) {
				fmt.Fprintf(&b, "; GET of cred-%d at %s", i, at.Sub(start))
			}
		}
		return b.String()
	}
	// A sweep is due 10s ±10% after the last one started (however long
	// that one took): time slows down from 9.5s, and crawls from 11s until
	// the sweep has listed; while a sweep that listed has not completed
	// (its start is not yet the manager's last-sweep metric), it stands
	// still. On a loaded machine the operator may lag the clock's steps,
	// and a refresh (15s ±10% after the sweep that served the last one)
	// must not find the last sweep too old and GET because of that lag.
	sweeps, sweptAt := fake.ListCalls(), lastSweep(t, ns, "tines")
	step := func() {
		if at := lastSweep(t, ns, "tines"); !at.Equal(sweptAt) {
			sweeps, sweptAt = fake.ListCalls(), at
		} else if fake.ListCalls() > sweeps {
			return
		}
		switch since := clk.Since(sweptAt); {
		case since >= 11*time.Second:
			clk.Step(10 * time.Millisecond)
		case since >= 9500*time.Millisecond:
			clk.Step(100 * time.Millisecond)
		default:
			clk.Step(time.Second)
		}
	}
	var rcs []*v1alpha1.RemoteCredential
	for i, id := range ids {
		rcs = append(rcs, createRC(t, newCredential(ns, fmt.Sprintf("cred-%d", i), strconv.FormatInt(id, 10), func(rc *v1alpha1.RemoteCredential) {
			rc.Spec.RefreshInterval = &metav1.Duration{Duration: 15 * time.Second}
		})))
	}
	gets := func() int {
		n := 0
		for _, id := range ids {
			n += fake.Calls(strconv.FormatInt(id, 10))
		}
		return n
	}
	g := gomega.NewWithT(t)
	for _, rc := range rcs {
		rc := waitReason(t, rc, v1alpha1.ReasonSynced)
		g.Expect(rc.Status.Tines).To(gomega.Equal(&v1alpha1.TinesCredentialStatus{
			Mode: "TEXT", TeamID: ptr(int64(2)), ReadAccess: "TEAM", RestrictionType: "UNRESTRICTED", Slug: rc.Status.Name, OwnerEmail: "jane.doe@example.com",
		}), "the status a GET would give")
	}
	p := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}}
	first := true
	g.Eventually(func(g gomega.Gomega) {
		if !first {
			step()
		}
		first = false
		get(g, p)
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionInventoried)
		g.Expect(c).NotTo(gomega.BeNil())
		g.Expect(c.Reason).To(gomega.Equal(v1alpha1.ReasonListed), "Inventoried: %s", c.Message)
		g.Expect(p.Status.Inventory.Total).To(gomega.Equal(int32(5)))
		g.Expect(p.Status.Inventory.Managed).To(gomega.Equal(int32(5)))
	}).WithTimeout(eventually).WithPolling(stepPoll).Should(gomega.Succeed())
	g.Expect(gets()).To(gomega.Equal(0), func() string { return "GETs of sweep-served credentials: " + timeline() })
	// Two refreshes each (15s) over 35s: all from sweeps (every 10s).
	for end := clk.Now().Add(35 * time.Second); clk.Now().Before(end); {
		step()
		time.Sleep(stepPoll)
		g.Expect(gets()).To(gomega.Equal(0), func() string { return "GETs of sweep-served credentials: " + timeline() })
	}
	g.Expect(logLines("vendor read", `"RemoteCredential": {"name":"cred-0","namespace":"`+ns+`"}`)).To(gomega.BeNumerically(">=", 2), "cred-0 refreshed")

	// Deleted at the vendor: the next sweep no longer lists it, and its
	// next refresh confirms that with one GET.
	fake.Delete(ids[0])
	rc := rcs[0].DeepCopy()
	stepUntil(t, clk, time.Second, 2*time.Minute, func(g gomega.Gomega) {
		hasReason(g, rc, v1alpha1.ReasonNotFound)
	})
	g.Expect(fake.Calls(strconv.FormatInt(ids[0], 10))).To(gomega.Equal(1), "one GET confirms a credential the sweep no longer lists")
	g.Expect(condition(rc, v1alpha1.ConditionReady).Message).To(gomega.ContainSubstring("HTTP 404 Not Found"))
	g.Expect(gets()).To(gomega.Equal(1))
}

// A list item that lacks fields its GET gives (Tines does not confirm
// expires_at and owner in list answers) counts for the inventory but the
// credential is read by GET.
func TestInventoryPartialItemsAreReadByGet(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	fake, ids := tinesFakeOf(t, 2)
	// Before the provider: its first sweep must list partial items.
	fake.SetListOmitsOptional(true)
	inventoryProvider(t, ns, fake, time.Minute)
	waitInventoried(t, ns, "tines", 2, 0)
	rc := waitReason(t, createRC(t, newCredential(ns, "partial", strconv.FormatInt(ids[0], 10))), v1alpha1.ReasonSynced)
	g := gomega.NewWithT(t)
	g.Expect(fake.Calls(strconv.FormatInt(ids[0], 10))).To(gomega.Equal(1))
	g.Expect(rc.Status.Tines.OwnerEmail).To(gomega.Equal("jane.doe@example.com"))
}

// A key that may read credentials but not list them: Inventoried False
// (Forbidden), Ready stays Valid, credentials sync by GET.
func TestInventoryForbiddenList(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	fake, ids := inventoryTines(t, ns, 3, 10*time.Second)
	fake.Set(tinestest.ListID, vendortest.Forbidden)
	p := waitNotInventoried(t, ns, "tines", v1alpha1.ReasonForbidden, "HTTP 403")
	g := gomega.NewWithT(t)
	g.Expect(readyReason(p.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonValid))
	g.Expect(p.Status.Inventory).To(gomega.BeNil(), "no sweep completed")
	waitReason(t, createRC(t, newCredential(ns, "by-get", strconv.FormatInt(ids[0], 10))), v1alpha1.ReasonSynced)
	g.Expect(fake.Calls(strconv.FormatInt(ids[0], 10))).To(gomega.Equal(1))

	fake.Clear(tinestest.ListID)
	waitInventoriedOn(t, clk, ns, "tines", 3, 1)
}

// A 429 on page 7 of 20 pauses the sweep with the provider; it resumes
// from page 7, and no partial count is ever published.
func TestInventoryRateLimitedMidSweep(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	fake, _ := tinesFakeOf(t, 20)
	fake.SetClock(clk.Now)
	fake.SetMaxPerPage(1)
	// The key check is the first list request, then pages 1 to 6, then 429.
	ok := vendortest.Fault{}
	fake.FailNext(tinestest.ListID, ok, ok, ok, ok, ok, ok, ok, vendortest.RateLimited("3"))
	inventoryProvider(t, ns, fake, time.Hour)
	p := &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"}}
	g := gomega.NewWithT(t)
	stepUntil(t, clk, 200*time.Millisecond, 30*time.Second, func(g gomega.Gomega) {
		get(g, p)
		if p.Status.Inventory != nil {
			g.Expect(p.Status.Inventory.Total).To(gomega.Equal(int32(20)), "a partial count was published")
		}
		g.Expect(p.Status.Inventory).NotTo(gomega.BeNil())
	})
	g.Expect(fake.ListCalls()).To(gomega.Equal(1+20+1), "the key check, 20 pages and the 429: page 7 asked twice, nothing more")
	times := fake.CallTimes(tinestest.ListID)
	g.Expect(times[8].Sub(times[7])).To(gomega.BeNumerically(">=", 3*time.Second), "resumed before Retry-After")
}

// Pagination that never ends stops with InvalidResponse.
func TestInventoryEndlessPagination(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	fake, _ := tinesFakeOf(t, 4)
	fake.SetMaxPerPage(2)
	fake.SetNextPageLoop(true)
	inventoryProvider(t, ns, fake, time.Hour)
	waitNotInventoried(t, ns, "tines", v1alpha1.ReasonInvalidResponse, "points back at an earlier page")
	gomega.NewWithT(t).Expect(fake.ListCalls()).To(gomega.BeNumerically("<=", 3), "the key check and two pages")
}

// PlainID pages 50 clients at a time, owner after owner.
func TestInventoryPlainIDPagination(t *testing.T) {
	t.Parallel()
	fake := plainidtest.NewServer(plainClientID, plainSecret)
	defer fake.Close()
	const env = "b0e1f961-2061-4f83-8392-b5aa19fed0c1"
	for i := range 60 {
		c := plainidtest.Sample(fmt.Sprintf("ENV%017d", i), fmt.Sprintf("env-client-%d", i))
		secret := vendorCanary
		c.Secret = &secret
		fake.Put(c)
	}
	for i := range 3 {
		c := plainidtest.Sample(fmt.Sprintf("TEN%017d", i), fmt.Sprintf("tenant-client-%d", i))
		c.OwnerID, c.OwnerType = "-", "TENANT"
		fake.Put(c)
	}
	other := plainidtest.Sample("OTHER0000000000000001", "another-environment") // not listed: its owner is not asked for
	other.OwnerID = "9d2f44c0-0000-4000-8000-000000000000"
	fake.Put(other)
	ns := newNamespace(t)
	// The credential exists before the provider, so the first sweep
	// counts it.
	waitReason(t, createRC(t, newCredential(ns, "tenant-0", "TEN00000000000000000", func(rc *v1alpha1.RemoteCredential) {
		rc.Spec.ProviderRef.Name = "plainid"
	})), v1alpha1.ReasonProviderNotReady)
	plainidProviderAt(t, ns, fake, fake.URL, func(spec *v1alpha1.CredentialProviderSpec) {
		spec.Inventory = &v1alpha1.Inventory{Interval: metav1.Duration{Duration: time.Hour},
			PlainID: &v1alpha1.PlainIDInventory{OwnerIDs: []string{"-", env}}}
	})
	p := waitInventoried(t, ns, "plainid", 63, 1)
	g := gomega.NewWithT(t)
	g.Expect(fake.Calls(plainidtest.ListID("-"))).To(gomega.Equal(1))
	g.Expect(fake.Calls(plainidtest.ListID(env))).To(gomega.Equal(2), "60 clients: 2 pages of 50")
	g.Expect(p.Status.Inventory.UnmanagedCredentials).To(gomega.HaveLen(50), "at most 50 shown")
	g.Expect(p.Status.Vendor).To(gomega.Equal(v1alpha1.VendorPlainID))
	rc := waitReason(t, &v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant-0"}}, v1alpha1.ReasonSynced)
	g.Expect(rc.Status.PlainID.OwnerType).To(gomega.Equal("TENANT"))
	g.Expect(fake.Calls("TEN00000000000000000")).To(gomega.Equal(0), "served by the sweep")
	assertNoSecrets(t)
}

// Adoption: a RemoteCredential per unmanaged credential, named
// <provider>-<id>, labelled and owned by the provider, in the provider's
// namespace (a ClusterCredentialProvider's: the cluster resource
// namespace); they sync from the sweep and count as managed.
func TestInventoryAdoption(t *testing.T) {
	t.Parallel()
	// ns is the clocked manager's cluster resource namespace.
	ns, clk := clockedManager(t)
	fake := elastictest.NewServer()
	defer fake.Close()
	fake.AddAPIKey(elasticKey, elasticUser)
	fake.SetPlatformAdmin(elasticUser, true)
	key := vendorCanary
	own := elastictest.Sample("Own-Key."+strconv.FormatInt(fakeID(), 10), elasticUser, "own key")
	own.Key = &key
	fake.Put(own)
	fake.Put(elastictest.Sample("other-"+strconv.FormatInt(fakeID(), 10), "u-someone", "someone's key"))
	name := clockedAdopter
	create(t, apiKeySecret(ns, name, elasticKey))
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	create(t, &v1alpha1.ClusterCredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{managerLabel: ns}},
		Spec: v1alpha1.ClusterCredentialProviderSpec{CredentialProviderSpec: v1alpha1.CredentialProviderSpec{
			ElasticCloud: &v1alpha1.ElasticCloudProvider{URL: fake.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: name}},
			CABundle:     fake.CABundle(),
			Inventory: &v1alpha1.Inventory{Interval: metav1.Duration{Duration: 10 * time.Second}, Adopt: true,
				ElasticCloud: &v1alpha1.ElasticCloudInventory{AllUsers: true}},
		}},
	})
	g := gomega.NewWithT(t)
	adopted := &v1alpha1.RemoteCredentialList{}
	g.Eventually(func(g gomega.Gomega) {
		g.Expect(k8s.List(context.Background(), adopted, client.InNamespace(ns), client.MatchingLabels{v1alpha1.AdoptedByLabel: name})).To(gomega.Succeed())
		g.Expect(adopted.Items).To(gomega.HaveLen(2))
	}).WithTimeout(eventually).WithPolling(poll).Should(gomega.Succeed())
	cp := &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: name}}
	get(g, cp)
	byName := map[string]v1alpha1.RemoteCredential{}
	for _, rc := range adopted.Items {
		byName[rc.Name] = rc
		g.Expect(rc.OwnerReferences).To(gomega.ConsistOf(gomega.HaveField("UID", cp.UID)))
		g.Expect(rc.Spec.ProviderRef).To(gomega.Equal(v1alpha1.ProviderReference{Kind: v1alpha1.ClusterCredentialProviderKind, Name: name}))
	}
	ownRC, ok := byName[name+"-own-key-"+own.ID[len("Own-Key."):]]
	g.Expect(ok).To(gomega.BeTrue(), "adopted names: %v", byName)
	g.Expect(ownRC.Spec.UserID).To(gomega.Equal(elasticUser))
	for _, rc := range adopted.Items {
		waitReason(t, &rc, v1alpha1.ReasonSynced)
	}
	stepUntil(t, clk, time.Second, time.Minute, func(g gomega.Gomega) {
		get(g, cp)
		g.Expect(cp.Status.Inventory).NotTo(gomega.BeNil())
		g.Expect(cp.Status.Inventory.Managed).To(gomega.Equal(int32(2)))
		g.Expect(cp.Status.Inventory.Unmanaged).To(gomega.BeZero())
	})
	g.Expect(fake.Calls(own.ID)).To(gomega.BeZero(), "adopted credentials sync from the sweep")

	// Gone at the vendor: the adopted credential reads NotFound, and is kept.
	fake.Delete(own.ID)
	stepUntil(t, clk, time.Second, time.Minute, func(g gomega.Gomega) { hasReason(g, &ownRC, v1alpha1.ReasonNotFound) })
	g.Consistently(func(g gomega.Gomega) {
		g.Expect(k8s.List(context.Background(), adopted, client.InNamespace(ns), client.MatchingLabels{v1alpha1.AdoptedByLabel: name})).To(gomega.Succeed())
		g.Expect(adopted.Items).To(gomega.HaveLen(2), "adoption never deletes")
	}).WithTimeout(2 * time.Second).Should(gomega.Succeed())
	assertNoSecrets(t)
}

// An adopted name held by a RemoteCredential of another credential: the
// others are adopted, Inventoried turns False/AdoptionFailed naming the
// name (with one Warning event), and Ready stays Valid.
func TestInventoryAdoptionNameTaken(t *testing.T) {
	t.Parallel()
	ns, clk := clockedManager(t)
	const provider = clockedAdopter
	fake, ids := tinesFakeOf(t, 3)
	first := strconv.FormatInt(ids[0], 10)
	// The name adopting ids[0] already names ids[2] (so ids[2] is managed).
	blocker := v1alpha1.NewAdoption(v1alpha1.CredentialProviderKind, provider, ns, first, "")
	blocker.Spec.ID = strconv.FormatInt(ids[2], 10)
	createRC(t, blocker)
	create(t, apiKeySecret(ns, "tines-api", tinesKey))
	spec := tinesSpec("tines-api")
	spec.Tines.URL, spec.CABundle = fake.URL, fake.CABundle()
	spec.Inventory = &v1alpha1.Inventory{Interval: metav1.Duration{Duration: 10 * time.Second}, Adopt: true}
	create(t, &v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: provider}, Spec: spec})
	// Settled: ids[1] adopted (and so managed), ids[0] not.
	p := waitNotInventoriedOn(t, clk, ns, provider, v1alpha1.ReasonAdoptionFailed, "3 credentials: 2 managed, 1 unmanaged; adopting them failed")
	g := gomega.NewWithT(t)
	g.Expect(meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionInventoried).Message).To(gomega.ContainSubstring(blocker.Name))
	g.Expect(readyReason(p.Status.Conditions)).To(gomega.Equal(v1alpha1.ReasonValid))
	second := &v1alpha1.RemoteCredential{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: v1alpha1.AdoptedName(provider, strconv.FormatInt(ids[1], 10), "")}, second)).
		To(gomega.Succeed(), "the other unmanaged credential is adopted")
	g.Expect(second.Spec.ID).To(gomega.Equal(strconv.FormatInt(ids[1], 10)))
	g.Eventually(func() []string { return eventList(t, p) }).WithTimeout(eventually).WithPolling(poll).
		Should(gomega.ContainElement("Warning AdoptionFailed"))

	// Every sweep tries again and fails the same way: no write (the
	// condition's lastTransitionTime stays), and no second event.
	version, lists := p.ResourceVersion, fake.ListCalls()
	stepUntil(t, clk, time.Second, 2*time.Minute, func(g gomega.Gomega) {
		g.Expect(fake.ListCalls()).To(gomega.BeNumerically(">=", lists+2), "two more sweeps")
	})
	time.Sleep(500 * time.Millisecond) // a write of the last sweep would come now
	get(g, p)
	g.Expect(p.ResourceVersion).To(gomega.Equal(version), "a failing adoption that changed nothing wrote the provider")
	failed := 0
	for _, e := range eventList(t, p) {
		if e == "Warning AdoptionFailed" {
			failed++
		}
	}
	g.Expect(failed).To(gomega.Equal(1), "AdoptionFailed events")
	taken := &v1alpha1.RemoteCredential{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(blocker), taken)).To(gomega.Succeed())
	g.Expect(taken.Spec.ID).To(gomega.Equal(blocker.Spec.ID), "adoption never touches a RemoteCredential it did not create")
}

// A ClusterCredentialProvider serves only the namespaces its
// namespaceSelector selects: a RemoteCredential elsewhere is
// ProviderNotAllowed (Stalled, no vendor call) and counts as unmanaged in
// the provider's inventory; labelling its namespace lets it sync, without
// a restart.
func TestClusterProviderNamespaceSelector(t *testing.T) {
	t.Parallel()
	fake, ids := tinesFakeOf(t, 2)
	name := "shared-" + strconv.FormatInt(fakeID(), 10)
	selected, other := newNamespace(t), newNamespace(t)
	// selected is the manager's cluster resource namespace.
	clk := clockedManagerIn(t, selected, other)
	label := "credsync.io/test-" + name
	g := gomega.NewWithT(t)
	setLabel := func(ns string) {
		obj := &corev1.Namespace{}
		g.Expect(k8s.Get(context.Background(), types.NamespacedName{Name: ns}, obj)).To(gomega.Succeed())
		if obj.Labels == nil {
			obj.Labels = map[string]string{}
		}
		obj.Labels[label] = "yes"
		g.Expect(k8s.Update(context.Background(), obj)).To(gomega.Succeed())
	}
	setLabel(selected)
	create(t, apiKeySecret(selected, name, tinesKey))
	spec := tinesSpec(name)
	spec.Tines.URL, spec.CABundle = fake.URL, fake.CABundle()
	spec.Inventory = &v1alpha1.Inventory{Interval: metav1.Duration{Duration: 10 * time.Second}}
	create(t, &v1alpha1.ClusterCredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{managerLabel: selected}},
		Spec: v1alpha1.ClusterCredentialProviderSpec{CredentialProviderSpec: spec,
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{label: "yes"}}},
	})
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: name}})
	})
	shared := func(ns string, id int64) *v1alpha1.RemoteCredential {
		return createRC(t, newCredential(ns, "shared", strconv.FormatInt(id, 10), func(rc *v1alpha1.RemoteCredential) {
			rc.Spec.ProviderRef = v1alpha1.ProviderReference{Kind: v1alpha1.ClusterCredentialProviderKind, Name: name}
		}))
	}
	inside, outside := shared(selected, ids[0]), shared(other, ids[1])
	waitReason(t, inside, v1alpha1.ReasonSynced)
	rc := waitReason(t, outside, v1alpha1.ReasonProviderNotAllowed)
	g.Expect(condition(rc, v1alpha1.ConditionStalled).Reason).To(gomega.Equal(v1alpha1.ReasonProviderNotAllowed))
	g.Expect(rc.Status.Name).To(gomega.BeEmpty())
	g.Expect(fake.Calls(strconv.FormatInt(ids[1], 10))).To(gomega.BeZero(), "a credential of a namespace the provider does not serve was read")
	g.Expect(kstatus(t, rc, "RemoteCredential")).To(gomega.Equal(status.FailedStatus))
	waitClusterInventoried(t, clk, name, 2, 1)

	setLabel(other)
	waitReason(t, outside, v1alpha1.ReasonSynced)
	waitClusterInventoried(t, clk, name, 2, 2)
}

// waitClusterInventoried waits until the ClusterCredentialProvider name's
// inventory lists total credentials, managed of them, stepping clk by a
// second at every poll, for 2 minutes at most.
func waitClusterInventoried(t *testing.T, clk *clocktesting.FakeClock, name string, total, managed int32) {
	t.Helper()
	stepUntil(t, clk, time.Second, 2*time.Minute, func(g gomega.Gomega) {
		p := &v1alpha1.ClusterCredentialProvider{}
		g.Expect(k8s.Get(context.Background(), types.NamespacedName{Name: name}, p)).To(gomega.Succeed())
		g.Expect(p.Status.Inventory).NotTo(gomega.BeNil())
		g.Expect(p.Status.Inventory.Total).To(gomega.Equal(total))
		g.Expect(p.Status.Inventory.Managed).To(gomega.Equal(managed))
	})
}
