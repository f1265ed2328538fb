package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	poll = 100 * time.Millisecond
	// startup bounds a manager's start and a first sync.
	startup = 60 * time.Second
)

// manager is one manager process.
type manager struct {
	name       string
	cmd        *exec.Cmd
	logPath    string
	metricsURL string
	readyzURL  string
	// exited is closed when the process has exited; state is then set.
	exited chan struct{}
	state  *os.ProcessState
}

// startManager starts the manager binary with --leader-elect, its Lease in
// systemNS, plain-HTTP metrics and health probes on free loopback ports,
// and its output in a file that is printed when t fails. Cleanup kills it
// if it is still running.
func startManager(t *testing.T, name string, extraArgs ...string) *manager {
	t.Helper()
	m := &manager{
		name:    name,
		logPath: filepath.Join(t.TempDir(), name+".log"),
		exited:  make(chan struct{}),
	}
	metricsAddr, probeAddr := freeAddr(t), freeAddr(t)
	m.metricsURL = "http://" + metricsAddr + "/metrics"
	m.readyzURL = "http://" + probeAddr + "/readyz"
	args := append([]string{
		"--kubeconfig", kubeconfig,
		"--leader-elect",
		"--leader-election-namespace=" + systemNS,
		"--metrics-bind-address=" + metricsAddr,
		"--metrics-secure=false",
		"--health-probe-bind-address=" + probeAddr,
		"--cluster-resource-namespace=" + systemNS,
	}, append(vendortest.LoopbackFlags, extraArgs...)...)
	m.cmd = exec.Command(managerBin, args...)
	logFile, err := os.Create(m.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	// If the test binary dies, so do its managers.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start manager %s: %v", name, err)
	}
	go func() {
		_ = m.cmd.Wait()
		m.state = m.cmd.ProcessState
		close(m.exited)
	}()
	t.Cleanup(func() {
		if !m.hasExited() {
			_ = m.cmd.Process.Kill()
			<-m.exited
		}
		if t.Failed() {
			m.printLog(t)
		}
	})
	return m
}

func (m *manager) hasExited() bool {
	select {
	case <-m.exited:
		return true
	default:
		return false
	}
}

// printLog logs the manager's output, the last 200 lines at most.
func (m *manager) printLog(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(m.logPath)
	if err != nil {
		t.Logf("manager %s: read log: %v", m.name, err)
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	t.Logf("manager %s output (%s):\n%s", m.name, m.logPath, strings.Join(lines, "\n"))
}

// waitReady waits until the manager answers its readiness probe.
func (m *manager) waitReady(t *testing.T) {
	t.Helper()
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		g.Expect(m.hasExited()).To(gomega.BeFalse(), "manager %s exited: %v", m.name, m.state)
		resp, err := http.Get(m.readyzURL)
		g.Expect(err).NotTo(gomega.HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(gomega.Equal(http.StatusOK))
	}).WithTimeout(startup).WithPolling(poll).Should(gomega.Succeed(), "manager %s never became ready", m.name)
}

// scrape returns the manager's metrics.
func (m *manager) scrape(g gomega.Gomega) map[string]*dto.MetricFamily {
	_, families, err := testenv.Scrape(m.metricsURL)
	g.Expect(err).NotTo(gomega.HaveOccurred(), "manager %s", m.name)
	return families
}

// vendorRequests sums credsync_vendor_requests_total over all its series,
// or over those of the given operations (read, verify, list).
func vendorRequests(families map[string]*dto.MetricFamily, operations ...string) float64 {
	sum := 0.0
	for _, s := range families["credsync_vendor_requests_total"].GetMetric() {
		if len(operations) == 0 || slices.Contains(operations, labelValue(s, "operation")) {
			sum += s.GetCounter().GetValue()
		}
	}
	return sum
}

