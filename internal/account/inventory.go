package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/backoff"
	"github.com/credsync/credsync/internal/vendors"
)

// maxPages bounds one sweep: pagination that does not end is an invalid
// answer, not a loop.
const maxPages = 10000

// inventory is what an account knows of its whole vendor account: the
// sweep in progress, if any, and what the last complete one found.
type inventory struct {
	spec    *v1alpha1.Inventory // nil: inventory off
	running *sweep
	listing *Listing // the last complete sweep; nil before the first
	// unlisted are the credentials the last complete sweep no longer
	// listed, and when that sweep started: their reads must confirm it.
	unlisted map[vendors.Ref]time.Time
	err      error // why the last sweep failed; nil after a success
	fails    int   // sweeps in a row that failed
	nextAt   time.Time
}

// sweep is one listing of the vendor account in progress: it resumes
// from its cursor after the request budget held it back.
type sweep struct {
	started time.Time
	cursor  string
	pages   int
	seen    map[string]bool // cursors asked for: a repeated one is a loop
	items   []vendors.Item
	// at is where each credential is in items: one listed twice (offsets
	// shift when credentials come and go during a sweep) counts once, as
	// its later answer. It is also the set of credentials listed.
	at map[vendors.Ref]int
}

// lists reports whether the sweep listed ref.
func (s *sweep) lists(ref vendors.Ref) bool {
	_, ok := s.at[ref]
	return ok
}

// add appends a page's items to the sweep.
func (s *sweep) add(items []vendors.Item) {
	if s.at == nil {
		s.at = make(map[vendors.Ref]int, len(items))
	}
	for _, it := range items {
		if i, ok := s.at[it.Ref]; ok {
			s.items[i] = it
			continue
		}
		s.at[it.Ref] = len(s.items)
		s.items = append(s.items, it)
	}
}

// Listing is what a complete sweep found.
type Listing struct {
	// At is when the sweep started: every item is at least this fresh.
	At    time.Time
	Items []Listed
}

// Listed is one credential a sweep listed: what the inventory shows of it.
type Listed struct {
	Ref        vendors.Ref
	Name       string
	Owner      string
	CreatedAt  *time.Time
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	// ReportsUse: the vendor reports use (a nil LastUsedAt is never used).
	ReportsUse bool
}

// UnusedAt reports whether the credential was not used within after, at
// at: last used (or, never used, created) at least after before at. A
// vendor that does not report use never says unused.
func (l *Listed) UnusedAt(at time.Time, after time.Duration) bool {
	base := l.LastUsedAt
	if base == nil {
		base = l.CreatedAt
	}
	return l.ReportsUse && (base == nil || !at.Before(base.Add(after)))
}

// SweepResult is the state of an account's inventory after Sweep.
type SweepResult struct {
	// Listing is the last complete sweep; nil before the first.
	Listing *Listing
	// Err says why the last sweep failed (a vendors.Error, or a
	// ProviderError when the account cannot read); nil after a success
	// and while a sweep is in progress.
	Err error
	// Completed: a sweep completed in this call.
	Completed bool
	// Unlisted is how many credentials the earlier sweep listed that the
	// one completed in this call did not.
	Unlisted int
	// Next is when Sweep should be called again; 0 when the account
	// cannot sweep until its provider is usable again, which the
	// provider's own check schedules.
	Next time.Duration
}

// awaitingFirstSweep reports whether reads should wait for the account's
// first sweep, which will serve them: inventory is on and no sweep has
// completed or failed yet. a.mu is held.
func (a *Account) awaitingFirstSweep() bool {
	inv := &a.inventory
	return inv.spec != nil && inv.listing == nil && inv.err == nil
}

