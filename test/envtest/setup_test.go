// Package envtest_test checks hack/setup-envtest.sh: that kube-apiserver and
// etcd built from Go modules use exactly the module versions kubernetes'
// own go.mod requires, and that the download step gives up fast when it
// cannot download.
package envtest_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// script is hack/setup-envtest.sh (go test runs in this package's directory).
func script(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("..", "..", "hack", "setup-envtest.sh"))
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// run runs the script with env added to the environment, without
// KUBEBUILDER_ASSETS when noAssets, and returns its stdout and stderr.
func run(ctx context.Context, t *testing.T, noAssets bool, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, "bash", script(t))
	for _, kv := range os.Environ() {
		if noAssets && strings.HasPrefix(kv, "KUBEBUILDER_ASSETS=") {
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// Killing bash leaves its children (go run, setup-envtest) holding the
	// pipes: do not wait for them for ever.
	cmd.WaitDelay = 10 * time.Second
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// lastLine is the script's answer: the last line of its stdout.
func lastLine(stdout string) string {
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	return lines[len(lines)-1]
}

// requires parses a go.mod into module path → version of its requires
// (direct and indirect), and returns the modules it replaces with a local
// directory (kubernetes' staging modules).
func requires(t *testing.T, gomod []byte) (req map[string]string, local map[string]bool) {
	t.Helper()
	f, err := modfile.Parse("kubernetes.go.mod", gomod, nil)
	if err != nil {
		t.Fatal(err)
	}
	req, local = map[string]string{}, map[string]bool{}
	for _, r := range f.Require {
		req[r.Mod.Path] = r.Mod.Version
	}
	for _, r := range f.Replace {
		if modfile.IsDirectoryPath(r.New.Path) {
			local[r.Old.Path] = true
		}
	}
	return req, local
}

// TestBuildPinnedToKubernetesGoMod checks that every module kubernetes'
// go.mod requires goes into the fallback build at exactly that version, each
// staging module at its published version, or at the newer version
// credsync's own go.mod selects (so that the packages both build compile
// once): in the build the script plans
// (CREDSYNC_ENVTEST_PLAN_ONLY, into an empty cache, whatever the real cache
// holds; always in CI, elsewhere when the modules are already there), and
// in the assets the tests use when the script built them.
func TestBuildPinnedToKubernetesGoMod(t *testing.T) {
	t.Run("plan", func(t *testing.T) {
		if os.Getenv("CI") == "" && !haveKubernetesModules(t) {
			t.Skip("the module cache holds no k8s.io/kubernetes: planning would download ~1 GB of modules (CI does it)")
		}
		stdout, stderr, err := run(context.Background(), t, true,
			"CREDSYNC_CACHE="+t.TempDir(), "CREDSYNC_ENVTEST_PLAN_ONLY=1")
		if err != nil {
			t.Fatalf("hack/setup-envtest.sh: %v\n%s", err, stderr)
		}
		dir := lastLine(stdout)
		if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err == nil {
			t.Errorf("%s holds a kube-apiserver: planning built it", dir)
		}
		checkPinned(t, dir)
	})
	t.Run("build", func(t *testing.T) {
		stdout, stderr, err := run(context.Background(), t, false)
		if err != nil {
			t.Fatalf("hack/setup-envtest.sh: %v\n%s", err, stderr)
		}
		dir := lastLine(stdout)
		if _, err := os.Stat(filepath.Join(dir, "modules.txt")); errors.Is(err, os.ErrNotExist) {
			t.Skipf("%s has no modules.txt, so its binaries were not built from Go modules by this script "+
				"(KUBEBUILDER_ASSETS, a setup-envtest download, or a cache from an older script); the plan is checked", dir)
		}
		checkPinned(t, dir)
	})
}

// haveKubernetesModules reports whether the Go module cache holds a
// k8s.io/kubernetes module, as after a build from modules.
func haveKubernetesModules(t *testing.T) bool {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	zips, _ := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "cache", "download", "k8s.io", "kubernetes", "@v", "*.zip"))
	return len(zips) > 0
}

