//go:build linux

package linux

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	seccomp "github.com/elastic/go-seccomp-bpf"
	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/logtail"
	"github.com/runagent/runagent/internal/sandbox/procgroup"
	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// DefaultLogLimit is the log cap used when Spec.LogLimit is not set.
const DefaultLogLimit = 64 << 10

// logDrainTimeout bounds how long Wait waits for the log pipe to close.
const logDrainTimeout = 2 * time.Second

// systemDirs are bound read-only at the same path (or recreated as the
// host's symlinks).
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32"}

// etcFiles are the host's /etc entries a Python needs.
var etcFiles = []string{"/etc/ld.so.cache", "/etc/localtime", "/etc/ssl/certs"}

// guestPath is the guest's PATH.
const guestPath = "/usr/local/bin:/usr/bin:/bin"

// Start starts a sandbox for spec. The caller must call Wait on it.
//
// It runs the steps below in order, each named after what it does. The
// supervisor starts first, so that the Go runtime's start in the child
// overlaps the steps after it (detached mounts, scratch area, cgroup); it
// waits for its configuration, then for the go-ahead, which comes only
// once it is in its cgroup. If a step fails, Start undoes what the
// earlier ones made, in reverse (starter.undo).
func (b *Backend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	s, err := b.start(ctx, spec, false)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// start runs Start's steps; with template, the sandbox's Python is a
// fork server (StartTemplate).
func (b *Backend) start(ctx context.Context, spec sandbox.Spec, template bool) (_ *linuxSandbox, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st, err := b.checkSpec(spec, template)
	if err != nil {
		return nil, err
	}
	defer func() { st.undo.unwind(err != nil) }()
	for _, step := range []func() error{
		st.makeStateDir,
		st.spawnSupervisor,
		st.stageShim,
		st.passAgentTree,
		st.passShim,
		st.passEnv,
		st.passOut,
		st.passMounts,
		st.prepareScratch,
		st.makeCgroup,
		st.listenEgress,
		st.buildExecConfig,
		st.sendConfig,
		st.addToCgroup,
		st.goAhead,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return st.started(), nil
}

// starter is one Start under way: the spec and what checkSpec derived
// from it, what the steps have made so far, and how to undo it.
type starter struct {
	b    *Backend
	spec sandbox.Spec

	// Derived from the spec before anything is made.
	id       string
	python   string
	root     bool // the server is root: host objects go as detached mounts
	egress   bool
	template bool // a fork server's (StartTemplate)
	limits   sandbox.Limits
	logLimit int
	uid, gid int      // the agent's ids inside
	env      []string // the guest's environment

	sp    *spawned                 // the supervisor, waiting for its configuration
	stage int                      // the staging tmpfs (stageShim), -1 if none
	cfg   supervisor.SandboxConfig // what the supervisor is told
	// pass are the detached mounts sent with cfg, in the order its
	// descriptor fields number them (from 1).
	pass []int
	sb   *linuxSandbox // what Start returns, filled in by the steps

	undo undoStack
}

// undoStack holds the clean-ups of a start (Start, spawn) in the order
// its steps pushed them. If the start fails, unwind runs all of them in
// reverse; if it succeeds, only those pushed with pushClose, which close
// the parent's copies of what the child now holds. What a sandbox keeps
// until its end is in linuxSandbox (starter.keep).
type undoStack struct {
	entries []undoEntry
}

type undoEntry struct {
	f      func()
	always bool // on success too
}

// push adds f, run if the start fails.
func (u *undoStack) push(f func()) { u.entries = append(u.entries, undoEntry{f: f}) }

// pushClose adds closing c, done when the start ends either way: c is
// the parent's copy of a descriptor handed to the child.
func (u *undoStack) pushClose(c io.Closer) {
	u.entries = append(u.entries, undoEntry{f: func() { c.Close() }, always: true})
}

// unwind runs the entries in reverse: all of them if failed, else those
// of pushClose.
func (u *undoStack) unwind(failed bool) {
	for i := len(u.entries) - 1; i >= 0; i-- {
		if failed || u.entries[i].always {
			u.entries[i].f()
		}
	}
}

// keep hands release to the sandbox, which runs it when it ends (Wait);
// Start runs it if a later step fails.
func (st *starter) keep(release func() error) {
	st.sb.release = append(st.sb.release, release)
	st.undo.push(func() { release() })
}

// checkSpec checks spec, before anything is made, and derives what the
// steps need from it.
func (b *Backend) checkSpec(spec sandbox.Spec, template bool) (*starter, error) {
	if spec.AgentDir == "" || spec.ShimPath == "" {
		return nil, errors.New("sandbox spec needs an agent directory and a shim path")
	}
	python, err := checkPython(spec.Python)
	if err != nil {
		return nil, err
	}
	root := os.Geteuid() == 0
	if root {
		if err := checkReadable(spec.AgentDir, true); err != nil {
			return nil, err
		}
		if err := checkReadable(spec.ShimPath, false); err != nil {
			return nil, err
		}
	}
	for _, d := range []struct{ path, what string }{{spec.EnvDir, "environment"}, {spec.OutDir, "output"}} {
		if d.path == "" {
			continue
		}
		if fi, err := os.Stat(d.path); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("the %s directory %s is not a directory", d.what, d.path)
		}
	}
	if root && spec.EnvDir != "" {
		if err := checkReadable(spec.EnvDir, true); err != nil {
			return nil, err
		}
	}
	if err := sandbox.CheckMounts(spec.Mounts); err != nil {
		return nil, err
	}
	if template && len(spec.Mounts) > 0 {
		return nil, errors.New("a fork server's spec has no mounts: its runs get theirs from Fork")
	}
	egress := false
	switch spec.Network.Mode {
	case "", core.NetworkNone:
	case core.NetworkEgress:
		if b.cfg.Egress == nil {
			return nil, errors.New("network mode egress needs an egress proxy, and this backend has none")
		}
		egress = true
	default:
		return nil, fmt.Errorf("unknown network mode %q", spec.Network.Mode)
	}
	limits := spec.Limits.WithDefaults()
	if template && limits.NoProcessCreation {
		return nil, &sandbox.NotForkableError{Reason: "its no-process-creation filter would stop the runs' set-up"}
	}
	if limits.NoProcessCreation && !b.cfg.ShimFiltersProcesses {
		return nil, errors.New("no-process-creation mode needs a shim that installs the process filter, and this one does not")
	}
	logLimit := spec.LogLimit
	if logLimit <= 0 {
		logLimit = DefaultLogLimit
	}
	id := spec.ID
	if id == "" {
		id = randomID()
	}
	if strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return nil, fmt.Errorf("bad sandbox id %q", id)
	}

	st := &starter{
		b: b, spec: spec,
		id: id, python: python, root: root, egress: egress, limits: limits, logLimit: logLimit, template: template,
		stage: -1,
		sb:    &linuxSandbox{},
	}
	if root {
		st.uid, st.gid = AgentUID, AgentGID
	}
	st.env = environ(spec.Env, egress)
	if spec.OutDir != "" {
		st.env = dedupEnv(append(st.env, sandbox.OutDirEnv+"="+supervisor.OutMount))
	}
	st.cfg = supervisor.SandboxConfig{
		Hostname:     "sandbox",
		Python:       python,
		ShimName:     filepath.Base(spec.ShimPath),
		SystemDirs:   systemDirs,
		EtcFiles:     etcFiles,
		ScratchBytes: min(limits.DiskBytes, limits.MemoryBytes),
	}
	return st, nil
}

