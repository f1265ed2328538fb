package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
)

// tenant is the user a tenant's kubectl impersonates: it may manage
// CredentialProviders, RemoteCredentials and Secrets of its own namespace,
// nothing else.
const tenant = "tenant-a@example.com"

// TestTenantCannotAimTheOperator plays a tenant of a shared cluster, through
// real kubectl impersonating them (--as), against the real manager run
// with its strict defaults (no private network allowed), whose host list a
// cluster admin set to a few hosts. Each thing the tenant tries gets its
// reason, and a listener standing at each target counts no connection:
// a host not on the list, an IP literal, a listed name that resolves to
// loopback, the API server by a listed name, the cloud metadata address,
// an unlabelled Secret (sent nowhere), and a ClusterCredentialProvider
// whose namespaceSelector does not select the tenant's namespace (until
// an admin labels the namespace, which takes effect without a restart).
func TestTenantCannotAimTheOperator(t *testing.T) {
	requireEnv(t)
	kubectl := lookKubectl(t)
	ctx := context.Background()
	g := gomega.NewWithT(t)
	ns := newNamespace(t)
	grantTenant(t, ns)

	unlisted, literal, loopback := countingListener(t), countingListener(t), countingListener(t)
	api, err := url.Parse(apiServer)
	if err != nil {
		t.Fatal(err)
	}
	// What a cluster admin allows tenants: two named hosts with their
	// ports, and the metadata address (to show the address rule refuses it
	// whatever the host list says).
	hosts := fmt.Sprintf("localhost:%s,localhost:%s,169.254.169.254", loopback.port, api.Port())
	deleteLeasesAfter(t, leaseName)
	m := startManager(t, "tenancy", "--namespaced-provider-hosts="+hosts, "--allowed-private-networks=")
	m.waitReady(t)

	// The tenant's Secrets: one meant for credsync, one that is not (the
	// tenant may or may not be able to read it: it must go nowhere).
	asTenant(t, kubectl, ns, secretYAML("tines-api", tinesKey, true)+"---\n"+secretYAML("db-password", "hunter2-canary-0d1f", false))
	cases := []struct {
		name, url, secret, reason string
		listener                  *listener // nil: no listener can stand there
		says                      string    // in the provider's message
	}{
		{"unlisted-host", "https://localhost:" + unlisted.port, "tines-api", v1alpha1.ReasonDestinationNotAllowed, unlisted, "not in --namespaced-provider-hosts"},
		{"ip-literal", "https://127.0.0.1:" + literal.port, "tines-api", v1alpha1.ReasonDestinationNotAllowed, literal, "not in --namespaced-provider-hosts"},
		{"resolves-to-loopback", "https://localhost:" + loopback.port, "tines-api", v1alpha1.ReasonDestinationNotAllowed, loopback, "host localhost is"},
		{"api-server", "https://localhost:" + api.Port(), "tines-api", v1alpha1.ReasonDestinationNotAllowed, nil, "host localhost is"},
		{"metadata", "https://169.254.169.254", "tines-api", v1alpha1.ReasonDestinationNotAllowed, nil, "a cloud metadata address"},
		{"unlabelled-secret", "https://localhost:" + loopback.port, "db-password", v1alpha1.ReasonSecretNotAllowed, loopback, v1alpha1.ProviderSecretLabel},
	}
	var docs []string
	for _, tc := range cases {
		docs = append(docs, fmt.Sprintf(`apiVersion: credsync.io/v1alpha1
kind: CredentialProvider
metadata: {name: %s}
spec:
  tines: {url: "%s", apiKeySecretRef: {name: %s}}
---
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: %s}
spec: {providerRef: {name: %s}, id: "4821"}
`, tc.name, tc.url, tc.secret, tc.name, tc.name))
	}
	asTenant(t, kubectl, ns, strings.Join(docs, "---\n"))

	for _, tc := range cases {
		p := &v1alpha1.CredentialProvider{}
		g.Eventually(func(g gomega.Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: tc.name}, p)).To(gomega.Succeed())
			g.Expect(readyOf(p.Status.Conditions)).To(gomega.HaveField("Reason", tc.reason), tc.name)
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(gomega.Succeed())
		ready := readyOf(p.Status.Conditions)
		g.Expect(ready.Status).To(gomega.Equal(metav1.ConditionFalse), tc.name)
		g.Expect(ready.Message).To(gomega.ContainSubstring(tc.says), tc.name)
		if !strings.Contains(tc.url, "127.0.0.1") { // the tenant's own text may be quoted, never what a name resolved to
			g.Expect(ready.Message).NotTo(gomega.ContainSubstring("127.0.0.1"), "%s: the message names an address", tc.name)
		}
		g.Expect(meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionStalled)).To(gomega.BeTrue(), tc.name)
		rc := &v1alpha1.RemoteCredential{}
		g.Eventually(func(g gomega.Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: tc.name}, rc)).To(gomega.Succeed())
			g.Expect(readyOf(rc.Status.Conditions)).To(gomega.HaveField("Reason", v1alpha1.ReasonProviderNotReady), tc.name)
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(gomega.Succeed())
	}

	// A cluster provider that serves only namespaces labelled for it.
	clusterName := "shared-tines-" + ns
	create(t, testenv.ProviderSecret(systemNS, clusterName, map[string]string{"apiKey": tinesKey}))
	create(t, &v1alpha1.ClusterCredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Name: clusterName},
		Spec: v1alpha1.ClusterCredentialProviderSpec{
			CredentialProviderSpec: v1alpha1.CredentialProviderSpec{
				Tines:    &v1alpha1.TinesProvider{URL: tinesFake.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: clusterName}},
				CABundle: tinesFake.CABundle(),
			},
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"credsync.io/shared-tines": "true"}},
		},
	})
	t.Cleanup(func() {
		_ = k8s.Delete(ctx, &v1alpha1.ClusterCredentialProvider{ObjectMeta: metav1.ObjectMeta{Name: clusterName}})
	})
	before := tinesFake.TotalCalls()
	asTenant(t, kubectl, ns, fmt.Sprintf(`apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: borrowed}
spec: {providerRef: {name: %s, kind: ClusterCredentialProvider}, id: "4821"}
`, clusterName))
	borrowed := &v1alpha1.RemoteCredential{}
	waitCredentialReason := func(reason string) {
		t.Helper()
		g.Eventually(func(g gomega.Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "borrowed"}, borrowed)).To(gomega.Succeed())
			g.Expect(readyOf(borrowed.Status.Conditions)).To(gomega.HaveField("Reason", reason))
		}).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(gomega.Succeed())
	}
	waitCredentialReason(v1alpha1.ReasonProviderNotAllowed)
	g.Expect(meta.IsStatusConditionTrue(borrowed.Status.Conditions, v1alpha1.ConditionStalled)).To(gomega.BeTrue())
	g.Expect(borrowed.Status.Name).To(gomega.BeEmpty(), "metadata of a credential the namespace may not see")
	// An admin labels the namespace: the manager, still running, lets the
	// credential use the provider (whose vendor, on loopback, these strict
	// rules refuse in turn).
	nsObj := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj)).To(gomega.Succeed())
	nsObj.Labels["credsync.io/shared-tines"] = "true"
	g.Expect(k8s.Update(ctx, nsObj)).To(gomega.Succeed())
	waitCredentialReason(v1alpha1.ReasonProviderNotReady)
	g.Expect(readyOf(borrowed.Status.Conditions).Message).To(gomega.ContainSubstring("destination not allowed"))
	g.Expect(tinesFake.TotalCalls()).To(gomega.Equal(before), "the fake vendor on loopback was called")

	// The tenant cannot make a provider that may name any host.
	if out, err := asTenantErr(kubectl, ns, `apiVersion: credsync.io/v1alpha1
kind: ClusterCredentialProvider
metadata: {name: mine}
spec: {tines: {url: "https://127.0.0.1:1", apiKeySecretRef: {name: tines-api}}}
`); err == nil || !strings.Contains(out, "forbidden") {
		t.Errorf("a tenant created a ClusterCredentialProvider: %v\n%s", err, out)
	}

	time.Sleep(time.Second) // a connection in flight would have been accepted by now
	for _, tc := range cases {
		if tc.listener != nil {
			g.Expect(tc.listener.accepted.Load()).To(gomega.BeZero(), "connections to the target of %s", tc.name)
		}
	}
	log, err := os.ReadFile(m.logPath)
	g.Expect(err).NotTo(gomega.HaveOccurred())
	g.Expect(string(log)).NotTo(gomega.ContainSubstring("hunter2-canary-0d1f"), "the unlabelled Secret's value is in the log")
}

