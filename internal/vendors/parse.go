package vendors

import (
	"fmt"
	"net/url"
	"reflect"
	"strings"
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

// BaseURL checks a provider's base URL: https, a host, no user info, query
// or fragment (a path prefix is fine). It returns the URL without trailing
// slashes, ready for paths to be appended.
func BaseURL(vendor, raw string) (string, error) {
	u, err := url.Parse(raw)
	// "#" is refused outright: an empty fragment parses as none, yet would
	// turn every path appended to the URL into a fragment.
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#") {
		return "", fmt.Errorf("%w: %s url must be an https:// URL without user, query or fragment", ErrInvalidSpec, vendor)
	}
	return strings.TrimRight(raw, "/"), nil
}

// OnList reports whether u is a page of the list at list (a URL): the
// same scheme, host (in any case, as DNS names are) and path, and no user
// info or fragment. A next page a vendor names is followed only then: the
// provider's key is sent to it.
func OnList(u, list string) bool {
	next, err := url.Parse(u)
	first, ferr := url.Parse(list)
	return err == nil && ferr == nil && next.Scheme == first.Scheme && strings.EqualFold(next.Host, first.Host) &&
		next.User == nil && next.Fragment == "" && next.Path == first.Path
}

// Answer is a vendor's documented answer for one credential.
type Answer interface {
	// Credential maps the answer, field by field, for the credential id;
	// an answer that is not what the vendor documents is an error.
	Credential(id string) (*Credential, error)
}

// DecodeCredential decodes a 2xx answer into a T and maps it for the
// credential id. Either failing is InvalidResponse.
func DecodeCredential[T any, A interface {
	*T
	Answer
}](c *Caller, resp *Response, id string) (*Credential, error) {
	var body T
	if err := c.DecodeJSON(resp, &body); err != nil {
		return nil, err
	}
	cred, err := A(&body).Credential(id)
	if err != nil {
		return nil, c.Invalid(resp, "%v", err)
	}
	return cred, nil
}

// RedactCredential replaces secret wherever it appears in c's strings, a
// last line of defence for a client whose answers may echo a secret in a
// form its raw-body scrub cannot see.
func RedactCredential(c *Credential, secret string) {
	if secret != "" {
		redactValue(reflect.ValueOf(c), secret)
	}
}

func redactValue(v reflect.Value, secret string) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			redactValue(v.Elem(), secret)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Field(i).CanSet() || v.Field(i).Kind() == reflect.Pointer {
				redactValue(v.Field(i), secret)
			}
		}
	case reflect.Slice:
		for i := range v.Len() {
			redactValue(v.Index(i), secret)
		}
	case reflect.String:
		if v.CanSet() && strings.Contains(v.String(), secret) {
			v.SetString(strings.ReplaceAll(v.String(), secret, "[redacted]"))
		}
	}
}