// makeStateDir creates the sandbox's directory under Config.StateDir,
// removed when it ends.
func (st *starter) makeStateDir() error {
	if err := os.MkdirAll(st.b.cfg.StateDir, 0o711); err != nil {
		return fmt.Errorf("creating the state directory: %w", err)
	}
	state := filepath.Join(st.b.cfg.StateDir, st.id)
	if err := os.Mkdir(state, 0o700); err != nil {
		return fmt.Errorf("creating the sandbox state directory: %w", err)
	}
	st.undo.push(func() { os.RemoveAll(state) })
	st.sb.state = state
	return nil
}

// spawnSupervisor starts the sandbox's supervisor, or takes one started
// ahead of demand (Config.Prestart). It waits for its configuration
// (sendConfig), then for the go-ahead (goAhead); the parent's ends of
// both are closed when Start ends, and the end-of-file of the sync pipe
// tells a supervisor that Start gave up on to exit.
func (st *starter) spawnSupervisor() error {
	sp, err := st.b.takeSpawned(st.env, st.root)
	if err != nil {
		return err
	}
	st.sp = sp
	st.undo.push(sp.abort)
	st.undo.pushClose(sp.cfgHost)
	st.undo.pushClose(sp.syncW)
	return nil
}

// The objects to bind go, when the server is root, as detached mounts
// (open_tree) sent with the configuration (SCM_RIGHTS): the child may not
// bind a path of the host's mount namespace, nor search the host
// directories leading to it. Unprivileged, the configuration names their
// host paths instead (the ...Path fields), which the child opens itself.

// passFD queues the detached mount fd to go with the configuration and
// returns its number there; the parent's copy is closed when Start ends.
func (st *starter) passFD(fd int, name string) int {
	st.undo.pushClose(os.NewFile(uintptr(fd), name))
	st.pass = append(st.pass, fd)
	return len(st.pass)
}

// passTree passes a detached mount of the host's path (detachedMount).
func (st *starter) passTree(path string, readOnly bool, idmap int) (int, error) {
	fd, err := detachedMount(path, readOnly, idmap)
	if err != nil {
		return 0, err
	}
	return st.passFD(fd, path), nil
}

