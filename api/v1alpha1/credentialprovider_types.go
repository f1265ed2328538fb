package v1alpha1

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CredentialProviderSpec says where a vendor account lives and how to
// authenticate to it. Exactly one vendor block is set.
// +kubebuilder:validation:XValidation:rule="[has(self.tines), has(self.elasticCloud), has(self.plainid), has(self.http)].filter(x, x).size() == 1",message="exactly one vendor block (tines, elasticCloud, plainid, http) must be set"
// +kubebuilder:validation:XValidation:rule="!has(self.inventory) || !has(self.plainid) || has(self.inventory.plainid)",message="inventory.plainid.ownerIds is required for a plainid provider: PlainID lists API clients per owner"
// +kubebuilder:validation:XValidation:rule="!has(self.inventory) || !has(self.inventory.plainid) || has(self.plainid)",message="inventory.plainid is for plainid providers only"
// +kubebuilder:validation:XValidation:rule="!has(self.inventory) || !has(self.inventory.elasticCloud) || has(self.elasticCloud)",message="inventory.elasticCloud is for elasticCloud providers only"
type CredentialProviderSpec struct {
	// Tines tenant: credentials are read with
	// GET {url}/api/v1/user_credentials/{id}.
	// +optional
	Tines *TinesProvider `json:"tines,omitempty"`

	// ElasticCloud is Elastic Cloud (ESS) or Elastic Cloud Enterprise:
	// API keys are read with GET {url}/api/v1/users/auth/keys/{id}, or the
	// user-scoped ECE path when a RemoteCredential sets userId.
	// +optional
	ElasticCloud *ElasticCloudProvider `json:"elasticCloud,omitempty"`

	// PlainID Policy Management APIs: API clients are read with
	// GET {url}/env-mgmt/1.0/api-key/clients/{id}.
	// +optional
	PlainID *PlainIDProvider `json:"plainid,omitempty"`

	// HTTP is a vendor declared as data: a built-in definition (gitlab,
	// cloudflare, okta, datadog, atlassian, grafana) or a CredentialVendor.
	// +optional
	HTTP *HTTPProvider `json:"http,omitempty"`

	// CABundle holds extra PEM-encoded trust roots for the vendor's TLS
	// certificate (private CAs, typically ECE), added to the system roots.
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`

	// Inventory, when set, lists every credential the provider's key can
	// see every interval, counts which of them some RemoteCredential names
	// (managed) and which none does (unmanaged), shows the unmanaged ones
	// in status.inventory, and serves the refreshes of the managed ones
	// from the same sweep. Off when unset.
	// +optional
	Inventory *Inventory `json:"inventory,omitempty"`

	// RateLimit is this provider's request budget: every RemoteCredential
	// that uses it shares it, and so do its key checks and inventory sweeps. Unset fields take the vendor's defaults
	// (tines: 4000/min, burst 100, 16 in flight; others: 600/min, burst
	// 20, 8 in flight). Whatever the budget, a 429 pauses the whole
	// provider until Retry-After.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`
}

// Inventory configures a provider's sweeps of its vendor account.
// +kubebuilder:validation:XValidation:rule="duration(self.interval) >= duration('10s')",message="inventory.interval must be at least 10s"
type Inventory struct {
	// Interval between the starts of two sweeps (each carries a stable
	// jitter of ±10%), however long listing takes; a sweep that took
	// longer than it is followed by a pause of a tenth of it. At least 10s.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	Interval metav1.Duration `json:"interval"`

	// Adopt creates a RemoteCredential named <provider>-<id> for every
	// unmanaged credential, labelled credsync.io/adopted-by and owned by
	// the provider. Adoption never deletes. With GitOps, leave it off and
	// commit the list instead (kubectl credsync inventory --adopt -o yaml).
	// +optional
	Adopt bool `json:"adopt,omitempty"`

	// UnusedAfter, when set, counts the listed credentials not used for
	// this long (never used: created this long ago) in
	// status.inventory.unused. Only vendors that report last use count.
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:Format=duration
	// +optional
	UnusedAfter *metav1.Duration `json:"unusedAfter,omitempty"`

	// PlainID says which owners' API clients to list. Required for a
	// plainid provider, for no other.
	// +optional
	PlainID *PlainIDInventory `json:"plainid,omitempty"`

	// ElasticCloud says which users' API keys to list (elasticCloud
	// providers only): the caller's own by default.
	// +optional
	ElasticCloud *ElasticCloudInventory `json:"elasticCloud,omitempty"`
}

// AdoptedByLabel labels the RemoteCredentials a provider created for its
// unmanaged credentials (inventory.adopt) with the provider's name.
const AdoptedByLabel = "credsync.io/adopted-by"

// maxAdoptedName keeps adopted names short enough to read and to use as
// label values.
const maxAdoptedName = 63

