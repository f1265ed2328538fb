package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/samples"
	"github.com/credsync/credsync/internal/testenv"
)

// samplesNS is where config/samples' namespaced objects land (they name none).
const samplesNS = "default"

// TestSamplesEndToEnd is what a user does: kubectl apply config/samples
// against the real manager binary, with the vendors as a process of their
// own, and kubectl wait for every credential. The manager is killed in the
// middle of its first syncs and started again: nothing is lost and nothing
// happens twice. Last, it stops cleanly on SIGTERM.
func TestSamplesEndToEnd(t *testing.T) {
	requireEnv(t)
	kubectl := lookKubectl(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Every vendor answer takes 3s, so the first manager is killed while
	// its syncs are in flight.
	endpoints := startFakeVendors(t, root, 3*time.Second)
	docs, err := samples.Render(filepath.Join(root, "config", "samples"), endpoints)
	if err != nil {
		t.Fatal(err)
	}

	first := startManager(t, "samples-1")
	first.waitReady(t)
	g := gomega.NewWithT(t)
	waitLeader(g)
	// Providers first, then the credentials once the operator has found
	// the providers usable: applied together, a credential's first
	// reconcile may not see its provider in the cache yet (it shows
	// ProviderNotReady, then Recovered), and this test counts first-sync
	// events exactly.
	providers, credentials := splitCredentials(docs)
	kubectlRun(t, kubectl, providers, "apply", "-f", "-")
	kubectlRun(t, kubectl, nil, "wait", "--for=condition=Ready", "--timeout=60s",
		"-n", samplesNS, "credentialprovider", "--all")
	kubectlRun(t, kubectl, nil, "wait", "--for=condition=Ready", "--timeout=60s", "clustercredentialprovider", "--all")
	kubectlRun(t, kubectl, credentials, "apply", "-f", "-")

	g.Eventually(func(g gomega.Gomega) {
		g.Expect(activeWorkers(g, first)).To(gomega.BeNumerically(">=", 1))
	}).WithTimeout(startup).WithPolling(20*time.Millisecond).Should(gomega.Succeed(), "the first manager never started a sync")
	g.Expect(first.cmd.Process.Kill()).To(gomega.Succeed())
	<-first.exited
	list := &v1alpha1.RemoteCredentialList{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(samplesNS))).To(gomega.Succeed())
	g.Expect(list.Items).To(gomega.HaveLen(len(samples.Expected)))
	for _, rc := range list.Items {
		if samples.SweepServed[rc.Name] {
			continue // its provider's inventory sweep served it at once, without a GET
		}
		g.Expect(meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady)).To(gomega.BeNil(),
			"%s was synced before the kill: the kill did not land mid-sync", rc.Name)
	}

	second := startManager(t, "samples-2")
	for name, reason := range samples.Expected {
		cond := "--for=condition=Ready"
		if reason != v1alpha1.ReasonSynced {
			cond = `--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=` + reason
		}
		// The second manager waits for the dead one's Lease to expire first.
		kubectlRun(t, kubectl, nil, "wait", "-n", samplesNS, cond, "--timeout=90s", "remotecredential/"+name)
	}

	header := strings.Fields(firstLine(kubectlRun(t, kubectl, nil, "get", "-n", samplesNS, "remotecredentials")))
	g.Expect(header).To(gomega.Equal([]string{"NAME", "PROVIDER", "VENDOR", "ID", "READY", "REASON", "EXPIRES", "AGE"}))
	wide := kubectlRun(t, kubectl, nil, "get", "-n", samplesNS, "remotecredentials", "-o", "wide")
	// One NAME column: the vendor's name of the credential is VENDOR NAME.
	g.Expect(strings.Fields(firstLine(wide))).To(gomega.Equal([]string{
		"NAME", "PROVIDER", "VENDOR", "ID", "READY", "REASON", "EXPIRES", "VENDOR", "NAME", "DESCRIPTION", "OWNER", "LAST", "USED", "AGE"}))
	g.Expect(firstLine(wide)).To(gomega.ContainSubstring("VENDOR NAME"))
	g.Expect(rowOf(wide, "github-token")).To(gomega.HavePrefix("github-token"))
	g.Expect(strings.Fields(rowOf(wide, "github-token"))[1:6]).To(gomega.Equal([]string{"tines-prod", "tines", "4821", "True", "Synced"}))
	g.Expect(rowOf(wide, "github-token")).To(gomega.ContainSubstring("GitHub fine-grained PAT for CI"))
	g.Expect(strings.Fields(rowOf(wide, "retired-pagerduty-key"))[4:6]).To(gomega.Equal([]string{"False", "NotFound"}))

	// The provider with inventory on shows what it counted.
	for name, inv := range samples.Inventory {
		kubectlRun(t, kubectl, nil, "wait", "-n", samplesNS, "--timeout=60s",
			fmt.Sprintf("--for=jsonpath={.status.inventory.unmanaged}=%d", inv.Unmanaged), "credentialprovider/"+name)
		providers := kubectlRun(t, kubectl, nil, "get", "-n", samplesNS, "credentialproviders")
		g.Expect(strings.Fields(firstLine(providers))).To(gomega.Equal([]string{"NAME", "VENDOR", "READY", "REASON", "MANAGED", "UNMANAGED", "AGE"}))
		g.Expect(strings.Fields(rowOf(providers, name))[1:6]).To(gomega.Equal([]string{
			"tines", "True", "Valid", strconv.Itoa(int(inv.Managed)), strconv.Itoa(int(inv.Unmanaged))}))
	}

	// Nothing happened twice: one first-sync (or failure) event each, and
	// no status write beyond the first.
	g.Consistently(func(g gomega.Gomega) {
		counts := eventCounts(g)
		for name, reason := range samples.Expected {
			g.Expect(counts[name+" "+reason]).To(gomega.Equal(1), "events %s %s: %v", name, reason, counts)
		}
	}).WithTimeout(3 * time.Second).WithPolling(500 * time.Millisecond).Should(gomega.Succeed())
	versions := map[string]string{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(samplesNS))).To(gomega.Succeed())
	for _, rc := range list.Items {
		versions[rc.Name] = rc.ResourceVersion
	}

	g.Expect(second.cmd.Process.Signal(syscall.SIGTERM)).To(gomega.Succeed())
	select {
	case <-second.exited:
		g.Expect(second.state.ExitCode()).To(gomega.Equal(0), "exit status after SIGTERM")
	case <-time.After(10 * time.Second):
		t.Fatal("the manager did not exit within 10s of SIGTERM")
	}
	g.Expect(holder(lease(g))).To(gomega.BeEmpty(), "the manager kept its Lease after a clean shutdown")
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(samplesNS))).To(gomega.Succeed())
	for _, rc := range list.Items {
		g.Expect(rc.ResourceVersion).To(gomega.Equal(versions[rc.Name]), "%s was written during shutdown", rc.Name)
	}
}

