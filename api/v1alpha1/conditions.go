package v1alpha1

// Condition types.
const (
	// ConditionReady is True when the credential's metadata was fetched and
	// written (RemoteCredential), or the provider is usable (providers).
	ConditionReady = "Ready"
	// ConditionExpiring is True when expiresAt is within expiryWarning.
	// Absent when the vendor reports no expiry.
	ConditionExpiring = "Expiring"
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
)

// SyncRequestedAtAnnotation asks the operator to sync a RemoteCredential
// now when set or changed; the value is echoed in status.lastHandledSyncRequest.
const SyncRequestedAtAnnotation = "credsync.io/sync-requested-at"
