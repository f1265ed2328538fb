package vendors_test

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/credsync/credsync/internal/vendors"
)

// Fuzz targets for the parsers every vendor shares: Retry-After, answer
// timestamps, error bodies (and the Caller's cleaning of them), and the
// path segment and base URL checks requests are built from. Seed corpora
// live in testdata/fuzz/<FuzzName>/.

const (
	fuzzMaxRetryAfter = 24 * time.Hour
	// fuzzMaxMessageRunes is the Caller's cap on a vendor code or message, plus
	// the ellipsis it adds when it cuts.
	fuzzMaxMessageRunes = 256 + 1
	// fuzzSecret and fuzzSpacedSecret are provider secrets the Caller must
	// redact; the second holds a space, which cleaning folds runs of
	// whitespace into.
	fuzzSecret       = "fuzz-secret-canary-5e1f"
	fuzzSpacedSecret = "admin secret&=/"
)

// Fuzzed times stay within years 1..9999, which the HTTP-date and RFC 3339
// layouts write with four-digit years, even after a shift of a few days.
const (
	fuzzMinUnix = -62135596800 + 3*86400 // 0001-01-04
	fuzzMaxUnix = 253402300799 - 3*86400 // 9999-12-28
)

// fuzzRange maps any v into lo..hi.
func fuzzRange(v, lo, hi int64) int64 {
	n := uint64(hi - lo + 1)
	return lo + int64(uint64(v)%n)
}

// FuzzParseRetryAfter: any header value gives a wait of 0 to 24h (0 when
// not understood); delay-seconds and the three HTTP-date forms, written
// from a duration or a time, parse back to it.
func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).Unix()
	for _, v := range []string{
		"7", " 120 ", "0", "007", "86400", "86401", "99999999999999999999", "-1", "1.5", "1e3", "+5", "soon",
		"Mon, 23 Nov 2026 12:01:30 GMT", "Monday, 23-Nov-26 12:01:30 GMT", "Mon Nov 23 12:01:30 2026",
		"Mon, 23 Nov 2026 11:00:00 GMT", "Fri, 31 Dec 2100 23:59:59 GMT", "Mon, 23 Nov 2026 12:01:30 +0100",
		"", "\u0663", "\t\n",
	} {
		f.Add(v, now, int64(90))
	}
	f.Fuzz(func(t *testing.T, v string, nowUnix, offset int64) {
		now := time.Unix(fuzzRange(nowUnix, fuzzMinUnix, fuzzMaxUnix), 0).UTC()
		d, ok := vendors.ParseRetryAfter(v, now)
		if d < 0 || d > fuzzMaxRetryAfter || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q, %v) = %v, %v; want 0 <= d <= %v, and 0 when not ok", v, now, d, ok, fuzzMaxRetryAfter)
		}
		if ok && strings.TrimSpace(v) == "" {
			t.Fatalf("ParseRetryAfter(%q) = %v, ok for a blank value", v, d)
		}

		// delay-seconds: any count of seconds comes back, capped, with
		// leading zeros and surrounding whitespace ignored.
		secs := uint64(offset)
		want := fuzzMaxRetryAfter
		if secs <= uint64(fuzzMaxRetryAfter/time.Second) {
			want = time.Duration(secs) * time.Second
		}
		for _, s := range []string{strconv.FormatUint(secs, 10), " 00" + strconv.FormatUint(secs, 10) + "\t"} {
			if got, ok := vendors.ParseRetryAfter(s, now); !ok || got != want {
				t.Fatalf("ParseRetryAfter(%q) = %v, %v; want %v, true", s, got, ok, want)
			}
		}

		// HTTP-date in its three forms: a time up to two days either side
		// of now comes back as the wait until it, 0 when past, capped.
		at := now.Add(time.Duration(offset%(2*86400)) * time.Second)
		want = min(max(at.Sub(now), 0), fuzzMaxRetryAfter)
		layouts := []string{http.TimeFormat, "Mon Jan _2 15:04:05 2006"}
		if y := at.Year(); y >= 1969 && y <= 2068 { // RFC 850's two-digit years
			layouts = append(layouts, "Monday, 02-Jan-06 15:04:05 GMT")
		}
		for _, layout := range layouts {
			s := at.Format(layout)
			if got, ok := vendors.ParseRetryAfter(s, now); !ok || got != want {
				t.Fatalf("ParseRetryAfter(%q, %v) = %v, %v; want %v, true", s, now, got, ok, want)
			}
		}
	})
}

