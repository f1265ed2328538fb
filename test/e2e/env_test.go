// Package e2e runs the real manager binary, as separate processes, against
// a real control plane (envtest's kube-apiserver and etcd) and fake vendor
// APIs on loopback. Every test here starts its own managers and they watch
// the whole cluster, so tests in this package must not run in parallel.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

const (
	// systemNS is the managers' --cluster-resource-namespace (the default)
	// and the namespace of their leader election Lease.
	systemNS = "credsync-system"
	// leaseName is the manager's LeaderElectionID.
	leaseName = "credsync.credsync.io"
	tinesKey  = "e2e-tines-api-key-canary-7f3a"
)

var (
	k8s client.Client
	// kubeconfig is the path of a kubeconfig for the control plane.
	kubeconfig string
	// apiServer is the control plane's URL (https://127.0.0.1:<port>).
	apiServer string
	// managerBin is the manager binary built from this checkout.
	managerBin string
	tinesFake  *tinestest.Server
	// skipReason is set when the control plane cannot run here.
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	// envtest logs through controller-runtime (e.g. a control plane start it retries).
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	root, err := testenv.RepoRoot()
	if err != nil {
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

	dir, err := os.MkdirTemp("", "credsync-e2e-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	managerBin = filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", managerBin, "github.com/credsync/credsync")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fail(fmt.Errorf("build the manager: %w", err))
	}

	apiServer = cfg.Host
	if kubeconfig, err = testenv.WriteKubeconfig(env, dir); err != nil {
		return fail(err)
	}
	k8s, err = client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return fail(err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNS}}
	if err := k8s.Create(context.Background(), ns); err != nil {
		return fail(err)
	}

	tinesFake = tinestest.NewServer(tinesKey)
	defer tinesFake.Close()
	return m.Run()
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "e2e:", err)
	return 1
}

// requireEnv skips t when TestMain found no control plane to run.
func requireEnv(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
