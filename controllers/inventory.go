package controllers

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
	"github.com/credsync/credsync/internal/vendors"
)

// maxUnmanagedShown is how many unmanaged credentials status lists.
const maxUnmanagedShown = 50

// eventUnmanaged is the Warning event when new unmanaged credentials appear.
const eventUnmanaged = "UnmanagedCredentials"

// +kubebuilder:rbac:groups=credsync.io,resources=remotecredentials,verbs=create

// inventory sweeps the provider's vendor account when a sweep is due and
// writes what the last complete sweep found into status.inventory and the
// Inventoried condition, counting managed credentials from the cache; with
// adopt it creates a RemoteCredential for each unmanaged one. It returns
// when to look again (on r.Clock, zero for never: a time, not a wait, so
// that the API writes after the sweep do not put the next one off) and
// the events to emit. A failed sweep changes neither Ready nor the
// credentials.
func (r *providerReconciler) inventory(ctx context.Context, obj account.Provider, a *account.Account) (time.Time, []eventSpec, error) {
	if r.DisableInventory {
		return time.Time{}, nil, nil
	}
	st := obj.ProviderStatus()
	spec := obj.ProviderSpec().Inventory
	if spec == nil || a == nil {
		st.Inventory = nil
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionInventoried)
		return time.Time{}, nil, nil
	}
	res := a.Sweep(ctx)
	wake := time.Time{}
	if res.Next > 0 {
		wake = r.Clock.Now().Add(res.Next)
	}
	// The condition is worked out in full, then set once: setting it twice
	// (Listed, then AdoptionFailed) would move its lastTransitionTime, and
	// write status, at every reconcile.
	was := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionInventoried)
	wasReason := ""
	if was != nil {
		wasReason = was.Reason
	}
	status, reason, msg := metav1.ConditionFalse, "", ""
	if res.Err != nil {
		reason, msg = sweepFailure(res.Err)
	}
	setInventoried := func() {
		setCondition(&st.Conditions, obj.GetGeneration(), v1alpha1.ConditionInventoried, status, reason, msg)
	}
	if res.Listing == nil {
		if res.Err != nil {
			setInventoried()
		}
		return wake, nil, nil
	}
	rcs, err := r.admitted(ctx, account.KeyOf(obj))
	if err != nil {
		return time.Time{}, nil, err
	}
	before := st.Inventory
	managed, unmanaged := classify(res.Listing, rcs)
	st.Inventory = inventoryStatus(len(res.Listing.Items), managed, unmanaged)
	if after := spec.UnusedAfter; after != nil {
		unused := int32(0)
		for i := range res.Listing.Items {
			if res.Listing.Items[i].UnusedAt(res.Listing.At, after.Duration) {
				unused++
			}
		}
		st.Inventory.Unused = &unused
	}
	counts := fmt.Sprintf("%d credentials: %d managed, %d unmanaged", len(res.Listing.Items), managed, len(unmanaged))
	if res.Err == nil {
		status, reason, msg = metav1.ConditionTrue, v1alpha1.ReasonListed, counts
	}
	evs := unmanagedEvents(before, st.Inventory)
	if spec.Adopt {
		if failure := r.adopt(ctx, obj, unmanaged); failure != "" {
			if retry := r.Clock.Now().Add(adoptRetry); wake.IsZero() || retry.Before(wake) {
				wake = retry
			}
			// A failed sweep is the more basic problem: the condition keeps
			// saying so. The Warning goes with the condition turning to
			// AdoptionFailed, once.
			if res.Err == nil {
				status, reason, msg = metav1.ConditionFalse, v1alpha1.ReasonAdoptionFailed, counts+"; adopting them failed: "+failure
				if wasReason != v1alpha1.ReasonAdoptionFailed {
					evs = append(evs, eventSpec{Type: corev1.EventTypeWarning, Reason: v1alpha1.ReasonAdoptionFailed, Action: actionInventory, Note: failure})
				}
			}
		}
	}
	setInventoried()
	return wake, evs, nil
}

// adoptRetry is how soon a failed adoption is tried again.
const adoptRetry = time.Minute

// sweepFailure is the Inventoried reason and message of a failed sweep.
func sweepFailure(err error) (reason, message string) {
	if pe, ok := account.AsProviderError(err); ok {
		if pe.Reason == v1alpha1.ReasonUnauthorized || pe.Reason == v1alpha1.ReasonDestinationNotAllowed {
			return pe.Reason, pe.Message
		}
		return v1alpha1.ReasonProviderNotReady, pe.Message
	}
	reason, _ = vendors.Reason(err)
	return reason, fmt.Sprintf("listing the vendor account failed: %v; credentials are read one by one meanwhile", err)
}

