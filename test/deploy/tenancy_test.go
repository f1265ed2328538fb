package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// What a shared cluster needs from the install: the manager flags of the
// tenancy rules, Secrets readable only where listed (rbac.secretNamespaces,
// config/components/secret-namespaces), and the documented commands that
// label provider Secrets.

// providerSecretLabel is the label a provider's Secret must carry.
const providerSecretLabel = "credsync.io/provider-secret"

// allOnSecretNamespaces are the namespaces ci/all-on-values.yaml lists in
// rbac.secretNamespaces, plus its clusterResourceNamespace.
var allOnSecretNamespaces = []string{"team-a", "team-b", "credsync-secrets"}

// TestHelmTenancyArgs: the tenancy values become the manager's flags, and
// with default values none is passed (the manager's defaults are the strict
// ones, as in config/manager/manager.yaml).
func TestHelmTenancyArgs(t *testing.T) {
	tenancyFlags := []string{"--namespaced-provider-hosts", "--allowed-private-networks", "--vendor-proxy", "--enable-namespaced-providers"}
	var d appsv1.Deployment
	decode(t, find(t, helmTemplate(t), "Deployment", "credsync-manager"), &d)
	for _, arg := range managerContainer(t, &d).Args {
		for _, f := range tenancyFlags {
			if strings.HasPrefix(arg, f) {
				t.Errorf("default values pass %s; the manager's own default should apply", arg)
			}
		}
	}

	decode(t, find(t, helmTemplate(t, "-f", allOnValues), "Deployment", "credsync-manager"), &d)
	args := managerContainer(t, &d).Args
	for _, want := range []string{
		"--namespaced-provider-hosts=acme.tines.com,*.elastic-cloud.com,ece.example.com:12443",
		"--allowed-private-networks=10.20.0.0/16,fd12:3456::/48",
		"--vendor-proxy=http://10.0.0.10:3128",
		"--enable-namespaced-providers=false",
	} {
		if !slices.Contains(args, want) {
			t.Errorf("all-on args %q lack %s", args, want)
		}
	}
	decode(t, find(t, helmTemplate(t, "--set", "enableNamespacedProviders=true"), "Deployment", "credsync-manager"), &d)
	if args := managerContainer(t, &d).Args; slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--enable-namespaced-providers") }) {
		t.Errorf("enableNamespacedProviders=true passes a flag: %q", args)
	}
}

// TestHelmSecretNamespaces: with rbac.secretNamespaces the ClusterRole
// grants nothing on Secrets and each listed namespace (and the cluster
// resource namespace) has a Role granting get on Secrets only. Applied to
// the API server, the manager's ServiceAccount may get Secrets there and
// nowhere else, never list them, and keeps its other permissions; without
// the value it may get Secrets anywhere.
func TestHelmSecretNamespaces(t *testing.T) {
	createNamespaces(t, "team-a", "team-b", "team-c")

	wide := helmTemplateRelease(t, "wide")
	requireSecretsRule(t, find(t, wide, "ClusterRole", "wide-credsync-manager-role"), true)
	if roles := secretRoles(wide); len(roles) != 0 {
		t.Errorf("default values render Secret Roles: %s", summary(roles))
	}
	applyRBAC(t, wide)
	wideSA := "system:serviceaccount:" + systemNS + ":wide-credsync-manager"
	for _, ns := range []string{"team-a", "team-c", systemNS} {
		if !canI(t, wideSA, "get", "secrets", ns) {
			t.Errorf("default values: the manager may not get Secrets in %s", ns)
		}
	}

	scoped := helmTemplateRelease(t, "scoped", "--set", "rbac.secretNamespaces={team-a,team-b}")
	requireSecretsRule(t, find(t, scoped, "ClusterRole", "scoped-credsync-manager-role"), false)
	requireSecretRoles(t, scoped, "scoped-credsync-manager-secrets", "scoped-credsync-manager", []string{"team-a", "team-b", systemNS})
	applyRBAC(t, scoped)
	sa := "system:serviceaccount:" + systemNS + ":scoped-credsync-manager"
	for _, c := range []struct {
		verb, resource, ns string
		want               bool
	}{
		{"get", "secrets", "team-a", true},
		{"get", "secrets", "team-b", true},
		{"get", "secrets", systemNS, true}, // ClusterCredentialProviders' Secrets
		{"get", "secrets", "team-c", false},
		{"get", "secrets", "default", false},
		{"list", "secrets", "team-a", false},
		{"watch", "secrets", "team-a", false},
		{"update", "secrets", "team-a", false},
		{"get", "credentialproviders.credsync.io", "team-c", true},
		{"list", "namespaces", "", true},
	} {
		if got := canI(t, sa, c.verb, c.resource, c.ns); got != c.want {
			t.Errorf("rbac.secretNamespaces={team-a,team-b}: can the manager %s %s in %q: %v, want %v", c.verb, c.resource, c.ns, got, c.want)
		}
	}

	// The all-on values list team-a and team-b, with their own cluster
	// resource namespace.
	allOn := helmTemplate(t, "-f", allOnValues)
	requireSecretsRule(t, find(t, allOn, "ClusterRole", "credsync-manager-role"), false)
	requireSecretRoles(t, allOn, "credsync-manager-secrets", "credsync-manager", allOnSecretNamespaces)
}

