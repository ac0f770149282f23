//go:build linux

package supervisor

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	MaybeRun()
	os.Exit(m.Run())
}

// quickExit keeps the race runtime of the supervisor (this test binary)
// from sleeping a second at exit.
const quickExit = "GORACE=atexit_sleep_ms=0"

var pythonOnce = sync.OnceValues(func() (string, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return "", err
	}
	// Resolve wrappers such as pyenv's shim script to the interpreter.
	out, err := exec.Command(py, "-I", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
})

func python(t *testing.T) string {
	t.Helper()
	py, err := pythonOnce()
	if err != nil {
		t.Fatalf("python3 is required by the tests (scripts/deps.sh installs it): %v", err)
	}
	return py
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// supervised is a supervisor started by a test.
type supervised struct {
	cmd    *exec.Cmd
	host   net.Conn      // host end of the control channel
	lines  chan string   // the shim's stdout, line by line
	exited chan struct{} // closed when cmd.Wait returned
	code   int
}

// start runs the test binary as the supervisor of a shim with the given
// Python source, in a new process group that is killed when the test ends.
func start(t *testing.T, source string, setup func(*exec.Cmd)) *supervised {
	t.Helper()
	shim := filepath.Join(t.TempDir(), "shim.py")
	if err := os.WriteFile(shim, []byte(source), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	hostFile, child := os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "child")
	defer hostFile.Close()
	defer child.Close()
	host, err := net.FileConn(hostFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Close() })

	cmd := exec.Command(exe, Args(python(t), shim)...)
	cmd.Env = append(os.Environ(), quickExit)
	cmd.ExtraFiles = []*os.File{child}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("supervisor stderr:\n%s", stderr.String())
		}
	})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(cmd)
	}
	if err := cmd.Start(); err != nil {
		if os.Geteuid() != 0 && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL)) {
			t.Skipf("starting the supervisor in new namespaces needs root on this machine: %v", err)
		}
		t.Fatal(err)
	}
	s := &supervised{cmd: cmd, host: host, lines: make(chan string, 16), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		cmd.Wait()
		s.code = cmd.ProcessState.ExitCode()
		close(s.exited)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	})
	return s
}

func (s *supervised) waitLine(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-s.lines:
		if got != want {
			t.Fatalf("shim printed %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("shim did not print %q within 10s", want)
	}
}

func (s *supervised) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-s.exited:
		return s.code
	case <-time.After(10 * time.Second):
		t.Fatal("supervisor did not exit within 10s")
		return 0
	}
}

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name   string
		source string
		want   int
	}{
		{"zero", "pass", 0},
		{"exit 5", "import sys; sys.exit(5)", 5},
		{"uncaught exception", "raise ValueError('x')", 1},
		{"SIGKILL", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)", 128 + 9},
		{"SIGSEGV", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", 128 + 11},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, tt.source, nil)
			if got := s.wait(t); got != tt.want {
				t.Errorf("supervisor exited %d, want %d", got, tt.want)
			}
		})
	}
}

// TestShimEnvironment checks what the shim is given: the isolation flags,
// stdin from /dev/null, the control channel as fd 3, the environment.
func TestShimEnvironment(t *testing.T) {
	const source = `import os, sys
print(sys.flags.isolated, sys.flags.dont_write_bytecode, sys.stdout.write_through)
print(os.readlink("/proc/self/fd/0"))
print(os.readlink("/proc/self/fd/3").split(":")[0])
print(os.environ.get("SUPERVISOR_TEST"))
os.write(3, b"through fd 3")
`
	s := start(t, source, func(cmd *exec.Cmd) {
		cmd.Env = []string{"SUPERVISOR_TEST=kept", quickExit}
	})
	s.waitLine(t, "1 1 True")
	s.waitLine(t, "/dev/null")
	s.waitLine(t, "socket")
	s.waitLine(t, "kept")
	got, err := io.ReadAll(s.host)
	if err != nil {
		t.Fatalf("reading the control channel: %v", err)
	}
	if string(got) != "through fd 3" {
		t.Errorf("control channel carried %q, want %q", got, "through fd 3")
	}
	if code := s.wait(t); code != 0 {
		t.Errorf("supervisor exited %d, want 0", code)
	}
}

