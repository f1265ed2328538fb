// Package vendors holds what every vendor client shares: the Client
// interface, the registry that picks a vendor from a provider spec, the
// typed errors that become condition reasons, the per-provider request
// budget (Gate) and one HTTP caller (TLS from caBundle, timeouts, body cap,
// Retry-After, redaction). It names no vendor: each lives in a package of
// its own and is registered with one line in package all.
package vendors

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Ref names one credential at a vendor.
type Ref struct {
	// ID is the vendor's ID of the credential.
	ID string
	// UserID is the owner of the credential, for vendors that scope
	// credentials by user; Vendor.CheckRef says whether it may be set.
	UserID string
}

// Credential is a credential's metadata, mapped field by field from the
// vendor's answer. It never holds a secret: vendor fields that are not
// mapped explicitly are dropped.
type Credential struct {
	Name        string
	Description string
	CreatedAt   *time.Time
	UpdatedAt   *time.Time
	ExpiresAt   *time.Time
	// Owner is who the vendor says owns or created the credential.
	Owner string
	// LastUsedAt is when the vendor says the credential was last used;
	// nil when never used, or when the vendor does not report use.
	LastUsedAt *time.Time
	// ReportsUse says the vendor reports use: a nil LastUsedAt then means
	// never used.
	ReportsUse bool
	// Revoked says the vendor reports the credential revoked or disabled:
	// it will not work again.
	Revoked bool
	// Vendor is the vendor's own metadata (its status block and any field
	// only it has); nil when it has none.
	Vendor VendorMetadata
}

// VendorMetadata is the part of a credential's metadata only its vendor
// knows. ApplyTo writes it into a status whose metadata fields were
// cleared; it must copy what it writes (an answer may serve several
// RemoteCredentials).
type VendorMetadata interface {
	ApplyTo(st *v1alpha1.RemoteCredentialStatus)
}

// ApplyTo makes the metadata fields of a RemoteCredential's status those of
// c: every field but the ones the reconciler owns (WithOwned) is cleared,
// whichever vendor wrote it, then filled from c. Times are truncated to
// seconds, as the API server stores them, so that an unchanged answer
// compares equal to what is stored.
func (c *Credential) ApplyTo(st *v1alpha1.RemoteCredentialStatus) {
	*st = WithOwned(&v1alpha1.RemoteCredentialStatus{
		Name:        c.Name,
		Description: c.Description,
		CreatedAt:   APITime(c.CreatedAt),
		UpdatedAt:   APITime(c.UpdatedAt),
		ExpiresAt:   APITime(c.ExpiresAt),
		Owner:       c.Owner,
		LastUsedAt:  APIHour(c.LastUsedAt),
		NeverUsed:   c.ReportsUse && c.LastUsedAt == nil,
	}, st)
	if c.Vendor != nil {
		c.Vendor.ApplyTo(st)
	}
}

// WithOwned is metadata's status with the fields the reconciler owns
// taken from owner: observedGeneration, vendor, lastHandledSyncRequest and
// conditions. Every other field is vendor metadata. This is the one list
// of them.
func WithOwned(metadata, owner *v1alpha1.RemoteCredentialStatus) v1alpha1.RemoteCredentialStatus {
	st := *metadata
	st.ObservedGeneration, st.Vendor, st.LastHandledSyncRequest, st.Conditions =
		owner.ObservedGeneration, owner.Vendor, owner.LastHandledSyncRequest, owner.Conditions
	return st
}

// APIHour is t kept to the hour, as status holds last use: a key in use
// changes its status at most once an hour.
func APIHour(t *time.Time) *metav1.Time {
	if t == nil {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Hour))
	return &mt
}

// APITime is t as the API server stores it (seconds, UTC), so that an
// unchanged answer compares equal to what status holds; nil for nil.
func APITime(t *time.Time) *metav1.Time {
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
	// Get reads one credential's metadata.
	Get(ctx context.Context, ref Ref) (*Credential, error)
	// Verify makes one cheap authenticated call, to learn whether the
	// vendor accepts the account's credentials: ErrUnauthorized when it
	// refuses them; any other answer means they were accepted.
	Verify(ctx context.Context) error
	// ListPage returns one page of the account's credentials: the first
	// for cursor "", else the page Page.Next of the previous one named.
	// inv says what to list (the vendor reads its own block of it). Each
	// item is mapped as Get maps an answer (the same allow-list: nothing
	// secret), and says whether it carried every field Get gives.
	ListPage(ctx context.Context, inv *v1alpha1.Inventory, cursor string) (*Page, error)
	// Close releases the client's connections; it is not used after.
	Close()
}

// Page is one answer of a list.
type Page struct {
	Items []Item
	// Next is the cursor of the next page; "" after the last page.
	Next string
}

// Item is one credential a list answered.
type Item struct {
	Ref        Ref
	Credential *Credential
	// Missing names the fields its Get carries that the list answer did
	// not (an item that cannot vouch for them): such an item counts for
	// the inventory but does not serve as a read of the credential.
	Missing []string
}

// Partial reports whether the item lacks fields its Get carries.
func (it *Item) Partial() bool { return len(it.Missing) > 0 }

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
	// Clock is the clock of every time decision (token lifetimes, ...);
	// the real clock when nil.
	Clock clock.PassiveClock
}

// Vendor is one vendor's registration.
type Vendor struct {
	// Name as written in RemoteCredential status.vendor.
	Name string
	// Revision identifies what the vendor's code is built from when that
	// can change while the operator runs (a CredentialVendor's spec): a
	// provider's client is rebuilt when it changes.
	Revision string
	// Selected reports whether the spec's vendor block is this vendor's.
	Selected func(spec *v1alpha1.CredentialProviderSpec) bool
	// SecretRef names the Secret and keys the client needs.
	SecretRef func(spec *v1alpha1.CredentialProviderSpec) SecretRef
	// CheckRef refuses, with ErrInvalidSpec, a reference the vendor cannot
	// read (a userId where the vendor has no users). IDOnly when nil.
	CheckRef func(ref Ref) error
	// URL is the base URL the client of spec calls (its host is what the
	// host rule judges); ErrInvalidSpec when the spec names none usable.
	URL func(spec *v1alpha1.CredentialProviderSpec) (string, error)
	// ListOnly: the vendor has no GET of one credential; credentials are
	// read from the list, one list per provider per refresh shared by all.
	ListOnly bool
	// SaaSHosts are the host patterns of the vendor's public service,
	// where a CredentialProvider may connect by default
	// (--namespaced-provider-hosts); none for a self-hosted-only vendor.
	SaaSHosts []string
	// New builds a client. It must not call the vendor.
	New func(cfg Config) (Client, error)
	// Limits is the request budget of a provider that sets none
	// (defaultLimits for unset fields).
	Limits Limits
}

// IDOnly is the CheckRef of a vendor whose credentials are named by their
// ID alone.
func IDOnly(vendor string) func(Ref) error {
	return func(ref Ref) error {
		if ref.UserID != "" {
			return fmt.Errorf("%w: spec.userId is not supported by %s providers: their credentials are named by id alone", ErrInvalidSpec, vendor)
		}
		return nil
	}
}

// LimitsFor is the request budget of a provider with spec: its
// spec.rateLimit, then the vendor's limits, then defaultLimits.
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
