// Command bench measures credsync against the floor of its job: a real
// control plane (envtest), a fake Tines tenant with injected latency, N
// RemoteCredentials and the real manager binary as a subprocess. It prints
// one table. The floor is a bare loop doing, for N objects, the same vendor
// GET and one status merge patch with the same concurrency: the ratio of
// the operator's cold sync to the floor is the headline figure, since
// absolute times drift on shared machines. A second table measures
// fairness between tenants (tenancy.go), a third a restart over failing
// credentials (failing.go).
//
//	go run ./hack/bench --manager bin/manager --n 1000,10000
//	go run ./hack/bench --manager bin/manager --only tenancy
//	go run ./hack/bench --manager bin/manager --only failing --failing-n 1000
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/testenv"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/tines"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

const (
	apiKey      = "bench-api-key-0000"
	benchNS     = "bench"
	floorNS     = "floor"
	inventoryNS = "inventory"
	newObjects  = 20
)

type options struct {
	manager string
	sizes   []int
	latency time.Duration
	workers int
	// cpuProfile, when set, receives a CPU profile of the manager taken
	// during the cold sync of the last N.
	cpuProfile string
	// heapProfile, when set, receives a heap profile of the manager taken
	// at the end of the idle phase of the last N.
	heapProfile string
	// fleet, tenancy and failing say which tables to measure (--only).
	fleet, tenancy, failing bool
	// failingN is how many failing credentials the restart finds.
	failingN int
	// inventory says to measure the inventory table, of inventoryN tokens.
	inventory  bool
	inventoryN int
	// tenantN is how many credentials the busy tenant creates at once;
	// tenantBudgets are the request budgets its provider is measured with.
	tenantN       int
	tenantBudgets []string
}

