// Package testenv starts a real control plane (kube-apiserver and etcd from
// envtest) with credsync's CRDs installed. Tests, the demo and benchmarks
// share it.
package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Scheme knows Kubernetes' built-in types and credsync's.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}

// RepoRoot finds the repository root (the directory holding go.mod) from
// the working directory upwards.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// assets returns the directory holding kube-apiserver and etcd:
// KUBEBUILDER_ASSETS when set, else what hack/setup-envtest.sh prints (it
// builds the binaries on first use).
func assets(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	var out bytes.Buffer
	cmd := exec.Command("bash", filepath.Join(root, "hack", "setup-envtest.sh"))
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("hack/setup-envtest.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[len(lines)-1], nil
}

// FreeAddr returns a loopback address whose port was free when asked: for
// a manager's metrics or probe endpoint.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Start starts a control plane with the CRDs of config/crd/bases.
func Start() (*envtest.Environment, *rest.Config, error) { return start(true) }

// StartBare starts a control plane without credsync's CRDs: a cluster
// credsync is not installed in.
func StartBare() (*envtest.Environment, *rest.Config, error) { return start(false) }

func start(crds bool) (*envtest.Environment, *rest.Config, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, nil, err
	}
	assets, err := assets(root)
	if err != nil {
		return nil, nil, err
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets, Scheme: Scheme()}
	if crds {
		env.CRDDirectoryPaths = []string{filepath.Join(root, "config", "crd", "bases")}
		env.ErrorIfCRDPathMissing = true
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("start control plane: %w", err)
	}
	return env, cfg, nil
}

// Tool returns the path of the command name on PATH for a test. Without it
// the test is skipped, except in CI (CI set), where .ci/run provides every
// tool and a missing one is an error; hint says where it comes from.
func Tool(t testing.TB, name, hint string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is needed on PATH in CI (%s)", name, hint)
		}
		t.Skipf("%s not on PATH (%s)", name, hint)
	}
	return path
}

// StartForTests starts a control plane for a test binary's TestMain. When
// the envtest binaries are not available it returns a reason to skip the
// tests instead, except in CI (CI set), where that is an error.
func StartForTests() (env *envtest.Environment, cfg *rest.Config, skip string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, nil, "", err
	}
	assets, err := assets(root)
	if err != nil {
		if os.Getenv("CI") != "" {
			return nil, nil, "", err
		}
		return nil, nil, fmt.Sprintf("no envtest assets (set KUBEBUILDER_ASSETS, or CI to make this an error): %v", err), nil
	}
	// Start asks for the assets again: give it the answer.
	if err := os.Setenv("KUBEBUILDER_ASSETS", assets); err != nil {
		return nil, nil, "", err
	}
	env, cfg, err = Start()
	return env, cfg, "", err
}

// WriteKubeconfig writes a kubeconfig for env's control plane into dir,
// readable by its owner only, and returns its path: for kubectl and for
// manager processes.
func WriteKubeconfig(env *envtest.Environment, dir string) (string, error) {
	path := filepath.Join(dir, "kubeconfig")
	return path, os.WriteFile(path, env.KubeConfig, 0o600)
}

var namespaces atomic.Int64

// NewNamespace creates a namespace of the test's own, named after it, with c.
func NewNamespace(t testing.TB, c client.Client) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", namespaces.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	return name
}

// ProviderSecret is a Secret a provider may read: labelled
// credsync.io/provider-secret=true, holding data.
func ProviderSecret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{v1alpha1.ProviderSecretLabel: "true"}},
		Data:       map[string][]byte{},
	}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}
