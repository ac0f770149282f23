package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/egress"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/cgroup"
	"github.com/runagent/runagent/internal/sandbox/linux"
	"github.com/runagent/runagent/internal/sandbox/process"
	"github.com/runagent/runagent/internal/sandbox/scratch"
)

// Sandbox backends.
const (
	// SandboxLinux isolates every invocation: namespaces, read-only root,
	// cgroups, rlimits, seccomp, landlock, egress only through the proxy.
	SandboxLinux = "linux"
	// SandboxProcess runs agents as plain child processes, with no
	// isolation: for development on hosts that cannot run the linux
	// backend, and only when asked for by name.
	SandboxProcess = "process"
)

// DefaultSandboxPython is the interpreter the linux backend runs: the
// sandbox binds only system directories, so it must live in one.
const DefaultSandboxPython = "/usr/bin/python3"

// linuxBackend is the linux backend with the scratch manager it uses,
// which the server closes with it. (Its sandboxes tell the executor
// where they show the guest the agent's directories: GuestDirs.)
type linuxBackend struct {
	*linux.Backend
	scratch *scratch.Manager
}

// sandboxesAhead is how many sandbox supervisors, and scratch disks of
// each size in use, the linux backend keeps prepared ahead of demand.
const sandboxesAhead = 2

// recycledDisks bounds the wiped scratch disks kept ready (per size):
// each is a loop device and a mount holding no data.
const recycledDisks = 32

// cgroupParent names the parent cgroup of this server's sandboxes. It is
// derived from the data directory, so two servers on one host never touch
// each other's sandboxes when they clean up after a crash.
func cgroupParent(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return "runagent-" + hex.EncodeToString(sum[:6])
}

// openSandbox builds the configured sandbox backend. It fails closed: if
// the host lacks anything the linux backend needs, it says what and how to
// fix it, and never falls back to less isolation. It also removes what a
// crashed server left behind (cgroups, scratch mounts, state).
//
// The returned function releases what the backend holds on the host (its
// parent cgroup); call it after every sandbox has ended.
func openSandbox(cfg Config, log *slog.Logger, ev core.EventEmitter) (sandbox.Backend, func(), error) {
	b, cg, err := openBackend(cfg, log, ev)
	if err != nil {
		return nil, nil, err
	}
	release := func() {
		if lb, ok := b.(linuxBackend); ok {
			lb.Close()
			if err := lb.scratch.Close(); err != nil {
				log.Warn("remove the scratch disk templates", "err", err)
			}
		}
		if cg != nil {
			if err := cg.RemoveParent(); err != nil {
				log.Warn("remove the sandboxes' parent cgroup", "err", err)
			}
		}
	}
	return b, release, nil
}

func openBackend(cfg Config, log *slog.Logger, ev core.EventEmitter) (sandbox.Backend, *cgroup.Host, error) {
	switch cfg.Sandbox {
	case SandboxProcess:
		log.Warn("sandbox backend \"process\": agents run as plain child processes with NO isolation (no namespaces, limits, syscall filter or network policy); use it for development only")
		return process.New(cfg.Exe), nil, nil
	case SandboxLinux:
	default:
		return nil, nil, fmt.Errorf("unknown sandbox backend %q: use %q (isolated, the default) or %q (no isolation, development only)", cfg.Sandbox, SandboxLinux, SandboxProcess)
	}
	hint := "run `runagent doctor` for details, or pass --sandbox process to run agents without any isolation (development only)"
	if err := linux.Probe().Missing(linux.RequiredFeatures...); err != nil {
		return nil, nil, fmt.Errorf("%w; %s", err, hint)
	}
	cg, err := cgroup.DetectWith(cgroup.Options{Parent: cgroupParent(cfg.DataDir)})
	if err != nil {
		return nil, nil, fmt.Errorf("the linux sandbox needs cgroups to enforce CPU, memory and process limits: %w; %s", err, hint)
	}
	if n, err := cg.CleanStale(); err != nil {
		return nil, nil, fmt.Errorf("remove sandbox cgroups left by an earlier run: %w", err)
	} else if n > 0 {
		log.Warn("removed sandbox cgroups left by an earlier run", "count", n)
	}
	root := filepath.Join(cfg.DataDir, "sandboxes")
	sc, err := scratch.New(filepath.Join(root, "scratch"))
	if err != nil {
		return nil, nil, fmt.Errorf("the linux sandbox needs size-capped scratch disks: %w; %s", err, hint)
	}
	if n, err := sc.CleanStale(); err != nil {
		return nil, nil, fmt.Errorf("remove sandbox scratch disks left by an earlier run: %w", err)
	} else if n > 0 {
		log.Warn("removed sandbox scratch disks left by an earlier run", "count", n)
	}
	sc.KeepReady(sandboxesAhead)
	// A sandbox's disk, wiped, serves the next (scratch.Manager.Recycle):
	// up to recycledDisks are kept mounted and ready, enough for the runs
	// of a burst to find one instead of each making its own.
	sc.Recycle(recycledDisks)
	state := filepath.Join(root, "run")
	if err := os.RemoveAll(state); err != nil {
		return nil, nil, fmt.Errorf("remove sandbox state left by an earlier run: %w", err)
	}
	proxy := egress.New(egress.Config{Log: log.With("component", "egress"), Events: ev})
	b, err := linux.New(linux.Config{
		Exe:      cfg.Exe,
		StateDir: state,
		Cgroups: linux.CgroupsFunc(func(id string, l sandbox.Limits) (linux.Cgroup, error) {
			c, err := cg.New(id, l)
			if err != nil {
				return nil, err
			}
			return c, nil
		}),
		Scratch: sc,
		// The embedded shim installs the process filter (no_process_creation).
		ShimFiltersProcesses: true,
		// Keep supervisors started in fresh namespaces, so a cold start
		// pays only for mounts, limits and Python.
		Prestart: sandboxesAhead,
		Egress:   linux.ProxyEgress{Proxy: proxy},
	})
	if err != nil {
		return nil, nil, err
	}
	log.Info("sandbox backend linux", "cgroups", cg.String())
	return linuxBackend{b, sc}, cg, nil
}