// setInventory applies spec.inventory (nil: off); a.mu is held. A shorter
// interval brings the next sweep forward; a change of what is listed (a
// vendor's inventory block) sweeps at once.
func (a *Account) setInventory(spec *v1alpha1.Inventory) {
	inv := &a.inventory
	if spec == nil {
		*inv = inventory{}
		return
	}
	if old := inv.spec; old != nil {
		scope, oldScope := spec.DeepCopy(), old.DeepCopy()
		scope.Interval, scope.Adopt, oldScope.Interval, oldScope.Adopt = metav1.Duration{}, false, metav1.Duration{}, false
		if limit := a.owner.opts.Clock.Now().Add(spec.Interval.Duration); !equality.Semantic.DeepEqual(scope, oldScope) {
			// A sweep paused half-way lists the old scope: its cursor
			// means nothing under the new one. Start over.
			inv.running, inv.nextAt = nil, time.Time{}
		} else if inv.running == nil && inv.nextAt.After(limit) {
			inv.nextAt = limit
		}
	}
	inv.spec = spec.DeepCopy()
}

// Sweep lists the account's credentials when a sweep is due, through the
// provider's request budget: page after page until the sweep completes,
// the budget holds it back (it resumes from that page at the next call),
// or a page fails (the sweep starts over after a backoff). A complete
// sweep serves reads: its items go into the read store, and answers it
// did not list are dropped from it (they are confirmed by a read). A
// sweep never publishes a partial listing.
func (a *Account) Sweep(ctx context.Context) SweepResult {
	a.mu.Lock()
	inv, c, st := &a.inventory, a.client, a.store
	now := a.owner.opts.Clock.Now()
	if inv.spec == nil {
		a.mu.Unlock()
		return SweepResult{}
	}
	if err := a.unusable(); errors.Is(err, ErrPending) {
		// The key's check is due (it runs before the sweep) or held back
		// by the budget until verifyAt.
		a.mu.Unlock()
		return SweepResult{Listing: inv.listing, Err: inv.err, Next: max(a.verifyAt.Sub(now), time.Second)}
	} else if err != nil {
		inv.running, inv.err = nil, err
		a.mu.Unlock()
		return SweepResult{Listing: inv.listing, Err: err}
	}
	if inv.running == nil && now.Before(inv.nextAt) {
		defer a.mu.Unlock()
		return SweepResult{Listing: inv.listing, Err: inv.err, Next: inv.nextAt.Sub(now)}
	}
	if inv.running == nil {
		inv.running = &sweep{started: now, seen: map[string]bool{}}
	}
	s, spec := inv.running, inv.spec
	a.mu.Unlock()

	err := s.run(ctx, c, spec)
	if errors.Is(err, vendors.ErrUnauthorized) || errors.Is(err, vendors.ErrDestinationNotAllowed) {
		a.suspect(c) // the provider checks its key (and destination) again
	}
	a.mu.Lock()
	awaited := a.awaitingFirstSweep()
	res := a.swept(c, s, st, err)
	woken := awaited && !a.awaitingFirstSweep()
	a.mu.Unlock()
	if (woken || res.Unlisted > 0) && a.owner.opts.OnChange != nil {
		// The reads that waited for the first sweep go; the credentials a
		// sweep no longer lists are confirmed now.
		a.owner.opts.OnChange(a.key)
	}
	return res
}

// swept records the end of a sweep's run; a.mu is held.
func (a *Account) swept(c vendors.Client, s *sweep, st *store, err error) SweepResult {
	inv := &a.inventory
	if a.client != c || inv.running != s {
		// Rebuilt or switched off meanwhile: this sweep is of an old key.
		return SweepResult{Listing: inv.listing, Err: inv.err, Next: time.Second}
	}
	now := a.owner.opts.Clock.Now()
	if d, ok := vendors.AsDeferred(err); ok {
		return SweepResult{Listing: inv.listing, Err: inv.err, Next: d.Wait}
	}
	if errors.Is(err, vendors.ErrRateLimited) {
		// The provider is paused: the sweep resumes from this page after it.
		return SweepResult{Listing: inv.listing, Err: inv.err, Next: max(vendors.RetryAfter(err), time.Second)}
	}
	inv.running = nil
	if err != nil {
		inv.fails++
		inv.err = err
		retry := backoff.Step(a.key.String()+"/inventory", inv.fails, min(backoff.Cap, inv.spec.Interval.Duration))
		inv.nextAt = now.Add(max(retry, vendors.RetryAfter(err)))
		return SweepResult{Listing: inv.listing, Err: err, Next: inv.nextAt.Sub(now)}
	}
	listing := listingOf(s)
	inv.unlisted = unlisted(inv.listing, s)
	inv.listing = listing
	inv.err, inv.fails = nil, 0
	st.putSweep(s, 2*inv.spec.Interval.Duration)
	inv.nextAt = nextSweep(s.started, now, inv.spec.Interval.Duration, a.key.String())
	return SweepResult{Listing: inv.listing, Completed: true, Unlisted: len(inv.unlisted), Next: inv.nextAt.Sub(now)}
}

