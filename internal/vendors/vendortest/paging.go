package vendortest

import "strconv"

// Page is the part of all a page holds: at most size items from offset,
// none past the end.
func Page[T any](all []T, offset, size int) []T {
	start := min(offset, len(all))
	return all[start:min(start+size, len(all))]
}

// Render is each of ts as render answers it: never nil, so that an empty
// page is the JSON [].
func Render[T any](ts []T, render func(T) map[string]any) []map[string]any {
	out := make([]map[string]any, 0, len(ts))
	for _, t := range ts {
		out = append(out, render(t))
	}
	return out
}

// Positive is the query value v as a positive number, or def.
func Positive(v string, def int) int {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return def
	}
	return n
}
