package controllers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
	"github.com/credsync/credsync/internal/backoff"
	"github.com/credsync/credsync/internal/vendors"
)

// providerRefIndex indexes RemoteCredentials by "<kind>/<name>" of their provider.
const providerRefIndex = "spec.providerRef"

// remoteCredentialReconciler keeps a RemoteCredential's status true to the
// vendor's metadata. It calls the vendor only when a sync is due (refresh
// interval reached, spec or provider changed, sync requested, or a backoff
// ended), through the provider's account, and writes status only when it
// changed.
type remoteCredentialReconciler struct {
	client.Client
	Accounts *account.Accounts
	// Clock reads the time of every decision.
	Clock clock.Clock
	// MaxConcurrentReconciles bounds parallel syncs (and so vendor calls).
	MaxConcurrentReconciles int
	// Recorder emits events on transitions; none when nil.
	Recorder events.EventRecorder
	// AccountChanges names providers whose credentials should be looked
	// at again (their account changed); optional.
	AccountChanges <-chan event.GenericEvent

	schedule *schedule
	writes   statusWrites
	// arrivals sets the work-queue priority of credential events from
	// their provider's recent events (fairness.go).
	arrivals *arrivals
	// newQueue builds the work queue; controller-runtime's when nil
	// (clockqueue.go).
	newQueue queueFunc
}

