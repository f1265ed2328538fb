package e2e

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// A manager that starts over a synced fleet (a restart, an upgrade, a
// failover) does not read every credential again: each is checked first at
// a stable point within its refresh interval. Over its first 15s a second
// manager makes the provider's key check and at most a few reads, and
// writes nothing; it still syncs a new credential at once.
func TestRestartSpreadsChecksOverTheRefreshInterval(t *testing.T) {
	requireEnv(t)
	const n = 200
	// A fake of this test's own: every call it gets is this test's.
	fake := tinestest.NewServer(tinesKey)
	defer fake.Close()
	ns := newNamespace(t)
	tinesProviderAt(t, ns, fake)
	deleteLeasesAfter(t, leaseName)
	first := startManager(t, "restart-1")
	first.waitReady(t)
	creds := make([]*v1alpha1.RemoteCredential, n)
	for i := range creds {
		id := fakeID()
		fake.Put(tinestest.Sample(id, fmt.Sprintf("fleet_%d", i)))
		creds[i] = newCredential(ns, fmt.Sprintf("cred-%d", i), strconv.FormatInt(id, 10))
		create(t, creds[i])
	}
	g := gomega.NewWithT(t)
	g.Eventually(func(g gomega.Gomega) {
		for _, rc := range creds {
			expectSynced(g, rc)
		}
	}).WithTimeout(2 * startup).WithPolling(time.Second).Should(gomega.Succeed())
	g.Expect(first.cmd.Process.Signal(syscall.SIGTERM)).To(gomega.Succeed())
	<-first.exited
	versions := resourceVersions(g, ns)

	fake.ResetCalls()
	second := startManager(t, "restart-2")
	started := time.Now()
	second.waitReady(t)
	window := 15 * time.Second
	time.Sleep(time.Until(started.Add(window)))
	reads := fake.TotalCalls() - fake.ListCalls()
	t.Logf("second manager over %d synced credentials (refresh 1h), first %s: %d key checks, %d credential reads",
		n, window, fake.ListCalls(), reads)
	g.Expect(fake.ListCalls()).To(gomega.Equal(1), "the provider's key is checked once")
	g.Expect(reads).To(gomega.BeNumerically("<=", 5), "credential reads in the first %s after a restart", window)
	g.Expect(resourceVersions(g, ns)).To(gomega.Equal(versions), "the restart wrote to synced credentials")

	// It is working: a new credential syncs at once.
	id := fakeID()
	fake.Put(tinestest.Sample(id, "after_restart"))
	rc := newCredential(ns, "after-restart", strconv.FormatInt(id, 10))
	create(t, rc)
	g.Eventually(func(g gomega.Gomega) { expectSynced(g, rc) }).WithTimeout(startup).WithPolling(poll).Should(gomega.Succeed())
	g.Expect(second.cmd.Process.Signal(syscall.SIGTERM)).To(gomega.Succeed())
	<-second.exited
}

// resourceVersions maps the RemoteCredentials of ns to their resourceVersion.
func resourceVersions(g gomega.Gomega, ns string) map[string]string {
	list := &v1alpha1.RemoteCredentialList{}
	g.Expect(k8s.List(context.Background(), list, client.InNamespace(ns))).To(gomega.Succeed())
	out := map[string]string{}
	for _, rc := range list.Items {
		out[rc.Name] = rc.ResourceVersion
	}
	return out
}
