//go:build linux

package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/egress"
)

// Exit status of a sandbox set-up failure (before any agent code runs).
const exitSetup = 125

// newRootMount is where the new root is assembled before pivot_root. It
// is a path of the host's tree, but the tmpfs on it exists only in the
// sandbox's private mount namespace.
const newRootMount = "/tmp"

// sandboxMain is PID 1 of a linux-backend sandbox: it waits for the
// parent's go-ahead, builds the root file system, brings up loopback,
// relays the egress proxy, and starts and supervises the agent's Python.
func sandboxMain() int {
	// The thread that will restrict itself and start Python is made
	// while the configuration is awaited (~0.3 ms of a cold start).
	spare := newSpareThread()
	var cfg SandboxConfig
	if err := readSandboxConfig(&cfg); err != nil {
		return setupFailed(err)
	}
	// Nothing past the control channel may reach Python: the
	// descriptors inherited from the parent (SyncFD, ExeFD; with a pipe
	// on ConfigFD, the mounts too) are not close-on-exec here. (Those
	// received on a socket are: recvAll.)
	if err := unix.CloseRange(ControlFD+1, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return setupFailed(fmt.Errorf("close_range: %w", err))
	}
	// Hold until the parent has put us in the cgroup (runc's pattern).
	var b [1]byte
	sync := os.NewFile(SyncFD, "sync")
	if n, _ := sync.Read(b[:]); n != 1 {
		return setupFailed(errors.New("the parent abandoned the start"))
	}
	sync.Close()

	if err := setupSandbox(&cfg); err != nil {
		return setupFailed(err)
	}
	if cfg.EgressFD != 0 || cfg.EgressPath != "" {
		if err := relayEgress(); err != nil {
			return setupFailed(err)
		}
	}

	code, err := superviseRestricted(&cfg.Exec, spare)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runagent supervisor: %v\n", err)
	}
	return code
}

// superviseRestricted starts Python restricted by cfg, without a second
// start of this binary: a goroutine locked to a fresh OS thread applies
// cfg's per-thread restrictions (capabilities, ids, no_new_privs,
// landlock, seccomp) to that thread, which then forks and execs Python,
// the child inheriting them; the thread is never unlocked, so the Go
// runtime destroys it when the goroutine ends and no other goroutine ever
// runs on it. The rlimits are per process: the supervisor, whose needs are
// far below them, carries them too (see restrictThread). The supervisor
// then relays signals to Python and reaps as supervise does.
func superviseRestricted(cfg *ExecConfig, spare *spareThread) (int, error) {
	// Relay signals from before the start, so none is lost.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)

	pid, err := spare.run(func() (int, error) { return restrictAndFork(cfg) })
	control := os.NewFile(ControlFD, "control")
	control.Close() // the shim holds the channel now; the host sees EOF when it exits
	if err != nil {
		return exitNotFound, err
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return exitNotFound, err
	}
	return waitChild(p, sigs)
}

// spareThread is an OS thread of its own, not the thread-group leader
// (whose credentials /proc/PID shows), that runs one function and that
// the Go runtime destroys once it returns: the function may change the
// thread's credentials and filters for good.
type spareThread struct {
	f      chan func() (int, error)
	result chan spareResult
}

type spareResult struct {
	pid int
	err error
}

// newSpareThread makes a spare thread, which waits for its function.
func newSpareThread() *spareThread {
	t := &spareThread{f: make(chan func() (int, error), 1), result: make(chan spareResult, 1)}
	go t.loop()
	return t
}

func (t *spareThread) loop() {
	runtime.LockOSThread()
	if unix.Gettid() == unix.Getpid() {
		// The leader: hold it, so that the nested goroutine lands
		// elsewhere, and give it back untouched.
		inner := newSpareThread()
		f := <-t.f
		pid, err := inner.run(f)
		runtime.UnlockOSThread()
		t.result <- spareResult{pid, err}
		return
	}
	f := <-t.f
	pid, err := f() // never unlocked: the thread dies with the goroutine
	t.result <- spareResult{pid, err}
}

// run runs f on the thread and returns its result. Call it once.
func (t *spareThread) run(f func() (int, error)) (int, error) {
	t.f <- f
	r := <-t.result
	return r.pid, r.err
}

