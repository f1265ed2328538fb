package vendors

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzRateLimitHeaders feeds arbitrary x-ratelimit-remaining and
// x-ratelimit-interval values (Elastic Cloud's rate-limit headers) to
// rateLimitHeaders: a pause is asked for only when the window is used up
// (remaining 0), and then lasts more than 0 and at most 24h; an interval
// written as a Go duration or as seconds parses back to itself, capped.
func FuzzRateLimitHeaders(f *testing.F) {
	for _, seed := range []struct{ remaining, interval string }{
		{"0", "1m"}, {"0", "30"}, {"0", "2.5"}, {"0", "30s"}, {" 0 ", " 60 "}, {"0", "1000000h"}, {"0", "1e400"},
		{"0", "1e10"}, {"0", "-3"}, {"0", "NaN"}, {"0", "Inf"}, {"0", ""}, {"5", "1m"}, {"", "1m"}, {"00", "1m"}, {"0", "0x1p4"},
	} {
		f.Add(seed.remaining, seed.interval, int64(30e9))
	}
	f.Fuzz(func(t *testing.T, remaining, interval string, ns int64) {
		h := http.Header{}
		h.Set("X-RateLimit-Remaining", remaining)
		h.Set("X-RateLimit-Interval", interval)
		d, ok := rateLimitHeaders(h.Get)
		if !ok {
			if d != 0 {
				t.Fatalf("remaining %q, interval %q: %v without a pause", remaining, interval, d)
			}
		} else if d <= 0 || d > maxRetryAfter || strings.TrimSpace(remaining) != "0" {
			t.Fatalf("remaining %q, interval %q: pause of %v; want one of (0, %v] when remaining is 0", remaining, interval, d, maxRetryAfter)
		}

		// An interval written as a duration or as seconds comes back.
		want := min(time.Duration(ns), maxRetryAfter)
		if ns <= 0 {
			return
		}
		for _, v := range []string{time.Duration(ns).String(), strconv.FormatFloat(time.Duration(ns).Seconds(), 'f', -1, 64)} {
			h.Set("X-RateLimit-Remaining", "0")
			h.Set("X-RateLimit-Interval", v)
			got, ok := rateLimitHeaders(h.Get)
			// Seconds go through a float64: allow its rounding.
			if !ok || (got-want).Abs() > time.Microsecond {
				t.Fatalf("interval %q: pause of %v, %v; want %v", v, got, ok, want)
			}
		}
	})
}
