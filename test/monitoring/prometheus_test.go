// Package monitoring checks the monitoring and integration manifests under
// config/ against what the operator exports and deploys.
//
// This file covers config/prometheus: the alert rules pass promtool's check
// and unit tests (config/prometheus/rules_test.yaml), every alert has a
// runbook in docs/alerts.md, and the ServiceMonitor scrapes the Service that
// config/manager deploys.
package monitoring

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/internal/testenv"
)

const promRunbookBase = "https://github.com/credsync/credsync/blob/main/docs/alerts.md#"

// promRule is the part of a monitoring.coreos.com/v1 PrometheusRule
// these tests read. It is decoded strictly, so a misspelt field fails.
type promRule struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   promObjectMeta `json:"metadata"`
	Spec       struct {
		Groups []struct {
			Name  string          `json:"name"`
			Rules []promAlertRule `json:"rules"`
		} `json:"groups"`
	} `json:"spec"`
}

type promAlertRule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type promObjectMeta struct {
	Name      string            `json:"name"`
	Namespace string            `json:"namespace"`
	Labels    map[string]string `json:"labels"`
}

// promService is the part of a v1 Service these tests read.
type promService struct {
	Metadata promObjectMeta `json:"metadata"`
	Spec     struct {
		Ports []promServicePort `json:"ports"`
	} `json:"spec"`
}

type promServicePort struct {
	Name string `json:"name"`
	Port int    `json:"port"`
}

type promServiceMonitor struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   promObjectMeta `json:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		NamespaceSelector map[string]any `json:"namespaceSelector"`
		Endpoints         []struct {
			Port            string         `json:"port"`
			Path            string         `json:"path"`
			Scheme          string         `json:"scheme"`
			HonorLabels     bool           `json:"honorLabels"`
			BearerTokenFile string         `json:"bearerTokenFile"`
			TLSConfig       map[string]any `json:"tlsConfig"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// promRuleTests is the part of a promtool unit test file these tests read.
type promRuleTests struct {
	RuleFiles []string `json:"rule_files"`
	Tests     []struct {
		Name           string `json:"name"`
		AlertRuleTests []struct {
			Alertname string `json:"alertname"`
			ExpAlerts []any  `json:"exp_alerts"`
		} `json:"alert_rule_test"`
	} `json:"tests"`
}

func promLoadRules(t *testing.T) promRule {
	t.Helper()
	var pr promRule
	if err := yaml.UnmarshalStrict(readRepoFile(t, "config", "prometheus", "rules.yaml"), &pr); err != nil {
		t.Fatalf("config/prometheus/rules.yaml: %v", err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Fatalf("config/prometheus/rules.yaml is %s %s, want monitoring.coreos.com/v1 PrometheusRule", pr.APIVersion, pr.Kind)
	}
	return pr
}

func promAlerts(pr promRule) []promAlertRule {
	var out []promAlertRule
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

// promtoolPath returns the path of promtool, skipping the test when it is not
// installed, except in CI (CI set), where .ci/run installs it.
func promtoolPath(t *testing.T) string {
	return testenv.Tool(t, "promtool", "Debian package prometheus; .ci/run installs it")
}

// TestPromtool writes the PrometheusRule's spec as a plain rule file beside a
// copy of rules_test.yaml and runs promtool check rules and test rules on it.
func TestPromtool(t *testing.T) {
	bin := promtoolPath(t)

	var doc map[string]any
	if err := yaml.Unmarshal(readRepoFile(t, "config", "prometheus", "rules.yaml"), &doc); err != nil {
		t.Fatal(err)
	}
	spec, ok := doc["spec"]
	if !ok {
		t.Fatal("config/prometheus/rules.yaml has no spec")
	}
	rules, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := readRepoFile(t, "config", "prometheus", "rules_test.yaml")
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{
		{"check", "rules", "rules.yaml"},
		{"test", "rules", "rules_test.yaml"},
	} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), bytes.TrimSpace(out))
	}
}