// restrictAndFork applies cfg to the calling thread and starts Python
// from it (fork and exec).
//
// Preconditions: the calling goroutine is locked to its OS thread, which
// must not run Go code of anyone else afterwards (never unlock it).
func restrictAndFork(cfg *ExecConfig) (int, error) {
	if unix.Gettid() == unix.Getpid() {
		return 0, errors.New("refusing to restrict the supervisor's main thread")
	}
	devnull, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(devnull)
	files := []uintptr{uintptr(devnull), 1, 2, ControlFD} // the shim's 0–3 (fds.go)
	env := cfg.Env
	if z := cfg.Zygote; z != nil {
		fd, err := filterPipe(z.RunSeccomp)
		if err != nil {
			return 0, fmt.Errorf("handing the run filter to the fork server: %w", err)
		}
		defer unix.Close(fd)
		spec := fmt.Sprintf("seccomp=%d,scratch=%d,hostname=%s,nproc=%d", ZygoteSeccompFD, z.ScratchBytes, z.Hostname, z.RunNProc)
		files = append(files, uintptr(fd)) // ZygoteSeccompFD
		if plan, ok := landlockPlanOf(cfg); ok {
			data, err := json.Marshal(plan)
			if err != nil {
				return 0, err
			}
			fd, err := dataPipe(data)
			if err != nil {
				return 0, fmt.Errorf("handing the landlock rules to the fork server: %w", err)
			}
			defer unix.Close(fd)
			spec += ",landlock=" + strconv.Itoa(ZygoteLandlockFD)
			files = append(files, uintptr(fd)) // ZygoteLandlockFD
		}
		if z.Egress {
			spec += ",egress=1"
		}
		env = append(env[:len(env):len(env)], ZygoteEnv+"="+spec)
	} else if len(cfg.ShimSeccomp) > 0 {
		fd, err := filterPipe(cfg.ShimSeccomp)
		if err != nil {
			return 0, fmt.Errorf("handing the process filter to the shim: %w", err)
		}
		defer unix.Close(fd)
		files = append(files, uintptr(fd)) // the one after ControlFD: ShimSeccompFD
		env = append(env[:len(env):len(env)], ShimSeccompEnv+"="+strconv.Itoa(ShimSeccompFD))
	}
	if err := restrictThread(cfg); err != nil {
		return 0, err
	}
	return syscall.ForkExec(cfg.Python, cfg.Args, &syscall.ProcAttr{Dir: cfg.Dir, Env: env, Files: files})
}

func setupFailed(err error) int {
	fmt.Fprintf(os.Stderr, "runagent supervisor: sandbox set-up: %v\n", err)
	return exitSetup
}

