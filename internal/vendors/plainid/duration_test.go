package plainid

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	valid := map[string]time.Duration{
		"PT60M":                   time.Hour,
		"PT1440M":                 24 * time.Hour,
		"P1D":                     24 * time.Hour,
		"PT1H30M":                 90 * time.Minute,
		"P1DT2H":                  26 * time.Hour,
		"PT0.5S":                  500 * time.Millisecond,
		"PT0,5S":                  500 * time.Millisecond,
		"PT1.5M":                  90 * time.Second,
		"P1DT0.5H":                24*time.Hour + 30*time.Minute,
		"PT36H":                   36 * time.Hour,
		"P0D":                     0,
		"PT0S":                    0,
		"P1W":                     7 * 24 * time.Hour,
		"P1Y":                     365 * 24 * time.Hour,
		"P1M":                     30 * 24 * time.Hour,
		"P1MT1M":                  30*24*time.Hour + time.Minute,
		"P1Y2M3DT4H5M6.007S":      365*day + 60*day + 3*day + 4*time.Hour + 5*time.Minute + 6007*time.Millisecond,
		"PT0.000000001S":          time.Nanosecond,
		"PT9223372036.854775807S": time.Duration(1<<63 - 1),
		"PT0001H":                 time.Hour,
	}
	for s, want := range valid {
		if got, err := parseDuration(s); err != nil || got != want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, want)
		}
	}
	invalid := []string{
		"", "P", "PT", "P1DT", "60M", "T1H", "PT60", "PTM", "PT1H1H", "PT1M1H", "P1H", "PT1D",
		"P1D1Y", "PT0.5H1M", "P1.5DT1H", "-PT1H", "+PT1H", "PT-1H", "pt1h", "PT1h", "PT.5S",
		"PT1.S", "PT 1H", "PT1H ", " PT1H", "PT1H\n", "PT1e3S", "PT1,5,5S", "P1DTT1H", "PT1HT1M",
		"P\u0661D", // Arabic-Indic digit one
	}
	for _, s := range invalid {
		if got, err := parseDuration(s); !errors.Is(err, errNotDuration) {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, errNotDuration)
		}
	}
	for _, s := range []string{"PT9999999999999999999H", "P300Y", "PT2562048H", "PT9223372036.854775808S", "P106751DT23H47M17S"} {
		if got, err := parseDuration(s); !errors.Is(err, errDurationRange) {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", s, got, err, errDurationRange)
		}
	}
}

func TestParseDurationErrorDoesNotQuote(t *testing.T) {
	_, err := parseDuration("PT1H-canary")
	if err == nil || strings.Contains(err.Error(), "canary") {
		t.Errorf("err = %v", err)
	}
}

// seconds writes d as ISO-8601 seconds: PT<s>.<ns>S.
func seconds(d time.Duration) string {
	return fmt.Sprintf("PT%d.%09dS", d/time.Second, d%time.Second)
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"PT60M", "PT1440M", "P1D", "PT1H30M", "P1DT2H", "PT0.5S", "P1Y2M3W4DT5H6M7,8S", "PT", "-PT1H"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseDuration(s)
		if err != nil {
			if d != 0 || (!errors.Is(err, errNotDuration) && !errors.Is(err, errDurationRange)) {
				t.Fatalf("parseDuration(%q) = %v, %v", s, d, err)
			}
			return
		}
		if d < 0 || !strings.HasPrefix(s, "P") {
			t.Fatalf("parseDuration(%q) = %v", s, d)
		}
		if back, err := parseDuration(seconds(d)); err != nil || back != d {
			t.Fatalf("parseDuration(%q) = %v, but %s gives %v, %v", s, d, seconds(d), back, err)
		}
	})
}
