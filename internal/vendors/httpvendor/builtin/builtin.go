// Package builtin holds the vendor definitions credsync ships, one YAML
// file each (embedded in the binary), written in CredentialVendor's
// shape: a built-in is its file, its fake (<name>test) and its tests.
package builtin

import (
	"embed"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/credsync/credsync/internal/vendors"
	"github.com/credsync/credsync/internal/vendors/httpvendor"
)

//go:embed *.yaml
var files embed.FS

// Definitions returns every built-in definition, compiled (once), by
// name. A definition that does not load is a programming error caught by
// any test: it panics.
func Definitions() []*httpvendor.Definition {
	loadOnce.Do(func() { loaded = load() })
	return loaded
}

var (
	loadOnce sync.Once
	loaded   []*httpvendor.Definition
)

func load() []*httpvendor.Definition {
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
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Vendors returns the built-in definitions' registrations.
func Vendors() []vendors.Vendor {
	defs := Definitions()
	out := make([]vendors.Vendor, 0, len(defs))
	for _, d := range defs {
		out = append(out, d.Vendor())
	}
	return out
}

// Names are the built-in definitions' names: a CredentialVendor cannot
// take one.
func Names() []string {
	var out []string
	for _, d := range Definitions() {
		out = append(out, d.Name)
	}
	return out
}
