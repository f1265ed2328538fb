package controllers

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
)

// laggingCache answers Gets with the resourceVersions of versions in turn
// (the last one from then on), as a cache that catches up with a write
// after a few reads; "" answers NotFound.
type laggingCache struct {
	versions []string
	gets     atomic.Int32
}

func (c *laggingCache) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	i := min(int(c.gets.Add(1))-1, len(c.versions)-1)
	if c.versions[i] == "" {
		return apierrors.NewNotFound(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "remotecredentials"}, key.Name)
	}
	obj.SetNamespace(key.Namespace)
	obj.SetName(key.Name)
	obj.SetResourceVersion(c.versions[i])
	return nil
}

func (c *laggingCache) List(context.Context, client.ObjectList, ...client.ListOption) error {
	panic("not used")
}

func TestStatusWritesReadsOwnWrites(t *testing.T) {
	key := types.NamespacedName{Namespace: "ns", Name: "rc"}
	written := func(rv string) *v1alpha1.RemoteCredential {
		return &v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, ResourceVersion: rv}}
	}
	for _, tc := range []struct {
		name string
		// wrote: the patch replaced version 1 with this one ("": no patch).
		wrote    string
		versions []string
		want     string
		gets     int32
	}{
		{"no write: the cache as it is", "", []string{"1", "2"}, "1", 1},
		{"the cache has seen the write", "2", []string{"2"}, "2", 1},
		{"the cache shows a later write", "2", []string{"3"}, "3", 1},
		{"the cache lags: wait for it", "2", []string{"1", "1", "1", "2"}, "2", 4},
		{"a patch that changed nothing: no wait", "1", []string{"1", "2"}, "1", 1},
		{"deleted meanwhile", "2", []string{"1", ""}, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w statusWrites
			if tc.wrote != "" {
				w.wrote(written(tc.wrote), "1")
			}
			c := &laggingCache{versions: tc.versions}
			got := &v1alpha1.RemoteCredential{}
			err := w.get(context.Background(), c, key, got)
			switch {
			case tc.want == "" && !apierrors.IsNotFound(err):
				t.Fatalf("get: %v, want NotFound", err)
			case tc.want != "" && (err != nil || got.ResourceVersion != tc.want):
				t.Fatalf("get: %v, resourceVersion %q, want %q", err, got.ResourceVersion, tc.want)
			}
			if n := c.gets.Load(); n != tc.gets {
				t.Errorf("%d reads of the cache, want %d", n, tc.gets)
			}
			if len(w.replaced) != 0 {
				t.Errorf("still remembered after the cache caught up: %v", w.replaced)
			}
		})
	}
}

// A cache that never shows the write: get gives up after its lag and
// returns what the cache holds.
func TestStatusWritesGiveUp(t *testing.T) {
	w := statusWrites{lag: 50 * time.Millisecond}
	key := types.NamespacedName{Namespace: "ns", Name: "rc"}
	w.wrote(&v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rc", ResourceVersion: "2"}}, "1")
	got := &v1alpha1.RemoteCredential{}
	if err := w.get(context.Background(), &laggingCache{versions: []string{"1"}}, key, got); err != nil || got.ResourceVersion != "1" {
		t.Fatalf("get: %v, resourceVersion %q, want the cache's 1", err, got.ResourceVersion)
	}
	if len(w.replaced) != 0 {
		t.Errorf("still remembered: %v", w.replaced)
	}
}