// AdoptedName is the name of the RemoteCredential that adopts credential id
// (of user userID, when the vendor scopes credentials by user) of provider:
// <provider>-<id>, lower-cased, with characters outside [a-z0-9-] made '-',
// cut to 63 characters with a hash suffix when longer.
func AdoptedName(provider, id, userID string) string {
	name := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(provider+"-"+id))
	name = strings.Trim(name, "-")
	if len(name) <= maxAdoptedName {
		return name
	}
	sum := sha256.Sum256([]byte(provider + "/" + id + "/" + userID))
	return strings.TrimRight(name[:maxAdoptedName-9], "-") + "-" + hex.EncodeToString(sum[:4])
}

// NewAdoption is the RemoteCredential in namespace that adopts credential
// id (of user userID) of the provider of kind providerKind named provider:
// named by AdoptedName and labelled with AdoptedByLabel.
func NewAdoption(providerKind, provider, namespace, id, userID string) *RemoteCredential {
	ref := ProviderReference{Name: provider}
	if providerKind == ClusterCredentialProviderKind {
		ref.Kind = providerKind
	}
	return &RemoteCredential{
		TypeMeta: metav1.TypeMeta{APIVersion: GroupVersion.String(), Kind: "RemoteCredential"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: namespace,
			Name:      AdoptedName(provider, id, userID),
			Labels:    map[string]string{AdoptedByLabel: AdoptedByValue(provider)},
		},
		Spec: RemoteCredentialSpec{ProviderRef: ref, ID: id, UserID: userID},
	}
}

// ProviderName names a provider in metrics' provider label, logs and
// vendor clients: "namespace/name" for a CredentialProvider, "name" for a
// ClusterCredentialProvider (namespace "").
func ProviderName(namespace, name string) string {
	if namespace == "" {
		return name
	}
	return namespace + "/" + name
}

// AdoptedByValue is the AdoptedByLabel value of provider: its name, cut to
// a label value's length.
func AdoptedByValue(provider string) string {
	if len(provider) <= 63 {
		return provider
	}
	return strings.TrimRight(provider[:63], "-.")
}

// RateLimit bounds the vendor reads of one provider.
type RateLimit struct {
	// RequestsPerMinute is the sustained rate of credential reads.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	RequestsPerMinute int32 `json:"requestsPerMinute,omitempty"`

	// Burst is how many reads may go at once after a quiet spell.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	Burst int32 `json:"burst,omitempty"`

	// MaxConcurrent caps reads in flight.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	// +optional
	MaxConcurrent int32 `json:"maxConcurrent,omitempty"`
}

// SecretKeySelector names a key of a Secret. The Secret's namespace is
// implied: the provider's own namespace for a CredentialProvider, the
// operator's cluster resource namespace for a ClusterCredentialProvider.
type SecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// Key in the Secret's data holding the value.
	// +kubebuilder:default=apiKey
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	Key string `json:"key,omitempty"`
}

// DefaultSecretKey is the key of SecretKeySelector when none is named.
const DefaultSecretKey = "apiKey"

// KeyOrDefault returns the selected key, DefaultSecretKey when empty.
func (s SecretKeySelector) KeyOrDefault() string {
	if s.Key == "" {
		return DefaultSecretKey
	}
	return s.Key
}