// readConfig decodes the JSON on ConfigFD and closes it.
func readConfig(v any) error {
	f := os.NewFile(ConfigFD, "config")
	if f == nil {
		return errors.New("no configuration descriptor")
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("reading the configuration: %w", err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decoding the configuration: %w", err)
	}
	return nil
}

// readSandboxConfig reads the SandboxConfig on ConfigFD: JSON to EOF from
// a pipe, or from a socket, which also carries the descriptors of the
// objects to bind (SCM_RIGHTS); the config's descriptor fields then
// number them from 1 in the order received.
func readSandboxConfig(cfg *SandboxConfig) error {
	var st unix.Stat_t
	if err := unix.Fstat(ConfigFD, &st); err != nil {
		return fmt.Errorf("configuration descriptor: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return readConfig(cfg)
	}
	data, fds, err := recvAll(ConfigFD)
	unix.Close(ConfigFD)
	if err != nil {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return fmt.Errorf("reading the configuration: %w", err)
	}
	if err := json.Unmarshal(data, cfg); err != nil {
		return fmt.Errorf("decoding the configuration: %w", err)
	}
	fdFields := []*int{&cfg.AgentFD, &cfg.ShimFD, &cfg.ScratchFD, &cfg.EgressFD, &cfg.EnvFD, &cfg.OutFD}
	for i := range cfg.Mounts {
		fdFields = append(fdFields, &cfg.Mounts[i].FD)
	}
	for _, p := range fdFields {
		if *p == 0 {
			continue
		}
		if *p < 0 || *p > len(fds) {
			return fmt.Errorf("configuration names descriptor %d of %d received", *p, len(fds))
		}
		*p = fds[*p-1]
	}
	return nil
}

// recvAll reads fd, a stream socket, to EOF, collecting the descriptors
// passed along (close-on-exec).
func recvAll(fd int) (data []byte, fds []int, err error) {
	buf := make([]byte, 16<<10)
	oob := make([]byte, unix.CmsgSpace(64*4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return data, fds, err
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err != nil {
				return data, fds, err
			}
			for _, m := range msgs {
				rights, err := unix.ParseUnixRights(&m)
				if err != nil {
					return data, fds, err
				}
				fds = append(fds, rights...)
			}
		}
		if flags&unix.MSG_CTRUNC != 0 {
			return data, fds, errors.New("descriptors truncated")
		}
		if n == 0 {
			return data, fds, nil
		}
		if len(data)+n > 1<<20 {
			return data, fds, errors.New("configuration too large")
		}
		data = append(data, buf[:n]...)
	}
}

// setupSandbox builds the sandbox's root and network.
func setupSandbox(cfg *SandboxConfig) error {
	if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
		return fmt.Errorf("sethostname: %w", err)
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	// Open the objects bound by path before the new root's tmpfs may hide
	// them; descriptors opened in this mount namespace can be bound.
	pathFields := []*string{&cfg.AgentPath, &cfg.ShimPath, &cfg.ScratchPath, &cfg.EgressPath, &cfg.EnvPath, &cfg.OutPath}
	for i := range cfg.Mounts {
		pathFields = append(pathFields, &cfg.Mounts[i].Path)
	}
	for _, p := range pathFields {
		if *p == "" {
			continue
		}
		fd, err := unix.Open(*p, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening %s: %w", *p, err)
		}
		*p = "/proc/self/fd/" + strconv.Itoa(fd)
	}
	root := newRootMount
	if err := unix.Mount("tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=16m"); err != nil {
		return fmt.Errorf("mounting the new root: %w", err)
	}
	dirs := []string{"etc", "dev", "proc", "tmp", "agent", "run/runagent"}
	if cfg.EnvFD != 0 || cfg.EnvPath != "" {
		dirs = append(dirs, EnvMount)
	}
	if cfg.OutFD != 0 || cfg.OutPath != "" {
		dirs = append(dirs, OutMount)
	}
	if cfg.Exec.Zygote != nil {
		dirs = append(dirs, ForkStage)
	}
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	for _, d := range cfg.SystemDirs {
		if err := bindSystem(root, d); err != nil {
			return err
		}
	}
	if err := writeEtc(root); err != nil {
		return err
	}
	for _, f := range cfg.EtcFiles {
		if err := bindEtc(root, f); err != nil {
			return err
		}
	}
	binds := []struct {
		fd     int
		path   string
		target string
		dir    bool
		rw     bool
	}{
		{cfg.ShimFD, cfg.ShimPath, filepath.Join(RunDir, cfg.ShimName), false, false},
		{cfg.EgressFD, cfg.EgressPath, EgressMount, false, false},
		{cfg.OutFD, cfg.OutPath, OutMount, true, true},
	}
	for _, b := range binds {
		if b.fd == 0 && b.path == "" {
			continue
		}
		target := filepath.Join(root, b.target)
		if !b.dir {
			if err := touch(target); err != nil {
				return err
			}
		}
		var err error
		switch {
		case b.fd != 0:
			err = attach(b.fd, target)
			unix.Close(b.fd)
		case b.rw:
			err = bindRW(b.path, target)
		default:
			err = bindRO(b.path, target, 0)
		}
		if err != nil {
			return fmt.Errorf("binding %s: %w", b.target, err)
		}
	}
	if err := setupDev(root); err != nil {
		return err
	}
	if err := setupEnv(cfg, root); err != nil {
		return err
	}
	if err := setupScratch(cfg, root); err != nil {
		return err
	}
	if err := setupMounts(cfg, root); err != nil {
		return err
	}
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}

	// Switch to the new root and drop the host's.
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	for _, m := range []string{"/dev", "/"} {
		if err := unix.Mount("", m, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
			return fmt.Errorf("remounting %s read-only: %w", m, err)
		}
	}
	return nil
}

// setupScratch mounts the scratch area and the agent's code under root:
// the scratch file system (the parent's, or a tmpfs of ScratchBytes)
// holds tmp/, bound at ScratchDir with the owner and mode of the file
// system's root, and agent/upper and agent/work, the writable layer of an
// overlay at AgentMount whose lower layer is the code. So the agent may
// write beside its code; its writes count against the scratch area's size
// and vanish with it, and the code itself is never written. Both are
// assembled in a staging directory that is unmounted and removed again,
// so the guest sees neither the scratch file system's root nor the code's
// own mount, and the overlay's options (in /proc/self/mountinfo) name only
// paths relative to that directory.
func setupScratch(cfg *SandboxConfig, root string) error {
	stage := filepath.Join(root, ".stage")
	scratch, code := filepath.Join(stage, "scratch"), filepath.Join(stage, "code")
	for _, d := range []string{scratch, code} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	switch {
	case cfg.ScratchFD != 0:
		err := attach(cfg.ScratchFD, scratch)
		unix.Close(cfg.ScratchFD)
		if err != nil {
			return fmt.Errorf("binding the scratch directory: %w", err)
		}
	case cfg.ScratchPath != "":
		if err := bindRW(cfg.ScratchPath, scratch); err != nil {
			return fmt.Errorf("binding the scratch directory: %w", err)
		}
	default:
		opts := "mode=1777,size=" + strconv.FormatInt(cfg.ScratchBytes, 10)
		if err := unix.Mount("tmpfs", scratch, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("mounting the scratch tmpfs: %w", err)
		}
	}
	switch {
	case cfg.AgentFD != 0:
		err := attach(cfg.AgentFD, code)
		unix.Close(cfg.AgentFD)
		if err != nil {
			return fmt.Errorf("binding the agent directory: %w", err)
		}
	case cfg.AgentPath != "":
		if err := bindRO(cfg.AgentPath, code, 0); err != nil {
			return fmt.Errorf("binding the agent directory: %w", err)
		}
	default:
		return errors.New("no agent directory")
	}

	// tmp/ takes the place of the scratch area's root as the guest's /tmp.
	var st unix.Stat_t
	if err := unix.Stat(scratch, &st); err != nil {
		return err
	}
	tmp := filepath.Join(scratch, "tmp")
	if err := mkdirOwned(tmp, int(st.Uid), int(st.Gid), st.Mode&0o7777); err != nil {
		return fmt.Errorf("scratch directory: %w", err)
	}
	if err := bindRW(tmp, filepath.Join(root, ScratchDir)); err != nil {
		return fmt.Errorf("binding the scratch directory: %w", err)
	}

	// The overlay's root takes its owner and mode from the upper layer's:
	// the agent's, with the code's mode.
	if err := unix.Stat(code, &st); err != nil {
		return err
	}
	layers := filepath.Join(scratch, "agent")
	if err := mkdirOwned(layers, 0, 0, 0o700); err != nil {
		return fmt.Errorf("agent overlay: %w", err)
	}
	if err := mkdirOwned(filepath.Join(layers, "upper"), cfg.Exec.UID, cfg.Exec.GID, st.Mode&0o7777); err != nil {
		return fmt.Errorf("agent overlay: %w", err)
	}
	if err := mkdirOwned(filepath.Join(layers, "work"), 0, 0, 0o700); err != nil {
		return fmt.Errorf("agent overlay: %w", err)
	}
	if err := unix.Chdir(stage); err != nil {
		return err
	}
	// userxattr: the overlay keeps its metadata in user.overlay.* extended
	// attributes, which a user namespace may set (trusted.* it may not).
	err := unix.Mount("overlay", filepath.Join(root, AgentMount), "overlay", unix.MS_NOSUID|unix.MS_NODEV,
		"lowerdir=code,upperdir=scratch/agent/upper,workdir=scratch/agent/work,userxattr")
	if err != nil {
		return fmt.Errorf("mounting the agent directory's overlay (overlayfs in a user namespace needs Linux 5.11): %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	// The overlay and the /tmp bind hold their own references to the
	// layers; the staging mounts can go.
	for _, d := range []string{code, scratch} {
		if err := unix.Unmount(d, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmounting %s: %w", d, err)
		}
		if err := os.Remove(d); err != nil {
			return err
		}
	}
	return os.Remove(stage)
}

// setupMounts binds the sandbox's own directories (cfg.Mounts) at their
// guest paths under root, after setupScratch: over /agent's overlay and
// /tmp, so that what the agent writes there goes to the host directory,
// not to the writable layer. Each is nosuid, nodev and noexec (the
// parent's detached mount is already; a bind by path is remounted so).
// The landlock rules are made later, after pivot_root, on these mounts.
func setupMounts(cfg *SandboxConfig, root string) error {
	for _, m := range cfg.Mounts {
		target, err := mountPoint(root, m.Guest, cfg.Exec.UID, cfg.Exec.GID)
		if err != nil {
			if m.FD != 0 {
				unix.Close(m.FD)
			}
			return fmt.Errorf("mount point %s: %w", m.Guest, err)
		}
		switch {
		case m.FD != 0:
			err = unix.MoveMount(m.FD, "", target, "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH)
			unix.Close(m.FD)
		case m.Path != "":
			p := "/proc/self/fd/" + strconv.Itoa(target)
			if err = unix.Mount(m.Path, p, "", unix.MS_BIND, ""); err == nil {
				flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | lockedFlags(filepath.Join(root, m.Guest))
				err = unix.Mount("", filepath.Join(root, m.Guest), "", uintptr(flags), "")
			}
		default:
			err = errors.New("no directory to bind")
		}
		unix.Close(target)
		if err != nil {
			return fmt.Errorf("binding %s: %w", m.Guest, err)
		}
	}
	return nil
}

// mountPoint returns an O_PATH descriptor of the directory guest (a clean
// absolute path) under root, creating what is missing of it as the
// agent's (uid, gid), mode 0755. It refuses a way through a symbolic
// link: the agent's code or a template's import could have put one there
// to have the mount cover another place.
func mountPoint(root, guest string, uid, gid int) (int, error) {
	if !filepath.IsAbs(guest) || filepath.Clean(guest) != guest || guest == "/" {
		return -1, errors.New("not a clean absolute path")
	}
	dir := root
	for _, name := range strings.Split(guest[1:], "/") {
		dir = filepath.Join(dir, name)
		var st unix.Stat_t
		err := unix.Lstat(dir, &st)
		if errors.Is(err, unix.ENOENT) {
			if err := mkdirOwned(dir, uid, gid, 0o755); err != nil {
				return -1, err
			}
			continue
		}
		if err != nil {
			return -1, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return -1, fmt.Errorf("%s is not a directory (a symbolic link is not followed)", strings.TrimPrefix(dir, root))
		}
	}
	return unix.Openat2(unix.AT_FDCWD, dir, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC | unix.O_NOFOLLOW,
		Resolve: unix.RESOLVE_NO_SYMLINKS,
	})
}

// setupEnv mounts the environment directory read-only at EnvMount, as a
// read-only overlay whose layers are the environment and an empty
// directory (overlayfs wants two lower layers when it has no upper one).
// A bind would show the directory's host path as its root in
// /proc/self/mountinfo; the overlay's root is "/" and its options name
// its layers relative to a staging directory that is removed again
// ("lowerdir=env:empty"), as setupScratch does for the code.
func setupEnv(cfg *SandboxConfig, root string) error {
	if cfg.EnvFD == 0 && cfg.EnvPath == "" {
		return nil
	}
	stage := filepath.Join(root, ".stage-env")
	env, empty := filepath.Join(stage, "env"), filepath.Join(stage, "empty")
	for _, d := range []string{env, empty} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	var err error
	if cfg.EnvFD != 0 {
		err = attach(cfg.EnvFD, env)
		unix.Close(cfg.EnvFD)
	} else {
		err = bindRO(cfg.EnvPath, env, 0)
	}
	if err != nil {
		return fmt.Errorf("binding the environment directory: %w", err)
	}
	if err := unix.Chdir(stage); err != nil {
		return err
	}
	err = unix.Mount("overlay", filepath.Join(root, EnvMount), "overlay", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV,
		"lowerdir=env:empty,userxattr")
	if err != nil {
		return fmt.Errorf("mounting the environment directory's overlay: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Unmount(env, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting %s: %w", env, err)
	}
	for _, d := range []string{env, empty, stage} {
		if err := os.Remove(d); err != nil {
			return err
		}
	}
	return nil
}

// mkdirOwned creates dir with mode and owner uid:gid.
func mkdirOwned(dir string, uid, gid int, mode uint32) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := os.Lchown(dir, uid, gid); err != nil {
		return err
	}
	return unix.Chmod(dir, mode)
}

// bindRW bind-mounts src on target writable, nosuid and nodev, keeping
// the flags the kernel locks on the source mount.
func bindRW(src, target string) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s: %w", src, err)
	}
	flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NODEV | lockedFlags(target)
	if err := unix.Mount("", target, "", uintptr(flags), ""); err != nil {
		return fmt.Errorf("remount %s: %w", target, err)
	}
	return nil
}