// FuzzParseTime: an answer's timestamp parses to a time that survives a
// round trip through RFC 3339, or to an error that does not quote it; any
// time written in RFC 3339 parses back to the same instant.
func FuzzParseTime(f *testing.F) {
	for _, v := range []string{
		"2021-03-26T12:34:16.540Z", "2025-01-01T00:00:00Z", "2025-04-01T00:00:00+02:00", "2025-04-01T00:00:00.123456789-07:30",
		"2025-04-01", "2025-04-01 00:00:00Z", "1735689600", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
		"2025-02-30T00:00:00Z", "2025-01-01T24:00:00Z", "2025-01-01T00:00:00+24:00", "2025-01-01t00:00:00z", "null", "",
	} {
		f.Add(v, int64(1735689600), int64(540e6), int64(120))
	}
	_, refErr := vendors.ParseTime("expires_at", stringPtr("not a time"))
	f.Fuzz(func(t *testing.T, v string, unix, nanos, offsetMinutes int64) {
		got, err := vendors.ParseTime("expires_at", &v)
		switch {
		case v == "":
			if got != nil || err != nil {
				t.Fatalf("ParseTime(%q) = %v, %v; want no time and no error", v, got, err)
			}
		case err != nil:
			// The error names the field, never the value: it ends up in
			// a condition message.
			if got != nil || err.Error() != refErr.Error() {
				t.Fatalf("ParseTime(%q) = %v, %q; want nil, %q", v, got, err, refErr)
			}
		default:
			back, err := vendors.ParseTime("expires_at", stringPtr(got.Format(time.RFC3339Nano)))
			if got == nil || err != nil || !back.Equal(*got) {
				t.Fatalf("ParseTime(%q) = %v, but its RFC 3339 form parses as %v, %v", v, got, back, err)
			}
		}

		// Any time written in RFC 3339, with any offset within a day, comes
		// back as the same instant.
		zone := time.FixedZone("", int(fuzzRange(offsetMinutes, -(24*60-1), 24*60-1))*60)
		want := time.Unix(fuzzRange(unix, fuzzMinUnix, fuzzMaxUnix), fuzzRange(nanos, 0, 1e9-1)).In(zone)
		for s, want := range map[string]time.Time{
			want.Format(time.RFC3339Nano): want,
			want.Format(time.RFC3339):     want.Truncate(time.Second),
		} {
			got, err := vendors.ParseTime("created_at", &s)
			if err != nil || got == nil || !got.Equal(want) {
				t.Fatalf("ParseTime(%q) = %v, %v; want %v", s, got, err, want)
			}
		}
		if got, err := vendors.ParseTime("created_at", nil); got != nil || err != nil {
			t.Fatalf("ParseTime(nil) = %v, %v", got, err)
		}
	})
}

func stringPtr(s string) *string { return &s }

