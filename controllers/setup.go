// Package controllers holds the reconcilers of RemoteCredential,
// CredentialProvider and ClusterCredentialProvider.
package controllers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/event"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/credsync/credsync/api/v1alpha1"
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
	// SecretTTL is how long a provider Secret is trusted once read.
	SecretTTL time.Duration
	// MetricsLabelAllowlist names RemoteCredential labels copied into
	// credential metric labels.
	MetricsLabelAllowlist []string
	// MetricsRegisterer receives credsync's metrics; controller-runtime's
	// registry (served on the manager's metrics endpoint) when nil.
	MetricsRegisterer prometheus.Registerer
}

// Setup registers every controller and credsync's metrics with mgr.
// Secrets are read with the manager's uncached API reader: the operator
// may only get them.
func Setup(mgr ctrl.Manager, opts Options) error {
	reg := opts.MetricsRegisterer
	if reg == nil {
		reg = ctrlmetrics.Registry
	}
	vendorMetrics, err := metrics.NewVendor(reg)
	if err != nil {
		return err
	}
	opts.Registry.Observer = vendorMetrics
	syncTimes := &metrics.SyncTimes{}
	collector, err := metrics.NewCredentialCollector(mgr.GetCache(), syncTimes, mgr.Elected(), opts.MetricsLabelAllowlist)
	if err != nil {
		return err
	}
	if err := reg.Register(collector); err != nil {
		return err
	}

	recorder := mgr.GetEventRecorder(EventSource)
	// A provider's Secret changing wakes its credentials; the vendor
	// refusing its credentials wakes the provider (its Ready condition).
	credentialWake := make(chan event.GenericEvent, wakeBuffer)
	providerWake := map[string]chan event.GenericEvent{
		v1alpha1.CredentialProviderKind:        make(chan event.GenericEvent, wakeBuffer),
		v1alpha1.ClusterCredentialProviderKind: make(chan event.GenericEvent, wakeBuffer),
	}
	providers := &Providers{
		Reader:                   mgr.GetClient(),
		SecretReader:             mgr.GetAPIReader(),
		Registry:                 opts.Registry,
		ClusterResourceNamespace: opts.ClusterResourceNamespace,
		SecretTTL:                opts.SecretTTL,
		OnSecretChange:           func(k providerKey) { send(credentialWake, k) },
		OnAuthFailure:            func(k providerKey) { send(providerWake[k.Kind], k) },
	}
	for _, kind := range []string{v1alpha1.CredentialProviderKind, v1alpha1.ClusterCredentialProviderKind} {
		if err := (&ProviderReconciler{Client: mgr.GetClient(), Providers: providers, Kind: kind, Recorder: recorder,
			Changes: providerWake[kind]}).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return (&RemoteCredentialReconciler{
		Client:                  mgr.GetClient(),
		Providers:               providers,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		Recorder:                recorder,
		SyncTimes:               syncTimes,
		ProviderChanges:         credentialWake,
	}).SetupWithManager(mgr)
}

// wakeBuffer is how many wake-ups may wait for a controller to take them.
const wakeBuffer = 1024

// send names the provider k on ch (a controller's wake-up source) without
// ever blocking: when ch is full (or nobody reads it any more) the wake-up
// is dropped, which is safe: the periodic provider check and the refresh
// interval catch up.
func send(ch chan<- event.GenericEvent, k providerKey) {
	obj := newProvider(k.Kind)
	obj.SetNamespace(k.Namespace)
	obj.SetName(k.Name)
	select {
	case ch <- event.GenericEvent{Object: obj}:
	default:
	}
}