// TestKustomizeSecretNamespacesComponent: config/components/secret-namespaces
// on top of config/default takes exactly the Secrets rule out of the
// generated ClusterRole and grants get on Secrets in credsync-system with a
// Role; the patch its comment gives moves that Role to another namespace.
// Applied to the API server, that is all the manager may do with Secrets.
func TestKustomizeSecretNamespacesComponent(t *testing.T) {
	createNamespaces(t, "team-a", "team-c")
	base := "resources:\n- ../default\ncomponents:\n- ../components/secret-namespaces\n"

	objs := kustomizeOverlay(t, base)
	got := find(t, objs, "ClusterRole", "credsync-manager-role")
	requireSecretsRule(t, got, false)
	var want []rbacv1.PolicyRule
	for _, r := range rules(t, find(t, kustomizeBuild(t), "ClusterRole", "credsync-manager-role")) {
		if !coversSecrets(r) {
			want = append(want, r)
		}
	}
	same(t, "ClusterRole rules with the component (config/rbac/role.yaml's but the Secrets rule)", rules(t, got), want)
	requireSecretRoles(t, objs, "credsync-manager-secrets", "credsync-manager", []string{systemNS})

	// For another namespace, with a prefix so that its cluster-scoped
	// objects do not replace those of other tests.
	patch := docBlock(t, "config/components/secret-namespaces/kustomization.yaml", "op: replace, path: /metadata/namespace")
	objs = kustomizeOverlay(t, base+"namePrefix: comp-\n"+patch)
	requireSecretsRule(t, find(t, objs, "ClusterRole", "comp-credsync-manager-role"), false)
	requireSecretRoles(t, objs, "comp-credsync-manager-secrets", "comp-credsync-manager", []string{"team-a"})
	applyRBAC(t, objs)
	sa := "system:serviceaccount:" + systemNS + ":comp-credsync-manager"
	for _, c := range []struct {
		verb, ns string
		want     bool
	}{{"get", "team-a", true}, {"get", "team-c", false}, {"get", systemNS, false}, {"list", "team-a", false}} {
		if got := canI(t, sa, c.verb, "secrets", c.ns); got != c.want {
			t.Errorf("component moved to team-a: can the manager %s secrets in %s: %v, want %v", c.verb, c.ns, got, c.want)
		}
	}
}

// TestProviderSecretRecipes: the commands charts/credsync/README.md gives
// work on a real API server: the rotation recipe keeps the label and
// changes the key; the upgrade commands label the Secret of every provider,
// namespaced and cluster, and no other Secret.
func TestProviderSecretRecipes(t *testing.T) {
	createNamespaces(t, "team-a")
	secrets := []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "tines-api"}, StringData: map[string]string{"apiKey": "OLD-KEY"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "plainid-admin"}, StringData: map[string]string{"clientId": "c", "clientSecret": "s"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "unrelated"}, StringData: map[string]string{"password": "x"}},
		{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: "ec-api"}, StringData: map[string]string{"apiKey": "k"}},
	}
	var objs []*unstructured.Unstructured
	for _, s := range secrets {
		s.APIVersion, s.Kind = "v1", "Secret"
		objs = append(objs, toUnstructured(t, s))
	}
	for _, y := range []string{
		"apiVersion: credsync.io/v1alpha1\nkind: CredentialProvider\nmetadata: {name: tines-prod, namespace: team-a}\nspec:\n  tines: {url: https://acme.tines.com, apiKeySecretRef: {name: tines-api}}\n",
		"apiVersion: credsync.io/v1alpha1\nkind: CredentialProvider\nmetadata: {name: plainid, namespace: team-a}\nspec:\n  plainid: {region: us1, clientSecretRef: {name: plainid-admin}}\n",
		"apiVersion: credsync.io/v1alpha1\nkind: ClusterCredentialProvider\nmetadata: {name: ec-recipe}\nspec:\n  elasticCloud: {apiKeySecretRef: {name: ec-api}}\n",
	} {
		objs = append(objs, parse(t, []byte(y))...)
	}
	if out, err := kubectl(t, stream(t, objs), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply the providers and Secrets: %v\n%s", err, out)
	}

	shell(t, docBlock(t, "charts/credsync/README.md", "while read -r ns name"))
	for _, s := range secrets {
		var got corev1.Secret
		getJSON(t, s.Namespace, "secret", s.Name, &got)
		if want := s.Name != "unrelated"; (got.Labels[providerSecretLabel] == "true") != want {
			t.Errorf("after the upgrade commands, Secret %s/%s has labels %v; want the provider label: %v", s.Namespace, s.Name, got.Labels, want)
		}
	}

	// The recipe, then the same without its label step (which drops the
	// label the recipe applied: what the README warns of), then the recipe
	// twice: each time the label must be back, and stay.
	recipe := docBlock(t, "charts/credsync/README.md", "kubectl label -f - --local")
	labelStep := "  | kubectl label -f - --local " + providerSecretLabel + "=true -o yaml \\\n"
	if !strings.Contains(recipe, labelStep) {
		t.Fatalf("the rotation recipe lacks the line %q:\n%s", labelStep, recipe)
	}
	withoutLabel := strings.ReplaceAll(strings.Replace(recipe, labelStep, "", 1), "NEW-KEY", "OTHER-KEY")
	for i, c := range []struct {
		script, key string
		label       bool
	}{{recipe, "NEW-KEY", true}, {withoutLabel, "OTHER-KEY", false}, {recipe, "NEW-KEY", true}, {recipe, "NEW-KEY", true}} {
		shell(t, c.script)
		var got corev1.Secret
		getJSON(t, "team-a", "secret", "tines-api", &got)
		if (got.Labels[providerSecretLabel] == "true") != c.label || string(got.Data["apiKey"]) != c.key {
			t.Errorf("rotation %d: Secret team-a/tines-api has labels %v and apiKey %q; want the label %v and %s", i+1, got.Labels, got.Data["apiKey"], c.label, c.key)
		}
	}
}

