// Package procgroup kills and reaps a sandbox's leader process and its
// process group without racing pid reuse: the leader is waited for
// without being reaped, so while it is a zombie neither its pid nor its
// group id can name another process; what is left of the group is
// killed; only then is the leader reaped. Every sandbox backend that runs
// its guest as child processes uses it.
package procgroup

import (
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Leader is a started command that leads its own process group
// (SysProcAttr.Setpgid).
type Leader struct {
	cmd *exec.Cmd

	mu     sync.Mutex // guards reaped, and orders Kill against the reap
	reaped bool
}

// New returns the Leader of cmd, which must have been started.
func New(cmd *exec.Cmd) *Leader { return &Leader{cmd: cmd} }

// Kill sends SIGKILL to the leader's whole process group, or with
// group false to the leader alone (a PID-namespace init takes its
// namespace with it). It does nothing once Reap has reaped the leader,
// whose pid might then be reused.
func (l *Leader) Kill(group bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reaped {
		return nil
	}
	pid := l.cmd.Process.Pid
	target := pid
	if group {
		target = -pid
	}
	if err := unix.Kill(target, unix.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("killing sandbox process %d: %w", target, err)
	}
	return nil
}

// Reap waits for the leader to exit, kills what is left of its group,
// reaps the leader and returns when it exited. Call it once.
func (l *Leader) Reap() time.Time {
	pid := l.cmd.Process.Pid
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	end := time.Now()
	l.mu.Lock()
	unix.Kill(-pid, unix.SIGKILL) // leftovers; the group is certainly ours
	l.cmd.Wait()
	l.reaped = true
	l.mu.Unlock()
	return end
}

// Status returns the reaped leader's exit code (-1 when killed by a
// signal) and the signal's name, if any. Call it after Reap.
func (l *Leader) Status() (code int, signal string) {
	ps := l.cmd.ProcessState
	if ps == nil {
		return -1, ""
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		signal = unix.SignalName(ws.Signal())
	}
	return ps.ExitCode(), signal
}
