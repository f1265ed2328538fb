package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Provider kinds a RemoteCredential may refer to.
const (
	CredentialProviderKind        = "CredentialProvider"
	ClusterCredentialProviderKind = "ClusterCredentialProvider"
)

// ProviderReference names the provider holding a credential.
type ProviderReference struct {
	// Name of the provider.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Kind of the provider: CredentialProvider (same namespace as the
	// RemoteCredential) or ClusterCredentialProvider.
	// +kubebuilder:validation:Enum=CredentialProvider;ClusterCredentialProvider
	// +kubebuilder:default=CredentialProvider
	// +optional
	Kind string `json:"kind,omitempty"`
}

// RemoteCredentialSpec names one credential held at a vendor.
// +kubebuilder:validation:XValidation:rule="!has(self.refreshInterval) || duration(self.refreshInterval) >= duration('10s')",message="refreshInterval must be at least 10s"
// +kubebuilder:validation:XValidation:rule="!has(self.expiryWarning) || duration(self.expiryWarning) >= duration('0s')",message="expiryWarning must not be negative"
// +kubebuilder:validation:XValidation:rule="!has(self.unusedAfter) || duration(self.unusedAfter) >= duration('1h')",message="unusedAfter must be at least 1h"
type RemoteCredentialSpec struct {
	// ProviderRef names the CredentialProvider or ClusterCredentialProvider
	// holding the vendor account.
	ProviderRef ProviderReference `json:"providerRef"`

	// ID is the vendor's ID of the credential: the Tines credential ID, the
	// Elastic Cloud API key ID or the PlainID API client ID.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._~:@-]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="id must not be . or .."
	ID string `json:"id"`

	// UserID is the owner of an Elastic Cloud Enterprise API key: when set,
	// the key is read with the user-scoped endpoint
	// GET /api/v1/users/{userId}/auth/keys/{id}. elasticCloud providers only.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._~:@-]+$`
	// +kubebuilder:validation:XValidation:rule="self != '.' && self != '..'",message="userId must not be . or .."
	// +optional
	UserID string `json:"userId,omitempty"`

	// RefreshInterval is how often the vendor is asked again. At least 10s.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +optional
	RefreshInterval *metav1.Duration `json:"refreshInterval,omitempty"`

	// ExpiryWarning is how long before expiresAt the Expiring condition turns True.
	// +kubebuilder:default="720h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +optional
	ExpiryWarning *metav1.Duration `json:"expiryWarning,omitempty"`

	// UnusedAfter, when set, turns the Unused condition True once the
	// vendor's lastUsedAt (or createdAt, for a credential never used) is
	// older than this: reason NotUsedRecently or NeverUsed. At least 1h.
	// Unset, or a vendor that does not report last use: no Unused
	// condition.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +optional
	UnusedAfter *metav1.Duration `json:"unusedAfter,omitempty"`
}

// Defaults of RemoteCredentialSpec, also applied by the API server.
const (
	DefaultRefreshInterval = time.Hour
	DefaultExpiryWarning   = 720 * time.Hour
)

// Refresh returns spec.refreshInterval or its default.
func (s *RemoteCredentialSpec) Refresh() time.Duration {
	if s.RefreshInterval == nil || s.RefreshInterval.Duration <= 0 {
		return DefaultRefreshInterval
	}
	return s.RefreshInterval.Duration
}

// Warning returns spec.expiryWarning or its default.
func (s *RemoteCredentialSpec) Warning() time.Duration {
	if s.ExpiryWarning == nil {
		return DefaultExpiryWarning
	}
	return s.ExpiryWarning.Duration
}

