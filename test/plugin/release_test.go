//go:build release

package plugin

import "testing"

// make release-check (go test -tags release): the four platforms' archives
// and the complete Krew manifest that names them, each archive the same
// bytes whatever the builder's umask.
func TestReleaseArchives(t *testing.T) {
	checkDist(t, pluginDist(t, "002", platforms...), platforms...)
	checkReproducible(t, platforms...)
}
