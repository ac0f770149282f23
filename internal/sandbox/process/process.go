//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/logtail"
	"github.com/runagent/runagent/internal/sandbox/procgroup"
	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// DefaultLogLimit is the log cap used when Spec.LogLimit is not set.
const DefaultLogLimit = 64 << 10

// defaultPath is the guest's PATH when the host has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// logDrainTimeout bounds how long Wait waits for the log pipe to close
// after the group is dead: only an escaped process (setsid) can hold it.
const logDrainTimeout = 2 * time.Second

// Backend starts guests as child processes.
type Backend struct {
	exe string
}

var _ sandbox.Backend = (*Backend)(nil)

// New returns a backend that starts exe's supervisor subcommand (see
// package supervisor): the runagent binary, or in tests the test binary
// whose TestMain calls supervisor.MaybeRun.
func New(exe string) *Backend {
	return &Backend{exe: exe}
}

// Name returns "process".
func (b *Backend) Name() string { return "process" }

// Start starts a guest for spec. The caller must call Wait on it.
func (b *Backend) Start(ctx context.Context, spec sandbox.Spec) (_ sandbox.Sandbox, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if spec.AgentDir == "" || spec.ShimPath == "" {
		return nil, errors.New("sandbox spec needs an agent directory and a shim path")
	}
	python := spec.Python
	if python == "" {
		python = "python3"
	}
	python, err = exec.LookPath(python)
	if err != nil {
		return nil, fmt.Errorf("finding the Python interpreter: %w", err)
	}
	limit := spec.LogLimit
	if limit <= 0 {
		limit = DefaultLogLimit
	}

	// Everything below is undone, in reverse, if a later step fails.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()

	if spec.OutDir != "" {
		if fi, err := os.Stat(spec.OutDir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("the output directory %s is not a directory", spec.OutDir)
		}
	}
	if err := sandbox.CheckMounts(spec.Mounts); err != nil {
		return nil, err
	}

	home, err := os.MkdirTemp("", "runagent-home-")
	if err != nil {
		return nil, fmt.Errorf("creating the sandbox home: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(home) })

	// The guest runs a copy of the code, so that what it writes beside
	// its files neither changes the host's copy nor outlives the sandbox.
	code, err := os.MkdirTemp("", "runagent-agent-")
	if err != nil {
		return nil, fmt.Errorf("creating the sandbox's agent directory: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(code) })
	if err := os.CopyFS(code, os.DirFS(spec.AgentDir)); err != nil {
		return nil, fmt.Errorf("copying the agent directory: %w", err)
	}
	for _, m := range spec.Mounts {
		if err := linkMount(m, code, home); err != nil {
			return nil, err
		}
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the control channel: %w", err)
	}
	hostEnd := os.NewFile(uintptr(fds[0]), "guest-control")
	guestEnd := os.NewFile(uintptr(fds[1]), "guest-control-child")
	defer guestEnd.Close() // the child has its own copy once started
	// net.FileConn dups the descriptor and puts it in the poller, so
	// Close unblocks a pending Read.
	conn, err := net.FileConn(hostEnd)
	hostEnd.Close()
	if err != nil {
		return nil, fmt.Errorf("creating the control channel: %w", err)
	}
	undo = append(undo, func() { conn.Close() })

	logR, logW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the log pipe: %w", err)
	}
	defer logW.Close()
	undo = append(undo, func() { logR.Close() })

	cmd := exec.Command(b.exe, supervisor.Args(python, spec.ShimPath)...)
	cmd.Dir = code
	cmd.Env = environ(spec.Env, home)
	if spec.OutDir != "" {
		cmd.Env = append(cmd.Env, sandbox.OutDirEnv+"="+spec.OutDir)
	}
	cmd.Stdout = logW
	cmd.Stderr = logW
	cmd.ExtraFiles = supervisor.Files{Control: guestEnd}.ExtraFiles()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the supervisor: %w", err)
	}

	s := &processSandbox{
		cmd:    cmd,
		pgid:   cmd.Process.Pid,
		leader: procgroup.New(cmd),
		conn:   conn,
		start:  start,
		home:   home,
		dirs:   sandbox.GuestDirs{Agent: code, Env: spec.EnvDir, Out: spec.OutDir},
		logs:   logtail.Collect(logR, limit),
	}
	return s, nil
}

// linkMount makes m's guest path, mapped into the copy of the code (below
// sandbox.GuestAgentDir) or the home directory (below
// sandbox.GuestHomeDir), a symbolic link to its host directory, replacing
// what the copy has there. This backend isolates nothing, so a link is as
// much as a bind would be, and needs no privilege; the guest sees that
// it is a link, and where to. Wait removes the link with the copy, not
// what it leads to.
func linkMount(m sandbox.Mount, code, home string) error {
	base, rel := code, strings.TrimPrefix(m.Guest, sandbox.GuestAgentDir+"/")
	if strings.HasPrefix(m.Guest, sandbox.GuestHomeDir+"/") {
		base, rel = home, strings.TrimPrefix(m.Guest, sandbox.GuestHomeDir+"/")
	}
	root, err := os.OpenRoot(base)
	if err != nil {
		return err
	}
	defer root.Close()
	if dir := filepath.Dir(rel); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Guest, err)
		}
	}
	if err := root.RemoveAll(rel); err != nil {
		return fmt.Errorf("mount point %s: %w", m.Guest, err)
	}
	if err := root.Symlink(m.Host, rel); err != nil {
		return fmt.Errorf("mount point %s: %w", m.Guest, err)
	}
	return nil
}

// environ returns the guest's environment: a fixed minimal base, then
// extra, whose entries win (exec.Cmd keeps the last of duplicate keys).
func environ(extra []string, home string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + home,
		"TMPDIR=" + home,
		"LANG=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
	}
	return append(env, extra...)
}

// processSandbox is one started guest.
type processSandbox struct {
	cmd   *exec.Cmd
	pgid  int
	conn  net.Conn
	start time.Time
	home  string
	dirs  sandbox.GuestDirs // dirs.Agent is the copy of the code

	logs *logtail.Collector

	leader *procgroup.Leader

	waitOnce sync.Once
	exit     sandbox.Exit
}

func (s *processSandbox) Conn() io.ReadWriteCloser { return s.conn }

// GuestDirs implements sandbox.GuestPather: the guest runs the copy of the
// agent's code; the environment and output directories are the host's.
func (s *processSandbox) GuestDirs() sandbox.GuestDirs { return s.dirs }

// CutLogs implements sandbox.LogCutter.
func (s *processSandbox) CutLogs(mark string, timeout time.Duration) (string, bool, bool) {
	return s.logs.Cut(mark, timeout)
}

// Kill sends SIGKILL to every process of the group. It does nothing once
// Wait has reaped the supervisor, whose pid might then be reused.
func (s *processSandbox) Kill() error { return s.leader.Kill(true) }

// Wait waits for the supervisor to exit, kills what is left of its group,
// reaps it, and releases the sandbox's resources. Concurrent and repeated
// calls return the same Exit.
func (s *processSandbox) Wait() sandbox.Exit {
	s.waitOnce.Do(s.wait)
	return s.exit
}

func (s *processSandbox) wait() {
	end := s.leader.Reap()
	// Every writer of the log pipe is dead now, unless one left the group.
	logs, truncated := s.logs.Finish(logDrainTimeout)
	s.conn.Close()
	os.RemoveAll(s.home)
	os.RemoveAll(s.dirs.Agent)
	code, signal := s.leader.Status()
	s.exit = sandbox.Exit{Code: code, Signal: signal, Duration: end.Sub(s.start), Logs: logs, Truncated: truncated}
}