// nextSweep is when the sweep after one that started at started and
// completed at now is due: an interval (with its stable jitter) after
// started, so that what sweeps serve is never older than an interval and
// its jitter, however long listing takes (a slow sweep does not make the
// refreshes that a sweep is due to serve GET); but a tenth of the interval
// after now at the soonest, so that an account whose listing takes longer
// than the interval is not listed back to back.
func nextSweep(started, now time.Time, interval time.Duration, key string) time.Time {
	next := started.Add(backoff.Jitter(interval, key, backoff.Sweep))
	if floor := now.Add(interval / 10); next.Before(floor) {
		return floor
	}
	return next
}

// unlisted maps the credentials before listed that the complete sweep
// after does not, to when after started.
func unlisted(before *Listing, after *sweep) map[vendors.Ref]time.Time {
	if before == nil {
		return nil
	}
	var out map[vendors.Ref]time.Time
	for _, it := range before.Items {
		if !after.lists(it.Ref) {
			if out == nil {
				out = map[vendors.Ref]time.Time{}
			}
			out[it.Ref] = after.started
		}
	}
	return out
}

// UnlistedAt returns when a sweep started that no longer listed the
// credential ref, which an earlier sweep listed (zero if none did): a
// credential that was last read before then must be read again now.
func (a *Account) UnlistedAt(ref vendors.Ref) time.Time {
	if a == nil {
		return time.Time{}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inventory.unlisted[ref]
}

// run lists pages from the sweep's cursor until the last, or an error.
func (s *sweep) run(ctx context.Context, c vendors.Client, spec *v1alpha1.Inventory) error {
	for {
		if s.pages >= maxPages {
			return &vendors.Error{Class: vendors.ErrInvalidResponse, Message: fmt.Sprintf("the list did not end after %d pages", maxPages)}
		}
		if s.seen[s.cursor] {
			return &vendors.Error{Class: vendors.ErrInvalidResponse, Message: fmt.Sprintf("the list's page %d points back at an earlier page", s.pages+1)}
		}
		page, err := c.ListPage(ctx, spec, s.cursor)
		if err != nil {
			return err
		}
		s.seen[s.cursor] = true
		s.pages++
		s.add(page.Items)
		if page.Next == "" {
			return nil
		}
		s.cursor = page.Next
	}
}

// listingOf keeps what the inventory shows of a complete sweep's items.
func listingOf(s *sweep) *Listing {
	l := &Listing{At: s.started, Items: make([]Listed, 0, len(s.items))}
	for _, it := range s.items {
		c := it.Credential
		l.Items = append(l.Items, Listed{Ref: it.Ref, Name: c.Name, Owner: c.Owner, CreatedAt: c.CreatedAt, ExpiresAt: c.ExpiresAt,
			LastUsedAt: c.LastUsedAt, ReportsUse: c.ReportsUse})
	}
	return l
}

// LastSweep returns when the last complete inventory sweep of the provider
// started (metrics).
func (as *Accounts) LastSweep(kind, namespace, name string) (time.Time, bool) {
	as.mu.Lock()
	a := as.accounts[Key{Kind: kind, Namespace: namespace, Name: name}]
	as.mu.Unlock()
	if a == nil {
		return time.Time{}, false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if l := a.inventory.listing; l != nil {
		return l.At, true
	}
	return time.Time{}, false
}
