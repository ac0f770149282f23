package supervisor

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
)

// Command is the hidden subcommand that runs the supervisor.
const Command = "__supervisor"

const usage = "usage: runagent " + Command + " -python PATH -shim PATH"

// Exit statuses of the supervisor's own failures.
const (
	exitUsage    = 2
	exitNotFound = 127
)

// Args returns the arguments (after the executable) that run the
// supervisor for the interpreter python and the shim at shim.
func Args(python, shim string) []string {
	return []string{Command, "-python", python, "-shim", shim}
}

// MaybeRun runs the supervisor and exits if os.Args asks for it (os.Args[1]
// is Command); otherwise it returns.
func MaybeRun() {
	if len(os.Args) > 1 && os.Args[1] == Command {
		os.Exit(Main(os.Args[2:]))
	}
}

// Main runs the supervisor with the arguments after Command and returns
// its exit status.
func Main(args []string) int {
	if len(args) == 1 && args[0] == FlagSandbox {
		return sandboxMain()
	}
	if len(args) == 1 && args[0] == FlagHold {
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	fs := flag.NewFlagSet(Command, flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	fs.Usage = func() { fmt.Fprintln(os.Stderr, usage) }
	python := fs.String("python", "python3", "Python interpreter")
	shim := fs.String("shim", "", "path of the shim script")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *shim == "" || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, usage)
		return exitUsage
	}
	code, err := run(*python, *shim)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runagent supervisor: %v\n", err)
	}
	return code
}

// run starts the shim and waits for it.
func run(python, shim string) (int, error) {
	// Check the socket type too: without an inherited fd 3 the Go runtime
	// may have used the number for a descriptor of its own.
	var st syscall.Stat_t
	if err := syscall.Fstat(ControlFD, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFSOCK {
		return exitUsage, fmt.Errorf("control channel (fd %d) is not an open socket", ControlFD)
	}
	path, err := exec.LookPath(python)
	if err != nil {
		return exitNotFound, err
	}
	return supervise(path, []string{path, "-I", "-B", "-u", shim}, os.Environ(), "", nil)
}

// supervise starts path with argv, env and working directory dir (""
// for the current one), stdin from /dev/null, stdout and stderr
// inherited, the control channel as ControlFD and extra, if not nil, as
// the next descriptor (ShimSeccompFD); relays signals to it and waits
// for it (reaping orphans when PID 1). It closes the control channel and
// extra in the supervisor.
func supervise(path string, argv, env []string, dir string, extra *os.File) (int, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return exitNotFound, err
	}
	control := os.NewFile(ControlFD, "control")

	// Relay signals from before the start, so none is lost.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	files := []*os.File{devnull, os.Stdout, os.Stderr, control}
	if extra != nil {
		files = append(files, extra)
	}
	p, err := os.StartProcess(path, argv, &os.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: files,
	})
	devnull.Close()
	control.Close() // the shim holds the channel now; the host sees EOF when it exits
	if extra != nil {
		extra.Close()
	}
	if err != nil {
		return exitNotFound, fmt.Errorf("starting %s: %w", path, err)
	}

	return waitChild(p, sigs)
}

// waitChild relays sigs to p and waits for it (reaping orphans when PID
// 1), and returns its exit status.
func waitChild(p *os.Process, sigs <-chan os.Signal) (int, error) {
	done := make(chan struct{})
	defer close(done)
	go relay(p, sigs, done)

	var ws syscall.WaitStatus
	var err error
	if os.Getpid() == 1 {
		ws, err = reapUntil(p.Pid)
	} else {
		var state *os.ProcessState
		state, err = p.Wait()
		if err == nil {
			ws = state.Sys().(syscall.WaitStatus)
		}
	}
	if err != nil {
		return exitNotFound, fmt.Errorf("waiting for the shim: %w", err)
	}
	return status(ws), nil
}

// relay forwards signals to p until done is closed. os.Process signals
// through a pidfd, so a signal that races the shim's exit cannot reach a
// process that reused its pid.
func relay(p *os.Process, sigs <-chan os.Signal, done <-chan struct{}) {
	for {
		select {
		case sig := <-sigs:
			p.Signal(sig)
		case <-done:
			return
		}
	}
}

// reapUntil reaps every child — the shim and orphans re-parented to PID 1
// — until the shim, pid, exits, and returns the shim's status.
func reapUntil(pid int) (syscall.WaitStatus, error) {
	for {
		var ws syscall.WaitStatus
		wpid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 0, err
		}
		if wpid == pid {
			return ws, nil
		}
	}
}

// status turns a wait status into an exit status, shell style.
func status(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return exitNotFound
}
