// Command demo shows credsync at work on this machine alone: a local
// control plane (envtest's kube-apiserver and etcd), fake vendor APIs over
// HTTPS on loopback holding the credentials config/samples name, and the
// real manager binary. It applies config/samples with kubectl, waits for
// the operator, prints what `kubectl get` shows, and keeps everything up
// for you to explore until Ctrl-C, which stops all of it and removes its
// files. With --once it checks the result and exits instead.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/samples"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

func main() {
	manager := flag.String("manager", "bin/manager", "path of the manager binary")
	once := flag.Bool("once", false, "check the result and exit instead of waiting for Ctrl-C")
	timeout := flag.Duration("timeout", 90*time.Second, "how long to wait for every RemoteCredential to get a Ready condition")
	buildPlugin := flag.String("build-plugin", "", "a shell command that builds the kubectl plugin, run while the demo starts (make demo: make build-plugin)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	pluginBuilt := startPluginBuild(ctx, *buildPlugin)
	err := run(ctx, *manager, *once, *timeout, pluginBuilt)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// startPluginBuild runs command (none: nothing to build) and returns what
// waits for it: its error, with its output.
func startPluginBuild(ctx context.Context, command string) func() error {
	if command == "" {
		return func() error { return nil }
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return func() error { return fmt.Errorf("%s: %w", command, err) }
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return func() error {
		if err := <-done; err != nil {
			return fmt.Errorf("%s: %w\n%s", command, err, out.String())
		}
		return nil
	}
}

func run(ctx context.Context, manager string, once bool, timeout time.Duration, pluginBuilt func() error) (err error) {
	root, err := testenv.RepoRoot()
	if err != nil {
		return err
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		return fmt.Errorf("kubectl is needed on PATH: %w", err)
	}
	dir, err := os.MkdirTemp("", "credsync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("starting a local control plane (kube-apiserver + etcd)")
	env, cfg, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { step("stopping the control plane"); _ = env.Stop() }()
	kubeconfig, err := testenv.WriteKubeconfig(env, dir)
	if err != nil {
		return err
	}
	k8s, err := client.New(cfg, client.Options{Scheme: testenv.Scheme()})
	if err != nil {
		return err
	}

	step("starting fake vendor APIs on loopback")
	fakes := samples.StartFakes(time.Now(), 0)
	defer func() {
		for _, f := range fakes {
			f.Close()
		}
	}()
	for _, f := range fakes {
		fmt.Printf("    %-13s %s\n", f.Block, f.URL)
	}

	logPath := filepath.Join(dir, "manager.log")
	step("starting the manager: " + manager)
	mgr, err := startManager(manager, kubeconfig, logPath)
	if err != nil {
		return err
	}
	defer func() {
		step("stopping the manager")
		_ = mgr.Process.Signal(syscall.SIGTERM)
		_ = mgr.Wait()
		if err != nil {
			printTail(logPath)
		}
	}()

	step("applying config/samples with kubectl")
	docs, err := samples.Render(filepath.Join(root, "config", "samples"), samples.Endpoints(fakes))
	if err != nil {
		return err
	}
	if err := kubectlRun(ctx, kubectl, kubeconfig, docs, os.Stdout, "create", "namespace", "credsync-system"); err != nil {
		return err
	}
	if err := kubectlRun(ctx, kubectl, kubeconfig, docs, os.Stdout, "apply", "-f", "-"); err != nil {
		return err
	}

	step("waiting for the operator to sync every RemoteCredential and inventory the providers")
	list, err := waitSynced(ctx, k8s, timeout)
	if err != nil {
		return err
	}
	if err := waitInventoried(ctx, k8s, timeout); err != nil {
		return err
	}
	fmt.Println()
	_ = kubectlRun(ctx, kubectl, kubeconfig, nil, os.Stdout, "get", "credentialproviders,clustercredentialproviders", "-A")
	fmt.Println()
	_ = kubectlRun(ctx, kubectl, kubeconfig, nil, os.Stdout, "get", "remotecredentials", "-o", "wide")
	fmt.Println()
	if err := check(list); err != nil {
		return err
	}
	bin, err := filepath.Abs(filepath.Dir(manager))
	if err != nil {
		return err
	}
	step("the kubectl plugin (" + filepath.Join(bin, "kubectl-credsync") + "): kubectl credsync expiring -A")
	if err := pluginBuilt(); err != nil {
		return err
	}
	if err := plugin(ctx, kubectl, kubeconfig, bin, "expiring", "-A"); err != nil {
		return err
	}
	fmt.Println()
	step("kubectl credsync unused -A: the keys nobody used for 90 days (exit status 1: some were found)")
	if err := plugin(ctx, kubectl, kubeconfig, bin, "unused", "-A"); !isExit(err, 1) {
		return fmt.Errorf("kubectl credsync unused -A: %v, want exit status 1 (gitlab-old-export is unused)", err)
	}
	fmt.Println()
	if once {
		step("demo check passed")
		return nil
	}
	fmt.Printf(`The control plane, fake vendors and manager keep running. Explore with:

    export KUBECONFIG=%s
    export PATH=%s:$PATH                         # the kubectl plugin: kubectl credsync --help
    kubectl credsync expiring -A                 # what expires within 30 days, and who owns it
    kubectl credsync unused -A                   # the keys nobody used for 90 days, oldest first
    kubectl credsync status retired-pagerduty-key  # why it is red, and what to do
    kubectl credsync sync github-token --wait    # sync one now and print the outcome
    kubectl credsync inventory tines-prod        # the Tines credentials nobody declared
    kubectl credsync inventory tines-prod --adopt -o yaml   # ... as manifests to commit
    kubectl get credsync -A
    kubectl get remotecredential slack-webhook -o yaml

Manager log: %s
Press Ctrl-C to stop everything and remove these files.
`, kubeconfig, bin, logPath)
	<-ctx.Done()
	fmt.Println()
	return nil
}

func step(msg string) { fmt.Printf("==> %s\n", msg) }

func startManager(path, kubeconfig, logPath string) (*exec.Cmd, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The fake vendors listen on loopback, which the manager's default
	// destination rules refuse: allow exactly that.
	args := append([]string{
		"--kubeconfig", kubeconfig,
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "0",
		"--cluster-resource-namespace", "credsync-system",
	}, vendortest.LoopbackFlags...)
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start manager (run `make build` first): %w", err)
	}
	return cmd, nil
}

func printTail(logPath string) {
	b, err := os.ReadFile(logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	fmt.Fprintln(os.Stderr, "last lines of the manager log:")
	for _, l := range lines {
		fmt.Fprintln(os.Stderr, "    "+l)
	}
}

// plugin runs kubectl credsync args, the plugin found on PATH in bin.
func plugin(ctx context.Context, kubectl, kubeconfig, bin string, args ...string) error {
	cmd := exec.CommandContext(ctx, kubectl, append(append([]string{"credsync"}, args...), "--kubeconfig", kubeconfig)...)
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl credsync %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// isExit reports whether err is a command's exit with status code.
func isExit(err error, code int) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit) && exit.ExitCode() == code
}

func kubectlRun(ctx context.Context, kubectl, kubeconfig string, stdin []byte, out *os.File, args ...string) error {
	cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = out, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), err)
	}
	return nil
}

