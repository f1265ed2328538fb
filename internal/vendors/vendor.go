// Package vendors holds what every vendor client shares: the Client
// interface, the registry that picks a vendor from a provider spec, the
// typed errors that become condition reasons, and one HTTP caller (TLS from
// caBundle, timeouts, body cap, Retry-After, redaction).
package vendors

import (
	"context"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Ref names one credential at a vendor.
type Ref struct {
	// ID is the vendor's ID of the credential.
	ID string
	// UserID is the owner of the credential, for vendors that scope
	// credentials by user (Vendor.SupportsUserID).
	UserID string
}

// Credential is a credential's metadata, mapped field by field from the
// vendor's answer. It never holds a secret: vendor fields that are not
// mapped explicitly are dropped.
type Credential struct {
	Name          string
	Description   string
	CreatedAt     *time.Time
	UpdatedAt     *time.Time
	ExpiresAt     *time.Time
	TokenDuration string

	PlainID      *v1alpha1.PlainIDCredentialStatus
	ElasticCloud *v1alpha1.ElasticCloudCredentialStatus
	Tines        *v1alpha1.TinesCredentialStatus
}

// ApplyTo copies the metadata into a RemoteCredential's status, field by
// field. Times are truncated to seconds, as the API server stores them, so
// that an unchanged answer compares equal to what is stored.
func (c *Credential) ApplyTo(st *v1alpha1.RemoteCredentialStatus) {
	st.Name = c.Name
	st.Description = c.Description
	st.CreatedAt = apiTime(c.CreatedAt)
	st.UpdatedAt = apiTime(c.UpdatedAt)
	st.ExpiresAt = apiTime(c.ExpiresAt)
	st.TokenDuration = c.TokenDuration
	// Copies: an answer may be shared by several RemoteCredentials.
	st.PlainID = c.PlainID.DeepCopy()
	st.ElasticCloud = c.ElasticCloud.DeepCopy()
	st.Tines = c.Tines.DeepCopy()
}

func apiTime(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

// Client reads credential metadata from one vendor account. Implementations
// are read-only, safe for concurrent use, and return errors built by Caller
// (or wrapping the sentinels of this package).
type Client interface {
	Get(ctx context.Context, ref Ref) (*Credential, error)
}

// SecretRef names the Secret a provider authenticates with and the keys
// the vendor needs from it.
type SecretRef struct {
	Name string
	Keys []string
}

// Config is what a vendor's New gets to build a client.
type Config struct {
	// Spec is the provider's spec; the vendor reads its own block.
	Spec *v1alpha1.CredentialProviderSpec
	// Secret holds the values of SecretRef.Keys, all present and non-empty.
	Secret map[string]string
	// Caller makes HTTP requests for the client, with the provider's trust
	// roots; it redacts the Secret's values from every error it builds.
	Caller *Caller
}

// Vendor is one vendor's registration.
type Vendor struct {
	// Name as written in RemoteCredential status.vendor.
	Name string
	// Selected reports whether the spec's vendor block is this vendor's.
	Selected func(spec *v1alpha1.CredentialProviderSpec) bool
	// SecretRef names the Secret and keys the client needs.
	SecretRef func(spec *v1alpha1.CredentialProviderSpec) SecretRef
	// SupportsUserID is true when Ref.UserID means something to this vendor.
	SupportsUserID bool
	// New builds a client. It must not call the vendor.
	New func(cfg Config) (Client, error)
	// Limits is the request budget of a provider that sets none
	// (DefaultLimits for unset fields).
	Limits Limits
}

// LimitsFor is the request budget of a provider with spec: its
// spec.rateLimit, then the vendor's limits, then DefaultLimits.
func (v *Vendor) LimitsFor(spec *v1alpha1.CredentialProviderSpec) Limits {
	var l Limits
	if rl := spec.RateLimit; rl != nil {
		l = Limits{RequestsPerMinute: int(rl.RequestsPerMinute), Burst: int(rl.Burst), MaxConcurrent: int(rl.MaxConcurrent)}
	}
	return l.withDefaults(v.Limits)
}

// APIKeyRef is the SecretRef of a vendor that authenticates with one API
// key, named by a SecretKeySelector.
func APIKeyRef(sel v1alpha1.SecretKeySelector) SecretRef {
	return SecretRef{Name: sel.Name, Keys: []string{sel.KeyOrDefault()}}
}
