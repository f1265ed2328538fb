// Command kubectl-credsync is credsync's kubectl plugin: put it on PATH and
// run kubectl credsync. See kubectl credsync --help.
package main

import (
	"os"

	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/credsync/credsync/internal/plugin"
)

func main() {
	streams := genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr}
	os.Exit(plugin.Run(plugin.NewCommand(streams), os.Args[1:], os.Stderr))
}
