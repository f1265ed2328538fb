package vendortest

import (
	"context"

	"github.com/credsync/credsync/internal/vendors"
)

// WalkList lists c from the first page to the last and returns the items
// by ID and the number of pages. It fails t on an error, an item listed
// twice or partial, and a list that does not end; next, when set, checks
// each next page's cursor before it is followed.
func WalkList(t TB, c vendors.Client, next func(cursor string)) (map[string]vendors.Item, int) {
	t.Helper()
	seen := map[string]vendors.Item{}
	cursor, pages := "", 0
	for {
		page, err := c.ListPage(context.Background(), nil, cursor)
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		for _, it := range page.Items {
			if _, dup := seen[it.Ref.ID]; dup || it.Partial() {
				t.Fatalf("item %s twice or partial", it.Ref.ID)
			}
			seen[it.Ref.ID] = it
		}
		if cursor = page.Next; cursor == "" {
			return seen, pages
		}
		if pages > 1000 {
			t.Fatalf("list does not end")
		}
		if next != nil {
			next(cursor)
		}
	}
}