// attach attaches the detached mount fd (the parent's open_tree, already
// read-only where it should be) at target.
func attach(fd int, target string) error {
	return unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

func touch(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// bindSystem binds the host's dir read-only at the same path under root,
// or recreates it as a symlink if it is one. A missing dir is skipped.
func bindSystem(root, dir string) error {
	fi, err := os.Lstat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	target := filepath.Join(root, dir)
	if fi.Mode()&os.ModeSymlink != 0 {
		link, err := os.Readlink(dir)
		if err != nil {
			return err
		}
		return os.Symlink(link, target)
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	return bindRO(dir, target, 0)
}

// bindEtc binds one /etc entry (resolving symlinks such as localtime).
func bindEtc(root, path string) error {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return nil
	}
	target := filepath.Join(root, path)
	if fi.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else {
		err = touch(target)
	}
	if err != nil {
		return err
	}
	return bindRO(real, target, 0)
}

// bindRO bind-mounts src on target read-only, nosuid and nodev (plus
// extra flags), keeping the flags the kernel locks on the source mount.
func bindRO(src, target string, extra uintptr) error {
	if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("bind %s: %w", src, err)
		}
		// A non-recursive bind would uncover what locked submounts hide.
		if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind %s: %w", src, err)
		}
	}
	flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | extra | lockedFlags(target)
	if err := unix.Mount("", target, "", uintptr(flags), ""); err != nil {
		return fmt.Errorf("remount %s read-only: %w", target, err)
	}
	return nil
}

