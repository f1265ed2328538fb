package v1alpha1

// TinesProvider is a Tines tenant.
type TinesProvider struct {
	// URL of the tenant, e.g. https://acme.tines.com. Must be https; may
	// carry a path prefix.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",message="url must be an https:// URL"
	URL string `json:"url"`

	// APIKeySecretRef names the Secret key holding a Tines API key, sent as
	// "Authorization: Bearer <key>". The key defaults to apiKey.
	APIKeySecretRef SecretKeySelector `json:"apiKeySecretRef"`
}
