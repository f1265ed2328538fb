package account

import (
	"context"
	"errors"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Key names a provider of either kind: the account it holds.
type Key struct {
	Kind      string
	Namespace string // empty for ClusterCredentialProvider
	Name      string
}

func (k Key) String() string {
	if k.Namespace == "" {
		return k.Kind + " " + k.Name
	}
	return k.Kind + " " + k.Namespace + "/" + k.Name
}

// Label names the provider in metrics: "namespace/name" for a
// CredentialProvider, "name" for a ClusterCredentialProvider.
func (k Key) Label() string { return v1alpha1.ProviderName(k.Namespace, k.Name) }

// KeyFor returns the provider a RemoteCredential in namespace refers to. A
// CredentialProvider is always looked up in the credential's own namespace.
func KeyFor(namespace string, ref v1alpha1.ProviderReference) Key {
	if ref.Kind == v1alpha1.ClusterCredentialProviderKind {
		return Key{Kind: ref.Kind, Name: ref.Name}
	}
	return Key{Kind: v1alpha1.CredentialProviderKind, Namespace: namespace, Name: ref.Name}
}

// CredentialKey names the vendor credential a RemoteCredential reads:
// provider, id and userId. RemoteCredentials naming the same credential
// have the same key.
func CredentialKey(rc *v1alpha1.RemoteCredential) string {
	return strings.Join([]string{KeyFor(rc.Namespace, rc.Spec.ProviderRef).String(), rc.Spec.ID, rc.Spec.UserID}, "|")
}

// Object is a Kubernetes object: what controller-runtime calls a
// client.Object, with the same methods.
type Object interface {
	metav1.Object
	runtime.Object
}

// Getter reads one object by its key into obj. The manager adapts its
// cache and its direct reader to it: this package does not import
// controller-runtime's client, so its race-detector build stays small.
type Getter func(ctx context.Context, key types.NamespacedName, obj Object) error

// Provider is what CredentialProvider and ClusterCredentialProvider share.
type Provider interface {
	Object
	ProviderSpec() *v1alpha1.CredentialProviderSpec
	ProviderStatus() *v1alpha1.CredentialProviderStatus
}

// NewProvider returns an empty provider object of kind.
func NewProvider(kind string) Provider {
	if kind == v1alpha1.ClusterCredentialProviderKind {
		return &v1alpha1.ClusterCredentialProvider{}
	}
	return &v1alpha1.CredentialProvider{}
}

// ProviderError says why a provider's credentials cannot be read. Reason
// is a provider condition reason (SecretNotFound, SecretInvalid,
// SecretNotAllowed, InvalidSpec, Unauthorized, DestinationNotAllowed,
// Disabled) or NotFound when the provider object itself is missing.
type ProviderError struct {
	Reason  string
	Message string
}

func (e *ProviderError) Error() string { return e.Message }

// Terminal reports whether waiting will not fix the provider: only a
// change of its spec or Secret (or of the operator's flags) will.
func (e *ProviderError) Terminal() bool {
	switch e.Reason {
	case v1alpha1.ReasonInvalidSpec, v1alpha1.ReasonUnauthorized, v1alpha1.ReasonDestinationNotAllowed,
		v1alpha1.ReasonSecretNotAllowed, v1alpha1.ReasonDisabled:
		return true
	}
	return false
}

// AsProviderError unwraps err into a *ProviderError, if it is one.
func AsProviderError(err error) (*ProviderError, bool) {
	var pe *ProviderError
	ok := errors.As(err, &pe)
	return pe, ok
}

// ErrPending says the provider's key has not been checked yet: reads wait
// for the check, which wakes them (Options.OnChange).
var ErrPending = errors.New("the provider's key has not been checked yet")
