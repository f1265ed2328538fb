package v1alpha1

// VendorPlainID is the vendor name written in RemoteCredential status.vendor.
const VendorPlainID = "plainid"

// PlainIDProvider is a PlainID tenant's Policy Management APIs.
// +kubebuilder:validation:XValidation:rule="has(self.region) || has(self.url)",message="one of region or url must be set"
type PlainIDProvider struct {
	// Region of the tenant (us1, eu1, ca1, ...): the API is
	// https://api.{region}.plainid.io.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`
	// +optional
	Region string `json:"region,omitempty"`

	// URL of the API; overrides region. Must be https; may carry a path prefix.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="url must be an https:// URL"
	// +optional
	URL string `json:"url,omitempty"`

	// ClientSecretRef names a Secret with keys clientId and clientSecret: an
	// API client allowed to read API clients. Its token is fetched with the
	// OAuth client-credentials grant and shared by all credentials of this provider.
	ClientSecretRef SecretReference `json:"clientSecretRef"`
}

// PlainIDCredentialStatus is PlainID API client metadata.
type PlainIDCredentialStatus struct {
	// OwnerID is the environment owning the client; empty for tenant clients.
	// +optional
	OwnerID string `json:"ownerId,omitempty"`
	// OwnerType is ENVIRONMENT or TENANT.
	// +optional
	OwnerType string `json:"ownerType,omitempty"`
	// Permission is ADMIN or VIEWER.
	// +optional
	Permission string `json:"permission,omitempty"`
}

// PlainIDInventory says which owners' API clients a plainid provider lists:
// PlainID lists clients per owner and has no API to list environments.
type PlainIDInventory struct {
	// OwnerIDs are the owners whose clients are listed: "-" for the
	// tenant's own clients, else environment IDs.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:items:MinLength=1
	// +kubebuilder:validation:items:MaxLength=256
	// +listType=set
	OwnerIDs []string `json:"ownerIds"`
}