func main() {
	var o options
	var sizes string
	flag.StringVar(&o.manager, "manager", "bin/manager", "manager binary to measure")
	flag.StringVar(&sizes, "n", "1000,10000", "comma-separated numbers of RemoteCredentials")
	flag.DurationVar(&o.latency, "latency", 50*time.Millisecond, "latency the fake vendor adds to every answer")
	flag.IntVar(&o.workers, "workers", 16, "concurrency of the operator (--max-concurrent-reconciles) and of the floor loop")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the manager during cold sync to this file")
	flag.StringVar(&o.heapProfile, "heapprofile", "", "write a heap profile of the manager after the idle phase to this file")
	only := flag.String("only", "", "measure one table only: fleet (the N sizes), tenancy (a busy tenant and a quiet one), failing (a restart over credentials failing for an hour) or inventory (a 10,000-token inventory, Tines and GitLab)")
	flag.IntVar(&o.inventoryN, "inventory-n", 10000, "tokens at the vendor and RemoteCredentials naming them (inventory table: Tines and GitLab side by side)")
	flag.IntVar(&o.failingN, "failing-n", 1000, "credentials failing with 5xx that the restart finds (failing table)")
	flag.IntVar(&o.tenantN, "tenancy-n", 10000, "credentials the busy tenant creates at once (tenancy table)")
	budgets := flag.String("tenancy-budgets", strings.Join(tenantBudgetNames, ","),
		"comma-separated request budgets of the busy tenant's provider (tenancy table): vendor (no spec.rateLimit), unlimited (the fleet's)")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	switch *only {
	case "":
		o.fleet, o.tenancy, o.failing, o.inventory = true, true, true, true
	case "inventory":
		o.inventory = true
	case "fleet":
		o.fleet = true
	case "tenancy":
		o.tenancy = true
	case "failing":
		o.failing = true
	default:
		fmt.Fprintf(os.Stderr, "bad --only %q: fleet, tenancy, failing or inventory\n", *only)
		os.Exit(2)
	}
	for _, b := range strings.Split(*budgets, ",") {
		if _, ok := tenantBudgets[strings.TrimSpace(b)]; !ok {
			fmt.Fprintf(os.Stderr, "bad --tenancy-budgets %q: %s\n", b, strings.Join(tenantBudgetNames, " or "))
			os.Exit(2)
		}
		o.tenantBudgets = append(o.tenantBudgets, strings.TrimSpace(b))
	}
	if o.failingN < 1 {
		fmt.Fprintf(os.Stderr, "bad --failing-n %d\n", o.failingN)
		os.Exit(2)
	}
	if o.tenantN < 1 {
		fmt.Fprintf(os.Stderr, "bad --tenancy-n %d\n", o.tenantN)
		os.Exit(2)
	}
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 2*newObjects {
			fmt.Fprintf(os.Stderr, "bad -n %q\n", s)
			os.Exit(2)
		}
		o.sizes = append(o.sizes, n)
	}
	fmt.Printf("credsync benchmark: %d workers, vendor latency %s, %s, %d CPUs, GOMAXPROCS %d\n\n",
		o.workers, o.latency, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if o.fleet {
		var results []result
		for _, n := range o.sizes {
			r, err := measure(context.Background(), o, n)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				os.Exit(1)
			}
			results = append(results, r)
		}
		printTable(results)
	}
	if o.tenancy {
		var results []tenancyResult
		for _, budget := range o.tenantBudgets {
			r, err := measureTenancy(context.Background(), o, budget)
			if err != nil {
				fmt.Fprintln(os.Stderr, "bench:", err)
				os.Exit(1)
			}
			results = append(results, r)
		}
		if o.fleet {
			fmt.Println()
		}
		printTenancyTable(o, results)
	}
	if o.failing {
		r, err := measureFailing(context.Background(), o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if o.fleet || o.tenancy {
			fmt.Println()
		}
		printFailingTable([]failingResult{r})
	}
	if o.inventory {
		runs, err := measureInventories(context.Background(), o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if o.fleet || o.tenancy || o.failing {
			fmt.Println()
		}
		printInventoryTable(o, runs)
	}
}

// result holds the figures of one run.
type result struct {
	n                     int
	refresh               time.Duration
	floor, cold           time.Duration
	coldCalls             int
	newP50, newP99        time.Duration
	idleWrites, idleCalls int
	// restart over the bench fleet (refresh interval res.refresh) and
	// over the floor's fleet (restartLongRefresh): API writes and
	// credential reads in the first minute, busiest second.
	restartWrites, restartLongWrites int
	restartCalls, restartLongCalls   int
	restartPeakPerSecond             int
	// inventory on: cold sync time, list calls (less the key check) and
	// GETs, peak RSS; a restart's first minute.
	invCold                                           time.Duration
	invColdLists, invColdGets                         int
	invPeakRSS                                        int64
	invRestartWrites, invRestartGets, invRestartLists int
	peakRSS                                           int64 // bytes, VmHWM of the manager
	rssAfterCold, rssAfterIdle                        int64
}

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "==> "+format+"\n", args...)
}