// TestEveryAlertIsTested asserts that rules_test.yaml has, for every alert,
// a case where it fires and one where it does not.
func TestEveryAlertIsTested(t *testing.T) {
	var rt promRuleTests
	// Not strict: promtool checks the fields this test does not read.
	if err := yaml.Unmarshal(readRepoFile(t, "config", "prometheus", "rules_test.yaml"), &rt); err != nil {
		t.Fatalf("config/prometheus/rules_test.yaml: %v", err)
	}
	if !slices.Equal(rt.RuleFiles, []string{"rules.yaml"}) {
		t.Errorf("rules_test.yaml: rule_files = %v, want [rules.yaml] (TestPromtool writes the rules there)", rt.RuleFiles)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range rt.Tests {
		for _, at := range tc.AlertRuleTests {
			if len(at.ExpAlerts) > 0 {
				firing[at.Alertname] = true
			} else {
				quiet[at.Alertname] = true
			}
		}
	}
	known := map[string]bool{}
	for _, a := range promAlerts(promLoadRules(t)) {
		known[a.Alert] = true
		if !firing[a.Alert] {
			t.Errorf("rules_test.yaml has no case where %s fires", a.Alert)
		}
		if !quiet[a.Alert] {
			t.Errorf("rules_test.yaml has no case where %s does not fire", a.Alert)
		}
	}
	for name := range firing {
		if !known[name] {
			t.Errorf("rules_test.yaml tests alert %s, which rules.yaml does not define", name)
		}
	}
}

// TestAlertsHaveRunbooks asserts the labels and annotations Alertmanager
// routing and the on-call rely on, and that docs/alerts.md has a section for
// every alert, so rules and runbooks cannot drift apart.
func TestAlertsHaveRunbooks(t *testing.T) {
	all := promAlerts(promLoadRules(t))
	if len(all) == 0 {
		t.Fatal("config/prometheus/rules.yaml defines no alerts")
	}

	docs := string(readRepoFile(t, "docs", "alerts.md"))
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*$`).FindAllStringSubmatch(docs, -1) {
		headings[m[1]] = true
	}

	seen := map[string]bool{}
	for _, a := range all {
		if seen[a.Alert] {
			t.Errorf("alert %s is defined twice", a.Alert)
		}
		seen[a.Alert] = true
		if s := a.Labels["severity"]; s != "info" && s != "warning" && s != "critical" {
			t.Errorf("alert %s: labels.severity = %q, want info, warning or critical", a.Alert, s)
		}
		for _, key := range []string{"summary", "description"} {
			if strings.TrimSpace(a.Annotations[key]) == "" {
				t.Errorf("alert %s: annotations.%s is empty", a.Alert, key)
			}
		}
		if !strings.Contains(a.Annotations["description"], "$labels") {
			t.Errorf("alert %s: annotations.description does not use $labels", a.Alert)
		}
		if want := promRunbookBase + strings.ToLower(a.Alert); a.Annotations["runbook_url"] != want {
			t.Errorf("alert %s: annotations.runbook_url = %q, want %q", a.Alert, a.Annotations["runbook_url"], want)
		}
		if !headings[a.Alert] {
			t.Errorf("docs/alerts.md has no heading %q (the runbook_url anchor #%s)", a.Alert, strings.ToLower(a.Alert))
		}
	}
}

// promSplitDocuments splits a multi-document YAML file.
func promSplitDocuments(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(data), -1) {
		if strings.TrimSpace(d) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// TestServiceMonitorTargetsMetricsService asserts that the ServiceMonitor
// selects the metrics Service of config/manager/manager.yaml, in its
// namespace, on its port name, with the scheme the manager serves.
func TestServiceMonitorTargetsMetricsService(t *testing.T) {
	var sm promServiceMonitor
	if err := yaml.UnmarshalStrict(readRepoFile(t, "config", "prometheus", "monitor.yaml"), &sm); err != nil {
		t.Fatalf("config/prometheus/monitor.yaml: %v", err)
	}
	if sm.APIVersion != "monitoring.coreos.com/v1" || sm.Kind != "ServiceMonitor" {
		t.Fatalf("config/prometheus/monitor.yaml is %s %s, want monitoring.coreos.com/v1 ServiceMonitor", sm.APIVersion, sm.Kind)
	}
	if len(sm.Spec.Selector.MatchLabels) == 0 {
		t.Fatal("ServiceMonitor selects every Service: spec.selector.matchLabels is empty")
	}

	var services []promService
	var managerArgs []string
	for _, doc := range promSplitDocuments(readRepoFile(t, "config", "manager", "manager.yaml")) {
		var typ struct {
			Kind string `json:"kind"`
		}
		if err := yaml.Unmarshal(doc, &typ); err != nil {
			t.Fatalf("config/manager/manager.yaml: %v", err)
		}
		switch typ.Kind {
		case "Service":
			var svc promService
			if err := yaml.Unmarshal(doc, &svc); err != nil {
				t.Fatalf("config/manager/manager.yaml: %v", err)
			}
			if promLabelsMatch(sm.Spec.Selector.MatchLabels, svc.Metadata.Labels) {
				services = append(services, svc)
			}
		case "Deployment":
			managerArgs = append(managerArgs, promDeploymentArgs(t, doc)...)
		}
	}
	if len(services) != 1 {
		t.Fatalf("ServiceMonitor selector %v matches %d Services in config/manager/manager.yaml, want 1", sm.Spec.Selector.MatchLabels, len(services))
	}
	svc := services[0]
	if len(sm.Spec.NamespaceSelector) == 0 && sm.Metadata.Namespace != svc.Metadata.Namespace {
		t.Errorf("ServiceMonitor is in namespace %q, the Service %s in %q", sm.Metadata.Namespace, svc.Metadata.Name, svc.Metadata.Namespace)
	}

	wantScheme := "https"
	if slices.Contains(managerArgs, "--metrics-secure=false") {
		wantScheme = "http"
	}
	if len(sm.Spec.Endpoints) == 0 {
		t.Fatal("ServiceMonitor has no endpoints")
	}
	for _, ep := range sm.Spec.Endpoints {
		if !slices.ContainsFunc(svc.Spec.Ports, func(p promServicePort) bool { return p.Name == ep.Port }) {
			t.Errorf("ServiceMonitor endpoint port %q is not a port name of Service %s (%v)", ep.Port, svc.Metadata.Name, svc.Spec.Ports)
		}
		if ep.Scheme != wantScheme {
			t.Errorf("ServiceMonitor endpoint scheme = %q, want %q (manager args %v)", ep.Scheme, wantScheme, managerArgs)
		}
		if ep.Path != "" && ep.Path != "/metrics" {
			t.Errorf("ServiceMonitor endpoint path = %q, want /metrics", ep.Path)
		}
		if !ep.HonorLabels {
			t.Error("ServiceMonitor endpoint needs honorLabels: true, or the credential series' namespace label becomes exported_namespace")
		}
		if wantScheme == "https" && ep.BearerTokenFile == "" {
			t.Error("ServiceMonitor endpoint has no bearerTokenFile: the manager authenticates scrapes")
		}
	}
}

// promDeploymentArgs returns the args of every container of a Deployment.
func promDeploymentArgs(t *testing.T, doc []byte) []string {
	t.Helper()
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args []string `json:"args"`
					} `json:"containers"`
				} `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(doc, &d); err != nil {
		t.Fatalf("config/manager/manager.yaml: %v", err)
	}
	var args []string
	for _, c := range d.Spec.Template.Spec.Containers {
		args = append(args, c.Args...)
	}
	return args
}

// promLabelsMatch reports whether labels has every key and value of selector.
func promLabelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// TestPrometheusKustomization asserts that config/prometheus lists its manifests and
// stays out of config/default (its CRDs may not exist in a cluster).
func TestPrometheusKustomization(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "config", "prometheus", "kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"monitor.yaml", "rules.yaml"} {
		if !slices.Contains(k.Resources, want) {
			t.Errorf("config/prometheus/kustomization.yaml does not list %s", want)
		}
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(root, "config", "prometheus", r)); err != nil {
			t.Errorf("config/prometheus/kustomization.yaml: %v", err)
		}
	}
	if slices.Contains(k.Resources, "rules_test.yaml") {
		t.Error("config/prometheus/kustomization.yaml lists rules_test.yaml, which is not a Kubernetes object")
	}
	var d struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "config", "default", "kustomization.yaml"), &d); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(d.Resources, "../prometheus") {
		t.Error("config/default includes ../prometheus: the monitoring.coreos.com CRDs may not exist; users add it themselves")
	}
}
