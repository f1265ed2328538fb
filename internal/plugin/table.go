package plugin

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/cli-runtime/pkg/printers"
)

// newTable is a table of columns, printed as kubectl get prints one.
func newTable(columns ...string) *metav1.Table {
	t := &metav1.Table{}
	for _, c := range columns {
		t.ColumnDefinitions = append(t.ColumnDefinitions, metav1.TableColumnDefinition{Name: c, Type: "string"})
	}
	return t
}

func addRow(t *metav1.Table, cells ...string) {
	row := metav1.TableRow{}
	for _, c := range cells {
		row.Cells = append(row.Cells, c)
	}
	t.Rows = append(t.Rows, row)
}

// printTable prints t as kubectl get does; width is the terminal's width,
// 0 for no limit. When t is wider, the columns named in shrink give way,
// in that order: the printer pads columns but never cuts them.
func printTable(w io.Writer, width int, t *metav1.Table, shrink ...string) error {
	fit(t, width, shrink)
	return printers.NewTablePrinter(printers.PrintOptions{}).PrintObj(t, w)
}

const (
	// minShrunk is the narrowest a column is cut to.
	minShrunk = 8
	// columnGap and minColumn are the printer's tabwriter padding and
	// minimum cell width (cli-runtime's printers.GetNewTabWriter).
	columnGap = 3
	minColumn = 6
)

// fit cuts the cells of the shrink columns, in that order, until t is no
// wider than width (0: no limit). Widths count bytes, as the printer's
// own column widths do.
func fit(t *metav1.Table, width int, shrink []string) {
	if width <= 0 {
		return
	}
	widths := make([]int, len(t.ColumnDefinitions))
	over := -columnGap - width // no gap after the last column
	for i, c := range t.ColumnDefinitions {
		widths[i] = len(c.Name)
		for _, r := range t.Rows {
			widths[i] = max(widths[i], len(fmt.Sprint(r.Cells[i])))
		}
		over += max(widths[i]+columnGap, minColumn)
	}
	for _, name := range shrink {
		i := slices.IndexFunc(t.ColumnDefinitions, func(c metav1.TableColumnDefinition) bool { return c.Name == name })
		if i < 0 || over <= 0 {
			continue
		}
		by := min(over, widths[i]-max(minShrunk, len(name)))
		if by <= 0 {
			continue
		}
		over -= by
		for _, r := range t.Rows {
			r.Cells[i] = cut(fmt.Sprint(r.Cells[i]), widths[i]-by)
		}
	}
}

// cut shortens s to n bytes, at a rune's start, marking the cut with
// "..." as kubectl's printer marks a cell it cuts at a line break.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n-len("...")]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "..."
}

// relative says when t is from now, as kubectl says an age: "in 12d",
// "3h ago".
func relative(t, now time.Time) string {
	if t.After(now) {
		return "in " + duration.HumanDuration(t.Sub(now))
	}
	return duration.HumanDuration(now.Sub(t)) + " ago"
}

// expiry says when t, an expiry, is from now: "expires in 12d",
// "expired 3h ago".
func expiry(t, now time.Time) string {
	if t.After(now) {
		return "expires " + relative(t, now)
	}
	return "expired " + relative(t, now)
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
