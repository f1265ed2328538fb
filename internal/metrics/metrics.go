// Package metrics exports credsync's Prometheus metrics. Credential series
// are computed at scrape time from the manager's cache (as cert-manager
// does), so a deleted RemoteCredential leaves no series behind; vendor
// request series are counted as requests happen.
package metrics

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/credsync/credsync/api/v1alpha1"
)

// Metric names.
const (
	CredentialReady           = "credsync_credential_ready"
	CredentialExpiration      = "credsync_credential_expiration_timestamp_seconds"
	CredentialExpiring        = "credsync_credential_expiring"
	CredentialLastSync        = "credsync_credential_last_sync_timestamp_seconds"
	CredentialLastUsed        = "credsync_credential_last_used_timestamp_seconds"
	CredentialUnused          = "credsync_credential_unused"
	CredentialRefreshInterval = "credsync_credential_refresh_interval_seconds"
	VendorRequests            = "credsync_vendor_requests_total"
	VendorRequestDuration     = "credsync_vendor_request_duration_seconds"
)

// credentialLabels label every credential series, before allow-listed ones.
var credentialLabels = []string{"namespace", "name", "vendor", "provider"}

// Vendor counts vendor requests; it is a vendors.Observer.
type Vendor struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewVendor returns vendor request metrics, registered with reg.
func NewVendor(reg prometheus.Registerer) (*Vendor, error) {
	v := &Vendor{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: VendorRequests,
			Help: "Vendor API requests by vendor, provider, operation (read: a credential; verify: the provider's key; list: a page of an inventory sweep) and HTTP status code (\"error\" when no answer came).",
		}, []string{"vendor", "provider", "operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    VendorRequestDuration,
			Help:    "Latency of vendor API requests, connection to last byte.",
			Buckets: []float64{0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"vendor", "provider"}),
	}
	for _, c := range []prometheus.Collector{v.requests, v.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// ObserveRequest records one vendor request.
func (v *Vendor) ObserveRequest(vendor, provider, operation, code string, elapsed time.Duration) {
	v.requests.WithLabelValues(vendor, provider, operation, code).Inc()
	v.duration.WithLabelValues(vendor, provider).Observe(elapsed.Seconds())
}

// LastSyncs says when a RemoteCredential was last checked at its vendor
// successfully by this manager. A refresh that changes nothing writes
// nothing to the API server, so this lives in memory: it restarts empty
// with the manager.
type LastSyncs interface {
	// LastSync returns the last successful check of the object key, if
	// it was of the object uid.
	LastSync(key types.NamespacedName, uid types.UID) (time.Time, bool)
}

// CredentialCollector computes credential series from the cache at scrape time.
type CredentialCollector struct {
	reader    Lister
	lastSyncs LastSyncs
	elected   <-chan struct{}
	// allowKeys are RemoteCredential label keys copied into metric labels
	// named allowNames.
	allowKeys, allowNames []string
	// names are the label names of every series, sorted (as series carry
	// them); readyNames adds reason. order and readyOrder place each value
	// (namespace, name, vendor, provider, allow-listed..., reason) there.
	names, readyNames []string
	order, readyOrder []int

	ready, expiration, expiring, lastUsed, unused, lastSync, refresh *prometheus.Desc
}

var invalidLabelRune = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// labelName turns a Kubernetes label key into a metric label name:
// characters Prometheus does not allow become "_" (app.kubernetes.io/team
// → app_kubernetes_io_team).
func labelName(key string) string {
	name := invalidLabelRune.ReplaceAllString(key, "_")
	if name != "" && name[0] >= '0' && name[0] <= '9' {
		name = "_" + name
	}
	return name
}

// NewCredentialCollector returns a collector reading RemoteCredentials from
// reader. Series are produced only once elected is closed (nil: at once),
// so that of several replicas only the leader, which does the checks,
// reports them. allowlist holds RemoteCredential label keys to copy into
// metric labels; it is an error when two of them, or one and a built-in
// label, map to the same metric label name.
func NewCredentialCollector(reader Lister, lastSyncs LastSyncs, elected <-chan struct{}, allowlist []string) (*CredentialCollector, error) {
	c := &CredentialCollector{reader: reader, lastSyncs: lastSyncs, elected: elected}
	taken := map[string]string{"reason": "built-in"}
	for _, l := range credentialLabels {
		taken[l] = "built-in"
	}
	for _, key := range allowlist {
		key = strings.TrimSpace(key)
		if key == "" {
			continue
		}
		name := labelName(key)
		if strings.HasPrefix(name, "__") {
			return nil, fmt.Errorf("metrics label %q: names starting with __ are reserved by Prometheus", key)
		}
		if by, ok := taken[name]; ok {
			return nil, fmt.Errorf("metrics label %q maps to %q, which is already taken (%s)", key, name, by)
		}
		taken[name] = "by label " + key
		c.allowKeys, c.allowNames = append(c.allowKeys, key), append(c.allowNames, name)
	}
	labels := append(append([]string{}, credentialLabels...), c.allowNames...)
	c.names, c.order = sortedNames(labels)
	c.readyNames, c.readyOrder = sortedNames(append(append([]string{}, labels...), "reason"))
	desc := func(name, help string, extra ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, append(append([]string{}, labels...), extra...), nil)
	}
	c.ready = desc(CredentialReady, "1 when the credential's Ready condition is True, else 0; reason is the Ready reason.", "reason")
	c.expiration = desc(CredentialExpiration, "When the credential expires (Unix seconds), as the vendor reports it; absent when it reports none.")
	c.expiring = desc(CredentialExpiring, "1 when the credential expires within its expiryWarning, else 0; absent when the vendor reports no expiry.")
	c.lastUsed = desc(CredentialLastUsed, "When the vendor says the credential was last used (Unix seconds); absent when never used or the vendor does not report use.")
	c.unused = desc(CredentialUnused, "1 when the credential's Unused condition is True (not used within spec.unusedAfter), else 0; absent when unusedAfter is unset or the vendor does not report use.")
	c.lastSync = desc(CredentialLastSync, "When this manager last checked the credential at its vendor successfully (Unix seconds).")
	c.refresh = desc(CredentialRefreshInterval, "The credential's refresh interval (seconds).")
	return c, nil
}