// credentialSeries counts the series of the credsync_credential_* families,
// only those labelled with namespace ns when ns is not empty.
func credentialSeries(families map[string]*dto.MetricFamily, ns string) int {
	n := 0
	for name, f := range families {
		if !strings.HasPrefix(name, "credsync_credential_") {
			continue
		}
		for _, s := range f.GetMetric() {
			if ns == "" || labelValue(s, "namespace") == ns {
				n++
			}
		}
	}
	return n
}

func labelValue(m *dto.Metric, name string) string { return testenv.LabelValue(m, name) }

// lease returns the managers' leader election Lease.
func lease(g gomega.Gomega) *coordinationv1.Lease {
	l := &coordinationv1.Lease{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: systemNS, Name: leaseName}, l)).To(gomega.Succeed())
	return l
}

// holder is the Lease's holderIdentity, "" when none.
func holder(l *coordinationv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// freeAddr returns a loopback address with a port free at the time of asking.
func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := testenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// newNamespace creates a namespace of the test's own.
func newNamespace(t *testing.T) string { return testenv.NewNamespace(t, k8s) }

func create(t *testing.T, obj client.Object) {
	t.Helper()
	if err := k8s.Create(context.Background(), obj); err != nil {
		t.Fatalf("create %T %s: %v", obj, obj.GetName(), err)
	}
}

// tinesProvider creates a Secret and a CredentialProvider named "tines" in
// ns, pointing at the fake Tines tenant.
func tinesProvider(t *testing.T, ns string) { tinesProviderAt(t, ns, tinesFake) }

// tinesProviderAt is tinesProvider pointing at fake.
func tinesProviderAt(t *testing.T, ns string, fake *tinestest.Server) {
	t.Helper()
	create(t, testenv.ProviderSecret(ns, "tines-api", map[string]string{"apiKey": tinesKey}))
	create(t, &v1alpha1.CredentialProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "tines"},
		Spec: v1alpha1.CredentialProviderSpec{
			Tines:    &v1alpha1.TinesProvider{URL: fake.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "tines-api"}},
			CABundle: fake.CABundle(),
		},
	})
}

// newCredential returns a RemoteCredential of provider "tines" for id.
func newCredential(ns, name, id string) *v1alpha1.RemoteCredential {
	return &v1alpha1.RemoteCredential{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.RemoteCredentialSpec{
			ProviderRef: v1alpha1.ProviderReference{Name: "tines"},
			ID:          id,
		},
	}
}

// fakeID hands out vendor IDs unique across tests, so the fake's call
// counts of different tests never mix.
var idCounter atomic.Int64

func fakeID() int64 { return 700000 + idCounter.Add(1) }

// expectSynced fails g unless rc, read now, is Ready with reason Synced
// for its current generation.
func expectSynced(g gomega.Gomega, rc *v1alpha1.RemoteCredential) {
	got := &v1alpha1.RemoteCredential{}
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(rc), got)).To(gomega.Succeed())
	c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionReady)
	g.Expect(c).NotTo(gomega.BeNil(), "%s has no Ready condition", rc.Name)
	g.Expect(c.Reason).To(gomega.Equal(v1alpha1.ReasonSynced), "%s: Ready: %s", rc.Name, c.Message)
	g.Expect(c.Status).To(gomega.Equal(metav1.ConditionTrue), "%s", rc.Name)
	g.Expect(got.Status.ObservedGeneration).To(gomega.Equal(got.Generation), "%s", rc.Name)
}

// deleteLeasesAfter removes the named leader election Leases when t ends,
// after the managers it starts later (cleanups run last in, first out): a
// killed manager keeps its Lease, and the next test's managers need not
// wait for it to expire. Call it before starting the managers.
func deleteLeasesAfter(t *testing.T, names ...string) {
	t.Cleanup(func() {
		for _, name := range names {
			l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNS, Name: name}}
			if err := client.IgnoreNotFound(k8s.Delete(context.Background(), l)); err != nil {
				t.Errorf("delete the leader election Lease %s: %v", name, err)
			}
		}
	})
}