// FuzzErrorBody feeds arbitrary error answers to the Caller's Fail, as
// vendor clients do with the code and message they parsed from a non-2xx
// answer: the status's class, a clean and bounded code and message (none
// for a 5xx), Retry-After honoured and capped, and never a provider
// secret, wherever in the text it sits.
func FuzzErrorBody(f *testing.F) {
	for _, seed := range []struct {
		body, code, retryAfter string
		status                 int
	}{
		{`Couldn't find UserCredential with 'id'=1`, "", "", 404},
		{`You need to sign in or sign up before continuing.`, "", "", 401},
		{`Client x not found`, "clientNotFoundError", "", 404},
		{"<html>\r\n<head><title>502 Bad Gateway</title></head></html>", "", "", 502},
		{"Retry later\n", "", "30", 429},
		{`bad key ` + fuzzSecret, "", "Fri, 31 Dec 2100 23:59:59 GMT", 429},
		{"", "", "", 503},
	} {
		f.Add([]byte(seed.body), seed.code, seed.retryAfter, seed.status, 0)
	}
	c, err := vendors.NewCaller("fuzz", nil, false, nil, time.Second, nil, fuzzSecret, fuzzSpacedSecret)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte, code, retryAfter string, status, at int) {
		status = int(fuzzRange(int64(status), 400, 599))
		fuzzCheckFail(t, c, status, code, string(body), retryAfter)

		// The secrets, put anywhere in the message or the code (the space
		// of the second one any whitespace), never come out.
		i := int(fuzzRange(int64(at), 0, int64(len(body))))
		for _, secret := range []string{fuzzSecret, fuzzSpacedSecret, strings.Replace(fuzzSpacedSecret, " ", "\r\n\t ", 1)} {
			withSecret := string(body[:i]) + secret + string(body[i:])
			fuzzCheckFail(t, c, status, code, withSecret, retryAfter)
			fuzzCheckFail(t, c, status, withSecret, string(body), retryAfter)
		}
	})
}

func fuzzCheckFail(t *testing.T, c *vendors.Caller, status int, code, message, retryAfter string) {
	t.Helper()
	header := http.Header{}
	header.Set("Retry-After", retryAfter)
	err := c.Fail(&vendors.Response{Status: status, Header: header}, code, message)
	var e *vendors.Error
	if !errors.As(err, &e) || e.Status != status || !errors.Is(err, vendors.ClassForStatus(status)) {
		t.Fatalf("Fail(HTTP %d) = %#v; want an *Error of class %v", status, err, vendors.ClassForStatus(status))
	}
	fuzzCheckClean(t, "code", e.Code)
	fuzzCheckClean(t, "message", e.Message)
	if status >= 500 && (e.Code != "" || e.Message != "") {
		t.Fatalf("Fail(HTTP %d) = %q; want the status alone for a server error", status, err)
	}
	if e.RetryAfter < 0 || e.RetryAfter > fuzzMaxRetryAfter {
		t.Fatalf("Retry-After %q gives %v; want 0..%v", retryAfter, e.RetryAfter, fuzzMaxRetryAfter)
	}
	if d, ok := vendors.ParseRetryAfter(retryAfter, time.Now()); ok && (d-e.RetryAfter).Abs() > 5*time.Second {
		t.Fatalf("Retry-After %q gives %v; want about %v", retryAfter, e.RetryAfter, d)
	}
	text := err.Error()
	if strings.Contains(text, fuzzSecret) || strings.Contains(text, fuzzSpacedSecret) {
		t.Fatalf("error %q holds a provider secret", text)
	}
	if n := utf8.RuneCountInString(text); n > 600 {
		t.Fatalf("error is %d runes long: %q", n, text)
	}
}

// fuzzCheckClean asserts what the Caller promises of vendor text in an error:
// no control characters, no runs of space, no secret, at most 256 runes
// and an ellipsis.
func fuzzCheckClean(t *testing.T, what, s string) {
	t.Helper()
	if n := utf8.RuneCountInString(s); n > fuzzMaxMessageRunes || n == fuzzMaxMessageRunes && !strings.HasSuffix(s, "…") {
		t.Fatalf("%s is %d runes long: %q", what, n, s)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		t.Fatalf("%s %q holds a control character", what, s)
	}
	if strings.Contains(s, "  ") || strings.HasPrefix(s, " ") || strings.HasSuffix(s, " ") {
		t.Fatalf("%s %q holds a run of spaces or a leading or trailing space", what, s)
	}
	if strings.Contains(s, fuzzSecret) || strings.Contains(s, fuzzSpacedSecret) {
		t.Fatalf("%s %q holds a provider secret", what, s)
	}
}

