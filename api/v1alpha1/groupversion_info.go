// Package v1alpha1 holds the credsync.io/v1alpha1 API: CredentialProvider,
// ClusterCredentialProvider and RemoteCredential.
// +kubebuilder:object:generate=true
// +groupName=credsync.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of these types.
	GroupVersion = schema.GroupVersion{Group: "credsync.io", Version: "v1alpha1"}

	// SchemeBuilder registers the types with a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme

	// knownTypes are the types each kind's file registers.
	knownTypes []runtime.Object
)

// register adds types to those of this group-version (called from init).
func register(types ...runtime.Object) { knownTypes = append(knownTypes, types...) }

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, knownTypes...)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
