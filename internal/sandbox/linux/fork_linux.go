//go:build linux

package linux

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/egress"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/logtail"
)

// Fork servers.
//
// StartTemplate starts a sandbox like Start, except that its Python is a
// fork server (a template, supervisor.ZygoteConfig): the executor sends
// it the init of all of an agent version's entrypoints, so it imports
// the agent once, and then Template.Fork makes each run's sandbox from
// it by fork(2), the agent already imported. A run has its own user,
// mount, network, IPC, UTS and PID namespaces, its own cgroup, /tmp and
// /agent as overlays of the template's whose writable layers lie on the
// run's own disk (a tmpfs within half its memory, or a scratch image:
// Template.disk), the template's landlock rules made on its own mounts,
// no capabilities, its rlimits and the sandbox's seccomp filter (Policy):
// what a run may do is what a sandbox of Start may do. The shim in the
// run sets that up, before any of the run's input reaches it; the host
// then checks it from outside (checkRun) and only then hands the run its
// control channel's init.
//
// What runs in the template is the agent's import, under Start's
// restrictions except two: no landlock domain (a landlocked process may
// not mount, and the runs must), and ZygotePolicy instead of Policy
// (unshare of exactly the runs' namespaces; mount, umount2 and move_mount,
// which reach only those namespaces). The template holds no secrets: they
// come with each run's invoke.
//
// The host's checks guard against a shim that failed to confine a run,
// not against an agent whose import subverted its template: such an agent
// could hand its runs a filter of its own instead of Policy and skip
// landlock, leaving them as confined as the template itself (namespaces,
// no host capabilities, ZygotePolicy, cgroups) — which is what the agent
// had at import anyway, over its own runs.

// templateMaxRuns bounds the runs a template may have at once: each run
// leaves one process (the waiter that reports its status) in the
// template's cgroup.
const templateMaxRuns = 1024

// templateNProc is the template's RLIMIT_NPROC. The user namespaces of
// its runs are its own's children, so their processes count against its
// limit too; each run's own processes are bounded by its RLIMIT_NPROC and
// its cgroup.
const templateNProc = 1 << 16

// cgroupLimits are the limits of a sandbox's cgroup. A template's also
// holds, besides its own processes, one waiter per run, and each run
// until the host moves it into its own cgroup: all of the runs' set-up
// (namespaces, layers, filters) runs in it, so its CPU limit is the
// machine's, not one run's — with one run's, concurrent runs queued
// behind the quota and the cores stood idle. A run's own cgroup has the
// run's limits.
func cgroupLimits(l sandbox.Limits, template bool) sandbox.Limits {
	if template {
		l.Processes += templateMaxRuns
		l.CPU = max(l.CPU, float64(runtime.NumCPU()))
	}
	return l
}

// Template is a started fork server.
type Template struct {
	b      *Backend
	sb     *linuxSandbox
	spec   sandbox.Spec
	limits sandbox.Limits
	conn   *net.UnixConn
	ns     map[string]string // the template's namespaces, by name
	egress bool              // its runs hand over their proxy listener

	mu      sync.Mutex // one fork frame at a time; filters
	filters int        // the template's Python's seccomp filters, once read
}

// StartTemplate starts a fork server for spec. Send its Conn the init of
// the agent's entrypoints and read the hello (guest.Conn.Init) before
// the first Fork; the caller must call Wait on it.
func (b *Backend) StartTemplate(ctx context.Context, spec sandbox.Spec) (sandbox.Template, error) {
	if os.Geteuid() != 0 {
		return nil, &sandbox.NotForkableError{Reason: "fork servers need root (their runs' cgroups and the checks of their namespaces)"}
	}
	if spec.OutDir != "" {
		return nil, &sandbox.NotForkableError{Reason: "its runs would share the output directory"}
	}
	if spec.Network.Mode == core.NetworkEgress {
		if _, ok := b.cfg.Egress.(EgressServer); !ok {
			return nil, &sandbox.NotForkableError{Reason: "egress from forked runs needs an egress proxy that serves a listener (linux.EgressServer)"}
		}
	}
	s, err := b.start(ctx, spec, true)
	if err != nil {
		return nil, err
	}
	t := &Template{b: b, sb: s, spec: spec, limits: spec.Limits.WithDefaults(), egress: spec.Network.Mode == core.NetworkEgress}
	uc, ok := s.conn.(*net.UnixConn)
	if !ok {
		s.Kill()
		s.Wait()
		return nil, errors.New("the template's control channel is not a unix socket")
	}
	t.conn = uc
	if t.ns, err = namespaces(s.pid); err != nil {
		s.Kill()
		s.Wait()
		return nil, err
	}
	return t, nil
}

