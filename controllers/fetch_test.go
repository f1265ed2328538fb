package controllers

import (
	"testing"

	"k8s.io/apimachinery/pkg/types"
)

// Sharing is on only while more than one RemoteCredential names the same
// vendor credential, through renames and deletions.
func TestSharedReadsCountNames(t *testing.T) {
	var s sharedReads
	a, b := types.NamespacedName{Namespace: "x", Name: "a"}, types.NamespacedName{Namespace: "y", Name: "b"}
	if s.name(a, "p|1|") {
		t.Fatal("one name is shared")
	}
	if !s.name(b, "p|1|") || !s.name(a, "p|1|") {
		t.Fatal("two names are not shared")
	}
	if s.name(b, "p|2|") || s.name(a, "p|1|") {
		t.Fatal("b moved to another credential: neither is shared")
	}
	s.name(b, "p|1|")
	s.forget(b)
	if s.name(a, "p|1|") {
		t.Fatal("b was deleted: a is alone")
	}
	s.forget(a)
	if len(s.names) != 0 || len(s.counts) != 0 {
		t.Fatalf("left behind: %v %v", s.names, s.counts)
	}
}
