// Package builtin holds the vendor definitions credsync ships, one YAML
// file each (embedded in the binary), written in CredentialVendor's
// shape: a built-in is its file, its fake (<name>test) and its tests.
package builtin

import (
	"embed"
	"fmt"
	"path"
	"strings"
	"sync"

	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor"
)

//go:embed *.yaml
var files embed.FS

// definitions are every built-in definition, compiled once, by name (the
// embedded files come sorted). A definition that does not load is a
// programming error caught by any test: it panics.
var definitions = sync.OnceValue(func() []*httpvendor.Definition {
	entries, err := files.ReadDir(".")
	if err != nil {
		panic(err)
	}
	out := make([]*httpvendor.Definition, 0, len(entries))
	for _, e := range entries {
		data, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		d, err := httpvendor.Load(strings.TrimSuffix(e.Name(), path.Ext(e.Name())), data)
		if err != nil {
			panic(fmt.Sprintf("built-in definition %s: %v", e.Name(), err))
		}
		out = append(out, d)
	}
	return out
})

// Vendors returns the built-in definitions' registrations.
func Vendors() []vendors.Vendor {
	defs := definitions()
	out := make([]vendors.Vendor, 0, len(defs))
	for _, d := range defs {
		out = append(out, d.Vendor())
	}
	return out
}
