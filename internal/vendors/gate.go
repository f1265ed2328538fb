package vendors

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/credsync/credsync/internal/backoff"
)

// Limits is one provider's request budget.
type Limits struct {
	// RequestsPerMinute is the sustained rate of vendor calls.
	RequestsPerMinute int
	// Burst is how many calls may go at once after a quiet spell.
	Burst int
	// MaxConcurrent caps calls in flight.
	MaxConcurrent int
}

// withDefaults fills unset fields from def.
func (l Limits) withDefaults(def Limits) Limits {
	if l.RequestsPerMinute <= 0 {
		l.RequestsPerMinute = def.RequestsPerMinute
	}
	if l.Burst <= 0 {
		l.Burst = def.Burst
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = def.MaxConcurrent
	}
	return l
}

// defaultLimits apply where neither the vendor nor the provider sets any.
var defaultLimits = Limits{RequestsPerMinute: 600, Burst: 20, MaxConcurrent: 8}

// Gate is one provider's request budget, shared by every call made for it:
// a token bucket, a cap on calls in flight, and a pause of the whole
// provider after a 429 (until Retry-After, or for a backoff step) or when
// the vendor says its rate-limit window is used up. Whether the vendor
// accepts the provider's key is not the gate's business: the account
// verifies it (package account).
type Gate struct {
	clock clock.Clock

	mu       sync.Mutex
	limiter  *rate.Limiter
	slots    chan struct{}
	limits   Limits
	until    time.Time // no calls before
	cause    error     // the 429 that paused the provider; nil for a header pause
	failures int       // 429s in a row, counted in backoff steps
}

// Gate tuning.
const (
	// maxInlineWait is the longest a call waits for a token or a slot
	// in place; a longer wait is handed back as a DeferredError.
	maxInlineWait = time.Second
)

// NewGate returns a gate enforcing limits (defaultLimits for unset fields)
// on clock (the real one when nil).
func NewGate(limits Limits, c clock.Clock) *Gate {
	if c == nil {
		c = clock.RealClock{}
	}
	g := &Gate{clock: c}
	g.SetLimits(limits)
	return g
}

// SetLimits changes the budget (the provider was edited).
func (g *Gate) SetLimits(l Limits) {
	l = l.withDefaults(defaultLimits)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.limits == l {
		return
	}
	g.limits = l
	g.limiter = rate.NewLimiter(rate.Limit(float64(l.RequestsPerMinute)/60), l.Burst)
	g.slots = make(chan struct{}, l.MaxConcurrent)
}

// DeferredError says a call was not made: the provider is paused (Cause is
// the 429 that paused it, nil for a rate-limit window) or its budget is
// spent for now. Try again after Wait.
type DeferredError struct {
	Wait  time.Duration
	Cause error
}

func (e *DeferredError) Error() string {
	if e.Cause == nil {
		return fmt.Sprintf("provider request budget spent: not calling the vendor for %s", e.Wait.Round(time.Second))
	}
	return fmt.Sprintf("provider paused after the vendor answered: %v", e.Cause)
}

// AsDeferred unwraps err into a *DeferredError, if it is one.
func AsDeferred(err error) (*DeferredError, bool) {
	var d *DeferredError
	ok := errors.As(err, &d)
	return d, ok
}

// PauseFor holds calls back for d: the vendor said its rate-limit window
// is used up. A pause is never shortened.
func (g *Gate) PauseFor(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until := g.clock.Now().Add(d); until.After(g.until) {
		g.until = until
	}
}

// Do makes one call through the gate: fn runs when the budget allows, or
// Do returns a *DeferredError without running it. fn's error is the
// call's outcome: a 429 pauses the provider.
func (g *Gate) Do(ctx context.Context, fn func() error) (err error) {
	release, err := g.admit(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			release(errPanicked) // never leave a slot taken
			panic(p)
		}
		release(err)
	}()
	return fn()
}

// admit waits for the right to make one call. It returns release (call it
// when the call is done, with its error) or a *DeferredError.
func (g *Gate) admit(ctx context.Context) (func(error), error) {
	g.mu.Lock()
	now := g.clock.Now()
	if now.Before(g.until) {
		err := &DeferredError{Wait: g.until.Sub(now), Cause: g.cause}
		g.mu.Unlock()
		return nil, err
	}
	limiter, slots := g.limiter, g.slots
	g.mu.Unlock()

	token := limiter.ReserveN(now, 1)
	if d := token.DelayFrom(now); d > maxInlineWait {
		token.CancelAt(now)
		return nil, &DeferredError{Wait: d}
	} else if d > 0 {
		if err := g.sleep(ctx, d); err != nil {
			token.CancelAt(g.clock.Now())
			return nil, err
		}
	}
	timer := g.clock.NewTimer(maxInlineWait)
	defer timer.Stop()
	select {
	case slots <- struct{}{}:
	case <-timer.C():
		token.CancelAt(g.clock.Now()) // no call made: give the token back
		return nil, &DeferredError{Wait: maxInlineWait}
	case <-ctx.Done():
		token.CancelAt(g.clock.Now())
		return nil, ctx.Err()
	}
	return func(err error) {
		<-slots
		g.done(err)
	}, nil
}

func (g *Gate) sleep(ctx context.Context, d time.Duration) error {
	t := g.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// done records a call's outcome. A 429 pauses the provider for the next
// backoff step (or Retry-After, when longer); calls that fail together
// count as one step, and a pause never shortens one already set (by
// Retry-After or rate-limit headers). Any other answer ends the run of
// 429s.
func (g *Gate) done(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.clock.Now()
	switch {
	case errors.Is(err, ErrRateLimited):
		if !now.Before(g.until) { // a new step, not a call of the same one
			g.failures++
		}
		wait := backoff.Step("provider", g.failures, backoff.Cap)
		if ra := RetryAfter(err); ra > wait {
			wait = ra
		}
		g.cause = err
		if until := now.Add(wait); until.After(g.until) {
			g.until = until
		}
	case Answered(err):
		g.failures = 0
		if !now.Before(g.until) {
			g.cause = nil
		}
	}
}

// Answered reports whether err (nil included) came with an answer from the
// vendor.
func Answered(err error) bool {
	var e *Error
	return err == nil || (errors.As(err, &e) && e.Status != 0)
}

// rateLimitHeaders reads the x-ratelimit-remaining and x-ratelimit-interval
// headers some vendors send: when nothing remains, the
// window's length is how long to hold back.
func rateLimitHeaders(get func(string) string) (time.Duration, bool) {
	if strings.TrimSpace(get("X-Ratelimit-Remaining")) != "0" {
		return 0, false
	}
	v := strings.TrimSpace(get("X-Ratelimit-Interval"))
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return min(d, maxRetryAfter), true
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 && !math.IsInf(secs, 0) {
		// Capped before converting: a huge value would overflow Duration.
		return time.Duration(min(secs, maxRetryAfter.Seconds()) * float64(time.Second)), true
	}
	return 0, false
}
