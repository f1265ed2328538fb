package plainid

import "testing"

// tokenDuration is kept as PlainID writes it; only an ISO-8601 shape is
// let into status.
func TestTokenDurationShape(t *testing.T) {
	for _, s := range []string{"PT60M", "PT1440M", "P1D", "PT1H30M", "P1DT2H", "PT0.5S", "P1Y2M3W4DT5H6M7,5S", "P1W"} {
		if !isoDuration.MatchString(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "P", "PT", "P1DT", "60M", "T1H", "PT60", "P1H", "PT1D", "-PT1H", "+PT1H", "pt1h", "PT1h",
		"PT.5S", "PT1.S", "PT 1H", "PT1H ", " PT1H", "PT1H\n", "PT1e3S", "60 minutes", "PT1H-canary", "P\u0661D"} {
		if isoDuration.MatchString(s) {
			t.Errorf("%q accepted", s)
		}
	}
}
