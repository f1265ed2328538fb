package controllers

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/credsync/credsync/api/v1alpha1"
)

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 20; n++ {
		d := backoff("ns/name", n, backoffCap)
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
		if d := backoff("ns/name", n, providerBackoffCap); d > 33*time.Second {
			t.Fatalf("provider backoff %s exceeds the cap", d)
		}
	}
}

func TestScheduleDue(t *testing.T) {
	var s schedule
	key := types.NamespacedName{Namespace: "a", Name: "b"}
	now := time.Now()
	if !s.due(key, "v1", now) {
		t.Fatal("never synced: due")
	}
	s.succeeded(key, "v1", now, time.Hour)
	if s.due(key, "v1", now.Add(time.Minute)) {
		t.Fatal("synced a minute ago with a 1h interval: not due")
	}
	if !s.due(key, "v2", now.Add(time.Minute)) {
		t.Fatal("basis changed: due")
	}
	if !s.due(key, "v1", now.Add(time.Hour)) {
		t.Fatal("interval passed: due")
	}
	next := s.failed(key, "v1", now, 30*time.Second, backoffCap)
	if next.Sub(now) < 30*time.Second {
		t.Fatalf("retry-after not honoured: next in %s", next.Sub(now))
	}
	s.forget(key)
	if !s.due(key, "v1", now) {
		t.Fatal("forgotten: due")
	}
}

func TestRetrySoonKeepsBasis(t *testing.T) {
	var s schedule
	key := types.NamespacedName{Namespace: "a", Name: "b"}
	now := time.Now()
	s.succeeded(key, "v1", now, time.Hour)
	s.retrySoon(key, now)
	if s.due(key, "v1", now.Add(time.Second)) {
		t.Fatal("due at once after a failed write: would hammer the vendor")
	}
	if !s.due(key, "v1", now.Add(10*time.Second)) {
		t.Fatal("not due after one backoff step: the answer would be lost until the next refresh")
	}
}

// A thousand credentials created (and so first synced) in the same second
// must not all refresh in the same second: the stable per-UID jitter
// spreads them over ±10% of the interval, evenly enough that the busiest
// second holds at most 1.5× the average.
func TestRefreshJitterSpreadsCredentialsCreatedTogether(t *testing.T) {
	const n = 1000
	interval := time.Minute
	rnd := rand.New(rand.NewPCG(1, 2))
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	var s schedule
	perSecond := map[int64]int{}
	first, last := time.Time{}, time.Time{}
	for i := range n {
		rc := &v1alpha1.RemoteCredential{}
		rc.Namespace, rc.Name = "team-a", fmt.Sprintf("cred-%d", i)
		rc.UID = types.UID(fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", rnd.Uint32(), rnd.Uint32()&0xffff, rnd.Uint32()&0xffff, rnd.Uint32()&0xffff, rnd.Uint64()&0xffffffffffff))
		rc.Spec.RefreshInterval = &metav1.Duration{Duration: interval}
		next := s.succeeded(types.NamespacedName{Namespace: rc.Namespace, Name: rc.Name}, "b", now, refreshInterval(rc))
		if d := next.Sub(now); d < interval*9/10 || d > interval*11/10 {
			t.Fatalf("refresh after %s: outside ±10%% of %s", d, interval)
		}
		if again := refreshInterval(rc); now.Add(again) != next {
			t.Fatalf("jitter is not stable per object: %s then %s", next.Sub(now), again)
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