// SecretReference names a Secret whose keys are fixed by the vendor block.
// Its namespace is implied as for SecretKeySelector.
type SecretReference struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// CredentialProviderStatus is the observed state of a provider.
type CredentialProviderStatus struct {
	// ObservedGeneration is the generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Vendor of the provider: tines, elasticCloud, plainid, or the name
	// of an http provider's definition.
	// +optional
	Vendor string `json:"vendor,omitempty"`

	// Inventory is what the last complete sweep found (spec.inventory set).
	// +optional
	Inventory *InventoryStatus `json:"inventory,omitempty"`

	// Conditions: Ready is True (reason Valid) when the provider's vendor
	// block and Secret are usable and the vendor accepted its key at the
	// last check; Inventoried says whether the last sweep succeeded.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// InventoryStatus counts the credentials the last complete sweep listed.
type InventoryStatus struct {
	// Total is how many credentials the sweep listed.
	Total int32 `json:"total"`
	// Managed is how many of them at least one RemoteCredential names.
	Managed int32 `json:"managed"`
	// Unmanaged is how many of them no RemoteCredential names.
	Unmanaged int32 `json:"unmanaged"`
	// Unused is how many of them were not used within
	// spec.inventory.unusedAfter (absent when it is unset).
	// +optional
	Unused *int32 `json:"unused,omitempty"`
	// UnmanagedCredentials are up to 50 of the unmanaged credentials: the
	// soonest to expire first (those without an expiry last), then by ID.
	// +kubebuilder:validation:MaxItems=50
	// +listType=atomic
	// +optional
	UnmanagedCredentials []UnmanagedCredential `json:"unmanagedCredentials,omitempty"`
}

// UnmanagedCredential is a credential at the vendor that no
// RemoteCredential names.
type UnmanagedCredential struct {
	// ID is the vendor's ID of the credential.
	ID string `json:"id"`
	// UserID is the credential's owner, for vendors that scope credentials
	// by user (elasticCloud with allUsers).
	// +optional
	UserID string `json:"userId,omitempty"`
	// Name of the credential at the vendor.
	// +optional
	Name string `json:"name,omitempty"`
	// CreatedAt is when the vendor says it was created.
	// +optional
	CreatedAt *metav1.Time `json:"createdAt,omitempty"`
	// ExpiresAt is when it stops working; absent when the vendor reports none.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`
	// Owner is who the vendor says owns or created it.
	// +optional
	Owner string `json:"owner,omitempty"`
	// LastUsedAt is when the vendor says it was last used.
	// +optional
	LastUsedAt *metav1.Time `json:"lastUsedAt,omitempty"`
}

// CredentialProvider is a vendor account in one namespace. RemoteCredentials
// of the same namespace refer to it; it reads Secrets of its own namespace only.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=cp,categories=credsync
// +kubebuilder:printcolumn:name="Vendor",type=string,JSONPath=`.status.vendor`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Managed",type=integer,JSONPath=`.status.inventory.managed`
// +kubebuilder:printcolumn:name="Unmanaged",type=integer,JSONPath=`.status.inventory.unmanaged`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CredentialProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which vendor account and how to authenticate to it.
	Spec CredentialProviderSpec `json:"spec"`
	// Status is written by the operator. Defaulted to observedGeneration 0
	// so that GitOps health checks (kstatus) see a new object as in
	// progress until the operator's first write.
	// +kubebuilder:default={observedGeneration: 0}
	// +optional
	Status CredentialProviderStatus `json:"status,omitempty"`
}

// CredentialProviderList is a list of CredentialProviders.
// +kubebuilder:object:root=true
type CredentialProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CredentialProvider `json:"items"`
}

// ClusterCredentialProvider is a vendor account usable from every
// namespace. It reads Secrets only from the operator's cluster resource
// namespace (flag --cluster-resource-namespace, default credsync-system).
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=ccp,categories=credsync
// +kubebuilder:printcolumn:name="Vendor",type=string,JSONPath=`.status.vendor`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="Managed",type=integer,JSONPath=`.status.inventory.managed`
// +kubebuilder:printcolumn:name="Unmanaged",type=integer,JSONPath=`.status.inventory.unmanaged`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterCredentialProvider struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec says which vendor account and how to authenticate to it, and
	// which namespaces may use it.
	Spec ClusterCredentialProviderSpec `json:"spec"`
	// Status is written by the operator. Defaulted to observedGeneration 0
	// so that GitOps health checks (kstatus) see a new object as in
	// progress until the operator's first write.
	// +kubebuilder:default={observedGeneration: 0}
	// +optional
	Status CredentialProviderStatus `json:"status,omitempty"`
}

// ClusterCredentialProviderSpec is a CredentialProviderSpec with the
// namespaces allowed to use it.
type ClusterCredentialProviderSpec struct {
	CredentialProviderSpec `json:",inline"`

	// NamespaceSelector selects, by their labels, the namespaces whose
	// RemoteCredentials may use this provider. A RemoteCredential in a
	// namespace it does not select is Ready=False, reason
	// ProviderNotAllowed, and is not read; the inventory counts only
	// credentials of selected namespaces as managed. Unset: every
	// namespace. A change of a namespace's labels takes effect at once.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// ClusterCredentialProviderList is a list of ClusterCredentialProviders.
// +kubebuilder:object:root=true
type ClusterCredentialProviderList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterCredentialProvider `json:"items"`
}

func init() {
	register(&CredentialProvider{}, &CredentialProviderList{},
		&ClusterCredentialProvider{}, &ClusterCredentialProviderList{})
}

// ProviderSpec returns the spec shared by both provider kinds.
func (p *CredentialProvider) ProviderSpec() *CredentialProviderSpec { return &p.Spec }

// ProviderStatus returns the status shared by both provider kinds.
func (p *CredentialProvider) ProviderStatus() *CredentialProviderStatus { return &p.Status }

// ProviderSpec returns the spec shared by both provider kinds.
func (p *ClusterCredentialProvider) ProviderSpec() *CredentialProviderSpec {
	return &p.Spec.CredentialProviderSpec
}

// ProviderStatus returns the status shared by both provider kinds.
func (p *ClusterCredentialProvider) ProviderStatus() *CredentialProviderStatus { return &p.Status }
