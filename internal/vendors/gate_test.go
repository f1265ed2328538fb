package vendors

import (
	"context"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/backoff"
)

var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// testGate is a gate on a fake clock: pauses, tokens and inline waits move
// only when the test steps the clock.
func testGate(l Limits) (*Gate, *clocktesting.FakeClock) {
	clock := clocktesting.NewFakeClock(t0)
	return NewGate(l, clock), clock
}

var unlimited = Limits{RequestsPerMinute: 1 << 20, Burst: 1 << 10, MaxConcurrent: 1 << 10}

// call passes the gate once and reports the call's outcome err.
func call(t *testing.T, g *Gate, err error) error {
	t.Helper()
	release, aerr := g.admit(context.Background())
	if aerr != nil {
		return aerr
	}
	release(err)
	return nil
}

// goCall passes the gate once in a goroutine (the call may wait in place)
// and delivers what admit said.
func goCall(g *Gate, err error) <-chan error {
	res := make(chan error, 1)
	go func() {
		release, aerr := g.admit(context.Background())
		if aerr == nil {
			release(err)
		}
		res <- aerr
	}()
	return res
}

// waitForTimer waits until a call waits in place on clock.
func waitForTimer(t *testing.T, clock *clocktesting.FakeClock) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !clock.HasWaiters(); runtime.Gosched() {
		if time.Now().After(deadline) {
			t.Fatal("no call waits in place")
		}
	}
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

// mustStep checks a pause of about one backoff step of n 429s in a row.
func mustStep(t *testing.T, d *DeferredError, n int) {
	t.Helper()
	want := backoff.Step("provider", n, backoff.Cap)
	if d.Wait != want {
		t.Fatalf("paused %s, want backoff step %d (%s)", d.Wait, n, want)
	}
}

func TestGateRateLimitedHonoursRetryAfter(t *testing.T) {
	g, clock := testGate(unlimited)
	_ = call(t, g, &Error{Class: ErrRateLimited, Status: 429, RetryAfter: 90 * time.Second})
	d := mustDefer(t, call(t, g, nil), ErrRateLimited)
	if d.Wait != 90*time.Second {
		t.Fatalf("paused %s, want Retry-After 90s", d.Wait)
	}
	clock.Step(89 * time.Second)
	_ = mustDefer(t, call(t, g, nil), ErrRateLimited)
	clock.Step(2 * time.Second)
	if err := call(t, g, nil); err != nil {
		t.Fatalf("not reopened after Retry-After: %v", err)
	}
}

// Without Retry-After a 429 still pauses, for a backoff step; 429s in a
// row grow it, and any answer ends the run.
func TestGateRateLimitedWithoutRetryAfter(t *testing.T) {
	g, clock := testGate(unlimited)
	rateLimited := &Error{Class: ErrRateLimited, Status: 429}
	_ = call(t, g, rateLimited)
	d := mustDefer(t, call(t, g, nil), ErrRateLimited)
	if d.Wait < backoff.Base*9/10 || d.Wait > backoff.Base*11/10 {
		t.Fatalf("paused %s, want about %s", d.Wait, backoff.Base)
	}
	mustStep(t, d, 1)

	clock.Step(time.Hour)
	_ = call(t, g, rateLimited)
	mustStep(t, mustDefer(t, call(t, g, nil), ErrRateLimited), 2)

	clock.Step(time.Hour)
	_ = call(t, g, &Error{Class: ErrNotFound, Status: 404}) // an answer
	_ = call(t, g, rateLimited)
	mustStep(t, mustDefer(t, call(t, g, nil), ErrRateLimited), 1)
}

// Whether the vendor accepts the provider's key is the account's business:
// a 401 through the gate pauses nothing, nor does a call that got no answer.
func TestGateUnauthorizedDoesNotPause(t *testing.T) {
	g, _ := testGate(unlimited)
	for _, outcome := range []error{
		&Error{Class: ErrUnauthorized, Status: 401, Message: "bad key"},
		&Error{Class: ErrUnauthorized, Status: 401, Message: "bad key"},
		&Error{Class: ErrUnavailable, Message: "no answer within 30s"},
	} {
		err := g.Do(context.Background(), func() error { return outcome })
		if err != outcome {
			t.Fatalf("Do = %v, want the call's own error %v", err, outcome)
		}
		if err := call(t, g, nil); err != nil {
			t.Fatalf("after %v: %v", outcome, err)
		}
	}
}

// Do runs the call when the budget allows and hands its error back; while
// the provider is paused it does not run it.
func TestGateDo(t *testing.T) {
	g, _ := testGate(unlimited)
	calls := 0
	if err := g.Do(context.Background(), func() error { calls++; return nil }); err != nil || calls != 1 {
		t.Fatalf("Do = %v after %d calls, want nil after 1", err, calls)
	}
	rateLimited := &Error{Class: ErrRateLimited, Status: 429, RetryAfter: time.Minute}
	if err := g.Do(context.Background(), func() error { calls++; return rateLimited }); err != rateLimited {
		t.Fatalf("Do = %v, want the 429", err)
	}
	d := mustDefer(t, g.Do(context.Background(), func() error { calls++; return nil }), ErrRateLimited)
	if d.Wait != time.Minute || calls != 2 {
		t.Fatalf("paused %s after %d calls, want 1m after 2 (none while paused)", d.Wait, calls)
	}
}

