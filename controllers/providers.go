package controllers

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/metrics"
	"github.com/credsync/credsync/internal/vendors"
)

// DefaultSecretTTL is how long a provider's Secret, once read, is trusted
// before it is read again: a rotated Secret takes effect within this time.
const DefaultSecretTTL = time.Minute

// providerObject is what CredentialProvider and ClusterCredentialProvider share.
type providerObject interface {
	client.Object
	ProviderSpec() *v1alpha1.CredentialProviderSpec
	ProviderStatus() *v1alpha1.CredentialProviderStatus
}

// providerKey names a provider of either kind.
type providerKey struct {
	Kind      string
	Namespace string // empty for ClusterCredentialProvider
	Name      string
}

func (k providerKey) String() string {
	if k.Namespace == "" {
		return k.Kind + " " + k.Name
	}
	return k.Kind + " " + k.Namespace + "/" + k.Name
}

// label names the provider in metrics: "namespace/name" for a
// CredentialProvider, "name" for a ClusterCredentialProvider.
func (k providerKey) label() string { return metrics.ProviderLabel(k.Namespace, k.Name) }

// keyFor returns the provider a RemoteCredential in namespace refers to. A
// CredentialProvider is always looked up in the credential's own namespace.
func keyFor(namespace string, ref v1alpha1.ProviderReference) providerKey {
	if ref.Kind == v1alpha1.ClusterCredentialProviderKind {
		return providerKey{Kind: ref.Kind, Name: ref.Name}
	}
	return providerKey{Kind: v1alpha1.CredentialProviderKind, Namespace: namespace, Name: ref.Name}
}

// ProviderError says why a provider cannot be used. Reason is a provider
// condition reason (SecretNotFound, SecretInvalid, InvalidSpec) or NotFound
// when the provider object itself is missing.
type ProviderError struct {
	Reason  string
	Message string
}

func (e *ProviderError) Error() string { return e.Message }

// terminal reports whether waiting will not fix the provider: only a spec
// change will.
func (e *ProviderError) terminal() bool { return e.Reason == v1alpha1.ReasonInvalidSpec }

// resolved is a usable provider: its vendor and a client for it.
type resolved struct {
	Key    providerKey
	Vendor *vendors.Vendor
	Client vendors.Client
	// Gate is the provider's request budget, shared by all its clients.
	Gate    *vendors.Gate
	version string // uid/generation: changes when the provider is replaced or edited
}

// providerState is what Providers knows of one provider.
type providerState struct {
	load sync.Mutex // serializes loads of this provider

	// Guarded by Providers.mu:
	entry         *providerEntry // the usable client, or nil
	gate          *vendors.Gate
	secretHash    [32]byte // of the last Secret read, kept across Forget
	secretKnown   bool
	secretVersion int // bumped when the Secret's content changes
	failure       *failedLoad
}

type providerEntry struct {
	resolved
	readAt time.Time
}

// failedLoad remembers a load that failed, so that the credentials of a
// provider whose Secret is missing do not each read it again at once.
type failedLoad struct {
	version string
	err     error
	at      time.Time
}

// failedLoadTTL is how long a failed load is trusted.
const failedLoadTTL = 5 * time.Second

// Providers turns provider objects into vendor clients. It keeps one client
// per provider (so a PlainID token is shared by all its credentials),
// rebuilt when the provider's spec or Secret changes, and one request
// budget (vendors.Gate) per provider. Secrets are read with a direct GET
// (no Secret cache, no list or watch): by credentials' loads at most once
// per SecretTTL per provider, and again after Forget (a 401) or on Reload
// (the provider's own check, once a minute).
type Providers struct {
	// Reader reads provider objects (the manager's cache).
	Reader client.Reader
	// SecretReader reads Secrets: an uncached reader.
	SecretReader client.Reader
	Registry     *vendors.Registry
	// ClusterResourceNamespace holds ClusterCredentialProviders' Secrets.
	ClusterResourceNamespace string
	// SecretTTL defaults to DefaultSecretTTL.
	SecretTTL time.Duration
	// OnSecretChange, when set, is called when a provider's Secret is
	// found changed: its credentials should sync again.
	OnSecretChange func(providerKey)
	// OnAuthFailure, when set, is called when the vendor starts refusing a
	// provider's own credentials.
	OnAuthFailure func(providerKey)

	mu     sync.Mutex // guards states' contents; never held during I/O
	states map[providerKey]*providerState
}

// Get reads the provider object named by key.
func (p *Providers) Get(ctx context.Context, key providerKey) (providerObject, error) {
	obj := newProvider(key.Kind)
	if err := p.Reader.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &ProviderError{Reason: v1alpha1.ReasonNotFound, Message: key.String() + " not found"}
		}
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return obj, nil
}

func newProvider(kind string) providerObject {
	if kind == v1alpha1.ClusterCredentialProviderKind {
		return &v1alpha1.ClusterCredentialProvider{}
	}
	return &v1alpha1.CredentialProvider{}
}

// Load returns a client for the provider obj, reading its Secret when the
// cached one is older than SecretTTL. Loads of one provider run one at a
// time; other providers' cached clients stay available meanwhile.
func (p *Providers) Load(ctx context.Context, key providerKey, obj providerObject) (*resolved, error) {
	return p.load(ctx, key, obj, false)
}

// Reload is Load that always reads the Secret: the provider's periodic
// check, which notices a rotated Secret.
func (p *Providers) Reload(ctx context.Context, key providerKey, obj providerObject) (*resolved, error) {
	return p.load(ctx, key, obj, true)
}

