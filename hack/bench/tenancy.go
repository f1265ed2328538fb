package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// The tenancy table: tenant A creates tenantN credentials at once, all of
// its own provider; right after A's creates are done, while A's cold sync
// is under way, tenant B creates newObjects of its own provider. B's time
// from creation to Ready must not depend on A's backlog.
const (
	tenantA = "tenant-a"
	tenantB = "tenant-b"
	// tenantRefresh is long enough that no credential refreshes during
	// the run.
	tenantRefresh = time.Hour
)

// tenantBudgets are the request budgets tenant A's provider is measured
// with: the vendor's default (no spec.rateLimit: Tines' 4000/min, burst
// 100, 16 in flight), with which A's reads wait on its budget, and the
// fleet's unlimited one, with which they do not. B's provider always has
// the vendor's default.
var tenantBudgets = map[string]*v1alpha1.RateLimit{
	"vendor":    nil,
	"unlimited": {RequestsPerMinute: 1000000, Burst: 100000, MaxConcurrent: 1024},
}

var tenantBudgetNames = []string{"vendor", "unlimited"}

// tenancyResult holds the figures of one tenancy run.
type tenancyResult struct {
	budget string
	n      int
	// aCreates is how long A's creates took; aReadyAtB how many of A's
	// credentials were Ready when B began creating.
	aCreates  time.Duration
	aReadyAtB int
	// bP50, bP99, bMax: B's time from creation to Ready.
	bP50, bP99, bMax time.Duration
	// aAllReady is A's time from its first create to all Ready.
	aAllReady time.Duration
	// aCalls, bCalls: vendor calls at each tenant's fake (the provider's
	// key check included).
	aCalls, bCalls int
}

func measureTenancy(ctx context.Context, o options, budget string) (res tenancyResult, err error) {
	res.budget, res.n = budget, o.tenantN
	step("tenancy (A's budget: %s): starting a control plane and a fake Tines tenant for each of %s and %s (latency %s)", budget, tenantA, tenantB, o.latency)
	p, err := startPlane("tenancy")
	if err != nil {
		return res, err
	}
	defer p.stop()
	cfg, k8s, dir, kubeconfig := p.cfg, p.k8s, p.dir, p.kubeconfig
	fakes := map[string]*tinestest.Server{}
	for ns, n := range map[string]int{tenantA: o.tenantN, tenantB: newObjects} {
		fake := tinestest.NewServer(apiKey)
		defer fake.Close()
		fake.SetLatency(o.latency)
		for i := range n {
			fake.Put(tinestest.Sample(int64(i+1), fmt.Sprintf("credential-%d", i+1)))
		}
		fakes[ns] = fake
		var limit *v1alpha1.RateLimit
		if ns == tenantA {
			limit = tenantBudgets[budget]
		}
		if err := p.tinesProvider(ctx, ns, fake, limit); err != nil {
			return res, err
		}
	}
	watch, err := newReadyWatch(ctx, cfg, tenantA, tenantB)
	if err != nil {
		return res, err
	}
	mgr, err := startManager(ctx, o, kubeconfig, tenantA+","+tenantB, filepath.Join(dir, "manager.log"))
	if err != nil {
		return res, err
	}
	defer func() { _ = mgr.stop() }()
	for _, ns := range []string{tenantA, tenantB} {
		if err := waitProviderReady(ctx, k8s, ns); err != nil {
			return res, mgr.explain(err)
		}
	}

	step("tenancy: %s creates %d credentials at once", tenantA, o.tenantN)
	start := time.Now()
	if err := createCredentials(ctx, k8s, tenantA, 1, o.tenantN, tenantRefresh); err != nil {
		return res, err
	}
	res.aCreates, res.aReadyAtB = time.Since(start), watch.ready(tenantA)
	step("tenancy: %s creates %d credentials (%d of %s's Ready)", tenantB, newObjects, res.aReadyAtB, tenantA)
	created, err := createNew(ctx, k8s, tenantB, 1, newObjects, tenantRefresh)
	if err != nil {
		return res, err
	}
	if err := watch.waitReady(ctx, tenantB, newObjects, 15*time.Minute); err != nil {
		return res, mgr.explain(err)
	}
	waits := watch.waits(tenantB, created)
	res.bP50, res.bP99 = percentile(waits, 0.50), percentile(waits, 0.99)
	res.bMax = slices.Max(waits)
	step("tenancy: %s Ready (p99 %s); waiting for %s's %d", tenantB, secs(res.bP99), tenantA, o.tenantN)
	if err := watch.waitReady(ctx, tenantA, o.tenantN, 30*time.Minute); err != nil {
		return res, mgr.explain(err)
	}
	res.aAllReady = watch.lastReady(tenantA).Sub(start)
	res.aCalls, res.bCalls = fakes[tenantA].TotalCalls(), fakes[tenantB].TotalCalls()
	return res, mgr.stop()
}

func printTenancyTable(o options, rs []tenancyResult) {
	fmt.Printf("tenancy: %s creates %d credentials at once, then %s creates %d (one every 100ms), each tenant through its own Tines provider and fake\n\n",
		tenantA, o.tenantN, tenantB, newObjects)
	row := markdownTable(rs, func(r tenancyResult) string { return "A's budget: " + r.budget }, "target")
	row("A: creates of its credentials took", "", func(r tenancyResult) string { return secs(r.aCreates) })
	row("A: credentials Ready when B began", "", func(r tenancyResult) string { return strconv.Itoa(r.aReadyAtB) })
	row("B: time to Ready p50", "", func(r tenancyResult) string { return secs(r.bP50) })
	row("**B: time to Ready p99**", "≤ 5s", func(r tenancyResult) string { return "**" + secs(r.bP99) + "**" })
	row("B: time to Ready max", "", func(r tenancyResult) string { return secs(r.bMax) })
	row("A: time to all Ready (from its first create)", "", func(r tenancyResult) string { return secs(r.aAllReady) })
	row("vendor calls A / B (key check included)", "N+1 / 21", func(r tenancyResult) string { return fmt.Sprintf("%d / %d", r.aCalls, r.bCalls) })
}
