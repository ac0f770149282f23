// Command runagent deploys AI agents and serves them as secure APIs.
// See `runagent --help`.
package main

import (
	"context"
	"os"

	"github.com/runagent/runagent/internal/cli"
	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

func main() {
	// The binary re-runs itself as the sandbox supervisor; route that role
	// before anything else is initialised.
	supervisor.MaybeRun()
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
