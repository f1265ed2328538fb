// Package controllers holds the reconcilers of RemoteCredential,
// CredentialProvider and ClusterCredentialProvider.
package controllers

import (
	"context"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/account"
	"github.com/credsync/credsync/internal/metrics"
	"github.com/credsync/credsync/internal/vendors"
)

// EventSource is the reporting controller of credsync's events.
const EventSource = "credsync"

// Options configure the controllers.
type Options struct {
	Registry *vendors.Registry
	// ClusterResourceNamespace holds ClusterCredentialProviders' Secrets.
	ClusterResourceNamespace string
	// MaxConcurrentReconciles bounds parallel RemoteCredential syncs.
	MaxConcurrentReconciles int
	// MetricsLabelAllowlist names RemoteCredential labels copied into
	// credential metric labels.
	MetricsLabelAllowlist []string
	// Clock reads the time of every decision; the real clock when nil.
	Clock clock.Clock
	// DisableInventory: providers' inventories are swept by another
	// manager; this one neither sweeps nor writes status.inventory.
	DisableInventory bool
	// WatchNamespaces and WatchLabelSelector restrict what the manager
	// watches (main's cache options); adoption respects them.
	WatchNamespaces    []string
	WatchLabelSelector string
	// DisableNamespacedProviders turns CredentialProviders off
	// (--enable-namespaced-providers=false).
	DisableNamespacedProviders bool
	// Metrics registers credsync's metrics: controller-runtime's registry
	// (served on the manager's metrics endpoint) when nil. Tests that run
	// a second manager in one process give it a registry of its own.
	Metrics prometheus.Registerer
}

// Setup registers every controller and credsync's metrics (on
// opts.Metrics) with mgr. Secrets are read with the manager's uncached API
// reader: the operator may only get them.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Metrics == nil {
		opts.Metrics = ctrlmetrics.Registry
	}
	vendorMetrics, err := metrics.NewVendor(opts.Metrics)
	if err != nil {
		return err
	}
	// The manager's own copy of the registry and its rules, with its
	// metrics, clock and the API server's addresses: the caller's stay as
	// they were given.
	registry := *opts.Registry
	registry.Observer, registry.Clock = vendorMetrics, opts.Clock
	dest := vendors.Destinations{}
	if registry.Destinations != nil {
		dest = *registry.Destinations
		dest.Refused = slices.Clone(dest.Refused)
	}
	refuseAPIServer(mgr, &dest)
	registry.Destinations = &dest
	custom := customVendors(mgr.GetClient())
	registry.Definitions = custom.Vendor
	opts.Registry = &registry
	sched := &schedule{}
	collector, err := metrics.NewCredentialCollector(cacheLister(mgr), sched, mgr.Elected(), opts.MetricsLabelAllowlist)
	if err != nil {
		return err
	}
	if err := opts.Metrics.Register(collector); err != nil {
		return err
	}

	recorder := mgr.GetEventRecorder(EventSource)
	// Wake-ups wait on opts.Clock (clockqueue.go).
	queue := newQueue(opts.Clock)
	// An account's change wakes its credentials; a read refused with a
	// 401 wakes the provider, to check its key again.
	credentialWake := make(chan event.GenericEvent, wakeBuffer)
	providerWake := map[string]chan event.GenericEvent{
		v1alpha1.CredentialProviderKind:        make(chan event.GenericEvent, wakeBuffer),
		v1alpha1.ClusterCredentialProviderKind: make(chan event.GenericEvent, wakeBuffer),
	}
	accounts := account.New(account.Options{
		Registry:                   opts.Registry,
		Reader:                     getter(mgr.GetClient(), client.UnsafeDisableDeepCopy),
		SecretReader:               getter(mgr.GetAPIReader()),
		ClusterResourceNamespace:   opts.ClusterResourceNamespace,
		Clock:                      opts.Clock,
		OnChange:                   func(k account.Key) { send(credentialWake, k) },
		OnSuspect:                  func(k account.Key) { send(providerWake[k.Kind], k) },
		DisableInventory:           opts.DisableInventory,
		DisableNamespacedProviders: opts.DisableNamespacedProviders,
	})
	if err := opts.Metrics.Register(metrics.NewInventoryCollector(cacheLister(mgr), accounts, mgr.Elected())); err != nil {
		return err
	}
	for _, kind := range []string{v1alpha1.CredentialProviderKind, v1alpha1.ClusterCredentialProviderKind} {
		if err := (&providerReconciler{Client: mgr.GetClient(), Accounts: accounts, Clock: opts.Clock, Kind: kind, Recorder: recorder,
			Suspects: providerWake[kind], ClusterResourceNamespace: opts.ClusterResourceNamespace,
			DisableInventory: opts.DisableInventory, WatchNamespaces: opts.WatchNamespaces, WatchLabelSelector: opts.WatchLabelSelector,
			newQueue: queue,
		}).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	if err := (&credentialVendorReconciler{Client: mgr.GetClient(), Recorder: recorder, Reserved: opts.Registry.Names(), Vendors: custom}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&remoteCredentialReconciler{
		Client:                  mgr.GetClient(),
		Accounts:                accounts,
		Clock:                   opts.Clock,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		Recorder:                recorder,
		AccountChanges:          credentialWake,
		schedule:                sched,
		newQueue:                queue,
	}).SetupWithManager(mgr)
}

