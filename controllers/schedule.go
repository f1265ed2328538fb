package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/credsync/credsync/internal/vendors"
)

// Backoff bounds for transient failures.
const (
	backoffBase = 5 * time.Second
	// backoffCap caps the wait after vendor failures.
	backoffCap = 5 * time.Minute
	// providerBackoffCap caps the wait while the provider is not ready, so
	// that a Secret created later is picked up within a minute.
	providerBackoffCap = 30 * time.Second
)

// schedule remembers, per RemoteCredential, when the vendor may next be
// called and what the last call was made for. It lives in memory: after a
// restart every credential is synced once.
type schedule struct {
	mu      sync.Mutex
	entries map[types.NamespacedName]*scheduleEntry
}

type scheduleEntry struct {
	// basis is what the last sync was made for: generation, provider
	// version and sync request. A different basis makes a sync due at once.
	basis    string
	next     time.Time
	failures int
	// fresh: the next sync must read the vendor, not reuse a shared answer
	// (the last result could not be written).
	fresh bool
}

// due reports whether a sync is due for key with the given basis.
func (s *schedule) due(key types.NamespacedName, basis string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	return e == nil || e.basis != basis || !now.Before(e.next)
}

// fresh reports whether the next sync of key must read the vendor afresh:
// it is the first, its basis changed (spec, provider, Secret, sync
// request), or the last result could not be written.
func (s *schedule) fresh(key types.NamespacedName, basis string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	return e == nil || e.basis != basis || e.fresh
}

// next returns when the vendor may next be called for key (zero if never synced).
func (s *schedule) next(key types.NamespacedName) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil {
		return e.next
	}
	return time.Time{}
}

// succeeded records a sync whose next one is after interval.
func (s *schedule) succeeded(key types.NamespacedName, basis string, now time.Time, interval time.Duration) time.Time {
	return s.record(key, basis, now.Add(interval), 0)
}

// failed records a transient failure and returns when to try again:
// exponential backoff with jitter up to limit, or retryAfter when the
// vendor asked for longer.
func (s *schedule) failed(key types.NamespacedName, basis string, now time.Time, retryAfter, limit time.Duration) time.Time {
	s.mu.Lock()
	failures := 1
	if e := s.entries[key]; e != nil && e.basis == basis {
		failures = e.failures + 1
	}
	s.mu.Unlock()
	wait := backoff(key.String(), failures, limit)
	if retryAfter > wait {
		wait = retryAfter
	}
	return s.record(key, basis, now.Add(wait), failures)
}

func (s *schedule) record(key types.NamespacedName, basis string, next time.Time, failures int) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = map[types.NamespacedName]*scheduleEntry{}
	}
	s.entries[key] = &scheduleEntry{basis: basis, next: next, failures: failures}
	return next
}

// wait records that the vendor was not called (the provider's gate held the
// read back) and may be tried again at next; failures are not counted.
func (s *schedule) wait(key types.NamespacedName, basis string, next time.Time) time.Time {
	s.mu.Lock()
	failures := 0
	if e := s.entries[key]; e != nil && e.basis == basis {
		failures = e.failures
	}
	s.mu.Unlock()
	return s.record(key, basis, next, failures)
}

// retrySoon makes the next sync due after a backoff step, keeping the
// basis: used when a sync's result could not be written.
func (s *schedule) retrySoon(key types.NamespacedName, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil {
		e.failures++
		e.next = now.Add(backoff(key.String(), e.failures, backoffCap))
		e.fresh = true
	}
}

// forget drops key (the object is gone).
func (s *schedule) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
}

// backoff is backoffBase·2^(failures-1), capped at limit, with ±10% jitter.
func backoff(seed string, failures int, limit time.Duration) time.Duration {
	return vendors.Backoff(seed, failures, backoffBase, limit)
}