// RemoteCredentialStatus is the credential's metadata as the vendor last
// reported it, and conditions saying whether that is current. Never holds
// a secret.
type RemoteCredentialStatus struct {
	// ObservedGeneration is the generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Vendor of the provider: tines, elasticCloud or plainid.
	// +optional
	Vendor string `json:"vendor,omitempty"`

	// Name of the credential at the vendor.
	// +optional
	Name string `json:"name,omitempty"`

	// Description of the credential at the vendor.
	// +optional
	Description string `json:"description,omitempty"`

	// CreatedAt is when the vendor says the credential was created.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`

	// UpdatedAt is when the vendor says the credential was last changed.
	// +optional
	UpdatedAt *metav1.Time `json:"updatedAt,omitempty"`

	// ExpiresAt is when the credential stops working; absent when the
	// vendor reports no expiry.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// Owner is who the vendor says owns or created the credential (a
	// user's email, ID or name, as the vendor reports it); absent when the
	// vendor reports none.
	// +optional
	Owner string `json:"owner,omitempty"`

	// LastUsedAt is when the vendor says the credential was last used,
	// kept to the hour (an active key's status changes at most once an
	// hour); absent when it was never used (neverUsed) or the vendor does
	// not report use.
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`

	// NeverUsed is true when the vendor reports use and reports none for
	// this credential.
	// +optional
	NeverUsed bool `json:"neverUsed,omitempty"`

	// TokenDuration (PlainID) is the lifetime of the tokens this client
	// gets, as the vendor writes it (ISO-8601, e.g. PT60M).
	// +optional
	TokenDuration string `json:"tokenDuration,omitempty"`

	// PlainID holds PlainID-specific metadata.
	// +optional
	PlainID *PlainIDCredentialStatus `json:"plainid,omitempty"`

	// ElasticCloud holds Elastic Cloud-specific metadata.
	// +optional
	ElasticCloud *ElasticCloudCredentialStatus `json:"elasticCloud,omitempty"`

	// Tines holds Tines-specific metadata.
	// +optional
	Tines *TinesCredentialStatus `json:"tines,omitempty"`

	// LastHandledSyncRequest echoes the credsync.io/sync-requested-at
	// annotation value last acted upon.
	// +optional
	LastHandledSyncRequest string `json:"lastHandledSyncRequest,omitempty"`

	// Conditions: Ready, Expiring, Unused, Stalled, Reconciling.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// RemoteCredential is one credential held at a vendor. The operator keeps
// its status true to the vendor's metadata (never its secret).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=rcred,categories=credsync
// +kubebuilder:printcolumn:name="Provider",type=string,JSONPath=`.spec.providerRef.name`
// +kubebuilder:printcolumn:name="Vendor",type=string,JSONPath=`.status.vendor`
// +kubebuilder:printcolumn:name="ID",type=string,JSONPath=`.spec.id`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Vendor Name",type=string,JSONPath=`.status.name`,priority=1
// +kubebuilder:printcolumn:name="Description",type=string,JSONPath=`.status.description`,priority=1
// +kubebuilder:printcolumn:name="Owner",type=string,JSONPath=`.status.owner`,priority=1
// +kubebuilder:printcolumn:name="Last Used",type=string,JSONPath=`.status.lastUsedAt`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RemoteCredential struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec names the credential.
	Spec RemoteCredentialSpec `json:"spec"`
	// Status is written by the operator. Defaulted to observedGeneration 0
	// so that GitOps health checks (kstatus) see a new object as in
	// progress until the operator's first write.
	// +kubebuilder:default={observedGeneration: 0}
	// +optional
	Status RemoteCredentialStatus `json:"status,omitempty"`
}

// RemoteCredentialList is a list of RemoteCredentials.
// +kubebuilder:object:root=true
type RemoteCredentialList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RemoteCredential `json:"items"`
}

func init() {
	register(&RemoteCredential{}, &RemoteCredentialList{})
}

// LastUse is when the credential was last used or, never used, created:
// what "unused for" is measured from. reported is false when the vendor
// does not report use; at is nil then, or for a never-used credential
// whose creation the vendor does not report.
func (s *RemoteCredentialStatus) LastUse() (at *metav1.Time, reported bool) {
	switch {
	case s.LastUsedAt != nil:
		return s.LastUsedAt, true
	case s.NeverUsed:
		return s.CreatedAt, true
	}
	return nil, false
}
