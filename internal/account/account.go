// Package account is a vendor account's one home: the provider's client,
// built from its spec and Secret, the request budget every call to the
// vendor passes, whether the vendor accepts the provider's key, and the
// reads made through it. The provider reconciler keeps an account true to
// its provider (Check); a RemoteCredential's sync asks it one question: a
// read of this credential, no older than this (Account.Read).
package account

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/backoff"
	"github.com/credsync/credsync/internal/vendors"
)

// Check timing.
const (
	// recheckInterval is how often a usable provider's Secret is read again:
	// Secrets are not watched (the operator may only get them), so a
	// rotated Secret takes effect within this time.
	recheckInterval = time.Minute
	// notReadyRetry is how soon a provider whose Secret is missing or
	// malformed is checked again.
	notReadyRetry = 30 * time.Second
	// invalidRecheck is how soon a provider with an invalid spec is
	// checked again (an edit of the spec checks it at once).
	invalidRecheck = time.Hour
)

// Options configure the accounts.
type Options struct {
	Registry *vendors.Registry
	// Reader reads providers and namespaces from the manager's cache,
	// read-only (what it fills is not copied and must not be changed).
	Reader Getter
	// SecretReader reads Secrets: an uncached reader (a direct GET).
	SecretReader Getter
	// ClusterResourceNamespace holds ClusterCredentialProviders' Secrets.
	ClusterResourceNamespace string
	// Clock reads the time of every decision; the real clock when nil.
	Clock clock.Clock
	// OnChange is told when what an account can do for its credentials
	// changed: its epoch moved, or the check of its key concluded.
	OnChange func(Key)
	// OnSuspect is told when a read was refused with a 401: the provider's
	// key should be checked again now.
	OnSuspect func(Key)
	// DisableInventory: this manager does not sweep (another one does):
	// spec.inventory is ignored, reads never wait for a sweep.
	DisableInventory bool
	// DisableNamespacedProviders: CredentialProviders are turned off
	// (--enable-namespaced-providers=false): Disabled, no Secret read, no
	// vendor call.
	DisableNamespacedProviders bool
}

// Accounts holds one Account per provider.
type Accounts struct {
	opts Options

	mu       sync.Mutex
	accounts map[Key]*Account
	// built names the providers an account was built for in this process:
	// only a later build (or a failure) is a change credentials must sync
	// again for.
	built map[Key]bool
	// gone holds the epoch of providers deleted since their account was
	// built: their credentials sync again (to show it) once.
	gone  map[Key]uint64
	epoch uint64 // the last epoch handed out
}

// New returns the accounts of a manager.
func New(opts Options) *Accounts {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	return &Accounts{opts: opts, accounts: map[Key]*Account{}, built: map[Key]bool{}, gone: map[Key]uint64{}}
}

// authState is what is known of the vendor's view of the account's key.
type authState int

const (
	// unverified: not checked since the client was built, or a read was
	// refused with a 401: reads wait for the check.
	unverified authState = iota
	// accepted: the vendor accepted the key at the last check.
	accepted
	// refused: the vendor refused the key at the last check, or the
	// destination rules refused the vendor's address: no reads.
	refused
	// unanswered: the last check got no conclusive answer (an outage, a
	// 429): reads go, and the check is retried on a backoff.
	unanswered
)

// Account is one provider's vendor account.
type Account struct {
	key    Key
	owner  *Accounts
	gate   *vendors.Gate
	vendor atomic.Pointer[vendors.Vendor] // set by each check

	mu     sync.Mutex
	client vendors.Client // nil while failure is set
	uid    types.UID
	config [sha256.Size]byte // of the spec's vendor block, caBundle and Secret
	// epoch changes when the account's credentials must be read again at
	// once: a new client (spec or Secret changed) after the first, and the
	// key turning refused or accepted again.
	epoch     uint64
	failure   *ProviderError // the spec or Secret is unusable
	auth      authState
	authErr   error // the answer of the last check that was not accepted
	failures  int   // checks in a row that were not accepted
	verifyAt  time.Time
	store     *store
	inventory inventory
}

// Vendor returns the account's vendor name ("" for a nil account or an
// unusable spec).
func (a *Account) Vendor() string {
	if a == nil {
		return ""
	}
	if v := a.vendor.Load(); v != nil {
		return v.Name
	}
	return ""
}