func TestGateConcurrencyCap(t *testing.T) {
	g, clock := testGate(Limits{RequestsPerMinute: 1 << 20, Burst: 1 << 10, MaxConcurrent: 2})
	r1, err1 := g.admit(context.Background())
	r2, err2 := g.admit(context.Background())
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	// A third call waits in place for a slot, up to maxInlineWait.
	res := goCall(g, nil)
	waitForTimer(t, clock)
	clock.Step(maxInlineWait - time.Millisecond)
	select {
	case err := <-res:
		t.Fatalf("gave up before %s: %v", maxInlineWait, err)
	default:
	}
	clock.Step(time.Millisecond)
	if d := mustDefer(t, <-res, nil); d.Wait != maxInlineWait {
		t.Fatalf("deferred for %s, want %s", d.Wait, maxInlineWait)
	}
	// A slot that frees within the inline wait is taken.
	res = goCall(g, nil)
	waitForTimer(t, clock)
	r1(nil)
	if err := <-res; err != nil {
		t.Fatalf("freed slot not taken: %v", err)
	}
	r2(nil)
	if len(g.slots) != 0 {
		t.Fatalf("%d slots taken after every call ended", len(g.slots))
	}
}

func TestGateTokenBucket(t *testing.T) {
	g, clock := testGate(Limits{RequestsPerMinute: 60, Burst: 2, MaxConcurrent: 10})
	for i := range 2 {
		if err := call(t, g, nil); err != nil {
			t.Fatalf("burst call %d: %v", i, err)
		}
	}
	// The next token is 1s away: waited in place.
	res := goCall(g, nil)
	waitForTimer(t, clock)
	clock.Step(time.Second - time.Millisecond)
	select {
	case err := <-res:
		t.Fatalf("third call went before its token: %v", err)
	default:
	}
	clock.Step(time.Millisecond)
	if err := <-res; err != nil {
		t.Fatalf("third call: %v", err)
	}

	slow, clock := testGate(Limits{RequestsPerMinute: 30, Burst: 1, MaxConcurrent: 10})
	if err := call(t, slow, nil); err != nil {
		t.Fatal(err)
	}
	d := mustDefer(t, call(t, slow, nil), nil) // 2s away: handed back, not waited
	if d.Wait != 2*time.Second {
		t.Fatalf("deferred for %s, want 2s", d.Wait)
	}
	// The cancelled reservation gave its token back.
	if d2 := mustDefer(t, call(t, slow, nil), nil); d2.Wait != d.Wait {
		t.Fatalf("a deferred call kept its token: %s then %s", d.Wait, d2.Wait)
	}
	clock.Step(2 * time.Second)
	if err := call(t, slow, nil); err != nil {
		t.Fatalf("once the token came: %v", err)
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
	g, clock := testGate(unlimited)
	g.PauseFor(time.Minute)
	if d := mustDefer(t, call(t, g, nil), nil); d.Wait != time.Minute {
		t.Fatalf("held back for %s, want 1m", d.Wait)
	}
	clock.Step(time.Minute)
	if err := call(t, g, nil); err != nil {
		t.Fatalf("not reopened after the window: %v", err)
	}
}

func TestLimitsFor(t *testing.T) {
	l := Limits{RequestsPerMinute: 100}.withDefaults(Limits{RequestsPerMinute: 5, Burst: 7})
	if l != (Limits{RequestsPerMinute: 100, Burst: 7}) {
		t.Fatalf("got %+v", l)
	}
	v := Vendor{Limits: Limits{RequestsPerMinute: 5, Burst: 7, MaxConcurrent: 3}}
	spec := &v1alpha1.CredentialProviderSpec{RateLimit: &v1alpha1.RateLimit{RequestsPerMinute: 100, MaxConcurrent: 2}}
	if got := v.LimitsFor(spec); got != (Limits{RequestsPerMinute: 100, Burst: 7, MaxConcurrent: 2}) {
		t.Fatalf("LimitsFor(spec with rateLimit) = %+v", got)
	}
	if got := v.LimitsFor(&v1alpha1.CredentialProviderSpec{}); got != v.Limits {
		t.Fatalf("LimitsFor(spec without rateLimit) = %+v, want the vendor's %+v", got, v.Limits)
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
	caller, err := NewCaller("test", &Destinations{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, false, caBundle, time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer caller.Close()
	g, _ := testGate(unlimited)
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

// admitted takes n calls through g at once.
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

// Sixteen calls in flight that all get a 429 are one backoff step, not 16.
func TestGateConcurrentFailuresAreOneStep(t *testing.T) {
	g, clock := testGate(unlimited)
	for _, release := range admitted(t, g, 16) {
		release(&Error{Class: ErrRateLimited, Status: 429})
	}
	d := mustDefer(t, call(t, g, nil), ErrRateLimited)
	if d.Wait > backoff.Base*11/10 {
		t.Fatalf("paused %s after one round of 429s, want one step (%s)", d.Wait, backoff.Base)
	}
	mustStep(t, d, 1)
	// The next 429 after the pause is the second step, not the 17th.
	clock.Step(d.Wait)
	_ = call(t, g, &Error{Class: ErrRateLimited, Status: 429})
	mustStep(t, mustDefer(t, call(t, g, nil), ErrRateLimited), 2)
}

// A pause from rate-limit headers is neither shortened by a 429's shorter
// backoff, nor by a shorter window, nor lifted by a good answer.
func TestGateHeaderPauseSurvives(t *testing.T) {
	g, _ := testGate(unlimited)
	release := admitted(t, g, 1)[0]
	g.PauseFor(time.Hour) // the answer's headers, read before release
	release(&Error{Class: ErrRateLimited, Status: 429})
	if d := mustDefer(t, call(t, g, nil), ErrRateLimited); d.Wait != time.Hour {
		t.Fatalf("a 429 shortened the header pause to %s", d.Wait)
	}

	g2, _ := testGate(unlimited)
	release = admitted(t, g2, 1)[0]
	g2.PauseFor(time.Hour)
	g2.PauseFor(time.Minute)
	release(nil)
	if d := mustDefer(t, call(t, g2, nil), nil); d.Wait != time.Hour {
		t.Fatalf("a shorter window or a good answer changed the header pause to %s", d.Wait)
	}
}

// A call that panics does not leave its slot taken, and the panic goes on.
func TestGateDoReleasesOnPanic(t *testing.T) {
	g, _ := testGate(Limits{RequestsPerMinute: 1 << 20, Burst: 1 << 10, MaxConcurrent: 1})
	var recovered any
	func() {
		defer func() { recovered = recover() }()
		_ = g.Do(context.Background(), func() error { panic("boom") })
	}()
	if recovered != "boom" {
		t.Fatalf("recovered %v, want the call's panic", recovered)
	}
	if len(g.slots) != 0 {
		t.Fatalf("after a panic: %d slots taken", len(g.slots))
	}
	if err := call(t, g, nil); err != nil {
		t.Fatalf("the provider is stuck: %v", err)
	}
}

// countingClient counts the calls that reach it.
type countingClient struct {
	gets, verifies, lists, closes atomic.Int32
}

func (c *countingClient) Get(context.Context, Ref) (*Credential, error) {
	c.gets.Add(1)
	return &Credential{Name: "n"}, nil
}

func (c *countingClient) Verify(context.Context) error { c.verifies.Add(1); return nil }
func (c *countingClient) ListPage(context.Context, *v1alpha1.Inventory, string) (*Page, error) {
	c.lists.Add(1)
	return &Page{}, nil
}
func (c *countingClient) Close() { c.closes.Add(1) }

// A client built with a gate passes it on every call: a paused provider's
// Get and Verify do not reach the vendor client; Close is passed through.
func TestRegistryClientPassesTheGate(t *testing.T) {
	inner := &countingClient{}
	v := Vendor{
		Name:      "x",
		Selected:  func(s *v1alpha1.CredentialProviderSpec) bool { return s.Tines != nil },
		SecretRef: func(*v1alpha1.CredentialProviderSpec) SecretRef { return SecretRef{} },
		URL:       func(*v1alpha1.CredentialProviderSpec) (string, error) { return "https://x.example", nil },
		New:       func(Config) (Client, error) { return inner, nil },
	}
	r := NewRegistry(v)
	g, clock := testGate(unlimited)
	spec := &v1alpha1.CredentialProviderSpec{Tines: &v1alpha1.TinesProvider{}}
	c, err := r.NewClient("p", false, &r.vendors[0], spec, nil, g)
	if err != nil {
		t.Fatal(err)
	}
	if cred, err := c.Get(context.Background(), Ref{ID: "1"}); err != nil || cred == nil || cred.Name != "n" {
		t.Fatalf("Get = %+v, %v", cred, err)
	}
	if err := c.Verify(context.Background()); err != nil {
		t.Fatal(err)
	}
	g.PauseFor(time.Minute)
	cred, err := c.Get(context.Background(), Ref{ID: "1"})
	_ = mustDefer(t, err, nil)
	if cred != nil {
		t.Fatalf("Get while paused = %+v", cred)
	}
	_ = mustDefer(t, c.Verify(context.Background()), nil)
	if inner.gets.Load() != 1 || inner.verifies.Load() != 1 {
		t.Fatalf("gets %d, verifies %d reached the client, want 1 and 1", inner.gets.Load(), inner.verifies.Load())
	}
	clock.Step(time.Minute)
	if _, err := c.Get(context.Background(), Ref{ID: "1"}); err != nil {
		t.Fatalf("after the pause: %v", err)
	}
	c.Close()
	if inner.closes.Load() != 1 {
		t.Fatalf("Close reached the client %d times, want 1", inner.closes.Load())
	}
}