// passStaged passes a read-only detached mount of name on the staging
// tmpfs.
func (st *starter) passStaged(name string) (int, error) {
	fd, err := detachedMountAt(st.stage, name, true, 0)
	if err != nil {
		return 0, err
	}
	return st.passFD(fd, name), nil
}

// stageShim makes, when the server is root, the sandbox's staging tmpfs
// and copies the shim into it. The shim and the egress socket are bound
// from that tmpfs, which no host path leads to, so that the guest's
// mountinfo names them "/shim-….py" and "/egress.sock" on a tmpfs
// "runagent", not by their host paths. It stays open (the egress
// socket's path goes through it) until the sandbox ends.
func (st *starter) stageShim() error {
	if !st.root {
		return nil
	}
	stage, err := stagingFS()
	if err != nil {
		return err
	}
	st.stage = stage
	st.keep(func() error { return unix.Close(stage) })
	if err := copyInto(stage, st.spec.ShimPath); err != nil {
		return fmt.Errorf("staging the shim: %w", err)
	}
	return nil
}

// passAgentTree passes the agent's code, read-only. It is idmapped where
// the file system allows, so that its files show as the agent's, which
// may then change them (in the overlay) as it may those it creates.
func (st *starter) passAgentTree() (err error) {
	if !st.root {
		st.cfg.AgentPath = st.spec.AgentDir
		return nil
	}
	if st.cfg.AgentFD, err = st.passTree(st.spec.AgentDir, true, st.b.codeIDMap(st.spec.AgentDir)); err != nil {
		st.cfg.AgentFD, err = st.passTree(st.spec.AgentDir, true, 0)
	}
	if err != nil {
		return fmt.Errorf("opening the agent directory: %w", err)
	}
	return nil
}

// passShim passes the staged shim.
func (st *starter) passShim() (err error) {
	if !st.root {
		st.cfg.ShimPath = st.spec.ShimPath
		return nil
	}
	if st.cfg.ShimFD, err = st.passStaged(filepath.Base(st.spec.ShimPath)); err != nil {
		return fmt.Errorf("opening the shim: %w", err)
	}
	return nil
}

// passEnv passes the Spec's environment directory, read-only, if any.
func (st *starter) passEnv() (err error) {
	if st.spec.EnvDir == "" {
		return nil
	}
	if !st.root {
		st.cfg.EnvPath = st.spec.EnvDir
		return nil
	}
	if st.cfg.EnvFD, err = st.passTree(st.spec.EnvDir, true, 0); err != nil {
		return fmt.Errorf("opening the environment directory: %w", err)
	}
	return nil
}

// passOut passes the Spec's output directory, read-write, if any. The
// sandbox's ids are foreign to the host: when the server is root, the
// directory is first handed to the agent's host ids, so it may write it.
func (st *starter) passOut() (err error) {
	if st.spec.OutDir == "" {
		return nil
	}
	if !st.root {
		st.cfg.OutPath = st.spec.OutDir
		return nil
	}
	if err := os.Chown(st.spec.OutDir, HostIDBase+st.uid, HostIDBase+st.gid); err != nil {
		return fmt.Errorf("handing the output directory to the sandbox's agent: %w", err)
	}
	if st.cfg.OutFD, err = st.passTree(st.spec.OutDir, false, 0); err != nil {
		return fmt.Errorf("opening the output directory: %w", err)
	}
	return nil
}

// passMounts passes the Spec's mounts, read-write, nosuid, nodev and
// noexec. When the server is root, each host directory is first handed
// to the agent's host ids, as the output directory is.
func (st *starter) passMounts() error {
	for _, m := range st.spec.Mounts {
		if !st.root {
			st.cfg.Mounts = append(st.cfg.Mounts, supervisor.MountConfig{Path: m.Host, Guest: m.Guest})
			continue
		}
		fd, err := mountFD(m, HostIDBase+st.uid, HostIDBase+st.gid)
		if err != nil {
			return err
		}
		st.cfg.Mounts = append(st.cfg.Mounts, supervisor.MountConfig{FD: st.passFD(fd, m.Host), Guest: m.Guest})
	}
	return nil
}

// mountFD chowns m's host directory to uid:gid and returns a detached
// mount of it, read-write, nosuid, nodev and noexec. Only the directory's
// own mount is taken (no AT_RECURSIVE): nothing mounted below it.
func mountFD(m sandbox.Mount, uid, gid int) (int, error) {
	if err := os.Lchown(m.Host, uid, gid); err != nil {
		return -1, fmt.Errorf("handing the directory of mount %s to the sandbox's agent: %w", m.Guest, err)
	}
	fd, err := detachedMountAttr(unix.AT_FDCWD, m.Host, unix.AT_SYMLINK_NOFOLLOW, unix.MOUNT_ATTR_NOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening the directory of mount %s: %w", m.Guest, err)
	}
	return fd, nil
}