func measure(ctx context.Context, o options, n int) (res result, err error) {
	res.n = n
	// A refresh interval comfortably longer than one pass over all
	// credentials, so that refreshes of the idle phase do not overlap.
	pass := time.Duration(n) * o.latency / time.Duration(o.workers)
	res.refresh = max(30*time.Second, (3 * pass).Round(10*time.Second))

	step("N=%d: starting a control plane and a fake Tines tenant (latency %s)", n, o.latency)
	p, err := startPlane("fleet")
	if err != nil {
		return res, err
	}
	defer p.stop()
	cfg, k8s, dir, kubeconfig := p.cfg, p.k8s, p.dir, p.kubeconfig
	fake := tinestest.NewServer(apiKey)
	defer fake.Close()
	fake.SetLatency(o.latency)
	// The floor has no budget: neither does the operator here.
	unlimited := &v1alpha1.RateLimit{RequestsPerMinute: 1000000, Burst: 100000, MaxConcurrent: 1024}
	for _, ns := range []string{benchNS, floorNS} {
		if err := p.tinesProvider(ctx, ns, fake, unlimited); err != nil {
			return res, err
		}
	}
	spec := v1alpha1.CredentialProviderSpec{
		Tines:     &v1alpha1.TinesProvider{URL: fake.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "tines-api"}},
		CABundle:  fake.CABundle(),
		RateLimit: unlimited,
	}
	step("creating %d vendor credentials and %d RemoteCredentials in each of two namespaces", n+newObjects, n)
	for i := range n + newObjects {
		fake.Put(tinestest.Sample(int64(i+1), fmt.Sprintf("credential-%d", i+1)))
	}
	// The floor's fleet refreshes hourly: after the floor wrote its
	// status, it is the synced fleet a restarted manager finds. Its
	// provider was checked by an earlier manager, as a synced fleet's is.
	step("a manager checks the floor's provider (no credentials yet)")
	if err := checkProvider(ctx, o, k8s, kubeconfig, floorNS, filepath.Join(dir, "manager-0.log")); err != nil {
		return res, err
	}
	for ns, refresh := range map[string]time.Duration{benchNS: res.refresh, floorNS: restartLongRefresh} {
		if err := createCredentials(ctx, k8s, ns, 1, n, refresh); err != nil {
			return res, err
		}
	}

	// The bench's own informer watches both namespaces from here on, so
	// that the floor and the operator share the machine with it alike.
	watch, err := newReadyWatch(ctx, cfg, benchNS, floorNS)
	if err != nil {
		return res, err
	}
	step("floor: %d vendor GETs and %d status patches, %d at a time", n, n, o.workers)
	if res.floor, err = floor(ctx, k8s, spec, n, o.workers); err != nil {
		return res, err
	}
	fake.ResetCalls()
	step("cold sync: starting the manager")
	mgr, err := startManager(ctx, o, kubeconfig, benchNS, filepath.Join(dir, "manager.log"))
	if err != nil {
		return res, err
	}
	defer func() { _ = mgr.stop() }()
	start := time.Now()
	if o.cpuProfile != "" {
		go mgr.profile(10*time.Second, o.cpuProfile)
	}
	// Halfway through, create new credentials: they must not wait for the rest.
	if err := watch.waitReady(ctx, benchNS, n/2, 15*time.Minute); err != nil {
		return res, mgr.explain(err)
	}
	created, err := createNew(ctx, k8s, benchNS, n+1, newObjects, res.refresh)
	if err != nil {
		return res, err
	}
	if err := watch.waitReady(ctx, benchNS, n+newObjects, 15*time.Minute); err != nil {
		return res, mgr.explain(err)
	}
	res.cold = watch.lastReady(benchNS).Sub(start)
	res.coldCalls = fake.TotalCalls()
	waits := watch.waits(benchNS, created)
	res.newP50, res.newP99 = percentile(waits, 0.50), percentile(waits, 0.99)
	res.rssAfterCold = mgr.rss()

	// The window starts half an interval after the cold sync, between two
	// waves of refreshes, and holds exactly the next two waves (each
	// credential refreshes every 0.9-1.1 intervals).
	step("idle: two refresh intervals (%s) with nothing changed at the vendor", 2*res.refresh)
	time.Sleep(time.Until(watch.lastReady(benchNS).Add(res.refresh / 2)))
	writes0, calls0 := mgr.writes(), fake.TotalCalls()
	time.Sleep(2 * res.refresh)
	res.idleWrites, res.idleCalls = mgr.writes()-writes0, (fake.TotalCalls()-calls0)/2
	if res.idleWrites != 0 {
		byMethod, _ := mgr.writesByMethod()
		fmt.Fprintf(os.Stderr, "writes during the idle phase (%d); writes by method so far: %v\n", res.idleWrites, byMethod)
	}
	res.rssAfterIdle = mgr.rss()
	if o.heapProfile != "" {
		mgr.fetch(strings.Replace(mgr.pprofURL, "/profile", "/heap", 1), o.heapProfile)
	}
	res.peakRSS = mgr.peakRSS()

	step("restart: stopping the manager and starting a new one over %d synced credentials (refresh %s) for a minute", n+newObjects, res.refresh)
	if err := mgr.stop(); err != nil {
		return res, err
	}
	if res.restartWrites, res.restartCalls, _, err = restartMinute(ctx, o, kubeconfig, benchNS, filepath.Join(dir, "manager-2.log"), fake); err != nil {
		return res, err
	}
	res.restartPeakPerSecond = peakPerSecond(fake, n+newObjects, time.Time{}) // calls were reset at the restart
	step("restart: a manager over the floor's %d synced credentials (refresh %s) for a minute", n, restartLongRefresh)
	if res.restartLongWrites, res.restartLongCalls, _, err = restartMinute(ctx, o, kubeconfig, floorNS, filepath.Join(dir, "manager-3.log"), fake); err != nil {
		return res, err
	}
	return res, measureInventory(ctx, o, cfg, k8s, kubeconfig, dir, fake, spec, &res)
}

