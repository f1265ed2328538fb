package vendors

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a settable clock for a gate's pauses.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testGate(l Limits) (*Gate, *fakeClock, *atomic.Int32) {
	clock := &fakeClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	var paused atomic.Int32
	g := NewGate(l, func() { paused.Add(1) })
	g.now = clock.now
	return g, clock, &paused
}

var unlimited = Limits{RequestsPerMinute: 1 << 20, Burst: 1 << 10, MaxConcurrent: 1 << 10}

// call passes the gate once and reports the read's outcome err.
func call(t *testing.T, g *Gate, err error) error {
	t.Helper()
	release, aerr := g.admit(context.Background())
	if aerr != nil {
		return aerr
	}
	release(err)
	return nil
}

func mustDefer(t *testing.T, err error, cause error) *DeferredError {
	t.Helper()
	d, ok := AsDeferred(err)
	if !ok {
		t.Fatalf("got %v, want a DeferredError", err)
	}
	if cause == nil && d.Cause != nil || cause != nil && !errors.Is(d.Cause, cause) {
		t.Fatalf("deferred with cause %v, want %v", d.Cause, cause)
	}
	return d
}

// A 401 pauses the whole provider; after the pause one probe goes, the
// others wait for it; a probe that succeeds reopens the provider.
func TestGateUnauthorizedPausesAndProbes(t *testing.T) {
	g, clock, paused := testGate(unlimited)
	unauthorized := &Error{Class: ErrUnauthorized, Status: 401, Message: "bad key"}
	if err := call(t, g, unauthorized); err != nil {
		t.Fatal(err)
	}
	if paused.Load() != 1 || !errors.Is(g.AuthFailure(), ErrUnauthorized) {
		t.Fatalf("not paused after a 401 (onPause %d, AuthFailure %v)", paused.Load(), g.AuthFailure())
	}
	for range 10 {
		d := mustDefer(t, call(t, g, nil), ErrUnauthorized)
		if d.Wait <= 0 || d.Wait > pauseBase*11/10 {
			t.Fatalf("first pause %s, want about %s", d.Wait, pauseBase)
		}
	}
	clock.add(pauseBase * 2)
	probe, err := g.admit(context.Background())
	if err != nil {
		t.Fatalf("probe not admitted: %v", err)
	}
	mustDefer(t, call(t, g, nil), ErrUnauthorized) // while the probe is out
	probe(unauthorized)
	d := mustDefer(t, call(t, g, nil), ErrUnauthorized)
	if d.Wait < pauseBase*2*9/10 {
		t.Fatalf("second pause %s did not grow", d.Wait)
	}
	if paused.Load() != 1 {
		t.Fatalf("onPause called %d times for one outage", paused.Load())
	}
	clock.add(time.Hour)
	if err := call(t, g, nil); err != nil { // the probe succeeds
		t.Fatal(err)
	}
	for range 5 {
		if err := call(t, g, nil); err != nil {
			t.Fatalf("not reopened after a good probe: %v", err)
		}
	}
	if g.AuthFailure() != nil {
		t.Fatal("AuthFailure after recovery")
	}
}

// A new gate lets one read go first: when the provider's key is bad, the
// reads that came meanwhile never reach the vendor.
func TestGateFirstReadProbesAlone(t *testing.T) {
	g, _, _ := testGate(unlimited)
	probe, err := g.admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	results := make(chan error, 5)
	for range 5 {
		go func() { results <- call(t, g, nil) }()
	}
	waitForWaiters(t, g, 5)
	probe(&Error{Class: ErrUnauthorized, Status: 401})
	for range 5 {
		mustDefer(t, <-results, ErrUnauthorized)
	}

	// And when the probe succeeds, those waiting go at once.
	ok, _, _ := testGate(unlimited)
	probe, err = ok.admit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		go func() { results <- call(t, ok, nil) }()
	}
	waitForWaiters(t, ok, 5)
	probe(nil)
	for range 5 {
		if err := <-results; err != nil {
			t.Fatalf("waited for a good probe, then: %v", err)
		}
	}
}

// Any answer but 401/429 to a probe reopens the provider: a 404 says the
// provider's credentials work.
func TestGateProbeAnsweredNotFoundReopens(t *testing.T) {
	g, clock, _ := testGate(unlimited)
	_ = call(t, g, &Error{Class: ErrUnauthorized})
	clock.add(time.Hour)
	_ = call(t, g, &Error{Class: ErrNotFound})
	if err := call(t, g, nil); err != nil {
		t.Fatalf("still paused: %v", err)
	}
}

func TestGateRateLimitedHonoursRetryAfter(t *testing.T) {
	g, clock, paused := testGate(unlimited)
	_ = call(t, g, &Error{Class: ErrRateLimited, Status: 429, RetryAfter: 90 * time.Second})
	d := mustDefer(t, call(t, g, nil), ErrRateLimited)
	if d.Wait != 90*time.Second {
		t.Fatalf("paused %s, want Retry-After 90s", d.Wait)
	}
	if paused.Load() != 0 || g.AuthFailure() != nil {
		t.Fatal("a 429 is not an authentication failure")
	}
	clock.add(89 * time.Second)
	mustDefer(t, call(t, g, nil), ErrRateLimited)
	clock.add(2 * time.Second)
	if err := call(t, g, nil); err != nil {
		t.Fatalf("not reopened after Retry-After: %v", err)
	}
}

