package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CredentialVendorSpec defines a vendor as data: how to authenticate, the
// key check, the GET of one credential, the list of all, and how an answer
// maps to a credential's fields (CEL). The built-in definitions are
// written in the same shape.
// +kubebuilder:validation:XValidation:rule="has(self.get) || has(self.list)",message="a definition needs get, list or both"
type CredentialVendorSpec struct {
	// URL is the default base URL (https) of providers that set none; a
	// provider must set one when this is empty.
	// +kubebuilder:validation:MaxLength=2048
	// +optional
	URL string `json:"url,omitempty"`

	// Hosts are the host patterns of the vendor's public service (host,
	// *.suffix): where a CredentialProvider may connect when the operator
	// runs with the default --namespaced-provider-hosts. Only built-ins'
	// hosts join that default; a CredentialVendor's are documentation.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Hosts []string `json:"hosts,omitempty"`

	// Auth says how requests authenticate, and which Secret keys that
	// takes.
	Auth VendorAuth `json:"auth"`

	// Params declares the provider-level values path templates may use,
	// as {name}.
	// +kubebuilder:validation:MaxItems=16
	// +listType=map
	// +listMapKey=name
	// +optional
	Params []VendorParam `json:"params,omitempty"`

	// KeyCheck is the cheap authenticated GET that tells whether the
	// vendor accepts the provider's key (a 401 says it does not).
	KeyCheck VendorKeyCheck `json:"keyCheck"`

	// Get reads one credential. Unset: the vendor is list-only, and a
	// credential is read from the list.
	// +optional
	Get *VendorGetCall `json:"get,omitempty"`

	// List lists the account's credentials (inventory; reads of a
	// list-only vendor).
	// +optional
	List *VendorListCall `json:"list,omitempty"`

	// Fields map one item (a GET's answer, or an element of a list) to a
	// credential: CEL expressions over `item`.
	Fields VendorFields `json:"fields"`

	// Errors read the vendor's message out of an error answer (4xx): CEL
	// expressions over `body`.
	// +optional
	Errors VendorErrors `json:"errors,omitempty"`

	// RateLimitHeaders name the headers the vendor reports its rate
	// limit in: when remaining reaches 0, the provider holds its calls
	// until reset.
	// +optional
	RateLimitHeaders *VendorRateLimitHeaders `json:"rateLimitHeaders,omitempty"`

	// RateLimit is the default request budget of providers that set none.
	// +optional
	RateLimit *RateLimit `json:"rateLimit,omitempty"`

	// CostLimit bounds the CEL cost of one evaluation of one expression
	// (default 100000): an answer whose mapping costs more fails, reason
	// InvalidResponse.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000000
	// +optional
	CostLimit *int64 `json:"costLimit,omitempty"`
}

// Auth types.
const (
	AuthBearer                  = "Bearer"
	AuthHeader                  = "Header"
	AuthBasic                   = "Basic"
	AuthOAuth2ClientCredentials = "OAuth2ClientCredentials"
)

// VendorAuth says how a definition's requests authenticate.
// +kubebuilder:validation:XValidation:rule="self.type != 'Header' || (has(self.headers) && size(self.headers) > 0)",message="auth type Header needs headers"
// +kubebuilder:validation:XValidation:rule="self.type != 'OAuth2ClientCredentials' || has(self.tokenPath)",message="auth type OAuth2ClientCredentials needs tokenPath"
type VendorAuth struct {
	// Type: Bearer (Authorization: Bearer <secretKey>), Header (the
	// headers listed), Basic (usernameKey, passwordKey) or
	// OAuth2ClientCredentials (a token from tokenPath with clientIdKey
	// and clientSecretKey, sent as a bearer token).
	// +kubebuilder:validation:Enum=Bearer;Header;Basic;OAuth2ClientCredentials
	Type string `json:"type"`

	// SecretKey is the Secret key of a Bearer token (default token).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	SecretKey string `json:"secretKey,omitempty"`

	// Headers of a Header auth: each sends one Secret key's value.
	// +kubebuilder:validation:MaxItems=4
	// +listType=atomic
	// +optional
	Headers []VendorAuthHeader `json:"headers,omitempty"`

	// UsernameKey and PasswordKey are the Secret keys of a Basic auth
	// (default username, password).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	UsernameKey string `json:"usernameKey,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	PasswordKey string `json:"passwordKey,omitempty"`

	// TokenPath is the OAuth2 token endpoint's path under the base URL.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	TokenPath string `json:"tokenPath,omitempty"`
	// ClientIDKey and ClientSecretKey are the Secret keys of the OAuth2
	// client (default clientId, clientSecret).
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ClientIDKey string `json:"clientIdKey,omitempty"`
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ClientSecretKey string `json:"clientSecretKey,omitempty"`
	// Scopes asked for with the OAuth2 token.
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	// +optional
	Scopes []string `json:"scopes,omitempty"`
}