// requireSecretsRule fails t unless the ClusterRole u has a rule on core
// Secrets exactly when want, and then one granting only get.
func requireSecretsRule(t *testing.T, u *unstructured.Unstructured, want bool) {
	t.Helper()
	var found []rbacv1.PolicyRule
	for _, r := range rules(t, u) {
		if coversSecrets(r) {
			found = append(found, r)
		}
	}
	switch {
	case !want && len(found) > 0:
		t.Errorf("ClusterRole %s grants %+v on Secrets; want nothing (the Roles grant it)", u.GetName(), found)
	case want && (len(found) != 1 || !slices.Equal(found[0].Verbs, []string{"get"})):
		t.Errorf("ClusterRole %s grants %+v on Secrets; want one rule, get only", u.GetName(), found)
	}
}

// requireSecretRoles fails t unless objs hold, in exactly namespaces, a
// Role name granting get on core Secrets and nothing else, and a
// RoleBinding name binding it to the ServiceAccount sa of systemNS.
func requireSecretRoles(t *testing.T, objs []*unstructured.Unstructured, name, sa string, namespaces []string) {
	t.Helper()
	wantRules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}}}
	var roleNS, bindingNS []string
	for _, o := range secretRoles(objs) {
		if o.GetName() != name {
			t.Errorf("%s %s/%s: want it named %s", o.GetKind(), o.GetNamespace(), o.GetName(), name)
			continue
		}
		if o.GetKind() == "Role" {
			roleNS = append(roleNS, o.GetNamespace())
			same(t, "Role "+o.GetNamespace()+"/"+name+" rules", rules(t, o), wantRules)
			continue
		}
		bindingNS = append(bindingNS, o.GetNamespace())
		var b rbacv1.RoleBinding
		decode(t, o, &b)
		same(t, "RoleBinding "+o.GetNamespace()+"/"+name+" roleRef", b.RoleRef, rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name})
		same(t, "RoleBinding "+o.GetNamespace()+"/"+name+" subjects", b.Subjects, []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: systemNS}})
	}
	want := slices.Sorted(slices.Values(namespaces))
	same(t, "namespaces of the Secret Roles", slices.Sorted(slices.Values(roleNS)), want)
	same(t, "namespaces of the Secret RoleBindings", slices.Sorted(slices.Values(bindingNS)), want)
}

// secretRoles are the Roles and RoleBindings of objs that grant access to
// Secrets (all but leader election's).
func secretRoles(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if (o.GetKind() == "Role" || o.GetKind() == "RoleBinding") && strings.HasSuffix(o.GetName(), "-manager-secrets") {
			found = append(found, o)
		}
	}
	return found
}

// withoutSecretRoles are objs but their Secret Roles and RoleBindings,
// which live in other namespaces than the release's.
func withoutSecretRoles(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	roles := secretRoles(objs)
	return slices.DeleteFunc(slices.Clone(objs), func(o *unstructured.Unstructured) bool { return slices.Contains(roles, o) })
}