// Without Retry-After a 429 still pauses, for a backoff step.
func TestGateRateLimitedWithoutRetryAfter(t *testing.T) {
	g, _, _ := testGate(unlimited)
	_ = call(t, g, &Error{Class: ErrRateLimited, Status: 429})
	d := mustDefer(t, call(t, g, nil), ErrRateLimited)
	if d.Wait < pauseBase*9/10 {
		t.Fatalf("paused only %s", d.Wait)
	}
}

func TestGateResetAuthOnSecretChange(t *testing.T) {
	g, _, _ := testGate(unlimited)
	_ = call(t, g, &Error{Class: ErrUnauthorized})
	g.ResetAuth()
	if err := call(t, g, nil); err != nil {
		t.Fatalf("paused after the Secret changed: %v", err)
	}
	// ResetAuth does not lift a rate-limit pause.
	_ = call(t, g, &Error{Class: ErrRateLimited, RetryAfter: time.Minute})
	g.ResetAuth()
	mustDefer(t, call(t, g, nil), ErrRateLimited)
}

func TestGateConcurrencyCap(t *testing.T) {
	g, _, _ := testGate(Limits{RequestsPerMinute: 1 << 20, Burst: 1 << 10, MaxConcurrent: 2})
	if err := call(t, g, nil); err != nil { // the first read probes alone
		t.Fatal(err)
	}
	r1, err1 := g.admit(context.Background())
	r2, err2 := g.admit(context.Background())
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	start := time.Now()
	mustDefer(t, call(t, g, nil), nil)
	if waited := time.Since(start); waited < maxInlineWait*9/10 {
		t.Fatalf("gave up after %s, want to wait %s in place first", waited, maxInlineWait)
	}
	// A slot that frees within the inline wait is taken.
	go func() { time.Sleep(100 * time.Millisecond); r1(nil) }()
	if err := call(t, g, nil); err != nil {
		t.Fatalf("freed slot not taken: %v", err)
	}
	r2(nil)
}

func TestGateTokenBucket(t *testing.T) {
	g, _, _ := testGate(Limits{RequestsPerMinute: 60, Burst: 2, MaxConcurrent: 10})
	g.verified = true
	start := time.Now()
	for i := range 2 {
		if err := call(t, g, nil); err != nil {
			t.Fatalf("burst read %d: %v", i, err)
		}
	}
	if err := call(t, g, nil); err != nil { // the next token is 1s away: waited in place
		t.Fatalf("third read: %v", err)
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("third read went after %s, before its token", waited)
	}

	slow, _, _ := testGate(Limits{RequestsPerMinute: 30, Burst: 1, MaxConcurrent: 10})
	slow.verified = true
	if err := call(t, slow, nil); err != nil {
		t.Fatal(err)
	}
	d := mustDefer(t, call(t, slow, nil), nil) // 2s away: handed back, not waited
	if d.Wait <= maxInlineWait || d.Wait > 2100*time.Millisecond {
		t.Fatalf("deferred for %s", d.Wait)
	}
	// The cancelled reservation gave its token back.
	d2 := mustDefer(t, call(t, slow, nil), nil)
	if d2.Wait > d.Wait {
		t.Fatalf("a deferred read kept its token: %s then %s", d.Wait, d2.Wait)
	}
}

func TestGateRateLimitHeaders(t *testing.T) {
	for _, tc := range []struct {
		remaining, interval string
		want                time.Duration
		ok                  bool
	}{
		{"0", "1m", time.Minute, true},
		{"0", "30", 30 * time.Second, true},
		{"0", "2.5", 2500 * time.Millisecond, true},
		{"0", "1000000h", maxRetryAfter, true},
		{"5", "1m", 0, false},
		{"0", "", 0, false},
		{"0", "-3", 0, false},
		{"", "1m", 0, false},
	} {
		h := http.Header{}
		h.Set("X-RateLimit-Remaining", tc.remaining)
		h.Set("X-RateLimit-Interval", tc.interval)
		got, ok := rateLimitHeaders(h.Get)
		if got != tc.want || ok != tc.ok {
			t.Errorf("remaining %q interval %q: got %s %v, want %s %v", tc.remaining, tc.interval, got, ok, tc.want, tc.ok)
		}
	}
	g, _, _ := testGate(unlimited)
	g.PauseFor(time.Minute)
	mustDefer(t, call(t, g, nil), nil)
}

func TestLimitsFor(t *testing.T) {
	l := Limits{RequestsPerMinute: 100}.withDefaults(Limits{RequestsPerMinute: 5, Burst: 7})
	if l != (Limits{RequestsPerMinute: 100, Burst: 7}) {
		t.Fatalf("got %+v", l)
	}
}

