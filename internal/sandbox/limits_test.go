package sandbox

import (
	"strings"
	"testing"

	"github.com/runagent/runagent/internal/core"
)

func TestLimitsForDefaults(t *testing.T) {
	l, err := LimitsFor(core.Resources{}, Limits{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultLimits
	if l != want {
		t.Errorf("LimitsFor(empty) = %+v, want the reference defaults %+v", l, want)
	}
}

func TestLimitsForRequests(t *testing.T) {
	l, err := LimitsFor(core.Resources{CPU: 0.5, MemoryMB: 256, Processes: 20, OpenFiles: 64, DiskMB: 100}, Limits{}, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if l.CPU != 0.5 || l.MemoryBytes != 256<<20 || l.Processes != 20 || l.OpenFiles != 64 || l.DiskBytes != 100<<20 || l.FileSize != 100<<20 {
		t.Errorf("LimitsFor = %+v", l)
	}
}

func TestLimitsForNoProcessCreation(t *testing.T) {
	for _, on := range []bool{false, true} {
		l, err := LimitsFor(core.Resources{NoProcessCreation: on, Processes: 8}, Limits{}, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if l.NoProcessCreation != on || l.Processes != 8 {
			t.Errorf("LimitsFor(NoProcessCreation: %v) = %+v", on, l)
		}
		if got := l.WithDefaults(); got.NoProcessCreation != on {
			t.Errorf("WithDefaults dropped NoProcessCreation: %+v", got)
		}
	}
}

func TestLimitsForRefusesAboveMaxima(t *testing.T) {
	_, err := LimitsFor(core.Resources{MemoryMB: 8192}, Limits{}, Limits{MemoryBytes: 1 << 30})
	if err == nil || !strings.Contains(err.Error(), "resources.memory_mb") || !strings.Contains(err.Error(), "1024 MiB") {
		t.Errorf("8 GiB against a 1 GiB maximum: %v", err)
	}
	// A server default above the maximum is a configuration error too.
	_, err = LimitsFor(core.Resources{}, Limits{CPU: 4}, Limits{CPU: 2})
	if err == nil || !strings.Contains(err.Error(), "server default") {
		t.Errorf("default above maximum: %v", err)
	}
}

func TestNetworkFor(t *testing.T) {
	n := NetworkFor(core.NetworkPolicy{}, core.Resources{})
	if n.Mode != core.NetworkNone || n.BandwidthBytes != DefaultBandwidth || n.MaxConns != DefaultMaxConns {
		t.Errorf("NetworkFor(empty) = %+v", n)
	}
	n = NetworkFor(core.NetworkPolicy{Mode: core.NetworkEgress, Allow: []core.EgressRule{{Host: "api.openai.com"}}}, core.Resources{BandwidthMBps: 2})
	if n.Mode != core.NetworkEgress || len(n.Allow) != 1 || n.BandwidthBytes != 2<<20 {
		t.Errorf("NetworkFor(egress) = %+v", n)
	}
}