// unavailable says why no read can be made now, nil when reads may go:
// the account is unusable, or its first inventory sweep will serve them.
// a.mu is held.
func (a *Account) unavailable() error {
	if err := a.unusable(); err != nil {
		return err
	}
	if a.awaitingFirstSweep() {
		return ErrPending
	}
	return nil
}

// unusable says why the account cannot call the vendor now, nil when it
// can; a.mu is held.
func (a *Account) unusable() error {
	switch {
	case a.failure != nil:
		return a.failure
	case a.auth == unverified:
		return ErrPending
	case a.auth == refused:
		reason, message := a.refusal()
		return &ProviderError{Reason: reason, Message: fmt.Sprintf("%s: %s", a.key, message)}
	}
	return nil
}

// refusal is the Ready reason and message of a refused account; a.mu is
// held.
func (a *Account) refusal() (reason, message string) {
	if errors.Is(a.authErr, vendors.ErrDestinationNotAllowed) {
		return v1alpha1.ReasonDestinationNotAllowed, fmt.Sprintf(
			"%v; no connection is made, and its credentials are not read until the provider's spec changes or a check succeeds", a.authErr)
	}
	return v1alpha1.ReasonUnauthorized, fmt.Sprintf(
		"%s refused the provider's credentials (%v); its credentials are not read until the Secret changes or a check succeeds", a.Vendor(), a.authErr)
}

// Lookup is what an account can do for a credential of it now.
type Lookup struct {
	// Account is nil when the provider is missing or not checked yet.
	Account *Account
	// Epoch changes when the account's credentials must be read again at
	// once: a new client (spec or Secret changed) after the first, the key
	// turning refused or accepted again, the provider turning unusable or
	// being deleted.
	Epoch uint64
	// Unavailable says why no read can be made now: a *ProviderError (the
	// provider is missing or unusable, or the vendor refuses its key) or
	// ErrPending (its key is not checked yet). Nil when reads may go.
	Unavailable error
}

// Lookup returns the account of the provider key. Its error is only a
// failure to read the provider object.
func (as *Accounts) Lookup(ctx context.Context, key Key) (Lookup, error) {
	as.mu.Lock()
	a, gone := as.accounts[key], as.gone[key]
	as.mu.Unlock()
	if a != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		return Lookup{Account: a, Epoch: a.epoch, Unavailable: a.unavailable()}, nil
	}
	obj := NewProvider(key.Kind)
	// Only whether it exists: no copy of it per credential.
	if err := as.opts.Reader(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return Lookup{Epoch: gone, Unavailable: notFound(key)}, nil
		}
		return Lookup{}, fmt.Errorf("get %s: %w", key, err)
	}
	return Lookup{Epoch: gone, Unavailable: ErrPending}, nil
}

// Observation is what a Read found out, in the style of crossplane's
// ExternalObservation: one value the caller switches on. At most one of
// Unavailable, Deferred and Err is set; Credential only when none is.
type Observation struct {
	// Credential is the vendor's answer.
	Credential *vendors.Credential
	// ReadAt is when the vendor was read for the answer (Credential or
	// Err); zero when it was not.
	ReadAt time.Time
	// Unavailable says why the provider's account cannot read now: a
	// *ProviderError (the provider is missing or unusable, the vendor
	// refuses its key, its host resolves where no connection may go) or
	// ErrPending (its key is not checked yet, or its first inventory
	// sweep will serve the read). Nothing is known of the credential.
	Unavailable error
	// Deferred says the provider's request budget held the call back:
	// nothing is known of the credential; try again after Deferred.Wait.
	Deferred *vendors.DeferredError
	// Err is the vendor's answer when it is not the credential
	// (vendors.Error: not found, forbidden, a server or transport
	// failure), or ErrInvalidSpec for a reference the vendor cannot read.
	Err error
}

