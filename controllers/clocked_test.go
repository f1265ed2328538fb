package controllers_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/labels"
	clocktesting "k8s.io/utils/clock/testing"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/controllers"
	"github.com/credsync/credsync/internal/metrics"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// Tests that make time pass do it on a fake clock, each with a manager of
// its own: the shared manager runs on the real clock, and one test's steps
// must not move another's time. Such a test's namespace is "clocked": the
// credsync objects created in it (create labels them managerLabel) are
// watched by its manager only; the shared manager's cache leaves them out.
const managerLabel = "credsync-test/manager"

// clockedAdopter is the name of a clocked test's provider that adopts:
// the RemoteCredentials it creates are labelled adopted-by=clockedAdopter,
// which the shared manager's cache leaves out too.
const clockedAdopter = "clocked-adopter"

// clockedNamespaces maps each clocked namespace to its manager's first
// namespace, the value of managerLabel.
var clockedNamespaces sync.Map

// ownedByShared selects, for the shared manager's cache, the credsync
// objects of no clocked namespace.
func ownedByShared() labels.Selector {
	s, err := labels.Parse("!" + managerLabel + "," + v1alpha1.AdoptedByLabel + " notin (" + clockedAdopter + ")")
	if err != nil {
		panic(err)
	}
	return s
}

// labelClocked marks obj as its clocked namespace's, when it is in one.
func labelClocked(obj client.Object) {
	owner, ok := clockedNamespaces.Load(obj.GetNamespace())
	if !ok || obj.GetNamespace() == "" {
		return
	}
	switch obj.(type) {
	case *v1alpha1.RemoteCredential, *v1alpha1.CredentialProvider:
	default:
		return
	}
	l := obj.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[managerLabel] = owner.(string)
	obj.SetLabels(l)
}

// clockedRegistries maps a clocked manager's first namespace to the
// registry of its metrics.
var clockedRegistries sync.Map

// lastSweep reads credsync_inventory_last_sweep_timestamp_seconds of the
// provider ns/name from the metrics of ns's clocked manager: when its last
// complete sweep started (to the second), zero before the first.
func lastSweep(t *testing.T, ns, name string) time.Time {
	t.Helper()
	reg, ok := clockedRegistries.Load(ns)
	if !ok {
		t.Fatalf("%s has no clocked manager", ns)
	}
	families, err := reg.(*prometheus.Registry).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != metrics.InventoryLastSweep {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "provider" && l.GetValue() == v1alpha1.ProviderName(ns, name) {
					return time.Unix(int64(m.GetGauge().GetValue()), 0)
				}
			}
		}
	}
	return time.Time{}
}

// clockedManager creates a namespace and starts a manager of the test's
// own for it, on a fake clock set to now; the manager stops when the test
// ends. It returns the namespace and the clock.
func clockedManager(t *testing.T) (string, *clocktesting.FakeClock) {
	t.Helper()
	ns := newNamespace(t)
	return ns, clockedManagerIn(t, ns)
}

// clockedManagerIn is clockedManager for the namespace ns (its cluster
// resource namespace) and more, which exist and hold nothing yet.
func clockedManagerIn(t *testing.T, ns string, more ...string) *clocktesting.FakeClock {
	t.Helper()
	began := time.Now()
	defer func() { t.Logf("clocked manager started in %s", time.Since(began).Round(time.Millisecond)) }()
	namespaces := map[string]cache.Config{}
	for _, n := range append([]string{ns}, more...) {
		clockedNamespaces.Store(n, ns)
		namespaces[n] = cache.Config{}
	}
	clk := clocktesting.NewFakeClock(time.Now())
	reg := prometheus.NewRegistry()
	clockedRegistries.Store(ns, reg)
	own := labels.SelectorFromSet(labels.Set{managerLabel: ns})
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 testenv.Scheme(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		NewClient:              faultyStatusClient,
		Cache: cache.Options{
			DefaultNamespaces: namespaces,
			// Every RemoteCredential of ns is the test's (or its
			// clockedAdopter's).
			ByObject: map[client.Object]cache.ByObject{
				&v1alpha1.CredentialProvider{}:        {Label: own},
				&v1alpha1.ClusterCredentialProvider{}: {Label: own},
			},
		},
		// The shared manager has controllers of the same names.
		Controller: config.Controller{SkipNameValidation: ptr(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Registry: testRegistry(),
		// A ClusterCredentialProvider of a clocked test (labelled
		// managerLabel by the test) keeps its Secret and adopts into ns.
		ClusterResourceNamespace: ns,
		MetricsLabelAllowlist:    []string{metricsLabel},
		Clock:                    clk,
		Metrics:                  reg,
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("the clocked manager's cache did not sync")
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager of %s: %v", ns, err)
		}
	})
	return clk
}

// stepPoll is how long the operator has to act on each step of a fake
// clock: a step's wake-ups are a few fast reconciles.
const stepPoll = 50 * time.Millisecond

// stepUntil steps clk by step before every poll but the first, until
// check passes, and returns the clock's time then: time passes in small
// steps, and the operator acts on each. The clock moves by within at most;
// check then has until eventually on the wall clock to pass. A check that
// counts (sweeps, reads) rather than times gets a generous window: under
// load the operator lags the stepped clock, and a sweep that ends late
// schedules the next one from then.
func stepUntil(t *testing.T, clk *clocktesting.FakeClock, step, within time.Duration, check func(g gomega.Gomega)) time.Time {
	t.Helper()
	end, first := clk.Now().Add(within), true
	gomega.NewWithT(t).Eventually(func(g gomega.Gomega) {
		if left := end.Sub(clk.Now()); !first && left > 0 {
			clk.Step(min(step, left))
		}
		first = false
		check(g)
	}).WithTimeout(eventually).WithPolling(stepPoll).Should(gomega.Succeed(), "within %s on the fake clock", within)
	return clk.Now()
}

// stepFor steps clk by step before every poll until it moved by d, and
// checks at every poll that check passes.
func stepFor(t *testing.T, clk *clocktesting.FakeClock, step, d time.Duration, check func(g gomega.Gomega)) {
	t.Helper()
	end := clk.Now().Add(d)
	g := gomega.NewWithT(t)
	for clk.Now().Before(end) {
		clk.Step(min(step, end.Sub(clk.Now())))
		time.Sleep(stepPoll)
		check(g)
		if t.Failed() {
			t.FailNow()
		}
	}
}

// clockedTines is a Tines fake of the test's own that records its calls at
// clk's time.
func clockedTines(t *testing.T, clk *clocktesting.FakeClock) *tinestest.Server {
	t.Helper()
	fake := tinestest.NewServer(tinesKey)
	t.Cleanup(fake.Close)
	fake.SetClock(clk.Now)
	return fake
}
