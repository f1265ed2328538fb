package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
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
	"github.com/credsync/credsync/internal/metrics"
	"github.com/credsync/credsync/internal/vendors"
)

// providerRefIndex indexes RemoteCredentials by "<kind>/<name>" of their provider.
const providerRefIndex = "spec.providerRef"

func credentialKey(rc *v1alpha1.RemoteCredential) string {
	return keyFor(rc.Namespace, rc.Spec.ProviderRef).String() + "|" + rc.Spec.ID + "|" + rc.Spec.UserID
}

// RemoteCredentialReconciler keeps a RemoteCredential's status true to the
// vendor's metadata. It calls the vendor only when a sync is due (refresh
// interval reached, spec or provider changed, sync requested, or a backoff
// ended) and writes status only when it changed.
type RemoteCredentialReconciler struct {
	client.Client
	Providers *Providers
	// MaxConcurrentReconciles bounds parallel syncs (and so vendor calls).
	MaxConcurrentReconciles int
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Recorder emits events on transitions; none when nil.
	Recorder events.EventRecorder
	// SyncTimes records successful checks, for metrics; optional.
	SyncTimes *metrics.SyncTimes
	// ProviderChanges names providers whose credentials should be looked
	// at again (their Secret changed); optional.
	ProviderChanges <-chan event.GenericEvent

	schedule schedule
	reads    sharedReads
}

