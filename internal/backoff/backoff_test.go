package backoff

import (
	"testing"
	"time"
)

func TestStepDoublesWithinJitterAndIsCapped(t *testing.T) {
	for n := 1; n <= 70; n++ {
		want := Base << min(n-1, 20)
		if want > Cap {
			want = Cap
		}
		d := Step("ns/name", n, Cap)
		if d < want*9/10 || d > want*11/10 {
			t.Fatalf("step %d: %s, want %s ±10%%", n, d, want)
		}
		if d != Step("ns/name", n, Cap) {
			t.Fatalf("step %d is not stable", n)
		}
	}
	if d := Step("ns/name", 10, 30*time.Second); d > 33*time.Second {
		t.Fatalf("a tighter limit: %s", d)
	}
}

func TestFractionIsStableAndSaltsAreIndependent(t *testing.T) {
	same := 0
	for i := range 1000 {
		seed := "team-a/key-" + string(rune('a'+i%26)) + time.Duration(i).String()
		f := Fraction(seed, Refresh, 0)
		if f < 0 || f >= 1 || f != Fraction(seed, Refresh, 0) {
			t.Fatalf("Fraction(%q) = %v, not a stable number in [0,1)", seed, f)
		}
		if f == Fraction(seed, Restore, 0) {
			same++
		}
		if j := Jitter(time.Hour, seed, Refresh); j < 54*time.Minute || j > 66*time.Minute {
			t.Fatalf("Jitter(1h) = %s", j)
		}
		if w := Within(time.Hour, seed, Restore); w < 0 || w >= time.Hour {
			t.Fatalf("Within(1h) = %s", w)
		}
	}
	if same > 5 {
		t.Fatalf("%d of 1000 seeds drew the same for two salts", same)
	}
}

// Resume lands where a process that saw every failure would have retried.
func TestResumeMatchesTheStepsTaken(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	const seed = "team-a/failing"
	// The retries a process that never restarted makes from start on.
	var retries []time.Time
	at := start
	for n := 1; at.Before(start.Add(3 * time.Hour)); n++ {
		at = at.Add(Step(seed, n, Cap))
		retries = append(retries, at)
	}
	for _, since := range []time.Duration{0, time.Second, 7 * time.Second, 3 * time.Minute, 59 * time.Minute, 2 * time.Hour} {
		now := start.Add(since)
		n, next := Resume(seed, start, now)
		if !next.After(now) {
			t.Fatalf("after %s: next %s is not after now", since, next.Sub(start))
		}
		// The first retry after now of the run without a restart: the
		// same step at the same time.
		if want := retries[n-1]; !next.Equal(want) || (n > 1 && !retries[n-2].Before(now.Add(time.Nanosecond))) {
			t.Fatalf("after %s: resumed at step %d, %s from start; without a restart %s", since, n, next.Sub(start), want.Sub(start))
		}
	}
}

// Past the steps it walks, Resume still lands after now, about a step on.
func TestResumeAfterWeeks(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start.Add(30 * 24 * time.Hour)
	n, next := Resume("team-a/old", start, now)
	if !next.After(now) || next.Sub(now) > Cap || n <= maxWalk {
		t.Fatalf("resumed at step %d, %s after now", n, next.Sub(now))
	}
}
