// Command fakevendors serves the fake vendor APIs behind config/samples
// (Tines, PlainID, Elastic Cloud over HTTPS on loopback) as a process of its
// own, for end-to-end tests. It writes where they listen, with their CA
// bundles, as JSON to --endpoints, and serves until SIGTERM or SIGINT.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/credsync/credsync/internal/samples"
)

func main() {
	endpoints := flag.String("endpoints", "", "file to write the fakes' endpoints to (JSON)")
	latency := flag.Duration("latency", 0, "delay before every answer")
	flag.Parse()
	if *endpoints == "" {
		fmt.Fprintln(os.Stderr, "fakevendors: --endpoints is required")
		os.Exit(2)
	}
	if err := serve(*endpoints, *latency); err != nil {
		fmt.Fprintln(os.Stderr, "fakevendors:", err)
		os.Exit(1)
	}
}

// serve starts the fakes, writes their endpoints and serves until SIGINT
// or SIGTERM.
func serve(endpoints string, latency time.Duration) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fakes := samples.StartFakes(time.Now(), latency)
	defer func() {
		for _, f := range fakes {
			f.Close()
		}
	}()
	b, err := json.Marshal(samples.Endpoints(fakes))
	if err != nil {
		return err
	}
	// Written whole, then renamed: a reader never sees half of it.
	tmp := endpoints + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, endpoints); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
