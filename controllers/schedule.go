package controllers

import (
	"hash/fnv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
	"github.com/credsync/credsync/internal/backoff"
)

// Backoff bounds for transient failures (backoff.Step starts at 5s).
const (
	// backoffCap caps the wait after vendor failures.
	backoffCap = backoff.Cap
	// providerBackoffCap caps the wait while the provider is not ready:
	// its check wakes the credentials when it becomes usable; this is the
	// net under that.
	providerBackoffCap = 30 * time.Second
)

// schedule remembers, per RemoteCredential, when the vendor may next be
// called for it and what its last sync was made for. It lives in memory;
// after a start or a leader failover it is rebuilt from the objects'
// status (restore), so a synced fleet is not read again all at once.
type schedule struct {
	mu      sync.Mutex
	entries map[types.NamespacedName]*entry
}

type entry struct {
	uid types.UID
	// generation and request (a hash of the sync request annotation) are
	// what the last sync was made for: a new one makes a sync due at once,
	// and a new sync request reads the vendor afresh.
	generation int64
	request    uint64
	// epoch is the provider's account epoch the last sync was made for.
	epoch uint64
	next  time.Time
	// read is when the vendor was read for the answer last written: a
	// later sync reuses only an answer read after it.
	read time.Time
	// synced is the last successful check (metrics).
	synced   time.Time
	failures int
	// waitingForProvider: the last sync waited for the provider (not found, not
	// usable, key refused or not checked yet): due as soon as it can read.
	waitingForProvider bool
	// fresh: the next read must be made now, not reused: no answer was
	// written since a sync was requested or the epoch changed.
	fresh bool
	// credential is the vendor credential (account.CredentialKey) the
	// status's metadata is about: when the spec names another, that
	// metadata is dropped (see refChanged).
	credential string
}

// syncPlan is what a reconcile is to do about the vendor.
type syncPlan struct {
	// due: ask the provider's account for the credential now.
	due bool
	// fresh: the answer must be read now, not reused: a sync was
	// requested, or the provider's account changed (its epoch).
	fresh bool
}

// accountView is what the provider's account says that bears on a
// credential's schedule.
type accountView struct {
	epoch uint64
	// canRead: the account can read now.
	canRead bool
	// unlistedAt is when an inventory sweep stopped listing the
	// credential (zero: none did).
	unlistedAt time.Time
	// unusable: the provider is missing or unusable, or the vendor refuses
	// its key (not merely a key not checked yet).
	unusable bool
}

// plan says whether a sync of rc is due now, given what its provider's
// account says. A RemoteCredential seen for the first time is restored
// from its status.
func (s *schedule) plan(rc *v1alpha1.RemoteCredential, acct accountView, now time.Time) syncPlan {
	key := client.ObjectKeyFromObject(rc)
	request := requestOf(rc)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil || e.uid != rc.UID {
		if e = restore(rc, request, acct.epoch, now); e == nil {
			return syncPlan{due: true, fresh: rc.Annotations[v1alpha1.SyncRequestedAtAnnotation] != rc.Status.LastHandledSyncRequest}
		}
		s.set(key, e)
	}
	switch {
	case e.request != request || e.epoch != acct.epoch:
		return syncPlan{due: true, fresh: true}
	case acct.canRead && e.read.Before(acct.unlistedAt):
		// A sweep no longer lists it: confirm with a read now.
		return syncPlan{due: true, fresh: true}
	case e.generation != rc.Generation || (e.waitingForProvider && acct.canRead):
		return syncPlan{due: true, fresh: e.fresh}
	case acct.unusable && !e.waitingForProvider:
		// Restored from a status written before the provider went (while
		// no manager ran): say so now, without a vendor call.
		return syncPlan{due: true, fresh: e.fresh}
	}
	return syncPlan{due: !now.Before(e.next), fresh: e.fresh}
}

// restore returns the entry of a RemoteCredential this manager has not
// synced yet, from its status: nil when the status is not current for its
// generation and sync request (sync now). A current one is checked first
// at a stable point in [0, refreshInterval) from now when it was Ready or
// failed terminally, after a backoff step when it was failing transiently:
// a restart or failover spreads its reads instead of re-reading all.
func restore(rc *v1alpha1.RemoteCredential, request, epoch uint64, now time.Time) *entry {
	ready := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.ObservedGeneration != rc.Generation || rc.Status.ObservedGeneration != rc.Generation ||
		rc.Status.LastHandledSyncRequest != rc.Annotations[v1alpha1.SyncRequestedAtAnnotation] {
		return nil
	}
	seed := account.CredentialKey(rc)
	e := &entry{uid: rc.UID, generation: rc.Generation, request: request, epoch: epoch, credential: account.CredentialKey(rc)}
	// Waiting for the provider (not ready, or not serving the namespace):
	// due as soon as it can read.
	e.waitingForProvider = ready.Reason == v1alpha1.ReasonProviderNotReady || ready.Reason == v1alpha1.ReasonProviderNotAllowed
	if !e.waitingForProvider && (ready.Status == metav1.ConditionTrue || meta.IsStatusConditionTrue(rc.Status.Conditions, v1alpha1.ConditionStalled)) {
		e.next = now.Add(backoff.Within(rc.Spec.Refresh(), seed, backoff.Restore))
		return e
	}
	if rec := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReconciling); !e.waitingForProvider &&
		rec != nil && rec.Status == metav1.ConditionTrue && rec.Reason == ready.Reason {
		// Failing transiently since the Reconciling condition turned:
		// carry on with that run's backoff, not a new one.
		e.failures, e.next = backoff.Resume(client.ObjectKeyFromObject(rc).String(), rec.LastTransitionTime.Time, now)
		return e
	}
	e.failures = 1
	e.next = now.Add(backoff.Step(seed, 1, backoffCap))
	return e
}