// inventoryInterval is the sweep interval of the inventory fleet's
// provider: shorter than its credentials' refresh interval, so sweeps
// serve their refreshes.
const inventoryInterval = 15 * time.Minute

// measureInventory runs a manager over N credentials of a provider with
// inventory on, cold and then restarted, counting list calls (not the
// provider's key check) and GETs.
func measureInventory(ctx context.Context, o options, cfg *rest.Config, k8s client.Client, kubeconfig, dir string, fake *tinestest.Server, spec v1alpha1.CredentialProviderSpec, res *result) error {
	n := res.n
	step("inventory: %d credentials of a provider with inventory on (every %s)", n, inventoryInterval)
	cold, err := coldInventory(ctx, o, cfg, k8s, kubeconfig, dir, inventoryNS, fake, listKey, spec, "tines-api", map[string]string{"apiKey": apiKey}, n)
	if err != nil {
		return err
	}
	res.invCold, res.invColdLists, res.invColdGets, res.invPeakRSS = cold.time, cold.lists, cold.gets, cold.peakRSS
	step("inventory: restart over the %d synced credentials for a minute", n)
	var lists int
	if res.invRestartWrites, res.invRestartGets, lists, err = restartMinute(ctx, o, kubeconfig, inventoryNS, filepath.Join(dir, "manager-inventory-2.log"), fake); err != nil {
		return err
	}
	res.invRestartLists = lists - 1
	return nil
}

// calls counts a fake vendor's requests.
type calls interface {
	ResetCalls()
	TotalCalls() int
	ListCalls() int
	Calls(key string) int
}

// inventoryRun is what a cold start over a provider with inventory on
// took: list calls (less the key check), GETs, time to all Ready, peak RSS.
type inventoryRun struct {
	lists, gets int
	time        time.Duration
	peakRSS     int64
}

// listKey is the fakes' key of list calls (tinestest.ListID, ...).
const listKey = "list"

// coldInventory creates, in ns, the provider of spec (its Secret
// secretName holding secret) with inventory on and n RemoteCredentials of it (IDs 1..n,
// refreshing hourly), starts a manager and measures until all are Ready.
func coldInventory(ctx context.Context, o options, cfg *rest.Config, k8s client.Client, kubeconfig, dir, ns string, fake calls, keyCheckKey string, spec v1alpha1.CredentialProviderSpec, secretName string, secret map[string]string, n int) (inventoryRun, error) {
	var run inventoryRun
	spec.Inventory = &v1alpha1.Inventory{Interval: metav1.Duration{Duration: inventoryInterval}}
	for _, obj := range []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		testenv.ProviderSecret(ns, secretName, secret),
		&v1alpha1.CredentialProvider{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: providerOf(ns)}, Spec: spec},
	} {
		if err := k8s.Create(ctx, obj); err != nil {
			return run, err
		}
	}
	if err := createCredentials(ctx, k8s, ns, 1, n, time.Hour); err != nil {
		return run, err
	}
	watch, err := newReadyWatch(ctx, cfg, ns)
	if err != nil {
		return run, err
	}
	fake.ResetCalls()
	mgr, err := startManager(ctx, o, kubeconfig, ns, filepath.Join(dir, "manager-"+ns+".log"))
	if err != nil {
		return run, err
	}
	defer func() { _ = mgr.stop() }()
	start := time.Now()
	if err := watch.waitReady(ctx, ns, n, 15*time.Minute); err != nil {
		return run, mgr.explain(err)
	}
	run.time = watch.lastReady(ns).Sub(start)
	// Less the key check: a list call (Tines) or a call of its own.
	run.lists, run.gets = fake.ListCalls(), fake.TotalCalls()-fake.ListCalls()
	if keyCheck := fake.Calls(keyCheckKey); keyCheckKey == listKey {
		run.lists--
	} else {
		run.gets -= keyCheck
	}
	run.peakRSS = mgr.peakRSS()
	return run, mgr.stop()
}

