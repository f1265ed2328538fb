// Package plugin checks what ships of kubectl-credsync: the release
// archives and the Krew manifest that names them.
//
// make test builds the archive of the host's platform only (the other three
// cross-compile every Kubernetes package the plugin imports once more
// each); make release-check builds all four, twice (release_test.go, build
// tag release).
package plugin

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/credsync/credsync/internal/testenv"
)

const (
	// version is the version the tests build the archives as.
	version = "v0.1.0-test"
	// bin is the plugin's binary in each archive.
	bin = "kubectl-credsync"
)

// platforms are the platforms the Krew manifest names, each with its
// archive.
var platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

// hostPlatform is the platform of the archive make test builds: the host's,
// whose binary the test can run, or linux/amd64 on a host with none.
func hostPlatform() string {
	if p := runtime.GOOS + "/" + runtime.GOARCH; slices.Contains(platforms, p) {
		return p
	}
	return "linux/amd64"
}

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

// make plugin-dist for the host's platform builds its archive; the Krew
// manifest it writes is the template with the version and that archive's
// sha256 filled in, and names all four platforms, each with its URI and
// binary.
func TestKrewManifestMatchesArchives(t *testing.T) {
	checkDist(t, pluginDist(t, "002", hostPlatform()), hostPlatform())
}

// The archive is the same bytes whoever builds it: here, two builders with
// different umasks (make release-check does it for all four platforms).
func TestPluginDistIsReproducible(t *testing.T) {
	checkReproducible(t, hostPlatform())
}

