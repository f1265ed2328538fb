package all_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/credsync/credsync/internal/vendors/all"
)

// A vendor is its package, its API block and one line in all.go: the code
// every vendor shares never names one, not even in a comment.
func TestSharedCodeNamesNoVendor(t *testing.T) {
	// The repository's root, from this package's directory (go test's
	// working directory); not testenv.RepoRoot, whose package brings the
	// test control plane into this package's race build.
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the repository's root: %v", err)
	}
	var names []string
	for _, v := range all.Vendors() {
		names = append(names, regexp.QuoteMeta(v.Name))
	}
	// Vendor package names too (elasticcloud for elasticCloud), and the
	// vendors' own spellings of themselves.
	entries, err := os.ReadDir(filepath.Join(root, "internal", "vendors"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && e.Name() != "all" && e.Name() != "vendortest" && e.Name() != "httpvendor" && e.Name() != "testdata" {
			names = append(names, regexp.QuoteMeta(e.Name()))
		}
	}
	names = append(names, "elastic", "plain ?id")
	vendorName := regexp.MustCompile(`(?i)` + strings.Join(names, "|"))
	for _, dir := range []string{"controllers", "internal/account", "internal/vendors", "internal/metrics"} {
		files, err := filepath.Glob(filepath.Join(root, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for i, line := range strings.Split(string(b), "\n") {
				if m := vendorName.FindString(line); m != "" {
					t.Errorf("%s:%d names vendor %q: %s", strings.TrimPrefix(f, root+"/"), i+1, m, strings.TrimSpace(line))
				}
			}
		}
	}
}

// The default host list holds every built-in definition's public hosts,
// once each.
func TestDefaultHostsHoldTheBuiltins(t *testing.T) {
	got := all.Registry().DefaultNamespacedHosts().String()
	for _, h := range []string{"*.tines.com", "gitlab.com", "api.cloudflare.com", "*.okta.com", "api.datadoghq.eu", "api.atlassian.com", "*.grafana.net"} {
		if !strings.Contains(","+got+",", ","+h+",") {
			t.Errorf("default namespaced hosts %q lack %s", got, h)
		}
	}
	if strings.Count(got, "gitlab.com") != 1 {
		t.Errorf("gitlab.com listed %d times: %s", strings.Count(got, "gitlab.com"), got)
	}
}