// checkProvider runs a manager over ns until its provider "tines" is
// Ready, and stops it.
func checkProvider(ctx context.Context, o options, k8s client.Client, kubeconfig, ns, logPath string) error {
	mgr, err := startManager(ctx, o, kubeconfig, ns, logPath)
	if err != nil {
		return err
	}
	defer func() { _ = mgr.stop() }()
	if err := waitProviderReady(ctx, k8s, ns); err != nil {
		return mgr.explain(err)
	}
	return mgr.stop()
}

// waitProviderReady waits up to a minute for the provider "tines" of ns to
// be Ready.
func waitProviderReady(ctx context.Context, k8s client.Client, ns string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		p := &v1alpha1.CredentialProvider{}
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "tines"}, p); err != nil {
			return err
		}
		if meta.IsStatusConditionTrue(p.Status.Conditions, v1alpha1.ConditionReady) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("provider %s/tines not Ready after a minute", ns)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// restartLongRefresh is the refresh interval of the floor's fleet, over
// which a restarted manager spreads its first checks.
const restartLongRefresh = time.Hour

// restartMinute starts a manager over the synced credentials of ns, lets
// it run for a minute and stops it. It returns the API writes, the
// credential GETs and the list calls (the provider's key check included)
// it made.
func restartMinute(ctx context.Context, o options, kubeconfig, ns, logPath string, fake *tinestest.Server) (writes, reads, lists int, err error) {
	fake.ResetCalls()
	mgr, err := startManager(ctx, o, kubeconfig, ns, logPath)
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() { _ = mgr.stop() }()
	time.Sleep(time.Minute)
	writes, reads, lists = mgr.writes(), fake.TotalCalls()-fake.ListCalls(), fake.ListCalls()
	return writes, reads, lists, mgr.stop()
}

func credentialName(i int) string { return fmt.Sprintf("credential-%05d", i) }

// providerOf names the provider of ns's credentials: "tines" but in the
// namespaces of other vendors' tables.
func providerOf(ns string) string {
	if p, ok := providers[ns]; ok {
		return p
	}
	return "tines"
}

var providers = map[string]string{inventoryGitLabNS: "gitlab"}

func newCredential(ns string, i int, refresh time.Duration) *v1alpha1.RemoteCredential {
	return &v1alpha1.RemoteCredential{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: credentialName(i)},
		Spec: v1alpha1.RemoteCredentialSpec{
			ProviderRef:     v1alpha1.ProviderReference{Name: providerOf(ns)},
			ID:              strconv.Itoa(i),
			RefreshInterval: &metav1.Duration{Duration: refresh},
		},
	}
}