func (p *Providers) load(ctx context.Context, key providerKey, obj providerObject, fresh bool) (*resolved, error) {
	version := fmt.Sprintf("%s/%d", obj.GetUID(), obj.GetGeneration())
	st := p.state(key)
	if !fresh {
		if r, err := p.cached(st, version); r != nil || err != nil {
			return r, err
		}
	}
	st.load.Lock()
	defer st.load.Unlock()
	if !fresh {
		if r, err := p.cached(st, version); r != nil || err != nil { // loaded while we waited
			return r, err
		}
	}
	r, err := p.build(ctx, key, st, obj, version)
	if err != nil {
		var pe *ProviderError
		if errors.As(err, &pe) {
			p.mu.Lock()
			st.failure = &failedLoad{version: version, err: err, at: time.Now()}
			p.mu.Unlock()
		}
		return nil, err
	}
	return r, nil
}

// build reads the provider's Secret and returns its client: the cached
// one when neither the spec nor the Secret changed.
func (p *Providers) build(ctx context.Context, key providerKey, st *providerState, obj providerObject, version string) (*resolved, error) {
	spec := obj.ProviderSpec()
	v, err := p.Registry.For(spec)
	if err != nil {
		return nil, &ProviderError{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}
	}
	secret, err := p.readSecret(ctx, key, v.SecretRef(spec))
	if err != nil {
		return nil, err
	}
	hash := hashSecret(secret)
	p.mu.Lock()
	changed := st.secretKnown && st.secretHash != hash
	st.secretHash, st.secretKnown, st.failure = hash, true, nil
	if changed {
		st.secretVersion++
	}
	if st.gate == nil {
		st.gate = vendors.NewGate(v.LimitsFor(spec), func() { p.authFailed(key) })
	}
	gate := st.gate
	reuse := st.entry
	p.mu.Unlock()
	gate.SetLimits(v.LimitsFor(spec))
	if changed {
		gate.ResetAuth() // the refused credentials were replaced
		if p.OnSecretChange != nil {
			p.OnSecretChange(key)
		}
	}
	if reuse != nil && reuse.version == version && !changed {
		p.mu.Lock()
		reuse.readAt = time.Now()
		p.mu.Unlock()
		return &reuse.resolved, nil
	}
	c, err := p.Registry.NewClient(key.label(), v, spec, secret, gate)
	if err != nil {
		return nil, &ProviderError{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}
	}
	e := &providerEntry{resolved: resolved{Key: key, Vendor: v, Client: c, Gate: gate, version: version}, readAt: time.Now()}
	p.mu.Lock()
	st.entry = e
	p.mu.Unlock()
	return &e.resolved, nil
}

func (p *Providers) authFailed(key providerKey) {
	if p.OnAuthFailure != nil {
		p.OnAuthFailure(key)
	}
}

// state returns the state of key, creating it.
func (p *Providers) state(key providerKey) *providerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.states == nil {
		p.states = map[providerKey]*providerState{}
	}
	st := p.states[key]
	if st == nil {
		st = &providerState{}
		p.states[key] = st
	}
	return st
}

// cached returns the provider's client when it was built for version and
// its Secret was read less than SecretTTL ago, or the error of a load for
// version that failed less than failedLoadTTL ago.
func (p *Providers) cached(st *providerState, version string) (*resolved, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := st.entry; e != nil && e.version == version && time.Since(e.readAt) < p.secretTTL() {
		return &e.resolved, nil
	}
	if f := st.failure; f != nil && f.version == version && time.Since(f.at) < failedLoadTTL {
		return nil, f.err
	}
	return nil, nil
}

// SecretVersion counts the changes of the provider's Secret seen so far.
func (p *Providers) SecretVersion(key providerKey) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.states[key]; st != nil {
		return st.secretVersion
	}
	return 0
}

// Forget drops the cached client of a provider, so the next use reads the
// Secret again (after the vendor refused it, say). The request budget and
// what is known of the Secret stay.
func (p *Providers) Forget(key providerKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st := p.states[key]; st != nil {
		st.entry, st.failure = nil, nil
	}
}

// Drop forgets a provider entirely (it was deleted).
func (p *Providers) Drop(key providerKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.states, key)
}

func (p *Providers) secretTTL() time.Duration {
	if p.SecretTTL > 0 {
		return p.SecretTTL
	}
	return DefaultSecretTTL
}

// secretNamespace is where the provider's Secret must live: its own
// namespace, or the cluster resource namespace for a cluster provider.
func (p *Providers) secretNamespace(key providerKey) string {
	if key.Kind == v1alpha1.ClusterCredentialProviderKind {
		return p.ClusterResourceNamespace
	}
	return key.Namespace
}

// readSecret returns the values of ref.Keys. Messages name the Secret and
// the key, never a value.
func (p *Providers) readSecret(ctx context.Context, key providerKey, ref vendors.SecretRef) (map[string]string, error) {
	name := types.NamespacedName{Namespace: p.secretNamespace(key), Name: ref.Name}
	s := &corev1.Secret{}
	if err := p.SecretReader.Get(ctx, name, s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, &ProviderError{Reason: v1alpha1.ReasonSecretNotFound, Message: fmt.Sprintf("Secret %s not found", name)}
		}
		if apierrors.IsForbidden(err) {
			return nil, &ProviderError{Reason: v1alpha1.ReasonSecretNotFound, Message: fmt.Sprintf("Secret %s cannot be read: forbidden", name)}
		}
		return nil, fmt.Errorf("get Secret %s: %w", name, err)
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

func hashSecret(m map[string]string) [32]byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(m[k]), m[k])
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// asProviderError unwraps err into a *ProviderError, if it is one.
func asProviderError(err error) (*ProviderError, bool) {
	var pe *ProviderError
	ok := errors.As(err, &pe)
	return pe, ok
}
