// Package rbac checks the permissions and the pod security of the deployed
// manager, as written in config/: what a cluster admin reviews before
// installing credsync. The ClusterRole is generated from the controllers'
// +kubebuilder:rbac markers (make manifests), so these tests catch a marker
// that widens it.
package rbac

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/internal/testenv"
)

const (
	managerRole           = "credsync-manager-role"
	managerDeployment     = "credsync-manager"
	managerContainer      = "manager"
	metricsAddress        = ":8443"
	restrictedPodSecurity = "restricted"
)

// doc is one YAML document of a manifest file.
type doc struct {
	file  string // relative to the repository root
	index int    // position among the file's non-empty documents, from 1
	data  []byte
	metav1.TypeMeta
	Metadata metav1.ObjectMeta `json:"metadata"`
}

func (d doc) String() string {
	return d.file + " document " + strconv.Itoa(d.index) + " (" + d.Kind + " " + d.Metadata.Name + ")"
}

// strictDecoder decodes manifests as the API server does with strict field
// validation: field names are case-sensitive, unknown and duplicate fields
// are errors.
var strictDecoder = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, testenv.Scheme(), testenv.Scheme(),
	kjson.SerializerOptions{Yaml: true, Strict: true})

// decode reads d into v strictly: a misspelt field (readOnlyRootFileSystem)
// is an error, not a setting the cluster silently drops.
func (d doc) decode(t *testing.T, v runtime.Object) {
	t.Helper()
	if _, _, err := strictDecoder.Decode(d.data, nil, v); err != nil {
		t.Fatalf("%s: %v", d, err)
	}
}

// readDocs reads the YAML documents of files (paths relative to the
// repository root, separated by "---" lines), skipping empty ones.
func readDocs(t *testing.T, files ...string) []doc {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var docs []doc
	for _, file := range files {
		data, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		n := 0 // documents read from file
		for _, part := range bytes.Split(append([]byte("\n"), data...), []byte("\n---")) {
			// The separator line may carry trailing text ("--- # comment").
			if nl := bytes.IndexByte(part, '\n'); nl >= 0 {
				part = part[nl+1:]
			} else {
				part = nil
			}
			d := doc{file: file, index: n + 1, data: part}
			if err := yaml.Unmarshal(part, &d); err != nil {
				t.Fatalf("%s document %d: %v", file, n+1, err)
			}
			if d.Kind != "" {
				docs = append(docs, d)
				n++
			}
		}
	}
	return docs
}

