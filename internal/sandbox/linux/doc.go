// Package linux is the "linux" sandbox backend: the parent side of a
// sandbox built from kernel primitives (package supervisor's sandbox mode
// is the child side, gVisor runsc style).
//
// Start creates the per-sandbox state directory, prepares the scratch
// area (ScratchManager) and the cgroup (CgroupManager), starts the egress
// proxy socket (EgressManager) when the network mode is egress, and starts
// "runagent __supervisor --sandbox" in new user, mount, PID, network, IPC
// and UTS namespaces. The configuration (supervisor.SandboxConfig) goes
// to the child as JSON over a unix socket pair (its end is
// supervisor.ConfigFD), never argv or env. The host objects it binds (the
// agent directory, the shim, the scratch directory, the egress socket,
// and the Spec's environment and output directories) go, when the server
// is root, as detached read-only (scratch and output: read-write)
// nosuid,nodev mounts made with open_tree and mount_setattr, sent over
// the same socket with the JSON (SCM_RIGHTS), which the child attaches
// with move_mount: it needs no permission on the host paths leading to
// them. (The child still binds by path what any user may read: the
// system directories, the /etc files and the device nodes below.) The
// shim and the egress socket are not bound from their host paths but
// from a tmpfs of the sandbox's own made with fsopen/fsmount, which no
// host path leads to: the shim is copied into it, and the proxy listens
// on /proc/self/fd/N/egress.sock, N the tmpfs's descriptor, kept open
// until the sandbox is released. The supervisor itself is executed
// through an O_PATH descriptor of the binary (supervisor.ExeFD, as
// supervisor.ExePath) for the same reason; the binary is not mounted
// inside (nothing there runs it again). Unprivileged, the configuration
// names the host paths instead, and the child opens them itself before
// it builds its root (it is the paths' owner there). The child blocks on
// a sync pipe (supervisor.SyncFD) until the parent has added it to the
// cgroup, and marks every inherited descriptor past the control channel
// close-on-exec, so Python gets only 0–3, and the shim's filter
// (supervisor.ShimSeccompFD) when it has one. Package supervisor's fds.go
// names every descriptor handed over.
//
// User namespace. When the server runs as root, uids and gids 0–65535
// inside map to HostIDBase+0 … HostIDBase+65535 on the host (HostIDBase =
// 0x7f000000): even the sandbox's root is an unprivileged, unnamed host
// user. The agent runs as AgentUID:AgentGID (1000:1000) inside. All
// sandboxes share that range; they are kept apart by their namespaces,
// not by ids. Consequences: the agent and environment directories must
// be readable by "other" (o+rX) — Start refuses them otherwise — a
// scratch directory from a ScratchManager must belong to the agent's host
// uid (Prepare is told it), and Start chowns the output directory to it
// (the files the agent writes there belong to it too). The agent's code
// is mounted idmapped: a user namespace made once per owner of agent
// directories (codeIDMap, kept until Close) maps the directory's owner to
// the agent's host uid and gid, so inside the code's files are the
// agent's, and it may change them in its overlay (below); where the file
// system cannot be idmapped they show as nobody's, and the agent may add
// files beside them but not change them. When the
// server is not root, only its own uid and gid map (to 0): the agent runs
// as uid 0 of its namespace with every capability dropped, no_new_privs,
// landlock and seccomp — it still cannot act as the server's user on
// anything outside the sandbox's mounts, but RLIMIT_NPROC then counts
// against the server's user in that namespace, and files it writes to
// scratch belong to the server's uid on the host.
//
// Inside: a tmpfs root, remounted read-only after pivot_root, holding the
// host's system directories read-only (/usr, and /bin, /sbin, /lib,
// /lib64, /lib32, /libx32 where the host has them, as on the host —
// symlinks on merged-/usr Debian), a generated /etc (passwd, group,
// hosts) plus the host's ld.so.cache, localtime and ssl/certs, the shim
// (and in egress mode the proxy's socket) under /run/runagent, a minimal
// /dev (null zero full random urandom, and the fd, stdin, stdout and
// stderr links), a fresh /proc of the sandbox's PID namespace, and:
//   - /tmp, read-write: the tmp/ folder of the scratch area (a
//     ScratchManager's size-capped ext4 image, or a tmpfs of
//     min(DiskBytes, MemoryBytes)), with the owner and mode of its root;
//   - /agent, the agent's code, read-write: an overlay (mounted by the
//     sandbox's root in its user namespace, userxattr) whose lower layer
//     is the read-only code and whose upper and work directories are
//     agent/ on the scratch area, beside tmp/ and invisible to the agent.
//     So an agent writing memory.sqlite beside its code succeeds; what it
//     writes counts against the scratch size (past it: ENOSPC) and
//     vanishes with the sandbox; the host's copy is never written. Its
//     layers are assembled in a staging directory that is unmounted and
//     removed again, so /proc/self/mountinfo names them only relative to
//     it ("lowerdir=code") and no longer shows the code's host path.
//     Renaming a directory of the code fails with EXDEV (the overlay has
//     no redirect_dir in a user namespace); files and new directories
//     move freely;
//   - /env, read-only, when Spec.EnvDir is set: the agent's environment,
//     as a read-only overlay of it and an empty directory, assembled like
//     /agent's in a staging directory that is gone ("lowerdir=env:empty");
//   - /out, read-write, when Spec.OutDir is set, named by RUNAGENT_OUT_DIR;
//   - each of Spec.Mounts (sandbox.Mount, e.g. an agent's persistent
//     memory), read-write, nosuid, nodev and noexec, at its guest path
//     below /agent or /tmp: bound after /agent's overlay and /tmp are in
//     place, so it covers them there and what the agent writes below it
//     goes to the host directory, not to the scratch area. The supervisor
//     makes the missing directories on the way (the agent's) and refuses
//     a way through a symbolic link (the agent's code could hold one to
//     have the mount cover a system directory). Root: Start chowns the
//     host directory itself to the agent's host uid and gid, as /out, and
//     passes it as a detached mount (open_tree, only the directory's own
//     mount, mount_setattr nosuid,nodev,noexec). Links in the host
//     directory resolve inside the sandbox's mount namespace, like any
//     path the agent opens: none leads to the host's files.
//
// Landlock allows reading the system directories, /etc, /run/runagent,
// /proc, /dev and /env, reading and writing /tmp, /agent, /out and each
// mount, and reading and writing the device nodes of /dev.
//
// The guest's mount table (/proc/self/mountinfo) shows, for each mount,
// its root within its file system, its device and the file system's
// options. What it shows of the host: the system directories and /etc
// files under their own names (they are at the same paths inside), the
// host disk's device (e.g. /dev/vda, and its ext4 options) as their
// source, and the scratch area's loop device (/dev/loopN; its backing
// file's name is not in mountinfo) with /tmp as its root. The code, the
// environment, the shim and the egress socket show no host path (overlays
// whose options name their layers relative to a removed staging
// directory; a tmpfs "runagent" with roots "/shim-….py" and
// "/egress.sock"). One host path remains: /out's. It is a writable bind,
// and a bind mount's root is the kernel's path of its directory relative
// to its file system's root (dentry_path), which no mount option
// changes; hiding it would take an output directory on a file system of
// its own, or in the scratch area and copied out at the end. So /out
// shows the output directory's path within the file system it is on
// (with a data directory on its own file system, the path below that
// directory). Only the environment builder (internal/pyenv) gives a
// sandbox an output directory; agents' invocations have none.
// Unprivileged (no open_tree, no fsmount), the shim and the egress socket
// are bound by their host paths and show them. The agent may not mount,
// unmount or remount anything (no capabilities, and the seccomp filter
// denies the mount system calls).
// No /sys, no /etc/resolv.conf: the network namespace has only loopback,
// so there is no DNS; in egress mode the host-side proxy resolves names.
//
// Start starts the supervisor first (or takes one started ahead of
// demand, Config.Prestart), so that its runtime start overlaps the
// detached mounts, scratch area and cgroup; it then sends the
// configuration and the detached mounts over the socket, moves the
// supervisor into the cgroup (with Config.Cgroups, a prestarted one
// already waits in a cgroup of its own, whose limits Start sets) and
// only then lets it go on. Its steps are methods of a starter, named
// after what they do, sharing one undo stack: a failed Start leaves
// nothing behind.
//
// The supervisor is PID 1: it reaps, relays signals and exits with the
// agent's status; when it dies the kernel kills the whole PID namespace.
// It starts the agent without a second start of the binary: a goroutine
// locked to a spare OS thread (never the thread-group leader, and
// destroyed afterwards) sets the rlimits (per process: the supervisor
// carries them too), drops that thread to the agent's ids with empty
// capability sets, sets no_new_privs, applies landlock and the seccomp
// filter (Policy), all per-thread attributes, and fork-execs Python with
// the shim from it, which inherits them. Go runs no code of its own
// between that fork and exec beyond syscall.ForkExec's descriptor and
// directory set-up, which the filter allows.
//
// Limits.NoProcessCreation: the shim must install a second filter
// (NoProcessCreationPolicy) right before the agent's code runs; the
// supervisor hands it over in a pipe on the shim's
// supervisor.ShimSeccompFD, named by supervisor.ShimSeccompEnv. Start
// refuses such sandboxes unless Config.ShimFiltersProcesses says the
// shim does that (guest/python's does; the server sets it).
//
// A started sandbox's GuestDirs (sandbox.GuestPather) are /agent (AgentMount),
// and /env and /out when the Spec has them: the executor must send those,
// not the host paths, in the guest's init frame.
//
// Fork servers (fork_linux.go; docs/guest-protocol.md, "Fork server"):
// StartTemplate starts a sandbox as Start does whose Python imports the
// agent once and then forks a run per Template.Fork. A run has its own
// user, mount, network, IPC, UTS and PID namespaces (it is PID 1 of its
// own; there is no supervisor), its own cgroup, /tmp and /agent as
// overlays of the template's with writable layers on a tmpfs of its own,
// landlock, no capabilities, its rlimits and Policy; the host checks it
// from /proc before it sends the run's init. A run's mounts
// (sandbox.Mount) come as detached mounts (nosuid, nodev, noexec; their
// directories chowned as Start's) either with the fork frame
// (Template.Fork's), attached by the run with move_mount once its
// overlays are in place, before its landlock ruleset (the mount
// included, with /agent's rights); or late (forkedSandbox.AttachMounts,
// sandbox.Mounter: a pooled run, forked before its request), on a
// channel of the run's waiter — its parent, which holds the capabilities
// of its user namespace, under ZygotePolicy — which the run never holds.
// The waiter attaches them as the run would, once, and only until the
// host closes that channel at the run's invoke; the run's landlock
// ruleset, older, reaches them across their mount points through its
// rules on /agent and /tmp. Nothing beyond move_mount, which ZygotePolicy
// already allows. The template runs without
// landlock and under ZygotePolicy (see there). Templates serve neither
// builds (an output directory would be shared) nor no-process-creation
// agents.
package linux
