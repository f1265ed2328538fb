package controllers

import (
	"sync"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// The reconcilers' time-based wake-ups (a RequeueAfter, a provider's
// recount) are delayed adds to their work queue, and controller-runtime's
// priority queue times those with time.Now. With an injected clock other
// than the real one (a test's fake clock), newQueue builds the same queue
// with its delayed adds timed by that clock: stepping the clock wakes the
// objects whose time came. With the real clock it returns nil: the
// controller builds its own queue, as it always did.
func newQueue(c clock.Clock, log logr.Logger) queueFunc {
	timed, ok := c.(clock.WithDelayedExecution)
	if _, isReal := c.(clock.RealClock); isReal || !ok {
		return nil
	}
	return func(name string, rl workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request] {
		return newClockQueue(priorityqueue.New(name, func(o *priorityqueue.Opts[reconcile.Request]) {
			o.Log = log.WithValues("controller", name)
			o.RateLimiter = rl
		}), timed)
	}
}

// queueFunc is a controller's NewQueue option.
type queueFunc = func(string, workqueue.TypedRateLimiter[reconcile.Request]) workqueue.TypedRateLimitingInterface[reconcile.Request]

// clockQueue is a priority queue whose delayed adds wait on clock: one
// timer per item, as the queue keeps one entry per item (the earliest
// time and the highest priority of its adds win; an add without delay
// takes the place of a delayed one). Rate-limited adds (a reconcile's
// error) keep the queue's own backoff, which is short and needs no clock.
type clockQueue[T comparable] struct {
	priorityqueue.PriorityQueue[T]
	clock clock.WithDelayedExecution

	mu      sync.Mutex
	pending map[T]*delayedAdd
}

// delayedAdd is an item's add waiting for its time.
type delayedAdd struct {
	at       time.Time
	priority int
	timer    clock.Timer
}

func newClockQueue[T comparable](q priorityqueue.PriorityQueue[T], c clock.WithDelayedExecution) *clockQueue[T] {
	return &clockQueue[T]{PriorityQueue: q, clock: c, pending: map[T]*delayedAdd{}}
}

// Add adds item now.
func (q *clockQueue[T]) Add(item T) { q.AddWithOpts(priorityqueue.AddOpts{}, item) }

// AddAfter adds item once d has passed on the clock.
func (q *clockQueue[T]) AddAfter(item T, d time.Duration) {
	q.AddWithOpts(priorityqueue.AddOpts{After: d}, item)
}

// AddWithOpts adds items now, or once o.After has passed on the clock.
func (q *clockQueue[T]) AddWithOpts(o priorityqueue.AddOpts, items ...T) {
	if o.RateLimited {
		q.PriorityQueue.AddWithOpts(o, items...)
		return
	}
	if o.After <= 0 {
		q.mu.Lock()
		for _, it := range items {
			q.cancelLocked(it)
		}
		q.mu.Unlock()
		q.PriorityQueue.AddWithOpts(o, items...)
		return
	}
	priority := 0
	if o.Priority != nil {
		priority = *o.Priority
	}
	at := q.clock.Now().Add(o.After)
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, it := range items {
		d := &delayedAdd{at: at, priority: priority}
		if p := q.pending[it]; p != nil && !p.at.After(at) {
			p.priority = max(p.priority, priority)
			continue
		} else if p != nil {
			d.priority = max(p.priority, priority)
			p.timer.Stop()
		}
		// A fake clock runs the function while it holds its own lock:
		// take ours (and add) on another goroutine.
		d.timer = q.clock.AfterFunc(o.After, func() { go q.fire(it, d) })
		q.pending[it] = d
	}
}

// fire adds item, whose delayed add d came due, unless d was replaced.
func (q *clockQueue[T]) fire(item T, d *delayedAdd) {
	q.mu.Lock()
	if q.pending[item] != d {
		q.mu.Unlock()
		return
	}
	delete(q.pending, item)
	q.mu.Unlock()
	q.PriorityQueue.AddWithOpts(priorityqueue.AddOpts{Priority: &d.priority}, item)
}

func (q *clockQueue[T]) cancelLocked(item T) {
	if p := q.pending[item]; p != nil {
		p.timer.Stop()
		delete(q.pending, item)
	}
}

// ShutDown stops the timers and the queue.
func (q *clockQueue[T]) ShutDown() {
	q.stop()
	q.PriorityQueue.ShutDown()
}

// ShutDownWithDrain stops the timers and drains the queue.
func (q *clockQueue[T]) ShutDownWithDrain() {
	q.stop()
	q.PriorityQueue.ShutDownWithDrain()
}

func (q *clockQueue[T]) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for it := range q.pending {
		q.cancelLocked(it)
	}
}
