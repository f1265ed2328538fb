package controllers

import (
	"time"

	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// minWake is the soonest a reconciler asks to be woken again.
const minWake = time.Second

// wakeAt is the Result that wakes a reconciler's object at the time at of
// clk, a second from now at the soonest. The wait is reckoned as the
// reconcile returns, not when it decided: the API writes between the two
// (slow on a loaded API server) do not put the wake-up off.
func wakeAt(clk clock.PassiveClock, at time.Time) ctrl.Result {
	return ctrl.Result{RequeueAfter: max(at.Sub(clk.Now()), minWake)}
}

// The reconcilers' time-based wake-ups (a RequeueAfter, a provider's
// recount) are delayed adds to their work queue, and controller-runtime's
// priority queue times those with time.Now. With an injected clock other
// than the real one (a test's fake clock), newQueue builds client-go's
// rate-limiting queue instead, its delayed adds timed by that clock:
// stepping the clock wakes the objects whose time came. That queue has no
// priorities: the fairness between providers is tested on the priority
// queue itself (fairness_test.go). With the real clock newQueue returns
// nil: the controller builds its own priority queue, as it always did.
func newQueue(c clock.Clock) queueFunc {
	timed, ok := c.(clock.WithTicker)
	if _, isReal := c.(clock.RealClock); isReal || !ok {
		return nil
	}
	return func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		q := workqueue.NewTypedRateLimitingQueueWithConfig(rl, workqueue.TypedRateLimitingQueueConfig[reconcile.Request]{Name: name, Clock: timed})
		return realTimeRetries{q, rl}
	}
}

// queueFunc is a controller's NewQueue option.
type queueFunc = func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request]

// realTimeRetries retries a reconcile's error after the rate limiter's
// wait on the real clock, as controller-runtime's queue does: that wait is
// milliseconds, and a test that makes no time pass still sees the retry.
type realTimeRetries struct {
	workqueue.TypedRateLimitingInterface[reconcile.Request]
	rl workqueue.TypedRateLimiter[reconcile.Request]
}

// AddRateLimited adds item once the rate limiter's wait has passed.
func (q realTimeRetries) AddRateLimited(item reconcile.Request) {
	time.AfterFunc(q.rl.When(item), func() { q.Add(item) })
}