// splitCredentials splits rendered samples (one JSON document a line) into
// the RemoteCredentials and everything else.
func splitCredentials(docs []byte) (others, credentials []byte) {
	for _, line := range bytes.SplitAfter(docs, []byte("\n")) {
		if bytes.Contains(line, []byte(`"kind":"RemoteCredential"`)) {
			credentials = append(credentials, line...)
		} else {
			others = append(others, line...)
		}
	}
	return others, credentials
}

// startFakeVendors runs hack/fakevendors as a process of its own and
// returns where its fakes listen.
func startFakeVendors(t *testing.T, root string, latency time.Duration) []samples.Endpoint {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "fakevendors")
	build := exec.Command("go", "build", "-o", bin, "./hack/fakevendors")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build fakevendors: %v\n%s", err, out)
	}
	path := filepath.Join(dir, "endpoints.json")
	cmd := exec.Command(bin, "--endpoints", path, "--latency", latency.String())
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	var endpoints []samples.Endpoint
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		b, err := os.ReadFile(path)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		g.Expect(json.Unmarshal(b, &endpoints)).To(gomega.Succeed())
	}).WithTimeout(startup).WithPolling(poll).Should(gomega.Succeed(), "fakevendors never wrote its endpoints")
	return endpoints
}

func lookKubectl(t *testing.T) string { return testenv.Tool(t, "kubectl", "kubectl v1.32 or newer") }

// kubectlRun runs kubectl against the control plane and returns its output.
func kubectlRun(t *testing.T, kubectl string, stdin []byte, args ...string) string {
	t.Helper()
	cmd := exec.Command(kubectl, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errOut.String())
	}
	return out.String()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// rowOf is the line of kubectl get output for the object named name.
func rowOf(out, name string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

// waitLeader waits until some manager holds the Lease.
func waitLeader(g gomega.Gomega) {
	g.Eventually(func(g gomega.Gomega) {
		g.Expect(holder(lease(g))).NotTo(gomega.BeEmpty())
	}).WithTimeout(startup).WithPolling(poll).Should(gomega.Succeed(), "no manager became leader")
}

// activeWorkers is how many RemoteCredential reconciles m has in flight.
func activeWorkers(g gomega.Gomega, m *manager) float64 {
	for _, s := range m.scrape(g)["controller_runtime_active_workers"].GetMetric() {
		if labelValue(s, "controller") == "remotecredential" {
			return s.GetGauge().GetValue()
		}
	}
	return 0
}

// eventCounts counts the events about the samples by "name reason".
func eventCounts(g gomega.Gomega) map[string]int {
	list := &eventsv1.EventList{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(samplesNS))).To(gomega.Succeed())
	counts := map[string]int{}
	for _, e := range list.Items {
		n := 1
		if e.Series != nil {
			n = int(e.Series.Count)
		}
		counts[e.Regarding.Name+" "+e.Reason] += n
	}
	return counts
}