// prepareScratch gets the scratch area from Config.Scratch, owned by the
// agent's host ids, and passes it read-write; the sandbox releases it
// when it ends. Without a ScratchManager the supervisor mounts a tmpfs
// of cfg.ScratchBytes instead.
func (st *starter) prepareScratch() (err error) {
	if st.b.cfg.Scratch == nil {
		return nil
	}
	hostUID, hostGID := os.Geteuid(), os.Getegid()
	if st.root {
		hostUID, hostGID = HostIDBase+st.uid, HostIDBase+st.gid
	}
	dir, release, err := st.b.cfg.Scratch.Prepare(st.id, st.limits.DiskBytes, hostUID, hostGID)
	if err != nil {
		return fmt.Errorf("preparing the scratch area: %w", err)
	}
	st.keep(release)
	if !st.root {
		st.cfg.ScratchPath = dir
		return nil
	}
	if st.cfg.ScratchFD, err = st.passTree(dir, false, 0); err != nil {
		return fmt.Errorf("opening the scratch area: %w", err)
	}
	return nil
}

// makeCgroup sets the sandbox's limits on the cgroup a prestarted
// supervisor already waits in (spawned.abort removes it if Start fails),
// or else makes a new cgroup, which addToCgroup moves the supervisor
// into. Without Config.Cgroups there is none.
func (st *starter) makeCgroup() error {
	if cg := st.sp.cg; cg != nil {
		if err := cg.SetLimits(cgroupLimits(st.limits, st.template)); err != nil {
			return fmt.Errorf("setting the sandbox's cgroup limits: %w", err)
		}
		st.sb.cgroup = cg
		return nil
	}
	if st.b.cfg.Cgroups == nil {
		return nil
	}
	cg, err := st.b.cfg.Cgroups.New(st.id, cgroupLimits(st.limits, st.template))
	if err != nil {
		return fmt.Errorf("creating the cgroup: %w", err)
	}
	st.sb.cgroup = cg
	st.undo.push(func() { cg.Destroy() })
	return nil
}

// listenEgress starts the egress proxy's socket, in egress mode, until
// the sandbox ends: in the state directory, or when the server is root
// on the staging tmpfs, passed as a detached mount of it.
func (st *starter) listenEgress() (err error) {
	if !st.egress {
		return nil
	}
	sock := filepath.Join(st.sb.state, "egress.sock")
	if st.root {
		sock = fmt.Sprintf("/proc/self/fd/%d/egress.sock", st.stage)
	}
	closer, err := st.b.cfg.Egress.Listen(sock, st.id, st.spec.AgentID, st.spec.Network)
	if err != nil {
		return fmt.Errorf("starting the egress proxy: %w", err)
	}
	st.keep(closer.Close)
	// The sandbox's root is a foreign uid; the socket is reachable
	// only through the bind mount.
	if err := os.Chmod(sock, 0o666); err != nil {
		return fmt.Errorf("egress socket: %w", err)
	}
	if !st.root {
		st.cfg.EgressPath = sock
		return nil
	}
	if st.cfg.EgressFD, err = st.passStaged("egress.sock"); err != nil {
		return fmt.Errorf("opening the egress socket: %w", err)
	}
	return nil
}

// buildExecConfig completes the configuration with what the supervisor
// applies to Python (ExecConfig): its command line and environment, ids,
// rlimits, landlock rules and seccomp filters; and notes the guest's
// directories.
func (st *starter) buildExecConfig() error {
	seccompProg, shimProg, err := filters(st.limits.NoProcessCreation)
	if err != nil {
		return err
	}
	shimInside := filepath.Join(supervisor.RunDir, st.cfg.ShimName)
	readOnly := append(append([]string{}, systemDirs...), "/etc", supervisor.RunDir, "/proc", "/dev")
	readWrite := []string{supervisor.ScratchDir, supervisor.AgentMount}
	st.sb.dirs = sandbox.GuestDirs{Agent: supervisor.AgentMount}
	if st.spec.EnvDir != "" {
		readOnly = append(readOnly, supervisor.EnvMount)
		st.sb.dirs.Env = supervisor.EnvMount
	}
	if st.spec.OutDir != "" {
		readWrite = append(readWrite, supervisor.OutMount)
		st.sb.dirs.Out = supervisor.OutMount
	}
	for _, m := range st.spec.Mounts {
		readWrite = append(readWrite, m.Guest)
	}
	st.cfg.Env = st.env
	st.cfg.Exec = supervisor.ExecConfig{
		Python:      st.python,
		Args:        []string{st.python, "-I", "-B", "-u", shimInside},
		Env:         st.env,
		Dir:         supervisor.AgentMount,
		UID:         st.uid,
		GID:         st.gid,
		NoFile:      st.limits.OpenFiles,
		FSize:       st.limits.FileSize,
		NProc:       st.limits.Processes,
		ReadOnly:    readOnly,
		ReadWrite:   readWrite,
		Devices:     []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"},
		Seccomp:     seccompProg,
		ShimSeccomp: shimProg,
	}
	if st.template {
		return st.zygote(seccompProg)
	}
	return nil
}