// createCredentials creates credentials first..last in ns, 32 at a time.
func createCredentials(ctx context.Context, k8s client.Client, ns string, first, last int, refresh time.Duration) error {
	next := atomic.Int64{}
	next.Store(int64(first))
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i <= last; i = int(next.Add(1) - 1) {
				if err := k8s.Create(ctx, newCredential(ns, i, refresh)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// createNew creates count credentials of ns from first on, one every
// 100ms, and returns when each was created.
func createNew(ctx context.Context, k8s client.Client, ns string, first, count int, refresh time.Duration) (map[string]time.Time, error) {
	created := map[string]time.Time{}
	for i := first; i < first+count; i++ {
		rc := newCredential(ns, i, refresh)
		at := time.Now()
		if err := k8s.Create(ctx, rc); err != nil {
			return nil, err
		}
		created[rc.Name] = at
		time.Sleep(100 * time.Millisecond)
	}
	return created, nil
}

// floor does the operator's minimal work for n credentials: one vendor GET
// (through the same client code, TLS and all) and one status merge patch
// each, workers at a time.
func floor(ctx context.Context, k8s client.Client, spec v1alpha1.CredentialProviderSpec, n, workers int) (time.Duration, error) {
	vendor, err := vendortest.NewClient(tines.Vendor(), &spec, map[string]string{"apiKey": apiKey}, vendors.DefaultTimeout)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	next := atomic.Int64{}
	var wg sync.WaitGroup
	var firstErr error
	var once sync.Once
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)); i <= n; i = int(next.Add(1)) {
				cred, err := vendor.Get(ctx, vendors.Ref{ID: strconv.Itoa(i)})
				if err == nil {
					rc := &v1alpha1.RemoteCredential{ObjectMeta: metav1.ObjectMeta{Namespace: floorNS, Name: credentialName(i)}}
					before := rc.DeepCopy()
					// What a first sync writes: the mapped metadata and Ready.
					cred.ApplyTo(&rc.Status)
					rc.Status.Vendor, rc.Status.ObservedGeneration = v1alpha1.VendorTines, 1
					meta.SetStatusCondition(&rc.Status.Conditions, metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue,
						Reason: v1alpha1.ReasonSynced, Message: "tines credential " + strconv.Itoa(i) + " synced", ObservedGeneration: 1})
					err = k8s.Status().Patch(ctx, rc, client.MergeFrom(before))
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// readyWatch records when each RemoteCredential of the namespaces it
// watches was first seen Ready, from an informer.
type readyWatch struct {
	mu      sync.Mutex
	readyAt map[client.ObjectKey]time.Time
	count   map[string]int       // by namespace
	last    map[string]time.Time // by namespace
}

// newReadyWatch watches the RemoteCredentials of namespaces, with one
// informer over them all (so that it loads the machine as the manager's
// does).
func newReadyWatch(ctx context.Context, cfg *rest.Config, namespaces ...string) (*readyWatch, error) {
	w := &readyWatch{readyAt: map[client.ObjectKey]time.Time{}, count: map[string]int{}, last: map[string]time.Time{}}
	watched := map[string]cache.Config{}
	for _, ns := range namespaces {
		watched[ns] = cache.Config{}
	}
	c, err := cache.New(cfg, cache.Options{Scheme: testenv.Scheme(), DefaultNamespaces: watched})
	if err != nil {
		return nil, err
	}
	inf, err := c.GetInformer(ctx, &v1alpha1.RemoteCredential{})
	if err != nil {
		return nil, err
	}
	see := func(obj any) {
		rc, ok := obj.(*v1alpha1.RemoteCredential)
		if !ok || !meta.IsStatusConditionTrue(rc.Status.Conditions, v1alpha1.ConditionReady) {
			return
		}
		now := time.Now()
		key := client.ObjectKeyFromObject(rc)
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, seen := w.readyAt[key]; !seen {
			w.readyAt[key] = now
			w.count[rc.Namespace]++
			w.last[rc.Namespace] = now
		}
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    see,
		UpdateFunc: func(_, obj any) { see(obj) },
	}); err != nil {
		return nil, err
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, errors.New("bench informer did not sync")
	}
	return w, nil
}

// ready is how many credentials of ns were seen Ready.
func (w *readyWatch) ready(ns string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.count[ns]
}

// lastReady is when the last credential of ns turned Ready.
func (w *readyWatch) lastReady(ns string) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last[ns]
}

// waits is, for each credential of ns created at created[name], the time
// from its creation to Ready.
func (w *readyWatch) waits(ns string, created map[string]time.Time) []time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var d []time.Duration
	for name, at := range created {
		d = append(d, w.readyAt[client.ObjectKey{Namespace: ns, Name: name}].Sub(at))
	}
	return d
}

