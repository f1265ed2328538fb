package controllers

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
)

// providerReconciler keeps a CredentialProvider's or
// ClusterCredentialProvider's account true to it (its Secret, client,
// budget and key, checked with the vendor) and writes its Ready condition.
type providerReconciler struct {
	client.Client
	Accounts *account.Accounts
	// Clock times the next check and sweep.
	Clock clock.Clock
	// Kind is CredentialProvider or ClusterCredentialProvider.
	Kind string
	// Recorder emits an event when Ready's reason changes; none when nil.
	Recorder events.EventRecorder
	// Suspects names providers to check again now (a read got a 401);
	// optional.
	Suspects <-chan event.GenericEvent
	// ClusterResourceNamespace holds the RemoteCredentials a
	// ClusterCredentialProvider adopts.
	ClusterResourceNamespace string
	// DisableInventory: another manager sweeps; this one leaves
	// status.inventory and the Inventoried condition alone.
	DisableInventory bool
	// WatchNamespaces are the namespaces the manager watches (nil: all):
	// it adopts only into them. WatchLabelSelector is its RemoteCredential
	// label selector: with one, it does not adopt (it would not see the
	// RemoteCredentials it creates).
	WatchNamespaces    []string
	WatchLabelSelector string
	// newQueue builds the work queue; controller-runtime's when nil
	// (clockqueue.go).
	newQueue queueFunc
	writes   statusWrites
}

// +kubebuilder:rbac:groups=credsync.io,resources=credentialproviders;clustercredentialproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=credsync.io,resources=credentialproviders/status;clustercredentialproviders/status,verbs=get;update;patch

// Reconcile checks one provider and writes its Ready condition.
func (r *providerReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := account.NewProvider(r.Kind)
	if err := r.writes.get(ctx, r.Client, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Accounts.Drop(account.Key{Kind: r.Kind, Namespace: req.Namespace, Name: req.Name})
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.DeepCopyObject().(account.Provider)
	now := r.Clock.Now()

	st, err := r.Accounts.Check(ctx, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	status := obj.ProviderStatus()
	status.ObservedGeneration = obj.GetGeneration()
	status.Vendor = st.Vendor
	setOutcome(&status.Conditions, obj.GetGeneration(), outcome{Reason: st.Reason, Message: st.Message, Terminal: st.Terminal})
	lk, err := r.Accounts.Lookup(ctx, account.KeyOf(obj))
	if err != nil {
		return ctrl.Result{}, err
	}
	wake, evs, err := r.inventory(ctx, obj, lk.Account)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := patchStatusIfChanged(ctx, r.Client, &r.writes, before, obj, func(o account.Provider) any { return o.ProviderStatus() }); err != nil {
		return ctrl.Result{}, err
	}
	if e := readyTransition(before.ProviderStatus().Conditions, status.Conditions, actionCheck); e != nil {
		evs = append([]eventSpec{*e}, evs...)
	}
	emit(r.Recorder, obj, evs)
	at := now.Add(st.Recheck)
	if !wake.IsZero() && wake.Before(at) {
		at = wake
	}
	return wakeAt(r.Clock, at), nil
}

// providerWorkers is how many providers of a kind are checked at once.
const providerWorkers = 4

// recountDelay gathers the RemoteCredential changes of a burst (a GitOps
// sync, a cold start) into one recount of their provider's inventory.
const recountDelay = 5 * time.Second

// recount maps a RemoteCredential created, deleted or edited to its
// provider when that provider has inventory on, after recountDelay: the
// managed and unmanaged counts move without waiting for the next sweep
// and without a vendor call.
func (r *providerReconciler) recount() handler.EventHandler {
	enqueue := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		rc, ok := o.(*v1alpha1.RemoteCredential)
		if !ok {
			return
		}
		key := account.KeyFor(rc.Namespace, rc.Spec.ProviderRef)
		if key.Kind != r.Kind {
			return
		}
		p := account.NewProvider(key.Kind)
		name := types.NamespacedName{Namespace: key.Namespace, Name: key.Name}
		// Read-only: no copy of the provider per credential event.
		if err := r.Get(ctx, name, p, client.UnsafeDisableDeepCopy); err != nil || p.ProviderSpec().Inventory == nil {
			return
		}
		q.AddAfter(reconcile.Request{NamespacedName: name}, recountDelay)
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if !e.IsInInitialList { // at a start, the providers count anyway
				enqueue(ctx, e.Object, q)
			}
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectOld, q)
			enqueue(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
	}
}

// SetupWithManager registers the controller for r.Kind.
func (r *providerReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr)
	if r.Suspects != nil {
		b = b.WatchesRawSource(source.Channel(r.Suspects, &handler.EnqueueRequestForObject{}))
	}
	return b.
		For(account.NewProvider(r.Kind), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.RemoteCredential{}, r.recount(), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.CredentialVendor{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return definitionRequests(ctx, r.Client, r.Kind, o)
		}), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		// A provider's check and sweep call its vendor: a slow vendor must
		// not hold the others back. One provider is never checked twice at
		// once (controller-runtime's queue).
		WithOptions(controller.Options{MaxConcurrentReconciles: providerWorkers, NewQueue: r.newQueue}).
		Named(map[string]string{
			v1alpha1.CredentialProviderKind:        "credentialprovider",
			v1alpha1.ClusterCredentialProviderKind: "clustercredentialprovider",
		}[r.Kind]).
		Complete(r)
}