// Conn is the template's control channel, for its init.
func (t *Template) Conn() io.ReadWriteCloser { return t.sb.conn }

// GuestDirs are the template's (and its runs') guest paths.
func (t *Template) GuestDirs() sandbox.GuestDirs { return t.sb.dirs }

// Kill ends the template; its runs end with it (their PID namespaces are
// its own's children).
func (t *Template) Kill() error { return t.sb.Kill() }

// Wait waits for the template to end and releases it.
func (t *Template) Wait() sandbox.Exit { return t.sb.Wait() }

// runNamespaces are the namespaces a run must not share with its
// template.
var runNamespaces = []string{"user", "mnt", "net", "ipc", "uts", "pid"}

// namespaces reads the namespace identities of process pid.
func namespaces(pid int) (map[string]string, error) {
	out := make(map[string]string, len(runNamespaces))
	for _, n := range runNamespaces {
		l, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/ns/" + n)
		if err != nil {
			return nil, fmt.Errorf("reading the namespaces of process %d: %w", pid, err)
		}
		out[n] = l
	}
	return out, nil
}

// Fork makes a run's sandbox from the template. ctx bounds the fork and
// the run's set-up. The run expects an init (answered with the
// template's hello) and then serves one invoke, or several with keep.
//
// mounts are the run's own directories (sandbox.Mount): each goes to the
// run as a detached mount, nosuid, nodev and noexec, with the fork frame
// (its host directory chowned to the agent's host ids first, as Start
// does), and the run attaches it at its guest path once its /tmp and
// /agent overlays are in place, before it makes its landlock ruleset. A
// run forked without them may get them later, before its invoke
// (AttachMounts).
func (t *Template) Fork(ctx context.Context, id string, mounts ...sandbox.Mount) (_ sandbox.Sandbox, err error) {
	if id == "" {
		id = randomID()
	}
	if err := sandbox.CheckMounts(mounts); err != nil {
		return nil, err
	}
	var undo undoStack
	defer func() { undo.unwind(err != nil) }()

	// The run's control channel (the host's end receives the
	// credentials of who writes: the run's pid), its log pipe and the
	// pipe its waiter writes its wait status to.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the run's control channel: %w", err)
	}
	host, child := os.NewFile(uintptr(pair[0]), "run-control"), os.NewFile(uintptr(pair[1]), "run-control-child")
	defer child.Close()
	if err := unix.SetsockoptInt(pair[0], unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		host.Close()
		return nil, fmt.Errorf("run control channel: %w", err)
	}
	fc, err := net.FileConn(host)
	host.Close()
	if err != nil {
		return nil, fmt.Errorf("run control channel: %w", err)
	}
	conn := fc.(*net.UnixConn)
	undo.push(func() { conn.Close() })
	logR, logW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer logW.Close()
	undo.push(func() { logR.Close() })
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusW.Close()
	undo.push(func() { statusR.Close() })

	// The waiter's channel (lateMounts): the run never has it.
	wpair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the run's waiter channel: %w", err)
	}
	whost, wchild := os.NewFile(uintptr(wpair[0]), "run-waiter"), os.NewFile(uintptr(wpair[1]), "run-waiter-child")
	defer wchild.Close()
	wfc, err := net.FileConn(whost)
	whost.Close()
	if err != nil {
		return nil, fmt.Errorf("run waiter channel: %w", err)
	}
	waiter := wfc.(*net.UnixConn)
	undo.push(func() { waiter.Close() })

	fds := []int{int(child.Fd()), int(logW.Fd()), int(statusW.Fd()), int(wchild.Fd())}
	release, disk, err := t.disk(id)
	if err != nil {
		return nil, err
	}
	if release != nil {
		undo.push(func() { release() })
		defer unix.Close(disk)
		fds = append(fds, disk)
	}
	guests := make([]string, 0, len(mounts))
	for _, m := range mounts {
		fd, err := mountFD(m, HostIDBase+AgentUID, HostIDBase+AgentGID)
		if err != nil {
			return nil, err
		}
		defer unix.Close(fd)
		fds = append(fds, fd)
		guests = append(guests, m.Guest)
	}
	if err := t.sendFork(id, guests, fds); err != nil {
		return nil, err
	}
	child.Close()
	logW.Close()
	statusW.Close()
	wchild.Close()
	s := &forkedSandbox{conn: conn, start: time.Now(), dirs: t.sb.dirs, statusR: statusR, release: release, waiter: waiter}
	s.rc = &runConn{UnixConn: conn, s: s}
	s.logs = logtail.Collect(logR, logLimitOf(t.spec))
	undo.push(func() { s.logs.Finish(0) })

	pid, extra, err := readReady(ctx, conn)
	var listener *os.File
	for _, fd := range extra {
		if t.egress && listener == nil {
			listener = os.NewFile(uintptr(fd), "run-egress")
			continue
		}
		unix.Close(fd) // a run passes one descriptor at most, with egress
	}
	if listener != nil {
		defer listener.Close()
	}
	if err == nil && t.egress && listener == nil {
		err = errors.New("the run did not hand over its egress listener")
	}
	if err != nil {
		logs, _ := s.logs.Finish(logDrainTimeout)
		if logs = strings.TrimSpace(logs); logs != "" {
			return nil, fmt.Errorf("forking a run: %w: %s", err, tail(logs, 2000))
		}
		return nil, fmt.Errorf("forking a run: %w", err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the run's process: %w", err)
	}
	s.pidfd, s.pid = pidfd, pid
	undo.push(func() { unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0); unix.Close(pidfd) })
	if err := t.checkRun(pid); err != nil {
		return nil, fmt.Errorf("the run forked from the template is not confined: %w", err)
	}
	if t.b.cfg.Cgroups != nil {
		cg, err := t.b.cfg.Cgroups.New(id, t.limits)
		if err != nil {
			return nil, fmt.Errorf("creating the run's cgroup: %w", err)
		}
		undo.push(func() { cg.Destroy() })
		if err := cg.AddPID(pid); err != nil {
			return nil, fmt.Errorf("adding the run to its cgroup: %w", err)
		}
		s.cgroup = cg
	}
	if listener != nil {
		ln, err := net.FileListener(listener)
		if err != nil {
			return nil, fmt.Errorf("the run's egress listener: %w", err)
		}
		s.egress = t.b.cfg.Egress.(EgressServer).Serve(refusalListener{ln, s.logs}, id, t.spec.AgentID, t.spec.Network)
	}
	return s, nil
}

