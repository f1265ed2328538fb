package deploy

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// The chart copies parts of config/ (make helm-sync) and writes the rest
// again as templates. These tests fail when the two drift apart.

// TestChartCRDsMatchConfig: the chart's crds/ are byte-identical copies of
// config/crd/bases (make manifests, then make helm-sync).
func TestChartCRDsMatchConfig(t *testing.T) {
	want := yamlFiles(t, filepath.Join(root, "config", "crd", "bases"))
	got := yamlFiles(t, filepath.Join(root, chart, "crds"))
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Fatalf("charts/credsync/crds holds %v, config/crd/bases %v: run make helm-sync", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	for name, data := range want {
		if !bytes.Equal(got[name], data) {
			t.Errorf("charts/credsync/crds/%s differs from config/crd/bases/%s: run make helm-sync", name, name)
		}
	}
}

// TestChartRBACMatchesConfig: the chart grants exactly the permissions of
// config/: the manager's ClusterRole (generated from the +kubebuilder:rbac
// markers), the leader election Role and the metrics reader ClusterRole.
func TestChartRBACMatchesConfig(t *testing.T) {
	chartObjs := helmTemplate(t)
	configObjs := kustomizeBuild(t)
	configObjs = append(configObjs, parse(t, readFile(t, "config", "prometheus", "metrics_reader_role.yaml"))...)
	for _, r := range []struct{ kind, name string }{
		{"ClusterRole", "credsync-manager-role"},
		{"Role", "credsync-leader-election-role"},
		{"ClusterRole", "credsync-metrics-reader"},
	} {
		same(t, r.kind+" "+r.name+" rules (charts/credsync/templates against config/)",
			rules(t, find(t, chartObjs, r.kind, r.name)), rules(t, find(t, configObjs, r.kind, r.name)))
	}
	// Both bind the roles to the ServiceAccount the manager runs as.
	for _, objs := range [][]*unstructured.Unstructured{chartObjs, configObjs} {
		var d appsv1.Deployment
		decode(t, find(t, objs, "Deployment", "credsync-manager"), &d)
		sa := d.Spec.Template.Spec.ServiceAccountName
		find(t, objs, "ServiceAccount", sa)
		for _, b := range []struct{ kind, name string }{
			{"ClusterRoleBinding", "credsync-manager-rolebinding"},
			{"RoleBinding", "credsync-leader-election-rolebinding"},
		} {
			var binding rbacv1.ClusterRoleBinding // a RoleBinding's fields are the same
			decode(t, find(t, objs, b.kind, b.name), &binding)
			want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: systemNS}}
			same(t, b.kind+" "+b.name+" subjects", binding.Subjects, want)
		}
	}
}

