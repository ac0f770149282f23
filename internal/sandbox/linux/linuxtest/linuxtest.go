package linuxtest

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/runagent/runagent/internal/egress"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/cgroup"
	"github.com/runagent/runagent/internal/sandbox/linux"
	"github.com/runagent/runagent/internal/sandbox/scratch"
)

// Ahead is how many supervisors and scratch areas Server keeps prepared,
// as the server does.
const Ahead = 2

// QuickExit keeps the race runtime of a supervisor (a race-enabled test
// binary) from sleeping a second when it exits; add it to a Spec's Env.
var QuickExit = []string{"GORACE=atexit_sleep_ms=0"}

// Server returns a linux backend set up as the server sets it up, with
// this test binary as its supervisor, and closes it (and what it holds
// on the host) when tb ends.
func Server(tb testing.TB) *linux.Backend {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("the linux sandbox backend with cgroups and scratch disks needs root")
	}
	if err := linux.Probe().Missing(linux.RequiredFeatures...); err != nil {
		tb.Fatalf("the linux sandbox backend cannot run here (runagent doctor says what is missing): %v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cg, err := cgroup.DetectWith(cgroup.Options{Parent: "runagent-linuxtest"})
	if err != nil {
		tb.Fatalf("cgroups are unusable although running as root: %v", err)
	}
	tb.Cleanup(func() { cg.RemoveParent() })
	dir := tb.TempDir()
	sc, err := scratch.New(filepath.Join(dir, "scratch"))
	if err != nil {
		tb.Fatalf("scratch disks are unusable although running as root (scripts/deps.sh installs e2fsprogs): %v", err)
	}
	tb.Cleanup(func() { sc.Close() })
	sc.KeepReady(Ahead)
	sc.Recycle(32)
	proxy := egress.New(egress.Config{Log: slog.New(slog.DiscardHandler)})
	b, err := linux.New(linux.Config{
		Exe:      exe,
		StateDir: filepath.Join(dir, "run"),
		Cgroups: linux.CgroupsFunc(func(id string, l sandbox.Limits) (linux.Cgroup, error) {
			c, err := cg.New(id, l)
			if err != nil {
				return nil, err
			}
			return c, nil
		}),
		Scratch:              sc,
		ShimFiltersProcesses: true,
		Prestart:             Ahead,
		PrestartEnv:          QuickExit,
		Egress:               linux.ProxyEgress{Proxy: proxy},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() }) // before the scratch manager and the cgroups: cleanups run last first
	return b
}