// grantTenant gives the tenant user what a namespace admin of a shared
// cluster typically has over credsync: its kinds and Secrets, in ns only.
func grantTenant(t *testing.T, ns string) {
	t.Helper()
	all := []string{"get", "list", "watch", "create", "update", "patch", "delete"}
	create(t, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant"},
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"credentialproviders", "remotecredentials"}, Verbs: all},
			{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: all},
		},
	})
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tenant"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "tenant"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: tenant}},
	})
}

// asTenant applies manifests in ns as the tenant, with real kubectl.
func asTenant(t *testing.T, kubectl, ns, manifests string) {
	t.Helper()
	if out, err := asTenantErr(kubectl, ns, manifests); err != nil {
		t.Fatalf("kubectl apply as %s: %v\n%s", tenant, err, out)
	}
}

func asTenantErr(kubectl, ns, manifests string) (string, error) {
	return kubectlOutput(kubectl, []byte(manifests), "--as="+tenant, "-n", ns, "apply", "-f", "-")
}

func secretYAML(name, apiKey string, labelled bool) string {
	labels := ""
	if labelled {
		labels = fmt.Sprintf("\n  labels: {%s: \"true\"}", v1alpha1.ProviderSecretLabel)
	}
	return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata:\n  name: %s%s\nstringData: {apiKey: %s}\n", name, labels, apiKey)
}

func readyOf(conds []metav1.Condition) *metav1.Condition {
	if c := meta.FindStatusCondition(conds, v1alpha1.ConditionReady); c != nil {
		return c
	}
	return &metav1.Condition{}
}

// listener stands at a target on loopback and counts the connections it
// accepts.
type listener struct {
	port     string
	accepted atomic.Int64
}

func countingListener(t *testing.T) *listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	l := &listener{}
	_, l.port, _ = net.SplitHostPort(ln.Addr().String())
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			l.accepted.Add(1)
			_ = conn.Close()
		}
	}()
	return l
}

// kubectlOutput runs kubectl against the control plane with stdin and
// returns its combined output.
func kubectlOutput(kubectl string, stdin []byte, args ...string) (string, error) {
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
