package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestLabelName(t *testing.T) {
	for key, want := range map[string]string{
		"team":                   "team",
		"app.kubernetes.io/team": "app_kubernetes_io_team",
		"cost-center":            "cost_center",
		"1st":                    "_1st",
	} {
		if got := labelName(key); got != want {
			t.Errorf("labelName(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestAllowlistRejectsCollisions(t *testing.T) {
	for _, list := range [][]string{
		{"namespace"},                  // a built-in label
		{"reason"},                     // the ready series' own label
		{"cost-center", "cost.center"}, // two keys, one name
		{"__meta"},                     // reserved by Prometheus
	} {
		if _, err := NewCredentialCollector(nil, nil, nil, list); err == nil {
			t.Errorf("allowlist %q accepted", list)
		}
	}
	c, err := NewCredentialCollector(nil, nil, nil, []string{" team ", "", "app.kubernetes.io/part-of"})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.allowNames, ","); got != "team,app_kubernetes_io_part_of" {
		t.Errorf("label names = %s", got)
	}
}

// A replica that is not the leader reports no credential series (and does
// not even read the cache: the nil reader would panic).
func TestCollectorSilentUntilElected(t *testing.T) {
	c, err := NewCredentialCollector(nil, nil, make(chan struct{}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("%d series before election", n)
	}
}

func TestVendorMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	v, err := NewVendor(reg)
	if err != nil {
		t.Fatal(err)
	}
	v.ObserveRequest("tines", "team-a/tines", "read", "200", 0)
	v.ObserveRequest("tines", "team-a/tines", "read", "429", 0)
	v.ObserveRequest("tines", "team-a/tines", "read", "429", 0)
	if got := testutil.ToFloat64(v.requests.WithLabelValues("tines", "team-a/tines", "read", "429")); got != 2 {
		t.Errorf("429 count = %v", got)
	}
	if _, err := NewVendor(reg); err == nil {
		t.Error("registering twice succeeded")
	}
}