func (w *readyWatch) waitReady(ctx context.Context, ns string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for w.ready(ns) < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d credentials of %s Ready after %s", w.ready(ns), n, ns, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// manager is a running manager subprocess.
type manager struct {
	cmd        *exec.Cmd
	metricsURL string
	pprofURL   string
	logPath    string
	done       chan error
	stopped    bool
}

func startManager(ctx context.Context, o options, kubeconfig, ns, logPath string) (*manager, error) {
	addr, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	pprofAddr, err := testenv.FreeAddr()
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig", kubeconfig,
		"--metrics-bind-address", addr,
		"--metrics-secure=false",
		"--health-probe-bind-address", "0",
		"--watch-namespaces", ns,
		"--pprof-bind-address", pprofAddr,
		"--max-concurrent-reconciles", strconv.Itoa(o.workers),
	}, vendortest.LoopbackFlags...)
	cmd := exec.CommandContext(ctx, o.manager, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start manager (run `make build` first): %w", err)
	}
	m := &manager{cmd: cmd, metricsURL: "http://" + addr + "/metrics", pprofURL: "http://" + pprofAddr + "/debug/pprof/profile",
		logPath: logPath, done: make(chan error, 1)}
	go func() { m.done <- cmd.Wait(); logFile.Close() }()
	return m, nil
}

func (m *manager) stop() error {
	if m.stopped {
		return nil
	}
	m.stopped = true
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		return err
	case <-time.After(30 * time.Second):
		_ = m.cmd.Process.Kill()
		return errors.New("manager did not stop within 30s of SIGTERM")
	}
}

// profile writes a CPU profile of the manager over d to path.
func (m *manager) profile(d time.Duration, path string) {
	m.fetch(fmt.Sprintf("%s?seconds=%d", m.pprofURL, int(d.Seconds())), path)
}

