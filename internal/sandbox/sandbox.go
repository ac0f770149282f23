// Package sandbox defines how runagent starts the guest runtime that runs
// agent code, and provides the backends that do it. Every backend starts
// the same thing — the supervisor (this binary's hidden "__supervisor"
// subcommand), which starts the language shim — and hands back the host
// end of the control channel described in docs/guest-protocol.md.
//
// Backends:
//   - linux (package linux, with package supervisor as its child side):
//     namespaces, a read-only root, cgroups, rlimits, seccomp, landlock
//     and egress only through the host's proxy. The agent's code is at
//     /agent with a writable overlay on the sandbox's scratch disk, its
//     environment read-only at /env, an output directory at /out, and
//     the Spec's Mounts (persistent state) read-write where it says.
//   - process (package process): a plain child process in its own
//     process group, with no isolation beyond that, for development on
//     hosts that cannot run the linux backend. It runs a per-sandbox copy
//     of the agent's code.
//
// A Spec names host directories; GuestDirs (DirsOf) says where the
// started sandbox shows them to the guest, which is what the executor
// puts in the guest's init frame.
package sandbox

import (
	"context"
	"io"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Limits are the resource limits of one sandbox. Zero means "the
// backend's default" (DefaultLimits); the server clamps agent requests to
// administrator maxima before they get here.
type Limits struct {
	CPU         float64 // cores: 1.0 = 100 ms of CPU per 100 ms
	MemoryBytes int64   // cgroup memory limit (RAM + tmpfs the sandbox writes)
	Processes   int64   // max tasks (cgroup pids.max; also RLIMIT_NPROC)
	OpenFiles   int64   // RLIMIT_NOFILE
	FileSize    int64   // RLIMIT_FSIZE: largest file the agent may write
	DiskBytes   int64   // size of the writable scratch area
	// NoProcessCreation denies fork/clone/vfork/execve once the agent's
	// code starts (seccomp), for agents that need no subprocesses.
	NoProcessCreation bool
}

// DefaultLimits are the reference model's defaults (DESIGN.md).
var DefaultLimits = Limits{
	CPU:         1.0,
	MemoryBytes: 512 << 20,
	Processes:   100,
	OpenFiles:   1024,
	FileSize:    1 << 30,
	DiskBytes:   1 << 30,
}

// WithDefaults fills zero fields from DefaultLimits.
func (l Limits) WithDefaults() Limits { return l.Or(DefaultLimits) }

// Or fills the zero fields of l from d (NoProcessCreation is l's).
func (l Limits) Or(d Limits) Limits {
	if l.CPU > 0 {
		d.CPU = l.CPU
	}
	if l.MemoryBytes > 0 {
		d.MemoryBytes = l.MemoryBytes
	}
	if l.Processes > 0 {
		d.Processes = l.Processes
	}
	if l.OpenFiles > 0 {
		d.OpenFiles = l.OpenFiles
	}
	if l.FileSize > 0 {
		d.FileSize = l.FileSize
	}
	if l.DiskBytes > 0 {
		d.DiskBytes = l.DiskBytes
	}
	d.NoProcessCreation = l.NoProcessCreation
	return d
}

// Network is a sandbox's network access.
type Network struct {
	// Mode is core.NetworkNone (loopback only) or core.NetworkEgress.
	Mode string
	// Allow lists the hosts (exact or "*.suffix") and ports reachable
	// through the egress proxy in egress mode.
	Allow []core.EgressRule
	// BandwidthBytes caps egress bytes per second (default 10 MB/s).
	BandwidthBytes int64
	// MaxConns caps concurrent egress connections (default 10).
	MaxConns int
	// Trusted lists "host:port" targets (from Allow) that the operator
	// configured, such as a private package index: their resolved
	// addresses are dialed even when private or loopback. Never set from
	// an agent's config.
	Trusted []string
}

// Spec says what to run and within which limits.
type Spec struct {
	// ID names the sandbox (unique per server); it appears in cgroup and
	// scratch names and in egress logs.
	ID string
	// AgentID is the agent the sandbox runs, for logs.
	AgentID string
	// AgentDir is the host path of the agent's unpacked code. The host's
	// copy is never written: the guest sees the code at its own path
	// (GuestDirs), writable for the sandbox's life — the linux backend
	// overlays a layer on the sandbox's scratch disk, the process backend
	// runs a copy — and what it writes there vanishes with the sandbox.
	AgentDir string
	// EnvDir is the host path of the agent's built Python environment, a
	// directory holding site-packages/ (and maybe bin/), or "" for none.
	// The linux backend mounts it read-only at /env (its files must
	// be readable by other users when the server is root, like
	// AgentDir's); the process backend shows the host path. The guest
	// learns the path from the init frame (guest.Init.EnvDir), which the
	// executor takes from GuestDirs.
	EnvDir string
	// OutDir is the host path of a directory the guest may write, or ""
	// for none; the guest finds its own path of it in OutDirEnv. The
	// linux backend mounts it read-write at /out. When the server is
	// root it first chowns the directory to the sandbox's agent uid and
	// gid on the host (linux.HostIDBase+linux.AgentUID, an unprivileged
	// id without a name), and the directory and every file the guest
	// writes in it belong to that id afterwards: the caller chowns them
	// back if it needs to. An unprivileged server's sandboxes, and the
	// process backend's, write them as the server's own user.
	OutDir string
	// Mounts are host directories shown read-write to this sandbox only
	// (Mount; CheckMounts says what is allowed). A fork server's Spec has
	// none: its runs get theirs from Template.Fork.
	Mounts []Mount
	// ShimPath is the host path of the language shim to run.
	ShimPath string
	// Python is the interpreter to run the shim with.
	Python string
	// Env is the base environment of the guest ("K=V"). Per-invocation
	// environment and secrets travel in the invoke frame instead.
	Env []string
	// LogLimit caps the captured stdout+stderr bytes; more is dropped and
	// the log marked truncated.
	LogLimit int
	// Limits and Network apply to isolating backends (linux); the process
	// backend enforces none of them.
	Limits  Limits
	Network Network
}

// OutDirEnv is the guest's environment variable naming its path of
// Spec.OutDir; backends set it, over Spec.Env, when there is one.
const OutDirEnv = "RUNAGENT_OUT_DIR"

// GuestDirs are the paths at which a started sandbox shows the guest the
// directories of its Spec; "" where the Spec has none.
type GuestDirs struct {
	Agent string // Spec.AgentDir
	Env   string // Spec.EnvDir
	Out   string // Spec.OutDir, also in the guest's OutDirEnv
}

// GuestPather is implemented by sandboxes that show the guest the
// directories of their Spec at other paths than the host's: the linux
// backend mounts them (/agent, /env, /out), the process backend runs a
// copy of the agent's code.
type GuestPather interface {
	GuestDirs() GuestDirs
}

// DirsOf returns where sb, started from spec, shows the guest spec's
// directories: sb's GuestDirs if it is a GuestPather, else the host paths.
func DirsOf(sb Sandbox, spec Spec) GuestDirs {
	if p, ok := sb.(GuestPather); ok {
		return p.GuestDirs()
	}
	return GuestDirs{Agent: spec.AgentDir, Env: spec.EnvDir, Out: spec.OutDir}
}

// Sandbox is one started guest.
type Sandbox interface {
	// Conn is the host end of the control channel (framed JSON).
	Conn() io.ReadWriteCloser
	// Kill ends every process of the sandbox. Safe to call more than once.
	Kill() error
	// Wait waits for the sandbox to end, releases its resources and returns
	// its exit status (-1 when killed by a signal) and captured logs.
	Wait() Exit
}

// LogCutter is implemented by sandboxes whose guest may serve more than
// one invocation (reuse per user_id). CutLogs returns the logs captured
// before mark+"\n", which the guest writes after each call, and drops
// them from the sandbox's logs; ok is false if the mark did not arrive
// within timeout.
type LogCutter interface {
	CutLogs(mark string, timeout time.Duration) (logs string, truncated, ok bool)
}

// Exit is how a sandbox ended.
type Exit struct {
	Code      int           // exit status; -1 when killed by a signal
	Signal    string        // signal name when killed
	Logs      string        // captured stdout+stderr, interleaved, capped
	Truncated bool          // logs exceeded LogLimit
	Duration  time.Duration // from start to exit
	// Violations are limits the sandbox hit, as far as the backend can
	// tell (e.g. "memory limit (OOM kill)", "process limit"); the
	// executor reports them to the caller and to security events.
	Violations []string
}

// Backend starts sandboxes.
type Backend interface {
	// Name is the backend's name ("process", "linux", …).
	Name() string
	// Start starts a guest. ctx bounds only the start; the sandbox lives
	// until Kill or until the guest exits.
	Start(ctx context.Context, spec Spec) (Sandbox, error)
}

// Template is a started fork server: a guest that imports an agent once
// (send its Conn the init of the agent's entrypoints and read the hello
// first) and then makes a sandbox per Fork, the agent already imported,
// with the same isolation as Backend.Start's. A forked sandbox expects
// an init, answered with the template's hello, then serves as any other.
// Fork gives the run mounts (Spec.Mounts) of its own, if any, when its
// request is known; a run forked ahead may take them later if it is a
// Mounter.
type Template interface {
	Conn() io.ReadWriteCloser
	GuestDirs() GuestDirs
	Fork(ctx context.Context, id string, mounts ...Mount) (Sandbox, error)
	Kill() error
	Wait() Exit
}

// NotForkableError is TemplateStarter.StartTemplate's answer for a Spec
// whose sandboxes may never be forked (an output directory the runs would
// share, a no-process-creation filter that would stop their set-up): the
// caller starts them with Start instead and need not try again.
type NotForkableError struct{ Reason string }

func (e *NotForkableError) Error() string { return "not forked: " + e.Reason }

// TemplateStarter is implemented by backends that can start fork
// servers (the linux backend).
type TemplateStarter interface {
	StartTemplate(ctx context.Context, spec Spec) (Template, error)
}

// Mounter is implemented by sandboxes that can be given their mounts
// (Spec.Mounts) after they started, before their invoke: the linux
// backend's forked runs, so that a run with persistent memory may come
// from the warm pool. AttachMounts may be called once, before the first
// write to Conn after the guest's hello; it validates mounts
// (CheckMounts), and a sandbox whose mounts failed is killed.
type Mounter interface {
	AttachMounts(ctx context.Context, mounts []Mount) error
}
