package controllers

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/backoff"
	"github.com/credsync/credsync/internal/vendors"
)

// t0 is the fake clock's start in every decision test.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 20; n++ {
		d := backoff.Step("ns/name", n, backoffCap)
		if d > backoffCap*11/10 {
			t.Fatalf("failure %d: backoff %s above cap", n, d)
		}
		if n <= 5 && d <= prev {
			t.Fatalf("failure %d: backoff %s did not grow from %s", n, d, prev)
		}
		prev = d
	}
	// A missing provider Secret created later is picked up within a minute.
	for n := 1; n <= 50; n++ {
		if d := backoff.Step("ns/name", n, providerBackoffCap); d > 33*time.Second {
			t.Fatalf("provider backoff %s exceeds the cap", d)
		}
	}
}

// credential is a RemoteCredential of provider "tines" in team-a.
func credential(name, id string, refresh time.Duration) *v1alpha1.RemoteCredential {
	rc := &v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, UID: types.UID("uid-" + name), Generation: 1}}
	rc.Spec.ProviderRef.Name = "tines"
	rc.Spec.ID = id
	rc.Spec.RefreshInterval = &metav1.Duration{Duration: refresh}
	return rc
}

// synced gives rc the status of a successful sync of its generation.
func synced(rc *v1alpha1.RemoteCredential) *v1alpha1.RemoteCredential {
	rc.Status.ObservedGeneration = rc.Generation
	rc.Status.LastHandledSyncRequest = rc.Annotations[v1alpha1.SyncRequestedAtAnnotation]
	setOutcome(&rc.Status.Conditions, rc.Generation, outcome{Reason: v1alpha1.ReasonSynced, Message: "synced"})
	return rc
}

func failing(rc *v1alpha1.RemoteCredential, reason string, terminal bool) *v1alpha1.RemoteCredential {
	return failingSince(rc, reason, terminal, t0)
}

// failingSince gives rc the status of a failure with reason that began at
// since (its conditions' lastTransitionTime, as the operator's clock
// stamped it).
func failingSince(rc *v1alpha1.RemoteCredential, reason string, terminal bool, since time.Time) *v1alpha1.RemoteCredential {
	synced(rc)
	setOutcome(&rc.Status.Conditions, rc.Generation, outcome{Reason: reason, Message: reason, Terminal: terminal})
	for i := range rc.Status.Conditions {
		rc.Status.Conditions[i].LastTransitionTime = metav1.NewTime(since)
	}
	return rc
}