// +kubebuilder:rbac:groups=credsync.io,resources=remotecredentials,verbs=get;list;watch
// +kubebuilder:rbac:groups=credsync.io,resources=remotecredentials/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one RemoteCredential.
func (r *remoteCredentialReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rc := &v1alpha1.RemoteCredential{}
	if err := r.writes.get(ctx, r.Client, req.NamespacedName, rc); err != nil {
		if apierrors.IsNotFound(err) {
			r.schedule.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := rc.DeepCopy()
	now := r.Clock.Now()

	next, synced, err := r.sync(ctx, rc, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	setTimeConditions(rc, now)
	if err := patchStatusIfChanged(ctx, r.Client, &r.writes, before, rc, func(o *v1alpha1.RemoteCredential) any { return o.Status }); err != nil {
		if synced {
			// The sync's outcome is lost: sync again soon, not at the next
			// refresh. (A reconcile that synced nothing only moved the
			// clock's conditions: the work queue's retry redoes that
			// without calling the vendor.)
			r.schedule.retrySoon(req.NamespacedName, now)
		}
		return ctrl.Result{}, err
	}
	emit(r.Recorder, rc, credentialEvents(before, rc))
	wake := wakeAfter(rc, next, now)
	ctrl.LoggerFrom(ctx).V(1).Info("reconciled", "wakeAfter", wake)
	return wakeAt(r.Clock, now.Add(wake)), nil
}

// sync asks the provider's account for the credential when a sync is due
// and writes the answer into rc.Status. It returns when the vendor may
// next be called, and whether a sync was due (its outcome is in rc.Status).
// An error is returned only for Kubernetes API failures (retried by the
// work queue).
func (r *remoteCredentialReconciler) sync(ctx context.Context, rc *v1alpha1.RemoteCredential, now time.Time) (time.Time, bool, error) {
	key := client.ObjectKeyFromObject(rc)
	providerKey := account.KeyFor(rc.Namespace, rc.Spec.ProviderRef)
	lk, err := r.Accounts.Lookup(ctx, providerKey)
	if err != nil {
		return time.Time{}, false, err
	}
	// A cluster provider that does not serve the namespace: not read,
	// whatever the account could do.
	if pe, err := r.Accounts.Admits(ctx, providerKey, rc.Namespace); err != nil {
		return time.Time{}, false, err
	} else if pe != nil {
		lk.Unavailable = pe
	}
	epoch := lk.Epoch
	ref := vendors.Ref{ID: rc.Spec.ID, UserID: rc.Spec.UserID}
	_, unusable := account.AsProviderError(lk.Unavailable)
	plan := r.schedule.plan(rc, accountView{epoch: epoch, canRead: lk.Unavailable == nil, unlistedAt: lk.Account.UnlistedAt(ref), unusable: unusable}, now)
	if !plan.due {
		return r.schedule.next(key), false, nil
	}
	if r.schedule.refChanged(rc) {
		// The spec names another credential: what status says is about the
		// old one (its expiry above all), whatever the read brings.
		(&vendors.Credential{}).ApplyTo(&rc.Status)
	}
	if lk.Unavailable != nil {
		return r.waitForProvider(rc, lk.Account.Vendor(), epoch, lk.Unavailable, now), true, nil
	}

	interval := refreshInterval(rc)
	// Reuse is bounded by the credential's own refreshInterval, not the
	// jittered one that schedules it.
	maxAge := rc.Spec.Refresh()
	if plan.fresh {
		maxAge = 0
	}
	o := lk.Account.Read(ctx, ref, readerOf(rc), maxAge, r.schedule.lastRead(key))
	switch {
	case o.Deferred != nil:
		// The budget held the read back: nothing is known, nothing changes;
		// try again after the wait, spread so the provider's credentials do
		// not all return at once.
		spread := max(o.Deferred.Wait/4, time.Second)
		return r.schedule.deferUntil(rc, epoch, now.Add(o.Deferred.Wait+backoff.Within(spread, string(rc.UID), backoff.Deferred))), true, nil
	case o.Unavailable != nil:
		return r.waitForProvider(rc, lk.Account.Vendor(), epoch, o.Unavailable, now), true, nil
	}
	stampObserved(rc, lk.Account.Vendor())
	readAt := o.ReadAt
	if readAt.IsZero() {
		readAt = now
	}
	log := ctrl.LoggerFrom(ctx)
	if o.Err != nil {
		log.V(1).Info("vendor read failed", "vendor", rc.Status.Vendor, "id", rc.Spec.ID, "error", o.Err.Error())
		return r.vendorFailed(rc, epoch, o.Err, readAt, interval, now), true, nil
	}
	log.V(1).Info("vendor read", "vendor", rc.Status.Vendor, "id", rc.Spec.ID, "readAt", readAt)
	o.Credential.ApplyTo(&rc.Status)
	if exp := rc.Status.ExpiresAt; o.Credential.Revoked && (exp == nil || now.Before(exp.Time)) {
		setOutcome(&rc.Status.Conditions, rc.Generation, outcome{Reason: v1alpha1.ReasonRevoked, Terminal: true,
			Message: fmt.Sprintf("%s credential %s is revoked or disabled at the vendor; it will not work again", rc.Status.Vendor, rc.Spec.ID)})
	} else {
		setSynced(rc, now)
	}
	return r.schedule.answered(rc, epoch, readAt, interval, true), true, nil
}

// readerOf identifies rc to its provider's read store.
func readerOf(rc *v1alpha1.RemoteCredential) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(rc.UID))
	return h.Sum64() | 1 // never 0, which means "several readers"
}

// stampObserved marks the status as computed for the current spec and
// sync request (observedGeneration, lastHandledSyncRequest): called once a
// sync has an outcome to write.
func stampObserved(rc *v1alpha1.RemoteCredential, vendor string) {
	rc.Status.ObservedGeneration = rc.Generation
	rc.Status.LastHandledSyncRequest = rc.Annotations[v1alpha1.SyncRequestedAtAnnotation]
	if vendor != "" {
		rc.Status.Vendor = vendor
	}
}

// waitForProvider handles a sync the provider's account cannot serve. A provider
// that is missing, unusable or whose key the vendor refuses makes the
// credential ProviderNotReady; a cluster provider that does not serve its
// namespace, ProviderNotAllowed (terminal); a key not checked yet changes
// nothing (the check wakes the credential). Either way the credential is
// looked at again as soon as the account can read, or after a backoff
// step.
func (r *remoteCredentialReconciler) waitForProvider(rc *v1alpha1.RemoteCredential, vendor string, epoch uint64, err error, now time.Time) time.Time {
	if pe, ok := account.AsProviderError(err); ok {
		stampObserved(rc, vendor)
		o := outcome{Reason: v1alpha1.ReasonProviderNotReady, Message: pe.Message}
		if pe.Reason == v1alpha1.ReasonProviderNotAllowed {
			o = outcome{Reason: pe.Reason, Message: pe.Message, Terminal: true}
		}
		setOutcome(&rc.Status.Conditions, rc.Generation, o)
	}
	return r.schedule.failed(rc, epoch, now, 0, providerBackoffCap, true)
}

// vendorFailed writes the vendor's answer err, read at readAt. A terminal
// answer is kept until the next refresh; a transient one is retried on a
// backoff (or after Retry-After). A credential whose known expiry has
// passed and that the vendor no longer has is Expired, not NotFound:
// some vendors delete keys once they expire.
func (r *remoteCredentialReconciler) vendorFailed(rc *v1alpha1.RemoteCredential, epoch uint64, err error, readAt time.Time, interval time.Duration, now time.Time) time.Time {
	reason, terminal := vendors.Reason(err)
	msg := fmt.Sprintf("%s credential %s: %v", rc.Status.Vendor, rc.Spec.ID, err)
	if exp := rc.Status.ExpiresAt; errors.Is(err, vendors.ErrNotFound) && exp != nil && !now.Before(exp.Time) {
		reason = v1alpha1.ReasonExpired
		msg = fmt.Sprintf("%s credential %s expired at %s; the vendor no longer lists it (%v)",
			rc.Status.Vendor, rc.Spec.ID, exp.UTC().Format(time.RFC3339), err)
	}
	setOutcome(&rc.Status.Conditions, rc.Generation, outcome{Reason: reason, Message: msg, Terminal: terminal})
	if terminal {
		return r.schedule.answered(rc, epoch, readAt, interval, false)
	}
	return r.schedule.failed(rc, epoch, now, vendors.RetryAfter(err), backoffCap, false)
}

// setSynced sets the outcome of a successful fetch: Synced, or Expired when
// expiresAt has passed.
func setSynced(rc *v1alpha1.RemoteCredential, now time.Time) {
	o := outcome{Reason: v1alpha1.ReasonSynced, Message: fmt.Sprintf("%s credential %s synced", rc.Status.Vendor, rc.Spec.ID)}
	if exp := rc.Status.ExpiresAt; exp != nil && !now.Before(exp.Time) {
		o = outcome{Reason: v1alpha1.ReasonExpired, Terminal: true,
			Message: fmt.Sprintf("%s credential %s expired at %s", rc.Status.Vendor, rc.Spec.ID, exp.UTC().Format(time.RFC3339))}
	}
	setOutcome(&rc.Status.Conditions, rc.Generation, o)
}

// unusedSince is when rc's Unused condition turns True (the time it was
// last used, or created when never used, plus spec.unusedAfter); ok is
// false when Unused is not timed: unusedAfter unset, or the vendor does
// not report use (neither lastUsedAt nor neverUsed in status).
func unusedSince(rc *v1alpha1.RemoteCredential) (at time.Time, ok bool) {
	base, reported := rc.Status.LastUse()
	if rc.Spec.UnusedAfter == nil || !reported {
		return time.Time{}, false
	}
	if base == nil {
		return time.Time{}, true // never used, creation unknown: unused now
	}
	return base.Add(rc.Spec.UnusedAfter.Duration), true
}

// setUnused times the Unused condition (see unusedSince).
func setUnused(rc *v1alpha1.RemoteCredential, now time.Time) {
	at, ok := unusedSince(rc)
	if !ok {
		meta.RemoveStatusCondition(&rc.Status.Conditions, v1alpha1.ConditionUnused)
		return
	}
	after := rc.Spec.UnusedAfter.Duration
	status, reason, msg := metav1.ConditionTrue, v1alpha1.ReasonNeverUsed, "never used; the vendor reports no creation time"
	switch used, created := rc.Status.LastUsedAt, rc.Status.CreatedAt; {
	case used != nil && now.Before(at):
		status, reason, msg = metav1.ConditionFalse, v1alpha1.ReasonRecentlyUsed,
			fmt.Sprintf("last used at %s (to the hour), within unusedAfter (%s)", used.UTC().Format(time.RFC3339), after)
	case used != nil:
		reason, msg = v1alpha1.ReasonNotUsedRecently,
			fmt.Sprintf("last used at %s (to the hour), longer ago than unusedAfter (%s)", used.UTC().Format(time.RFC3339), after)
	case created != nil && now.Before(at):
		status, reason, msg = metav1.ConditionFalse, v1alpha1.ReasonRecentlyCreated,
			fmt.Sprintf("never used since it was created at %s, within unusedAfter (%s)", created.UTC().Format(time.RFC3339), after)
	case created != nil:
		msg = fmt.Sprintf("never used since it was created at %s, longer ago than unusedAfter (%s)", created.UTC().Format(time.RFC3339), after)
	}
	setCondition(&rc.Status.Conditions, rc.Generation, v1alpha1.ConditionUnused, status, reason, msg)
}

// setTimeConditions moves the conditions that depend only on the clock:
// Expiring, Unused, and Synced → Expired when expiresAt passes without a
// sync.
func setTimeConditions(rc *v1alpha1.RemoteCredential, now time.Time) {
	setUnused(rc, now)
	exp := rc.Status.ExpiresAt
	if exp == nil {
		meta.RemoveStatusCondition(&rc.Status.Conditions, v1alpha1.ConditionExpiring)
		return
	}
	if ready := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady); ready != nil &&
		ready.Reason == v1alpha1.ReasonSynced && !now.Before(exp.Time) {
		setSynced(rc, now)
	}
	warnAt := exp.Add(-rc.Spec.Warning())
	at := exp.UTC().Format(time.RFC3339)
	if now.Before(warnAt) {
		setCondition(&rc.Status.Conditions, rc.Generation, v1alpha1.ConditionExpiring, metav1.ConditionFalse,
			v1alpha1.ReasonNotExpiring, "expires at "+at)
		return
	}
	setCondition(&rc.Status.Conditions, rc.Generation, v1alpha1.ConditionExpiring, metav1.ConditionTrue,
		v1alpha1.ReasonExpiresSoon, fmt.Sprintf("expires at %s, within the expiry warning of %s", at, rc.Spec.Warning()))
}