// A vendor that says its rate-limit window is used up (Elastic's
// x-ratelimit-* headers) holds the provider back for the window, even
// though the answer itself was a success.
func TestCallerHonoursRateLimitHeaders(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "100")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Interval", "30s")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	caller, err := NewCaller("test", caBundle, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	g, _, _ := testGate(unlimited)
	caller.gate = g
	req, err := caller.NewRequest(context.Background(), http.MethodGet, srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := caller.Do(req); err != nil {
		t.Fatal(err)
	}
	d := mustDefer(t, call(t, g, nil), nil)
	if d.Wait != 30*time.Second {
		t.Fatalf("held back for %s, want the 30s window", d.Wait)
	}
}

// waitForWaiters waits until n reads wait for g's probe.
func waitForWaiters(t *testing.T, g *Gate, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; {
		g.mu.Lock()
		w := g.waiting
		g.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reads wait for the probe, want %d", w, n)
		}
		runtime.Gosched()
	}
}

// admitted takes n reads through a verified gate at once.
func admitted(t *testing.T, g *Gate, n int) []func(error) {
	t.Helper()
	var releases []func(error)
	for range n {
		r, err := g.admit(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	return releases
}

// Sixteen reads in flight that all get a 429 are one backoff step, not 16.
func TestGateConcurrentFailuresAreOneStep(t *testing.T) {
	g, _, _ := testGate(unlimited)
	g.verified = true
	for _, release := range admitted(t, g, 16) {
		release(&Error{Class: ErrRateLimited, Status: 429})
	}
	d := mustDefer(t, call(t, g, nil), ErrRateLimited)
	if d.Wait > pauseBase*11/10 {
		t.Fatalf("paused %s after one round of 429s, want one step (%s)", d.Wait, pauseBase)
	}
}

// A pause from rate-limit headers is neither lifted by a good probe nor
// shortened by a 429's shorter backoff.
func TestGateHeaderPauseSurvives(t *testing.T) {
	g, _, _ := testGate(unlimited)
	g.verified = true
	release := admitted(t, g, 1)[0]
	g.PauseFor(time.Hour) // the answer's headers, read before release
	release(&Error{Class: ErrRateLimited, Status: 429})
	if d := mustDefer(t, call(t, g, nil), ErrRateLimited); d.Wait < 59*time.Minute {
		t.Fatalf("a 429 shortened the header pause to %s", d.Wait)
	}

	g2, clock2, _ := testGate(unlimited)
	_ = call(t, g2, &Error{Class: ErrUnauthorized, Status: 401})
	clock2.add(time.Minute)
	probe := admitted(t, g2, 1)[0]
	g2.PauseFor(time.Hour)
	probe(nil)
	if d := mustDefer(t, call(t, g2, nil), nil); d.Wait < 59*time.Minute {
		t.Fatalf("a good probe lifted the header pause: %s", d.Wait)
	}
}

// A probe that got no answer proves nothing: the next read probes again.
func TestGateUnansweredProbeProvesNothing(t *testing.T) {
	g, _, _ := testGate(unlimited)
	_ = call(t, g, &Error{Class: ErrUnavailable, Message: "no answer within 30s"})
	if g.verified {
		t.Fatal("a timed-out probe verified the provider")
	}
	_ = call(t, g, &Error{Class: ErrNotFound, Status: 404})
	if !g.verified {
		t.Fatal("a 404 answer did not verify the provider")
	}
}

// A 401 to a read made with the old Secret does not pause the provider
// again once the Secret changed.
func TestGateIgnoresOutcomesOfTheOldSecret(t *testing.T) {
	g, _, paused := testGate(unlimited)
	g.verified = true
	old := admitted(t, g, 1)[0]
	g.ResetAuth() // the Secret was rotated meanwhile
	old(&Error{Class: ErrUnauthorized, Status: 401})
	if g.AuthFailure() != nil || paused.Load() != 0 {
		t.Fatal("a late 401 from the old Secret paused the provider")
	}
	if err := call(t, g, nil); err != nil {
		t.Fatalf("the new Secret's probe was refused: %v", err)
	}
}

type panicky struct{}

func (panicky) Get(context.Context, Ref) (*Credential, error) { panic("boom") }

// A client that panics does not leave the probe (or a slot) taken.
func TestGatedClientReleasesOnPanic(t *testing.T) {
	g, _, _ := testGate(Limits{RequestsPerMinute: 1 << 20, Burst: 1 << 10, MaxConcurrent: 1})
	c := gatedClient{Client: panicky{}, gate: g}
	func() {
		defer func() { _ = recover() }()
		_, _ = c.Get(context.Background(), Ref{ID: "1"})
	}()
	g.mu.Lock()
	probing := g.probing
	g.mu.Unlock()
	if probing || len(g.slots) != 0 {
		t.Fatalf("after a panic: probing %v, %d slots taken", probing, len(g.slots))
	}
	if err := call(t, g, nil); err != nil {
		t.Fatalf("the provider is stuck: %v", err)
	}
}