func TestPlanDue(t *testing.T) {
	clock := clocktesting.NewFakeClock(t0)
	var s schedule
	rc := credential("a", "1", time.Hour)
	if p := s.plan(rc, accountView{canRead: true}, clock.Now()); !p.due || p.fresh {
		t.Fatalf("never synced: %+v, want due, reusing a recent read (an inventory sweep's)", p)
	}
	asked := rc.DeepCopy()
	asked.Annotations = map[string]string{v1alpha1.SyncRequestedAtAnnotation: "first"}
	if p := (&schedule{}).plan(asked, accountView{canRead: true}, clock.Now()); !p.due || !p.fresh {
		t.Fatalf("never synced, a sync requested: %+v, want due and fresh", p)
	}
	next := s.answered(synced(rc), 0, clock.Now(), refreshInterval(rc), true)
	if d := next.Sub(clock.Now()); d < 54*time.Minute || d > 66*time.Minute {
		t.Fatalf("next refresh in %s, want 1h ±10%%", d)
	}
	clock.Step(time.Minute)
	if p := s.plan(rc, accountView{canRead: true}, clock.Now()); p.due {
		t.Fatal("synced a minute ago with a 1h interval: due")
	}
	clock.SetTime(next.Add(-time.Millisecond))
	if p := s.plan(rc, accountView{canRead: true}, clock.Now()); p.due {
		t.Fatal("due a millisecond early")
	}
	clock.SetTime(next)
	if p := s.plan(rc, accountView{canRead: true}, clock.Now()); !p.due || p.fresh {
		t.Fatalf("refresh: %+v, want due, reusing a recent read", p)
	}

	for name, tc := range map[string]struct {
		change func(*v1alpha1.RemoteCredential)
		fresh  bool
	}{
		"spec edited": {func(rc *v1alpha1.RemoteCredential) { rc.Generation++ }, false},
		"sync requested": {func(rc *v1alpha1.RemoteCredential) {
			rc.Annotations = map[string]string{v1alpha1.SyncRequestedAtAnnotation: "now"}
		}, true},
	} {
		changed := rc.DeepCopy()
		tc.change(changed)
		if p := s.plan(changed, accountView{canRead: true}, t0.Add(time.Minute)); !p.due || p.fresh != tc.fresh {
			t.Errorf("%s: %+v, want due, fresh %v", name, p, tc.fresh)
		}
	}
	if p := s.plan(rc, accountView{epoch: 1, canRead: true}, t0.Add(time.Minute)); !p.due || !p.fresh {
		t.Errorf("the account's epoch moved (Secret rotated): %+v, want due and fresh", p)
	}
	// A sync request the budget held back still reads afresh when it goes.
	requested := rc.DeepCopy()
	requested.Annotations = map[string]string{v1alpha1.SyncRequestedAtAnnotation: "held"}
	s.deferUntil(requested, 0, t0.Add(2*time.Minute))
	if p := s.plan(requested, accountView{canRead: true}, t0.Add(90*time.Second)); p.due {
		t.Error("due before the budget's wait ended")
	}
	if p := s.plan(requested, accountView{canRead: true}, t0.Add(2*time.Minute)); !p.due || !p.fresh {
		t.Errorf("a held-back sync request: %+v, want due and fresh", p)
	}
	s.forget(client.ObjectKeyFromObject(rc))
	if p := s.plan(credential("a", "1", time.Hour), accountView{canRead: true}, t0.Add(time.Minute)); !p.due {
		t.Error("forgotten: not due")
	}
}

// A credential waiting for its provider is due the moment the provider's
// account can read, not at the end of its backoff.
func TestPlanBlockedIsDueWhenTheAccountCanRead(t *testing.T) {
	var s schedule
	rc := credential("a", "1", time.Hour)
	next := s.failed(rc, 0, t0, 0, providerBackoffCap, true)
	if d := next.Sub(t0); d < 4*time.Second || d > 6*time.Second {
		t.Fatalf("first provider backoff %s, want 5s ±10%%", d)
	}
	if p := s.plan(rc, accountView{}, t0.Add(time.Second)); p.due {
		t.Fatal("due while the account still cannot read")
	}
	if p := s.plan(rc, accountView{canRead: true}, t0.Add(time.Second)); !p.due {
		t.Fatal("not due although the account can read now")
	}
}

func TestRetrySoonRereads(t *testing.T) {
	var s schedule
	rc := credential("a", "1", time.Hour)
	key := client.ObjectKeyFromObject(rc)
	s.answered(rc, 0, t0, time.Hour, true)
	s.retrySoon(key, t0)
	if p := s.plan(rc, accountView{canRead: true}, t0.Add(time.Second)); p.due {
		t.Fatal("due at once after a failed write: would hammer the vendor")
	}
	if p := s.plan(rc, accountView{canRead: true}, t0.Add(10*time.Second)); !p.due {
		t.Fatal("not due after one backoff step: the answer would be lost until the next refresh")
	}
	if got := s.lastRead(key); !got.Equal(t0) {
		t.Fatalf("last read %s, want %s: the lost answer must not be reused", got, t0)
	}
}

