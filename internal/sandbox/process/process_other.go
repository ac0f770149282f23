//go:build !linux

package process

import (
	"context"
	"errors"

	"github.com/runagent/runagent/internal/sandbox"
)

// DefaultLogLimit is the log cap used when Spec.LogLimit is not set.
const DefaultLogLimit = 64 << 10

// Backend starts guests as child processes; it needs Linux.
type Backend struct {
	exe string
}

// New returns a backend that starts exe's supervisor subcommand.
func New(exe string) *Backend { return &Backend{exe: exe} }

// Name returns "process".
func (b *Backend) Name() string { return "process" }

// Start returns an error: the process backend needs Linux.
func (b *Backend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	return nil, errors.New("the process sandbox backend is supported only on Linux")
}
