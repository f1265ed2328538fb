package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
)

var (
	busyProvider  = account.Key{Kind: v1alpha1.CredentialProviderKind, Namespace: "tenant-a", Name: "tines"}
	quietProvider = account.Key{Kind: v1alpha1.CredentialProviderKind, Namespace: "tenant-b", Name: "tines"}
)

func TestArrivalsPutAFewAheadOfABurst(t *testing.T) {
	clock := clocktesting.NewFakeClock(t0)
	a := newArrivals(clock)
	if p := a.priority(busyProvider, 0); p != 0 {
		t.Fatalf("a provider's first event: priority %d, want 0", p)
	}
	// A tenant applies 10,000 credentials, about 100 a second.
	prev := 0
	for i := 1; i < 10000; i++ {
		clock.Step(10 * time.Millisecond)
		p := a.priority(busyProvider, 0)
		if p > prev {
			t.Fatalf("event %d of the burst: priority %d rose above the previous %d", i+1, p, prev)
		}
		prev = p
	}
	if prev > -11 {
		t.Fatalf("the burst's last event: priority %d, want at most -11 (log2 of a half-life's events)", prev)
	}
	// Another tenant creates 20, one every 100ms: each queues ahead of
	// what the burst enqueues meanwhile.
	for i := range 20 {
		clock.Step(100 * time.Millisecond)
		quiet, busy := a.priority(quietProvider, 0), a.priority(busyProvider, 0)
		if quiet <= busy+5 {
			t.Fatalf("quiet provider's event %d: priority %d, the busy one's %d: want well ahead", i+1, quiet, busy)
		}
	}
}

func TestArrivalsForgetAQuietProvider(t *testing.T) {
	clock := clocktesting.NewFakeClock(t0)
	a := newArrivals(clock)
	for range 1000 {
		a.priority(busyProvider, 0)
	}
	clock.Step(arrivalHalfLife)
	if p := a.priority(busyProvider, 0); p != -8 {
		t.Fatalf("a half-life after 1000 events: priority %d, want -8 (log2 of 501, rounded down)", p)
	}
	// Quiet for ten half-lives: back to the base, and the count is gone.
	clock.Step(10 * arrivalHalfLife)
	if p := a.priority(busyProvider, handler.LowPriority); p != handler.LowPriority {
		t.Fatalf("after a quiet spell, initial list: priority %d, want %d", p, handler.LowPriority)
	}
	clock.Step(10 * arrivalHalfLife)
	a.priority(quietProvider, 0)
	if _, kept := a.byProvider[busyProvider]; kept || len(a.byProvider) != 1 {
		t.Fatalf("providers counted after a quiet spell: %v, want the one with an event now", a.byProvider)
	}
}

func TestArrivalsBandIsBounded(t *testing.T) {
	a := newArrivals(clocktesting.NewFakeClock(t0))
	a.byProvider[busyProvider] = &decaying{n: 1e300, at: t0}
	if p := a.priority(busyProvider, handler.LowPriority); p != handler.LowPriority-maxArrivalBand {
		t.Fatalf("priority %d, want %d", p, handler.LowPriority-maxArrivalBand)
	}
}

// TestFairRequestsQueueAFewAheadOfABurst enqueues, through the
// controller's handler into controller-runtime's priority queue, a
// burst of one provider's credentials and then another provider's one:
// the one is handed out second (behind the burst's first, enqueued at the
// same priority before it), not last; the initial list stays behind both.
func TestFairRequestsQueueAFewAheadOfABurst(t *testing.T) {
	ctx := context.Background()
	clock := clocktesting.NewFakeClock(t0)
	h := fairRequests(newArrivals(clock))
	q := priorityqueue.New[reconcile.Request]("fairness-test")
	defer q.ShutDown()
	rc := func(ns string, i int) *v1alpha1.RemoteCredential {
		rc := &v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("c-%d", i), ResourceVersion: "1"}}
		rc.Spec.ProviderRef.Name = "tines"
		return rc
	}
	h.Create(ctx, event.CreateEvent{Object: rc("tenant-c", 0), IsInInitialList: true}, q)
	for i := range 1000 {
		h.Create(ctx, event.CreateEvent{Object: rc("tenant-a", i)}, q)
	}
	clock.Step(time.Second)
	h.Create(ctx, event.CreateEvent{Object: rc("tenant-b", 0)}, q)

	var order []string
	for range 1002 {
		req, priority, _ := q.GetWithPriority()
		q.Done(req)
		order = append(order, fmt.Sprintf("%s/%s@%d", req.Namespace, req.Name, priority))
	}
	if q.Len() != 0 {
		t.Fatalf("%d requests left, want none", q.Len())
	}
	if order[0] != "tenant-a/c-0@0" || order[1] != "tenant-b/c-0@0" {
		t.Fatalf("first requests %v, want the burst's first and then the other provider's", order[:3])
	}
	if last := order[len(order)-1]; last != fmt.Sprintf("tenant-c/c-0@%d", handler.LowPriority) {
		t.Fatalf("last request %s, want the initial list's", last)
	}
}

func TestFairRequestsUpdates(t *testing.T) {
	ctx := context.Background()
	a := newArrivals(clocktesting.NewFakeClock(t0))
	h := fairRequests(a)
	q := priorityqueue.New[reconcile.Request]("fairness-test-updates")
	defer q.ShutDown()
	old := &v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-b", Name: "c", ResourceVersion: "1"}}
	old.Spec.ProviderRef.Name = "tines"
	// A resync (same resourceVersion) is low priority, as
	// controller-runtime's default handler has it.
	h.Update(ctx, event.UpdateEvent{ObjectOld: old, ObjectNew: old.DeepCopy()}, q)
	req, p, _ := q.GetWithPriority()
	q.Done(req)
	if p != handler.LowPriority {
		t.Fatalf("resync: priority %d, want %d", p, handler.LowPriority)
	}
	edited := old.DeepCopy()
	edited.ResourceVersion = "2"
	h.Update(ctx, event.UpdateEvent{ObjectOld: old, ObjectNew: edited}, q)
	req, p, _ = q.GetWithPriority()
	q.Done(req)
	if want := -1; p != want { // the provider's second event
		t.Fatalf("edit: priority %d, want %d", p, want)
	}
	if req.Name != "c" || req.Namespace != "tenant-b" {
		t.Fatalf("edit enqueued %v", req)
	}
}