// checkReproducible builds the archives of built under two umasks and
// fails t unless their sums are the same.
func checkReproducible(t *testing.T, built ...string) {
	t.Helper()
	var sums []string
	for _, umask := range []string{"002", "077"} {
		b, err := os.ReadFile(filepath.Join(pluginDist(t, umask, built...), "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, string(b))
	}
	if sums[0] != sums[1] || strings.Count(sums[0], "\n") != len(built) {
		t.Fatalf("SHA256SUMS differ with the umask:\n%s\n%s", sums[0], sums[1])
	}
}

// dists are the directories make plugin-dist built, by umask and
// platforms: the tests share them.
var dists sync.Map // string -> *distBuild

type distBuild struct {
	once sync.Once
	dir  string
	out  []byte
	err  error
}

// pluginDist runs make plugin-dist for version and the platforms built
// under umask, once per test binary, into a temporary directory and
// returns it.
func pluginDist(t *testing.T, umask string, built ...string) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk := testenv.Tool(t, "make", "GNU make")
	key := umask + " " + strings.Join(built, " ")
	v, _ := dists.LoadOrStore(key, &distBuild{})
	d := v.(*distBuild)
	d.once.Do(func() {
		if d.dir, d.err = os.MkdirTemp("", "credsync-plugin-dist-"); d.err != nil {
			return
		}
		build := exec.Command("bash", "-c", `umask "$1" && exec "$2" -s --no-print-directory plugin-dist DIST="$3" VERSION="$4" PLATFORMS="$5"`,
			"-", umask, mk, d.dir, version, strings.Join(built, " "))
		build.Dir = root
		d.out, d.err = build.CombinedOutput()
	})
	if d.err != nil {
		t.Fatalf("make plugin-dist (umask %s, %s): %v\n%s", umask, key, d.err, d.out)
	}
	return d.dir
}

// TestMain removes the directories pluginDist made.
func TestMain(m *testing.M) {
	code := m.Run()
	dists.Range(func(_, v any) bool {
		if d := v.(*distBuild); d.dir != "" {
			_ = os.RemoveAll(d.dir)
		}
		return true
	})
	os.Exit(code)
}

// checkDist checks what make plugin-dist wrote into dist for the platforms
// built: the manifest is plugins/krew/credsync.yaml with the version and
// the built archives' sums filled in, and only the other platforms' sums
// left as placeholders; it names every platform, each with its release
// URI and the binary; each built archive is there with the sha256 the
// manifest and SHA256SUMS give, and holds the binary, executable; the
// host's binary reports the version it was built as.
func checkDist(t *testing.T, dist string, built ...string) {
	t.Helper()
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dist, "krew", "credsync.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile(filepath.Join(root, "plugins", "krew", "credsync.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(sums), "\n"); n != len(built) {
		t.Errorf("SHA256SUMS has %d lines for %d platforms built:\n%s", n, len(built), sums)
	}

	// The template, filled in as plugin-dist fills it for the archives built.
	want := []string{"${VERSION}", version}
	for _, p := range built {
		sum, err := fileSHA256(filepath.Join(dist, archiveName(p)))
		if err != nil {
			t.Fatalf("%s: the archive: %v", p, err)
		}
		want = append(want, placeholder(p), sum)
	}
	if filled := strings.NewReplacer(want...).Replace(string(tmpl)); string(raw) != filled {
		t.Errorf("the manifest is not the template filled in for %v:\n--- got\n%s--- want\n%s", built, raw, filled)
	}
	for _, p := range platforms {
		if !slices.Contains(built, p) && !strings.Contains(string(raw), placeholder(p)) {
			t.Errorf("%s was not built, but the manifest has no %s", p, placeholder(p))
		}
	}
	if rest := strings.NewReplacer(placeholders()...).Replace(string(raw)); strings.Contains(rest, "${") {
		t.Errorf("the manifest has unfilled placeholders besides the sums:\n%s", raw)
	}

	var m manifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.APIVersion != "krew.googlecontainertools.github.com/v1alpha2" || m.Kind != "Plugin" || m.Metadata.Name != "credsync" ||
		m.Spec.Version != version || m.Spec.ShortDescription == "" {
		t.Fatalf("manifest header: %+v", m)
	}
	var seen []string
	for _, mp := range m.Spec.Platforms {
		platform := mp.Selector.MatchLabels["os"] + "/" + mp.Selector.MatchLabels["arch"]
		seen = append(seen, platform)
		name := archiveName(platform)
		if mp.URI != "https://github.com/credsync/credsync/releases/download/"+version+"/"+name {
			t.Errorf("%s: uri %s", platform, mp.URI)
		}
		if mp.Bin != bin {
			t.Errorf("%s: bin %q, want %q", platform, mp.Bin, bin)
		}
		if !slices.Contains(built, platform) {
			if mp.SHA256 != placeholder(platform) {
				t.Errorf("%s was not built, but the manifest gives sha256 %q", platform, mp.SHA256)
			}
			continue
		}
		archive := filepath.Join(dist, path.Base(mp.URI))
		got, err := fileSHA256(archive)
		if err != nil {
			t.Errorf("%s: the archive the manifest names: %v", platform, err)
			continue
		}
		if got != mp.SHA256 || !strings.Contains(string(sums), got+"  "+name+"\n") {
			t.Errorf("%s: sha256 %s, manifest says %s, SHA256SUMS:\n%s", platform, got, mp.SHA256, sums)
		}
		binary := extract(t, archive, mp.Bin)
		if platform == runtime.GOOS+"/"+runtime.GOARCH {
			out, err := exec.Command(binary, "version").CombinedOutput()
			if err != nil || !strings.HasPrefix(string(out), bin+" "+version+"\n") {
				t.Errorf("%s version: %v\n%s", binary, err, out)
			}
		}
	}
	if !slices.Equal(seen, platforms) {
		t.Errorf("the manifest names the platforms %v, want %v", seen, platforms)
	}
}

// archiveName is the name of platform's release archive.
func archiveName(platform string) string {
	return fmt.Sprintf("%s_%s_%s.tar.gz", bin, version, strings.ReplaceAll(platform, "/", "_"))
}

// placeholder is the template's placeholder for platform's sha256.
func placeholder(platform string) string {
	return "${SHA256_" + strings.ReplaceAll(platform, "/", "_") + "}"
}

// placeholders are old, new pairs for strings.NewReplacer that remove
// every platform's sha256 placeholder.
func placeholders() []string {
	var pairs []string
	for _, p := range platforms {
		pairs = append(pairs, placeholder(p), "")
	}
	return pairs
}

func fileSHA256(name string) (string, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// extract writes the executable file name of a .tar.gz archive to a
// temporary file and returns its path; the test fails when it is missing
// or not executable.
func extract(t *testing.T, archive, name string) string {
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
			t.Fatalf("%s has no %s", archive, name)
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		if h.Name != name {
			continue
		}
		if h.Mode&0o111 == 0 {
			t.Fatalf("%s: %s is not executable (mode %o)", archive, name, h.Mode)
		}
		out := filepath.Join(t.TempDir(), name)
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