// disk returns a detached mount of a scratch disk of the run's own, and
// its release, when its writable layers need more than a tmpfs may hold:
// a tmpfs counts against the run's memory, so it gets at most half of it
// (ZygoteConfig.ScratchBytes); a larger Limits.DiskBytes is an image of
// the ScratchManager, as a sandbox of Start has. Without a ScratchManager,
// or within half the memory, release is nil (the run mounts a tmpfs).
func (t *Template) disk(id string) (release func() error, fd int, err error) {
	sm := t.b.cfg.Scratch
	if sm == nil || t.limits.DiskBytes <= t.limits.MemoryBytes/2 {
		return nil, -1, nil
	}
	dir, release, err := sm.Prepare(id, t.limits.DiskBytes, HostIDBase+AgentUID, HostIDBase+AgentGID)
	if err != nil {
		return nil, -1, fmt.Errorf("preparing the run's disk: %w", err)
	}
	fd, err = detachedMount(dir, false, 0)
	if err != nil {
		release()
		return nil, -1, fmt.Errorf("opening the run's disk: %w", err)
	}
	return release, fd, nil
}

// sendFork sends the template a fork frame carrying fds: the run's
// control channel, log and status pipes, its waiter's channel, its disk
// if it has one, and a detached mount per guest path in mounts, in that
// order.
func (t *Template) sendFork(id string, mounts []string, fds []int) error {
	body, err := json.Marshal(struct {
		Type   string   `json:"type"`
		ID     string   `json:"id"`
		Mounts []string `json:"mounts,omitempty"`
	}{"fork", id, mounts})
	if err != nil {
		return err
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	frame = append(frame, body...)
	t.mu.Lock()
	defer t.mu.Unlock()
	n, _, err := t.conn.WriteMsgUnix(frame, unix.UnixRights(fds...), nil)
	if err == nil && n < len(frame) {
		_, err = t.conn.Write(frame[n:])
	}
	if err != nil {
		return fmt.Errorf("asking the template for a run: %w", err)
	}
	return nil
}

// readReady reads the run's ready frame and returns the pid (in the
// host's PID namespace) of the process that sent it, and the descriptors
// passed with it.
func readReady(ctx context.Context, conn *net.UnixConn) (pid int, fds []int, err error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	conn.SetReadDeadline(deadline)
	defer conn.SetReadDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Now()) })
	defer stop()
	var frame []byte
	buf := make([]byte, 256)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*4))
	for len(frame) < 4 || len(frame) < 4+int(binary.BigEndian.Uint32(frame)) {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if oobn > 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr != nil {
				return 0, fds, perr
			}
			for _, m := range msgs {
				if cred, err := unix.ParseUnixCredentials(&m); err == nil {
					if pid == 0 {
						pid = int(cred.Pid)
					}
				} else if rights, err := unix.ParseUnixRights(&m); err == nil {
					fds = append(fds, rights...)
				}
			}
		}
		if n == 0 && err == nil {
			err = io.EOF
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, fds, errors.New("the run ended during its set-up")
			}
			if ctx.Err() != nil {
				return 0, fds, ctx.Err()
			}
			return 0, fds, fmt.Errorf("waiting for the run to be ready: %w", err)
		}
		frame = append(frame, buf[:n]...)
		if len(frame) > 4+64 {
			return 0, fds, errors.New("the run's ready frame is too long")
		}
	}
	if n := 4 + int(binary.BigEndian.Uint32(frame)); len(frame) != n {
		// The run sends nothing after ready until it has its init.
		return 0, fds, fmt.Errorf("the run sent %d bytes after its ready frame", len(frame)-n)
	}
	if !bytes.Equal(frame[4:], []byte(`{"type":"ready"}`)) {
		return 0, fds, fmt.Errorf("the run sent %q, not ready", frame[4:])
	}
	if pid <= 0 {
		return 0, fds, errors.New("the run's ready frame carried no credentials")
	}
	return pid, fds, nil
}

