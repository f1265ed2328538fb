package monitoring

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/internal/testenv"
)

// argoKinds are the kinds config/argocd/health.lua serves.
var argoKinds = []string{"RemoteCredential", "CredentialProvider", "ClusterCredentialProvider", "CredentialVendor"}

func TestArgoCDHealth(t *testing.T) {
	script := string(readRepoFile(t, "config", "argocd", "health.lua"))
	cases := []struct {
		name   string
		object string
		// status is the Argo CD health status; message holds substrings of
		// the health message.
		status  string
		message []string
	}{{
		name: "new object without status",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata:
  name: github-token
  namespace: team-a
  generation: 1
  creationTimestamp: "2026-05-01T10:00:00Z"
spec:
  providerRef: {name: tines-prod, kind: CredentialProvider}
  id: "4821"
  refreshInterval: 1h
  expiryWarning: 720h
`,
		status:  "Progressing",
		message: []string{"first sync"},
	}, {
		name: "new object with an empty status",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata:
  name: github-token
  namespace: team-a
  generation: 1
spec:
  providerRef: {name: tines-prod, kind: CredentialProvider}
  id: "4821"
status:
  observedGeneration: 0
`,
		status:  "Progressing",
		message: []string{"first sync"},
	}, {
		name: "synced",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata:
  name: github-token
  namespace: team-a
  generation: 2
spec:
  providerRef: {name: tines-prod, kind: CredentialProvider}
  id: "4821"
  refreshInterval: 1h
  expiryWarning: 720h
status:
  observedGeneration: 2
  vendor: tines
  name: tines_github_credential
  createdAt: "2021-03-26T12:34:16Z"
  updatedAt: "2021-03-26T12:34:16Z"
  expiresAt: "2027-01-01T00:00:00Z"
  tines: {mode: TEXT, teamId: 2, folderId: 1, readAccess: TEAM}
  conditions:
  - type: Ready
    status: "True"
    reason: Synced
    message: tines credential 4821 synced
    observedGeneration: 2
    lastTransitionTime: "2026-05-01T10:00:03Z"
  - type: Expiring
    status: "False"
    reason: NotExpiring
    message: expires at 2027-01-01T00:00:00Z
    observedGeneration: 2
    lastTransitionTime: "2026-05-01T10:00:03Z"
`,
		status:  "Healthy",
		message: []string{"Synced", "tines credential 4821 synced"},
	}, {
		name: "synced and expiring",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata:
  name: github-token
  namespace: team-a
  generation: 1
spec:
  providerRef: {name: tines-prod, kind: CredentialProvider}
  id: "4821"
status:
  observedGeneration: 1
  vendor: tines
  expiresAt: "2026-05-20T00:00:00Z"
  conditions:
  - type: Ready
    status: "True"
    reason: Synced
    message: tines credential 4821 synced
    observedGeneration: 1
    lastTransitionTime: "2026-05-01T10:00:03Z"
  - type: Expiring
    status: "True"
    reason: ExpiresSoon
    message: expires at 2026-05-20T00:00:00Z, within the expiry warning of 720h0m0s
    observedGeneration: 1
    lastTransitionTime: "2026-05-01T10:00:03Z"
`,
		status:  "Healthy",
		message: []string{"xpires soon", "expires at 2026-05-20T00:00:00Z, within the expiry warning of 720h0m0s"},
	}, {
		name: "expired",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata:
  name: github-token
  namespace: team-a
  generation: 1
spec:
  providerRef: {name: tines-prod, kind: CredentialProvider}
  id: "4821"
status:
  observedGeneration: 1
  vendor: tines
  expiresAt: "2026-04-01T00:00:00Z"
  conditions:
  - type: Ready
    status: "False"
    reason: Expired
    message: tines credential 4821 expired at 2026-04-01T00:00:00Z
    observedGeneration: 1
    lastTransitionTime: "2026-04-01T00:00:00Z"
  - type: Expiring
    status: "True"
    reason: ExpiresSoon
    message: expires at 2026-04-01T00:00:00Z, within the expiry warning of 720h0m0s
    observedGeneration: 1
    lastTransitionTime: "2026-03-02T00:00:00Z"
  - type: Stalled
    status: "True"
    reason: Expired
    message: tines credential 4821 expired at 2026-04-01T00:00:00Z
    observedGeneration: 1
    lastTransitionTime: "2026-04-01T00:00:00Z"
`,
		status:  "Degraded",
		message: []string{"Expired: tines credential 4821 expired at 2026-04-01T00:00:00Z"},
	}, {
		// Ready says Expired even where Stalled is missing (an older operator).
		name: "expired without Stalled",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: github-token, namespace: team-a, generation: 1}
spec:
  providerRef: {name: tines-prod}
  id: "4821"
status:
  observedGeneration: 1
  conditions:
  - type: Ready
    status: "False"
    reason: Expired
    message: tines credential 4821 expired at 2026-04-01T00:00:00Z
    observedGeneration: 1
    lastTransitionTime: "2026-04-01T00:00:00Z"
`,
		status:  "Degraded",
		message: []string{"Expired: "},
	}, {
		name: "terminal error: not found",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata:
  name: ops-key
  namespace: team-a
  generation: 1
spec:
  providerRef: {name: plainid-prod, kind: ClusterCredentialProvider}
  id: 0f4c2a
status:
  observedGeneration: 1
  conditions:
  - type: Ready
    status: "False"
    reason: NotFound
    message: 'plainid credential 0f4c2a: not found (clientNotFoundError)'
    observedGeneration: 1
    lastTransitionTime: "2026-05-01T10:00:03Z"
  - type: Stalled
    status: "True"
    reason: NotFound
    message: 'plainid credential 0f4c2a: not found (clientNotFoundError)'
    observedGeneration: 1
    lastTransitionTime: "2026-05-01T10:00:03Z"
`,
		status:  "Degraded",
		message: []string{"NotFound: plainid credential 0f4c2a", "clientNotFoundError"},
	}, {
		name: "transient error: vendor unavailable",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata:
  name: ec-deploy
  namespace: team-b
  generation: 3
spec:
  providerRef: {name: elastic-prod}
  id: key-77
status:
  observedGeneration: 3
  vendor: elasticCloud
  conditions:
  - type: Ready
    status: "False"
    reason: VendorUnavailable
    message: 'elasticCloud credential key-77: HTTP 503'
    observedGeneration: 3
    lastTransitionTime: "2026-05-01T10:05:00Z"
  - type: Reconciling
    status: "True"
    reason: VendorUnavailable
    message: 'elasticCloud credential key-77: HTTP 503'
    observedGeneration: 3
    lastTransitionTime: "2026-05-01T10:05:00Z"
`,
		status:  "Progressing",
		message: []string{"VendorUnavailable: elasticCloud credential key-77: HTTP 503"},
	}, {
		// The spec changed (generation 4); the status still describes
		// generation 3, where the credential was synced.
		name: "stale generation",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata:
  name: github-token
  namespace: team-a
  generation: 4
spec:
  providerRef: {name: tines-prod}
  id: "4999"
status:
  observedGeneration: 3
  conditions:
  - type: Ready
    status: "True"
    reason: Synced
    message: tines credential 4821 synced
    observedGeneration: 3
    lastTransitionTime: "2026-05-01T10:00:03Z"
`,
		status:  "Progressing",
		message: []string{"generation 4"},
	}, {
		// status.observedGeneration is current but a condition is not:
		// do not report a stale Stalled as Degraded.
		name: "stale condition",
		object: `
apiVersion: credsync.io/v1alpha1
kind: RemoteCredential
metadata: {name: github-token, namespace: team-a, generation: 2}
spec:
  providerRef: {name: tines-prod}
  id: "4821"
status:
  observedGeneration: 2
  conditions:
  - type: Ready
    status: "False"
    reason: NotFound
    message: tines credential 4820 not found
    observedGeneration: 2
    lastTransitionTime: "2026-05-01T10:00:03Z"
  - type: Stalled
    status: "True"
    reason: NotFound
    message: tines credential 4820 not found
    observedGeneration: 1
    lastTransitionTime: "2026-05-01T10:00:03Z"
`,
		status:  "Progressing",
		message: []string{"generation 2"},
	}, {
		name: "provider valid",
		object: `
apiVersion: credsync.io/v1alpha1
kind: CredentialProvider
metadata:
  name: tines-prod
  namespace: team-a
  generation: 1
spec:
  tines:
    url: https://acme.tines.com
    apiKeySecretRef: {name: tines-api, key: apiKey}
status:
  observedGeneration: 1
  conditions:
  - type: Ready
    status: "True"
    reason: Valid
    message: tines provider is usable
    observedGeneration: 1
    lastTransitionTime: "2026-05-01T10:00:01Z"
`,
		status:  "Healthy",
		message: []string{"Valid: tines provider is usable"},
	}, {
		name: "provider secret not found",
		object: `
apiVersion: credsync.io/v1alpha1
kind: ClusterCredentialProvider
metadata:
  name: plainid-prod
  generation: 1
spec:
  plainid:
    region: us1
    clientSecretRef: {name: plainid-admin}
status:
  observedGeneration: 1
  conditions:
  - type: Ready
    status: "False"
    reason: SecretNotFound
    message: Secret credsync-system/plainid-admin not found
    observedGeneration: 1
    lastTransitionTime: "2026-05-01T10:00:01Z"
  - type: Reconciling
    status: "True"
    reason: SecretNotFound
    message: Secret credsync-system/plainid-admin not found
    observedGeneration: 1
    lastTransitionTime: "2026-05-01T10:00:01Z"
`,
		status:  "Progressing",
		message: []string{"SecretNotFound: Secret credsync-system/plainid-admin not found"},
	}, {
		name: "provider invalid spec",
		object: `
apiVersion: credsync.io/v1alpha1
kind: CredentialProvider
metadata:
  name: ece
  namespace: team-b
  generation: 2
spec:
  elasticCloud:
    url: https://ece-host:12443
    apiKeySecretRef: {name: ec-api}
  caBundle: bm90IGEgY2VydGlmaWNhdGU=
status:
  observedGeneration: 2
  conditions:
  - type: Ready
    status: "False"
    reason: InvalidSpec
    message: caBundle holds no PEM certificate
    observedGeneration: 2
    lastTransitionTime: "2026-05-01T10:00:01Z"
  - type: Stalled
    status: "True"
    reason: InvalidSpec
    message: caBundle holds no PEM certificate
    observedGeneration: 2
    lastTransitionTime: "2026-05-01T10:00:01Z"
`,
		status:  "Degraded",
		message: []string{"InvalidSpec: caBundle holds no PEM certificate"},
	}, {
		name: "credential vendor whose CEL does not compile",
		object: `
apiVersion: credsync.io/v1alpha1
kind: CredentialVendor
metadata:
  name: acme-keys
  generation: 3
spec:
  auth: {type: Bearer}
  keyCheck: {paths: [/me]}
  get: {paths: ['/keys/{id}']}
  fields: {id: "item.id +"}
status:
  observedGeneration: 3
  conditions:
  - type: Ready
    status: "False"
    reason: InvalidSpec
    message: 'fields.id: "item.id +" does not compile: Syntax error'
    observedGeneration: 3
    lastTransitionTime: "2026-05-01T10:00:01Z"
  - type: Stalled
    status: "True"
    reason: InvalidSpec
    message: 'fields.id: "item.id +" does not compile: Syntax error'
    observedGeneration: 3
    lastTransitionTime: "2026-05-01T10:00:01Z"
`,
		status:  "Degraded",
		message: []string{"does not compile"},
	}, {
		name: "credential vendor that compiles",
		object: `
apiVersion: credsync.io/v1alpha1
kind: CredentialVendor
metadata:
  name: acme-keys
  generation: 4
spec:
  auth: {type: Bearer}
  keyCheck: {paths: [/me]}
  get: {paths: ['/keys/{id}']}
  fields: {id: "item.id"}
status:
  observedGeneration: 4
  conditions:
  - type: Ready
    status: "True"
    reason: Valid
    message: the definition compiles
    observedGeneration: 4
    lastTransitionTime: "2026-05-01T10:00:01Z"
`,
		status:  "Healthy",
		message: []string{"Valid"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, message, err := argoHealth(script, decodeObject(t, tc.object))
			if err != nil {
				t.Fatalf("health.lua: %v", err)
			}
			if status != tc.status {
				t.Errorf("status = %q, want %q (message %q)", status, tc.status, message)
			}
			for _, want := range tc.message {
				if !strings.Contains(message, want) {
					t.Errorf("message = %q, want it to contain %q", message, want)
				}
			}
		})
	}
}

// TestArgoCDSandbox checks that argoHealth really withholds what Argo CD
// withholds, so TestArgoCDHealth would catch a script that needs it.
func TestArgoCDSandbox(t *testing.T) {
	obj := map[string]any{"metadata": map[string]any{"name": "x"}}
	for _, script := range []string{
		`return {status = "Healthy", message = string.format("%d", 1)}`,
		`return {status = "Healthy", message = tostring(math.floor(1.5))}`,
		`return {status = "Healthy", message = os.getenv("HOME")}`,
		`return {status = "Healthy", message = io.read()}`,
	} {
		if _, _, err := argoHealth(script, obj); err == nil {
			t.Errorf("script ran in the sandbox, want an error: %s", script)
		}
	}
	if _, msg, err := argoHealth(`return {status = "Healthy", message = table.concat({"a", "b"}, ",")}`, obj); err != nil || msg != "a,b" {
		t.Errorf("table library: message %q, error %v; want a,b", msg, err)
	}
}

// TestArgoCDConfigMapPatch keeps the argocd-cm patch in step with health.lua.
func TestArgoCDConfigMapPatch(t *testing.T) {
	script := string(readRepoFile(t, "config", "argocd", "health.lua"))
	var cm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
		Data map[string]string `json:"data"`
	}
	if err := yaml.UnmarshalStrict(readRepoFile(t, "config", "argocd", "argocd-cm-patch.yaml"), &cm); err != nil {
		t.Fatal(err)
	}
	if cm.APIVersion != "v1" || cm.Kind != "ConfigMap" || cm.Metadata.Name != "argocd-cm" || cm.Metadata.Namespace != "argocd" {
		t.Errorf("patch targets %s %s %s/%s, want v1 ConfigMap argocd/argocd-cm",
			cm.APIVersion, cm.Kind, cm.Metadata.Namespace, cm.Metadata.Name)
	}
	var want []string
	for _, kind := range argoKinds {
		want = append(want, "resource.customizations.health.credsync.io_"+kind)
	}
	var got []string
	for key := range cm.Data {
		got = append(got, key)
	}
	sort.Strings(want)
	sort.Strings(got)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("data keys = %v, want %v", got, want)
	}
	for _, key := range want {
		if strings.TrimRight(cm.Data[key], "\n") != strings.TrimRight(script, "\n") {
			t.Errorf("%s differs from config/argocd/health.lua; copy the script into the patch again", key)
		}
	}
}

// argoHealth runs a health script the way Argo CD runs a custom check from
// argocd-cm: obj converted to Lua values, only the package, base and table
// libraries, a one-second limit, a table with status and message returned.
func argoHealth(script string, obj map[string]any) (status, message string, err error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for name, open := range map[string]lua.LGFunction{
		lua.LoadLibName: lua.OpenPackage,
		lua.BaseLibName: lua.OpenBase,
		lua.TabLibName:  lua.OpenTable,
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(open), Protect: true}, lua.LString(name)); err != nil {
			return "", "", err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", luaValue(l, obj))
	if err := l.DoString(script); err != nil {
		return "", "", err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return "", "", fmt.Errorf("script returned %s, want a table", l.Get(-1).Type())
	}
	st, ok := ret.RawGetString("status").(lua.LString)
	if !ok {
		return "", "", fmt.Errorf("status is %s, want a string", ret.RawGetString("status").Type())
	}
	switch st {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
	default:
		return "", "", fmt.Errorf("status %q is not an Argo CD health status", st)
	}
	msg, ok := ret.RawGetString("message").(lua.LString)
	if !ok {
		return "", "", fmt.Errorf("message is %s, want a string", ret.RawGetString("message").Type())
	}
	return string(st), string(msg), nil
}

// luaValue converts a decoded Kubernetes object as Argo CD does: maps to
// tables, lists to 1-based tables, numbers (int64 from the API machinery's
// JSON decoder) to LNumber.
func luaValue(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := l.CreateTable(0, len(v))
		for key, item := range v {
			t.RawSetString(key, luaValue(l, item))
		}
		return t
	case []any:
		t := l.CreateTable(len(v), 0)
		for _, item := range v {
			t.Append(luaValue(l, item))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	}
	return lua.LNil
}

// decodeObject reads a YAML object the way Argo CD holds it: as
// unstructured content, integers as int64.
func decodeObject(t *testing.T, object string) map[string]any {
	t.Helper()
	data, err := yaml.YAMLToJSONStrict([]byte(object))
	if err != nil {
		t.Fatal(err)
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatal(err)
	}
	return u.Object
}

// readRepoFile returns a file of the repository, by path elements from its root.
func readRepoFile(t *testing.T, elem ...string) []byte {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(append([]string{root}, elem...)...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