// wakeBuffer is how many wake-ups may wait for a controller to take them.
const wakeBuffer = 1024

// send names the provider k on ch (a controller's wake-up source) without
// ever blocking: when ch is full (or nobody reads it any more) the wake-up
// is dropped, which is safe: the periodic provider check and the
// credentials' backoff catch up.
func send(ch chan<- event.GenericEvent, k account.Key) {
	obj := account.NewProvider(k.Kind)
	obj.SetNamespace(k.Namespace)
	obj.SetName(k.Name)
	select {
	case ch <- event.GenericEvent{Object: obj}:
	default:
	}
}

// refuseAPIServer adds the Kubernetes API server to the addresses no
// vendor connection may reach: the host of the manager's kubeconfig, and
// in-cluster the kubernetes Service's ClusterIP and its endpoints (read
// once at start, where the manager may list EndpointSlices in default).
func refuseAPIServer(mgr ctrl.Manager, dest *vendors.Destinations) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	log := mgr.GetLogger().WithName("destinations")
	servers := []string{mgr.GetConfig().Host}
	if host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT"); host != "" && port != "" {
		servers = append(servers, net.JoinHostPort(host, port))
		endpoints := &discoveryv1.EndpointSliceList{}
		err := mgr.GetAPIReader().List(ctx, endpoints, client.InNamespace(metav1.NamespaceDefault),
			client.MatchingLabels{discoveryv1.LabelServiceName: "kubernetes"})
		if err != nil {
			log.Info("could not read the API server's endpoints; they are refused as private addresses unless --allowed-private-networks covers them", "error", err.Error())
		}
		for _, sl := range endpoints.Items {
			for _, p := range sl.Ports {
				for _, ep := range sl.Endpoints {
					for _, a := range ep.Addresses {
						if p.Port != nil {
							servers = append(servers, net.JoinHostPort(a, strconv.Itoa(int(*p.Port))))
						}
					}
				}
			}
		}
	}
	for _, s := range servers {
		if err := dest.RefuseServer(ctx, s); err != nil {
			log.Error(err, "could not refuse the API server's address to vendor connections")
		}
	}
}

// getter adapts a controller-runtime reader to what the accounts read
// with.
func getter(r client.Reader, opts ...client.GetOption) account.Getter {
	return func(ctx context.Context, key types.NamespacedName, obj account.Object) error {
		return r.Get(ctx, key, obj, opts...)
	}
}

// cacheLister adapts the manager's cache to what the metrics collectors
// list with: read-only, no deep copies.
func cacheLister(mgr ctrl.Manager) metrics.Lister {
	return func(ctx context.Context, list metrics.ObjectList) error {
		return mgr.GetCache().List(ctx, list, client.UnsafeDisableDeepCopy)
	}
}