// zygote makes the sandbox's Python a fork server: the template runs
// under ZygotePolicy, with an RLIMIT_NPROC its runs' processes fit in,
// and each run installs runPolicy itself (supervisor.ZygoteConfig).
func (st *starter) zygote(runPolicy []supervisor.BPF) error {
	f, err := assembledFilters()
	if err != nil {
		return err
	}
	st.cfg.Exec.Seccomp = f[2]
	st.cfg.Exec.NProc = templateNProc
	st.cfg.Exec.Zygote = &supervisor.ZygoteConfig{
		RunSeccomp: runPolicy,
		// RLIMIT_NPROC is only a backstop in a run: its user namespace
		// also holds its waiter, which the run's cgroup does not count,
		// and the kernel checks the rlimit first, counting forks in
		// flight, so a limit near pids.max would stop a fork bomb (all
		// its processes forking at once) before pids.max does, and
		// unreported. pids.max (Limits.Processes) is the limit.
		RunNProc: 2*st.limits.Processes + 2,
		// A run's writable layers are a tmpfs, counted against its
		// memory: half of it at most, so that filling the disk ends in
		// ENOSPC, not in an OOM kill.
		ScratchBytes: min(st.limits.DiskBytes, st.limits.MemoryBytes/2),
		Hostname:     st.cfg.Hostname,
		Egress:       st.egress,
	}
	return nil
}

// sendConfig sends the supervisor its configuration, as JSON, with the
// detached mounts attached.
func (st *starter) sendConfig() error {
	data, err := json.Marshal(st.cfg)
	if err != nil {
		return err
	}
	if len(data) > 60<<10 {
		return errors.New("sandbox configuration too large")
	}
	if err := sendWithFDs(st.sp.cfgHost, data, st.pass); err != nil {
		return fmt.Errorf("sending the sandbox configuration: %w", err)
	}
	return nil
}

// addToCgroup moves the supervisor into the cgroup makeCgroup made for
// it, before its go-ahead, so that nothing of the sandbox runs outside.
func (st *starter) addToCgroup() error {
	if st.sb.cgroup == nil || st.sp.cg != nil {
		return nil
	}
	if err := st.sb.cgroup.AddPID(st.sp.pid); err != nil {
		return fmt.Errorf("adding the sandbox to its cgroup: %w", err)
	}
	return nil
}

// goAhead lets the supervisor go on (one byte on the sync pipe).
func (st *starter) goAhead() error {
	if _, err := st.sp.syncW.Write([]byte{0}); err != nil {
		return fmt.Errorf("releasing the sandbox: %w", err)
	}
	return nil
}

// started completes the sandbox once the supervisor is on its way.
func (st *starter) started() *linuxSandbox {
	s := st.sb
	s.cmd = st.sp.cmd
	s.pid = st.sp.pid
	s.leader = procgroup.New(st.sp.cmd)
	s.conn = st.sp.conn
	s.start = st.sp.start
	s.logs = logtail.Collect(st.sp.logR, st.logLimit)
	return s
}

// spawned is a sandbox supervisor started and waiting for its
// configuration.
type spawned struct {
	cmd     *exec.Cmd
	pid     int
	start   time.Time
	conn    net.Conn // the host's end of the control channel
	cfgHost *os.File // the host's end of the configuration socket
	syncW   *os.File
	logR    *os.File
	// cg is the cgroup the supervisor already waits in (prestarted with
	// Config.Cgroups), nil if Start must make and join one.
	cg Cgroup
}

// abort kills and reaps the supervisor, closes the host's ends and
// removes its cgroup, if it has one.
func (sp *spawned) abort() {
	unix.Kill(sp.pid, unix.SIGKILL)
	sp.cmd.Wait()
	sp.conn.Close()
	sp.logR.Close()
	if sp.cg != nil {
		sp.cg.Destroy()
	}
}

// takeSpawned returns a supervisor started ahead of demand
// (Config.Prestart), starting another in its place, or else starts one
// with environment env.
func (b *Backend) takeSpawned(env []string, root bool) (*spawned, error) {
	if b.pool == nil {
		return b.spawn(env, root)
	}
	go b.refill(root)
	select {
	case sp := <-b.pool:
		sp.start = time.Now()
		return sp, nil
	default:
		return b.spawn(env, root)
	}
}

