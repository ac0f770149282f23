// Package sandbox defines how runagent starts the guest runtime that runs
// agent code, and provides the backends that do it. Every backend starts
// the same thing — the supervisor (this binary's hidden "__supervisor"
// subcommand), which starts the language shim — and hands back the host
// end of the control channel described in docs/guest-protocol.md.
//
// Backends:
//   - process: a plain child process in its own process group, with no
//     isolation beyond that. It exists so the platform works before the
//     linux backend (namespaces, cgroups, seccomp, landlock) lands.
package sandbox

import (
	"context"
	"io"
	"time"
)

// Spec says what to run and within which limits.
type Spec struct {
	// AgentDir is the host path of the agent's unpacked code (read-only).
	AgentDir string
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

// Exit is how a sandbox ended.
type Exit struct {
	Code      int           // exit status; -1 when killed by a signal
	Signal    string        // signal name when killed
	Logs      string        // captured stdout+stderr, interleaved, capped
	Truncated bool          // logs exceeded LogLimit
	Duration  time.Duration // from start to exit
}

// Backend starts sandboxes.
type Backend interface {
	// Name is the backend's name ("process", "linux", …).
	Name() string
	// Start starts a guest. ctx bounds only the start; the sandbox lives
	// until Kill or until the guest exits.
	Start(ctx context.Context, spec Spec) (Sandbox, error)
}