// FuzzPathSegment checks the one guard between a credential id from a
// spec and the request path: only "", "." and ".." are refused, and
// anything else becomes exactly one path segment that decodes back to the
// id.
func FuzzPathSegment(f *testing.F) {
	for _, v := range []string{"4821", "k1", "PVNTYSTFE2L9R4OJ9YY5", "a/b?c", "..", ".", "", "%2e%2e", "../admin", "a#b", "\u4e16", "a b", "\x00"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := vendors.PathSegment("id", v)
		if v == "" || v == "." || v == ".." {
			if !errors.Is(err, vendors.ErrInvalidSpec) {
				t.Fatalf("PathSegment(%q) = %q, %v; want InvalidSpec", v, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("PathSegment(%q) = %v", v, err)
		}
		if strings.ContainsAny(got, "/?#") || got == "." || got == ".." {
			t.Fatalf("PathSegment(%q) = %q: not one path segment", v, got)
		}
		if back, err := url.PathUnescape(got); err != nil || back != v {
			t.Fatalf("PathSegment(%q) = %q, which decodes to %q, %v", v, got, back, err)
		}
		u, err := url.Parse("https://vendor.example.com/api/v1/user_credentials/" + got)
		if err != nil || u.Host != "vendor.example.com" || u.Query().Encode() != "" || u.Fragment != "" ||
			path.Dir(u.EscapedPath()) != "/api/v1/user_credentials" {
			t.Fatalf("PathSegment(%q) = %q gives URL %v, %v", v, got, u, err)
		}
	})
}

// FuzzBaseURL checks the provider URL check: what it accepts is an https
// URL that paths can be appended to without leaving its host or its path
// prefix.
func FuzzBaseURL(f *testing.F) {
	for _, v := range []string{
		"https://tenant.tines.com", "https://tenant.tines.com/", "https://ece.example.com:12443/api//", "https://gw.example.com/plainid",
		"http://tenant.tines.com", "https://", "https://user:pass@gw.example.com", "https://gw.example.com/?x=1", "https://gw.example.com/?",
		"https://gw.example.com/#top", "https://gw.example.com/#", "https://[::1]:8443/", "::not a url", "", "https://gw.example.com/a%2Fb",
	} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		base, err := vendors.BaseURL("fuzz", raw)
		if err != nil {
			if !errors.Is(err, vendors.ErrInvalidSpec) || base != "" {
				t.Fatalf("BaseURL(%q) = %q, %v; want InvalidSpec", raw, base, err)
			}
			return
		}
		if strings.HasSuffix(base, "/") {
			t.Fatalf("BaseURL(%q) = %q ends with a slash", raw, base)
		}
		in, _ := url.Parse(raw)
		b, err := url.Parse(base)
		if err != nil || !strings.EqualFold(b.Scheme, "https") || b.Host == "" || b.Host != in.Host || b.User != nil {
			t.Fatalf("BaseURL(%q) = %q (%v): not an https URL of the same host", raw, base, err)
		}
		if strings.Contains(base, "#") {
			t.Fatalf("BaseURL(%q) = %q keeps a fragment: appended paths would not be sent", raw, base)
		}
		const suffix = "/api/v1/user_credentials/1"
		u, err := url.Parse(base + suffix)
		if err != nil || u.Host != in.Host || u.RawQuery != "" || u.Fragment != "" || !strings.HasSuffix(u.EscapedPath(), suffix) {
			t.Fatalf("BaseURL(%q) = %q, but %q is %#v, %v: the appended path is not the request path", raw, base, base+suffix, u, err)
		}
		if again, err := vendors.BaseURL("fuzz", base); err != nil || again != base {
			t.Fatalf("BaseURL(%q) = %q, but BaseURL(%q) = %q, %v", raw, base, base, again, err)
		}
	})
}
