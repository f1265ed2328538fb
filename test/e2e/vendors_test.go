package e2e

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"

	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/gitlabtest"
)

// TestCustomCredentialVendor is a cluster admin adding a vendor as data
// with real kubectl, against the real manager: a CredentialVendor that
// compiles serves a provider and its credentials (owner and last use in
// `kubectl get -o wide`); one whose CEL does not compile is
// Ready=False/InvalidSpec naming the expression, and so is the provider
// that names it; one whose mapping exceeds its cost limit fails the read,
// saying so.
func TestCustomCredentialVendor(t *testing.T) {
	requireEnv(t)
	kubectl := lookKubectl(t)
	g := gomega.NewWithT(t)
	ns := newNamespace(t)
	srv := gitlabtest.NewServer("e2e-gitlab-token")
	defer srv.Close()
	used := time.Now().Add(-3 * time.Hour)
	tok := gitlabtest.Sample(4242, "release-bot")
	tok.LastUsedAt = &used
	srv.Put(tok)

	deleteLeasesAfter(t, leaseName)
	m := startManager(t, "vendors")
	m.waitReady(t)

	definition := func(name, nameExpr, costLimit string) string {
		return fmt.Sprintf(`apiVersion: credsync.io/v1alpha1
kind: CredentialVendor
metadata: {name: %s}
spec:
  auth: {type: Header, headers: [{name: PRIVATE-TOKEN, secretKey: token}]}
  keyCheck: {paths: [/api/v4/personal_access_tokens/self]}
  get: {paths: ['/api/v4/personal_access_tokens/{id}']}
  list: {paths: [/api/v4/personal_access_tokens], pagination: {type: Link}}
  fields:
    id: string(item.id)
    name: %s
    owner: '"user " + string(item.user_id)'
    createdAt: item.created_at
    lastUsedAt: item.last_used_at
    active: '!item.revoked'
  errors: {message: body.message}
%s`, name, nameExpr, costLimit)
	}
	vendors := map[string]string{
		"e2e-keys":   definition("e2e-keys", "item.name", ""),
		"e2e-broken": definition("e2e-broken", "item.name +", ""),
		"e2e-costly": definition("e2e-costly", `"[1,2,3,4,5,6,7,8].map(x, [1,2,3,4,5,6,7,8].map(y, x * y)).size() > 0 ? item.name : ''"`, "  costLimit: 50\n"),
	}
	var docs []string
	for name, doc := range vendors {
		docs = append(docs, doc)
		t.Cleanup(func() { _, _ = kubectlOutput(kubectl, nil, "delete", "credentialvendor", name, "--ignore-not-found") })
	}
	kubectlRun(t, kubectl, []byte(strings.Join(docs, "---\n")), "apply", "-f", "-")

	ca := base64.StdEncoding.EncodeToString(srv.CABundle())
	docs = []string{"apiVersion: v1\nkind: Secret\nmetadata:\n  name: keys-api\n  labels: {credsync.io/provider-secret: \"true\"}\nstringData: {token: e2e-gitlab-token}\n"}
	for name := range vendors {
		docs = append(docs, fmt.Sprintf(`apiVersion: credsync.io/v1alpha1
kind: CredentialProvider
metadata: {name: %[1]s}
spec:
  http: {definition: %[1]s, url: %[2]q, auth: {secretRef: {name: keys-api}}}
  caBundle: %[3]s
---
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: %[1]s-bot}
spec:
  providerRef: {name: %[1]s}
  id: "4242"
  unusedAfter: 2h
`, name, srv.URL, ca))
	}
	kubectlRun(t, kubectl, []byte(strings.Join(docs, "---\n")), "-n", ns, "apply", "-f", "-")

	jsonpath := func(args ...string) string { return strings.TrimSpace(kubectlRun(t, kubectl, nil, args...)) }
	ready := `-o=jsonpath={.status.conditions[?(@.type=="Ready")].reason}:{.status.conditions[?(@.type=="Ready")].message}`
	g.Eventually(func(g gomega.Gomega) {
		g.Expect(jsonpath("get", "credentialvendor", "e2e-keys", ready)).To(gomega.HavePrefix("Valid:"))
		g.Expect(jsonpath("get", "credentialvendor", "e2e-costly", ready)).To(gomega.HavePrefix("Valid:"))
		broken := jsonpath("get", "credentialvendor", "e2e-broken", ready)
		g.Expect(broken).To(gomega.HavePrefix("InvalidSpec:"))
		g.Expect(broken).To(gomega.ContainSubstring(`fields.name: "item.name +" does not compile`))
		g.Expect(jsonpath("-n", ns, "get", "credentialprovider", "e2e-broken", ready)).To(gomega.HavePrefix("InvalidSpec:"))
		g.Expect(jsonpath("-n", ns, "get", "remotecredential", "e2e-keys-bot", ready)).To(gomega.HavePrefix("Synced:"))
		costly := jsonpath("-n", ns, "get", "remotecredential", "e2e-costly-bot", ready)
		g.Expect(costly).To(gomega.HavePrefix("InvalidResponse:"))
		g.Expect(costly).To(gomega.ContainSubstring("fields.name exceeded the definition's CEL cost limit"))
	}).WithTimeout(time.Minute).WithPolling(poll).Should(gomega.Succeed())

	wide := kubectlRun(t, kubectl, nil, "-n", ns, "get", "remotecredential", "e2e-keys-bot", "-o", "wide")
	if !strings.Contains(wide, "OWNER") || !strings.Contains(wide, "user 42") || !strings.Contains(wide, "LAST USED") ||
		!strings.Contains(wide, used.UTC().Truncate(time.Hour).Format(time.RFC3339)) {
		t.Errorf("kubectl get -o wide lacks the owner or the last use:\n%s", wide)
	}
	// Last used 3 hours ago, unusedAfter 2h: Unused, on time.
	unused := `-o=jsonpath={.status.conditions[?(@.type=="Unused")].status}/{.status.conditions[?(@.type=="Unused")].reason}`
	g.Eventually(func() string { return jsonpath("-n", ns, "get", "remotecredential", "e2e-keys-bot", unused) }).
		WithTimeout(30 * time.Second).WithPolling(poll).Should(gomega.Equal("True/NotUsedRecently"))
}