// descs are the collector's metrics.
func (c *CredentialCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{c.ready, c.expiration, c.expiring, c.lastUsed, c.unused, c.lastSync, c.refresh}
}

// Describe implements prometheus.Collector.
func (c *CredentialCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *CredentialCollector) Collect(ch chan<- prometheus.Metric) {
	list := &v1alpha1.RemoteCredentialList{}
	if !listAsLeader(ch, c.reader, c.elected, c.descs(), list) {
		return
	}
	for i := range list.Items {
		c.collect(ch, &list.Items[i])
	}
}

func (c *CredentialCollector) collect(ch chan<- prometheus.Metric, rc *v1alpha1.RemoteCredential) {
	provider := rc.Spec.ProviderRef.Name
	if rc.Spec.ProviderRef.Kind != v1alpha1.ClusterCredentialProviderKind {
		provider = v1alpha1.ProviderName(rc.Namespace, provider)
	}
	values := make([]string, 0, len(credentialLabels)+len(c.allowKeys)+1)
	values = append(values, rc.Namespace, rc.Name, rc.Status.Vendor, provider)
	for _, k := range c.allowKeys {
		values = append(values, rc.Labels[k])
	}
	ready, reason := 0.0, v1alpha1.ReasonProgressing
	if cond := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionReady); cond != nil {
		reason = cond.Reason
		if cond.Status == metav1.ConditionTrue {
			ready = 1
		}
	}
	ch <- gaugeSeries{desc: c.ready, value: ready, labels: labelPairs(c.readyNames, c.readyOrder, append(values, reason))}
	// The credential's other series share one set of label pairs: a scrape
	// of N credentials makes 2N sets, not one per series.
	labels := labelPairs(c.names, c.order, values)
	gauge := func(d *prometheus.Desc, v float64) { ch <- gaugeSeries{desc: d, value: v, labels: labels} }
	gauge(c.refresh, rc.Spec.Refresh().Seconds())
	if exp := rc.Status.ExpiresAt; exp != nil {
		gauge(c.expiration, float64(exp.Unix()))
	}
	if cond := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionExpiring); cond != nil {
		gauge(c.expiring, boolValue(cond.Status == metav1.ConditionTrue))
	}
	if used := rc.Status.LastUsedAt; used != nil {
		gauge(c.lastUsed, float64(used.Unix()))
	}
	if cond := meta.FindStatusCondition(rc.Status.Conditions, v1alpha1.ConditionUnused); cond != nil && cond.Status != metav1.ConditionUnknown {
		gauge(c.unused, boolValue(cond.Status == metav1.ConditionTrue))
	}
	if c.lastSyncs == nil {
		return
	}
	if at, ok := c.lastSyncs.LastSync(types.NamespacedName{Namespace: rc.Namespace, Name: rc.Name}, rc.UID); ok {
		gauge(c.lastSync, float64(at.Unix()))
	}
}

