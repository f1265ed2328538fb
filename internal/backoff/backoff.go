// Package backoff holds credsync's one retry policy and its jitter: every
// retry after a failure (a vendor's answer, a key check, an inventory
// sweep, a provider's pause after 429s) waits Base·2^(n-1), capped, with
// ±10% jitter; and every spread (refresh intervals, first reads after a
// restart, reads a rate limit held back) draws a point from the same
// source.
//
// The jitter is stable, not random: it is a hash of a seed (an object's
// key) and a Salt that names what the draw is for. One object gets the same
// wait for the same step every time, so a restart that rebuilds a schedule
// from status lands where the old process would have (see Resume), and
// tests can compute the wait they expect. Two draws of one object for
// different purposes use different salts, so they do not move together.
// apimachinery's wait.Backoff and client-go's flowcontrol.Backoff draw
// their jitter from math/rand, which a restart cannot reproduce.
package backoff

import (
	"hash/fnv"
	"math"
	"time"
)

// Bounds of every backoff: the first retry waits Base, each failure after
// doubles it, up to Cap (or a tighter limit a caller names).
const (
	Base = 5 * time.Second
	Cap  = 5 * time.Minute
)

// Salt names what a jitter is for, so that the draws one object makes for
// different purposes are independent.
type Salt string

// The salts credsync draws with.
const (
	// Retry: the n-th step of a backoff (Step, Resume).
	Retry Salt = "retry"
	// Refresh: a credential's refresh interval.
	Refresh Salt = "refresh"
	// Restore: where in its refresh interval a credential restored from
	// status after a restart is first read.
	Restore Salt = "restore"
	// Deferred: how far past a rate limit's wait a held-back read returns.
	Deferred Salt = "deferred"
	// Sweep: an inventory sweep's interval.
	Sweep Salt = "sweep"
)

// Fraction is a stable pseudo-random number in [0,1) for seed, salt and n.
func Fraction(seed string, salt Salt, n int) float64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(seed))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(salt))
	_, _ = h.Write([]byte{byte(n), byte(n >> 8)}) //nolint:gosec // the low two bytes of n are enough to tell draws apart
	return float64(h.Sum64()%10000) / 10000
}

// Jitter is d, ±10%, at a stable point for seed and salt.
func Jitter(d time.Duration, seed string, salt Salt) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*Fraction(seed, salt, 0)))
}

// Within is a stable point in [0, d) for seed and salt.
func Within(d time.Duration, seed string, salt Salt) time.Duration {
	return time.Duration(Fraction(seed, salt, 0) * float64(d))
}

// Step is the wait before the retry after the n-th failure in a row:
// Base·2^(n-1), capped at limit, ±10% at a stable point for seed and n.
func Step(seed string, n int, limit time.Duration) time.Duration {
	d := float64(Base) * math.Pow(2, float64(max(n, 1)-1))
	if d > float64(limit) {
		d = float64(limit)
	}
	return time.Duration(d * (0.9 + 0.2*Fraction(seed, Retry, n)))
}

// Resume is where a run of failures that began at start stands at now, had
// every retry failed on its Step (with limit Cap): the failures so far and
// when the next retry is due, the very step a process that never restarted
// would take. Past maxWalk steps (three and a half days at Cap) it counts whole
// Cap-long steps instead of walking each.
func Resume(seed string, start, now time.Time) (int, time.Time) {
	at := start
	for n := 1; n <= maxWalk; n++ {
		at = at.Add(Step(seed, n, Cap))
		if at.After(now) {
			return n, at
		}
	}
	steps := int(now.Sub(at)/Cap) + 1
	return maxWalk + steps, at.Add(time.Duration(steps) * Cap)
}

// maxWalk bounds the steps Resume walks one by one.
const maxWalk = 1024
