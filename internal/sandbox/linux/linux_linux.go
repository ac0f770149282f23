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
func (b *Backend) Start(ctx context.Context, spec sandbox.Spec) (_ sandbox.Sandbox, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
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

	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	// Files handed to the child; closed in the parent once it started.
	var childFiles []*os.File
	defer func() {
		for _, f := range childFiles {
			f.Close()
		}
	}()

	if err := os.MkdirAll(b.cfg.StateDir, 0o711); err != nil {
		return nil, fmt.Errorf("creating the state directory: %w", err)
	}
	state := filepath.Join(b.cfg.StateDir, id)
	if err := os.Mkdir(state, 0o700); err != nil {
		return nil, fmt.Errorf("creating the sandbox state directory: %w", err)
	}
	undo = append(undo, func() { os.RemoveAll(state) })

	s := &linuxSandbox{state: state}

	uid, gid := 0, 0
	if root {
		uid, gid = AgentUID, AgentGID
	}
	scfg := supervisor.SandboxConfig{
		Hostname:     "sandbox",
		Python:       python,
		ShimName:     filepath.Base(spec.ShimPath),
		SystemDirs:   systemDirs,
		EtcFiles:     etcFiles,
		ScratchBytes: min(limits.DiskBytes, limits.MemoryBytes),
	}
	env := environ(spec.Env, egress)
	if spec.OutDir != "" {
		env = dedupEnv(append(env, sandbox.OutDirEnv+"="+supervisor.OutMount))
	}

	// The supervisor starts first, so that the Go runtime's start in the
	// child overlaps the work below (detached mounts, scratch area,
	// cgroup); it waits for its configuration, then for the go-ahead on
	// the sync pipe, which comes only once it is in its cgroup.
	sp, err := b.takeSpawned(env, root)
	if err != nil {
		return nil, err
	}
	undo = append(undo, sp.abort)
	defer sp.cfgHost.Close() // EOF of the configuration
	defer sp.syncW.Close()   // EOF tells a child we gave up on to exit

	// The objects to bind go as detached mounts (open_tree) passed with
	// the configuration (SCM_RIGHTS), numbered from 1: the child may not
	// bind a path of the host's mount namespace, nor search the host
	// directories leading to it.
	var passFDs []int
	addTree := func(path string, readOnly bool, idmap int) (int, error) {
		if !root {
			return 0, nil // bound by path (the ...Path fields)
		}
		fd, err := detachedMount(path, readOnly, idmap)
		if err != nil {
			return 0, err
		}
		childFiles = append(childFiles, os.NewFile(uintptr(fd), path))
		passFDs = append(passFDs, fd)
		return len(passFDs), nil
	}
	if !root {
		scfg.AgentPath, scfg.ShimPath = spec.AgentDir, spec.ShimPath
		scfg.EnvPath, scfg.OutPath = spec.EnvDir, spec.OutDir
	}
	// The shim and the egress socket are bound from a tmpfs of the
	// sandbox's own that no host path leads to, so that the guest's
	// mountinfo names them "/shim-….py" and "/egress.sock" on a tmpfs
	// "runagent", not by their host paths. It stays open (the socket's
	// path goes through it) until the sandbox is released.
	stage := -1
	if root {
		if stage, err = stagingFS(); err != nil {
			return nil, err
		}
		s.release = append(s.release, func() error { return unix.Close(stage) })
		undo = append(undo, func() { unix.Close(stage) })
		if err := copyInto(stage, spec.ShimPath); err != nil {
			return nil, fmt.Errorf("staging the shim: %w", err)
		}
	}
	addStaged := func(name string) (int, error) {
		fd, err := detachedMountAt(stage, name, true, 0)
		if err != nil {
			return 0, err
		}
		childFiles = append(childFiles, os.NewFile(uintptr(fd), name))
		passFDs = append(passFDs, fd)
		return len(passFDs), nil
	}
	if root {
		// The code's files show as the agent's, so that it may change
		// them (in the overlay) as it may change those it creates.
		if scfg.AgentFD, err = addTree(spec.AgentDir, true, b.codeIDMap(spec.AgentDir)); err != nil {
			scfg.AgentFD, err = addTree(spec.AgentDir, true, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("opening the agent directory: %w", err)
		}
	}
	if root {
		if scfg.ShimFD, err = addStaged(filepath.Base(spec.ShimPath)); err != nil {
			return nil, fmt.Errorf("opening the shim: %w", err)
		}
	}
	if spec.EnvDir != "" {
		if scfg.EnvFD, err = addTree(spec.EnvDir, true, 0); err != nil {
			return nil, fmt.Errorf("opening the environment directory: %w", err)
		}
	}
	if spec.OutDir != "" {
		if root {
			// The sandbox's ids are foreign to the host: the agent's must
			// own the directory to write it.
			if err := os.Chown(spec.OutDir, HostIDBase+uid, HostIDBase+gid); err != nil {
				return nil, fmt.Errorf("handing the output directory to the sandbox's agent: %w", err)
			}
		}
		if scfg.OutFD, err = addTree(spec.OutDir, false, 0); err != nil {
			return nil, fmt.Errorf("opening the output directory: %w", err)
		}
	}

	if b.cfg.Scratch != nil {
		hostUID, hostGID := os.Geteuid(), os.Getegid()
		if root {
			hostUID, hostGID = HostIDBase+uid, HostIDBase+gid
		}
		dir, release, err := b.cfg.Scratch.Prepare(id, limits.DiskBytes, hostUID, hostGID)
		if err != nil {
			return nil, fmt.Errorf("preparing the scratch area: %w", err)
		}
		s.release = append(s.release, release)
		undo = append(undo, func() { release() })
		if !root {
			scfg.ScratchPath = dir
		}
		if scfg.ScratchFD, err = addTree(dir, false, 0); err != nil {
			return nil, fmt.Errorf("opening the scratch area: %w", err)
		}
	}

	// The cgroup: the prestarted supervisor's own, already joined (sp.abort
	// removes it on failure), or a new one, joined below.
	cg := sp.cg
	if cg != nil {
		if err := cg.SetLimits(limits); err != nil {
			return nil, fmt.Errorf("setting the sandbox's cgroup limits: %w", err)
		}
		s.cgroup = cg
	} else if b.cfg.Cgroups != nil {
		cg, err = b.cfg.Cgroups.New(id, limits)
		if err != nil {
			return nil, fmt.Errorf("creating the cgroup: %w", err)
		}
		s.cgroup = cg
		undo = append(undo, func() { cg.Destroy() })
	}

	if egress {
		sock := filepath.Join(state, "egress.sock")
		if root {
			sock = fmt.Sprintf("/proc/self/fd/%d/egress.sock", stage)
		}
		closer, err := b.cfg.Egress.Listen(sock, id, spec.AgentID, spec.Network)
		if err != nil {
			return nil, fmt.Errorf("starting the egress proxy: %w", err)
		}
		s.release = append(s.release, closer.Close)
		undo = append(undo, func() { closer.Close() })
		// The sandbox's root is a foreign uid; the socket is reachable
		// only through the bind mount.
		if err := os.Chmod(sock, 0o666); err != nil {
			return nil, fmt.Errorf("egress socket: %w", err)
		}
		if !root {
			scfg.EgressPath = sock
		} else if scfg.EgressFD, err = addStaged("egress.sock"); err != nil {
			return nil, fmt.Errorf("opening the egress socket: %w", err)
		}
	}

	seccompProg, shimProg, err := filters(limits.NoProcessCreation)
	if err != nil {
		return nil, err
	}
	shimInside := filepath.Join(supervisor.RunDir, scfg.ShimName)
	readOnly := append(append([]string{}, systemDirs...), "/etc", supervisor.RunDir, "/proc", "/dev")
	readWrite := []string{supervisor.ScratchDir, supervisor.AgentMount}
	s.dirs = sandbox.GuestDirs{Agent: supervisor.AgentMount}
	if spec.EnvDir != "" {
		readOnly = append(readOnly, supervisor.EnvMount)
		s.dirs.Env = supervisor.EnvMount
	}
	if spec.OutDir != "" {
		readWrite = append(readWrite, supervisor.OutMount)
		s.dirs.Out = supervisor.OutMount
	}
	scfg.Env = env
	scfg.Exec = supervisor.ExecConfig{
		Python:      python,
		Args:        []string{python, "-I", "-B", "-u", shimInside},
		Env:         env,
		Dir:         supervisor.AgentMount,
		UID:         uid,
		GID:         gid,
		NoFile:      limits.OpenFiles,
		FSize:       limits.FileSize,
		NProc:       limits.Processes,
		ReadOnly:    readOnly,
		ReadWrite:   readWrite,
		Devices:     []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"},
		Seccomp:     seccompProg,
		ShimSeccomp: shimProg,
	}
	cfgJSON, err := json.Marshal(scfg)
	if err != nil {
		return nil, err
	}

	if len(cfgJSON) > 60<<10 {
		return nil, errors.New("sandbox configuration too large")
	}
	if err := sendConfig(sp.cfgHost, cfgJSON, passFDs); err != nil {
		return nil, fmt.Errorf("sending the sandbox configuration: %w", err)
	}
	if cg != nil && sp.cg == nil {
		if err := cg.AddPID(sp.pid); err != nil {
			return nil, fmt.Errorf("adding the sandbox to its cgroup: %w", err)
		}
	}
	if _, err := sp.syncW.Write([]byte{0}); err != nil {
		return nil, fmt.Errorf("releasing the sandbox: %w", err)
	}

	s.cmd = sp.cmd
	s.pid = sp.pid
	s.leader = procgroup.New(sp.cmd)
	s.conn = sp.conn
	s.start = sp.start
	s.logs = logtail.Collect(sp.logR, logLimit)
	return s, nil
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
	var childFiles []*os.File
	var closeOnErr []io.Closer
	defer func() {
		for _, f := range childFiles {
			f.Close()
		}
		if err != nil {
			for _, f := range closeOnErr {
				f.Close()
			}
		}
	}()
	exeFD, err := unix.Open(b.cfg.Exe, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the runagent executable: %w", err)
	}
	exe := os.NewFile(uintptr(exeFD), b.cfg.Exe)
	childFiles = append(childFiles, exe)

	// Control channel.
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating the control channel: %w", err)
	}
	hostEnd := os.NewFile(uintptr(fds[0]), "guest-control")
	guestEnd := os.NewFile(uintptr(fds[1]), "guest-control-child")
	childFiles = append(childFiles, guestEnd)
	conn, err := net.FileConn(hostEnd)
	hostEnd.Close()
	if err != nil {
		return nil, fmt.Errorf("creating the control channel: %w", err)
	}
	closeOnErr = append(closeOnErr, conn)

	// Configuration socket: JSON and the descriptors to bind.
	if fds, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("creating the configuration channel: %w", err)
	}
	cfgHost := os.NewFile(uintptr(fds[0]), "sandbox-config")
	closeOnErr = append(closeOnErr, cfgHost)
	childFiles = append(childFiles, os.NewFile(uintptr(fds[1]), "sandbox-config-child"))
	cfgGuest := childFiles[len(childFiles)-1]

	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	childFiles = append(childFiles, syncR)
	closeOnErr = append(closeOnErr, syncW)

	logR, logW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("creating the log pipe: %w", err)
	}
	childFiles = append(childFiles, logW)
	closeOnErr = append(closeOnErr, logR)

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

// sendConfig writes data with fds attached to its first byte, then shuts
// the socket down for writing (EOF ends the configuration).
func sendConfig(sock *os.File, data []byte, fds []int) error {
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

// assembledFilters are the raw programs of Policy and
// NoProcessCreationPolicy, assembled once: they depend on nothing of a
// sandbox.
var assembledFilters = sync.OnceValues(func() ([2][]supervisor.BPF, error) {
	var out [2][]supervisor.BPF
	for i, p := range []func() seccomp.Policy{Policy, NoProcessCreationPolicy} {
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
	fd, err := unix.OpenTree(dirfd, path, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("open_tree %s: %w", path, err)
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if readOnly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
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
