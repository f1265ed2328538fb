package deploy

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
)

// serviceMonitor is the part of a monitoring.coreos.com/v1 ServiceMonitor
// the chart writes. It is decoded strictly, so a misspelt field fails.
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []smEndpoint         `json:"endpoints"`
	} `json:"spec"`
}

type smEndpoint struct {
	Port            string `json:"port"`
	Path            string `json:"path"`
	Scheme          string `json:"scheme"`
	Interval        string `json:"interval,omitempty"`
	HonorLabels     bool   `json:"honorLabels"`
	BearerTokenFile string `json:"bearerTokenFile,omitempty"`
	TLSConfig       *struct {
		InsecureSkipVerify bool `json:"insecureSkipVerify"`
	} `json:"tlsConfig,omitempty"`
}

// prometheusRule is the part of a monitoring.coreos.com/v1 PrometheusRule
// the chart writes, decoded strictly.
type prometheusRule struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Groups []struct {
			Name  string `json:"name"`
			Rules []struct {
				Alert       string            `json:"alert"`
				Expr        string            `json:"expr"`
				For         string            `json:"for,omitempty"`
				Labels      map[string]string `json:"labels"`
				Annotations map[string]string `json:"annotations"`
			} `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

// chartDefaultObjects are the objects the chart installs with default
// values: config/default's but the namespace (Helm's release namespace is
// made by the user, or by --create-namespace), plus the ClusterRole that
// lets Prometheus read the HTTPS metrics endpoint (config/prometheus has it).
var chartDefaultObjects = append(slices.Clone(defaultObjects[1:]), "ClusterRole/credsync-metrics-reader")

func TestHelmLint(t *testing.T) {
	helm := tool(t, "helm")
	output(t, helm, "lint", "--strict", chart)
	output(t, helm, "lint", "--strict", chart, "-f", allOnValues)
}

// TestHelmDefaultApplies: the chart with default values installs what
// config/default does, under the same names, and the API server accepts it.
func TestHelmDefaultApplies(t *testing.T) {
	objs := helmTemplate(t)
	requireObjects(t, objs, chartDefaultObjects)
	requireNamespaces(t, objs, systemNS)
	dryRunApply(t, objs)
}

// TestHelmAllOptions: with every option set, each reaches the object it
// is for; the monitoring objects are well formed (their CRDs are not
// installed here) and the API server accepts everything else.
func TestHelmAllOptions(t *testing.T) {
	objs := helmTemplate(t, "-f", allOnValues)
	want := append(slices.Clone(chartDefaultObjects), "ServiceMonitor/credsync-metrics", "PrometheusRule/credsync")
	for range allOnSecretNamespaces {
		want = append(want, "Role/credsync-manager-secrets", "RoleBinding/credsync-manager-secrets")
	}
	requireObjects(t, objs, want)
	// The Secret Roles are in their namespaces (TestHelmSecretNamespaces).
	requireNamespaces(t, withoutSecretRoles(objs), systemNS)

	var d appsv1.Deployment
	decode(t, find(t, objs, "Deployment", "credsync-manager"), &d)
	pod := d.Spec.Template.Spec
	c := managerContainer(t, &d)
	for _, want := range []string{
		"--cluster-resource-namespace=credsync-secrets",
		"--max-concurrent-reconciles=32",
		"--metrics-label-allowlist=team,app.kubernetes.io/part-of",
		"--watch-namespaces=team-a,team-b",
		"--zap-log-level=debug", "--kube-api-qps=50", "--kube-api-burst=100",
		"--leader-elect", "--metrics-bind-address=:8443",
	} {
		if !slices.Contains(c.Args, want) {
			t.Errorf("manager args %q lack %s", c.Args, want)
		}
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"replicas", *d.Spec.Replicas, int32(2)},
		{"image", c.Image, "registry.example.com/credsync:v0.1.0-rc.1"},
		{"imagePullPolicy", c.ImagePullPolicy, corev1.PullAlways},
		{"imagePullSecrets", pod.ImagePullSecrets, []corev1.LocalObjectReference{{Name: "registry-credentials"}}},
		{"priorityClassName", pod.PriorityClassName, "platform-critical"},
		{"nodeSelector", pod.NodeSelector, map[string]string{"kubernetes.io/os": "linux"}},
		{"tolerations", len(pod.Tolerations), 1},
		{"affinity", pod.Affinity != nil && pod.Affinity.PodAntiAffinity != nil, true},
		{"pod annotation", d.Spec.Template.Annotations["example.com/owner"], "platform"},
		{"pod label", d.Spec.Template.Labels["team"], "platform"},
		{"cpu limit", c.Resources.Limits.Cpu().String(), "1"},
	}
	for _, ch := range checks {
		same(t, ch.what, ch.got, ch.want)
	}
	if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("Deployment selector %v does not select its pods %v", d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
	}
	if got := find(t, objs, "ServiceAccount", "credsync-manager").GetAnnotations()["example.com/role"]; got != "credsync" {
		t.Errorf("ServiceAccount annotation example.com/role = %q, want credsync", got)
	}

	var sm serviceMonitor
	decode(t, find(t, objs, "ServiceMonitor", "credsync-metrics"), &sm)
	same(t, "ServiceMonitor apiVersion", sm.APIVersion, "monitoring.coreos.com/v1")
	same(t, "ServiceMonitor label release", sm.Metadata.Labels["release"], "kube-prometheus-stack")
	if len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor has %d endpoints, want 1", len(sm.Spec.Endpoints))
	}
	same(t, "ServiceMonitor interval", sm.Spec.Endpoints[0].Interval, "30s")
	requireScrapesService(t, objs, &sm)

	var pr prometheusRule
	decode(t, find(t, objs, "PrometheusRule", "credsync"), &pr)
	same(t, "PrometheusRule apiVersion", pr.APIVersion, "monitoring.coreos.com/v1")
	same(t, "PrometheusRule label release", pr.Metadata.Labels["release"], "kube-prometheus-stack")
	if len(pr.Spec.Groups) == 0 {
		t.Error("PrometheusRule has no rule groups")
	}
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("PrometheusRule group %s has a rule without alert or expr: %+v", g.Name, r)
			}
		}
	}

	createNamespaces(t, allOnSecretNamespaces...)
	dryRunApply(t, withoutMonitoring(objs))
}

// TestHelmToggles: each switch of values.yaml turns off or changes what it
// says, and the result still applies.
func TestHelmToggles(t *testing.T) {
	cases := []struct {
		name, release string
		set           string
		check         func(t *testing.T, objs []*unstructured.Unstructured, c *corev1.Container)
	}{
		{"leader election off", release, "leaderElection.enabled=false",
			func(t *testing.T, objs []*unstructured.Unstructured, c *corev1.Container) {
				if len(ofKind(objs, "Role")) != 0 || len(ofKind(objs, "RoleBinding")) != 0 {
					t.Errorf("leader election off still renders a Role or RoleBinding: %s", summary(objs))
				}
				if slices.Contains(c.Args, "--leader-elect") {
					t.Errorf("leader election off: args %q have --leader-elect", c.Args)
				}
			}},
		{"metrics off", release, "metrics.enabled=false,metrics.serviceMonitor.enabled=true",
			func(t *testing.T, objs []*unstructured.Unstructured, c *corev1.Container) {
				for _, kind := range []string{"Service", "ServiceMonitor"} {
					if len(ofKind(objs, kind)) != 0 {
						t.Errorf("metrics off still renders a %s", kind)
					}
				}
				requireObjects(t, objs, slices.DeleteFunc(slices.Clone(chartDefaultObjects), func(s string) bool {
					return s == "Service/credsync-metrics" || s == "ClusterRole/credsync-metrics-reader"
				}))
				same(t, "ports", c.Ports, []corev1.ContainerPort{{Name: "probes", ContainerPort: 8081}})
				if !slices.Contains(c.Args, "--metrics-bind-address=0") {
					t.Errorf("metrics off: args %q lack --metrics-bind-address=0", c.Args)
				}
			}},
		{"plain HTTP metrics", release, "metrics.secure=false,metrics.port=8080,metrics.serviceMonitor.enabled=true",
			func(t *testing.T, objs []*unstructured.Unstructured, c *corev1.Container) {
				for _, want := range []string{"--metrics-bind-address=:8080", "--metrics-secure=false"} {
					if !slices.Contains(c.Args, want) {
						t.Errorf("args %q lack %s", c.Args, want)
					}
				}
				if len(ofKind(objs, "ClusterRole")) != 1 {
					t.Errorf("plain HTTP metrics: want only the manager's ClusterRole, got %s", summary(ofKind(objs, "ClusterRole")))
				}
				var sm serviceMonitor
				decode(t, find(t, objs, "ServiceMonitor", "credsync-metrics"), &sm)
				requireScrapesService(t, objs, &sm)
				if e := sm.Spec.Endpoints[0]; e.Scheme != "http" || e.TLSConfig != nil || e.BearerTokenFile != "" {
					t.Errorf("plain HTTP metrics: ServiceMonitor endpoint %+v, want scheme http without TLS or token", e)
				}
			}},
		{"another release", "team-x", "",
			func(t *testing.T, objs []*unstructured.Unstructured, _ *corev1.Container) {
				// Cluster-scoped names carry the release, so two releases do not collide.
				for _, o := range objs {
					if o.GetKind() != "CustomResourceDefinition" && !strings.HasPrefix(o.GetName(), "team-x-credsync") {
						t.Errorf("%s %s: name lacks the release prefix team-x-credsync", o.GetKind(), o.GetName())
					}
				}
				var crb rbacv1.ClusterRoleBinding
				decode(t, find(t, objs, "ClusterRoleBinding", "team-x-credsync-manager-rolebinding"), &crb)
				if crb.RoleRef.Name != "team-x-credsync-manager-role" || len(crb.Subjects) != 1 || crb.Subjects[0].Name != "team-x-credsync-manager" {
					t.Errorf("ClusterRoleBinding %+v does not bind team-x-credsync-manager-role to team-x-credsync-manager", crb)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.set != "" {
				args = []string{"--set", tc.set}
			}
			objs := helmTemplateRelease(t, tc.release, args...)
			requireNamespaces(t, objs, systemNS)
			var d appsv1.Deployment
			decode(t, ofKind(objs, "Deployment")[0], &d)
			tc.check(t, objs, managerContainer(t, &d))
			dryRunApply(t, withoutMonitoring(objs))
		})
	}
}

// requireObjects fails t unless objs are exactly want (kind/name).
func requireObjects(t *testing.T, objs []*unstructured.Unstructured, want []string) {
	t.Helper()
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	slices.Sort(got)
	want = slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		t.Errorf("render holds\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// requireNamespaces fails t unless every namespaced object of objs is in
// ns and no cluster-scoped one has a namespace.
func requireNamespaces(t *testing.T, objs []*unstructured.Unstructured, ns string) {
	t.Helper()
	for _, o := range objs {
		want := ns
		switch o.GetKind() {
		case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding":
			want = ""
		}
		if o.GetNamespace() != want {
			t.Errorf("%s %s is in namespace %q, want %q", o.GetKind(), o.GetName(), o.GetNamespace(), want)
		}
	}
}

// requireScrapesService fails t unless sm selects exactly the rendered
// metrics Service and scrapes one of its ports by name.
func requireScrapesService(t *testing.T, objs []*unstructured.Unstructured, sm *serviceMonitor) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		t.Fatalf("ServiceMonitor selector: %v", err)
	}
	var selected []corev1.Service
	for _, o := range ofKind(objs, "Service") {
		if sel.Matches(labels.Set(o.GetLabels())) {
			var s corev1.Service
			decode(t, o, &s)
			selected = append(selected, s)
		}
	}
	if len(selected) != 1 {
		t.Fatalf("ServiceMonitor selector %s matches %d Services, want 1", sel, len(selected))
	}
	for _, e := range sm.Spec.Endpoints {
		if !slices.ContainsFunc(selected[0].Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == e.Port }) {
			t.Errorf("ServiceMonitor scrapes port %q; Service %s has ports %+v", e.Port, selected[0].Name, selected[0].Spec.Ports)
		}
	}
}

// withoutMonitoring drops the Prometheus Operator objects, whose CRDs the
// test control plane does not have.
func withoutMonitoring(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	return slices.DeleteFunc(slices.Clone(objs), func(o *unstructured.Unstructured) bool {
		return strings.HasPrefix(o.GetAPIVersion(), "monitoring.coreos.com/")
	})
}

// managerContainer is the Deployment's container named manager.
func managerContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	for i, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return &d.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("Deployment %s has no container named manager", d.Name)
	return nil
}
