package controllers

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
)

// The UnmanagedCredentials Warning goes out for credentials not seen
// before, and not for one that only came into view: when the previous
// list was cut, one that sorts after its last may have been there unseen.
func TestUnmanagedEvents(t *testing.T) {
	day := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	cred := func(id string, days int) v1alpha1.UnmanagedCredential {
		exp := metav1.NewTime(day.AddDate(0, 0, days))
		return v1alpha1.UnmanagedCredential{ID: id, ExpiresAt: &exp}
	}
	status := func(unmanaged int, shown ...v1alpha1.UnmanagedCredential) *v1alpha1.InventoryStatus {
		return &v1alpha1.InventoryStatus{Unmanaged: int32(unmanaged), UnmanagedCredentials: shown} //nolint:gosec // small test counts
	}
	a, b, c, early := cred("a", 1), cred("b", 2), cred("c", 3), cred("early", 0)
	cases := []struct {
		name          string
		before, after *v1alpha1.InventoryStatus
		want          string // "" for no event; else a substring of its note
	}{
		{"first sweep", nil, status(2, a, b), "2 credentials at the vendor are named by no RemoteCredential; new: a, b"},
		{"the same again", status(2, a, b), status(2, a, b), ""},
		{"one adopted, whole list", status(2, a, b), status(1, b), ""},
		{"a new one, whole list", status(2, a, b), status(3, a, b, c), "; new: c"},
		{"one adopted, the next comes into view", status(3, a, b), status(2, b, c), ""},
		{"a new one before the cut", status(3, a, b), status(3, early, a), "; new: early"},
		{"more, all after the cut", status(3, a, b), status(4, a, b), "4 credentials at the vendor"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			evs := unmanagedEvents(tc.before, tc.after)
			switch {
			case tc.want == "" && len(evs) != 0:
				t.Fatalf("events %+v, want none", evs)
			case tc.want != "" && (len(evs) != 1 || !strings.Contains(evs[0].Note, tc.want)):
				t.Fatalf("events %+v, want one saying %q", evs, tc.want)
			case tc.name == "more, all after the cut" && strings.Contains(evs[0].Note, "new:"):
				t.Fatalf("note %q names as new what may have been there unseen", evs[0].Note)
			}
		})
	}
}