// credentialsOf lists, from the cache and read-only (no deep copies),
// the RemoteCredentials whose providerRef resolves to the provider key.
func credentialsOf(ctx context.Context, reader client.Reader, key account.Key) ([]v1alpha1.RemoteCredential, error) {
	list := &v1alpha1.RemoteCredentialList{}
	opts := []client.ListOption{client.MatchingFields{providerRefIndex: key.Kind + "/" + key.Name}, client.UnsafeDisableDeepCopy}
	if key.Namespace != "" {
		opts = append(opts, client.InNamespace(key.Namespace))
	}
	if err := reader.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("list credentials of %s: %w", key, err)
	}
	return list.Items, nil
}

// admitted lists the RemoteCredentials that use the provider key and may:
// those of the namespaces a cluster provider serves.
func (r *providerReconciler) admitted(ctx context.Context, key account.Key) ([]v1alpha1.RemoteCredential, error) {
	rcs, err := credentialsOf(ctx, r.Client, key)
	if err != nil || key.Kind != v1alpha1.ClusterCredentialProviderKind {
		return rcs, err
	}
	out := rcs[:0:0]
	for i := range rcs {
		pe, err := r.Accounts.Admits(ctx, key, rcs[i].Namespace)
		if err != nil {
			return nil, err
		}
		if pe == nil {
			out = append(out, rcs[i])
		}
	}
	return out, nil
}

// classify counts the listed credentials some RemoteCredential names
// (its id, and its userId when both it and the item name a user) and
// returns the others, soonest expiry first (none last), then by ID.
func classify(l *account.Listing, rcs []v1alpha1.RemoteCredential) (managed int, unmanaged []account.Listed) {
	users := make(map[string][]string, len(rcs)) // id → userIds naming it ("" for none)
	for i := range rcs {
		users[rcs[i].Spec.ID] = append(users[rcs[i].Spec.ID], rcs[i].Spec.UserID)
	}
	for _, it := range l.Items {
		if slices.ContainsFunc(users[it.Ref.ID], func(u string) bool { return u == "" || it.Ref.UserID == "" || u == it.Ref.UserID }) {
			managed++
			continue
		}
		unmanaged = append(unmanaged, it)
	}
	slices.SortFunc(unmanaged, func(a, b account.Listed) int {
		return compareUnmanaged(a.ExpiresAt, a.Ref, b.ExpiresAt, b.Ref)
	})
	return managed, unmanaged
}

// compareUnmanaged is the order of status.inventory's unmanaged list:
// soonest expiry first (none last), then by ID and user.
func compareUnmanaged(aExp *time.Time, a vendors.Ref, bExp *time.Time, b vendors.Ref) int {
	switch {
	case aExp != nil && bExp == nil:
		return -1
	case aExp == nil && bExp != nil:
		return 1
	case aExp != nil && !aExp.Equal(*bExp):
		return aExp.Compare(*bExp)
	}
	return cmp.Or(strings.Compare(a.ID, b.ID), strings.Compare(a.UserID, b.UserID))
}

func inventoryStatus(total, managed int, unmanaged []account.Listed) *v1alpha1.InventoryStatus {
	st := &v1alpha1.InventoryStatus{Total: int32(total), Managed: int32(managed), Unmanaged: int32(len(unmanaged))} //nolint:gosec // counts of one vendor account
	for _, it := range unmanaged[:min(len(unmanaged), maxUnmanagedShown)] {
		st.UnmanagedCredentials = append(st.UnmanagedCredentials, v1alpha1.UnmanagedCredential{
			ID: it.Ref.ID, UserID: it.Ref.UserID, Name: it.Name, CreatedAt: vendors.APITime(it.CreatedAt), ExpiresAt: vendors.APITime(it.ExpiresAt),
			Owner: it.Owner, LastUsedAt: vendors.APIHour(it.LastUsedAt),
		})
	}
	return st
}