// checkRun checks, from /proc, that process pid — the run's PID 1, which
// has said it is ready and has not been given anything yet — is confined
// as a run must be: none of the template's namespaces, no capabilities in
// any set, no_new_privs, and one seccomp filter more than the template
// (the run's Policy on top of ZygotePolicy). Once so, nothing lets it
// leave: changing namespaces needs setns or unshare (denied by Policy)
// and capabilities it cannot regain.
func (t *Template) checkRun(pid int) error {
	ns, err := namespaces(pid)
	if err != nil {
		return err
	}
	for _, n := range runNamespaces {
		if ns[n] == t.ns[n] {
			return fmt.Errorf("it shares the template's %s namespace", n)
		}
	}
	status, err := procStatus(pid)
	if err != nil {
		return err
	}
	want, err := t.zygoteFilters()
	if err != nil {
		return err
	}
	for _, c := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
		if v := status[c]; strings.Trim(v, "0") != "" {
			return fmt.Errorf("it has capabilities (%s %s)", c, v)
		}
	}
	if status["NoNewPrivs"] != "1" {
		return errors.New("no_new_privs is not set")
	}
	if status["Seccomp"] != "2" {
		return errors.New("it has no seccomp filter")
	}
	if got, _ := strconv.Atoi(status["Seccomp_filters"]); got != want+1 {
		return fmt.Errorf("it has %d seccomp filters, want the template's %d and its own", got, want)
	}
	return nil
}

