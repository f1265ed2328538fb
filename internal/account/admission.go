package account

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/credsync/credsync/api/v1alpha1"
)

// NamespaceSelector returns the namespaces a ClusterCredentialProvider
// serves: everything when its spec.namespaceSelector is unset.
func NamespaceSelector(p *v1alpha1.ClusterCredentialProvider) (labels.Selector, error) {
	if p.Spec.NamespaceSelector == nil {
		return labels.Everything(), nil
	}
	sel, err := metav1.LabelSelectorAsSelector(p.Spec.NamespaceSelector)
	if err != nil {
		return nil, fmt.Errorf("spec.namespaceSelector: %w", err)
	}
	return sel, nil
}

// Admits says whether a RemoteCredential in namespace may use the
// provider key: nil when it may (a CredentialProvider, always, as it is
// looked up in the credential's own namespace; a ClusterCredentialProvider
// that is missing, whose namespaceSelector is unset or selects the
// namespace, or the cluster resource namespace, where adoption creates
// its credentials), else a *ProviderError of reason ProviderNotAllowed.
// Providers and namespaces are read from the cache, read-only. Its error
// is only a failure to read them.
func (as *Accounts) Admits(ctx context.Context, key Key, namespace string) (*ProviderError, error) {
	if key.Kind != v1alpha1.ClusterCredentialProviderKind || namespace == as.opts.ClusterResourceNamespace {
		return nil, nil
	}
	p := &v1alpha1.ClusterCredentialProvider{}
	if err := as.opts.Reader(ctx, types.NamespacedName{Name: key.Name}, p); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, err
	}
	if p.Spec.NamespaceSelector == nil {
		return nil, nil
	}
	notAllowed := func(why string) *ProviderError {
		return &ProviderError{Reason: v1alpha1.ReasonProviderNotAllowed, Message: fmt.Sprintf(
			"%s does not serve namespace %s: %s; a cluster admin decides which namespaces it serves", key, namespace, why)}
	}
	sel, err := NamespaceSelector(p)
	if err != nil {
		return notAllowed(err.Error()), nil
	}
	ns := &metav1.PartialObjectMetadata{}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := as.opts.Reader(ctx, types.NamespacedName{Name: namespace}, ns); err != nil {
		if apierrors.IsNotFound(err) {
			return notAllowed("the namespace is not found"), nil
		}
		return nil, fmt.Errorf("get namespace %s: %w", namespace, err)
	}
	if !sel.Matches(labels.Set(ns.Labels)) {
		return notAllowed("its spec.namespaceSelector does not select it"), nil
	}
	return nil, nil
}
