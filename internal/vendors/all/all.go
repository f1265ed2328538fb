// Package all lists the vendors credsync supports: the Go vendors, each a
// package under internal/vendors and one line here, and the built-in
// definitions (internal/vendors/httpvendor/builtin), one YAML file each.
package all

import (
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/elasticcloud"
	"github.com/credsync/credsync/internal/vendors/httpvendor/builtin"
	"github.com/credsync/credsync/internal/vendors/plainid"
	"github.com/credsync/credsync/internal/vendors/tines"
)

// Vendors returns every supported vendor's registration.
func Vendors() []vendors.Vendor {
	return append([]vendors.Vendor{
		tines.Vendor(),
		elasticcloud.Vendor(),
		plainid.Vendor(),
	}, builtin.Vendors()...)
}

// Registry returns a registry of every supported vendor.
func Registry() *vendors.Registry { return vendors.NewRegistry(Vendors()...) }
