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
func (k providerKey) label() string {
	if k.Namespace == "" {
		return k.Name
	}
	return k.Namespace + "/" + k.Name
}

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
	Key     providerKey
	Vendor  *vendors.Vendor
	Client  vendors.Client
	version string // uid/generation: changes when the provider is replaced or edited
}

type providerEntry struct {
	resolved
	secretHash [32]byte
	readAt     time.Time
}

// Providers turns provider objects into vendor clients. It keeps one client
// per provider (so a PlainID token is shared by all its credentials),
// rebuilt when the provider's spec or Secret changes. Secrets are read with
// a direct GET (no Secret cache, no list or watch) at most once per
// SecretTTL per provider, and again after Forget.
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

	mu      sync.Mutex // guards entries and locks; never held during I/O
	entries map[providerKey]*providerEntry
	locks   map[providerKey]*sync.Mutex
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

// Resolve returns a client for the provider named by key.
func (p *Providers) Resolve(ctx context.Context, key providerKey) (*resolved, error) {
	obj, err := p.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return p.Load(ctx, key, obj)
}

// Load returns a client for the provider obj, reading its Secret when the
// cached one is older than SecretTTL. Loads of one provider run one at a
// time; other providers' cached clients stay available meanwhile.
func (p *Providers) Load(ctx context.Context, key providerKey, obj providerObject) (*resolved, error) {
	version := fmt.Sprintf("%s/%d", obj.GetUID(), obj.GetGeneration())
	if r := p.cached(key, version); r != nil {
		return r, nil
	}
	lock := p.keyLock(key)
	lock.Lock()
	defer lock.Unlock()
	if r := p.cached(key, version); r != nil { // loaded while we waited
		return r, nil
	}
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
	if e := p.entries[key]; e != nil && e.version == version && e.secretHash == hash {
		e.readAt = time.Now()
		p.mu.Unlock()
		return &e.resolved, nil
	}
	p.mu.Unlock()
	c, err := p.Registry.NewClient(key.label(), v, spec, secret)
	if err != nil {
		return nil, &ProviderError{Reason: v1alpha1.ReasonInvalidSpec, Message: err.Error()}
	}
	e := &providerEntry{resolved: resolved{Key: key, Vendor: v, Client: c, version: version}, secretHash: hash, readAt: time.Now()}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.entries == nil {
		p.entries = map[providerKey]*providerEntry{}
	}
	p.entries[key] = e
	return &e.resolved, nil
}

// cached returns the provider's client when it was built for version and
// its Secret was read less than SecretTTL ago.
func (p *Providers) cached(key providerKey, version string) *resolved {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.entries[key]; e != nil && e.version == version && time.Since(e.readAt) < p.secretTTL() {
		return &e.resolved
	}
	return nil
}

// keyLock returns the lock serializing loads of one provider.
func (p *Providers) keyLock(key providerKey) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.locks == nil {
		p.locks = map[providerKey]*sync.Mutex{}
	}
	l := p.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		p.locks[key] = l
	}
	return l
}

// Forget drops the cached client and Secret of a provider, so the next use
// reads the Secret again (after the vendor refused it, say).
func (p *Providers) Forget(key providerKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.entries, key)
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
