// Command manager runs the credsync operator.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/controllers"
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/all"
)

// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

func main() {
	var (
		metricsAddr, probeAddr, clusterNS string
		labelAllowlist, watchNamespaces   string
		watchSelector, leaderElectionID   string
		inventory                         bool
		leaderElectionNS, pprofAddr       string
		secureMetrics, leaderElect        bool
		concurrency                       int
		kubeQPS                           float64
		kubeBurst                         int
		leaseDuration, renewDeadline      time.Duration
		retryPeriod                       time.Duration
		providerHosts, privateNetworks    string
		vendorProxy                       string
		namespacedProviders               bool
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "Address the metrics endpoint binds to: :8443 for HTTPS, :8080 for HTTP, 0 to disable.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true, "Serve metrics over HTTPS with authentication and authorization (false: plain HTTP).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the health probe endpoint binds to.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Enable leader election: only one manager calls vendors.")
	flag.StringVar(&clusterNS, "cluster-resource-namespace", "credsync-system", "Namespace holding the Secrets of ClusterCredentialProviders.")
	flag.IntVar(&concurrency, "max-concurrent-reconciles", 16, "How many RemoteCredentials are synced in parallel.")
	flag.StringVar(&labelAllowlist, "metrics-label-allowlist", "", "Comma-separated RemoteCredential label keys copied into credential metric labels (e.g. team), for alert routing. Characters Prometheus does not allow become _.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces whose RemoteCredentials and CredentialProviders this manager handles (empty: all).")
	flag.StringVar(&watchSelector, "watch-label-selector", "", "Label selector of the RemoteCredentials this manager handles (e.g. shard=a), to split credentials between managers; give each its own --leader-election-id.")
	flag.BoolVar(&inventory, "inventory", true, "Sweep the vendor accounts of providers with spec.inventory and write their inventory status. Where several managers split the credentials, exactly one should: the default is false with --watch-label-selector.")
	flag.StringVar(&leaderElectionID, "leader-election-id", "credsync.credsync.io", "Name of the leader election Lease; managers that split credentials need different ones.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the Pod's namespace).")
	// Shorter than controller-runtime's 15s/10s/2s: a standby takes over
	// from a crashed leader within about 15s.
	flag.DurationVar(&leaseDuration, "leader-elect-lease-duration", 10*time.Second, "How long a standby waits after the leader's last renewal before taking over.")
	flag.DurationVar(&renewDeadline, "leader-elect-renew-deadline", 7*time.Second, "How long the leader keeps trying to renew before it gives up leading.")
	flag.DurationVar(&retryPeriod, "leader-elect-retry-period", 2*time.Second, "How often managers try to acquire or renew the lease.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "Address of the Go pprof endpoint, for profiling (0: off).")
	flag.Float64Var(&kubeQPS, "kube-api-qps", -1, "Client-side rate limit of API server requests per second (-1: none; the API server's priority and fairness applies).")
	flag.IntVar(&kubeBurst, "kube-api-burst", 0, "Client-side burst of API server requests (with --kube-api-qps).")
	flag.StringVar(&providerHosts, "namespaced-provider-hosts", "", "Comma-separated hosts a namespaced CredentialProvider may name: host, *.suffix, with an optional :port (none: any port), or * for any host. Empty: the vendors' public SaaS hosts ("+all.Registry().DefaultNamespacedHosts().String()+"). ClusterCredentialProviders may name any host.")
	flag.StringVar(&privateNetworks, "allowed-private-networks", "", "Comma-separated CIDRs of private networks (loopback, RFC 1918, CGNAT, ULA, link-local) vendors may be reached in, e.g. an ECE installation's subnet. Empty: none. Cloud metadata addresses and the API server are refused always.")
	flag.StringVar(&vendorProxy, "vendor-proxy", "", "URL of an HTTP(S) proxy for all vendor connections (HTTPS_PROXY and friends are ignored). The host rule still applies to the target.")
	flag.BoolVar(&namespacedProviders, "enable-namespaced-providers", true, "Serve CredentialProviders (false: they are Ready=False/Disabled, no Secret is read and no vendor called; only ClusterCredentialProviders work).")
	zapOpts := zap.Options{Development: false}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	if os.Getenv("GOGC") == "" {
		// The manager's live heap is mostly the informer cache; collecting
		// at 50% growth instead of 100% keeps the peak near 1.5× of it, at
		// a CPU cost the benchmark shows to be small (docs/benchmarks.md).
		debug.SetGCPercent(50)
	}
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(v1alpha1.AddToScheme(scheme))

	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		// HTTP/2 is off: it exposes the server to rapid-reset and stream-cancellation attacks.
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	cacheOpts, err := cacheOptions(watchNamespaces, watchSelector)
	if err != nil {
		log.Error(err, "invalid watch flags")
		os.Exit(2)
	}
	registry := all.Registry()
	if registry.Destinations, err = vendors.ParseDestinations(providerHosts, privateNetworks, vendorProxy); err != nil {
		log.Error(err, "invalid destination flags")
		os.Exit(2)
	}
	if strings.TrimSpace(watchSelector) != "" && !flagSet("inventory") {
		// A shard sees only its credentials: its managed counts would be
		// wrong and fight the other shards'.
		inventory = false
	}
	var namespaces []string
	for ns := range cacheOpts.DefaultNamespaces {
		namespaces = append(namespaces, ns)
	}
	restConfig := ctrl.GetConfigOrDie()
	restConfig.QPS, restConfig.Burst = float32(kubeQPS), kubeBurst
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOpts,
		HealthProbeBindAddress:  probeAddr,
		LeaderElection:          leaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: leaderElectionNS,
		// main exits as soon as the manager stops: hand the lease over at
		// once instead of making the next leader wait for it to expire.
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &leaseDuration,
		RenewDeadline:                 &renewDeadline,
		RetryPeriod:                   &retryPeriod,
		Cache:                         cacheOpts,
		PprofBindAddress:              pprofAddr,
	})
	if err != nil {
		log.Error(err, "unable to create manager")
		os.Exit(1)
	}
	if err := controllers.Setup(mgr, controllers.Options{
		Registry:                   registry,
		ClusterResourceNamespace:   clusterNS,
		MaxConcurrentReconciles:    concurrency,
		MetricsLabelAllowlist:      strings.Split(labelAllowlist, ","),
		DisableInventory:           !inventory,
		WatchNamespaces:            namespaces,
		WatchLabelSelector:         strings.TrimSpace(watchSelector),
		DisableNamespacedProviders: !namespacedProviders,
	}); err != nil {
		log.Error(err, "unable to set up controllers")
		os.Exit(1)
	}
	utilruntime.Must(mgr.AddHealthzCheck("healthz", healthz.Ping))
	utilruntime.Must(mgr.AddReadyzCheck("readyz", healthz.Ping))

	log.Info("starting manager", "watchNamespaces", watchNamespaces, "watchLabelSelector", watchSelector, "inventory", inventory,
		"namespacedProviderHosts", registry.Destinations.NamespacedHosts.String(), "allowedPrivateNetworks", privateNetworks,
		"vendorProxy", vendorProxy != "", "namespacedProviders", namespacedProviders)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped with an error")
		os.Exit(1)
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// cacheOptions trims the manager's cache (no managedFields: the operator
// never reads them) and restricts it to the namespaces and the
// RemoteCredential label selector this manager handles.
func cacheOptions(namespaces, selector string) (cache.Options, error) {
	opts := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	for _, ns := range strings.Split(namespaces, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			if opts.DefaultNamespaces == nil {
				opts.DefaultNamespaces = map[string]cache.Config{}
			}
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	if strings.TrimSpace(selector) != "" {
		sel, err := labels.Parse(selector)
		if err != nil {
			return opts, fmt.Errorf("--watch-label-selector %q: %w", selector, err)
		}
		opts.ByObject = map[client.Object]cache.ByObject{&v1alpha1.RemoteCredential{}: {Label: sel}}
	}
	return opts, nil
}
