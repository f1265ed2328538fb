package v1alpha1

// HTTPProvider is a vendor account of a vendor declared as data: a
// built-in definition or a cluster's CredentialVendor.
type HTTPProvider struct {
	// Definition names the vendor definition: a built-in (gitlab,
	// gitlab-project, gitlab-group, cloudflare, okta, datadog,
	// datadog-application-key, atlassian, grafana) or the name of a
	// CredentialVendor. A CredentialVendor cannot take a built-in's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Definition string `json:"definition"`

	// URL is the vendor's base URL (https) as its users know it
	// (https://gitlab.example.com, not its /api/v4), when it is not the
	// definition's default: a self-managed GitLab, a Grafana stack, an
	// Okta org, a Datadog site.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	URL string `json:"url,omitempty"`

	// Auth names the Secret holding what the definition authenticates
	// with: the keys its auth block names (one-token built-ins read the
	// key token).
	Auth HTTPAuth `json:"auth"`

	// Params are the provider-level values the definition's path
	// templates use ({name}), e.g. a GitLab project or a Cloudflare
	// account ID. Only the parameters the definition declares are allowed.
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Params map[string]string `json:"params,omitempty"`
}

// HTTPAuth says which Secret an HTTP provider authenticates with.
type HTTPAuth struct {
	// SecretRef names the Secret.
	SecretRef SecretReference `json:"secretRef"`
}

// Vendor names of the built-in definitions.
const (
	DefinitionGitLab                = "gitlab"
	DefinitionGitLabProject         = "gitlab-project"
	DefinitionGitLabGroup           = "gitlab-group"
	DefinitionCloudflare            = "cloudflare"
	DefinitionOkta                  = "okta"
	DefinitionDatadog               = "datadog"
	DefinitionDatadogApplicationKey = "datadog-application-key"
	DefinitionAtlassian             = "atlassian"
	DefinitionGrafana               = "grafana"
)
