package main

import (
	"context"
	"fmt"
	"time"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin/gitlabtest"
	"github.com/credsync/credsync/internal/vendors/tines/tinestest"
)

// inventoryGitLabNS holds the GitLab provider of the inventory table.
const inventoryGitLabNS = "inventory-gitlab"

// vendorInventory is one column of the inventory table.
type vendorInventory struct {
	vendor  string
	perPage int // the most the vendor answers a page
	run     inventoryRun
}

// measureInventories runs the inventory of o.inventoryN tokens of Tines
// (a Go vendor, 500 a page) and of GitLab (the built-in definition, 100 a
// page, Link header), each with as many RemoteCredentials naming them, on
// a control plane of its own: list calls, GETs, time to all Ready, peak
// RSS. Both fakes answer after o.latency.
func measureInventories(ctx context.Context, o options) ([]vendorInventory, error) {
	n := o.inventoryN
	unlimited := &v1alpha1.RateLimit{RequestsPerMinute: 1000000, Burst: 100000, MaxConcurrent: 1024}
	var out []vendorInventory

	step("inventory: %d Tines credentials", n)
	p, err := startPlane("inventory-tines")
	if err != nil {
		return nil, err
	}
	tines := tinestest.NewServer(apiKey)
	tines.SetLatency(o.latency)
	for i := range n {
		tines.Put(tinestest.Sample(int64(i+1), fmt.Sprintf("credential-%d", i+1)))
	}
	spec := v1alpha1.CredentialProviderSpec{
		Tines:     &v1alpha1.TinesProvider{URL: tines.URL, APIKeySecretRef: v1alpha1.SecretKeySelector{Name: "tines-api"}},
		CABundle:  tines.CABundle(),
		RateLimit: unlimited,
	}
	run, err := coldInventory(ctx, o, p.cfg, p.k8s, p.kubeconfig, p.dir, inventoryNS, tines, listKey, spec, "tines-api", map[string]string{"apiKey": apiKey}, n)
	tines.Close()
	p.stop()
	if err != nil {
		return nil, err
	}
	out = append(out, vendorInventory{vendor: "tines", perPage: tinestest.MaxPerPage, run: run})

	step("inventory: %d GitLab personal access tokens (built-in definition gitlab)", n)
	if p, err = startPlane("inventory-gitlab"); err != nil {
		return nil, err
	}
	defer p.stop()
	gitlab := gitlabtest.NewServer(apiKey)
	defer gitlab.Close()
	gitlab.SetLatency(o.latency)
	used := time.Now().Add(-time.Hour)
	for i := range n {
		tok := gitlabtest.Sample(int64(i+1), fmt.Sprintf("token-%d", i+1))
		if i%3 != 0 {
			tok.LastUsedAt = &used
		}
		gitlab.Put(tok)
	}
	spec = v1alpha1.CredentialProviderSpec{
		HTTP: &v1alpha1.HTTPProvider{Definition: v1alpha1.DefinitionGitLab, URL: gitlab.URL,
			Auth: v1alpha1.HTTPAuth{SecretRef: v1alpha1.SecretReference{Name: "gitlab-api"}}},
		CABundle:  gitlab.CABundle(),
		RateLimit: unlimited,
	}
	if run, err = coldInventory(ctx, o, p.cfg, p.k8s, p.kubeconfig, p.dir, inventoryGitLabNS, gitlab, "self", spec, "gitlab-api", map[string]string{"token": apiKey}, n); err != nil {
		return nil, err
	}
	return append(out, vendorInventory{vendor: "gitlab", perPage: gitlabtest.MaxPerPage, run: run}), nil
}

func printInventoryTable(o options, rs []vendorInventory) {
	fmt.Printf("inventory of %d tokens, each named by a RemoteCredential (refresh 1h, sweep every %s), vendor latency %s\n\n", o.inventoryN, inventoryInterval, o.latency)
	row := markdownTable(rs, func(r vendorInventory) string { return r.vendor }, "ideal")
	row("page size (the vendor's maximum)", "", func(r vendorInventory) string { return fmt.Sprint(r.perPage) })
	row("cold start: list calls (less the key check)", "⌈N/page⌉", func(r vendorInventory) string { return fmt.Sprint(r.run.lists) })
	row("cold start: GETs", "0", func(r vendorInventory) string { return fmt.Sprint(r.run.gets) })
	row("cold start: time to all Ready", "", func(r vendorInventory) string { return secs(r.run.time) })
	row("manager peak RSS", "", func(r vendorInventory) string { return mib(r.run.peakRSS) })
}
