package v1alpha1

// VendorTines is the vendor name written in RemoteCredential status.vendor.
const VendorTines = "tines"

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

// TinesCredentialStatus is Tines credential metadata.
type TinesCredentialStatus struct {
	// Mode of the credential: TEXT, JWT, OAUTH, AWS, MTLS, HTTP_REQUEST_AGENT, MULTI_REQUEST.
	// +optional
	Mode string `json:"mode,omitempty"`
	// TeamID owning the credential.
	// +optional
	TeamID *int64 `json:"teamId,omitempty"`
	// FolderID holding the credential, if any.
	// +optional
	FolderID *int64 `json:"folderId,omitempty"`
	// ReadAccess: TEAM, GLOBAL or SPECIFIC_TEAMS.
	// +optional
	ReadAccess string `json:"readAccess,omitempty"`
	// RestrictionType: RESTRICTED, RESTRICTED_TO_CREDENTIALS or UNRESTRICTED.
	// +optional
	RestrictionType string `json:"restrictionType,omitempty"`
	// Slug of the credential, as used in Tines formulas.
	// +optional
	Slug string `json:"slug,omitempty"`
	// OwnerEmail is the email of the credential's owner.
	// +optional
	OwnerEmail string `json:"ownerEmail,omitempty"`
}