// +kubebuilder:rbac:groups=credsync.io,resources=remotecredentials,verbs=get;list;watch
// +kubebuilder:rbac:groups=credsync.io,resources=remotecredentials/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile syncs one RemoteCredential.
func (r *RemoteCredentialReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rc := &v1alpha1.RemoteCredential{}
	if err := r.Get(ctx, req.NamespacedName, rc); err != nil {
		if apierrors.IsNotFound(err) {
			r.schedule.forget(req.NamespacedName)
			r.reads.forget(req.NamespacedName)
			r.SyncTimes.Forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	before := rc.DeepCopy()
	now := r.now()

	next, err := r.sync(ctx, rc, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	setTimeConditions(rc, now)
	if err := patchStatusIfChanged(ctx, r.Client, before, rc, func(o *v1alpha1.RemoteCredential) any { return o.Status }); err != nil {
		// The vendor's answer is lost: fetch again soon, not at the next refresh.
		r.schedule.retrySoon(req.NamespacedName, now)
		return ctrl.Result{}, err
	}
	emit(r.Recorder, rc, credentialEvents(before, rc))
	return ctrl.Result{RequeueAfter: wakeAfter(rc, next, now)}, nil
}

// sync calls the vendor when a sync is due and writes the result into
// rc.Status. It returns when the vendor may next be called. An error is
// returned only for Kubernetes API failures (retried by the work queue).
func (r *RemoteCredentialReconciler) sync(ctx context.Context, rc *v1alpha1.RemoteCredential, now time.Time) (time.Time, error) {
	key := client.ObjectKeyFromObject(rc)
	pkey := keyFor(rc.Namespace, rc.Spec.ProviderRef)
	provider, err := r.Providers.Get(ctx, pkey)
	if err != nil && !isProviderError(err) {
		return time.Time{}, err
	}
	basis := syncBasis(rc, provider, r.Providers.SecretVersion(pkey))
	if !r.schedule.due(key, basis, now) {
		return r.schedule.next(key), nil
	}

	log := ctrl.LoggerFrom(ctx)
	if provider == nil {
		return r.providerNotReady(rc, key, basis, err, now), nil
	}
	res, err := r.Providers.Load(ctx, pkey, provider)
	if err != nil {
		if !isProviderError(err) {
			return time.Time{}, err
		}
		return r.providerNotReady(rc, key, basis, err, now), nil
	}
	// The load may have found the Secret changed: this sync is made for it.
	basis = syncBasis(rc, provider, r.Providers.SecretVersion(pkey))
	if rc.Spec.UserID != "" && !res.Vendor.SupportsUserID {
		observe(rc, res.Vendor.Name)
		msg := fmt.Sprintf("spec.userId is not supported by %s providers (elasticCloud only)", res.Vendor.Name)
		setOutcome(&rc.Status.Conditions, rc.Generation, outcome{Reason: v1alpha1.ReasonInvalidSpec, Message: msg, Terminal: true})
		return r.schedule.succeeded(key, basis, now, refreshInterval(rc)), nil
	}

	cred, readAt, shared, err := r.read(ctx, rc, res, basis, now)
	if d, ok := vendors.AsDeferred(err); ok {
		return r.deferred(rc, key, basis, res, d, now), nil
	}
	observe(rc, res.Vendor.Name)
	if err != nil {
		log.V(1).Info("vendor call failed", "vendor", res.Vendor.Name, "id", rc.Spec.ID, "error", err.Error())
		if errors.Is(err, vendors.ErrUnauthorized) {
			r.Providers.Forget(pkey) // read the Secret again before the next call
		}
		return r.vendorFailed(rc, key, basis, res.Vendor.Name, err, now), nil
	}
	log.V(1).Info("vendor call succeeded", "vendor", res.Vendor.Name, "id", rc.Spec.ID)
	cred.ApplyTo(&rc.Status)
	setSynced(rc, now)
	r.SyncTimes.Record(key, rc.UID, now)
	if shared {
		// RemoteCredentials naming one credential refresh together: from
		// the shared read, with the credential's jitter, not their own.
		return r.schedule.succeeded(key, basis, readAt, jittered(rc.Spec.Refresh(), credentialKey(rc))), nil
	}
	return r.schedule.succeeded(key, basis, now, refreshInterval(rc)), nil
}

// read fetches the credential rc names. Reads of a credential that other
// RemoteCredentials name too go through the shared reads.
// It returns when the vendor was read and whether the read was shared.
func (r *RemoteCredentialReconciler) read(ctx context.Context, rc *v1alpha1.RemoteCredential, res *resolved, basis string, now time.Time) (*vendors.Credential, time.Time, bool, error) {
	ref := vendors.Ref{ID: rc.Spec.ID, UserID: rc.Spec.UserID}
	key := client.ObjectKeyFromObject(rc)
	if !r.reads.name(key, credentialKey(rc)) {
		cred, err := res.Client.Get(ctx, ref)
		return cred, now, false, err
	}
	readKey := fmt.Sprintf("%s|%s|%d", credentialKey(rc), res.version, r.Providers.SecretVersion(res.Key))
	cred, at, err := r.reads.read(readKey, !r.schedule.fresh(key, basis), shareLifetime(rc.Spec.Refresh()),
		func() (*vendors.Credential, error) { return res.Client.Get(ctx, ref) })
	return cred, at, true, err
}

// observe marks the status as computed for the current spec and sync
// request: called once a sync has an outcome to write.
func observe(rc *v1alpha1.RemoteCredential, vendor string) {
	rc.Status.ObservedGeneration = rc.Generation
	rc.Status.LastHandledSyncRequest = rc.Annotations[v1alpha1.SyncRequestedAtAnnotation]
	if vendor != "" {
		rc.Status.Vendor = vendor
	}
}

// deferred handles a read the provider's gate did not let through. While
// the vendor refuses the provider's own credentials the credential shows
// ProviderNotReady; a rate-limit pause or a spent budget changes nothing
// in status. Either way the credential tries again after the wait, spread
// by a per-object jitter so the provider's credentials do not all return
// at once.
func (r *RemoteCredentialReconciler) deferred(rc *v1alpha1.RemoteCredential, key types.NamespacedName, basis string, res *resolved, d *vendors.DeferredError, now time.Time) time.Time {
	spread := max(d.Wait/4, time.Second)
	next := now.Add(d.Wait + time.Duration(vendors.UnitJitter(string(rc.UID), 1)*float64(spread)))
	if errors.Is(d.Cause, vendors.ErrUnauthorized) {
		observe(rc, res.Vendor.Name)
		msg := fmt.Sprintf("%s: %s refused the provider's own credentials (%v); not calling it until the provider's Secret changes or a retry succeeds",
			res.Key, res.Vendor.Name, d.Cause)
		setOutcome(&rc.Status.Conditions, rc.Generation, outcome{Reason: v1alpha1.ReasonProviderNotReady, Message: msg})
	}
	return r.schedule.wait(key, basis, next)
}

func (r *RemoteCredentialReconciler) providerNotReady(rc *v1alpha1.RemoteCredential, key types.NamespacedName, basis string, err error, now time.Time) time.Time {
	observe(rc, "")
	setOutcome(&rc.Status.Conditions, rc.Generation, outcome{Reason: v1alpha1.ReasonProviderNotReady, Message: err.Error()})
	return r.schedule.failed(key, basis, now, 0, providerBackoffCap)
}

func (r *RemoteCredentialReconciler) vendorFailed(rc *v1alpha1.RemoteCredential, key types.NamespacedName, basis, vendor string, err error, now time.Time) time.Time {
	reason, terminal := vendors.Reason(err)
	msg := fmt.Sprintf("%s credential %s: %v", vendor, rc.Spec.ID, err)
	setOutcome(&rc.Status.Conditions, rc.Generation, outcome{Reason: reason, Message: msg, Terminal: terminal})
	if terminal {
		return r.schedule.succeeded(key, basis, now, refreshInterval(rc))
	}
	return r.schedule.failed(key, basis, now, vendors.RetryAfter(err), backoffCap)
}

// refreshInterval is the credential's refresh interval with a stable
// per-object jitter of ±10% drawn from its UID, so that credentials created
// together do not all call the vendor in the same second, refresh after
// refresh.
func refreshInterval(rc *v1alpha1.RemoteCredential) time.Duration {
	return jittered(rc.Spec.Refresh(), string(rc.UID))
}

// jittered is d ±10%, stable for seed.
func jittered(d time.Duration, seed string) time.Duration {
	return time.Duration(float64(d) * (0.9 + 0.2*vendors.UnitJitter(seed, 0)))
}

// syncBasis is what a sync is made for: when it changes, the vendor is
// called again at once.
func syncBasis(rc *v1alpha1.RemoteCredential, provider providerObject, secretVersion int) string {
	pv := "missing"
	if provider != nil {
		pv = fmt.Sprintf("%s/%d/%d", provider.GetUID(), provider.GetGeneration(), secretVersion)
	}
	return fmt.Sprintf("%s/%d/%s/%s", rc.UID, rc.Generation, pv, rc.Annotations[v1alpha1.SyncRequestedAtAnnotation])
}

func isProviderError(err error) bool {
	_, ok := asProviderError(err)
	return ok
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

// setTimeConditions moves the conditions that depend only on the clock:
// Expiring, and Synced → Expired when expiresAt passes without a sync.
func setTimeConditions(rc *v1alpha1.RemoteCredential, now time.Time) {
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
// call, Expiring turning True, or expiry.
func wakeAfter(rc *v1alpha1.RemoteCredential, next, now time.Time) time.Duration {
	at := next
	if exp := rc.Status.ExpiresAt; exp != nil {
		for _, t := range []time.Time{exp.Add(-rc.Spec.Warning()), exp.Time} {
			if t.After(now) && t.Before(at) {
				at = t
			}
		}
	}
	d := at.Sub(now)
	if d < time.Second {
		d = time.Second
	}
	return d
}

func (r *RemoteCredentialReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager registers the controller: it watches RemoteCredentials
// (spec and sync-annotation changes only: our own status writes do not
// come back as work) and both provider kinds.
func (r *RemoteCredentialReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &v1alpha1.RemoteCredential{}, providerRefIndex,
		func(o client.Object) []string {
			rc := o.(*v1alpha1.RemoteCredential)
			return []string{keyFor(rc.Namespace, rc.Spec.ProviderRef).Kind + "/" + rc.Spec.ProviderRef.Name}
		}); err != nil {
		return err
	}
	workers := r.MaxConcurrentReconciles
	if workers == 0 {
		workers = 16
	}
	b := ctrl.NewControllerManagedBy(mgr)
	if r.ProviderChanges != nil {
		b = b.WatchesRawSource(source.Channel(r.ProviderChanges, handler.EnqueueRequestsFromMapFunc(
			func(ctx context.Context, o client.Object) []reconcile.Request {
				kind := v1alpha1.CredentialProviderKind
				if _, ok := o.(*v1alpha1.ClusterCredentialProvider); ok {
					kind = v1alpha1.ClusterCredentialProviderKind
				}
				return r.credentialsOf(kind)(ctx, o)
			})))
	}
	return b.
		For(&v1alpha1.RemoteCredential{}, builder.WithPredicates(predicate.Or(predicate.GenerationChangedPredicate{}, syncRequested))).
		Watches(&v1alpha1.CredentialProvider{}, handler.EnqueueRequestsFromMapFunc(r.credentialsOf(v1alpha1.CredentialProviderKind)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.ClusterCredentialProvider{}, handler.EnqueueRequestsFromMapFunc(r.credentialsOf(v1alpha1.ClusterCredentialProviderKind)),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Named("remotecredential").
		Complete(r)
}

// syncRequested passes updates that set or change the sync annotation.
var syncRequested = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetAnnotations()[v1alpha1.SyncRequestedAtAnnotation] !=
			e.ObjectNew.GetAnnotations()[v1alpha1.SyncRequestedAtAnnotation]
	},
}

// credentialsOf maps a provider to the RemoteCredentials that use it.
func (r *RemoteCredentialReconciler) credentialsOf(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		list := &v1alpha1.RemoteCredentialList{}
		opts := []client.ListOption{client.MatchingFields{providerRefIndex: kind + "/" + o.GetName()}}
		if kind == v1alpha1.CredentialProviderKind {
			opts = append(opts, client.InNamespace(o.GetNamespace()))
		}
		if err := r.List(ctx, list, opts...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "list credentials of provider", "provider", o.GetName())
			return nil
		}
		reqs := make([]reconcile.Request, len(list.Items))
		for i := range list.Items {
			reqs[i] = reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])}
		}
		return reqs
	}
}
