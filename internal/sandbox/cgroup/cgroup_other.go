//go:build !linux

package cgroup

import "github.com/runagent/runagent/internal/sandbox"

// Host is the cgroup setup of this machine; there is none off Linux.
type Host struct{}

// Cgroup is one sandbox's cgroup; there is none off Linux.
type Cgroup struct{}

// Detect returns ErrUnsupported: cgroups exist only on Linux.
func Detect() (*Host, error) { return nil, ErrUnsupported }

// DetectWith returns ErrUnsupported: cgroups exist only on Linux.
func DetectWith(Options) (*Host, error) { return nil, ErrUnsupported }

func (h *Host) Version() int                                { return 0 }
func (h *Host) String() string                              { return "cgroups unsupported" }
func (h *Host) ProbeReport() string                         { return ErrUnsupported.Error() }
func (h *Host) RemoveParent() error                         { return ErrUnsupported }
func (h *Host) CleanStale() (int, error)                    { return 0, ErrUnsupported }
func (h *Host) New(string, sandbox.Limits) (*Cgroup, error) { return nil, ErrUnsupported }
func (cg *Cgroup) ID() string                               { return "" }
func (cg *Cgroup) Dirs() []string                           { return nil }
func (cg *Cgroup) AddPID(int) error                         { return ErrUnsupported }
func (cg *Cgroup) SetLimits(sandbox.Limits) error           { return ErrUnsupported }
func (cg *Cgroup) PIDs() ([]int, error)                     { return nil, ErrUnsupported }
func (cg *Cgroup) Violations() []string                     { return nil }
func (cg *Cgroup) Stats() (Stats, error)                    { return Stats{}, ErrUnsupported }
func (cg *Cgroup) Kill() error                              { return ErrUnsupported }
func (cg *Cgroup) Destroy() error                           { return ErrUnsupported }
