// Package controllers holds the reconcilers of RemoteCredential,
// CredentialProvider and ClusterCredentialProvider.
package controllers

import (
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
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
}

// Setup registers every controller and credsync's metrics (on
// controller-runtime's registry, served on the manager's metrics
// endpoint) with mgr. Secrets are read with the manager's uncached API
// reader: the operator may only get them.
func Setup(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	vendorMetrics, err := metrics.NewVendor(ctrlmetrics.Registry)
	if err != nil {
		return err
	}
	opts.Registry.Observer = vendorMetrics
	opts.Registry.Clock = opts.Clock
	sched := &schedule{}
	collector, err := metrics.NewCredentialCollector(mgr.GetCache(), sched, mgr.Elected(), opts.MetricsLabelAllowlist)
	if err != nil {
		return err
	}
	if err := ctrlmetrics.Registry.Register(collector); err != nil {
		return err
	}

	recorder := mgr.GetEventRecorder(EventSource)
	// An account's change wakes its credentials; a read refused with a
	// 401 wakes the provider, to check its key again.
	credentialWake := make(chan event.GenericEvent, wakeBuffer)
	providerWake := map[string]chan event.GenericEvent{
		v1alpha1.CredentialProviderKind:        make(chan event.GenericEvent, wakeBuffer),
		v1alpha1.ClusterCredentialProviderKind: make(chan event.GenericEvent, wakeBuffer),
	}
	accounts := account.New(account.Options{
		Registry:                 opts.Registry,
		Reader:                   mgr.GetClient(),
		SecretReader:             mgr.GetAPIReader(),
		ClusterResourceNamespace: opts.ClusterResourceNamespace,
		Clock:                    opts.Clock,
		OnChange:                 func(k account.Key) { send(credentialWake, k) },
		OnSuspect:                func(k account.Key) { send(providerWake[k.Kind], k) },
		DisableInventory:         opts.DisableInventory,
	})
	if err := ctrlmetrics.Registry.Register(metrics.NewInventoryCollector(mgr.GetCache(), accounts, mgr.Elected())); err != nil {
		return err
	}
	for _, kind := range []string{v1alpha1.CredentialProviderKind, v1alpha1.ClusterCredentialProviderKind} {
		if err := (&providerReconciler{Client: mgr.GetClient(), Accounts: accounts, Kind: kind, Recorder: recorder,
			Suspects: providerWake[kind], ClusterResourceNamespace: opts.ClusterResourceNamespace,
			DisableInventory: opts.DisableInventory, WatchNamespaces: opts.WatchNamespaces, WatchLabelSelector: opts.WatchLabelSelector,
		}).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return (&remoteCredentialReconciler{
		Client:                  mgr.GetClient(),
		Accounts:                accounts,
		Clock:                   opts.Clock,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		Recorder:                recorder,
		AccountChanges:          credentialWake,
		schedule:                sched,
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