// fetch writes what url answers to path.
func (m *manager) fetch(url, path string) {
	var resp *http.Response
	var err error
	for range 50 { // the manager may not listen yet
		if resp, err = http.Get(url); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = os.WriteFile(path, b, 0o644)
}

// explain adds the tail of the manager's log to err.
func (m *manager) explain(err error) error {
	b, _ := os.ReadFile(m.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return fmt.Errorf("%w\nmanager log:\n%s", err, strings.Join(lines, "\n"))
}

// writesByMethod is the manager's count of mutating API requests so far
// (status patches, events, anything) by HTTP method, from client-go's
// request metrics.
func (m *manager) writesByMethod() (map[string]int, error) {
	_, families, err := testenv.Scrape(m.metricsURL)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, s := range families["rest_client_requests_total"].GetMetric() {
		if method := testenv.LabelValue(s, "method"); method != http.MethodGet {
			out[method] += int(s.GetCounter().GetValue())
		}
	}
	return out, nil
}

// writes is the total of writesByMethod, -1 when the manager cannot be read.
func (m *manager) writes() int {
	byMethod, err := m.writesByMethod()
	if err != nil {
		return -1
	}
	total := 0
	for _, n := range byMethod {
		total += n
	}
	return total
}

// rss and peakRSS read the manager's resident memory now and at its peak.
func (m *manager) rss() int64     { return procStatus(m.cmd.Process.Pid, "VmRSS:") }
func (m *manager) peakRSS() int64 { return procStatus(m.cmd.Process.Pid, "VmHWM:") }

func procStatus(pid int, field string) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field) {
			fields := strings.Fields(line)
			kb, _ := strconv.ParseInt(fields[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// peakPerSecond is the most vendor calls made in one second since start.
func peakPerSecond(fake *tinestest.Server, ids int, since time.Time) int {
	perSecond := map[int64]int{}
	for i := 1; i <= ids; i++ {
		for _, at := range fake.CallTimes(strconv.Itoa(i)) {
			if !at.Before(since) {
				perSecond[at.Unix()]++
			}
		}
	}
	peak := 0
	for _, c := range perSecond {
		peak = max(peak, c)
	}
	return peak
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return d[max(i, 0)]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// markdownTable prints the head of a Markdown table: a figure column, one
// column per run (head names it) and a last one (last); it returns the
// printer of a row, cell giving a run's value.
func markdownTable[R any](rs []R, head func(R) string, last string) func(name, lastCell string, cell func(R) string) {
	fmt.Print("| figure |")
	for _, r := range rs {
		fmt.Printf(" %s |", head(r))
	}
	fmt.Printf(" %s |\n| --- |", last)
	for range rs {
		fmt.Print(" --- |")
	}
	fmt.Print(" --- |\n")
	return func(name, lastCell string, cell func(R) string) {
		fmt.Printf("| %s |", name)
		for _, r := range rs {
			fmt.Printf(" %s |", cell(r))
		}
		fmt.Printf(" %s |\n", lastCell)
	}
}

func printTable(rs []result) {
	row := markdownTable(rs, func(r result) string { return fmt.Sprintf("N = %d", r.n) }, "ideal")
	row("floor: N vendor GETs + N status patches", "", func(r result) string { return secs(r.floor) })
	row("cold sync, all Ready", "", func(r result) string { return secs(r.cold) })
	row("**cold sync / floor**", "≤ 1.2", func(r result) string { return fmt.Sprintf("**%.2f**", float64(r.cold)/float64(r.floor)) })
	row("vendor calls during cold sync (N + 20 new)", "N + 20", func(r result) string { return strconv.Itoa(r.coldCalls) })
	row("new credential during cold sync: time to Ready p50", "", func(r result) string { return secs(r.newP50) })
	row("new credential during cold sync: time to Ready p99", "≤ 5s", func(r result) string { return secs(r.newP99) })
	row("refresh interval used", "", func(r result) string { return r.refresh.String() })
	row("API writes in two idle refresh intervals", "0", func(r result) string { return strconv.Itoa(r.idleWrites) })
	row("vendor calls per refresh interval", "N + 20", func(r result) string { return strconv.Itoa(r.idleCalls) })
	row("restart: API writes in the first minute", "0", func(r result) string { return strconv.Itoa(r.restartWrites) })
	row("restart: credential reads in the first minute (target)", "≤ 2·(N+20)·60s/refresh", func(r result) string {
		return fmt.Sprintf("%d (≤ %d)", r.restartCalls, 2*(r.n+newObjects)*60/int(r.refresh.Seconds()))
	})
	row("restart: busiest second of credential reads", "≤ provider budget", func(r result) string { return strconv.Itoa(r.restartPeakPerSecond) })
	row("restart over N refreshing hourly: API writes in the first minute", "0", func(r result) string { return strconv.Itoa(r.restartLongWrites) })
	row("restart over N refreshing hourly: credential reads in the first minute (target)", "≤ 2·N·60s/1h", func(r result) string {
		return fmt.Sprintf("%d (≤ %d)", r.restartLongCalls, 2*r.n*60/int(restartLongRefresh.Seconds()))
	})
	row("inventory off: cold sync vendor calls / time to all Ready / peak RSS", "", func(r result) string {
		return fmt.Sprintf("%d / %s / %s", r.coldCalls, secs(r.cold), mib(r.peakRSS))
	})
	row("inventory on: cold sync list calls + GETs / time to all Ready / peak RSS", "⌈N/500⌉ + 0", func(r result) string {
		return fmt.Sprintf("%d + %d / %s / %s", r.invColdLists, r.invColdGets, secs(r.invCold), mib(r.invPeakRSS))
	})
	row("inventory on: restart, first minute: list calls + GETs, API writes", "≤ one sweep", func(r result) string {
		return fmt.Sprintf("%d + %d, %d", r.invRestartLists, r.invRestartGets, r.invRestartWrites)
	})
	row("manager RSS after cold sync / after idle", "", func(r result) string { return mib(r.rssAfterCold) + " / " + mib(r.rssAfterIdle) })
	row("manager peak RSS", "≤ 150 MiB at 10k", func(r result) string { return mib(r.peakRSS) })
	if len(rs) >= 2 {
		a, b := rs[0], rs[len(rs)-1]
		slope := float64(b.peakRSS-a.peakRSS) / float64(b.n-a.n)
		steady := float64(b.rssAfterIdle-a.rssAfterIdle) / float64(b.n-a.n)
		fmt.Printf("\nmemory slope between N = %d and N = %d: %.1f KiB per credential by peak RSS, %.1f KiB by RSS after the idle phase (target ≤ 8 KiB)\n",
			a.n, b.n, slope/1024, steady/1024)
	}
}