// After a start or failover, a credential whose status is current for its
// generation is not read at once: Ready and terminal ones at a stable
// point within their refresh interval, transient ones after a backoff
// step, those waiting for their provider as soon as it can read. Stale
// ones sync now.
func TestRestore(t *testing.T) {
	cases := []struct {
		name       string
		rc         *v1alpha1.RemoteCredential
		due        bool
		within     [2]time.Duration
		readyNotOK bool
	}{
		{name: "no status", rc: credential("new", "1", time.Hour), due: true},
		{name: "ready", rc: synced(credential("ready", "2", time.Hour)), within: [2]time.Duration{0, time.Hour}},
		{name: "expired", rc: failing(credential("expired", "3", time.Hour), v1alpha1.ReasonExpired, true), within: [2]time.Duration{0, time.Hour}},
		{name: "not found", rc: failing(credential("gone", "4", time.Hour), v1alpha1.ReasonNotFound, true), within: [2]time.Duration{0, time.Hour}},
		{name: "vendor down", rc: failing(credential("down", "5", time.Hour), v1alpha1.ReasonVendorUnavailable, false), within: [2]time.Duration{4500 * time.Millisecond, 5500 * time.Millisecond}},
		{name: "provider not ready", rc: failing(credential("waiting", "6", time.Hour), v1alpha1.ReasonProviderNotReady, false), within: [2]time.Duration{4500 * time.Millisecond, 5500 * time.Millisecond}, readyNotOK: true},
		// A restart does not start a failing credential's backoff over: one
		// failing for 3s retries at its first step (5s from the start), one
		// failing for an hour at its next capped step (≤ 5m), not now.
		{name: "vendor down for 3s", rc: failingSince(credential("down-3s", "9", time.Hour), v1alpha1.ReasonVendorUnavailable, false, t0.Add(-3*time.Second)),
			within: [2]time.Duration{1500 * time.Millisecond, 2500 * time.Millisecond}},
		{name: "vendor down for an hour", rc: failingSince(credential("down-1h", "10", time.Hour), v1alpha1.ReasonVendorUnavailable, false, t0.Add(-time.Hour)),
			within: [2]time.Duration{time.Millisecond, 5*time.Minute + time.Millisecond}},
		{name: "spec edited since", rc: func() *v1alpha1.RemoteCredential {
			rc := synced(credential("edited", "7", time.Hour))
			rc.Generation++
			return rc
		}(), due: true},
		{name: "sync requested since", rc: func() *v1alpha1.RemoteCredential {
			rc := synced(credential("requested", "8", time.Hour))
			rc.Annotations = map[string]string{v1alpha1.SyncRequestedAtAnnotation: "x"}
			return rc
		}(), due: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s schedule
			p := s.plan(tc.rc, accountView{canRead: !tc.readyNotOK}, t0)
			if p.due != tc.due {
				t.Fatalf("due = %v, want %v", p.due, tc.due)
			}
			if tc.due {
				return
			}
			next := s.next(client.ObjectKeyFromObject(tc.rc)).Sub(t0)
			if next < tc.within[0] || next >= tc.within[1] {
				t.Fatalf("first check after %s, want in [%s, %s)", next, tc.within[0], tc.within[1])
			}
			var again schedule
			again.plan(tc.rc, accountView{canRead: !tc.readyNotOK}, t0)
			if got := again.next(client.ObjectKeyFromObject(tc.rc)).Sub(t0); got != next {
				t.Fatalf("restore point not stable: %s then %s", next, got)
			}
			if tc.readyNotOK {
				if p := s.plan(tc.rc, accountView{canRead: true}, t0.Add(time.Second)); !p.due {
					t.Fatal("waiting for the provider: not due once it can read")
				}
			}
		})
	}
}