// refillDelay is how long a refill waits after the take that asked for
// it: the sandbox just started is starting Python, and a supervisor
// started beside it (a Go runtime, fresh namespaces, a cgroup move) took
// ~2 ms from its cold start on 2 cores (BenchmarkLinuxStartInvokeServer:
// 15.5 -> 13 ms).
const refillDelay = 25 * time.Millisecond

// refill starts one supervisor for the pool, unless it is full or closed.
func (b *Backend) refill(root bool) {
	if b.poolIsClosed() || len(b.pool) == cap(b.pool) {
		return
	}
	time.Sleep(refillDelay)
	if b.poolIsClosed() {
		return
	}
	sp, err := b.spawn(append(environ(nil, false), b.cfg.PrestartEnv...), root)
	if err != nil {
		return
	}
	if b.cfg.Cgroups != nil {
		if err := sp.joinCgroup(b.cfg.Cgroups); err != nil {
			sp.discard()
			return
		}
	}
	b.poolMu.Lock()
	defer b.poolMu.Unlock()
	if !b.poolClosed {
		select {
		case b.pool <- sp:
			return
		default:
		}
	}
	go sp.discard()
}

// poolIsClosed reports whether Close has been called.
func (b *Backend) poolIsClosed() bool {
	b.poolMu.Lock()
	defer b.poolMu.Unlock()
	return b.poolClosed
}

// randomID returns 16 random hex digits: a sandbox id when the spec has
// none, and the name of a cgroup made ahead.
func randomID() string {
	var r [8]byte
	rand.Read(r[:])
	return hex.EncodeToString(r[:])
}

// joinCgroup moves the supervisor, still waiting for its configuration,
// into a new cgroup with the default limits; Start sets its sandbox's.
func (sp *spawned) joinCgroup(m CgroupManager) error {
	cg, err := m.New("ahead-"+randomID(), sandbox.Limits{})
	if err != nil {
		return err
	}
	if err := cg.AddPID(sp.pid); err != nil {
		cg.Destroy()
		return err
	}
	sp.cg = cg
	return nil
}

// discard ends a supervisor that never got a configuration.
func (sp *spawned) discard() {
	sp.cfgHost.Close()
	sp.syncW.Close()
	sp.abort()
}

// Close ends the supervisors started ahead of demand and releases the
// user namespaces of idmapped code. Sandboxes already started are not
// affected; Start must not be called afterwards.
func (b *Backend) Close() error {
	b.closeIDMaps()
	if b.pool == nil {
		return nil
	}
	b.poolMu.Lock()
	b.poolClosed = true
	b.poolMu.Unlock()
	for {
		select {
		case sp := <-b.pool:
			sp.discard()
		default:
			return nil
		}
	}
}

// spawn starts a sandbox supervisor in new namespaces with environment
// env. It waits for its configuration on supervisor.ConfigFD, then for
// the go-ahead on supervisor.SyncFD.
func (b *Backend) spawn(env []string, root bool) (_ *spawned, err error) {
	var undo undoStack
	defer func() { undo.unwind(err != nil) }()
	exeFD, err := unix.Open(b.cfg.Exe, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the runagent executable: %w", err)
	}
	exe := os.NewFile(uintptr(exeFD), b.cfg.Exe)
	undo.pushClose(exe)

	// Control channel.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the control channel: %w", err)
	}
	hostEnd := os.NewFile(uintptr(fds[0]), "guest-control")
	guestEnd := os.NewFile(uintptr(fds[1]), "guest-control-child")
	undo.pushClose(guestEnd)
	conn, err := net.FileConn(hostEnd)
	hostEnd.Close()
	if err != nil {
		return nil, fmt.Errorf("creating the control channel: %w", err)
	}
	undo.push(func() { conn.Close() })

	// Configuration socket: JSON and the descriptors to bind.
	if fds, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("creating the configuration channel: %w", err)
	}
	cfgHost := os.NewFile(uintptr(fds[0]), "sandbox-config")
	undo.push(func() { cfgHost.Close() })
	cfgGuest := os.NewFile(uintptr(fds[1]), "sandbox-config-child")
	undo.pushClose(cfgGuest)

	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	undo.pushClose(syncR)
	undo.push(func() { syncW.Close() })

	logR, logW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the log pipe: %w", err)
	}
	undo.pushClose(logW)
	undo.push(func() { logR.Close() })

	// Exec through the inherited descriptor (supervisor.ExePath): the
	// sandbox's root is a foreign uid that may not search the directories
	// leading to Exe.
	cmd := &exec.Cmd{
		Path: supervisor.ExePath(),
		Args: append([]string{"runagent"}, supervisor.SandboxArgs()...),
	}
	cmd.Dir = "/"
	cmd.Env = env // the supervisor's own; Python's is in the configuration
	cmd.Stdout = logW
	cmd.Stderr = logW
	cmd.ExtraFiles = supervisor.Files{Control: guestEnd, Config: cfgGuest, Sync: syncR, Exe: exe}.ExtraFiles()
	cmd.SysProcAttr = sysProcAttr(root)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the sandbox supervisor: %w", err)
	}
	return &spawned{cmd: cmd, pid: cmd.Process.Pid, start: start, conn: conn, cfgHost: cfgHost, syncW: syncW, logR: logR}, nil
}

