package vendors

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Error classes. Every error a Client returns wraps exactly one of them.
var (
	ErrNotFound        = errors.New("not found")
	ErrForbidden       = errors.New("forbidden")
	ErrUnauthorized    = errors.New("unauthorized")
	ErrRateLimited     = errors.New("rate limited")
	ErrUnavailable     = errors.New("vendor unavailable")
	ErrInvalidResponse = errors.New("invalid response")
	ErrInvalidSpec     = errors.New("invalid spec")
)

var reasons = []struct {
	class    error
	reason   string
	terminal bool
}{
	{ErrNotFound, v1alpha1.ReasonNotFound, true},
	{ErrForbidden, v1alpha1.ReasonForbidden, true},
	{ErrUnauthorized, v1alpha1.ReasonUnauthorized, true},
	{ErrInvalidSpec, v1alpha1.ReasonInvalidSpec, true},
	{ErrDestinationNotAllowed, v1alpha1.ReasonDestinationNotAllowed, true},
	{ErrRateLimited, v1alpha1.ReasonRateLimited, false},
	{ErrUnavailable, v1alpha1.ReasonVendorUnavailable, false},
	{ErrInvalidResponse, v1alpha1.ReasonInvalidResponse, false},
}

// Reason returns the condition reason for err, and whether it is terminal
// (retrying before the next refresh will not help). An error of no known
// class counts as VendorUnavailable: transient.
func Reason(err error) (reason string, terminal bool) {
	for _, r := range reasons {
		if errors.Is(err, r.class) {
			return r.reason, r.terminal
		}
	}
	return v1alpha1.ReasonVendorUnavailable, false
}

// Error is a vendor's answer that was not the credential: the HTTP status,
// the vendor's own error code and message (secrets redacted), and how long
// the vendor asked us to wait.
type Error struct {
	// Class is one of the Err* sentinels.
	Class error
	// Status is the HTTP status code; 0 when no answer came.
	Status int
	// Code is the vendor's error code (clientNotFoundError, api_keys.key_not_found, ...).
	Code string
	// Message is the vendor's message or the transport failure, redacted and truncated.
	Message string
	// RetryAfter is the wait the vendor asked for (Retry-After); 0 when none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Status != 0 {
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if t := http.StatusText(e.Status); t != "" {
			b.WriteString(" " + t)
		}
	} else {
		b.WriteString(e.Class.Error())
	}
	if e.Code != "" {
		b.WriteString(": " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter.Round(time.Second))
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrNotFound) and friends work.
func (e *Error) Unwrap() error { return e.Class }

// RetryAfter returns the wait the vendor asked for in err, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ClassForStatus maps an HTTP error status to an error class.
func ClassForStatus(status int) error {
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		return ErrNotFound
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusTooManyRequests:
		return ErrRateLimited
	case status >= 500, status == http.StatusRequestTimeout:
		return ErrUnavailable
	default:
		// Other 4xx (400, 405, 409, 422, ...) and unexpected 1xx/3xx: the
		// vendor answered, but not with the credential.
		return ErrInvalidResponse
	}
}

// ParseRetryAfter reads a Retry-After header value: delay-seconds or an
// HTTP date. It returns false when v is empty or malformed. A date in the
// past gives 0, true.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, ok := parseSeconds(v); ok {
		return secs, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	if d := t.Sub(now); d > 0 {
		return min(d, maxRetryAfter), true
	}
	return 0, true
}

// maxRetryAfter caps what a vendor can make us wait, against a bogus header.
const maxRetryAfter = 24 * time.Hour

func parseSeconds(v string) (time.Duration, bool) {
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
	}
	return time.Duration(n) * time.Second, true
}

// NotListed is the answer about a credential of a list-only vendor that
// its complete list (a 200) does not hold.
func NotListed(vendor, id string) error {
	return &Error{Class: ErrNotFound, Status: http.StatusOK, Message: fmt.Sprintf("%s lists no credential %s", vendor, id)}
}