// requestOf hashes rc's sync request annotation.
func requestOf(rc *v1alpha1.RemoteCredential) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(rc.Annotations[v1alpha1.SyncRequestedAtAnnotation]))
	return h.Sum64()
}

func (s *schedule) set(key types.NamespacedName, e *entry) {
	if s.entries == nil {
		s.entries = map[types.NamespacedName]*entry{}
	}
	s.entries[key] = e
}

// entryFor returns rc's entry for an outcome of a sync made with epoch, made
// for rc's generation and sync request: an entry of a new sync request or
// epoch must read afresh until an answer is written. s.mu is held.
func (s *schedule) entryFor(rc *v1alpha1.RemoteCredential, epoch uint64) *entry {
	key := client.ObjectKeyFromObject(rc)
	request := requestOf(rc)
	e := s.entries[key]
	switch {
	case e == nil || e.uid != rc.UID:
		e = &entry{uid: rc.UID, request: request, epoch: epoch, credential: account.CredentialKey(rc),
			fresh: rc.Annotations[v1alpha1.SyncRequestedAtAnnotation] != rc.Status.LastHandledSyncRequest}
		s.set(key, e)
	case e.request != request:
		e.request, e.fresh, e.failures = request, true, 0
	}
	if e.generation != rc.Generation {
		e.generation, e.failures = rc.Generation, 0
	}
	if e.epoch != epoch {
		e.epoch, e.fresh = epoch, true
	}
	return e
}

// refChanged reports whether rc's spec now names another vendor credential
// than the one its status's metadata is about (an edit of id, userId or
// providerRef), and from now on takes the status to be about the new one:
// the caller drops the old metadata, so that an old expiry is not taken
// for the new credential's.
func (s *schedule) refChanged(rc *v1alpha1.RemoteCredential) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, now := s.entries[client.ObjectKeyFromObject(rc)], account.CredentialKey(rc)
	if e == nil || e.uid != rc.UID || e.credential == now {
		return false
	}
	e.credential = now
	return true
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

// lastRead returns when the vendor was read for key's last written answer.
func (s *schedule) lastRead(key types.NamespacedName) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil {
		return e.read
	}
	return time.Time{}
}

// answered records an answer about rc read from the vendor at readAt
// (success or a terminal error): the next sync is after interval from
// the read.
func (s *schedule) answered(rc *v1alpha1.RemoteCredential, epoch uint64, readAt time.Time, interval time.Duration, ok bool) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryFor(rc, epoch)
	e.next, e.read, e.failures, e.waitingForProvider, e.fresh = readAt.Add(interval), readAt, 0, false, false
	if ok {
		e.synced = readAt
	}
	return e.next
}

// failed records a transient failure and returns when to try again:
// exponential backoff with jitter up to limit, or retryAfter when the
// vendor asked for longer. forProvider marks a wait for the provider.
func (s *schedule) failed(rc *v1alpha1.RemoteCredential, epoch uint64, now time.Time, retryAfter, limit time.Duration, forProvider bool) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryFor(rc, epoch)
	e.failures++
	e.waitingForProvider = forProvider
	e.next = now.Add(max(backoff.Step(client.ObjectKeyFromObject(rc).String(), e.failures, limit), retryAfter))
	return e.next
}

// deferUntil records that the vendor was not called (the provider's budget
// held the read back) and may be tried again at next; failures are not
// counted.
func (s *schedule) deferUntil(rc *v1alpha1.RemoteCredential, epoch uint64, next time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryFor(rc, epoch)
	e.next = next
	return next
}

// retrySoon makes the next sync due after a backoff step: used when a
// sync's result could not be written. The answer is not reused: it was
// read no later than the last read recorded.
func (s *schedule) retrySoon(key types.NamespacedName, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.entries[key]; e != nil {
		e.failures++
		e.next = now.Add(backoff.Step(key.String(), e.failures, backoffCap))
	}
}

// forget drops key (the object is gone).
func (s *schedule) forget(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.entries, key)
}

// LastSync returns when the object key with uid was last checked at its
// vendor successfully by this manager (metrics).
func (s *schedule) LastSync(key types.NamespacedName, uid types.UID) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[key]
	if e == nil || e.uid != uid || e.synced.IsZero() {
		return time.Time{}, false
	}
	return e.synced, true
}

// refreshInterval is rc's refresh interval with a stable jitter of ±10%
// drawn from the credential it names: RemoteCredentials created together
// do not all call the vendor in the same second, refresh after refresh,
// while those naming one credential with the same interval refresh
// together and share one read.
func refreshInterval(rc *v1alpha1.RemoteCredential) time.Duration {
	return backoff.Jitter(rc.Spec.Refresh(), account.CredentialKey(rc), backoff.Refresh)
}