// gaugeSeries is a gauge whose label pairs may be shared with other
// series (prometheus.MustNewConstMetric makes a set each).
type gaugeSeries struct {
	desc   *prometheus.Desc
	value  float64
	labels []*dto.LabelPair
}

func (s gaugeSeries) Desc() *prometheus.Desc { return s.desc }

func (s gaugeSeries) Write(m *dto.Metric) error {
	m.Label = s.labels
	m.Gauge = &dto.Gauge{Value: &s.value}
	return nil
}

// sortedNames sorts label names, as series carry them, and returns for
// each name, in the given order, its place among them.
func sortedNames(names []string) (sorted []string, order []int) {
	sorted = append([]string{}, names...)
	sort.Strings(sorted)
	order = make([]int, len(names))
	for i, n := range names {
		order[i] = sort.SearchStrings(sorted, n)
	}
	return sorted, order
}

// labelPairs pairs the label values, given in the collector's order, with
// their sorted names.
func labelPairs(sorted []string, order []int, values []string) []*dto.LabelPair {
	pairs := make([]dto.LabelPair, len(values))
	out := make([]*dto.LabelPair, len(values))
	for i := range values {
		j := order[i]
		pairs[j].Name, pairs[j].Value = &sorted[j], &values[i]
		out[j] = &pairs[j]
	}
	return out
}

// Lister fills list from the manager's cache, read-only: the collectors
// do not change what it lists, so the cache need not copy it. The manager
// adapts its cache to it: this package does not import controller-runtime's
// client, so its race-detector build stays small.
type Lister func(ctx context.Context, list ObjectList) error

// ObjectList is a list of Kubernetes objects: what controller-runtime
// calls a client.ObjectList, with the same methods.
type ObjectList interface {
	metav1.ListInterface
	runtime.Object
}

// listAsLeader fills lists from the cache, read-only (no deep copies), once
// elected is closed (nil: at once): of several replicas only the leader,
// which does the work, reports. It reports whether to collect; a failed
// list is an invalid metric of each of descs.
func listAsLeader(ch chan<- prometheus.Metric, reader Lister, elected <-chan struct{}, descs []*prometheus.Desc, lists ...ObjectList) bool {
	if elected != nil {
		select {
		case <-elected:
		default:
			return false // not the leader: the leader reports
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, list := range lists {
		if err := reader(ctx, list); err != nil {
			for _, d := range descs {
				ch <- prometheus.NewInvalidMetric(d, fmt.Errorf("list %T: %w", list, err))
			}
			return false
		}
	}
	return true
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