// TestControlChannelClosed checks the supervisor keeps no copy of fd 3: the
// host sees EOF when the shim closes it, while both still run.
func TestControlChannelClosed(t *testing.T) {
	const source = `import os, time
os.close(3)
print("closed")
time.sleep(30)
`
	s := start(t, source, nil)
	s.waitLine(t, "closed")
	s.host.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := s.host.Read(make([]byte, 1))
	if n != 0 || err != io.EOF {
		t.Errorf("read on the control channel = %d, %v; want EOF", n, err)
	}
	select {
	case <-s.exited:
		t.Errorf("supervisor exited early")
	default:
	}
}

func TestSignalRelay(t *testing.T) {
	tests := []struct {
		sig  syscall.Signal
		want int
	}{
		{syscall.SIGTERM, 15},
		{syscall.SIGINT, 2},
		{syscall.SIGHUP, 1},
	}
	const source = `import signal, sys, time
def handler(n, _):
    sys.stdout.flush()
    sys.exit(n)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, handler)
print("ready")
time.sleep(30)
sys.exit(99)
`
	for _, tt := range tests {
		t.Run(tt.sig.String(), func(t *testing.T) {
			s := start(t, source, nil)
			s.waitLine(t, "ready")
			// Only the supervisor, not the group: it must relay.
			if err := s.cmd.Process.Signal(tt.sig); err != nil {
				t.Fatal(err)
			}
			if got := s.wait(t); got != tt.want {
				t.Errorf("after %v the supervisor exited %d, want %d", tt.sig, got, tt.want)
			}
		})
	}
}

func TestSignalKillsShim(t *testing.T) {
	s := start(t, "import time\nprint('ready')\ntime.sleep(30)\n", nil)
	s.waitLine(t, "ready")
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := s.wait(t); got != 128+15 {
		t.Errorf("supervisor exited %d, want %d", got, 128+15)
	}
}

// TestPID1 runs the supervisor as PID 1 of a new PID namespace, with an
// orphan re-parented to it that exits before the shim: the supervisor
// must reap it and still report the shim's status.
func TestPID1(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("creating a PID namespace needs root")
	}
	// The grandchild reports its pid as the host sees it (/proc is the
	// host's) and exits as an orphan; the shim then looks whether it is
	// still a zombie.
	const source = `import os, time
print(os.getppid())
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    if os.fork() == 0:
        os.write(w, os.readlink("/proc/self").encode())
        time.sleep(0.05)
        os._exit(0)
    os._exit(0)
os.waitpid(pid, 0)
os.close(w)
orphan = os.read(r, 64).decode()
time.sleep(0.3)
try:
    with open("/proc/%s/stat" % orphan) as f:
        print("orphan state", f.read().rsplit(")", 1)[1].split()[0])
except FileNotFoundError:
    print("orphan reaped")
exit(9)
`
	s := start(t, source, func(cmd *exec.Cmd) {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	})
	s.waitLine(t, "1")
	s.waitLine(t, "orphan reaped")
	if got := s.wait(t); got != 9 {
		t.Errorf("supervisor as PID 1 exited %d, want 9", got)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no shim", nil},
		{"empty shim", []string{"-shim", ""}},
		{"unknown flag", []string{"-shim", "x", "-bogus"}},
		{"extra argument", []string{"-shim", "x", "extra"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Main(tt.args); got != exitUsage {
				t.Errorf("Main(%q) = %d, want %d", tt.args, got, exitUsage)
			}
		})
	}
}

func TestStartFailures(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	host, child := os.NewFile(uintptr(fds[0]), "host"), os.NewFile(uintptr(fds[1]), "child")
	defer host.Close()
	defer child.Close()
	tests := []struct {
		name  string
		args  []string
		extra []*os.File
		want  int
	}{
		{"missing interpreter", Args("/nonexistent/python3", "shim.py"), []*os.File{child}, exitNotFound},
		{"no control channel", Args("python3", "shim.py"), nil, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe, tt.args...)
			cmd.Env = append(os.Environ(), quickExit)
			cmd.ExtraFiles = tt.extra
			out, _ := cmd.CombinedOutput()
			if got := cmd.ProcessState.ExitCode(); got != tt.want {
				t.Errorf("supervisor exited %d, want %d; output %q", got, tt.want, out)
			}
			if !strings.Contains(string(out), "runagent supervisor:") {
				t.Errorf("output %q does not explain the failure", out)
			}
		})
	}
}

func TestMaybeRunReturns(t *testing.T) {
	// os.Args of a test binary do not ask for the supervisor.
	MaybeRun()
}