// unmanagedEvents is the Warning for unmanaged credentials that were not
// in the previous status: on the first sweep, new IDs among those shown,
// or more of them than before. A sweep that finds the same emits none.
// When the previous list was cut at maxUnmanagedShown, a credential that
// sorts after its last one may have been there unseen: it is not called
// new (adopting one of those shown brings it into view).
func unmanagedEvents(before, after *v1alpha1.InventoryStatus) []eventSpec {
	if after.Unmanaged == 0 {
		return nil
	}
	known := map[vendors.Ref]bool{}
	var hiddenAfter *v1alpha1.UnmanagedCredential // before's last shown, when some were not
	if before != nil {
		for _, c := range before.UnmanagedCredentials {
			known[vendors.Ref{ID: c.ID, UserID: c.UserID}] = true
		}
		if n := len(before.UnmanagedCredentials); n > 0 && int(before.Unmanaged) > n {
			hiddenAfter = &before.UnmanagedCredentials[n-1]
		}
	}
	var fresh []string
	for _, c := range after.UnmanagedCredentials {
		ref := vendors.Ref{ID: c.ID, UserID: c.UserID}
		if known[ref] || (hiddenAfter != nil && compareUnmanaged(timeOf(c.ExpiresAt), ref,
			timeOf(hiddenAfter.ExpiresAt), vendors.Ref{ID: hiddenAfter.ID, UserID: hiddenAfter.UserID}) > 0) {
			continue
		}
		fresh = append(fresh, unmanagedName(c))
	}
	if before != nil && len(fresh) == 0 && after.Unmanaged <= before.Unmanaged {
		return nil
	}
	note := fmt.Sprintf("%d credentials at the vendor are named by no RemoteCredential", after.Unmanaged)
	if len(fresh) > 0 {
		shown := fresh[:min(len(fresh), 5)]
		note += "; new: " + strings.Join(shown, ", ")
		if len(fresh) > len(shown) {
			note += fmt.Sprintf(" and %d more", len(fresh)-len(shown))
		}
	}
	return []eventSpec{{Type: corev1.EventTypeWarning, Reason: eventUnmanaged, Action: actionInventory, Note: note}}
}

// timeOf is t's time, nil for none.
func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	return &t.Time
}

func unmanagedName(c v1alpha1.UnmanagedCredential) string {
	s := c.ID
	if c.Name != "" {
		s += " (" + c.Name + ")"
	}
	return s
}

// adopt creates a RemoteCredential for each unmanaged credential that has
// none of its adopted name yet, owned by the provider. It never deletes: a
// credential gone at the vendor reads NotFound. It returns why it could
// not adopt them all ("" when it did): it stops at the first failed
// create (the others would fail alike) and skips a name another
// credential's RemoteCredential holds.
func (r *providerReconciler) adopt(ctx context.Context, obj account.Provider, unmanaged []account.Listed) string {
	if len(unmanaged) == 0 {
		return ""
	}
	key := account.KeyOf(obj)
	ns := key.Namespace
	if ns == "" {
		ns = r.ClusterResourceNamespace
	}
	switch {
	case r.WatchLabelSelector != "":
		return fmt.Sprintf("this manager watches only the RemoteCredentials matching --watch-label-selector=%s, which adopted ones would not carry; "+
			"adopt with a manager without it, or commit `kubectl credsync inventory --adopt -o yaml` with the labels added", r.WatchLabelSelector)
	case r.WatchNamespaces != nil && !slices.Contains(r.WatchNamespaces, ns):
		return fmt.Sprintf("namespace %s, where they would be created, is not among this manager's --watch-namespaces", ns)
	}
	log := ctrl.LoggerFrom(ctx)
	gvk := v1alpha1.GroupVersion.WithKind(key.Kind)
	var taken []string
	for _, it := range unmanaged {
		rc := v1alpha1.NewAdoption(key.Kind, key.Name, ns, it.Ref.ID, it.Ref.UserID)
		rc.OwnerReferences = []metav1.OwnerReference{{APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: obj.GetName(), UID: obj.GetUID()}}
		existing := &v1alpha1.RemoteCredential{}
		err := r.Get(ctx, client.ObjectKeyFromObject(rc), existing, client.UnsafeDisableDeepCopy)
		if err == nil {
			if !refersTo(existing, key, it.Ref) {
				taken = append(taken, rc.Name)
			}
			continue // adopted already (the sweep predates it), or the name is taken
		}
		if !apierrors.IsNotFound(err) {
			return fmt.Sprintf("reading RemoteCredential %s/%s: %v", ns, rc.Name, err)
		}
		if err := r.Create(ctx, rc); err != nil {
			if apierrors.IsAlreadyExists(err) {
				continue // created since the cache was read
			}
			return fmt.Sprintf("creating RemoteCredential %s/%s for credential %s: %v", ns, rc.Name, it.Ref.ID, err)
		}
		log.Info("adopted an unmanaged credential", "id", it.Ref.ID, "remoteCredential", rc.Name)
	}
	if len(taken) == 0 {
		return ""
	}
	shown := taken[:min(len(taken), 5)]
	msg := fmt.Sprintf("the names %s in namespace %s are taken by RemoteCredentials of other credentials", strings.Join(shown, ", "), ns)
	if len(taken) > len(shown) {
		msg += fmt.Sprintf(" (and %d more)", len(taken)-len(shown))
	}
	return msg + "; adopt those by hand under other names"
}

// refersTo reports whether rc refers to the credential ref of the provider key.
func refersTo(rc *v1alpha1.RemoteCredential, key account.Key, ref vendors.Ref) bool {
	return account.KeyFor(rc.Namespace, rc.Spec.ProviderRef) == key && rc.Spec.ID == ref.ID && rc.Spec.UserID == ref.UserID
}
