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
	"k8s.io/apimachinery/pkg/types"
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
// when to look again and the events to emit. A failed sweep changes
// neither Ready nor the credentials.
func (r *providerReconciler) inventory(ctx context.Context, obj account.Provider, a *account.Account) (time.Duration, []eventSpec, error) {
	st := obj.ProviderStatus()
	spec := obj.ProviderSpec().Inventory
	if spec == nil || a == nil {
		st.Inventory = nil
		meta.RemoveStatusCondition(&st.Conditions, v1alpha1.ConditionInventoried)
		return 0, nil, nil
	}
	res := a.Sweep(ctx)
	if res.Err != nil {
		reason, msg := sweepFailure(res.Err)
		setCondition(&st.Conditions, obj.GetGeneration(), v1alpha1.ConditionInventoried, metav1.ConditionFalse, reason, msg)
	}
	if res.Listing == nil {
		return res.Next, nil, nil
	}
	rcs, err := r.credentialsOf(ctx, obj)
	if err != nil {
		return 0, nil, err
	}
	before := st.Inventory
	managed, unmanaged := classify(res.Listing, rcs)
	st.Inventory = inventoryStatus(len(res.Listing.Items), managed, unmanaged)
	if res.Err == nil {
		setCondition(&st.Conditions, obj.GetGeneration(), v1alpha1.ConditionInventoried, metav1.ConditionTrue, v1alpha1.ReasonListed,
			fmt.Sprintf("%d credentials: %d managed, %d unmanaged", len(res.Listing.Items), managed, len(unmanaged)))
	}
	if spec.Adopt {
		if err := r.adopt(ctx, obj, unmanaged); err != nil {
			return 0, nil, err
		}
	}
	return res.Next, unmanagedEvents(before, st.Inventory), nil
}

// sweepFailure is the Inventoried reason and message of a failed sweep.
func sweepFailure(err error) (reason, message string) {
	if pe, ok := account.AsProviderError(err); ok {
		if pe.Reason == v1alpha1.ReasonUnauthorized {
			return pe.Reason, pe.Message
		}
		return v1alpha1.ReasonProviderNotReady, pe.Message
	}
	reason, _ = vendors.Reason(err)
	return reason, fmt.Sprintf("listing the vendor account failed: %v; credentials are read one by one meanwhile", err)
}

// credentialsOf lists, from the cache, the RemoteCredentials whose
// providerRef resolves to the provider obj.
func (r *providerReconciler) credentialsOf(ctx context.Context, obj account.Provider) ([]v1alpha1.RemoteCredential, error) {
	key := account.KeyOf(obj)
	list := &v1alpha1.RemoteCredentialList{}
	opts := []client.ListOption{client.MatchingFields{providerRefIndex: key.Kind + "/" + key.Name}, client.UnsafeDisableDeepCopy}
	if key.Namespace != "" {
		opts = append(opts, client.InNamespace(key.Namespace))
	}
	if err := r.List(ctx, list, opts...); err != nil {
		return nil, fmt.Errorf("list credentials of %s: %w", key, err)
	}
	return list.Items, nil
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
		switch {
		case a.ExpiresAt != nil && b.ExpiresAt == nil:
			return -1
		case a.ExpiresAt == nil && b.ExpiresAt != nil:
			return 1
		case a.ExpiresAt != nil && !a.ExpiresAt.Equal(*b.ExpiresAt):
			return a.ExpiresAt.Compare(*b.ExpiresAt)
		}
		return cmp.Or(strings.Compare(a.Ref.ID, b.Ref.ID), strings.Compare(a.Ref.UserID, b.Ref.UserID))
	})
	return managed, unmanaged
}

func inventoryStatus(total, managed int, unmanaged []account.Listed) *v1alpha1.InventoryStatus {
	st := &v1alpha1.InventoryStatus{Total: int32(total), Managed: int32(managed), Unmanaged: int32(len(unmanaged))} //nolint:gosec // counts of one vendor account
	for _, it := range unmanaged[:min(len(unmanaged), maxUnmanagedShown)] {
		st.UnmanagedCredentials = append(st.UnmanagedCredentials, v1alpha1.UnmanagedCredential{
			ID: it.Ref.ID, UserID: it.Ref.UserID, Name: it.Name, CreatedAt: apiTime(it.CreatedAt), ExpiresAt: apiTime(it.ExpiresAt),
		})
	}
	return st
}

// apiTime is t as the API server stores it (seconds), so an unchanged
// sweep compares equal to what is stored.
func apiTime(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// unmanagedEvents is the Warning for unmanaged credentials that were not
// in the previous status: on the first sweep, new IDs among those shown,
// or more of them than before. A sweep that finds the same emits none.
func unmanagedEvents(before, after *v1alpha1.InventoryStatus) []eventSpec {
	if after.Unmanaged == 0 {
		return nil
	}
	known := map[string]bool{}
	if before != nil {
		for _, c := range before.UnmanagedCredentials {
			known[c.ID+"/"+c.UserID] = true
		}
	}
	var fresh []string
	for _, c := range after.UnmanagedCredentials {
		if !known[c.ID+"/"+c.UserID] {
			fresh = append(fresh, unmanagedName(c))
		}
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

func unmanagedName(c v1alpha1.UnmanagedCredential) string {
	s := c.ID
	if c.Name != "" {
		s += " (" + c.Name + ")"
	}
	return s
}

// adopt creates a RemoteCredential for each unmanaged credential that has
// none of its adopted name yet. It never deletes: a credential gone at
// the vendor reads NotFound.
func (r *providerReconciler) adopt(ctx context.Context, obj account.Provider, unmanaged []account.Listed) error {
	key := account.KeyOf(obj)
	ns := key.Namespace
	if ns == "" {
		ns = r.ClusterResourceNamespace
	}
	log := ctrl.LoggerFrom(ctx)
	for _, it := range unmanaged {
		rc := adopted(obj, key, ns, it)
		err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: rc.Name}, &v1alpha1.RemoteCredential{})
		if err == nil {
			continue // adopted already (the sweep predates it), or the name is taken
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
		if err := r.Create(ctx, rc); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("adopt %s credential %s: %w", key, it.Ref.ID, err)
		}
		log.Info("adopted an unmanaged credential", "id", it.Ref.ID, "remoteCredential", rc.Name)
	}
	return nil
}

// adopted is the RemoteCredential that adopts the listed credential it.
func adopted(obj account.Provider, key account.Key, ns string, it account.Listed) *v1alpha1.RemoteCredential {
	gvk := v1alpha1.GroupVersion.WithKind(key.Kind)
	return &v1alpha1.RemoteCredential{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns,
			Name:      v1alpha1.AdoptedName(key.Name, it.Ref.ID, it.Ref.UserID),
			Labels:    map[string]string{v1alpha1.AdoptedByLabel: v1alpha1.AdoptedByValue(key.Name)},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: obj.GetName(), UID: obj.GetUID(),
			}},
		},
		Spec: v1alpha1.RemoteCredentialSpec{
			ProviderRef: v1alpha1.ProviderReference{Kind: key.Kind, Name: key.Name},
			ID:          it.Ref.ID,
			UserID:      it.Ref.UserID,
		},
	}
}