// lockedFlags returns the mount flags of the mount at path that a user
// namespace may not clear in a remount.
func lockedFlags(path string) uintptr {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return 0
	}
	var f uintptr
	for _, m := range []struct{ st, ms int64 }{
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
		{unix.ST_RDONLY, unix.MS_RDONLY},
	} {
		if int64(st.Flags)&m.st != 0 {
			f |= uintptr(m.ms)
		}
	}
	return f
}

// writeEtc writes the generated /etc files.
func writeEtc(root string) error {
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n" +
			"agent:x:1000:1000:agent:/tmp:/usr/sbin/nologin\n" +
			"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"group": "root:x:0:\nagent:x:1000:\nnogroup:x:65534:\n",
		"hosts": "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// devices are the host device nodes bound into the sandbox's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// setupDev builds a minimal /dev: a tmpfs with the host's harmless
// device nodes bound in and the usual symlinks.
func setupDev(root string) error {
	dev := filepath.Join(root, "dev")
	if err := unix.Mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_NOEXEC, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("mounting /dev: %w", err)
	}
	for _, d := range devices {
		target := filepath.Join(dev, d)
		if err := touch(target); err != nil {
			return err
		}
		if err := unix.Mount("/dev/"+d, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s: %w", d, err)
		}
		flags := unix.MS_BIND | unix.MS_REMOUNT | unix.MS_NOSUID | unix.MS_NOEXEC | lockedFlags(target)
		if err := unix.Mount("", target, "", uintptr(flags), ""); err != nil {
			return fmt.Errorf("remounting /dev/%s: %w", d, err)
		}
	}
	for name, to := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0",
		"stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(to, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp sets lo up in the sandbox's network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("loopback: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("loopback flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing up loopback: %w", err)
	}
	return nil
}