// zygoteFilters returns the number of seccomp filters of the template's
// Python, read once (no process can shed a filter).
func (t *Template) zygoteFilters() (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.filters > 0 {
		return t.filters, nil
	}
	st, err := procStatus(t.zygotePID())
	if err != nil {
		return 0, fmt.Errorf("reading the template's status: %w", err)
	}
	n, err := strconv.Atoi(st["Seccomp_filters"])
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("the template has no seccomp filter (%q)", st["Seccomp_filters"])
	}
	t.filters = n
	return n, nil
}

// zygotePID returns the pid of the template's Python: the supervisor's
// only child.
func (t *Template) zygotePID() int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", t.sb.pid, t.sb.pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	pid, _ := strconv.Atoi(f[0])
	return pid
}

// procStatus reads /proc/pid/status into a map.
func procStatus(pid int) (map[string]string, error) {
	if pid <= 0 {
		return nil, errors.New("no such process")
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out, nil
}

// forkedSandbox is one run forked from a template.
type forkedSandbox struct {
	conn    *net.UnixConn
	start   time.Time
	dirs    sandbox.GuestDirs
	pidfd   int
	pid     int // the run's PID 1, in the host's PID namespace
	statusR *os.File
	cgroup  Cgroup
	logs    *logtail.Collector
	egress  io.Closer    // the proxy serving the run's listener, or nil
	release func() error // the run's disk, or nil
	rc      *runConn     // conn, sealing the waiter's channel at the invoke

	// The host's end of the waiter's channel (AttachMounts), until it is
	// used or sealed: closed, it tells the waiter no mounts will come.
	wmu        sync.Mutex
	waiter     *net.UnixConn
	mountsUsed bool
	sealed     bool

	mu       sync.Mutex // guards pidfd against Kill after Wait
	waitOnce sync.Once
	exit     sandbox.Exit
}

func (s *forkedSandbox) Conn() io.ReadWriteCloser     { return s.rc }
func (s *forkedSandbox) GuestDirs() sandbox.GuestDirs { return s.dirs }
func (s *forkedSandbox) CutLogs(mark string, timeout time.Duration) (string, bool, bool) {
	return s.logs.Cut(mark, timeout)
}

// Kill kills the run's PID 1; the kernel then kills every process of its
// PID namespace.
func (s *forkedSandbox) Kill() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pidfd < 0 {
		return nil // released by Wait
	}
	err := unix.PidfdSendSignal(s.pidfd, unix.SIGKILL, nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil // gone already
	}
	return err
}

// Wait waits for the run to end (its waiter reports the status) and
// releases it.
func (s *forkedSandbox) Wait() sandbox.Exit {
	s.waitOnce.Do(s.wait)
	return s.exit
}

func (s *forkedSandbox) wait() {
	s.seal() // the waiter waits for the run only once its channel is done
	b, _ := io.ReadAll(io.LimitReader(s.statusR, 64))
	s.statusR.Close()
	end := time.Now()
	logs, truncated := s.logs.Finish(logDrainTimeout)
	s.conn.Close()
	s.exit = sandbox.Exit{Code: -1, Signal: "SIGKILL", Duration: end.Sub(s.start), Logs: logs, Truncated: truncated}
	if st, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		ws := unix.WaitStatus(st)
		switch {
		case ws.Exited():
			s.exit.Code, s.exit.Signal = ws.ExitStatus(), ""
		case ws.Signaled():
			s.exit.Signal = unix.SignalName(ws.Signal())
		}
	}
	if s.egress != nil {
		s.egress.Close()
	}
	if s.cgroup != nil {
		// The run's PID 1 is gone, and with it its namespace's
		// processes; the cgroup may take a moment to empty.
		s.exit.Violations = s.cgroup.Violations()
		s.cgroup.Destroy()
	}
	if s.release != nil {
		s.release()
	}
	s.mu.Lock()
	unix.Close(s.pidfd)
	s.pidfd = -1
	s.mu.Unlock()
}

