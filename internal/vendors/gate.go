package vendors

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits is one provider's request budget.
type Limits struct {
	// RequestsPerMinute is the sustained rate of credential reads.
	RequestsPerMinute int
	// Burst is how many reads may go at once after a quiet spell.
	Burst int
	// MaxConcurrent caps reads in flight.
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

// DefaultLimits apply where neither the vendor nor the provider sets any.
var DefaultLimits = Limits{RequestsPerMinute: 600, Burst: 20, MaxConcurrent: 8}

// Gate bounds the vendor reads of one provider: a token bucket, a cap on
// reads in flight, and a pause of the whole provider after a 429 (until
// Retry-After) or a 401 (the provider's own credentials are refused: no
// credential of it can be read). Until the provider's credentials are known
// to work (first use, a new Secret) and after a pause, one read goes first
// as a probe and the others wait for its answer. So N credentials of a
// provider whose key was revoked cost one vendor call per backoff step, not N.
type Gate struct {
	mu       sync.Mutex
	limiter  *rate.Limiter
	slots    chan struct{}
	limits   Limits
	until    time.Time // no reads before
	cause    error     // what paused the provider; nil for a budget pause
	failures int
	// verified: an answer other than 401/429 came since the gate was made
	// or the Secret changed.
	verified  bool
	probing   bool
	probeDone chan struct{} // closed when the probe in flight ends
	waiting   int           // reads waiting for the probe (tests watch it)
	// epoch counts Secret changes: outcomes of older reads are ignored.
	epoch int
	// onPause is called (outside the lock) when a 401 pauses the provider.
	onPause func()
	// now is the clock of pauses (tests move it).
	now func() time.Time
}

// Gate tuning.
const (
	// maxInlineWait is the longest a read waits for a token or a slot
	// in place; a longer wait is handed back as a DeferredError.
	maxInlineWait = time.Second
	// probeWait is how long reads wait while a probe is in flight.
	probeWait = 2 * time.Second
	// probeInlineWait is how long a read waits in place for the probe's
	// answer before it is handed back: short, as it holds a worker.
	probeInlineWait = 250 * time.Millisecond
	pauseBase       = 5 * time.Second
	pauseCap        = 5 * time.Minute
)

// NewGate returns a gate enforcing limits (DefaultLimits for unset fields).
// onPause, when set, is told when the vendor refuses the provider's own
// credentials.
func NewGate(limits Limits, onPause func()) *Gate {
	g := &Gate{onPause: onPause, now: time.Now}
	g.SetLimits(limits)
	return g
}

// SetLimits changes the budget (the provider was edited).
func (g *Gate) SetLimits(l Limits) {
	l = l.withDefaults(DefaultLimits)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.limits == l {
		return
	}
	g.limits = l
	g.limiter = rate.NewLimiter(rate.Limit(float64(l.RequestsPerMinute)/60), l.Burst)
	g.slots = make(chan struct{}, l.MaxConcurrent)
}

// DeferredError says a read was not made: the provider is paused (Cause is
// the vendor error that paused it) or its budget is spent for now (Cause is
// nil). Try again after Wait.
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

// AuthFailure returns the error with which the vendor refused the
// provider's own credentials, while the provider is paused for it.
func (g *Gate) AuthFailure() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if errors.Is(g.cause, ErrUnauthorized) {
		return g.cause
	}
	return nil
}

// ResetAuth is told that the provider's Secret changed: a pause caused by
// refused credentials is lifted (the next read may succeed) and the new
// Secret is probed before other reads go.
func (g *Gate) ResetAuth() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.epoch++
	g.verified = false // the new Secret is untested: one read goes first
	if errors.Is(g.cause, ErrUnauthorized) {
		g.cause, g.until, g.failures = nil, time.Time{}, 0
	}
}

// PauseFor holds reads back for d without a cause: the vendor said its
// rate limit window is used up.
func (g *Gate) PauseFor(d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if until := g.now().Add(d); until.After(g.until) {
		g.until = until
	}
}

// admit waits for the right to make one read. It returns release (call it
// when the read is done, with its error) or a *DeferredError.
func (g *Gate) admit(ctx context.Context) (func(error), error) {
	probe, epoch, err := g.turn(ctx)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	limiter, slots := g.limiter, g.slots
	g.mu.Unlock()
	acquired := false
	defer func() {
		if !acquired && probe {
			g.mu.Lock()
			g.endProbe()
			g.mu.Unlock()
		}
	}()
	token, err := waitToken(ctx, limiter)
	if err != nil {
		return nil, err
	}
	timer := time.NewTimer(maxInlineWait)
	defer timer.Stop()
	select {
	case slots <- struct{}{}:
	case <-timer.C:
		token.Cancel() // no request made: give the token back
		return nil, &DeferredError{Wait: maxInlineWait}
	case <-ctx.Done():
		token.Cancel()
		return nil, ctx.Err()
	}
	acquired = true
	return func(err error) {
		<-slots
		g.done(err, probe, epoch)
	}, nil
}