// relayEgress listens on ProxyAddr and relays every connection to the
// host's egress proxy socket.
func relayEgress() error {
	ln, err := net.Listen("tcp", ProxyAddr)
	if err != nil {
		return fmt.Errorf("egress relay: %w", err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go relayConn(c)
		}
	}()
	return nil
}

func relayConn(c net.Conn) {
	defer c.Close()
	u, err := net.Dial("unix", EgressMount)
	if err != nil {
		fmt.Fprintf(os.Stderr, "runagent supervisor: egress relay: %v\n", err)
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	cp := func(dst net.Conn, src io.Reader, then func()) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		then()
		done <- struct{}{}
	}
	// A refusal by the proxy also goes to stderr, which is the
	// invocation's log: the developer sees why even when the agent's
	// HTTP library reports only "403 Forbidden". It is said as soon as
	// the refusal's header has passed, before the agent (and with it the
	// sandbox) may be gone, and once.
	var w egress.RefusalWatch
	said := ""
	say := func() {
		if r := w.Refusal(); r != "" && r != said {
			said = r
			fmt.Fprintf(os.Stderr, "runagent egress: %s\n", r)
		}
	}
	watch := writerFunc(func(p []byte) (int, error) {
		n, err := w.Write(p)
		say()
		return n, err
	})
	go cp(u, c, func() {})
	go cp(c, io.TeeReader(u, watch), say)
	<-done
	<-done
}