// refusalListener hands out connections that write each refusal of the
// egress proxy to the run's logs as it passes ("runagent egress: 403
// denied; reason=…"): what the supervisor's relay does in a sandbox of
// Start, so that the developer sees why even when the agent's HTTP
// library reports only "403 Forbidden".
type refusalListener struct {
	net.Listener
	logs io.Writer
}

func (l refusalListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &refusalConn{Conn: c, logs: l.logs}, nil
}

type refusalConn struct {
	net.Conn
	mu    sync.Mutex
	logs  io.Writer
	watch egress.RefusalWatch
	said  string
}

// Write passes p to the agent, watching for a refusal.
func (c *refusalConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.watch.Write(p[:n])
	if r := c.watch.Refusal(); r != "" && r != c.said {
		c.said = r
		fmt.Fprintf(c.logs, "runagent egress: %s\n", r)
	}
	return n, err
}

// CloseWrite half-closes the connection, as the proxy does at a tunnel's end.
func (c *refusalConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}

// logLimitOf returns spec's log cap.
func logLimitOf(spec sandbox.Spec) int {
	if spec.LogLimit > 0 {
		return spec.LogLimit
	}
	return DefaultLogLimit
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// Late mounts.
//
// A run forked ahead of its request (the warm pool) gets its own
// directories (sandbox.Mount) at its invoke: AttachMounts sends them, as
// detached mounts made by mountFD (nosuid, nodev, noexec, chowned as
// Fork's), to the run's waiter — the run's parent, which holds the
// capabilities of the run's user namespace and so may mount in its mount
// namespace, under ZygotePolicy — over a channel of its own that the run
// never has. The waiter attaches them as the run's set-up does at a fork
// and answers. It takes one such frame, and only until the host closes
// the channel: at the first write to the run after its hello (the
// invoke, runConn), or as the run ends. The run's landlock ruleset is
// older than these mounts; landlock's walk from a file in one crosses
// its mount point to the rules on /agent and /tmp, so the run reaches
// there what it reaches under /agent and /tmp, and nothing more.

// lateMountsTimeout bounds the waiter's answer when ctx has no deadline.
const lateMountsTimeout = 10 * time.Second

// AttachMounts attaches mounts to the run before its invoke
// (sandbox.Mounter). It may be called once, before the first write to
// Conn after the run's hello; a run whose mounts failed is killed.
func (s *forkedSandbox) AttachMounts(ctx context.Context, mounts []sandbox.Mount) (err error) {
	if err := sandbox.CheckMounts(mounts); err != nil {
		return err
	}
	if len(mounts) == 0 {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	switch {
	case s.sealed:
		return errors.New("the run has had its invoke (or ended): mounts are attached before it")
	case s.mountsUsed:
		return errors.New("the run has its mounts already: they are attached once")
	}
	s.mountsUsed = true
	w := s.waiter
	s.waiter = nil
	defer w.Close() // one frame: the waiter then waits for the run
	defer func() {
		if err != nil {
			s.Kill()
		}
	}()
	guests := make([]string, 0, len(mounts))
	fds := make([]int, 0, len(mounts))
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, m := range mounts {
		fd, err := mountFD(m, HostIDBase+AgentUID, HostIDBase+AgentGID)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		guests = append(guests, m.Guest)
	}
	body, err := json.Marshal(struct {
		Type   string   `json:"type"`
		Mounts []string `json:"mounts"`
	}{"mounts", guests})
	if err != nil {
		return err
	}
	frame := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	frame = append(frame, body...)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(lateMountsTimeout)
	}
	w.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { w.SetDeadline(time.Now()) })
	defer stop()
	n, _, err := w.WriteMsgUnix(frame, unix.UnixRights(fds...), nil)
	if err == nil && n < len(frame) {
		_, err = w.Write(frame[n:])
	}
	if err != nil {
		return fmt.Errorf("sending the run its mounts: %w", err)
	}
	pollReadable(ctx, w, deadline)
	answer, err := readLateMountsAnswer(w)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("attaching the run's mounts: %w", ctx.Err())
		}
		return fmt.Errorf("attaching the run's mounts: %w", err)
	}
	if answer.Type != "mounted" {
		return fmt.Errorf("attaching the run's mounts: %s", answer.Message)
	}
	return nil
}

