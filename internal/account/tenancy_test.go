package account

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// refused checks the provider is refused with reason, terminal (Stalled),
// its credentials blocked with that reason, and that the vendor was not
// called.
func (e *env) refused(reason string) Status {
	e.t.Helper()
	st := e.check()
	if st.Reason != reason || !st.Terminal {
		e.t.Fatalf("status %+v, want terminal %s", st, reason)
	}
	if pe, ok := AsProviderError(e.lookup().Unavailable); !ok || pe.Reason != reason {
		e.t.Fatalf("lookup: %v, want %s", e.lookup().Unavailable, reason)
	}
	if n := e.fake.TotalCalls(); n != 0 {
		e.t.Fatalf("%d vendor calls for a refused provider", n)
	}
	return st
}

// A Secret without the provider-secret label is not used: SecretNotAllowed,
// no vendor call, checked again soon (Secrets are not watched); labelling
// it makes the provider usable.
func TestUnlabelledSecretIsNotSent(t *testing.T) {
	e := newEnv(t)
	e.objs.put(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tines-api"},
		Data: map[string][]byte{"apiKey": []byte(goodKey)}})
	st := e.refused(v1alpha1.ReasonSecretNotAllowed)
	if st.Recheck != notReadyRetry || !strings.Contains(st.Message, v1alpha1.ProviderSecretLabel) || strings.Contains(st.Message, goodKey) {
		t.Fatalf("status %+v: want a recheck in %s and the label named, not the value", st, notReadyRetry)
	}
	e.setKey(goodKey) // labelled
	if st := e.check(); st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("labelled: %+v", st)
	}
}

// With namespaced providers off, a CredentialProvider is Disabled without
// its Secret being read; a ClusterCredentialProvider still works.
func TestNamespacedProvidersDisabled(t *testing.T) {
	e := newEnv(t)
	e.accounts.opts.DisableNamespacedProviders = true
	e.objs.remove(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tines-api"}})
	e.refused(v1alpha1.ReasonDisabled) // not SecretNotFound: the Secret is not looked for

	e.accounts.opts.ClusterResourceNamespace = "team-a"
	e.setKey(goodKey)
	cluster := &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "uid-2"},
		Spec: v1alpha1.ClusterCredentialProviderSpec{CredentialProviderSpec: e.provider.Spec}}
	st, err := e.accounts.Check(context.Background(), cluster)
	if err != nil || st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("cluster provider: %+v %v", st, err)
	}
}

// A CredentialProvider naming a host off --namespaced-provider-hosts is
// refused before its Secret is read or anything is resolved; a
// ClusterCredentialProvider may name it.
func TestHostRule(t *testing.T) {
	e := newEnv(t)
	e.accounts.opts.Registry.Destinations = &vendors.Destinations{
		NamespacedHosts: mustHosts(t, "*.tines.com"),
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
	}
	e.objs.remove(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tines-api"}})
	st := e.refused(v1alpha1.ReasonDestinationNotAllowed)
	if !strings.Contains(st.Message, "not in --namespaced-provider-hosts") {
		t.Fatalf("message %q", st.Message)
	}

	e.accounts.opts.ClusterResourceNamespace = "team-a"
	e.setKey(goodKey)
	cluster := &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "uid-2"},
		Spec: v1alpha1.ClusterCredentialProviderSpec{CredentialProviderSpec: e.provider.Spec}}
	if st, err := e.accounts.Check(context.Background(), cluster); err != nil || st.Reason != v1alpha1.ReasonValid {
		t.Fatalf("cluster provider: %+v %v", st, err)
	}
}

// The address rule refuses the vendor's address at the key check (no
// connection), for either kind of provider: DestinationNotAllowed, the
// host named, never the address; credentials are blocked.
func TestAddressRule(t *testing.T) {
	e := newEnv(t)
	e.accounts.opts.Registry.Destinations = &vendors.Destinations{NamespacedHosts: mustHosts(t, "127.0.0.1")}
	st := e.check()
	if st.Reason != v1alpha1.ReasonDestinationNotAllowed || !st.Terminal {
		t.Fatalf("status %+v", st)
	}
	if !strings.Contains(st.Message, "host 127.0.0.1") || strings.Contains(st.Message, ":"+strings.Split(e.fake.URL, ":")[2]) {
		t.Fatalf("message %q: want the host, not its port", st.Message)
	}
	if pe, ok := AsProviderError(e.lookup().Unavailable); !ok || pe.Reason != v1alpha1.ReasonDestinationNotAllowed {
		t.Fatalf("lookup: %v", e.lookup().Unavailable)
	}
	if n := e.fake.TotalCalls(); n != 0 {
		t.Fatalf("%d vendor calls", n)
	}
}

// A ClusterCredentialProvider's namespaceSelector must parse.
func TestInvalidNamespaceSelector(t *testing.T) {
	e := newEnv(t)
	cluster := &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: "shared", UID: "uid-2"},
		Spec: v1alpha1.ClusterCredentialProviderSpec{CredentialProviderSpec: e.provider.Spec,
			NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "team", Operator: "Near"}}}}}
	st, err := e.accounts.Check(context.Background(), cluster)
	if err != nil || st.Reason != v1alpha1.ReasonInvalidSpec || !strings.Contains(st.Message, "namespaceSelector") {
		t.Fatalf("status %+v %v", st, err)
	}
}

func mustHosts(t *testing.T, list string) vendors.HostPatterns {
	t.Helper()
	h, err := vendors.ParseHostPatterns(list)
	if err != nil {
		t.Fatal(err)
	}
	return h
}
