package controllers_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/testenv"
)

// kubectl runs the real kubectl against the test control plane.
func kubectl(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	kubeconfig, err := testenv.WriteKubeconfig(testEnv, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testenv.Tool(t, "kubectl", "kubectl v1.32 or newer"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestAdmissionRejectsInvalidObjects(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cases := []struct {
		name, yaml, message string
	}{
		{"two vendor blocks", `
apiVersion: credsync.io/v1alpha1
kind: CredentialProvider
metadata: {name: two}
spec:
  tines: {url: https://acme.tines.com, apiKeySecretRef: {name: t}}
  elasticCloud: {apiKeySecretRef: {name: e}}
`, "exactly one vendor block"},
		{"no vendor block", `
apiVersion: credsync.io/v1alpha1
kind: ClusterCredentialProvider
metadata: {name: none-` + ns + `}
spec: {}
`, "exactly one vendor block"},
		{"http url", `
apiVersion: credsync.io/v1alpha1
kind: CredentialProvider
metadata: {name: plain-http}
spec:
  tines: {url: http://acme.tines.com, apiKeySecretRef: {name: t}}
`, "url must be an https:// URL"},
		{"plainid without region or url", `
apiVersion: credsync.io/v1alpha1
kind: CredentialProvider
metadata: {name: nowhere}
spec:
  plainid: {clientSecretRef: {name: p}}
`, "one of region or url must be set"},
		{"refresh 1s", `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: fast}
spec:
  providerRef: {name: tines}
  id: "1"
  refreshInterval: 1s
`, "refreshInterval must be at least 10s"},
		{"bad provider kind", `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: kind}
spec:
  providerRef: {name: tines, kind: Secret}
  id: "1"
`, "Unsupported value"},
		{"empty id", `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: noid}
spec:
  providerRef: {name: tines}
  id: ""
`, "spec.id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := kubectl(t, tc.yaml, "apply", "-n", ns, "-f", "-")
			if err == nil {
				t.Fatalf("kubectl apply accepted an invalid object:\n%s", out)
			}
			if !strings.Contains(out, tc.message) {
				t.Fatalf("rejection does not say %q:\n%s", tc.message, out)
			}
		})
	}

	// And a valid one passes, with defaults filled in.
	out, err := kubectl(t, `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: ok}
spec:
  providerRef: {name: tines}
  id: "1"
`, "apply", "-n", ns, "-f", "-")
	if err != nil {
		t.Fatalf("valid object rejected: %v\n%s", err, out)
	}
	out, err = kubectl(t, "", "get", "-n", ns, "remotecredential", "ok", "-o", "jsonpath={.spec.refreshInterval} {.spec.expiryWarning} {.spec.providerRef.kind}")
	if err != nil || out != "1h 720h CredentialProvider" {
		t.Fatalf("defaults = %q (%v)", out, err)
	}
}

func TestDeployManifestsApply(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "config", "default")
	// A server-side dry run creates nothing: the namespace must exist.
	if out, err := kubectl(t, "", "create", "namespace", "credsync-system"); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("create namespace: %v\n%s", err, out)
	}
	out, err := kubectl(t, "", "apply", "--dry-run=server", "-k", root)
	if err != nil {
		t.Fatalf("config/default does not apply: %v\n%s", err, out)
	}
	for _, want := range []string{"deployment.apps/credsync-manager", "clusterrole.rbac.authorization.k8s.io/credsync-manager-role",
		"customresourcedefinition.apiextensions.k8s.io/remotecredentials.credsync.io"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %s:\n%s", want, out)
		}
	}
}
