package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/credsync/credsync/api/v1alpha1"
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

type lastSyncsAt time.Time

func (l lastSyncsAt) LastSync(types.NamespacedName, types.UID) (time.Time, bool) {
	return time.Time(l), true
}

type collectFunc func(chan<- prometheus.Metric)

func (f collectFunc) Describe(ch chan<- *prometheus.Desc) { prometheus.DescribeByCollect(f, ch) }
func (f collectFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// Series share label pairs; a pedantic registry checks each is sorted and
// matches its description, allow-listed labels included.
func TestCredentialSeries(t *testing.T) {
	c, err := NewCredentialCollector(nil, lastSyncsAt(time.Unix(1700000000, 0)), nil, []string{"team", "app.kubernetes.io/part-of"})
	if err != nil {
		t.Fatal(err)
	}
	expires := metav1.NewTime(time.Unix(1800000000, 0))
	creds := []*v1alpha1.RemoteCredential{{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "ci", Labels: map[string]string{"team": "payments", "app.kubernetes.io/part-of": "shop"}},
		Spec:       v1alpha1.RemoteCredentialSpec{ProviderRef: v1alpha1.ProviderReference{Kind: v1alpha1.ClusterCredentialProviderKind, Name: "tines"}},
		Status: v1alpha1.RemoteCredentialStatus{Vendor: "tines", ExpiresAt: &expires, Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonSynced},
			{Type: v1alpha1.ConditionExpiring, Status: metav1.ConditionFalse, Reason: "NotExpiring"},
		}},
	}, {
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-b", Name: "gone"},
		Spec:       v1alpha1.RemoteCredentialSpec{ProviderRef: v1alpha1.ProviderReference{Name: "elastic"}},
		Status: v1alpha1.RemoteCredentialStatus{Vendor: "elastic", Conditions: []metav1.Condition{
			{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: v1alpha1.ReasonNotFound},
		}},
	}}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collectFunc(func(ch chan<- prometheus.Metric) {
		for _, rc := range creds {
			c.collect(ch, rc)
		}
	}))
	want := `
# HELP credsync_credential_expiring 1 when the credential expires within its expiryWarning, else 0; absent when the vendor reports no expiry.
# TYPE credsync_credential_expiring gauge
credsync_credential_expiring{app_kubernetes_io_part_of="shop",name="ci",namespace="team-a",provider="tines",team="payments",vendor="tines"} 0
# HELP credsync_credential_expiration_timestamp_seconds When the credential expires (Unix seconds), as the vendor reports it; absent when it reports none.
# TYPE credsync_credential_expiration_timestamp_seconds gauge
credsync_credential_expiration_timestamp_seconds{app_kubernetes_io_part_of="shop",name="ci",namespace="team-a",provider="tines",team="payments",vendor="tines"} 1.8e+09
# HELP credsync_credential_ready 1 when the credential's Ready condition is True, else 0; reason is the Ready reason.
# TYPE credsync_credential_ready gauge
credsync_credential_ready{app_kubernetes_io_part_of="shop",name="ci",namespace="team-a",provider="tines",reason="Synced",team="payments",vendor="tines"} 1
credsync_credential_ready{app_kubernetes_io_part_of="",name="gone",namespace="team-b",provider="team-b/elastic",reason="NotFound",team="",vendor="elastic"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), CredentialReady, CredentialExpiration, CredentialExpiring); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg, CredentialLastSync, CredentialRefreshInterval); err != nil || n != 4 {
		t.Errorf("last sync and refresh series = %d (%v), want 4", n, err)
	}
}
