package controllers

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Provider re-check intervals. Secrets are not watched (the operator may
// only get them), so a provider is checked again on a timer, reading its
// Secret each time: a rotated Secret takes effect within a minute.
const (
	providerRecheck        = time.Minute
	providerNotReadyRetry  = 30 * time.Second
	providerInvalidRecheck = time.Hour
)

// ProviderReconciler checks that a CredentialProvider or
// ClusterCredentialProvider is usable: a registered vendor block, a valid
// caBundle and its Secret with the keys the vendor needs. It does not call
// the vendor.
type ProviderReconciler struct {
	client.Client
	Providers *Providers
	// Kind is CredentialProvider or ClusterCredentialProvider.
	Kind string
	// Recorder emits an event when Ready's reason changes; none when nil.
	Recorder events.EventRecorder
	// Changes names providers to check again now (the vendor refused
	// their credentials); optional.
	Changes <-chan event.GenericEvent
}

// +kubebuilder:rbac:groups=credsync.io,resources=credentialproviders;clustercredentialproviders,verbs=get;list;watch
// +kubebuilder:rbac:groups=credsync.io,resources=credentialproviders/status;clustercredentialproviders/status,verbs=get;update;patch

// Reconcile checks one provider and writes its Ready condition.
func (r *ProviderReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	key := providerKey{Kind: r.Kind, Namespace: req.Namespace, Name: req.Name}
	obj := newProvider(r.Kind)
	if err := r.Get(ctx, req.NamespacedName, obj); err != nil {
		if apierrors.IsNotFound(err) {
			r.Providers.Drop(key)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := obj.DeepCopyObject().(providerObject)

	o, retry, err := r.check(ctx, key, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	st := obj.ProviderStatus()
	st.ObservedGeneration = obj.GetGeneration()
	setOutcome(&st.Conditions, obj.GetGeneration(), o)
	if err := patchStatusIfChanged(ctx, r.Client, before, obj, func(o providerObject) any { return o.ProviderStatus() }); err != nil {
		return ctrl.Result{}, err
	}
	if e := readyTransition(before.ProviderStatus().Conditions, st.Conditions, actionCheck); e != nil {
		emit(r.Recorder, obj, []eventSpec{*e})
	}
	return ctrl.Result{RequeueAfter: retry}, nil
}

// check loads the provider and says what its conditions should be.
func (r *ProviderReconciler) check(ctx context.Context, key providerKey, obj providerObject) (outcome, time.Duration, error) {
	res, err := r.Providers.Reload(ctx, key, obj)
	if err == nil {
		if authErr := res.Gate.AuthFailure(); authErr != nil {
			return outcome{Reason: v1alpha1.ReasonUnauthorized, Terminal: true,
				Message: fmt.Sprintf("%s refused the provider's credentials (%v); its credentials are not read until the Secret changes or a retry succeeds", res.Vendor.Name, authErr)}, providerRecheck, nil
		}
		return outcome{Reason: v1alpha1.ReasonValid, Message: res.Vendor.Name + " provider is usable"}, providerRecheck, nil
	}
	pe, ok := asProviderError(err)
	if !ok {
		return outcome{}, 0, fmt.Errorf("check %s: %w", key, err)
	}
	if pe.terminal() {
		return outcome{Reason: pe.Reason, Message: pe.Message, Terminal: true}, providerInvalidRecheck, nil
	}
	return outcome{Reason: pe.Reason, Message: pe.Message}, providerNotReadyRetry, nil
}

// SetupWithManager registers the controller for r.Kind.
func (r *ProviderReconciler) SetupWithManager(mgr ctrl.Manager) error {
	b := ctrl.NewControllerManagedBy(mgr)
	if r.Changes != nil {
		b = b.WatchesRawSource(source.Channel(r.Changes, &handler.EnqueueRequestForObject{}))
	}
	return b.
		For(newProvider(r.Kind), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named(map[string]string{
			v1alpha1.CredentialProviderKind:        "credentialprovider",
			v1alpha1.ClusterCredentialProviderKind: "clustercredentialprovider",
		}[r.Kind]).
		Complete(r)
}