// writerFunc is a function as an io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// restrictThread applies cfg's rlimits (per process) and its per-thread
// restrictions: no capabilities, the agent's ids, no_new_privs, landlock
// and, last, seccomp.
//
// The rlimits bind the calling process too; where that is the sandbox's
// supervisor, it needs a handful of descriptors and threads and writes no
// file, far below them (and the hard limits cannot be raised again).
//
// Preconditions: the calling goroutine is locked to its OS thread.
func restrictThread(cfg *ExecConfig) error {
	for _, rl := range []struct {
		res int
		v   int64
	}{
		{unix.RLIMIT_NOFILE, cfg.NoFile},
		{unix.RLIMIT_FSIZE, cfg.FSize},
		{unix.RLIMIT_NPROC, cfg.NProc},
		{unix.RLIMIT_CORE, -1}, // always 0
	} {
		v := rl.v
		if v == 0 {
			continue
		}
		if v < 0 {
			v = 0
		}
		// syscall.Setrlimit, not unix's: it also stops the Go runtime
		// from restoring its saved RLIMIT_NOFILE at exec.
		if err := syscall.Setrlimit(rl.res, &syscall.Rlimit{Cur: uint64(v), Max: uint64(v)}); err != nil {
			return fmt.Errorf("setrlimit %d: %w", rl.res, err)
		}
	}
	if err := dropPrivileges(cfg.UID, cfg.GID); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("no_new_privs: %w", err)
	}
	if cfg.Zygote == nil {
		if err := applyLandlock(cfg); err != nil {
			return fmt.Errorf("landlock: %w", err)
		}
	}
	if len(cfg.Seccomp) > 0 {
		if err := installSeccomp(cfg.Seccomp); err != nil {
			return fmt.Errorf("seccomp: %w", err)
		}
	}
	return nil
}

