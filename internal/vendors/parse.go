package vendors

import (
	"fmt"
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
