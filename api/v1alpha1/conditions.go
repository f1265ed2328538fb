package v1alpha1

// Condition types.
const (
	// ConditionReady is True when the credential's metadata was fetched and
	// written (RemoteCredential), or the provider is usable (providers).
	ConditionReady = "Ready"
	// ConditionExpiring is True when expiresAt is within expiryWarning.
	// Absent when the vendor reports no expiry.
	ConditionExpiring = "Expiring"
	// ConditionUnused (spec.unusedAfter set) is True when the credential
	// was last used (or, never used, created) longer ago than unusedAfter.
	ConditionUnused = "Unused"
	// ConditionStalled is True on a terminal error: retrying soon will not help.
	ConditionStalled = "Stalled"
	// ConditionReconciling is True before the first sync and while a
	// transient error persists.
	ConditionReconciling = "Reconciling"
	// ConditionInventoried (providers with spec.inventory) is True when the
	// last sweep of the vendor account completed.
	ConditionInventoried = "Inventoried"
)

// Condition reasons.
const (
	ReasonSynced            = "Synced"
	ReasonNotFound          = "NotFound"
	ReasonForbidden         = "Forbidden"
	ReasonUnauthorized      = "Unauthorized"
	ReasonRateLimited       = "RateLimited"
	ReasonVendorUnavailable = "VendorUnavailable"
	ReasonInvalidResponse   = "InvalidResponse"
	ReasonProviderNotReady  = "ProviderNotReady"
	ReasonInvalidSpec       = "InvalidSpec"
	ReasonExpired           = "Expired"
	ReasonExpiresSoon       = "ExpiresSoon"
	ReasonNotExpiring       = "NotExpiring"
	// ReasonRevoked marks a credential the vendor reports revoked or
	// disabled: terminal, it will not work again.
	ReasonRevoked = "Revoked"
	// Unused reasons: used too long ago, or never used (True); used, or
	// created when never used, within unusedAfter (False).
	ReasonNotUsedRecently = "NotUsedRecently"
	ReasonNeverUsed       = "NeverUsed"
	ReasonRecentlyUsed    = "RecentlyUsed"
	ReasonRecentlyCreated = "RecentlyCreated"
	// ReasonProgressing is the Reconciling reason before the first sync.
	ReasonProgressing = "Progressing"

	// ReasonValid marks a provider whose spec and Secret are usable.
	ReasonValid = "Valid"
	// ReasonSecretNotFound marks a provider whose Secret does not exist.
	ReasonSecretNotFound = "SecretNotFound"
	// ReasonSecretInvalid marks a provider whose Secret lacks a key or holds an empty value.
	ReasonSecretInvalid = "SecretInvalid"
	// ReasonListed marks a completed inventory sweep.
	ReasonListed = "Listed"
	// ReasonAdoptionFailed marks an inventory whose sweep completed but
	// that could not adopt every unmanaged credential (inventory.adopt).
	ReasonAdoptionFailed = "AdoptionFailed"
	// ReasonDestinationNotAllowed marks a provider whose vendor host or
	// address the operator's destination rules refuse
	// (--namespaced-provider-hosts, --allowed-private-networks): no
	// connection is made.
	ReasonDestinationNotAllowed = "DestinationNotAllowed"
	// ReasonSecretNotAllowed marks a provider whose Secret lacks the label
	// ProviderSecretLabel: the operator does not read its values.
	ReasonSecretNotAllowed = "SecretNotAllowed"
	// ReasonDisabled marks a CredentialProvider of a manager run with
	// --enable-namespaced-providers=false.
	ReasonDisabled = "Disabled"
	// ReasonProviderNotAllowed marks a RemoteCredential whose
	// ClusterCredentialProvider's namespaceSelector does not select its
	// namespace.
	ReasonProviderNotAllowed = "ProviderNotAllowed"
)

// ProviderSecretLabel must be set to "true" on a Secret for a provider to
// read it: a tenant cannot make the operator send a Secret that was not
// meant for a vendor.
const ProviderSecretLabel = "credsync.io/provider-secret"

// SyncRequestedAtAnnotation asks the operator to sync a RemoteCredential
// now when set or changed; the value is echoed in status.lastHandledSyncRequest.
const SyncRequestedAtAnnotation = "credsync.io/sync-requested-at"