// waitSynced waits until every RemoteCredential has a Ready condition for
// its current generation.
func waitSynced(ctx context.Context, k8s client.Client, timeout time.Duration) (*v1alpha1.RemoteCredentialList, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		list := &v1alpha1.RemoteCredentialList{}
		if err := k8s.List(ctx, list); err != nil {
			return nil, err
		}
		pending := 0
		for _, rc := range list.Items {
			c := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady)
			if c == nil || rc.Status.ObservedGeneration != rc.Generation || c.Reason == v1alpha1.ReasonProviderNotReady {
				pending++
			}
		}
		if len(list.Items) > 0 && pending == 0 {
			return list, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%d of %d RemoteCredentials not synced in time", pending, len(list.Items))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// waitInventoried waits until every sample provider with inventory on
// counts what its fake data makes true (samples.Inventory).
func waitInventoried(ctx context.Context, k8s client.Client, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for name, want := range samples.Inventory {
		for {
			p := &v1alpha1.CredentialProvider{}
			if err := k8s.Get(ctx, client.ObjectKey{Namespace: "default", Name: name}, p); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
			if inv := p.Status.Inventory; inv != nil && inv.Total == want.Total && inv.Managed == want.Managed && inv.Unmanaged == want.Unmanaged {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("provider %s: inventory %+v, want %d total, %d managed, %d unmanaged",
					name, p.Status.Inventory, want.Total, want.Managed, want.Unmanaged)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

// check compares each sample's Ready condition with what its fake data
// makes true.
func check(list *v1alpha1.RemoteCredentialList) error {
	var errs []error
	for _, rc := range list.Items {
		want, ok := samples.Expected[rc.Name]
		if !ok {
			continue
		}
		c := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady)
		if c.Reason != want {
			errs = append(errs, fmt.Errorf("%s: Ready reason %s (%s), want %s", rc.Name, c.Reason, c.Message, want))
		}
		if want == v1alpha1.ReasonSynced && c.Status != metav1.ConditionTrue {
			errs = append(errs, fmt.Errorf("%s: not Ready", rc.Name))
		}
		if unused := meta.IsStatusConditionTrue(rc.Status.Conditions, v1alpha1.ConditionUnused); unused != samples.Unused[rc.Name] {
			errs = append(errs, fmt.Errorf("%s: Unused %v, want %v", rc.Name, unused, samples.Unused[rc.Name]))
		}
	}
	return errors.Join(errs...)
}