// A restarted manager over 1000 synced credentials refreshing hourly reads
// at most twice the steady rate in its first minute (N·60s/1h), and no
// more in any minute of the first hour.
func TestRestoreSpreadsAFleet(t *testing.T) {
	const n = 1000
	var s schedule
	perMinute := map[int]int{}
	for i := range n {
		rc := synced(credential(fmt.Sprintf("cred-%d", i), fmt.Sprint(4000+i), time.Hour))
		if p := s.plan(rc, accountView{canRead: true}, t0); p.due {
			t.Fatalf("%s due at once after a restart", rc.Name)
		}
		perMinute[int(s.next(client.ObjectKeyFromObject(rc)).Sub(t0)/time.Minute)]++
	}
	steady := float64(n) * 60 / 3600
	busiest := 0
	for m, c := range perMinute {
		if m < 0 || m >= 60 {
			t.Fatalf("a first check in minute %d: outside the refresh interval", m)
		}
		busiest = max(busiest, c)
	}
	t.Logf("%d credentials: first minute %d checks, busiest minute %d, steady rate %.1f/min", n, perMinute[0], busiest, steady)
	if float64(busiest) > 2*steady {
		t.Fatalf("busiest minute holds %d first checks, over twice the steady %.1f", busiest, steady)
	}
}

// RemoteCredentials naming one credential with the same interval refresh
// together (one read serves them); different credentials are spread.
func TestRefreshJitter(t *testing.T) {
	a, b := credential("team-a", "42", time.Minute), credential("team-b", "42", time.Minute)
	if refreshInterval(a) != refreshInterval(b) {
		t.Fatalf("two RemoteCredentials of one credential refresh apart: %s and %s", refreshInterval(a), refreshInterval(b))
	}
	const n = 1000
	interval := time.Minute
	rnd := rand.New(rand.NewPCG(1, 2))
	perSecond := map[int64]int{}
	first, last := time.Time{}, time.Time{}
	for i := range n {
		rc := credential(fmt.Sprintf("cred-%d", i), fmt.Sprint(rnd.Uint32()), interval)
		next := t0.Add(refreshInterval(rc))
		if d := next.Sub(t0); d < interval*9/10 || d > interval*11/10 {
			t.Fatalf("refresh after %s: outside ±10%% of %s", d, interval)
		}
		perSecond[next.Unix()]++
		if first.IsZero() || next.Before(first) {
			first = next
		}
		if next.After(last) {
			last = next
		}
	}
	average := float64(n) / last.Sub(first).Seconds()
	busiest := 0
	for _, c := range perSecond {
		busiest = max(busiest, c)
	}
	t.Logf("%d refreshes over %s: average %.1f/s, busiest second %d", n, last.Sub(first).Round(time.Millisecond), average, busiest)
	if float64(busiest) > 1.5*average {
		t.Fatalf("busiest second holds %d refreshes, more than 1.5× the average %.1f", busiest, average)
	}
}

// Expiring turns True expiryWarning before expiresAt and Ready turns
// Expired at expiresAt, without a sync; the reconcile wakes at each.
func TestTimeConditions(t *testing.T) {
	clock := clocktesting.NewFakeClock(t0)
	rc := synced(credential("a", "1", time.Hour))
	exp := metav1.NewTime(t0.Add(48 * time.Hour))
	rc.Status.ExpiresAt = &exp
	rc.Spec.ExpiryWarning = &metav1.Duration{Duration: 24 * time.Hour}
	next := t0.Add(time.Hour)

	setTimeConditions(rc, clock.Now())
	if c := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionExpiring); c.Status != metav1.ConditionFalse || c.Reason != v1alpha1.ReasonNotExpiring {
		t.Fatalf("two days before expiry: Expiring %s/%s", c.Status, c.Reason)
	}
	if d := wakeAfter(rc, next, clock.Now()); d != time.Hour {
		t.Fatalf("wake after %s, want the refresh in 1h", d)
	}
	next = t0.Add(30 * time.Hour)
	if d := wakeAfter(rc, next, clock.Now()); d != 24*time.Hour {
		t.Fatalf("wake after %s, want the warning in 24h", d)
	}
	clock.Step(24 * time.Hour)
	setTimeConditions(rc, clock.Now())
	if c := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionExpiring); c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonExpiresSoon {
		t.Fatalf("within the warning: Expiring %s/%s", c.Status, c.Reason)
	}
	if readyReason(rc) != v1alpha1.ReasonSynced {
		t.Fatalf("before expiry: Ready %s", readyReason(rc))
	}
	clock.Step(24*time.Hour - time.Millisecond)
	if d := wakeAfter(rc, t0.Add(100*time.Hour), clock.Now()); d != time.Second {
		t.Fatalf("wake after %s a millisecond before expiry, want the 1s floor", d)
	}
	clock.Step(time.Millisecond)
	setTimeConditions(rc, clock.Now())
	if readyReason(rc) != v1alpha1.ReasonExpired || !meta.IsStatusConditionTrue(rc.Status.Conditions, v1alpha1.ConditionStalled) {
		t.Fatalf("at expiry: Ready %s, want Expired and Stalled", readyReason(rc))
	}
}