// wakeAfter is the time until the next thing can change: the next vendor
// call, Expiring turning True, expiry, or Unused turning True.
func wakeAfter(rc *v1alpha1.RemoteCredential, next, now time.Time) time.Duration {
	at := next
	var moments []time.Time
	if exp := rc.Status.ExpiresAt; exp != nil {
		moments = append(moments, exp.Add(-rc.Spec.Warning()), exp.Time)
	}
	if t, ok := unusedSince(rc); ok {
		moments = append(moments, t)
	}
	for _, t := range moments {
		if t.After(now) && t.Before(at) {
			at = t
		}
	}
	return max(at.Sub(now), minWake)
}

// SetupWithManager registers the controller: it watches RemoteCredentials
// (spec and sync-annotation changes only: our own status writes do not
// come back as work; at a priority fair between providers), both provider
// kinds (spec and Ready changes) and the accounts' changes.
func (r *remoteCredentialReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.RemoteCredential{}, providerRefIndex,
		func(o client.Object) []string {
			rc := o.(*v1alpha1.RemoteCredential)
			return []string{account.KeyFor(rc.Namespace, rc.Spec.ProviderRef).Kind + "/" + rc.Spec.ProviderRef.Name}
		}); err != nil {
		return err
	}
	if r.schedule == nil {
		r.schedule = &schedule{}
	}
	if r.arrivals == nil {
		r.arrivals = newArrivals(r.Clock)
	}
	workers := r.MaxConcurrentReconciles
	if workers == 0 {
		workers = 16
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if r.AccountChanges != nil {
		b = b.WatchesRawSource(source.Channel(r.AccountChanges, lowPriority(r.credentialRequests)))
	}
	providerChanged := builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, readyChanged))
	return b.
		Watches(&v1alpha1.RemoteCredential{}, fairRequests(r.arrivals),
			builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, syncRequested))).
		Watches(&v1alpha1.CredentialProvider{}, lowPriority(r.credentialRequests), providerChanged).
		Watches(&v1alpha1.ClusterCredentialProvider{}, lowPriority(r.credentialRequests), providerChanged).
		// A namespace's labels decide which cluster providers serve it.
		Watches(&corev1.Namespace{}, lowPriority(r.namespaceRequests), builder.OnlyMetadata,
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, LogConstructor: credentialLogger(mgr.GetLogger()), NewQueue: r.newQueue}).
		Named("remotecredential").
		Complete(r)
}

