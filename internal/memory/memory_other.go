//go:build !linux

package memory

import (
	"context"
	"io"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Manager keeps persistent-memory stores; there are none off Linux.
type Manager struct{}

// Lease is a store handed to one run.
type Lease struct {
	// Dir is the store's directory on the host.
	Dir string
}

// Release does nothing here.
func (l *Lease) Release() error { return nil }

// Probe returns ErrUnsupported.
func Probe(dir string) error { return ErrUnsupported }

// New returns ErrUnsupported.
func New(o Options) (*Manager, error) { return nil, ErrUnsupported }

// Acquire returns ErrUnsupported.
func (m *Manager) Acquire(ctx context.Context, k Key, capMB int) (*Lease, error) {
	return nil, ErrUnsupported
}

// List returns ErrUnsupported.
func (m *Manager) List(ctx context.Context, project, agent, afterUser string, limit int) ([]*core.Memory, error) {
	return nil, ErrUnsupported
}

// Export returns ErrUnsupported.
func (m *Manager) Export(ctx context.Context, k Key, w io.Writer) error { return ErrUnsupported }

// Delete returns ErrUnsupported.
func (m *Manager) Delete(ctx context.Context, k Key) error { return ErrUnsupported }

// Purge returns ErrUnsupported.
func (m *Manager) Purge(ctx context.Context, before time.Time) (int, error) {
	return 0, ErrUnsupported
}

// Encrypted reports false.
func (m *Manager) Encrypted() bool { return false }

// Close does nothing.
func (m *Manager) Close() error { return nil }