// A credential whose known expiry has passed and that the vendor answers
// 404 for stays Expired (Elastic Cloud deletes expired keys), keeping its
// metadata; before its expiry a 404 is NotFound.
func TestNotFoundAfterExpiryIsExpired(t *testing.T) {
	notFound := &vendors.Error{Class: vendors.ErrNotFound, Status: 404, Code: "api_keys.key_not_found"}
	r := &remoteCredentialReconciler{schedule: &schedule{}}
	for _, tc := range []struct {
		name   string
		expiry time.Duration
		reason string
	}{
		{"expired", -time.Minute, v1alpha1.ReasonExpired},
		{"not yet", time.Minute, v1alpha1.ReasonNotFound},
	} {
		rc := synced(credential(tc.name, "1", time.Hour))
		exp := metav1.NewTime(t0.Add(tc.expiry))
		rc.Status.ExpiresAt, rc.Status.Name, rc.Status.Vendor = &exp, "ci key", "elasticCloud"
		next := r.vendorFailed(rc, 0, notFound, t0, time.Hour, t0)
		if got := readyReason(rc); got != tc.reason {
			t.Errorf("%s: Ready %s, want %s", tc.name, got, tc.reason)
		}
		if !meta.IsStatusConditionTrue(rc.Status.Conditions, v1alpha1.ConditionStalled) {
			t.Errorf("%s: not Stalled", tc.name)
		}
		if rc.Status.Name != "ci key" || rc.Status.ExpiresAt == nil {
			t.Errorf("%s: metadata lost: %+v", tc.name, rc.Status)
		}
		if next.Sub(t0) != time.Hour {
			t.Errorf("%s: next check after %s, want the refresh interval", tc.name, next.Sub(t0))
		}
		if tc.reason == v1alpha1.ReasonExpired {
			msg := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady).Message
			if want := "the vendor no longer lists it"; !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
	}
}

func readyReason(rc *v1alpha1.RemoteCredential) string {
	if c := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady); c != nil {
		return c.Reason
	}
	return ""
}

// The last successful check is reported for the object that was checked,
// not for a new object of the same name; terminal answers are not checks
// that succeeded.
func TestLastSyncMatchesUID(t *testing.T) {
	var s schedule
	rc := credential("a", "1", time.Hour)
	key := client.ObjectKeyFromObject(rc)
	if _, ok := s.LastSync(key, rc.UID); ok {
		t.Fatal("a last sync before any")
	}
	s.answered(rc, 0, t0, time.Hour, false)
	if _, ok := s.LastSync(key, rc.UID); ok {
		t.Fatal("a terminal answer counted as a successful check")
	}
	s.answered(rc, 0, t0.Add(time.Minute), time.Hour, true)
	if at, ok := s.LastSync(key, rc.UID); !ok || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("LastSync = %v, %v", at, ok)
	}
	if _, ok := s.LastSync(key, "uid-other"); ok {
		t.Fatal("a recreated object inherited the old one's check")
	}
	s.forget(key)
	if _, ok := s.LastSync(key, rc.UID); ok {
		t.Fatal("forgotten")
	}
}

