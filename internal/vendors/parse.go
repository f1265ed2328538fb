package vendors

import (
	"fmt"
	"net/url"
	"time"
)

// ParseTime reads an optional ISO-8601 (RFC 3339) time field of a vendor
// answer: nil or empty is no time; anything else must parse.
func ParseTime(field string, v *string) (*time.Time, error) {
	if v == nil || *v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		return nil, fmt.Errorf("%s is not an ISO-8601 time", field)
	}
	return &t, nil
}

// PathSegment escapes v for use as one segment of a URL path. It refuses
// the values escaping leaves able to change the path: empty, "." and "..".
func PathSegment(field, v string) (string, error) {
	if v == "" || v == "." || v == ".." {
		return "", fmt.Errorf("%w: %s %q cannot be part of a URL", ErrInvalidSpec, field, v)
	}
	return url.PathEscape(v), nil
}
