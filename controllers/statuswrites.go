package controllers

import (
	"cmp"
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// statusWrites gives a reconciler read-your-writes over the manager's
// cache. It remembers, per object, the resourceVersion that its last
// status patch replaced, until the cache shows a newer one. A reconcile
// that runs before the cache has seen that patch (a wake-up right after
// it, on a loaded API server) would start from the status before it and
// emit the same transition event, and patch the same status, a second
// time; get waits for the cache instead.
type statusWrites struct {
	mu       sync.Mutex
	replaced map[types.NamespacedName]string
	// lag bounds how long get waits for the cache; cacheLag when zero.
	lag time.Duration
}

// cacheLag bounds how long get waits for the cache to show a write
// (milliseconds, as a rule).
const cacheLag = 2 * time.Second

// get reads key into obj from c, after the cache has seen the last status
// patch of it (or after w.lag, when it has not: then obj is what the
// cache holds, as without statusWrites).
func (w *statusWrites) get(ctx context.Context, c client.Reader, key types.NamespacedName, obj client.Object) error {
	if err := c.Get(ctx, key, obj); err != nil {
		if client.IgnoreNotFound(err) == nil {
			w.forget(key)
		}
		return err
	}
	w.mu.Lock()
	replaced, ok := w.replaced[key]
	w.mu.Unlock()
	if !ok {
		return nil
	}
	defer w.forget(key)
	if obj.GetResourceVersion() != replaced {
		return nil
	}
	var err error
	_ = wait.PollUntilContextTimeout(ctx, 10*time.Millisecond, cmp.Or(w.lag, cacheLag), false, func(ctx context.Context) (bool, error) {
		err = c.Get(ctx, key, obj)
		return err != nil || obj.GetResourceVersion() != replaced, nil
	})
	return err
}

// wrote records that a status patch of obj replaced the resourceVersion
// from; obj holds the server's answer.
func (w *statusWrites) wrote(obj client.Object, from string) {
	if obj.GetResourceVersion() == from {
		return // nothing changed on the server: nothing for the cache to see
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.replaced == nil {
		w.replaced = map[types.NamespacedName]string{}
	}
	w.replaced[client.ObjectKeyFromObject(obj)] = from
}

// forget drops what is remembered of key.
func (w *statusWrites) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.replaced, key)
}