// A credential an inventory sweep no longer lists is read at once to
// confirm it, whatever its refresh interval; once read, it is not due.
func TestPlanUnlistedIsConfirmed(t *testing.T) {
	var s schedule
	rc := synced(credential("a", "1", time.Hour))
	s.answered(rc, 0, t0, time.Hour, true)
	gone := accountView{canRead: true, unlistedAt: t0.Add(time.Minute)}
	if p := s.plan(rc, gone, t0.Add(time.Minute)); !p.due || !p.fresh {
		t.Fatalf("unlisted by a sweep: %+v, want due and fresh", p)
	}
	s.answered(rc, 0, t0.Add(61*time.Second), time.Hour, false)
	if p := s.plan(rc, gone, t0.Add(62*time.Second)); p.due {
		t.Fatal("due again after the confirming read")
	}
	if p := s.plan(rc, accountView{unlistedAt: t0.Add(2 * time.Hour)}, t0.Add(62*time.Second)); p.due {
		t.Fatal("due while the account cannot read")
	}
}

// A credential restored from a Ready status whose provider went while no
// manager ran is due at once (to say ProviderNotReady, without a vendor
// call), and not again while it waits for the provider.
func TestRestoreWithTheProviderGone(t *testing.T) {
	var s schedule
	rc := synced(credential("orphan", "9", time.Hour))
	gone := accountView{unusable: true}
	if p := s.plan(rc, gone, t0); !p.due {
		t.Fatal("a Ready credential of a provider that is gone is not due")
	}
	s.failed(rc, 0, t0, 0, providerBackoffCap, true)
	if p := s.plan(rc, gone, t0.Add(time.Second)); p.due {
		t.Fatal("due again while waiting for the provider")
	}
	waiting := failing(credential("waiting", "10", time.Hour), v1alpha1.ReasonProviderNotReady, false)
	if p := s.plan(waiting, gone, t0); p.due {
		t.Fatal("a credential already waiting for its provider is due at restore")
	}
}

// The status's metadata is about one vendor credential: an edit of the
// spec's id is seen once, so that the old metadata is dropped once.
func TestRefChanged(t *testing.T) {
	var s schedule
	rc := credential("a", "1", time.Hour)
	if s.refChanged(rc) {
		t.Fatal("no entry yet: nothing to compare")
	}
	s.answered(rc, 0, t0, time.Hour, true)
	if s.refChanged(rc) {
		t.Fatal("changed without an edit")
	}
	rc.Spec.ID = "2"
	if !s.refChanged(rc) {
		t.Fatal("an edit of the id is not a change")
	}
	if s.refChanged(rc) {
		t.Fatal("the same edit seen twice")
	}
}

// A fleet failing for an hour resumes its backoff after a restart: each
// credential at its next capped step, spread over the cap, none at once;
// and the resumed schedule carries on at the cap.
func TestRestoreKeepsTheBackoff(t *testing.T) {
	const n = 1000
	var s schedule
	first := 0
	for i := range n {
		rc := failingSince(credential(fmt.Sprintf("down-%d", i), fmt.Sprint(5000+i), time.Hour), v1alpha1.ReasonVendorUnavailable, false,
			t0.Add(-time.Hour-time.Duration(i)*time.Second))
		if p := s.plan(rc, accountView{canRead: true}, t0); p.due {
			t.Fatalf("%s due at once after a restart", rc.Name)
		}
		next := s.next(client.ObjectKeyFromObject(rc)).Sub(t0)
		if next <= 0 || next > backoffCap*11/10 {
			t.Fatalf("%s: next retry after %s, want within (0, %s]", rc.Name, next, backoffCap*11/10)
		}
		if next < time.Minute {
			first++
		}
		if again := s.failed(rc, 0, t0.Add(next), 0, backoffCap, false).Sub(t0.Add(next)); again < backoffCap*9/10 {
			t.Fatalf("%s: the retry after the resumed one comes %s later, want a capped step", rc.Name, again)
		}
	}
	// Without the restart about n·1m/5m retry in any minute.
	t.Logf("%d credentials failing for an hour: %d retry in the first minute after a restart", n, first)
	if first > n/5*3/2 {
		t.Fatalf("%d of %d retry in the first minute: the restart bunched them", first, n)
	}
}

