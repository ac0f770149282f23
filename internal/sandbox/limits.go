package sandbox

import (
	"fmt"

	"github.com/runagent/runagent/internal/core"
)

// DefaultMaxima are the largest limits an agent may ask for unless the
// administrator configures others.
var DefaultMaxima = Limits{
	CPU:         2,
	MemoryBytes: 4 << 30,
	Processes:   1024,
	OpenFiles:   65536,
	FileSize:    8 << 30,
	DiskBytes:   8 << 30,
}

// DefaultBandwidth and DefaultMaxConns are the egress defaults (DESIGN.md).
const (
	DefaultBandwidth = 10 << 20 // bytes per second
	DefaultMaxConns  = 10
)

// LimitsFor turns an agent's requested resources into the limits its
// sandboxes get: server defaults for what it leaves out, and an error —
// not a silent clamp — for anything above the administrator's maxima, so
// an agent never runs with other limits than it was deployed with.
func LimitsFor(r core.Resources, defaults, maxima Limits) (Limits, error) {
	l := Limits{
		CPU:         r.CPU,
		MemoryBytes: r.MemoryMB << 20,
		Processes:   r.Processes,
		OpenFiles:   r.OpenFiles,
		DiskBytes:   r.DiskMB << 20,

		NoProcessCreation: r.NoProcessCreation,
	}
	d := defaults.WithDefaults()
	if l.CPU <= 0 {
		l.CPU = d.CPU
	}
	if l.MemoryBytes <= 0 {
		l.MemoryBytes = d.MemoryBytes
	}
	if l.Processes <= 0 {
		l.Processes = d.Processes
	}
	if l.OpenFiles <= 0 {
		l.OpenFiles = d.OpenFiles
	}
	if l.DiskBytes <= 0 {
		l.DiskBytes = d.DiskBytes
	}
	l.FileSize = min(d.FileSize, l.DiskBytes)
	m := maxima.WithDefaults()
	for _, c := range []struct {
		name      string
		got, max  float64
		unit      string
		requested bool
	}{
		{"resources.cpu", l.CPU, m.CPU, " cores", r.CPU > 0},
		{"resources.memory_mb", float64(l.MemoryBytes >> 20), float64(m.MemoryBytes >> 20), " MiB", r.MemoryMB > 0},
		{"resources.processes", float64(l.Processes), float64(m.Processes), "", r.Processes > 0},
		{"resources.open_files", float64(l.OpenFiles), float64(m.OpenFiles), "", r.OpenFiles > 0},
		{"resources.disk_mb", float64(l.DiskBytes >> 20), float64(m.DiskBytes >> 20), " MiB", r.DiskMB > 0},
	} {
		if c.got > c.max {
			who := "the server default"
			if c.requested {
				who = "the agent asks for"
			}
			return Limits{}, fmt.Errorf("%s: %s %g%s, above this server's maximum of %g%s (an administrator can raise it)", c.name, who, c.got, c.unit, c.max, c.unit)
		}
	}
	return l, nil
}

// NetworkFor turns an agent's network policy into the sandbox's.
func NetworkFor(p core.NetworkPolicy, r core.Resources) Network {
	n := Network{Mode: p.Mode, Allow: p.Allow, BandwidthBytes: DefaultBandwidth, MaxConns: DefaultMaxConns}
	if n.Mode == "" {
		n.Mode = core.NetworkNone
	}
	if r.BandwidthMBps > 0 {
		n.BandwidthBytes = int64(r.BandwidthMBps * (1 << 20))
	}
	return n
}
