package v1alpha1

// VendorElasticCloud is the vendor name written in RemoteCredential status.vendor.
const VendorElasticCloud = "elasticCloud"

// ElasticCloudProvider is an Elastic Cloud (ESS) organization or an Elastic
// Cloud Enterprise installation.
type ElasticCloudProvider struct {
	// URL of the API, without /api/v1. Defaults to Elastic Cloud
	// (https://api.elastic-cloud.com); for ECE use https://<host>:12443.
	// Must be https; may carry a path prefix.
	// +kubebuilder:default="https://api.elastic-cloud.com"
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="url must be an https:// URL"
	// +optional
	URL string `json:"url,omitempty"`

	// APIKeySecretRef names the Secret key holding an Elastic Cloud API key,
	// sent as "Authorization: ApiKey <key>". The key defaults to apiKey.
	APIKeySecretRef SecretKeySelector `json:"apiKeySecretRef"`
}

// ElasticCloudCredentialStatus is Elastic Cloud API key metadata.
type ElasticCloudCredentialStatus struct {
	// UserID owning the key.
	// +optional
	UserID string `json:"userId,omitempty"`
	// OrganizationID the key belongs to.
	// +optional
	OrganizationID string `json:"organizationId,omitempty"`
}

// ElasticCloudInventory says which users' API keys an elasticCloud provider
// lists.
type ElasticCloudInventory struct {
	// AllUsers lists every user's keys (ECE, GET /api/v1/users/auth/keys/_all:
	// the provider's key must belong to a platform admin); otherwise only
	// the caller's own keys are listed.
	// +optional
	AllUsers bool `json:"allUsers,omitempty"`
}
