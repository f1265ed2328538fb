package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Inventory metric names.
const (
	InventoryCredentials = "credsync_inventory_credentials"
	InventoryUp          = "credsync_inventory_up"
	InventoryLastSweep   = "credsync_inventory_last_sweep_timestamp_seconds"
)

// LastSweeps says when a provider's last complete inventory sweep started.
// It lives in the manager's memory.
type LastSweeps interface {
	LastSweep(kind, namespace, name string) (time.Time, bool)
}

// InventoryCollector computes the inventory series of providers with
// spec.inventory from the cache at scrape time, so a deleted provider, or
// one whose inventory was turned off, leaves no series behind.
type InventoryCollector struct {
	reader     Lister
	lastSweeps LastSweeps
	elected    <-chan struct{}

	credentials, up, lastSweep *prometheus.Desc
}

// NewInventoryCollector returns a collector reading providers from
// reader; like the credential collector, it reports only once elected is
// closed (nil: at once).
func NewInventoryCollector(reader Lister, lastSweeps LastSweeps, elected <-chan struct{}) *InventoryCollector {
	return &InventoryCollector{
		reader: reader, lastSweeps: lastSweeps, elected: elected,
		credentials: prometheus.NewDesc(InventoryCredentials,
			"Credentials the provider's last complete inventory sweep listed, by state: managed (named by a RemoteCredential) or unmanaged.",
			[]string{"provider", "vendor", "state"}, nil),
		up: prometheus.NewDesc(InventoryUp,
			"1 when the provider's Inventoried condition is True (its last sweep succeeded and, with adopt, adopted every unmanaged credential), else 0; reason is the Inventoried reason.",
			[]string{"provider", "vendor", "reason"}, nil),
		lastSweep: prometheus.NewDesc(InventoryLastSweep,
			"When this manager's last complete inventory sweep of the provider started (Unix seconds).",
			[]string{"provider", "vendor"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *InventoryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.credentials
	ch <- c.up
	ch <- c.lastSweep
}

// Collect implements prometheus.Collector.
func (c *InventoryCollector) Collect(ch chan<- prometheus.Metric) {
	namespaced := &v1alpha1.CredentialProviderList{}
	cluster := &v1alpha1.ClusterCredentialProviderList{}
	if !listAsLeader(ch, c.reader, c.elected, []*prometheus.Desc{c.credentials, c.up, c.lastSweep}, namespaced, cluster) {
		return
	}
	for i := range namespaced.Items {
		p := &namespaced.Items[i]
		c.collect(ch, v1alpha1.CredentialProviderKind, p.Namespace, p.Name, &p.Spec, &p.Status)
	}
	for i := range cluster.Items {
		p := &cluster.Items[i]
		c.collect(ch, v1alpha1.ClusterCredentialProviderKind, "", p.Name, p.ProviderSpec(), &p.Status)
	}
}

func (c *InventoryCollector) collect(ch chan<- prometheus.Metric, kind, namespace, name string, spec *v1alpha1.CredentialProviderSpec, st *v1alpha1.CredentialProviderStatus) {
	if spec.Inventory == nil {
		return
	}
	provider := v1alpha1.ProviderName(namespace, name)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{provider, st.Vendor}, labels...)...)
	}
	if inv := st.Inventory; inv != nil {
		gauge(c.credentials, float64(inv.Managed), "managed")
		gauge(c.credentials, float64(inv.Unmanaged), "unmanaged")
	}
	if cond := meta.FindStatusCondition(st.Conditions, v1alpha1.ConditionInventoried); cond != nil {
		gauge(c.up, boolValue(cond.Status == metav1.ConditionTrue), cond.Reason)
	}
	if c.lastSweeps == nil {
		return
	}
	if at, ok := c.lastSweeps.LastSweep(kind, namespace, name); ok {
		gauge(c.lastSweep, float64(at.Unix()))
	}
}
