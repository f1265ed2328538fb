package controllers

import (
	"context"
	"math"
	"sync"
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
)

// The work queue is shared by every provider's credentials and is FIFO
// within a priority: a provider whose credentials arrive by the thousand
// (a tenant applying 10,000 at once) would put them all ahead of another
// provider's few that arrive just after, which then wait for the whole
// backlog. So each credential event is enqueued at a priority that drops
// with how many events its provider has had recently: the burst queues
// behind the few.
const (
	// arrivalHalfLife is how fast a provider's count of recent events
	// decays: "recently" is the last minute or so.
	arrivalHalfLife = 30 * time.Second
	// maxArrivalBand bounds how far below its base an event can go.
	maxArrivalBand = 30
)

// arrivals counts each provider's recent credential events, an
// exponentially decaying count, and turns it into a work-queue priority.
type arrivals struct {
	clock clock.PassiveClock

	mu         sync.Mutex
	byProvider map[account.Key]*decaying
	pruned     time.Time
}

// decaying is a count that halves every arrivalHalfLife, as of at.
type decaying struct {
	n  float64
	at time.Time
}

func (d *decaying) valueAt(now time.Time) float64 {
	if !now.After(d.at) {
		return d.n
	}
	return d.n * math.Exp2(-float64(now.Sub(d.at))/float64(arrivalHalfLife))
}

func newArrivals(c clock.PassiveClock) *arrivals {
	return &arrivals{clock: c, byProvider: map[account.Key]*decaying{}}
}

// priority records one event of provider k and returns the priority to
// enqueue it at: base (0, or handler.LowPriority for the initial list)
// less log2 of the provider's recent events, this one included. A
// provider's first event in a while keeps base; its thousandth within
// seconds is about 10 below.
func (a *arrivals) priority(k account.Key, base int) int {
	now := a.clock.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.prune(now)
	d := a.byProvider[k]
	if d == nil {
		d = &decaying{}
		a.byProvider[k] = d
	}
	d.n, d.at = d.valueAt(now)+1, now
	return base - min(int(math.Log2(d.n)), maxArrivalBand)
}

// prune forgets, once per half-life, the providers whose count has
// decayed to where their next event keeps base: deleted providers and
// quiet ones.
func (a *arrivals) prune(now time.Time) {
	if now.Sub(a.pruned) < arrivalHalfLife {
		return
	}
	a.pruned = now
	for k, d := range a.byProvider {
		if d.valueAt(now) < 1 {
			delete(a.byProvider, k)
		}
	}
}

// fairRequests enqueues a RemoteCredential's own events (the controller's
// primary watch) at the priority a gives its provider: from 0 down for
// changes, from handler.LowPriority down for the initial list and
// resyncs, as controller-runtime's default handler does.
func fairRequests(a *arrivals) handler.TypedEventHandler[client.Object, reconcile.Request] {
	enqueue := func(o client.Object, base int, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)}
		pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request])
		if !ok {
			q.Add(req)
			return
		}
		priority := base
		if rc, ok := o.(*v1alpha1.RemoteCredential); ok {
			priority = a.priority(account.KeyFor(rc.Namespace, rc.Spec.ProviderRef), base)
		}
		pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(priority)}, req)
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			base := 0
			if e.IsInInitialList {
				base = handler.LowPriority
			}
			enqueue(e.Object, base, q)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			base := 0
			if e.ObjectOld.GetResourceVersion() == e.ObjectNew.GetResourceVersion() {
				base = handler.LowPriority
			}
			enqueue(e.ObjectNew, base, q)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, 0, q)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(e.Object, 0, q)
		},
	}
}
