package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// kubectl credsync, found by kubectl on PATH as users run it, against the
// real manager: sync --wait round trip, expiring as a table and as csv,
// inventory --adopt piped into kubectl apply --dry-run=server, and the
// errors for an unknown name and a cluster without credsync.
func TestKubectlPlugin(t *testing.T) {
	requireEnv(t)
	kubectl := lookKubectl(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "kubectl-credsync"), "./cmd/kubectl-credsync")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the plugin: %v\n%s", err, out)
	}
	plugin := func(stdin []byte, config string, args ...string) (string, string, int) {
		// kubectl takes no flags before a plugin's name: they go to the plugin.
		cmd := exec.Command(kubectl, append(append([]string{"credsync"}, args...), "--kubeconfig", config)...)
		cmd.Env = append(os.Environ(), "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
		cmd.Stdin = bytes.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatalf("kubectl credsync %v: %v", args, err)
		}
		return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
	}

	g := gomega.NewWithT(t)
	ns := newNamespace(t)
	tinesProvider(t, ns)
	deleteLeasesAfter(t, leaseName)
	m := startManager(t, "plugin")
	m.waitReady(t)
	now := time.Now().UTC()
	ids := map[string]int64{}
	for name, exp := range map[string]time.Time{"soon": now.Add(5 * 24 * time.Hour), "gone": now.Add(-48 * time.Hour), "far": now.Add(200 * 24 * time.Hour)} {
		id := fakeID()
		ids[name] = id
		c := tinestest.Sample(id, name+"_token")
		c.ExpiresAt, c.OwnerEmail = &exp, name+".owner@example.com"
		tinesFake.Put(c)
		create(t, newCredential(ns, name, strconv.FormatInt(id, 10)))
	}
	kubectlRun(t, kubectl, nil, "wait", "-n", ns, "--for=condition=Ready", "--timeout=60s", "remotecredential/soon", "remotecredential/far")
	kubectlRun(t, kubectl, nil, "wait", "-n", ns, `--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=Expired`, "--timeout=60s", "remotecredential/gone")

	// sync --wait: the operator reads the vendor again and echoes the request.
	calls := tinesFake.Calls(strconv.FormatInt(ids["soon"], 10))
	out, errOut, code := plugin(nil, kubeconfig, "sync", "soon", "-n", ns, "--wait", "--timeout", "60s")
	g.Expect(code).To(gomega.Equal(0), "sync --wait: %s%s", out, errOut)
	g.Expect(out).To(gomega.HavePrefix(ns + "/soon: Ready (Synced): tines credential"))
	g.Expect(tinesFake.Calls(strconv.FormatInt(ids["soon"], 10))).To(gomega.Equal(calls+1), "the sync read the vendor")
	out, _, code = plugin(nil, kubeconfig, "sync", "gone", "-n", ns, "--wait")
	g.Expect(code).To(gomega.Equal(1), "an expired credential does not end Ready")
	g.Expect(out).To(gomega.ContainSubstring(ns + "/gone: not Ready (Expired)"))

	// expiring: soonest first, with owner; exit 1 because one expired.
	out, errOut, code = plugin(nil, kubeconfig, "expiring", "-n", ns)
	g.Expect(code).To(gomega.Equal(1))
	g.Expect(errOut).To(gomega.Equal("1 credentials have expired\n"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	g.Expect(lines).To(gomega.HaveLen(3), out)
	g.Expect(strings.Fields(lines[0])).To(gomega.Equal([]string{"NAME", "PROVIDER", "VENDOR", "OWNER", "EXPIRES", "IN"}))
	g.Expect(strings.Fields(lines[1])[:4]).To(gomega.Equal([]string{"gone", "tines", "tines", "gone.owner@example.com"}))
	g.Expect(lines[1]).To(gomega.HaveSuffix("2d ago"))
	g.Expect(strings.Fields(lines[2])[:4]).To(gomega.Equal([]string{"soon", "tines", "tines", "soon.owner@example.com"}))
	out, _, _ = plugin(nil, kubeconfig, "expiring", "-n", ns, "-o", "csv", "--within", "365d")
	g.Expect(strings.Split(strings.TrimSpace(out), "\n")).To(gomega.HaveLen(4))
	g.Expect(out).To(gomega.HavePrefix("namespace,name,provider,vendor,id,owner,vendor_name,expires_at,expired\n" +
		ns + ",gone,tines,tines," + strconv.FormatInt(ids["gone"], 10) + ",gone.owner@example.com,gone_token,"))

	// inventory --adopt -o yaml, piped into kubectl apply --dry-run=server.
	inv := tinestest.NewServer(tinesKey)
	defer inv.Close()
	for i := range 2 {
		inv.Put(tinestest.Sample(fakeID(), "nobody_declared_"+strconv.Itoa(i)))
	}
	create(t, testenv.ProviderSecret(ns, "inv-api", map[string]string{"apiKey": tinesKey}))
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines-inventory"},
		Spec: v1alpha1.CredentialProviderSpec{
			Tines:     &v1alpha1.TinesProvider{URL: inv.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "inv-api"}},
			CABundle:  inv.CABundle(),
			Inventory: &v1alpha1.Inventory{Interval: metav1.Duration{Duration: time.Hour}},
		},
	})
	kubectlRun(t, kubectl, nil, "wait", "-n", ns, "--for=jsonpath={.status.inventory.unmanaged}=2", "--timeout=60s", "credentialprovider/tines-inventory")
	out, errOut, code = plugin(nil, kubeconfig, "inventory", "tines-inventory", "-n", ns)
	g.Expect(code).To(gomega.Equal(0), errOut)
	g.Expect(out).To(gomega.ContainSubstring("Credentials:  2 listed: 0 managed, 2 unmanaged"))
	g.Expect(out).To(gomega.ContainSubstring("nobody_declared_1"))
	manifests, errOut, code := plugin(nil, kubeconfig, "inventory", "tines-inventory", "-n", ns, "--adopt", "-o", "yaml")
	g.Expect(code).To(gomega.Equal(0), errOut)
	applied := kubectlRun(t, kubectl, []byte(manifests), "apply", "--dry-run=server", "-f", "-")
	g.Expect(strings.Count(applied, "created (server dry run)")).To(gomega.Equal(2), applied)

	// Clear errors, no stack traces.
	_, errOut, code = plugin(nil, kubeconfig, "status", "nope", "-n", ns)
	g.Expect(code).To(gomega.Equal(2))
	g.Expect(errOut).To(gomega.Equal("error: RemoteCredential " + ns + "/nope not found\n"))
	bare, _, err := testenv.StartBare()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = bare.Stop() }()
	bareConfig, err := testenv.WriteKubeconfig(bare, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, errOut, code = plugin(nil, bareConfig, "expiring", "-A")
	g.Expect(code).To(gomega.Equal(2))
	g.Expect(errOut).To(gomega.HavePrefix("error: credsync is not installed in this cluster"))
	out, _, code = plugin(nil, kubeconfig, "version")
	g.Expect(code).To(gomega.Equal(0))
	g.Expect(out).To(gomega.HavePrefix("kubectl-credsync dev\n"))
}