// rbacFiles are the manifests holding credsync's roles.
func rbacFiles(t *testing.T) []string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "config", "rbac", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no config/rbac/*.yaml: %v", err)
	}
	for i, f := range files {
		files[i], _ = filepath.Rel(root, f)
	}
	return append(files, filepath.Join("config", "prometheus", "metrics_reader_role.yaml"))
}

// role is a Role or ClusterRole read from a manifest.
type role struct {
	doc
	rules []rbacv1.PolicyRule
}

func readRoles(t *testing.T) []role {
	t.Helper()
	var roles []role
	for _, d := range readDocs(t, rbacFiles(t)...) {
		switch d.Kind {
		case "ClusterRole":
			var r rbacv1.ClusterRole
			d.decode(t, &r)
			if r.AggregationRule != nil {
				t.Errorf("%s: aggregationRule lets other ClusterRoles widen it", d)
			}
			roles = append(roles, role{d, r.Rules})
		case "Role":
			var r rbacv1.Role
			d.decode(t, &r)
			roles = append(roles, role{d, r.Rules})
		}
	}
	return roles
}

// coversSecrets reports whether rule applies to core Secrets (directly or
// through a wildcard).
func coversSecrets(rule rbacv1.PolicyRule) bool {
	return (slices.Contains(rule.APIGroups, "") || slices.Contains(rule.APIGroups, rbacv1.APIGroupAll)) &&
		(slices.Contains(rule.Resources, "secrets") || slices.Contains(rule.Resources, rbacv1.ResourceAll))
}

// TestManagerRoleReadsSecretsWithGetOnly: the manager reads the Secret a
// provider names, by name. list or watch would hand it every Secret of the
// cluster (a cache of them in its memory); it never writes one.
func TestManagerRoleReadsSecretsWithGetOnly(t *testing.T) {
	var found []role
	for _, r := range readRoles(t) {
		if r.Kind == "ClusterRole" && r.Metadata.Name == managerRole {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		t.Fatalf("config/rbac holds %d ClusterRoles named %s, want 1", len(found), managerRole)
	}
	r := found[0]
	canGet := false
	for i, rule := range r.rules {
		if !coversSecrets(rule) {
			continue
		}
		for _, verb := range rule.Verbs {
			if verb == "get" {
				canGet = canGet || len(rule.ResourceNames) == 0
				continue
			}
			t.Errorf("%s rule %d (resources %v) grants %q on secrets; the manager may only get them", r.doc, i, rule.Resources, verb)
		}
	}
	if !canGet {
		t.Errorf("%s does not grant get on core secrets (for any name): providers could not read their API keys", r.doc)
	}
}

// TestRolesGrantNoWildcards: every role credsync ships names its API
// groups, resources and verbs, and none grants more than get on Secrets.
func TestRolesGrantNoWildcards(t *testing.T) {
	roles := readRoles(t)
	if len(roles) < 2 {
		t.Fatalf("found %d roles in %v; want the manager's and the leader election role at least", len(roles), rbacFiles(t))
	}
	for _, r := range roles {
		if len(r.rules) == 0 {
			t.Errorf("%s has no rules", r.doc)
		}
		for i, rule := range r.rules {
			for field, values := range map[string][]string{
				"verbs": rule.Verbs, "apiGroups": rule.APIGroups, "resources": rule.Resources, "nonResourceURLs": rule.NonResourceURLs,
			} {
				for _, v := range values {
					if strings.Contains(v, "*") {
						t.Errorf("%s rule %d grants the wildcard %s %q", r.doc, i, field, v)
					}
				}
			}
			if coversSecrets(rule) {
				for _, verb := range rule.Verbs {
					if verb != "get" {
						t.Errorf("%s rule %d grants %q on secrets", r.doc, i, verb)
					}
				}
			}
		}
	}
}

// TestManagerRoleBoundToManagerServiceAccount: the role is granted to the
// ServiceAccount the manager's pods run as, and only to it.
func TestManagerRoleBoundToManagerServiceAccount(t *testing.T) {
	deploy := managerDeploymentOf(t)
	var bindings int
	for _, d := range readDocs(t, rbacFiles(t)...) {
		if d.Kind != "ClusterRoleBinding" {
			continue
		}
		var b rbacv1.ClusterRoleBinding
		d.decode(t, &b)
		if b.RoleRef.Kind != "ClusterRole" || b.RoleRef.Name != managerRole {
			continue
		}
		bindings++
		want := rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: deploy.Spec.Template.Spec.ServiceAccountName, Namespace: deploy.Namespace}
		if len(b.Subjects) != 1 || b.Subjects[0] != want {
			t.Errorf("%s binds %s to %+v; want only the manager's ServiceAccount %+v", d, managerRole, b.Subjects, want)
		}
	}
	if bindings != 1 {
		t.Errorf("config/rbac binds %s %d times; want once", managerRole, bindings)
	}
}

func managerDeploymentOf(t *testing.T) *appsv1.Deployment {
	t.Helper()
	var found []*appsv1.Deployment
	for _, d := range readDocs(t, filepath.Join("config", "manager", "manager.yaml")) {
		if d.Kind == "Deployment" && d.Metadata.Name == managerDeployment {
			var deploy appsv1.Deployment
			d.decode(t, &deploy)
			found = append(found, &deploy)
		}
	}
	if len(found) != 1 {
		t.Fatalf("config/manager/manager.yaml holds %d Deployments named %s, want 1", len(found), managerDeployment)
	}
	if found[0].Spec.Template.Spec.ServiceAccountName == "" {
		t.Fatalf("Deployment %s runs as the namespace's default ServiceAccount", managerDeployment)
	}
	return found[0]
}

// TestManagerPodSecurity: the manager's pod passes the restricted Pod
// Security Standard on its own (not only because its namespace enforces
// it) and runs with a read-only root filesystem.
func TestManagerPodSecurity(t *testing.T) {
	deploy := managerDeploymentOf(t)
	pod := deploy.Spec.Template.Spec
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		t.Errorf("manager pod shares a host namespace (hostNetwork %v, hostPID %v, hostIPC %v)", pod.HostNetwork, pod.HostPID, pod.HostIPC)
	}
	podSC := pod.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}
	if len(pod.Containers) == 0 {
		t.Fatal("manager pod has no containers")
	}
	var sawManager bool
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		sawManager = sawManager || c.Name == managerContainer
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		// A container's setting wins over the pod's.
		runAsNonRoot := sc.RunAsNonRoot
		if runAsNonRoot == nil {
			runAsNonRoot = podSC.RunAsNonRoot
		}
		if runAsNonRoot == nil || !*runAsNonRoot {
			t.Errorf("container %s: runAsNonRoot is not true (container or pod securityContext)", c.Name)
		}
		runAsUser := sc.RunAsUser
		if runAsUser == nil {
			runAsUser = podSC.RunAsUser
		}
		if runAsUser != nil && *runAsUser == 0 {
			t.Errorf("container %s: runAsUser is 0 (root)", c.Name)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = podSC.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("container %s: seccompProfile is %+v; want type RuntimeDefault (container or pod securityContext)", c.Name, seccomp)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("container %s: privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container %s: capabilities do not drop ALL", c.Name)
		} else if len(sc.Capabilities.Add) > 0 {
			t.Errorf("container %s: capabilities add %v", c.Name, sc.Capabilities.Add)
		}
	}
	if !sawManager {
		t.Errorf("manager pod has no container named %s", managerContainer)
	}
}

// TestManagerNamespaceEnforcesRestricted: the namespace manager.yaml
// creates enforces the restricted Pod Security Standard.
func TestManagerNamespaceEnforcesRestricted(t *testing.T) {
	deploy := managerDeploymentOf(t)
	for _, d := range readDocs(t, filepath.Join("config", "manager", "manager.yaml")) {
		if d.Kind != "Namespace" || d.Metadata.Name != deploy.Namespace {
			continue
		}
		if got := d.Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != restrictedPodSecurity {
			t.Errorf("namespace %s: pod-security.kubernetes.io/enforce is %q, want %q", d.Metadata.Name, got, restrictedPodSecurity)
		}
		return
	}
	t.Errorf("config/manager/manager.yaml does not create the manager's namespace %q", deploy.Namespace)
}

// TestManagerArgs: leader election on (two replicas during a rollout
// must not both call vendors) and metrics served over HTTPS with
// authentication on :8443, as the ServiceMonitor expects.
func TestManagerArgs(t *testing.T) {
	deploy := managerDeploymentOf(t)
	var c *corev1.Container
	for i := range deploy.Spec.Template.Spec.Containers {
		if deploy.Spec.Template.Spec.Containers[i].Name == managerContainer {
			c = &deploy.Spec.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatalf("Deployment %s has no container named %s", managerDeployment, managerContainer)
	}
	flags := parseFlags(append(slices.Clone(c.Command), c.Args...), "leader-elect", "metrics-secure")
	if v, ok := flags["leader-elect"]; !ok {
		t.Errorf("args %q lack --leader-elect", c.Args)
	} else if on, err := strconv.ParseBool(v); err != nil || !on {
		t.Errorf("args %q set --leader-elect=%s; want it on", c.Args, v)
	}
	if v := flags["metrics-bind-address"]; v != metricsAddress {
		t.Errorf("args %q set --metrics-bind-address to %q; want %s", c.Args, v, metricsAddress)
	}
	if v, ok := flags["metrics-secure"]; ok {
		if on, err := strconv.ParseBool(v); err != nil || !on {
			t.Errorf("args %q set --metrics-secure=%s: metrics would be served over plain HTTP without authentication", c.Args, v)
		}
	}
}

// parseFlags reads command-line flags as Go's flag package does: -name or
// --name, =value or the next argument (bool flags only take =value), the
// last one winning. It maps each flag's name to its value.
func parseFlags(args []string, boolFlags ...string) map[string]string {
	flags := map[string]string{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			break
		}
		if !strings.HasPrefix(arg, "-") {
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
		switch {
		case hasValue:
		case slices.Contains(boolFlags, name):
			value = "true"
		case i+1 < len(args):
			i++
			value = args[i]
		}
		flags[name] = value
	}
	return flags
}