// credentialLogger is the logger of each reconcile, with the keys
// controller-runtime gives a controller built For a kind (this one
// watches its kind with its own handler).
func credentialLogger(base logr.Logger) func(*reconcile.Request) logr.Logger {
	log := base.WithValues("controller", "remotecredential",
		"controllerGroup", v1alpha1.GroupVersion.Group, "controllerKind", "RemoteCredential")
	return func(req *reconcile.Request) logr.Logger {
		if req == nil {
			return log
		}
		return log.WithValues("RemoteCredential", req.NamespacedName, "namespace", req.Namespace, "name", req.Name)
	}
}

// lowPriority enqueues the requests of mapFn for every event at low
// priority: a provider's change wakes all its credentials, and they must
// not queue ahead of new credentials and sync requests (nor push the
// credentials of the initial list ahead of them after a start).
func lowPriority(mapFn handler.MapFunc) handler.EventHandler {
	enqueue := func(ctx context.Context, o client.Object, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
		pq, ok := q.(priorityqueue.PriorityQueue[reconcile.Request])
		for _, req := range mapFn(ctx, o) {
			if ok {
				pq.AddWithOpts(priorityqueue.AddOpts{Priority: ptr.To(handler.LowPriority)}, req)
			} else {
				q.Add(req)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.ObjectNew, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, e.Object, q)
		},
	}
}

