package account

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"

	"github.com/credsync/credsync/internal/vendors"
)

// store holds the last answer the vendor gave for each credential of one
// account, and when it was read: a credential's metadata, or a terminal
// answer about it (not found, forbidden). Every read of the account goes
// through it, so RemoteCredentials naming one credential share reads and
// concurrent reads of one credential are one call. An answer only one
// reader has asked for is not kept (that reader never reuses its own
// read), only that it was read: a second reader reads once, then they
// share. Sweeps' answers are kept for all. A store lives as long as its
// account's client: a new Secret or spec starts an empty one.
type store struct {
	clock clock.PassiveClock
	group singleflight.Group

	mu      sync.Mutex
	answers map[vendors.Ref]answer
	evictAt int // drop stale answers when the map grows past this
}

// answer is what the vendor said of one credential. Neither cred nor err
// set: the answer is not held (one reader only).
type answer struct {
	cred *vendors.Credential
	err  error // a terminal answer: ErrNotFound or ErrForbidden
	at   time.Time
	// keep is how long the answer may still serve: the longest maxAge a
	// reader has asked it for.
	keep time.Duration
	// reader identifies the only reader that asked for the credential; 0
	// once another did (or a sweep wrote it).
	reader uint64
}

func (a answer) held() bool { return a.cred != nil || a.err != nil }

func newStore(c clock.PassiveClock) *store {
	return &store{clock: c, answers: map[vendors.Ref]answer{}, evictAt: minEvict}
}

const minEvict = 1024

// read returns, for reader (a non-zero identity of the asker), the answer
// for ref read after `after` and less than maxAge ago when there is one;
// otherwise it calls fetch (coalesced with a fetch of ref in flight) and
// keeps its answer. It returns the answer and when the vendor was read for
// it.
func (s *store) read(ref vendors.Ref, reader uint64, maxAge time.Duration, after time.Time, fetch func() (*vendors.Credential, error)) (*vendors.Credential, time.Time, error) {
	if a, ok := s.lookup(ref, reader, maxAge, after); ok {
		return a.cred, a.at, a.err
	}
	v, err, _ := s.group.Do(ref.ID+"\x00"+ref.UserID, func() (any, error) {
		at := s.clock.Now()
		cred, err := fetch()
		if err != nil && !keepable(err) {
			return nil, err
		}
		return s.put(ref, answer{cred: cred, err: err, at: at, keep: maxAge, reader: reader}), nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	a := v.(answer)
	return a.cred, a.at, a.err
}

// keepable reports whether err is an answer about the credential itself,
// worth keeping like its metadata.
func keepable(err error) bool {
	return vendors.Answered(err) && (errors.Is(err, vendors.ErrNotFound) || errors.Is(err, vendors.ErrForbidden))
}

// lookup returns ref's answer for reader when one is held that was read
// after `after` and less than maxAge ago, and notes that it may be asked
// for that long, and by whom.
func (s *store) lookup(ref vendors.Ref, reader uint64, maxAge time.Duration, after time.Time) (answer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.answers[ref]
	if !ok {
		return answer{}, false
	}
	if a.reader != reader && a.reader != 0 {
		a.reader = 0 // a second reader: from now on answers are kept
		s.answers[ref] = a
	}
	if !a.held() || !a.at.After(after) || s.clock.Since(a.at) >= maxAge {
		return answer{}, false
	}
	if maxAge > a.keep {
		a.keep = maxAge
		s.answers[ref] = a
	}
	return a, true
}

// put keeps a (only that it was read, when one reader alone asks for the
// credential) unless the answer held is newer, and returns the answer the
// reader gets: a, or the newer one.
func (s *store) put(ref vendors.Ref, a answer) answer {
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := a
	if old, ok := s.answers[ref]; ok {
		if old.at.After(a.at) && old.held() {
			return old
		}
		kept.keep = max(a.keep, old.keep)
		if old.reader != a.reader {
			kept.reader = 0
		}
	}
	if kept.reader != 0 {
		kept.cred, kept.err = nil, nil
	}
	if len(s.answers) >= s.evictAt {
		s.evict()
	}
	s.answers[ref] = kept
	return a
}

// evict drops answers nobody may reuse any more; s.mu is held. (A sweep,
// in this package, is an inventory list of the whole account.)
func (s *store) evict() {
	now := s.clock.Now()
	for ref, a := range s.answers {
		if !now.Before(a.at.Add(a.keep)) {
			delete(s.answers, ref)
		}
	}
	s.evictAt = max(2*len(s.answers), minEvict)
}

// putSweep keeps the items of a complete sweep as answers read when it
// started (partial items, which lack fields a read gives, are not
// answers), unless a newer answer is held, and drops the answers older
// than the sweep that it did not list: their next read confirms them.
func (s *store) putSweep(sw *sweep, keep time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := sw.started
	for _, it := range sw.items {
		old, ok := s.answers[it.Ref]
		if it.Partial() || (ok && old.at.After(at)) {
			continue
		}
		s.answers[it.Ref] = answer{cred: it.Credential, at: at, keep: max(keep, old.keep)} // for every reader
	}
	for ref, a := range s.answers {
		if !sw.lists(ref) && !a.at.After(at) {
			delete(s.answers, ref)
		}
	}
	s.evictAt = max(2*len(s.answers), minEvict)
}
