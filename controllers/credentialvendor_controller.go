package controllers

import (
	"context"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
	"github.com/credsync/credsync/internal/vendors/httpvendor"
)

// credentialVendorReconciler says whether a CredentialVendor's definition
// compiles: Ready True (Valid), or False (InvalidSpec) naming the
// expression and the error. Providers resolve it on their own
// (httpvendor.Custom); a change of it wakes them (providerReconciler).
type credentialVendorReconciler struct {
	client.Client
	Recorder events.EventRecorder
	// Reserved are the built-in definitions' names.
	Reserved []string
	// Vendors compiles CredentialVendors, once per generation for this
	// status and the providers that name them.
	Vendors *httpvendor.Custom

	writes statusWrites
}

// +kubebuilder:rbac:groups=credsync.io,resources=credentialvendors,verbs=get;list;watch
// +kubebuilder:rbac:groups=credsync.io,resources=credentialvendors/status,verbs=get;update;patch

func (r *credentialVendorReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	cv := &v1alpha1.CredentialVendor{}
	if err := r.writes.get(ctx, r.Client, req.NamespacedName, cv); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	before := cv.DeepCopy()
	o := outcome{Reason: v1alpha1.ReasonValid, Message: "the definition compiles"}
	if slices.Contains(r.Reserved, cv.Name) {
		o = outcome{Reason: v1alpha1.ReasonInvalidSpec, Terminal: true,
			Message: fmt.Sprintf("%s is a built-in definition's name: providers naming it get the built-in; rename this CredentialVendor", cv.Name)}
	} else if _, err := r.Vendors.Compiled(cv); err != nil {
		o = outcome{Reason: v1alpha1.ReasonInvalidSpec, Terminal: true, Message: err.Error()}
	}
	cv.Status.ObservedGeneration = cv.Generation
	setOutcome(&cv.Status.Conditions, cv.Generation, o)
	if err := patchStatusIfChanged(ctx, r.Client, &r.writes, before, cv, func(o *v1alpha1.CredentialVendor) any { return o.Status }); err != nil {
		return ctrl.Result{}, err
	}
	emit(r.Recorder, cv, vendorEvents(before, cv))
	return ctrl.Result{}, nil
}

// vendorEvents: a Warning when the definition turns invalid, Normal when
// it turns valid.
func vendorEvents(before, after *v1alpha1.CredentialVendor) []eventSpec {
	if e := readyTransition(before.Status.Conditions, after.Status.Conditions, actionCheck); e != nil {
		return []eventSpec{*e}
	}
	return nil
}

func (r *credentialVendorReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&v1alpha1.CredentialVendor{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Named("credentialvendor").
		Complete(r)
}

// customVendors resolves the CredentialVendors named by http providers
// from the manager's cache.
func customVendors(c client.Reader) *httpvendor.Custom {
	return &httpvendor.Custom{Get: func(name string) (*v1alpha1.CredentialVendor, error) {
		cv := &v1alpha1.CredentialVendor{}
		err := c.Get(context.Background(), client.ObjectKey{Name: name}, cv)
		if err != nil {
			if meta.IsNoMatchError(err) || client.IgnoreNotFound(err) == nil {
				return nil, nil
			}
			return nil, err
		}
		return cv, nil
	}}
}

// definitionRequests are the providers of kind naming the CredentialVendor
// o: a change of it may make them usable, or not.
func definitionRequests(ctx context.Context, c client.Reader, kind string, o client.Object) []ctrl.Request {
	var list client.ObjectList = &v1alpha1.CredentialProviderList{}
	if kind == v1alpha1.ClusterCredentialProviderKind {
		list = &v1alpha1.ClusterCredentialProviderList{}
	}
	if err := c.List(ctx, list); err != nil {
		return nil
	}
	var out []ctrl.Request
	_ = meta.EachListItem(list, func(item runtime.Object) error {
		p := item.(account.Provider)
		if http := p.ProviderSpec().HTTP; http != nil && http.Definition == o.GetName() {
			out = append(out, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(p)})
		}
		return nil
	})
	return out
}
