// Package controllers holds the reconcilers of RemoteCredential,
// CredentialProvider and ClusterCredentialProvider.
package controllers

import (
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/credsync/credsync/api/v1alpha1"
	"github.com/credsync/credsync/internal/vendors"
)

// Options configure the controllers.
type Options struct {
	Registry *vendors.Registry
	// ClusterResourceNamespace holds ClusterCredentialProviders' Secrets.
	ClusterResourceNamespace string
	// MaxConcurrentReconciles bounds parallel RemoteCredential syncs.
	MaxConcurrentReconciles int
	// SecretTTL is how long a provider Secret is trusted once read.
	SecretTTL time.Duration
}

// Setup registers every controller with mgr. Secrets are read with the
// manager's uncached API reader: the operator may only get them.
func Setup(mgr ctrl.Manager, opts Options) error {
	providers := &Providers{
		Reader:                   mgr.GetClient(),
		SecretReader:             mgr.GetAPIReader(),
		Registry:                 opts.Registry,
		ClusterResourceNamespace: opts.ClusterResourceNamespace,
		SecretTTL:                opts.SecretTTL,
	}
	for _, kind := range []string{v1alpha1.CredentialProviderKind, v1alpha1.ClusterCredentialProviderKind} {
		if err := (&ProviderReconciler{Client: mgr.GetClient(), Providers: providers, Kind: kind}).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	return (&RemoteCredentialReconciler{
		Client:                  mgr.GetClient(),
		Providers:               providers,
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
	}).SetupWithManager(mgr)
}
