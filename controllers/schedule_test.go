package controllers

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
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