// Unused: timed from lastUsedAt (or createdAt when never used) plus
// unusedAfter, without a read; Unknown for a vendor that does not report
// use; gone when unusedAfter is unset. The reconcile wakes when it turns.
func TestUnusedCondition(t *testing.T) {
	clock := clocktesting.NewFakeClock(t0)
	unused := func(rc *v1alpha1.RemoteCredential) (metav1.ConditionStatus, string) {
		c := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionUnused)
		if c == nil {
			return "", ""
		}
		return c.Status, c.Reason
	}
	rc := synced(credential("a", "1", time.Hour))
	rc.Spec.UnusedAfter = &metav1.Duration{Duration: 90 * 24 * time.Hour}
	used := metav1.NewTime(t0.Add(-80 * 24 * time.Hour))
	rc.Status.LastUsedAt = &used
	setTimeConditions(rc, clock.Now())
	if s, r := unused(rc); s != metav1.ConditionFalse || r != v1alpha1.ReasonRecentlyUsed {
		t.Fatalf("used 80 days ago, unusedAfter 90d: Unused %s/%s", s, r)
	}
	if d := wakeAfter(rc, t0.Add(30*24*time.Hour), clock.Now()); d != 10*24*time.Hour {
		t.Fatalf("wake after %s, want Unused turning True in 10 days", d)
	}
	clock.Step(10 * 24 * time.Hour)
	before := rc.DeepCopy()
	setTimeConditions(rc, clock.Now())
	if s, r := unused(rc); s != metav1.ConditionTrue || r != v1alpha1.ReasonNotUsedRecently {
		t.Fatalf("90 days after last use: Unused %s/%s", s, r)
	}
	if evs := credentialEvents(before, rc); len(evs) != 1 || evs[0].Reason != eventUnused || evs[0].Type != "Warning" {
		t.Fatalf("events when Unused turns True: %+v, want one Warning Unused", evs)
	}
	if evs := credentialEvents(rc, rc.DeepCopy()); len(evs) != 0 {
		t.Fatalf("events while Unused stays True: %+v", evs)
	}

	// Never used: timed from createdAt.
	rc.Status.LastUsedAt, rc.Status.NeverUsed = nil, true
	created := metav1.NewTime(clock.Now().Add(-24 * time.Hour))
	rc.Status.CreatedAt = &created
	setTimeConditions(rc, clock.Now())
	if s, r := unused(rc); s != metav1.ConditionFalse || r != v1alpha1.ReasonRecentlyCreated {
		t.Fatalf("never used, created a day ago: Unused %s/%s", s, r)
	}
	clock.Step(89 * 24 * time.Hour)
	setTimeConditions(rc, clock.Now())
	if s, r := unused(rc); s != metav1.ConditionTrue || r != v1alpha1.ReasonNeverUsed {
		t.Fatalf("never used, created 90 days ago: Unused %s/%s", s, r)
	}

	// unusedAfter removed: no condition.
	saved := rc.Spec.UnusedAfter
	rc.Spec.UnusedAfter = nil
	setTimeConditions(rc, clock.Now())
	if s, _ := unused(rc); s != "" {
		t.Fatalf("unusedAfter unset: Unused %s", s)
	}
	// A vendor that does not report use (neither lastUsedAt nor
	// neverUsed): no condition, not timed.
	rc.Spec.UnusedAfter, rc.Status.NeverUsed = saved, false
	if _, ok := unusedSince(rc); ok {
		t.Fatal("a vendor without last use is timed")
	}
	setTimeConditions(rc, clock.Now())
	if s, _ := unused(rc); s != "" {
		t.Fatalf("unusedAfter unset: Unused %s", s)
	}
}