// coversSecrets reports whether rule applies to core Secrets, directly or
// through a wildcard.
func coversSecrets(rule rbacv1.PolicyRule) bool {
	return (slices.Contains(rule.APIGroups, "") || slices.Contains(rule.APIGroups, rbacv1.APIGroupAll)) &&
		(slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Resources, rbacv1.ResourceAll))
}

// applyRBAC applies the roles and bindings of objs to the API server for real.
func applyRBAC(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	var rbac []*unstructured.Unstructured
	for _, o := range objs {
		if strings.HasPrefix(o.GetAPIVersion(), rbacv1.GroupName+"/") {
			rbac = append(rbac, o)
		}
	}
	if out, err := kubectl(t, stream(t, rbac), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply the RBAC objects: %v\n%s", err, out)
	}
}

// canI asks the API server whether user may verb resource in namespace ns
// ("" for cluster-wide).
func canI(t *testing.T, user, verb, resource, ns string) bool {
	t.Helper()
	args := []string{"auth", "can-i", verb, resource, "--as", user}
	if ns != "" {
		args = append(args, "-n", ns)
	}
	out, err := kubectl(t, nil, args...)
	// The answer is the last line; warnings may come first.
	lines := strings.Split(strings.TrimSpace(out), "\n")
	answer := strings.TrimSpace(lines[len(lines)-1])
	switch {
	case answer == "yes" && err == nil:
		return true
	case strings.HasPrefix(answer, "no"):
		return false
	}
	t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	return false
}

// createNamespaces creates namespaces on the API server (or leaves them).
func createNamespaces(t *testing.T, names ...string) {
	t.Helper()
	var objs []*unstructured.Unstructured
	for _, n := range names {
		objs = append(objs, toUnstructured(t, &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: n}}))
	}
	if out, err := kubectl(t, stream(t, objs), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply namespaces %v: %v\n%s", names, err, out)
	}
}

// applyNamespaced applies the namespaced objects of objs (not the
// monitoring ones, whose CRDs are missing) to namespace ns, which it
// creates, for real.
func applyNamespaced(t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	createNamespaces(t, ns)
	var in []*unstructured.Unstructured
	for _, o := range withoutMonitoring(objs) {
		switch o.GetKind() {
		case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding":
			continue
		}
		o = o.DeepCopy()
		o.SetNamespace(ns)
		in = append(in, o)
	}
	if out, err := kubectl(t, stream(t, in), "apply", "-f", "-"); err != nil {
		t.Fatalf("kubectl apply to namespace %s: %v\n%s", ns, err, out)
	}
}

// getJSON reads the object kind/name of namespace ns from the API server into v.
func getJSON(t *testing.T, ns, kind, name string, v any) {
	t.Helper()
	out, err := kubectl(t, nil, "get", kind, name, "-n", ns, "-o", "json")
	if err != nil {
		t.Fatalf("kubectl get %s %s/%s: %v\n%s", kind, ns, name, err, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("kubectl get %s %s/%s: %v\n%s", kind, ns, name, err, out)
	}
}

func toUnstructured(t *testing.T, obj any) *unstructured.Unstructured {
	t.Helper()
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		t.Fatal(err)
	}
	return &unstructured.Unstructured{Object: m}
}

func labelsOf(m map[string]string) labels.Set { return labels.Set(m) }

// docBlock returns the one code block of file (a Markdown fence, or a
// YAML comment's indented block) that holds marker, for tests that run
// what the documentation tells users to run.
func docBlock(t *testing.T, file, marker string) string {
	t.Helper()
	text := string(readFile(t, filepath.FromSlash(file)))
	var blocks []string
	if strings.HasSuffix(file, ".md") {
		parts := strings.Split(text, "```")
		for i := 1; i < len(parts); i += 2 {
			_, body, _ := strings.Cut(parts[i], "\n") // drop the info string
			blocks = append(blocks, body)
		}
	} else {
		blocks = commentBlocks(text)
	}
	var found []string
	for _, b := range blocks {
		if strings.Contains(b, marker) {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s holds %d code blocks with %q, want 1", file, len(found), marker)
	}
	return found[0]
}

// commentBlocks are the runs of "#   " (indented) comment lines of a YAML
// file, without the comment marks.
func commentBlocks(text string) []string {
	var blocks []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		}
		cur = nil
	}
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "#   "); ok {
			cur = append(cur, rest)
			continue
		}
		flush()
	}
	flush()
	return blocks
}

// shell runs script with sh against the test control plane (KUBECONFIG).
func shell(t *testing.T, script string) {
	t.Helper()
	requireEnv(t)
	bin := filepath.Dir(kubectlPath(t))
	cmd := exec.Command("sh", "-euc", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("sh -euc %q: %v\n%s", script, err, out.Bytes())
	}
}

// runCmd runs name in the repository root and returns what it printed
// (stdout and stderr) and its error.
func runCmd(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	return string(out), err
}