// turn says whether the provider may be called now, whether this read is
// the probe, and the gate's epoch. While a probe is out, it waits in place
// for its answer up to probeInlineWait.
func (g *Gate) turn(ctx context.Context) (probe bool, epoch int, err error) {
	waited := false
	for {
		g.mu.Lock()
		now, epoch := g.now(), g.epoch
		if now.Before(g.until) {
			err := &DeferredError{Wait: g.until.Sub(now), Cause: g.cause}
			g.mu.Unlock()
			return false, epoch, err
		}
		probe = g.cause != nil || !g.verified
		if !probe {
			g.mu.Unlock()
			return false, epoch, nil
		}
		if !g.probing {
			g.probing, g.probeDone = true, make(chan struct{})
			g.mu.Unlock()
			return true, epoch, nil
		}
		done, cause := g.probeDone, g.cause
		g.waiting++
		g.mu.Unlock()
		if waited {
			g.unwait()
			return false, epoch, &DeferredError{Wait: probeWait, Cause: cause}
		}
		timer := time.NewTimer(probeInlineWait)
		select {
		case <-done:
			waited = true
		case <-timer.C:
			g.unwait()
			return false, epoch, &DeferredError{Wait: probeWait, Cause: cause}
		case <-ctx.Done():
			timer.Stop()
			g.unwait()
			return false, epoch, ctx.Err()
		}
		timer.Stop()
		g.unwait()
	}
}

func (g *Gate) unwait() {
	g.mu.Lock()
	g.waiting--
	g.mu.Unlock()
}

// endProbe marks the probe in flight as ended; g.mu is held.
func (g *Gate) endProbe() {
	if g.probing {
		g.probing = false
		close(g.probeDone)
	}
}

// waitToken takes a token from limiter, waiting in place up to
// maxInlineWait; a longer wait is a DeferredError. The reservation is
// returned so that a read that is not made can give its token back.
func waitToken(ctx context.Context, limiter *rate.Limiter) (*rate.Reservation, error) {
	r := limiter.Reserve()
	d := r.Delay()
	if d > maxInlineWait {
		r.Cancel()
		return nil, &DeferredError{Wait: d}
	}
	if d == 0 {
		return r, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return r, nil
	case <-ctx.Done():
		r.Cancel()
		return nil, ctx.Err()
	}
}

// done records a read's outcome. A 401 or a 429 pauses the provider for
// the next backoff step (or Retry-After, when longer); reads that fail
// together count as one step, and a pause never shortens one already set
// (by Retry-After or rate-limit headers). An answer to a probe that is
// neither reopens the provider; a probe that got no answer (timeout,
// connection error) proves nothing and changes nothing. Outcomes of reads
// made before the Secret changed (an older epoch) are ignored.
func (g *Gate) done(err error, probe bool, epoch int) {
	unauthorized := errors.Is(err, ErrUnauthorized)
	g.mu.Lock()
	if probe {
		g.endProbe()
	}
	notify := false
	now := g.now()
	switch {
	case epoch != g.epoch:
	case unauthorized || errors.Is(err, ErrRateLimited):
		if !now.Before(g.until) || probe { // a new step, not a read of the same one
			g.failures++
		}
		wait := Backoff("provider", g.failures, pauseBase, pauseCap)
		if ra := RetryAfter(err); ra > wait {
			wait = ra
		}
		notify = unauthorized && !errors.Is(g.cause, ErrUnauthorized)
		g.cause = err
		if until := now.Add(wait); until.After(g.until) {
			g.until = until
		}
	case probe && answered(err):
		g.cause, g.failures, g.verified = nil, 0, true
	}
	onPause := g.onPause
	g.mu.Unlock()
	if notify && onPause != nil {
		onPause()
	}
}

// answered reports whether err (nil included) came with an answer from the
// vendor, which proves the provider's credentials were accepted.
func answered(err error) bool {
	var e *Error
	return err == nil || (errors.As(err, &e) && e.Status != 0)
}

// gatedClient makes every read of a Client pass its provider's Gate.
type gatedClient struct {
	Client
	gate *Gate
}

func (c gatedClient) Get(ctx context.Context, ref Ref) (cred *Credential, err error) {
	release, err := c.gate.admit(ctx)
	if err != nil {
		return nil, err
	}
	defer func() {
		if p := recover(); p != nil {
			release(errPanicked) // never leave the probe or the slot taken
			panic(p)
		}
		release(err)
	}()
	return c.Client.Get(ctx, ref)
}

var errPanicked = errors.New("vendor client panicked")

// rateLimitHeaders reads the x-ratelimit-remaining and x-ratelimit-interval
// headers some vendors send (Elastic Cloud): when nothing remains, the
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

// Backoff is base·2^(failures-1), capped at limit, with a ±10% jitter that
// is stable for seed and failures.
func Backoff(seed string, failures int, base, limit time.Duration) time.Duration {
	d := float64(base) * math.Pow(2, float64(max(failures, 1)-1))
	if d > float64(limit) {
		d = float64(limit)
	}
	return time.Duration(d * (0.9 + 0.2*UnitJitter(seed, failures)))
}

// UnitJitter is a stable pseudo-random number in [0,1) for seed and salt.
func UnitJitter(seed string, salt int) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	_, _ = h.Write([]byte{byte(salt), byte(salt >> 8)})
	return float64(h.Sum64()%10000) / 10000
}
