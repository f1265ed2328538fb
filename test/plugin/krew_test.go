// Package plugin checks what ships of kubectl-credsync: the release
// archives and the Krew manifest that names them.
package plugin

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/internal/testenv"
)

// manifest is the part of a Krew plugin manifest this test checks.
type manifest struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Version          string `json:"version"`
		ShortDescription string `json:"shortDescription"`
		Platforms        []struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			URI    string `json:"uri"`
			SHA256 string `json:"sha256"`
			Bin    string `json:"bin"`
		} `json:"platforms"`
	} `json:"spec"`
}

// make plugin-dist builds an archive per platform; the Krew manifest it
// writes names each, with its sha256 and the binary inside, and the
// linux/amd64 binary reports the version it was built as.
func TestKrewManifestMatchesArchives(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const version = "v0.1.0-test"
	dist := pluginDist(t, root, version, "022")
	raw, err := os.ReadFile(filepath.Join(dist, "krew", "credsync.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "${") {
		t.Fatalf("the manifest has unfilled placeholders:\n%s", raw)
	}
	var m manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "credsync" ||
		m.Spec.Version != version || m.Spec.ShortDescription == "" {
		t.Fatalf("manifest header: %+v", m)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range m.Spec.Platforms {
		platform := p.Selector.MatchLabels["os"] + "/" + p.Selector.MatchLabels["arch"]
		seen[platform] = true
		name := path.Base(p.URI)
		if !strings.HasPrefix(p.URI, "https://github.com/credsync/credsync/releases/download/"+version+"/") ||
			name != "kubectl-credsync_"+version+"_"+strings.ReplaceAll(platform, "/", "_")+".tar.gz" {
			t.Errorf("%s: uri %s", platform, p.URI)
		}
		archive := filepath.Join(dist, name)
		b, err := os.ReadFile(archive)
		if err != nil {
			t.Errorf("%s: the archive the manifest names: %v", platform, err)
			continue
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != p.SHA256 || !strings.Contains(string(sums), got+"  "+name) {
			t.Errorf("%s: sha256 %s, manifest says %s", platform, got, p.SHA256)
		}
		bin := extract(t, archive, p.Bin)
		if platform == runtime.GOOS+"/"+runtime.GOARCH {
			out, err := exec.Command(bin, "version").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), "kubectl-credsync "+version+"\n") {
				t.Errorf("%s version: %v\n%s", bin, err, out)
			}
		}
	}
	for _, want := range []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"} {
		if !seen[want] {
			t.Errorf("no platform %s in the manifest", want)
		}
	}
}

// pluginDist runs make plugin-dist for version under umask into a
// temporary directory and returns it.
func pluginDist(t *testing.T, root, version, umask string) string {
	t.Helper()
	testenv.Tool(t, "make", "GNU make")
	dist := t.TempDir()
	build := exec.Command("bash", "-c", `umask "$1" && exec make -s plugin-dist DIST="$2" VERSION="$3"`, "-", umask, dist, version)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make plugin-dist (umask %s): %v\n%s", umask, err, out)
	}
	return dist
}

// The archives are the same bytes whoever builds them: here, two builders
// with different umasks.
func TestPluginDistIsReproducible(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var sums []string
	for _, umask := range []string{"002", "077"} {
		b, err := os.ReadFile(filepath.Join(pluginDist(t, root, "v0.1.0-test", umask), "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, string(b))
	}
	if sums[0] != sums[1] || strings.Count(sums[0], "\n") != 4 {
		t.Fatalf("SHA256SUMS differ with the umask:\n%s\n%s", sums[0], sums[1])
	}
}

// extract writes the executable file bin of a .tar.gz archive to a
// temporary file and returns its path; the test fails when it is missing
// or not executable.
func extract(t *testing.T, archive, bin string) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", archive, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			t.Fatalf("%s has no %s", archive, bin)
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		if h.Name != bin {
			continue
		}
		if h.Mode&0o111 == 0 {
			t.Fatalf("%s: %s is not executable (mode %o)", archive, bin, h.Mode)
		}
		out := filepath.Join(t.TempDir(), bin)
		w, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, tr); err != nil { //nolint:gosec // an archive this test built
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
}
