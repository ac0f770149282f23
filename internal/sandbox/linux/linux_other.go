//go:build !linux

package linux

import (
	"context"
	"errors"

	"github.com/runagent/runagent/internal/sandbox"
)

// Start returns an error: the linux backend needs Linux.
func (b *Backend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	return nil, errors.New("the linux sandbox backend is supported only on Linux")
}

// CheckPython returns an error: the linux backend needs Linux.
func (b *Backend) CheckPython(path string) error {
	return errors.New("the linux sandbox backend is supported only on Linux")
}

// spawned is a prestarted supervisor (Linux only).
type spawned struct{}

// Close does nothing here.
func (b *Backend) Close() error { return nil }
