// Package deploy checks the two ways of installing credsync: kustomize
// (config/default, make deploy) and the Helm chart (charts/credsync). Both
// must render, the API server must accept what they render (envtest's real
// kube-apiserver, server-side dry run), helm lint must pass, and the chart
// must stay in step with config/: the same CRDs, permissions, alert rules
// and manager settings.
//
// kustomize and helm are bin/kustomize and bin/helm, which make kustomize
// and make helm link to the machine's tools cache (building them there once,
// at the versions hack/make/deploy.mk pins); kubectl comes from PATH.
package deploy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/internal/testenv"
)

const (
	// systemNS is the namespace config/default installs into, and the
	// chart's release namespace in these tests.
	systemNS = "credsync-system"
	// release is the Helm release name under which the chart's objects are
	// named as config/default names them.
	release = "credsync"
	chart   = "charts/credsync"
	// allOnValues sets every option of the chart.
	allOnValues = "charts/credsync/ci/all-on-values.yaml"
)

var (
	// root is the repository root; commands run there.
	root string
	// kubeconfig is the path of a kubeconfig for the control plane.
	kubeconfig string
	// skipReason is set when the control plane cannot run here.
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// envtest logs through controller-runtime (e.g. a control plane start it retries).
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	var err error
	if root, err = testenv.RepoRoot(); err != nil {
		return fail(err)
	}
	env, cfg, skip, err := testenv.StartForTests()
	if err != nil {
		return fail(err)
	}
	if skip != "" {
		skipReason = skip
		return m.Run()
	}
	defer func() { _ = env.Stop() }()

	dir, err := os.MkdirTemp("", "credsync-deploy-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	if kubeconfig, err = testenv.WriteKubeconfig(env, dir); err != nil {
		return fail(err)
	}

	// The namespace both installs go to. A server-side dry run creates
	// nothing, so it must exist; Helm does not create it. It warns about
	// Pod Security as well as enforcing it, so that a dry run of a
	// Deployment whose pods the restricted standard would reject prints a
	// warning the tests look for.
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fail(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted",
		"pod-security.kubernetes.io/warn":    "restricted",
	}}}
	if _, err := cs.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		return fail(err)
	}
	return m.Run()
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "deploy:", err)
	return 1
}

// requireEnv skips t when TestMain found no control plane to run.
func requireEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}

// tools gets each of bin/kustomize and bin/helm at most once.
var tools sync.Map // name -> *toolBuild

type toolBuild struct {
	once sync.Once
	path string
	err  error
}

// tool returns the path of bin/<name> (kustomize or helm), after make
// <name> has linked it to the tools cache, building it there when the
// machine has no build of that version yet. When it cannot be had, t fails
// in CI and is skipped elsewhere.
func tool(t *testing.T, name string) string {
	t.Helper()
	mk := testenv.Tool(t, "make", "GNU make")
	v, _ := tools.LoadOrStore(name, &toolBuild{})
	b := v.(*toolBuild)
	b.once.Do(func() { b.path, b.err = makeTool(mk, name) })
	if b.err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s: %v", name, b.err)
		}
		t.Skipf("%s: %v (CI makes this an error)", name, b.err)
	}
	return b.path
}

func makeTool(mk, name string) (string, error) {
	cmd := exec.Command(mk, "-s", "--no-print-directory", name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make %s: %v\n%s", name, err, out)
	}
	return filepath.Join(root, "bin", name), nil
}

// kubectlPath is kubectl on PATH. Without it t fails in CI and is skipped
// elsewhere, as in the controller tests.
func kubectlPath(t *testing.T) string { return testenv.Tool(t, "kubectl", "kubectl v1.32 or newer") }

// kubectl runs kubectl against the test control plane with stdin as its
// input and returns what it printed (stdout and stderr).
func kubectl(t *testing.T, stdin []byte, args ...string) (string, error) {
	t.Helper()
	requireEnv(t)
	cmd := exec.Command(kubectlPath(t), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// output runs name in the repository root and returns its standard
// output; t fails when it fails.
func output(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stderr.Bytes(), stdout.Bytes())
	}
	return stdout.Bytes()
}

// kustomizeBuild renders config/default.
func kustomizeBuild(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	return parse(t, output(t, tool(t, "kustomize"), "build", "config/default"))
}

// helmTemplate renders the chart, CRDs included, as release credsync in
// credsync-system with args (e.g. --set a=b) added.
func helmTemplate(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	return helmTemplateRelease(t, release, args...)
}

// helmTemplateRelease renders the chart as release name.
func helmTemplateRelease(t *testing.T, name string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	base := []string{"template", name, chart, "--namespace", systemNS, "--include-crds"}
	return parse(t, output(t, tool(t, "helm"), append(base, args...)...))
}

// parse splits a multi-document YAML stream into objects, skipping empty
// documents; every object must have an apiVersion, a kind and a name.
func parse(t *testing.T, data []byte) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs
		}
		if err != nil {
			t.Fatalf("split rendered YAML: %v", err)
		}
		js, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("parse rendered YAML: %v\n%s", err, doc)
		}
		if s := string(bytes.TrimSpace(js)); s == "null" || s == "" {
			continue // an empty document
		}
		// UnmarshalJSON keeps integers as int64, as the typed conversions expect.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			t.Fatalf("parse rendered object: %v\n%s", err, doc)
		}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			t.Fatalf("rendered object without apiVersion, kind or name:\n%s", doc)
		}
		objs = append(objs, u)
	}
}

// find returns the object of kind named name, failing t when there is not
// exactly one.
func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			found = append(found, o)
		}
	}
	if len(found) != 1 {
		t.Fatalf("render holds %d %s named %q, want 1; it holds: %s", len(found), kind, name, summary(objs))
	}
	return found[0]
}

// ofKind returns the objects of kind.
func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var found []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			found = append(found, o)
		}
	}
	return found
}

// summary lists objects as kind/name, for failure messages.
func summary(objs []*unstructured.Unstructured) string {
	var s []string
	for _, o := range objs {
		s = append(s, o.GetKind()+"/"+o.GetName())
	}
	return strings.Join(s, ", ")
}

// decode converts u into a typed object, strictly: a field the type does
// not know (a misspelling the API server would drop) fails t.
func decode(t *testing.T, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, into, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
}

// same fails t, showing both as YAML, unless got and want are deeply equal.
func same(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s differs:\n--- got\n%s--- want\n%s", what, toYAML(t, got), toYAML(t, want))
	}
}

func toYAML(t *testing.T, v any) []byte {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// stream writes objects as one multi-document YAML stream.
func stream(t *testing.T, objs []*unstructured.Unstructured) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, o := range objs {
		b.WriteString("---\n")
		b.Write(toYAML(t, o.Object))
	}
	return b.Bytes()
}

// dryRunApply applies objs to the control plane with a server-side dry run
// (admission and validation run, nothing is stored) and fails t unless the
// API server accepts every one of them without a Pod Security warning.
func dryRunApply(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	out, err := kubectl(t, stream(t, objs), "apply", "--dry-run=server", "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply --dry-run=server: %v\n%s", err, out)
	}
	if n := strings.Count(out, "(server dry run)"); n != len(objs) {
		t.Errorf("kubectl apply --dry-run=server accepted %d objects, want %d (%s):\n%s", n, len(objs), summary(objs), out)
	}
	if strings.Contains(out, "PodSecurity") {
		t.Errorf("the restricted Pod Security Standard would reject the manager's pods:\n%s", out)
	}
}
