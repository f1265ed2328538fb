package plugin

import (
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// table is what a command prints as columns, like kubectl get: upper-case
// headers, columns three spaces apart, no borders.
type table struct {
	header []string
	rows   [][]string
	// shrink are the columns that give way, in that order, when the table
	// is wider than the terminal: their cells are cut with "…".
	shrink []int
}

// minShrunk is the narrowest a column is cut to.
const minShrunk = 8

const columnGap = 3

// write prints the table; width is the terminal's width, 0 for no limit.
func (t *table) write(w io.Writer, width int) error {
	widths := make([]int, len(t.header))
	for i, h := range t.header {
		widths[i] = runes(h)
	}
	for _, r := range t.rows {
		for i, c := range r {
			widths[i] = max(widths[i], runes(c))
		}
	}
	if width > 0 {
		over := sum(widths) + columnGap*(len(widths)-1) - width
		for _, col := range t.shrink {
			if over <= 0 {
				break
			}
			cut := min(over, widths[col]-max(minShrunk, runes(t.header[col])))
			if cut > 0 {
				widths[col] -= cut
				over -= cut
			}
		}
	}
	line := func(cells []string) error {
		var b strings.Builder
		for i, c := range cells {
			c = cut(c, widths[i])
			b.WriteString(c)
			if i < len(cells)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-runes(c)+columnGap))
			}
		}
		_, err := fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
		return err
	}
	if err := line(t.header); err != nil {
		return err
	}
	for _, r := range t.rows {
		if err := line(r); err != nil {
			return err
		}
	}
	return nil
}

func runes(s string) int { return utf8.RuneCountInString(s) }

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// cut shortens s to n runes, marking the cut with "…".
func cut(s string, n int) string {
	if runes(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// humanDuration says d the way people read a deadline: "12 days",
// "3 hours", "45 minutes", "30 seconds".
func humanDuration(d time.Duration) string {
	d = d.Abs()
	unit := func(n int64, name string) string {
		if n == 1 {
			return "1 " + name
		}
		return fmt.Sprintf("%d %ss", n, name)
	}
	// Rounded to the unit: a key created 8 days 23 hours ago with a 9-day
	// life "expires in 9 days".
	round := func(u time.Duration) int64 { return int64((d + u/2) / u) }
	switch {
	case d >= 48*time.Hour:
		return unit(round(24*time.Hour), "day")
	case d >= 2*time.Hour:
		return unit(round(time.Hour), "hour")
	case d >= 2*time.Minute:
		return unit(round(time.Minute), "minute")
	}
	return unit(round(time.Second), "second")
}

// relative says when t is from now: "in 12 days", "3 hours ago".
func relative(t, now time.Time) string {
	if t.After(now) {
		return "in " + humanDuration(t.Sub(now))
	}
	return humanDuration(now.Sub(t)) + " ago"
}

// expiry says when t, an expiry, is from now: "expires in 12 days",
// "expired 3 hours ago".
func expiry(t, now time.Time) string {
	if t.After(now) {
		return "expires in " + humanDuration(t.Sub(now))
	}
	return "expired " + humanDuration(now.Sub(t)) + " ago"
}

// parseWindow reads a duration that may be in days: "30d", "12h", "1d12h".
func parseWindow(s string) (time.Duration, error) {
	in, days := s, time.Duration(0)
	if i := strings.Index(s, "d"); i >= 0 {
		var n int
		if _, err := fmt.Sscanf(s[:i], "%d", &n); err != nil || n < 0 || fmt.Sprint(n) != s[:i] {
			return 0, fmt.Errorf("%q is not a duration such as 30d or 12h", in)
		}
		if n > maxWindowDays {
			return 0, fmt.Errorf("%q is more than %d days", in, maxWindowDays)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%q is not a duration such as 30d or 12h", in)
	}
	if days+d < days {
		return 0, fmt.Errorf("%q is more than %d days", in, maxWindowDays)
	}
	return days + d, nil
}

// maxWindowDays bounds a window in days (about 100 years), well inside
// what a time.Duration holds.
const maxWindowDays = 36500