// VendorAuthHeader is one header of a Header auth.
type VendorAuthHeader struct {
	// Name of the header, e.g. PRIVATE-TOKEN or DD-API-KEY.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9-]+$`
	Name string `json:"name"`
	// Prefix before the value, e.g. "SSWS ".
	// +kubebuilder:validation:MaxLength=64
	// +optional
	Prefix string `json:"prefix,omitempty"`
	// SecretKey is the Secret key whose value is sent.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretKey string `json:"secretKey"`
}

// VendorParam is a provider-level value a definition's paths use.
type VendorParam struct {
	// Name, as written in path templates: {name}.
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9]*$`
	// +kubebuilder:validation:MaxLength=63
	Name string `json:"name"`
	// Description says what value to give.
	// +kubebuilder:validation:MaxLength=1024
	// +optional
	Description string `json:"description,omitempty"`
	// Required: a provider must set it.
	// +optional
	Required bool `json:"required,omitempty"`
}

// VendorKeyCheck is the call that checks a provider's key.
type VendorKeyCheck struct {
	// Paths are path templates under the base URL (with the query if
	// any), tried in order as for get: the first whose every {param} has
	// a value is used.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	Paths []string `json:"paths"`
	// Accepted is a CEL expression over `body` (the key check's 2xx
	// answer) that says whether the key is usable: false makes the
	// provider Unauthorized, as a 401 does (a vendor that answers 200 for
	// a disabled key). Unset: any 2xx answer accepts the key.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Accepted string `json:"accepted,omitempty"`
}

// VendorGetCall reads one credential.
type VendorGetCall struct {
	// Paths are path templates under the base URL, tried in order: the
	// first whose every {placeholder} has a value is used. {id} is the
	// credential's ID, {userId} its spec.userId, {name} a provider
	// parameter.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	Paths []string `json:"paths"`
	// Item is a CEL expression over `body` (the answer) giving the
	// credential's object (default: body itself), e.g. body.result.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Item string `json:"item,omitempty"`
}

// Pagination types.
const (
	PaginationNone    = "None"
	PaginationLink    = "Link"
	PaginationNextURL = "NextURL"
	PaginationCursor  = "Cursor"
	PaginationPage    = "Page"
	PaginationOffset  = "Offset"
)

// VendorListCall lists an account's credentials.
type VendorListCall struct {
	// Paths are path templates as for get (no {id}), tried in order.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	Paths []string `json:"paths"`
	// Query parameters of the first page (page size and the like).
	// +kubebuilder:validation:MaxProperties=16
	// +optional
	Query map[string]string `json:"query,omitempty"`
	// Items is a CEL expression over `body` giving the list of items
	// (default: body itself), e.g. body.result or body.data.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Items string `json:"items,omitempty"`
	// Pagination says how to find the next page.
	// +optional
	Pagination VendorPagination `json:"pagination,omitempty"`
}

// VendorPagination says how a list goes on to its next page.
type VendorPagination struct {
	// Type: None (one page), Link (the Link header's rel="next"),
	// NextURL (a URL next gives), Cursor (a value next gives, sent as
	// param; an absolute URL is followed as it is), Page (param counts
	// pages from start, until a page is empty or next says false) or
	// Offset (param counts items, until total is reached or a page is
	// empty). Whatever page size the query asks, the vendor's pages may
	// be smaller: only these rules end a list.
	// +kubebuilder:validation:Enum=None;Link;NextURL;Cursor;Page;Offset
	// +kubebuilder:default=None
	// +optional
	Type string `json:"type,omitempty"`
	// Next is a CEL expression over `body` and `headers` (lower-case
	// names): the next page's URL (NextURL), cursor (Cursor) or whether
	// there is one (Page, optional); "" or null ends the list.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Next string `json:"next,omitempty"`
	// Param is the query parameter of the cursor, page or offset.
	// +kubebuilder:validation:MaxLength=128
	// +optional
	Param string `json:"param,omitempty"`
	// Start is the number of the first page (Page): 1 unless set.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1
	// +optional
	Start *int32 `json:"start,omitempty"`
	// Total is a CEL expression over `body` and `headers` giving how many
	// items there are in all (Offset).
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Total string `json:"total,omitempty"`
}

// VendorFields map an item to a credential's fields: CEL expressions over
// `item` (and `params`, the provider's parameters). Times are RFC 3339 strings (a date alone is midnight UTC),
// Unix seconds or CEL timestamps; null or "" is none.
type VendorFields struct {
	// ID of the credential (string or number).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=4096
	ID string `json:"id"`
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Name string `json:"name,omitempty"`
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Description string `json:"description,omitempty"`
	// Owner: who owns or created the credential.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Owner string `json:"owner,omitempty"`
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	CreatedAt string `json:"createdAt,omitempty"`
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	UpdatedAt string `json:"updatedAt,omitempty"`
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	ExpiresAt string `json:"expiresAt,omitempty"`
	// LastUsedAt: when the credential was last used. Set it only for a
	// vendor that reports use: null then means never used.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	LastUsedAt string `json:"lastUsedAt,omitempty"`
	// Active: false when the vendor reports the credential revoked or
	// disabled (Ready=False, reason Revoked). Unset: always active.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Active string `json:"active,omitempty"`
}

// VendorErrors read an error answer.
type VendorErrors struct {
	// Message is a CEL expression over `body` giving the vendor's error
	// message; unset, or failing on an answer, the status alone is said.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Message string `json:"message,omitempty"`
	// Code is a CEL expression over `body` giving the vendor's error code
	// (Okta's E0000007, Cloudflare's 7003), which conditions carry with
	// the message; unset, or failing on an answer, no code is said.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Code string `json:"code,omitempty"`
	// Unauthorized is a CEL expression over `body` that is true when a
	// 4xx answer other than 401 refuses the key itself: for a vendor that
	// says so with another status (Cloudflare answers a malformed or
	// unknown token with 400 and code 6003 or 1000). The answer then
	// counts as a 401: the provider is Unauthorized, not InvalidResponse.
	// +kubebuilder:validation:MaxLength=4096
	// +optional
	Unauthorized string `json:"unauthorized,omitempty"`
}

// Reset kinds of VendorRateLimitHeaders.
const (
	ResetEpochSeconds = "EpochSeconds"
	ResetSeconds      = "Seconds"
	ResetDate         = "Date"
)

// VendorRateLimitHeaders name a vendor's rate-limit headers.
type VendorRateLimitHeaders struct {
	// Remaining is the header of the calls left in the window.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Remaining string `json:"remaining"`
	// Reset is the header of when the window resets.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	Reset string `json:"reset"`
	// ResetKind: EpochSeconds (a Unix time), Seconds (from now) or Date
	// (an RFC 3339 or HTTP date). A time is reckoned from the answer's
	// own Date header when it has one (the vendor's clock, not ours, so
	// that a skew between the two does not stretch or cut the wait).
	// +kubebuilder:validation:Enum=EpochSeconds;Seconds;Date
	ResetKind string `json:"resetKind"`
}

// CredentialVendorStatus says whether a definition compiles.
type CredentialVendorStatus struct {
	// ObservedGeneration is the generation the status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Conditions: Ready is True (reason Valid) when every expression
	// compiles and the definition is whole; False, reason InvalidSpec,
	// naming the expression and the error, otherwise.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// CredentialVendor is a vendor declared as data by a cluster admin.
// Providers name it in spec.http.definition.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=cv,categories=credsync
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.spec.url`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type CredentialVendor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the definition.
	Spec CredentialVendorSpec `json:"spec"`
	// Status is written by the operator.
	// +kubebuilder:default={observedGeneration: 0}
	// +optional
	Status CredentialVendorStatus `json:"status,omitempty"`
}

// CredentialVendorList is a list of CredentialVendors.
// +kubebuilder:object:root=true
type CredentialVendorList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []CredentialVendor `json:"items"`
}

func init() {
	register(&CredentialVendor{}, &CredentialVendorList{})
}