// checkPinned compares dir's modules.txt (the build's module graph) with the
// kubernetes.go.mod beside it, and a version newer than kubernetes' with
// credsync.modules.txt (credsync's selection when the script ran).
func checkPinned(t *testing.T, dir string) {
	t.Helper()
	gomod, err := os.ReadFile(filepath.Join(dir, "kubernetes.go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	built := moduleList(t, filepath.Join(dir, "modules.txt"))
	// What credsync's go.mod selected when the script ran (a cache from an
	// older script has none: then nothing may be raised).
	credsync := map[string]string{}
	if _, err := os.Stat(filepath.Join(dir, "credsync.modules.txt")); err == nil {
		credsync = moduleList(t, filepath.Join(dir, "credsync.modules.txt"))
	}
	k8s := built["k8s.io/kubernetes"]
	if !strings.HasPrefix(k8s, "v1.") {
		t.Fatalf("modules.txt: k8s.io/kubernetes at %q, want v1.x.y", k8s)
	}
	staging := "v0." + strings.TrimPrefix(k8s, "v1.")

	req, local := requires(t, gomod)
	raised := 0
	if len(req) < 50 || len(local) < 10 {
		t.Fatalf("kubernetes.go.mod: %d requires and %d staging modules: not kubernetes' go.mod?", len(req), len(local))
	}
	for path, want := range req {
		if local[path] {
			want = staging
		}
		got, ok := built[path]
		switch {
		case !ok:
			t.Errorf("%s: required by kubernetes' go.mod at %s, missing from modules.txt", path, want)
		case got == want:
		case got == credsync[path] && semver.Compare(got, want) > 0:
			raised++
		default:
			t.Errorf("%s: built at %s; kubernetes' go.mod requires %s, credsync's selects %q", path, got, want, credsync[path])
		}
	}
	// etcd is the server kubernetes requires, so it is pinned above too.
	if _, ok := req["go.etcd.io/etcd/server/v3"]; !ok {
		t.Errorf("kubernetes' go.mod does not require go.etcd.io/etcd/server/v3: which etcd was built?")
	}
	t.Logf("%s: %d modules, all %d of kubernetes %s's requires at its versions or, %d of them, credsync's newer ones",
		dir, len(built), len(req), k8s, raised)
}

// moduleList reads a file of "path version" lines.
func moduleList(t *testing.T, file string) map[string]string {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	list := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(text)), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("%s: cannot parse %q", filepath.Base(file), line)
		}
		list[f[0]] = f[1]
	}
	return list
}

// TestDownloadGivesUpFast runs only the download step
// (CREDSYNC_ENVTEST_DOWNLOAD_ONLY) into an empty cache: when no download is
// possible it must fail within seconds, saying so, and leave no files.
func TestDownloadGivesUpFast(t *testing.T) {
	// Refused: nothing listens on this port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "http://" + l.Addr().String() + "/envtest-releases.yaml"
	l.Close()

	// Hanging: a server that accepts and never answers, as behind a
	// firewall that drops packets; the download timeout must end it.
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) })

	cases := []struct {
		name string
		env  []string
	}{
		{"refused", []string{"SETUP_ENVTEST_INDEX=" + refused}},
		{"hanging", []string{"SETUP_ENVTEST_INDEX=" + srv.URL + "/envtest-releases.yaml", "CREDSYNC_ENVTEST_DOWNLOAD_TIMEOUT=5"}},
		// The real index: offline (as in CI) it fails at once; online it
		// downloads (~100 MB, seconds), which passes too.
		{"default", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "default" && testing.Short() {
				t.Skip("may download ~100 MB; not in -short mode")
			}
			cache := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			start := time.Now()
			stdout, stderr, err := run(ctx, t, true, append(c.env, "CREDSYNC_CACHE="+cache, "CREDSYNC_ENVTEST_DOWNLOAD_ONLY=1")...)
			took := time.Since(start)
			if ctx.Err() != nil {
				t.Fatalf("still running after %s\nstderr:\n%s", took.Round(time.Second), stderr)
			}
			if c.name == "default" && err == nil {
				dir := lastLine(stdout)
				for _, bin := range []string{"kube-apiserver", "etcd"} {
					if _, err := os.Stat(filepath.Join(dir, bin)); err != nil {
						t.Errorf("download succeeded, but: %v", err)
					}
				}
				if !strings.HasPrefix(dir, cache) {
					t.Errorf("download succeeded into %s, want under %s", dir, cache)
				}
				t.Logf("online: downloaded in %s", took.Round(time.Second))
				return
			}
			if err == nil {
				t.Fatalf("exit 0, want a failure; stdout:\n%s\nstderr:\n%s", stdout, stderr)
			}
			if !strings.Contains(stderr, "no download") {
				t.Errorf("stderr does not say \"no download\":\n%s", stderr)
			}
			if strings.TrimSpace(stdout) != "" {
				t.Errorf("stdout %q, want nothing (no directory to print)", stdout)
			}
			left, err := filepath.Glob(filepath.Join(cache, "envtest", "*"))
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 0 {
				t.Errorf("left behind in the cache: %v", left)
			}
			t.Logf("gave up after %s", took.Round(100*time.Millisecond))
		})
	}
}
