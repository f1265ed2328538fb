package plainid

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// day is the nominal day; ISO-8601 leaves calendar units to the calendar.
const day = 24 * time.Hour

// unit is one designator of an ISO-8601 duration and its nominal length.
type unit struct {
	designator byte
	size       time.Duration
}

var (
	dateUnits = []unit{{'Y', 365 * day}, {'M', 30 * day}, {'W', 7 * day}, {'D', day}}
	timeUnits = []unit{{'H', time.Hour}, {'M', time.Minute}, {'S', time.Second}}

	errNotDuration   = errors.New("not an ISO-8601 duration")
	errDurationRange = errors.New("ISO-8601 duration out of range")
)

// parseDuration parses an ISO-8601 duration such as PT60M, PT1440M, P1D,
// PT1H30M, P1DT2H or PT0.5S: P, then date components (Y, M, W, D), then T
// and time components (H, M, S), each at most once and in that order. Only
// the last component may have a fraction, after '.' or ','. Years count
// 365 days, months 30 and weeks 7. Signs, lower case and spaces are not
// ISO-8601 and are refused, as is a duration beyond time.Duration's range.
// Errors do not quote s.
func parseDuration(s string) (time.Duration, error) {
	rest, ok := strings.CutPrefix(s, "P")
	date, clock, hasT := strings.Cut(rest, "T")
	if !ok || rest == "" || (hasT && clock == "") {
		return 0, errNotDuration
	}
	var p durationParser
	if err := p.parse(date, dateUnits); err != nil {
		return 0, err
	}
	if err := p.parse(clock, timeUnits); err != nil {
		return 0, err
	}
	return p.total, nil
}

// durationParser adds up the components of a duration.
type durationParser struct {
	total time.Duration
	// fraction is set once a component had a fraction: it must be the last.
	fraction bool
}

// parse adds the components in s, whose designators must come from units,
// in order.
func (p *durationParser) parse(s string, units []unit) error {
	for s != "" {
		num, rest := leadingNumber(s)
		if p.fraction || num == "" || rest == "" {
			return errNotDuration
		}
		i := slices.IndexFunc(units, func(u unit) bool { return u.designator == rest[0] })
		if i < 0 {
			return errNotDuration
		}
		if err := p.add(num, units[i].size); err != nil {
			return err
		}
		units, s = units[i+1:], rest[1:]
	}
	return nil
}

// leadingNumber splits s after its leading number: digits, then optionally
// '.' or ',' and more digits. num is empty when s does not start with one.
func leadingNumber(s string) (num, rest string) {
	i := digits(s, 0)
	if i == 0 {
		return "", s
	}
	if i < len(s) && (s[i] == '.' || s[i] == ',') {
		j := digits(s, i+1)
		if j == i+1 {
			return "", s
		}
		i = j
	}
	return s[:i], s[i:]
}

// digits returns the index of the first non-digit in s at or after i.
func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// add adds num units of size to the total.
func (p *durationParser) add(num string, size time.Duration) error {
	whole, frac, hasFrac := strings.Cut(strings.Replace(num, ",", ".", 1), ".")
	n, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || time.Duration(n) > math.MaxInt64/size {
		return errDurationRange
	}
	v := time.Duration(n) * size
	if hasFrac {
		f, _ := strconv.ParseFloat("0."+frac, 64) // digits only: cannot fail
		fv := time.Duration(math.Round(f * float64(size)))
		if v > math.MaxInt64-fv {
			return errDurationRange
		}
		v += fv
		p.fraction = true
	}
	if p.total > math.MaxInt64-v {
		return errDurationRange
	}
	p.total += v
	return nil
}
