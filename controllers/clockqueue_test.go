package controllers

import (
	"testing"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// get takes the queue's next item, failing when none comes within a second.
func getItem(t *testing.T, q priorityqueue.PriorityQueue[string]) (string, int) {
	t.Helper()
	type got struct {
		item     string
		priority int
	}
	ch := make(chan got, 1)
	go func() {
		it, p, _ := q.GetWithPriority()
		ch <- got{it, p}
	}()
	select {
	case g := <-ch:
		q.Done(g.item)
		return g.item, g.priority
	case <-time.After(time.Second):
		t.Fatal("no item came")
		return "", 0
	}
}

// expectEmpty fails when the queue hands out an item.
func expectEmpty(t *testing.T, q priorityqueue.PriorityQueue[string]) {
	t.Helper()
	if n := q.Len(); n != 0 {
		t.Fatalf("queue holds %d ready items, want none", n)
	}
}

// settle lets the goroutines of fired timers add their items.
func settle() { time.Sleep(50 * time.Millisecond) }

func TestClockQueueDelayedAddsWaitOnTheClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	q := newClockQueue(priorityqueue.New[string]("test-clock-delayed"), clk)
	defer q.ShutDown()

	q.AddWithOpts(priorityqueue.AddOpts{After: 10 * time.Second, Priority: new(-100)}, "a")
	q.AddAfter("b", 5*time.Second)
	settle()
	expectEmpty(t, q)

	clk.Step(5*time.Second - time.Millisecond)
	settle()
	expectEmpty(t, q)
	clk.Step(time.Millisecond)
	settle()
	if it, _ := getItem(t, q); it != "b" {
		t.Fatalf("got %q, want b at 5s", it)
	}
	expectEmpty(t, q)

	clk.Step(5 * time.Second)
	settle()
	if it, p := getItem(t, q); it != "a" || p != -100 {
		t.Fatalf("got %q at priority %d, want a at -100 (the add's own)", it, p)
	}
}

func TestClockQueueKeepsEarliestTimeAndHighestPriority(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	q := newClockQueue(priorityqueue.New[string]("test-clock-earliest"), clk)
	defer q.ShutDown()

	q.AddWithOpts(priorityqueue.AddOpts{After: 10 * time.Second, Priority: new(5)}, "a")
	q.AddWithOpts(priorityqueue.AddOpts{After: 3 * time.Second, Priority: new(-5)}, "a")
	q.AddWithOpts(priorityqueue.AddOpts{After: 20 * time.Second, Priority: new(7)}, "a")
	clk.Step(3 * time.Second)
	settle()
	if it, p := getItem(t, q); it != "a" || p != 7 {
		t.Fatalf("got %q at priority %d, want a at 7, at 3s", it, p)
	}
	// One entry per item: the later adds were merged, nothing is left.
	clk.Step(time.Minute)
	settle()
	expectEmpty(t, q)
}

func TestClockQueueAddNowReplacesDelayedAdd(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	q := newClockQueue(priorityqueue.New[string]("test-clock-now"), clk)
	defer q.ShutDown()

	q.AddAfter("a", 10*time.Second)
	q.Add("a")
	if it, _ := getItem(t, q); it != "a" {
		t.Fatalf("got %q, want a at once", it)
	}
	clk.Step(time.Minute)
	settle()
	expectEmpty(t, q)
}

func TestClockQueueRateLimitedAddsKeepTheQueueBackoff(t *testing.T) {
	clk := clocktesting.NewFakeClock(time.Unix(1_000_000, 0))
	q := newClockQueue(priorityqueue.New[string]("test-clock-ratelimited"), clk)
	defer q.ShutDown()

	// The default limiter's first step is 5ms of real time: no clock step.
	q.AddRateLimited("a")
	if it, _ := getItem(t, q); it != "a" {
		t.Fatalf("got %q, want a after the queue's backoff", it)
	}
}

func TestNewQueueOnlyForAnotherClock(t *testing.T) {
	if newQueue(clock.RealClock{}, logr.Discard()) != nil {
		t.Error("the real clock got a queue of credsync's: controller-runtime's own must stay")
	}
	f := newQueue(clocktesting.NewFakeClock(time.Now()), logr.Discard())
	if f == nil {
		t.Fatal("a fake clock got controller-runtime's queue: its wake-ups would not obey the clock")
	}
	q := f("test-new-queue", nil)
	defer q.ShutDown()
	if _, ok := q.(priorityqueue.PriorityQueue[reconcile.Request]); !ok {
		t.Error("the queue is not a priority queue: fairness.go's priorities would be lost")
	}
}