// Read asks for the metadata of the credential ref names for reader (a
// non-zero identity of the asker): an answer the vendor gave less than
// maxAge ago and after `after` (the reader's last read) when the account
// holds one, else the vendor's answer now. Concurrent reads of one
// credential are one call.
func (a *Account) Read(ctx context.Context, ref vendors.Ref, reader uint64, maxAge time.Duration, after time.Time) Observation {
	a.mu.Lock()
	if err := a.unavailable(); err != nil {
		a.mu.Unlock()
		return Observation{Unavailable: err}
	}
	c, st := a.client, a.store
	a.mu.Unlock()
	if err := a.vendor.Load().CheckRef(ref); err != nil {
		return Observation{Err: err}
	}
	fetch := func() (*vendors.Credential, error) { return c.Get(ctx, ref) }
	if v := a.vendor.Load(); v.ListOnly {
		fetch = func() (*vendors.Credential, error) { return a.readListed(ctx, c, st, v.Name, ref, maxAge) }
	}
	cred, at, err := st.read(ref, reader, maxAge, after, fetch)
	if d, ok := vendors.AsDeferred(err); ok {
		return Observation{Deferred: d}
	}
	switch {
	case errors.Is(err, vendors.ErrUnauthorized):
		a.suspect(c)
	case errors.Is(err, vendors.ErrDestinationNotAllowed):
		// The host now resolves where no connection may go: the provider
		// is checked again, and says so; the credential waits for it.
		a.suspect(c)
		return Observation{Unavailable: &ProviderError{Reason: v1alpha1.ReasonDestinationNotAllowed, Message: fmt.Sprintf("%s: %v", a.key, err)}}
	}
	if err != nil {
		return Observation{ReadAt: at, Err: err}
	}
	return Observation{Credential: cred, ReadAt: at}
}

// readListed reads ref of a list-only vendor: from one complete list of
// the account, shared by the reads in flight and kept in the store for
// maxAge, so that the provider's other credentials due within it are
// served without another list.
func (a *Account) readListed(ctx context.Context, c vendors.Client, st *store, vendor string, ref vendors.Ref, maxAge time.Duration) (*vendors.Credential, error) {
	v, err, _ := st.group.Do("\x00list", func() (any, error) {
		sw := &sweep{started: a.owner.opts.Clock.Now(), seen: map[string]bool{}}
		if err := sw.run(ctx, c, nil); err != nil {
			return nil, err
		}
		st.putSweep(sw, maxAge)
		return sw, nil
	})
	if err != nil {
		return nil, err
	}
	sw := v.(*sweep)
	if i, ok := sw.at[ref]; ok {
		return sw.items[i].Credential, nil
	}
	return nil, vendors.NotListed(vendor, ref.ID)
}

// suspect is told that a read made with client c got a 401 (or a
// refused destination): until the key is checked again, reads wait.
func (a *Account) suspect(c vendors.Client) {
	a.mu.Lock()
	if a.client != c || a.auth == refused || a.auth == unverified {
		a.mu.Unlock()
		return
	}
	a.auth = unverified
	a.mu.Unlock()
	if f := a.owner.opts.OnSuspect; f != nil {
		f(a.key)
	}
}

// Status is what a check concluded of a provider, in condition terms.
type Status struct {
	// Vendor is the provider's vendor ("" when its spec names none).
	Vendor string
	// Reason is the Ready reason: Valid when the provider is usable.
	Reason  string
	Message string
	// Terminal: only a change of the spec or Secret will help.
	Terminal bool
	// Recheck is when the provider should be checked again.
	Recheck time.Duration
}

// Check keeps the account of the provider obj true to it: it reads the
// provider's Secret, builds a new client when the spec's vendor block,
// caBundle or the Secret changed (closing the old one), applies the
// request budget, and verifies the key with the vendor when it is not
// known to be accepted. Its error is only a failure to read the Secret.
func (as *Accounts) Check(ctx context.Context, obj Provider) (Status, error) {
	key := KeyOf(obj)
	spec := obj.ProviderSpec()
	v, err := as.opts.Registry.For(spec)
	if err != nil {
		return as.fail(key, nil, &ProviderError{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}), nil
	}
	if pe := as.refuse(obj, v); pe != nil {
		return as.fail(key, v, pe), nil
	}
	secret, err := as.readSecret(ctx, key, v.SecretRef(spec))
	if err != nil {
		pe, ok := AsProviderError(err)
		if !ok {
			return Status{}, err
		}
		return as.fail(key, v, pe), nil
	}
	a, changed, err := as.ensure(key, obj, v, secret)
	if err != nil {
		return as.fail(key, v, &ProviderError{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}), nil
	}
	a.gate.SetLimits(v.LimitsFor(spec))
	a.mu.Lock()
	if as.opts.DisableInventory {
		a.setInventory(nil)
	} else {
		a.setInventory(spec.Inventory)
	}
	a.mu.Unlock()
	if a.verifyDue() {
		changed = a.verify(ctx) || changed
	}
	if changed && as.opts.OnChange != nil {
		as.opts.OnChange(key)
	}
	st := a.status()
	st.Vendor = v.Name
	return st, nil
}