// sendWithFDs writes data with fds attached to its first byte, then
// shuts the socket down for writing (EOF ends the configuration).
func sendWithFDs(sock *os.File, data []byte, fds []int) error {
	raw, err := sock.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = raw.Control(func(fd uintptr) {
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		for len(data) > 0 || oob != nil {
			n, err := unix.SendmsgN(int(fd), data, oob, nil, 0)
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if err != nil {
				serr = err
				return
			}
			data, oob = data[n:], nil
		}
		serr = unix.Shutdown(int(fd), unix.SHUT_WR)
	})
	if err != nil {
		return err
	}
	return serr
}

// assembledFilters are the raw programs of Policy,
// NoProcessCreationPolicy and ZygotePolicy, assembled once: they depend on nothing of a
// sandbox.
var assembledFilters = sync.OnceValues(func() ([3][]supervisor.BPF, error) {
	var out [3][]supervisor.BPF
	for i, p := range []func() seccomp.Policy{Policy, NoProcessCreationPolicy, ZygotePolicy} {
		prog, err := Program(p())
		if err != nil {
			return out, err
		}
		if out[i], err = raw(prog); err != nil {
			return out, err
		}
	}
	return out, nil
})

// filters returns the sandbox's seccomp filter and, if noProc, the
// shim's process-creation filter. The slices are shared: do not modify.
func filters(noProc bool) (sandbox, shim []supervisor.BPF, err error) {
	f, err := assembledFilters()
	if err != nil {
		return nil, nil, err
	}
	if noProc {
		return f[0], f[1], nil
	}
	return f[0], nil, nil
}

// stagingFS returns a new tmpfs, detached (fsopen, fsmount): no path of
// the host's leads to it, only the returned descriptor.
func stagingFS() (int, error) {
	fs, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("staging tmpfs: fsopen: %w", err)
	}
	defer unix.Close(fs)
	for _, o := range [][2]string{{"source", "runagent"}, {"size", "4m"}, {"mode", "0755"}} {
		if err := unix.FsconfigSetString(fs, o[0], o[1]); err != nil {
			return 0, fmt.Errorf("staging tmpfs: %s: %w", o[0], err)
		}
	}
	if err := unix.FsconfigCreate(fs); err != nil {
		return 0, fmt.Errorf("staging tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fs, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return 0, fmt.Errorf("staging tmpfs: fsmount: %w", err)
	}
	return mnt, nil
}

// copyInto copies the file at path into the directory dirfd, under its
// base name, readable by all.
func copyInto(dirfd int, path string) error {
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	fd, err := unix.Openat(dirfd, filepath.Base(path), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(fd), path)
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// detachedMount returns a detached bind mount of path (open_tree), nosuid,
// nodev, read-only if readOnly, and idmapped with the user namespace
// idmap if it is not 0.
func detachedMount(path string, readOnly bool, idmap int) (int, error) {
	return detachedMountAt(unix.AT_FDCWD, path, readOnly, idmap)
}

// detachedMountAt is detachedMount of path relative to dirfd.
func detachedMountAt(dirfd int, path string, readOnly bool, idmap int) (int, error) {
	var extra uint64
	if readOnly {
		extra = unix.MOUNT_ATTR_RDONLY
	}
	return detachedMountAttr(dirfd, path, 0, extra, idmap)
}

// detachedMountAttr is detachedMountAt with the attributes extra set
// besides nosuid and nodev, and open_tree's flags besides CLONE and
// CLOEXEC (AT_SYMLINK_NOFOLLOW: a path that became a link is refused).
func detachedMountAttr(dirfd int, path string, flags uint, extra uint64, idmap int) (int, error) {
	fd, err := unix.OpenTree(dirfd, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|flags)
	if err != nil {
		return 0, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | extra}
	if idmap != 0 {
		attr.Attr_set |= unix.MOUNT_ATTR_IDMAP
		attr.Userns_fd = uint64(idmap)
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return 0, fmt.Errorf("mount_setattr %s: %w", path, err)
	}
	return fd, nil
}

// sysProcAttr returns the namespaces and id mappings of the supervisor.
func sysProcAttr(root bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID |
			syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		Setpgid: true,
		// Become root of the new namespace: the server's own uid is not
		// mapped into it (when root), so without this the child would be
		// the overflow uid, with no capabilities there.
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: !root},
	}
	if root {
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: HostIDBase, Size: IDRange}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: HostIDBase, Size: IDRange}}
		a.GidMappingsEnableSetgroups = true
	} else {
		a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	return a
}

