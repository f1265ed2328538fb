package v1alpha1

import (
	"strings"
	"testing"
)

func TestAdoptedName(t *testing.T) {
	cases := []struct{ provider, id, user, want string }{
		{"tines-prod", "4950", "", "tines-prod-4950"},
		{"ece-prod", "Qw8nP1rV5xZc3mB7", "u-1", "ece-prod-qw8np1rv5xzc3mb7"},
		{"plainid", "PVNTYSTFE2L9R4OJ9YY5", "", "plainid-pvntystfe2l9r4oj9yy5"},
		{"ece", "own.key_1:x@y~z", "", "ece-own-key-1-x-y-z"},
		{"ece", "-trailing-", "", "ece--trailing"},
	}
	for _, tc := range cases {
		if got := AdoptedName(tc.provider, tc.id, tc.user); got != tc.want {
			t.Errorf("AdoptedName(%q, %q) = %q, want %q", tc.provider, tc.id, got, tc.want)
		}
	}
	long := strings.Repeat("k", 80)
	a, b := AdoptedName("tines-prod", long, ""), AdoptedName("tines-prod", long+"x", "")
	if len(a) > 63 || len(b) > 63 || a == b || !strings.HasPrefix(a, "tines-prod-kkk") {
		t.Errorf("long IDs: %q and %q: want at most 63 characters, a hash suffix, distinct", a, b)
	}
	if AdoptedName("p", long, "u1") == AdoptedName("p", long, "u2") {
		t.Error("two users' keys of one long ID get one name")
	}
	if v := AdoptedByValue(strings.Repeat("a", 62) + ".b.c"); len(v) > 63 || strings.HasSuffix(v, ".") {
		t.Errorf("AdoptedByValue = %q", v)
	}
}
