// Package all lists the vendors credsync supports. Adding a vendor is its
// package under internal/vendors and one line here.
package all

import (
	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/elasticcloud"
	"github.com/credsync/credsync/internal/vendors/plainid"
	"github.com/credsync/credsync/internal/vendors/tines"
)

// Vendors returns every supported vendor's registration.
func Vendors() []vendors.Vendor {
	return []vendors.Vendor{
		tines.Vendor(),
		elasticcloud.Vendor(),
		plainid.Vendor(),
	}
}

// Registry returns a registry of every supported vendor.
func Registry() *vendors.Registry { return vendors.NewRegistry(Vendors()...) }