// CheckPython fails unless this backend's sandboxes can run the
// interpreter at path: it must lie in a system directory they bind.
func (b *Backend) CheckPython(path string) error {
	_, err := checkPython(path)
	return err
}

// checkPython resolves the interpreter and checks it lies in a system
// directory, so that the same path exists inside the sandbox.
func checkPython(python string) (string, error) {
	if python == "" {
		python = "/usr/bin/python3"
	}
	if !filepath.IsAbs(python) {
		p, err := exec.LookPath(python)
		if err != nil {
			return "", fmt.Errorf("finding the Python interpreter: %w", err)
		}
		python = p
	}
	real, err := filepath.EvalSymlinks(python)
	if err != nil {
		return "", fmt.Errorf("finding the Python interpreter: %w", err)
	}
	for _, d := range systemDirs {
		dr, err := filepath.EvalSymlinks(d)
		if err != nil {
			continue
		}
		if strings.HasPrefix(real, dr+"/") {
			return python, nil
		}
	}
	return "", fmt.Errorf("the Python interpreter %s (%s) is not under a system directory bound into the sandbox (%s)",
		python, real, strings.Join(systemDirs, ", "))
}

// checkReadable fails unless other users may read path (and search it,
// for a directory): the sandbox's ids are foreign to the host.
func checkReadable(path string, dir bool) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() != dir {
		return fmt.Errorf("%s: not a %s", path, map[bool]string{true: "directory", false: "file"}[dir])
	}
	want := os.FileMode(0o004)
	if dir {
		want = 0o005
	}
	if fi.Mode().Perm()&want != want {
		return fmt.Errorf("%s is not readable by other users (mode %v); the sandbox runs as an unprivileged host uid", path, fi.Mode().Perm())
	}
	return nil
}

// environ returns the guest's environment: a fixed base, the proxy
// variables in egress mode, then extra, whose entries win.
func environ(extra []string, egress bool) []string {
	env := []string{
		"PATH=" + guestPath,
		"HOME=" + supervisor.ScratchDir,
		"TMPDIR=" + supervisor.ScratchDir,
		"LANG=C.UTF-8",
		"PYTHONDONTWRITEBYTECODE=1",
		"PYTHONUNBUFFERED=1",
	}
	if egress {
		for _, k := range []string{"HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"} {
			env = append(env, k+"="+supervisor.ProxyURL)
		}
		env = append(env, "NO_PROXY=", "no_proxy=")
	}
	return dedupEnv(append(env, extra...))
}

// dedupEnv keeps the last value of each key (execve does not).
func dedupEnv(env []string) []string {
	idx := map[string]int{}
	var out []string
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := idx[k]; ok {
			out[i] = kv
			continue
		}
		idx[k] = len(out)
		out = append(out, kv)
	}
	return out
}

// linuxSandbox is one started sandbox.
type linuxSandbox struct {
	cmd     *exec.Cmd
	pid     int
	conn    net.Conn
	start   time.Time
	state   string
	dirs    sandbox.GuestDirs
	cgroup  Cgroup
	release []func() error

	logs *logtail.Collector

	leader *procgroup.Leader

	waitOnce sync.Once
	exit     sandbox.Exit
}

func (s *linuxSandbox) Conn() io.ReadWriteCloser { return s.conn }

// GuestDirs implements sandbox.GuestPather: /agent, and /env and /out when
// the Spec has them.
func (s *linuxSandbox) GuestDirs() sandbox.GuestDirs { return s.dirs }

// CutLogs implements sandbox.LogCutter.
func (s *linuxSandbox) CutLogs(mark string, timeout time.Duration) (string, bool, bool) {
	return s.logs.Cut(mark, timeout)
}

// Kill kills the supervisor, PID 1 of the sandbox: the kernel then kills
// every process of its PID namespace.
func (s *linuxSandbox) Kill() error { return s.leader.Kill(false) }

// Wait waits for the sandbox to end and releases everything it held.
func (s *linuxSandbox) Wait() sandbox.Exit {
	s.waitOnce.Do(s.wait)
	return s.exit
}

func (s *linuxSandbox) wait() {
	end := s.leader.Reap()
	logs, truncated := s.logs.Finish(logDrainTimeout)
	s.conn.Close()

	code, signal := s.leader.Status()
	s.exit = sandbox.Exit{Code: code, Signal: signal, Duration: end.Sub(s.start), Logs: logs, Truncated: truncated}
	if s.cgroup != nil {
		s.exit.Violations = s.cgroup.Violations()
		s.cgroup.Destroy()
	}
	for i := len(s.release) - 1; i >= 0; i-- {
		s.release[i]()
	}
	os.RemoveAll(s.state)
}
