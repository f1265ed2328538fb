package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const crdDir = "../../config/crd/bases"

// row returns the table row of the field path in the section of kind.
func row(t *testing.T, page, kind, path string) []string {
	t.Helper()
	start := strings.Index(page, "\n## "+kind+"\n")
	if start < 0 {
		t.Fatalf("no section for %s", kind)
	}
	section := page[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `"+path+"` |") {
			cells := strings.Split(strings.Trim(line, "|"), " | ")
			for i := range cells {
				cells[i] = strings.TrimSpace(cells[i])
			}
			return cells
		}
	}
	t.Fatalf("%s: no row for %s", kind, path)
	return nil
}

func TestRenderKnownFields(t *testing.T) {
	out, err := render(crdDir)
	if err != nil {
		t.Fatal(err)
	}
	page := string(out)
	// Columns: field, type, required, default, validation, description.
	tests := []struct {
		kind, path, typ, required, def, validation, description string
	}{
		{"RemoteCredential", "spec.refreshInterval", "string (duration)", "", "`1h`", "", "how often the vendor is asked again"},
		{"RemoteCredential", "spec.expiryWarning", "string (duration)", "", "`720h`", "", "Expiring condition"},
		{"RemoteCredential", "spec.providerRef.kind", "string", "", "`CredentialProvider`", "one of `CredentialProvider`, `ClusterCredentialProvider`", "Kind of the provider"},
		{"RemoteCredential", "spec.id", "string", "yes", "", "length 1–256", "vendor's ID"},
		{"RemoteCredential", "spec", "object", "yes", "", "refreshInterval must be at least 10s", "names the credential"},
		{"RemoteCredential", "status.conditions", "[]object", "", "", "list keyed by `type`", "Ready, Expiring, Stalled, Reconciling"},
		{"RemoteCredential", "status.conditions[].reason", "string", "yes", "", "pattern", "programmatic identifier"},
		{"CredentialProvider", "spec", "object", "yes", "", "exactly one vendor block", "how to authenticate"},
		{"CredentialProvider", "spec.tines.apiKeySecretRef.key", "string", "", "`apiKey`", "length 1–253", "Key in the Secret"},
		{"CredentialProvider", "spec.rateLimit.requestsPerMinute", "integer (int32)", "", "", "value 1–1000000", "sustained rate"},
		{"CredentialProvider", "spec.caBundle", "string (base64)", "", "", "", "PEM-encoded"},
		{"ClusterCredentialProvider", "status.conditions", "[]object", "", "", "list keyed by `type`", "Ready is True"},
	}
	for _, tc := range tests {
		got := row(t, page, tc.kind, tc.path)
		if len(got) != 6 {
			t.Errorf("%s %s: row has %d cells, want 6: %q", tc.kind, tc.path, len(got), got)
			continue
		}
		if got[1] != tc.typ || got[2] != tc.required || got[3] != tc.def {
			t.Errorf("%s %s: type, required, default = %q, %q, %q; want %q, %q, %q", tc.kind, tc.path, got[1], got[2], got[3], tc.typ, tc.required, tc.def)
		}
		if !strings.Contains(got[4], tc.validation) {
			t.Errorf("%s %s: validation %q does not contain %q", tc.kind, tc.path, got[4], tc.validation)
		}
		if !strings.Contains(got[5], tc.description) {
			t.Errorf("%s %s: description %q does not contain %q", tc.kind, tc.path, got[5], tc.description)
		}
	}
	for _, want := range []string{
		"| API version | `credsync.io/v1alpha1` (storage) |",
		"| Scope | Cluster |",
		"| Short names | `ccp` |",
		"| Expires | string | `.status.expiresAt` | always |",
		"| Vendor Name | string | `.status.name` | with `-o wide` |",
		"| Short names | `rcred` |",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	// A pipe inside a cell must be escaped, or the table breaks.
	if r := row(t, page, "RemoteCredential", "spec"); !strings.Contains(r[4], `\|\|`) {
		t.Errorf("the || of a CEL rule is not escaped: %q", r[4])
	}
}

func TestRenderIsDeterministic(t *testing.T) {
	first, err := render(crdDir)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		again, err := render(crdDir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatal("two renderings of the same CRDs differ")
		}
	}
}

func TestRenderEmptyDir(t *testing.T) {
	if _, err := render(t.TempDir()); err == nil {
		t.Error("no error for a directory without CRDs")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "x.yaml"), []byte("kind: ConfigMap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := render(dir); err == nil {
		t.Error("no error for a directory whose YAML holds no CRD")
	}
}