// pollReadable waits, in poll(2) on this thread rather than in the
// runtime's network poller, until c has something to read, its deadline
// passes or ctx ends: the waiter answers within a fraction of a
// millisecond, which a park and wake-up through the poller would
// lengthen by a good part (on a busy machine, a scheduling round). The
// read that follows finds the answer, or an error, at once.
func pollReadable(ctx context.Context, c *net.UnixConn, deadline time.Time) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		for ctx.Err() == nil {
			left := time.Until(deadline)
			if left <= 0 {
				return
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			n, err := unix.Poll(fds, int(min(left, 20*time.Millisecond)/time.Millisecond)+1)
			if n > 0 || (err != nil && !errors.Is(err, unix.EINTR)) {
				return
			}
		}
	})
}

// lateMountsAnswer is the waiter's answer to a mounts frame.
type lateMountsAnswer struct {
	Type    string `json:"type"` // "mounted" or "error"
	Message string `json:"message"`
}

// readLateMountsAnswer reads the waiter's answer: one length-prefixed
// JSON frame of at most 4 KiB.
func readLateMountsAnswer(r io.Reader) (lateMountsAnswer, error) {
	var head [4]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return lateMountsAnswer{}, errors.New("the run's waiter ended without an answer")
		}
		return lateMountsAnswer{}, err
	}
	n := binary.BigEndian.Uint32(head[:])
	if n > 4096 {
		return lateMountsAnswer{}, fmt.Errorf("the waiter's answer of %d bytes is too long", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return lateMountsAnswer{}, fmt.Errorf("the waiter's answer is cut short: %w", err)
	}
	return parseLateMountsAnswer(body)
}

// parseLateMountsAnswer decodes the waiter's answer (untrusted: the
// waiter runs under the template, where the agent's import ran).
func parseLateMountsAnswer(body []byte) (lateMountsAnswer, error) {
	var a lateMountsAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return a, fmt.Errorf("the waiter's answer is not JSON: %w", err)
	}
	switch a.Type {
	case "mounted":
	case "error":
		if a.Message == "" {
			a.Message = "the waiter gave no reason"
		}
		a.Message = tail(a.Message, 1000)
	default:
		return a, fmt.Errorf("the waiter answered %q, not mounted or error", tail(a.Type, 64))
	}
	return a, nil
}

// seal closes the waiter's channel, unless AttachMounts did: no mounts
// come after it.
func (s *forkedSandbox) seal() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.sealed {
		return
	}
	s.sealed = true
	if s.waiter != nil {
		s.waiter.Close()
		s.waiter = nil
	}
}

// runConn is a run's control channel as the host uses it: its first
// write after the run has spoken (the hello; so the invoke) seals the
// waiter's channel first.
type runConn struct {
	*net.UnixConn
	s     *forkedSandbox
	spoke atomic.Bool
}

func (c *runConn) Read(p []byte) (int, error) {
	n, err := c.UnixConn.Read(p)
	if n > 0 {
		c.spoke.Store(true)
	}
	return n, err
}

func (c *runConn) Write(p []byte) (int, error) {
	if c.spoke.Load() {
		c.s.seal()
	}
	return c.UnixConn.Write(p)
}