// syncRequested passes updates that set or change the sync annotation.
var syncRequested = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetAnnotations()[v1alpha1.SyncRequestedAtAnnotation] !=
			e.ObjectNew.GetAnnotations()[v1alpha1.SyncRequestedAtAnnotation]
	},
}

// readyChanged passes provider updates whose Ready condition changed
// status or reason: a provider turning Ready wakes its credentials.
var readyChanged = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		was, is := readyOf(e.ObjectOld), readyOf(e.ObjectNew)
		return (was == nil) != (is == nil) || (was != nil && (was.Status != is.Status || was.Reason != is.Reason))
	},
}

func readyOf(o client.Object) *metav1.Condition {
	p, ok := o.(account.Provider)
	if !ok {
		return nil
	}
	return meta.FindStatusCondition(p.ProviderStatus().Conditions, v1alpha1.ConditionReady)
}

// namespaceRequests maps a namespace to its RemoteCredentials that use a
// ClusterCredentialProvider: its labels decide whether they may.
func (r *remoteCredentialReconciler) namespaceRequests(ctx context.Context, o client.Object) []reconcile.Request {
	list := &v1alpha1.RemoteCredentialList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list credentials of namespace")
		return nil
	}
	var reqs []reconcile.Request
	for i := range list.Items {
		if list.Items[i].Spec.ProviderRef.Kind == v1alpha1.ClusterCredentialProviderKind {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
		}
	}
	return reqs
}

// credentialRequests maps a provider to the RemoteCredentials that use it.
func (r *remoteCredentialReconciler) credentialRequests(ctx context.Context, o client.Object) []reconcile.Request {
	rcs, err := credentialsOf(ctx, r.Client, account.KeyOf(o.(account.Provider)))
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "list credentials of provider")
		return nil
	}
	reqs := make([]reconcile.Request, len(rcs))
	for i := range rcs {
		reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&rcs[i])}
	}
	return reqs
}