// dropPrivileges empties the capability bounding, ambient and inheritable
// sets of this thread and switches it to uid:gid (unless uid is 0, when
// the user namespace maps only one id).
//
// Preconditions: the calling goroutine is locked to its OS thread.
func dropPrivileges(uid, gid int) error {
	last := 63
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(string(trimNL(b))); err == nil {
			last = n
		}
	}
	for c := 0; c <= last; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	if uid != 0 || gid != 0 {
		// Raw syscalls: only this thread matters, and it is the one
		// that execs.
		if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
			return fmt.Errorf("setgroups: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(gid), uintptr(gid), uintptr(gid)); e != 0 {
			return fmt.Errorf("setresgid: %w", e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(uid), uintptr(uid), uintptr(uid)); e != 0 {
			return fmt.Errorf("setresuid: %w", e)
		}
	}
	// Leaving uid 0 cleared the permitted and effective sets; clear them
	// (and the inheritable set) explicitly for the uid-0 case too.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

// Landlock access rights by ABI version.
const (
	llRead     = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_READ_DIR
	llWriteV1  = unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_REMOVE_DIR | unix.LANDLOCK_ACCESS_FS_REMOVE_FILE | unix.LANDLOCK_ACCESS_FS_MAKE_CHAR | unix.LANDLOCK_ACCESS_FS_MAKE_DIR | unix.LANDLOCK_ACCESS_FS_MAKE_REG | unix.LANDLOCK_ACCESS_FS_MAKE_SOCK | unix.LANDLOCK_ACCESS_FS_MAKE_FIFO | unix.LANDLOCK_ACCESS_FS_MAKE_BLOCK | unix.LANDLOCK_ACCESS_FS_MAKE_SYM
	llAllV1    = llRead | llWriteV1
	llScopeAll = 0x1 | 0x2 // LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL (ABI 6)
)

// LandlockABI returns the kernel's landlock ABI version, 0 if none.
func LandlockABI() int {
	v, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if e != 0 {
		return 0
	}
	return int(v)
}

// applyLandlock restricts this thread's file access, best effort by ABI
// (no landlock at all: nothing, the mount namespace still confines it).
// go-landlock is not used: its pre-ABI-8 path needs libcap's psx module,
// which this module does not carry; a per-thread ruleset suffices here.
//
// Preconditions: the calling goroutine is locked to its OS thread, and
// no_new_privs is set.
func applyLandlock(cfg *ExecConfig) error {
	rfd, err := landlockRuleset(cfg)
	if err != nil || rfd < 0 {
		return err
	}
	defer unix.Close(rfd)
	if _, _, e := unix.Syscall(unix.SYS_LANDLOCK_RESTRICT_SELF, uintptr(rfd), 0, 0); e != 0 {
		return fmt.Errorf("restrict_self: %w", e)
	}
	return nil
}

// landlockPlan is a landlock ruleset to be made: what it handles and
// its rules. A fork server's runs make it themselves (the shim), after
// they have mounted their layers: a rule on a mount point made before
// would not reach the mount on it (landlock ignores covered mount
// points).
type landlockPlan struct {
	// Size is the size of struct landlock_ruleset_attr this kernel's
	// ABI reads (with scoped from ABI 6).
	Size     uintptr        `json:"size"`
	Handled  uint64         `json:"handled"`
	Scoped   uint64         `json:"scoped"`
	FileMask uint64         `json:"file_mask"` // the rights a rule on a file (not a directory) may hold
	Rules    []landlockRule `json:"rules"`
}

type landlockRule struct {
	Path   string `json:"path"`
	Access uint64 `json:"access"`
}

// landlockPlanOf returns cfg's landlock plan; ok is false when the
// kernel has no landlock.
func landlockPlanOf(cfg *ExecConfig) (p landlockPlan, ok bool) {
	abi := LandlockABI()
	if abi < 1 {
		return p, false
	}
	handled := uint64(llAllV1)
	if abi >= 2 {
		handled |= unix.LANDLOCK_ACCESS_FS_REFER
	}
	if abi >= 3 {
		handled |= unix.LANDLOCK_ACCESS_FS_TRUNCATE
	}
	if abi >= 5 {
		handled |= unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	}
	var attr unix.LandlockRulesetAttr
	p.Handled = handled
	p.Size = unsafe.Offsetof(attr.Handled_access_net)
	if abi >= 6 {
		p.Scoped = llScopeAll
		p.Size = unsafe.Offsetof(attr.Quiet_access_fs)
	}
	p.FileMask = unix.LANDLOCK_ACCESS_FS_EXECUTE | unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV
	for _, path := range cfg.ReadOnly {
		p.Rules = append(p.Rules, landlockRule{path, llRead & handled})
	}
	for _, path := range cfg.ReadWrite {
		p.Rules = append(p.Rules, landlockRule{path, handled})
	}
	for _, path := range cfg.Devices {
		p.Rules = append(p.Rules, landlockRule{path, (unix.LANDLOCK_ACCESS_FS_READ_FILE | unix.LANDLOCK_ACCESS_FS_WRITE_FILE | unix.LANDLOCK_ACCESS_FS_TRUNCATE | unix.LANDLOCK_ACCESS_FS_IOCTL_DEV) & handled})
	}
	return p, true
}

// landlockRuleset returns a landlock ruleset (close-on-exec descriptor)
// of cfg's rules, or -1 when the kernel has no landlock.
func landlockRuleset(cfg *ExecConfig) (int, error) {
	p, ok := landlockPlanOf(cfg)
	if !ok {
		return -1, nil
	}
	attr := unix.LandlockRulesetAttr{Handled_access_fs: p.Handled, Scoped: p.Scoped}
	rfd, _, e := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, uintptr(unsafe.Pointer(&attr)), p.Size, 0)
	if e != 0 {
		return -1, fmt.Errorf("create_ruleset: %w", e)
	}
	ok = false
	defer func() {
		if !ok {
			unix.Close(int(rfd))
		}
	}()
	for _, r := range p.Rules {
		fd, err := unix.Open(r.Path, unix.O_PATH|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", r.Path, err)
		}
		var st unix.Stat_t
		access := r.Access
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			access &= p.FileMask // only file rights apply to a file
		}
		pb := unix.LandlockPathBeneathAttr{Allowed_access: access, Parent_fd: int32(fd)}
		_, _, e := unix.Syscall6(unix.SYS_LANDLOCK_ADD_RULE, rfd, unix.LANDLOCK_RULE_PATH_BENEATH, uintptr(unsafe.Pointer(&pb)), 0, 0, 0)
		unix.Close(fd)
		if e != 0 {
			return -1, fmt.Errorf("add_rule %s: %w", r.Path, e)
		}
	}
	ok = true
	return int(rfd), nil
}

// dataPipe returns the read end (close-on-exec) of a pipe holding data
// (at most a pipe's capacity).
func dataPipe(data []byte) (int, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	_, err := unix.Write(p[1], data)
	unix.Close(p[1])
	if err != nil {
		unix.Close(p[0])
		return 0, err
	}
	return p[0], nil
}

// filterPipe returns the read end (close-on-exec) of a pipe holding
// prog as raw struct sock_filter entries.
func filterPipe(prog []BPF) (int, error) {
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return dataPipe(unsafe.Slice((*byte)(unsafe.Pointer(&filter[0])), len(filter)*int(unsafe.Sizeof(filter[0]))))
}

// installSeccomp installs prog on this thread.
//
// Preconditions: the calling goroutine is locked to its OS thread, and
// no_new_privs is set.
func installSeccomp(prog []BPF) error {
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	if err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, uintptr(unsafe.Pointer(&fprog)), 0, 0); err != nil {
		return err
	}
	runtime.KeepAlive(filter)
	return nil
}