// TestChartManagerMatchesConfig: with default values the chart runs the
// manager as config/default does: the same flags, ports, probes, security
// settings and resources, and a metrics Service with the same ports.
func TestChartManagerMatchesConfig(t *testing.T) {
	chartObjs := helmTemplate(t)
	configObjs := kustomizeBuild(t)

	var hd, kd appsv1.Deployment
	decode(t, find(t, chartObjs, "Deployment", "credsync-manager"), &hd)
	decode(t, find(t, configObjs, "Deployment", "credsync-manager"), &kd)
	hc, kc := managerContainer(t, &hd), managerContainer(t, &kd)
	hp, kp := hd.Spec.Template.Spec, kd.Spec.Template.Spec

	same(t, "manager args (as a set)", slices.Sorted(slices.Values(hc.Args)), slices.Sorted(slices.Values(kc.Args)))
	same(t, "manager command", hc.Command, kc.Command)
	same(t, "container names", containerNames(hp), containerNames(kp))
	same(t, "ports", hc.Ports, kc.Ports)
	same(t, "livenessProbe", hc.LivenessProbe, kc.LivenessProbe)
	same(t, "readinessProbe", hc.ReadinessProbe, kc.ReadinessProbe)
	same(t, "container securityContext", hc.SecurityContext, kc.SecurityContext)
	same(t, "pod securityContext", hp.SecurityContext, kp.SecurityContext)
	same(t, "resources", hc.Resources, kc.Resources)
	same(t, "replicas", hd.Spec.Replicas, kd.Spec.Replicas)
	same(t, "terminationGracePeriodSeconds", hp.TerminationGracePeriodSeconds, kp.TerminationGracePeriodSeconds)
	same(t, "serviceAccountName", hp.ServiceAccountName, kp.ServiceAccountName)
	same(t, "pod annotations", hd.Spec.Template.Annotations, kd.Spec.Template.Annotations)
	same(t, "image repository", imageRepository(hc.Image), imageRepository(kc.Image))

	for name, objs := range map[string][]*unstructured.Unstructured{"chart": chartObjs, "config/default": configObjs} {
		var d appsv1.Deployment
		var s corev1.Service
		decode(t, find(t, objs, "Deployment", "credsync-manager"), &d)
		decode(t, find(t, objs, "Service", "credsync-metrics"), &s)
		pods := labels.Set(d.Spec.Template.Labels)
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(pods) {
			t.Errorf("%s: Deployment selector %v does not select its pods %v", name, d.Spec.Selector.MatchLabels, pods)
		}
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(pods) {
			t.Errorf("%s: metrics Service selector %v does not select the manager's pods %v", name, s.Spec.Selector, pods)
		}
	}
	var hs, ks corev1.Service
	decode(t, find(t, chartObjs, "Service", "credsync-metrics"), &hs)
	decode(t, find(t, configObjs, "Service", "credsync-metrics"), &ks)
	same(t, "metrics Service ports", hs.Spec.Ports, ks.Spec.Ports)
}

// TestChartMonitoringMatchesConfig: the chart's PrometheusRule holds the
// rule groups of config/prometheus/rules.yaml (compared after YAML parsing,
// so formatting may differ) and its ServiceMonitor scrapes as
// config/prometheus/monitor.yaml does.
func TestChartMonitoringMatchesConfig(t *testing.T) {
	chartObjs := helmTemplate(t, "--set", "prometheusRule.enabled=true,metrics.serviceMonitor.enabled=true")
	configRule := parse(t, readFile(t, "config", "prometheus", "rules.yaml"))
	configMonitor := parse(t, readFile(t, "config", "prometheus", "monitor.yaml"))

	want, _, _ := unstructured.NestedFieldNoCopy(find(t, configRule, "PrometheusRule", "credsync").Object, "spec")
	got, _, _ := unstructured.NestedFieldNoCopy(find(t, chartObjs, "PrometheusRule", "credsync").Object, "spec")
	if want == nil {
		t.Fatal("config/prometheus/rules.yaml has no spec")
	}
	same(t, "PrometheusRule spec (charts/credsync/files/prometheus-rules.yaml against config/prometheus/rules.yaml; make helm-sync)", got, want)

	var hm, km serviceMonitor
	decode(t, find(t, chartObjs, "ServiceMonitor", "credsync-metrics"), &hm)
	decode(t, find(t, configMonitor, "ServiceMonitor", "credsync-metrics"), &km)
	same(t, "ServiceMonitor endpoints", hm.Spec.Endpoints, km.Spec.Endpoints)
	requireScrapesService(t, chartObjs, &hm)
}

// rules are the rules of a Role or ClusterRole.
func rules(t *testing.T, u *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	var r rbacv1.ClusterRole // a Role's fields are a subset of a ClusterRole's
	decode(t, u, &r)
	return r.Rules
}

func containerNames(pod corev1.PodSpec) []string {
	var names []string
	for _, c := range append(slices.Clone(pod.InitContainers), pod.Containers...) {
		names = append(names, c.Name)
	}
	return names
}

// imageRepository is an image reference without its tag or digest.
func imageRepository(image string) string {
	image, _, _ = strings.Cut(image, "@")
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		image = image[:i]
	}
	return image
}

// yamlFiles reads the *.yaml files of dir by name.
func yamlFiles(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(p)] = data
	}
	if len(files) == 0 {
		t.Fatalf("no YAML files in %s", dir)
	}
	return files
}

// readFile reads a file of the repository.
func readFile(t *testing.T, parts ...string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(append([]string{root}, parts...)...))
	if err != nil {
		t.Fatal(err)
	}
	return data
}
