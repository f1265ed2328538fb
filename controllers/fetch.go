package controllers

import (
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"k8s.io/apimachinery/pkg/types"

	"github.com/credsync/credsync/internal/vendors"
)

// sharedReads lets RemoteCredentials that name the same credential of the
// same provider share vendor reads: reads of one credential in flight at
// once are made once, and an answer is reused by a refresh that comes within
// its lifetime (a quarter of the refresh interval: a little more than the
// ±10% refresh jitter spreads them). So identical (provider, id) pairs cost
// one read per refresh.
type sharedReads struct {
	group singleflight.Group

	mu      sync.Mutex
	answers map[string]sharedAnswer
	sweepAt int // sweep expired answers when the map grows past this
	// names is the credential each RemoteCredential names; counts how
	// many name each. Only credentials named more than once are shared.
	// (Two maps cost a fraction of a cache index with one value per object.)
	names  map[types.NamespacedName]string
	counts map[string]int
}

// name records that obj names the vendor credential cred and reports
// whether another RemoteCredential names it too.
func (s *sharedReads) name(obj types.NamespacedName, cred string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.names == nil {
		s.names, s.counts = map[types.NamespacedName]string{}, map[string]int{}
	}
	if old, ok := s.names[obj]; !ok || old != cred {
		if ok {
			s.uncount(old)
		}
		s.names[obj] = cred
		s.counts[cred]++
	}
	return s.counts[cred] > 1
}

// forget drops obj (it is gone).
func (s *sharedReads) forget(obj types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cred, ok := s.names[obj]; ok {
		delete(s.names, obj)
		s.uncount(cred)
	}
}

func (s *sharedReads) uncount(cred string) {
	if s.counts[cred]--; s.counts[cred] <= 0 {
		delete(s.counts, cred)
	}
}

type sharedAnswer struct {
	cred    *vendors.Credential
	at      time.Time // when the vendor was read
	expires time.Time
}

// read returns the credential named by key and when the vendor was read
// for it: a shared answer younger than its lifetime when reuse is allowed,
// else the result of fetch (coalesced with reads of key in flight). A
// successful answer is kept for lifetime.
func (s *sharedReads) read(key string, reuse bool, lifetime time.Duration, fetch func() (*vendors.Credential, error)) (*vendors.Credential, time.Time, error) {
	if reuse {
		if a, ok := s.lookup(key); ok {
			return a.cred, a.at, nil
		}
	}
	v, err, _ := s.group.Do(key, func() (any, error) {
		c, err := fetch()
		if err != nil {
			return nil, err
		}
		return s.store(key, c, lifetime), nil
	})
	if err != nil {
		return nil, time.Time{}, err
	}
	a := v.(sharedAnswer)
	return a.cred, a.at, nil
}

func (s *sharedReads) lookup(key string) (sharedAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.answers[key]
	return a, ok && time.Now().Before(a.expires)
}

func (s *sharedReads) store(key string, c *vendors.Credential, lifetime time.Duration) sharedAnswer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answers == nil {
		s.answers = map[string]sharedAnswer{}
	}
	now := time.Now()
	if len(s.answers) >= s.sweepAt {
		for k, a := range s.answers {
			if !now.Before(a.expires) {
				delete(s.answers, k)
			}
		}
		s.sweepAt = max(2*len(s.answers), 1024)
	}
	a := sharedAnswer{cred: c, at: now, expires: now.Add(lifetime)}
	s.answers[key] = a
	return a
}

// shareLifetime is how long a credential's answer may serve other
// RemoteCredentials naming the same credential.
func shareLifetime(refresh time.Duration) time.Duration { return refresh / 4 }
