//go:build !linux

package scratch

// Manager makes scratch areas; there are none off Linux.
type Manager struct{}

// New returns ErrUnsupported: scratch areas need Linux.
func New(stateDir string) (*Manager, error) { return nil, ErrUnsupported }

// Prepare returns ErrUnsupported.
func (m *Manager) Prepare(id string, size int64, uid, gid int) (string, func() error, error) {
	return "", nil, ErrUnsupported
}

// CleanStale returns ErrUnsupported.
func (m *Manager) CleanStale() (int, error) { return 0, ErrUnsupported }

// Close does nothing here.
func (m *Manager) Close() error { return nil }

// KeepReady does nothing here.
func (m *Manager) KeepReady(n int) {}

// Ready returns 0.
func (m *Manager) Ready() int { return 0 }
