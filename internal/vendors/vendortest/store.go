package vendortest

import (
	"cmp"
	"slices"
	"sync"
	"sync/atomic"
)

// Store is what a vendor fake holds: its tokens by ID, the key it
// accepts, and whether its answers echo the tokens' values. A fake embeds
// it (NewStore): Put, Delete, SetKey and SetEchoValues are its knobs.
// Safe for concurrent use.
type Store[K cmp.Ordered, T any] struct {
	mu     sync.Mutex
	id     func(T) K
	tokens map[K]T
	key    string
	echo   bool
}

// NewStore is a Store that accepts key and files each token under id(token).
func NewStore[K cmp.Ordered, T any](key string, id func(T) K) *Store[K, T] {
	return &Store[K, T]{id: id, tokens: map[K]T{}, key: key}
}

// SetKey changes the accepted key (a rotation of the provider's key).
func (s *Store[K, T]) SetKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.key = key
}

// Key is the accepted key.
func (s *Store[K, T]) Key() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key
}

// Put adds or replaces a token.
func (s *Store[K, T]) Put(t T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[s.id(t)] = t
}

// Delete removes a token: later requests get 404, and lists leave it out.
func (s *Store[K, T]) Delete(id K) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, id)
}

// Get returns token id.
func (s *Store[K, T]) Get(id K) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	return t, ok
}

// Update changes token id with change, when there is one, and returns it
// changed.
func (s *Store[K, T]) Update(id K, change func(*T)) (T, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if ok {
		change(&t)
		s.tokens[id] = t
	}
	return t, ok
}

// Select returns the tokens keep selects, by ID.
func (s *Store[K, T]) Select(keep func(T) bool) []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []T
	for _, t := range s.tokens {
		if keep(t) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b T) int { return cmp.Compare(s.id(a), s.id(b)) })
	return out
}

// SetEchoValues makes answers carry the tokens' values (where, the fake
// says): a client must copy them nowhere.
func (s *Store[K, T]) SetEchoValues(echo bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.echo = echo
}

// EchoValues says whether answers carry the tokens' values.
func (s *Store[K, T]) EchoValues() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.echo
}

// Paging is the page size a test forces on a fake's lists. A fake embeds
// it: SetMaxPerPage is its knob, PerPage caps what a request asks. Safe
// for concurrent use.
type Paging struct{ max atomic.Int64 }

// SetMaxPerPage makes lists hand back at most n items a page whatever the
// request asks; n <= 0 restores the vendor's own page size.
func (p *Paging) SetMaxPerPage(n int) { p.max.Store(int64(n)) }

// PerPage is size, capped at the size SetMaxPerPage forces.
func (p *Paging) PerPage(size int) int {
	if n := int(p.max.Load()); n > 0 {
		return min(size, n)
	}
	return size
}