// refuse says why a provider must not be used at all, before its Secret is
// read: a namespaced one when they are turned off, or one whose host the
// host rule refuses; a cluster one whose namespaceSelector is invalid.
// Nil when it may be used.
func (as *Accounts) refuse(obj Provider, v *vendors.Vendor) *ProviderError {
	if p, ok := obj.(*v1alpha1.ClusterCredentialProvider); ok {
		if _, err := NamespaceSelector(p); err != nil {
			return &ProviderError{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}
		}
		return nil
	}
	if as.opts.DisableNamespacedProviders {
		return &ProviderError{Reason: v1alpha1.ReasonDisabled,
			Message: "CredentialProviders are turned off in this operator (--enable-namespaced-providers=false): ask a cluster admin for a ClusterCredentialProvider"}
	}
	err := as.opts.Registry.CheckHost(v, obj.ProviderSpec())
	if errors.Is(err, vendors.ErrDestinationNotAllowed) {
		return &ProviderError{Reason: v1alpha1.ReasonDestinationNotAllowed,
			Message: fmt.Sprintf("%v; no connection is made (a cluster admin sets the allowed hosts)", err)}
	}
	if err != nil {
		return &ProviderError{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}
	}
	return nil
}

// KeyOf returns the key of the provider obj.
func KeyOf(obj Provider) Key {
	if _, ok := obj.(*v1alpha1.ClusterCredentialProvider); ok {
		return Key{Kind: v1alpha1.ClusterCredentialProviderKind, Name: obj.GetName()}
	}
	return Key{Kind: v1alpha1.CredentialProviderKind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// Drop forgets the account of a deleted provider and closes its client;
// its credentials are told (a read that already holds the account gets
// NotFound).
func (as *Accounts) Drop(key Key) {
	as.mu.Lock()
	a := as.accounts[key]
	delete(as.accounts, key)
	if a != nil {
		as.gone[key] = as.bumpLocked(key)
	}
	as.mu.Unlock()
	if a == nil {
		return
	}
	a.mu.Lock()
	a.closeClient()
	a.failure = notFound(key)
	a.mu.Unlock()
	if as.opts.OnChange != nil {
		as.opts.OnChange(key)
	}
}

func notFound(key Key) *ProviderError {
	return &ProviderError{Reason: v1alpha1.ReasonNotFound, Message: key.String() + " not found"}
}

// nextEpoch is the epoch of a new client of key: 0 for the first one in
// this process (its credentials restored at a start need no new read),
// a new number after.
func (as *Accounts) nextEpoch(key Key) uint64 {
	as.mu.Lock()
	defer as.mu.Unlock()
	if !as.built[key] {
		as.built[key] = true
		return 0
	}
	return as.bumpLocked(key)
}

// bumpEpoch hands out a new epoch for key's account.
func (as *Accounts) bumpEpoch(key Key) uint64 {
	as.mu.Lock()
	defer as.mu.Unlock()
	return as.bumpLocked(key)
}

// bumpLocked hands out a new epoch; as.mu is held. key's next client gets
// a new one too.
func (as *Accounts) bumpLocked(key Key) uint64 {
	as.built[key] = true
	as.epoch++
	return as.epoch
}

// account returns key's account, creating it (without a client).
func (as *Accounts) account(key Key, v *vendors.Vendor) *Account {
	as.mu.Lock()
	defer as.mu.Unlock()
	a := as.accounts[key]
	if a == nil {
		a = &Account{key: key, owner: as, gate: vendors.NewGate(vendors.Limits{}, as.opts.Clock)}
		as.accounts[key] = a
		delete(as.gone, key)
	}
	if v != nil {
		a.vendor.Store(v)
	}
	return a
}

// fail records that key's spec or Secret is unusable: its client is
// closed. A new failure (or one of another reason) moves the epoch, so that the
// credentials show it at once.
func (as *Accounts) fail(key Key, v *vendors.Vendor, pe *ProviderError) Status {
	a := as.account(key, v)
	a.mu.Lock()
	a.closeClient()
	changed := a.failure == nil || a.failure.Reason != pe.Reason
	if changed {
		a.epoch = as.bumpEpoch(key)
	}
	a.failure = pe
	a.mu.Unlock()
	if changed && as.opts.OnChange != nil {
		as.opts.OnChange(key)
	}
	recheck := notReadyRetry
	if pe.Terminal() && pe.Reason != v1alpha1.ReasonSecretNotAllowed {
		// Only an edit of the spec (which is watched) helps; a Secret is
		// not watched, so one not allowed is read again soon.
		recheck = invalidRecheck
	}
	st := Status{Reason: pe.Reason, Message: pe.Message, Terminal: pe.Terminal(), Recheck: recheck}
	if v != nil {
		st.Vendor = v.Name
	}
	return st
}

// closeClient closes and forgets the client; a.mu is held.
func (a *Account) closeClient() {
	if a.client != nil {
		a.client.Close()
		a.client = nil
	}
}

// ensure returns key's account with a client for obj's spec and secret,
// building a new one when they changed; changed reports a new client.
func (as *Accounts) ensure(key Key, obj Provider, v *vendors.Vendor, secret map[string]string) (*Account, bool, error) {
	a := as.account(key, v)
	config := configHash(v, obj.ProviderSpec(), secret)
	a.mu.Lock()
	if a.client != nil && a.uid == obj.GetUID() && a.config == config {
		a.mu.Unlock()
		return a, false, nil
	}
	a.mu.Unlock()
	c, err := as.opts.Registry.NewClient(key.Label(), key.Kind == v1alpha1.CredentialProviderKind, v, obj.ProviderSpec(), secret, a.gate)
	if err != nil {
		return nil, false, err
	}
	epoch := as.nextEpoch(key)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.closeClient()
	a.client, a.uid, a.config, a.epoch = c, obj.GetUID(), config, epoch
	a.failure, a.auth, a.authErr, a.failures, a.verifyAt = nil, unverified, nil, 0, time.Time{}
	a.store = newStore(as.opts.Clock)
	a.inventory = inventory{} // a new key lists anew
	return a, true, nil
}

// configHash identifies what a client is built from: the vendor, the
// spec's vendor block and caBundle (not the request budget, which is
// applied to the running gate) and the Secret's values.
func configHash(v *vendors.Vendor, spec *v1alpha1.CredentialProviderSpec, secret map[string]string) [sha256.Size]byte {
	s := spec.DeepCopy()
	s.RateLimit, s.Inventory = nil, nil // applied to the running account
	b, _ := json.Marshal(s)             // a spec always marshals
	keys := make([]string, 0, len(secret))
	for k := range secret {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d:%s", v.Name, v.Revision, len(b), b)
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(secret[k]), secret[k])
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// verifyDue reports whether the key should be checked with the vendor now.
func (a *Account) verifyDue() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.owner.opts.Clock.Now()
	return a.auth == unverified || (a.auth != accepted && !now.Before(a.verifyAt))
}

// verify checks the key with one call and records the answer; it reports
// whether the account changed for its credentials.
func (a *Account) verify(ctx context.Context) bool {
	a.mu.Lock()
	c, before := a.client, a.auth
	a.mu.Unlock()
	err := c.Verify(ctx)
	now := a.owner.opts.Clock.Now()
	if d, ok := vendors.AsDeferred(err); ok {
		// The budget held the check back: nothing learnt; try after the wait.
		a.mu.Lock()
		a.verifyAt = now.Add(d.Wait)
		a.mu.Unlock()
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != c {
		return false // rebuilt meanwhile: this answer is about an old key
	}
	switch {
	case err == nil || errors.Is(err, vendors.ErrNotFound) || errors.Is(err, vendors.ErrForbidden):
		// Authenticated: a 403 or 404 says the key works, if not for this call.
		a.auth, a.authErr, a.failures = accepted, nil, 0
	case errors.Is(err, vendors.ErrUnauthorized), errors.Is(err, vendors.ErrDestinationNotAllowed):
		a.auth, a.authErr = refused, err
	default:
		a.auth, a.authErr = unanswered, err
	}
	if a.auth != accepted {
		a.failures++
		a.verifyAt = now.Add(backoff.Step(a.key.String(), a.failures, backoff.Cap))
	}
	// Credentials sync again at once when the key turns refused (they show
	// it) or stops being refused (they can be read again); a first check,
	// or one after a 401, that finds the key accepted changes nothing.
	if turned := (a.auth == refused) != (before == refused); turned && (before != unverified || a.auth != accepted) {
		a.epoch = a.owner.bumpEpoch(a.key)
	}
	return a.auth != before || before == unverified
}

// status says what the account's state means for the provider's conditions.
func (a *Account) status() Status {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.owner.opts.Clock.Now()
	switch a.auth {
	case accepted:
		return Status{Reason: v1alpha1.ReasonValid, Message: a.Vendor() + " accepted the provider's credentials", Recheck: recheckInterval}
	case refused:
		reason, message := a.refusal()
		return Status{Reason: reason, Terminal: true, Recheck: a.recheck(now), Message: message}
	case unanswered:
		reason, _ := vendors.Reason(a.authErr)
		return Status{Reason: reason, Recheck: a.recheck(now),
			Message: fmt.Sprintf("could not check the provider's credentials with %s (%v); its credentials are read meanwhile", a.Vendor(), a.authErr)}
	}
	return Status{Reason: v1alpha1.ReasonRateLimited, Recheck: a.recheck(now),
		Message: fmt.Sprintf("the provider's credentials are not checked with %s yet: its request budget is spent", a.Vendor())}
}

// recheck is when to check the provider again: at the next verification,
// and at least every recheckInterval (its Secret may have been rotated); a.mu is
// held.
func (a *Account) recheck(now time.Time) time.Duration {
	return min(max(a.verifyAt.Sub(now), time.Second), recheckInterval)
}

// secretNamespace is where the provider's Secret must live: its own
// namespace, or the cluster resource namespace for a cluster provider.
func (as *Accounts) secretNamespace(key Key) string {
	if key.Kind == v1alpha1.ClusterCredentialProviderKind {
		return as.opts.ClusterResourceNamespace
	}
	return key.Namespace
}

// readSecret returns the values of ref.Keys. Messages name the Secret and
// the key, never a value.
func (as *Accounts) readSecret(ctx context.Context, key Key, ref vendors.SecretRef) (map[string]string, error) {
	name := types.NamespacedName{Namespace: as.secretNamespace(key), Name: ref.Name}
	s := &corev1.Secret{}
	if err := as.opts.SecretReader(ctx, name, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &ProviderError{Reason: v1alpha1.ReasonSecretNotFound, Message: fmt.Sprintf("Secret %s not found", name)}
		}
		if apierrors.IsForbidden(err) {
			return nil, &ProviderError{Reason: v1alpha1.ReasonSecretNotFound, Message: fmt.Sprintf("Secret %s cannot be read: forbidden", name)}
		}
		return nil, fmt.Errorf("get Secret %s: %w", name, err)
	}
	if s.Labels[v1alpha1.ProviderSecretLabel] != "true" {
		return nil, &ProviderError{Reason: v1alpha1.ReasonSecretNotAllowed, Message: fmt.Sprintf(
			"Secret %s is not labelled %s=true: a provider reads only Secrets meant for it (kubectl label secret -n %s %s %s=true)",
			name, v1alpha1.ProviderSecretLabel, name.Namespace, name.Name, v1alpha1.ProviderSecretLabel)}
	}
	out := make(map[string]string, len(ref.Keys))
	for _, k := range ref.Keys {
		// Secrets made with --from-file often end in a newline: not part of the key.
		v := strings.TrimSpace(string(s.Data[k]))
		if v == "" {
			return nil, &ProviderError{Reason: v1alpha1.ReasonSecretInvalid, Message: fmt.Sprintf("Secret %s has no non-empty key %q", name, k)}
		}
		out[k] = v
	}
	return out, nil
}
