package vendors

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"time"

	"k8s.io/utils/clock"

	"github.com/credsync/credsync/api/v1alpha1"
)

// DefaultTimeout bounds one vendor request, connection to last byte.
const DefaultTimeout = 30 * time.Second

// Registry knows the vendors the operator can talk to.
type Registry struct {
	vendors []Vendor
	// Timeout bounds one vendor request; DefaultTimeout when zero.
	Timeout time.Duration
	// Observer, when set, is told of every vendor request (for metrics).
	Observer Observer
	// Clock is the clock of every client; the real one when nil.
	Clock clock.Clock
	// Destinations are the rules of every vendor connection; the strict
	// default when nil. Their NamespacedHosts default to the registered
	// vendors' SaaS hosts.
	Destinations *Destinations
	// Definitions, when set, resolves an http provider's definition that
	// no registered vendor (a built-in) serves: the cluster's
	// CredentialVendors.
	Definitions func(name string) (*Vendor, error)
}

// NewRegistry returns a registry of the given vendors.
func NewRegistry(vendors ...Vendor) *Registry {
	r := &Registry{}
	for _, v := range vendors {
		r.Register(v)
	}
	return r
}

// Register adds a vendor. It panics on a duplicate or incomplete
// registration: that is a programming error caught by any test.
func (r *Registry) Register(v Vendor) {
	if v.Name == "" || v.Selected == nil || v.SecretRef == nil || v.URL == nil || v.New == nil {
		panic(fmt.Sprintf("vendor %q: incomplete registration", v.Name))
	}
	for _, have := range r.vendors {
		if have.Name == v.Name {
			panic(fmt.Sprintf("vendor %q registered twice", v.Name))
		}
	}
	if v.CheckRef == nil {
		v.CheckRef = IDOnly(v.Name)
	}
	r.vendors = append(r.vendors, v)
}

// Names are the registered vendors' names.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.vendors))
	for _, v := range r.vendors {
		out = append(out, v.Name)
	}
	return out
}

// DefaultNamespacedHosts are the registered vendors' SaaS hosts: where a
// CredentialProvider may connect unless --namespaced-provider-hosts says
// otherwise.
func (r *Registry) DefaultNamespacedHosts() HostPatterns {
	var out HostPatterns
	seen := map[string]bool{}
	for _, v := range r.vendors {
		for _, h := range v.SaaSHosts {
			if seen[h] {
				continue
			}
			seen[h] = true
			p, err := parseHostPattern(h)
			if err != nil {
				panic(fmt.Sprintf("vendor %q: SaaS host %q: %v", v.Name, h, err))
			}
			out = append(out, p)
		}
	}
	return out
}

// destinations returns the rules of vendor connections, with the default
// namespaced hosts filled in.
func (r *Registry) destinations() *Destinations {
	d := Destinations{}
	if r.Destinations != nil {
		d = *r.Destinations
	}
	if d.NamespacedHosts == nil {
		d.NamespacedHosts = r.DefaultNamespacedHosts()
	}
	return &d
}

// CheckHost refuses, with a *DestinationError, the base URL of a
// namespaced provider's spec whose host the host rule does not allow; a
// URL that does not parse is ErrInvalidSpec. Nothing is resolved or
// dialled.
func (r *Registry) CheckHost(v *Vendor, spec *v1alpha1.CredentialProviderSpec) error {
	raw, err := v.URL(spec)
	if err != nil {
		return err
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%w: %s url does not parse", ErrInvalidSpec, v.Name)
	}
	if !r.destinations().NamespacedHosts.Allows(u) {
		return hostRefused(u)
	}
	return nil
}

// For returns the vendor whose block the spec sets.
func (r *Registry) For(spec *v1alpha1.CredentialProviderSpec) (*Vendor, error) {
	var found *Vendor
	for i := range r.vendors {
		if !r.vendors[i].Selected(spec) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("%w: more than one vendor block is set", ErrInvalidSpec)
		}
		found = &r.vendors[i]
	}
	if found != nil {
		return found, nil
	}
	if spec.HTTP != nil {
		if r.Definitions != nil {
			return r.Definitions(spec.HTTP.Definition)
		}
		return nil, fmt.Errorf("%w: no vendor definition named %s: neither a built-in nor a CredentialVendor", ErrInvalidSpec, spec.HTTP.Definition)
	}
	return nil, fmt.Errorf("%w: no supported vendor block is set", ErrInvalidSpec)
}

// clock returns the registry's clock.
func (r *Registry) clock() clock.Clock {
	if r.Clock == nil {
		return clock.RealClock{}
	}
	return r.Clock
}

// NewClient builds a client of vendor v for spec, authenticating with
// secret (the values of v.SecretRef(spec).Keys). provider names the
// provider object in request metrics; namespaced says the host rule
// applies to its requests. Every call passes gate, the provider's request
// budget; with a nil gate calls are not limited (tests of a vendor
// client).
func (r *Registry) NewClient(provider string, namespaced bool, v *Vendor, spec *v1alpha1.CredentialProviderSpec, secret map[string]string, gate *Gate) (Client, error) {
	timeout := r.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	secrets := make([]string, 0, len(secret))
	for _, s := range secret {
		secrets = append(secrets, s)
	}
	// Longest first: a value that prefixes another must not leave its tail.
	sort.Slice(secrets, func(i, j int) bool { return len(secrets[i]) > len(secrets[j]) })
	caller, err := NewCaller(v.Name, r.destinations(), namespaced, spec.CABundle, timeout, r.Observer, secrets...)
	if err != nil {
		return nil, err
	}
	caller.provider, caller.gate, caller.clock = provider, gate, r.clock()
	c, err := v.New(Config{Spec: spec, Secret: secret, Caller: caller, Clock: r.clock()})
	if err != nil {
		caller.Close()
		return nil, err
	}
	if gate == nil {
		return c, nil
	}
	return gatedClient{Client: c, gate: gate}, nil
}

// gatedClient makes every call of a Client pass its provider's Gate.
type gatedClient struct {
	Client
	gate *Gate
}

func (c gatedClient) Get(ctx context.Context, ref Ref) (*Credential, error) {
	var cred *Credential
	err := c.gate.Do(ctx, func() (err error) {
		cred, err = c.Client.Get(ctx, ref)
		return err
	})
	return cred, err
}

func (c gatedClient) ListPage(ctx context.Context, inv *v1alpha1.Inventory, cursor string) (*Page, error) {
	ctx = withOperation(ctx, opList)
	var page *Page
	err := c.gate.Do(ctx, func() (err error) {
		page, err = c.Client.ListPage(ctx, inv, cursor)
		return err
	})
	return page, err
}

func (c gatedClient) Verify(ctx context.Context) error {
	ctx = withOperation(ctx, opVerify)
	return c.gate.Do(ctx, func() error { return c.Client.Verify(ctx) })
}

var errPanicked = errors.New("vendor client panicked")
