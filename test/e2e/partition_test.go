package e2e

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"testing"

	"github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/metrics"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// Two managers that split the credentials with disjoint label selectors
// (each with its own Lease) never both call the vendor for one credential;
// a credential moved from one shard to the other moves between managers.
func TestPartitionedManagersNeverShareACredential(t *testing.T) {
	requireEnv(t)
	g := gomega.NewWithT(t)
	ns := newNamespace(t)
	tinesProvider(t, ns)

	deleteLeasesAfter(t, "credsync-shard-a", "credsync-shard-b")
	shards := map[string]*manager{}
	for _, shard := range []string{"a", "b"} {
		m := startManager(t, "shard-"+shard,
			"--watch-label-selector=shard="+shard, "--leader-election-id=credsync-shard-"+shard)
		m.waitReady(t)
		shards[shard] = m
	}

	ids := map[string][]string{} // shard → vendor IDs
	var rcs []*v1alpha1.RemoteCredential
	for i := range 6 {
		shard := []string{"a", "b"}[i%2]
		id := fakeID()
		sid := strconv.FormatInt(id, 10)
		tinesFake.Put(tinestest.Sample(id, fmt.Sprintf("shard_%s_%d", shard, i)))
		rc := newCredential(ns, fmt.Sprintf("cred-%d", i), sid)
		rc.Labels = map[string]string{"shard": shard}
		create(t, rc)
		rcs = append(rcs, rc)
		ids[shard] = append(ids[shard], sid)
	}
	for _, rc := range rcs {
		g.Eventually(func(g gomega.Gomega) { expectSynced(g, rc) }).WithTimeout(startup).WithPolling(poll).Should(gomega.Succeed())
	}
	calls := func(ids []string) float64 {
		n := 0
		for _, id := range ids {
			n += tinesFake.Calls(id)
		}
		return float64(n)
	}
	for shard, m := range shards {
		families := m.scrape(g)
		g.Expect(credentialNames(families, ns)).To(gomega.Equal(namesOf(rcs, shard)), "credentials reported by the shard-%s manager", shard)
		// The fake saw exactly the requests this manager counted for its
		// own credentials: nobody else called for them.
		g.Expect(vendorRequests(families, "read")).To(gomega.Equal(calls(ids[shard])), "shard %s: credential reads counted vs made for its credentials", shard)
	}

	// Move cred-0 from shard a to shard b: from then on only b reads it.
	moved := rcs[0]
	g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(moved), moved)).To(gomega.Succeed())
	moved.Labels["shard"] = "b"
	moved.Annotations = map[string]string{v1alpha1.SyncRequestedAtAnnotation: "moved"}
	g.Expect(k8s.Update(context.Background(), moved)).To(gomega.Succeed())
	g.Eventually(func(g gomega.Gomega) {
		g.Expect(k8s.Get(context.Background(), client.ObjectKeyFromObject(moved), moved)).To(gomega.Succeed())
		g.Expect(moved.Status.LastHandledSyncRequest).To(gomega.Equal("moved"))
		g.Expect(credentialNames(shards["a"].scrape(g), ns)).NotTo(gomega.ContainElement(moved.Name))
		g.Expect(credentialNames(shards["b"].scrape(g), ns)).To(gomega.ContainElement(moved.Name))
	}).WithTimeout(startup).WithPolling(poll).Should(gomega.Succeed())
	movedID := moved.Spec.ID
	ids["a"] = ids["a"][1:]
	ids["b"] = append(ids["b"], movedID)
	movedCalls := tinesFake.Calls(movedID)
	a, b := shards["a"].scrape(g), shards["b"].scrape(g)
	// All of a's requests went to its remaining credentials or to cred-0
	// before the move; b made the request after it.
	g.Expect(vendorRequests(a, "read") + vendorRequests(b, "read")).To(gomega.Equal(calls(ids["a"]) + calls(ids["b"])))
	g.Expect(movedCalls).To(gomega.BeNumerically(">=", 2), "read by a, then again by b")
}

// credentialNames are the names of the credentials of namespace ns that a
// manager reports series for, sorted.
func credentialNames(families map[string]*dto.MetricFamily, ns string) []string {
	var names []string
	for _, m := range families[metrics.CredentialReady].GetMetric() {
		if labelValue(m, "namespace") == ns {
			names = append(names, labelValue(m, "name"))
		}
	}
	sort.Strings(names)
	return names
}

// namesOf are the names of the credentials labelled shard, sorted.
func namesOf(rcs []*v1alpha1.RemoteCredential, shard string) []string {
	var names []string
	for _, rc := range rcs {
		if rc.Labels["shard"] == shard {
			names = append(names, rc.Name)
		}
	}
	sort.Strings(names)
	return names
}
