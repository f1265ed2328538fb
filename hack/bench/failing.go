package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/backoff"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
	"github.com/credsync/credsync/internal/vendors/vendortest"
)

// The failing table: N credentials whose vendor has answered 500 for an
// hour, and a manager that restarts over them. A manager that had run
// through the hour retries each one every 5 minutes (the capped step), so
// about N/5 of them in any minute; the restarted one must make no more
// calls in its first minute than that one would have in the same minute.
const failingNS = "failing"

// failingResult holds the figures of one failing run.
type failingResult struct {
	n int
	// restartCalls: credential reads in the restarted manager's first
	// minute; first10s: in its first 10 seconds.
	restartCalls, first10s int
	// uninterrupted: the retries a manager that never restarted makes in
	// the same minute (each credential's backoff steps from when its
	// failures began, computed with the manager's own backoff).
	uninterrupted int
	// maxPerCredential: most reads of one credential in the minute.
	maxPerCredential int
}

func measureFailing(ctx context.Context, o options) (res failingResult, err error) {
	n := o.failingN
	res.n = n
	step("failing: starting a control plane and a fake Tines tenant that answers 500 for %d credentials", n)
	p, err := startPlane("failing")
	if err != nil {
		return res, err
	}
	defer p.stop()
	fake := tinestest.NewServer(apiKey)
	defer fake.Close()
	fake.SetLatency(o.latency)
	for i := 1; i <= n; i++ {
		fake.Put(tinestest.Sample(int64(i), fmt.Sprintf("credential-%d", i)))
		fake.Set(strconv.Itoa(i), vendortest.ServerError)
	}
	if err := p.tinesProvider(ctx, failingNS, fake, nil); err != nil {
		return res, err
	}
	if err := createCredentials(ctx, p.k8s, failingNS, 1, n, time.Hour); err != nil {
		return res, err
	}

	step("failing: a manager finds them all failing (VendorUnavailable), then stops")
	mgr, err := startManager(ctx, o, p.kubeconfig, failingNS, filepath.Join(p.dir, "manager-1.log"))
	if err != nil {
		return res, err
	}
	defer func() { _ = mgr.stop() }()
	if err := waitReason(ctx, p.k8s, failingNS, n, v1alpha1.ReasonVendorUnavailable, 10*time.Minute); err != nil {
		return res, mgr.explain(err)
	}
	if err := mgr.stop(); err != nil {
		return res, err
	}

	// An hour passes: the status a manager failing all along would have
	// left says so in its conditions' lastTransitionTime.
	step("failing: an hour later (the conditions' lastTransitionTime moved back an hour), a new manager starts for a minute")
	began := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := failSince(ctx, p.k8s, failingNS, began); err != nil {
		return res, err
	}
	start := time.Now()
	for i := 1; i <= n; i++ {
		res.uninterrupted += retriesWithin(failingNS+"/"+credentialName(i), began, start, start.Add(time.Minute))
	}
	fake.ResetCalls()
	mgr, err = startManager(ctx, o, p.kubeconfig, failingNS, filepath.Join(p.dir, "manager-2.log"))
	if err != nil {
		return res, err
	}
	defer func() { _ = mgr.stop() }()
	time.Sleep(10 * time.Second)
	res.first10s = fake.TotalCalls() - fake.ListCalls()
	time.Sleep(time.Until(start.Add(time.Minute)))
	res.restartCalls = fake.TotalCalls() - fake.ListCalls()
	for i := 1; i <= n; i++ {
		res.maxPerCredential = max(res.maxPerCredential, fake.Calls(strconv.Itoa(i)))
	}
	return res, mgr.stop()
}

// waitReason waits until n RemoteCredentials of ns are Ready=False with reason.
func waitReason(ctx context.Context, k8s client.Client, ns string, n int, reason string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var list v1alpha1.RemoteCredentialList
		if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		got := 0
		for _, rc := range list.Items {
			if c := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady); c != nil && c.Reason == reason {
				got++
			}
		}
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d credentials of %s are %s after %s", got, n, ns, reason, timeout)
		}
		time.Sleep(time.Second)
	}
}

// failSince moves the Ready and Reconciling conditions of every
// RemoteCredential of ns back to began.
func failSince(ctx context.Context, k8s client.Client, ns string, began time.Time) error {
	var list v1alpha1.RemoteCredentialList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	for i := range list.Items {
		rc := &list.Items[i]
		for j := range rc.Status.Conditions {
			if c := &rc.Status.Conditions[j]; c.Type == v1alpha1.ConditionReady || c.Type == v1alpha1.ConditionReconciling {
				c.LastTransitionTime = metav1.NewTime(began)
			}
		}
		if err := k8s.Status().Update(ctx, rc); err != nil {
			return err
		}
	}
	return nil
}

// retriesWithin counts the retries of a credential failing since began
// that a manager running all along makes in [from, to): each failure's
// next step (backoff.Step with the manager's cap), from began on.
func retriesWithin(seed string, began, from, to time.Time) int {
	count := 0
	at := began
	for k := 1; at.Before(to); k++ {
		at = at.Add(backoff.Step(seed, k, backoff.Cap))
		if !at.Before(from) && at.Before(to) {
			count++
		}
	}
	return count
}

func printFailingTable(rs []failingResult) {
	fmt.Println("restart over credentials failing with 5xx for an hour (refresh 1h; the vendor's default budget)")
	fmt.Println()
	row := markdownTable(rs, func(r failingResult) string { return fmt.Sprintf("N=%d", r.n) }, "target")
	row("**vendor calls in the restarted manager's first minute**", "≤ without the restart", func(r failingResult) string { return fmt.Sprintf("**%d**", r.restartCalls) })
	row("the same minute without the restart (computed: each credential's steps since its failures began)", "", func(r failingResult) string { return strconv.Itoa(r.uninterrupted) })
	row("vendor calls in the first 10 seconds", "", func(r failingResult) string { return strconv.Itoa(r.first10s) })
	row("most calls of one credential in the minute", "1", func(r failingResult) string { return strconv.Itoa(r.maxPerCredential) })
}
