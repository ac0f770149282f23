// Package process is the "process" sandbox backend: each guest is a plain
// child process — the supervisor (the runagent binary's hidden
// "__supervisor" subcommand) and under it the language shim — in a process
// group of its own. There is no isolation beyond that and a minimal
// environment; it exists for development on hosts where the linux backend
// (namespaces, cgroups, seccomp, landlock) cannot run.
//
// What a sandbox gets:
//   - fd 3 (supervisor.ControlFD): one end of a socketpair(AF_UNIX,
//     SOCK_STREAM), the control channel; the host keeps the other end
//     (Conn, a net.Conn).
//   - stdin /dev/null; stdout and stderr share one pipe whose output is
//     kept in a buffer of Spec.LogLimit bytes (default 64 KiB) holding the
//     TAIL of the output, since that is where a traceback is; Exit.Truncated
//     says whether anything was dropped.
//   - the environment PATH (the host's), HOME and TMPDIR (a fresh private
//     directory, removed by Wait), LANG=C.UTF-8, PYTHONDONTWRITEBYTECODE=1,
//     PYTHONUNBUFFERED=1, then Spec.Env, which overrides them, then
//     RUNAGENT_OUT_DIR=Spec.OutDir when there is one. Nothing else of the
//     host's environment.
//   - a copy of Spec.AgentDir, made at Start in a fresh private directory
//     (symbolic links copied as links, files with mode 0666 plus the
//     source's execute bits, before umask) and removed by Wait; it is the
//     working directory and the guest's agent directory (GuestDirs). So
//     the agent may write beside its code — memory.sqlite, say — without
//     changing the host's copy, and what it writes vanishes with the
//     sandbox, as under the linux backend's overlay. The copy costs time
//     and disk in proportion to the code's size at every start, and
//     nothing caps what the agent writes (nor stops it from writing
//     anywhere else the server's user may).
//   - Spec.EnvDir and Spec.OutDir at their host paths, as they are: the
//     environment is not made read-only, and files written to the output
//     directory belong to the server's user.
//   - each of Spec.Mounts as a symbolic link to its host directory, at its
//     guest path mapped into the copy of the code (below /agent) or the
//     home directory (below /tmp), replacing what the copy has there.
//     Nothing isolates it: the guest sees the link and where it leads,
//     may follow it anywhere else, and writes as the server's user; Wait
//     removes the link, not the directory. A bind mount would need
//     privilege and confine nothing more in this backend.
//
// Kill sends SIGKILL to the whole process group. Wait waits for the
// supervisor to exit, then kills whatever is left in its group (an agent's
// background processes) before reaping it — the zombie supervisor keeps the
// group id from being reused until then — and collects the logs. A process
// that leaves the group (setsid) escapes both; only the linux backend's PID
// namespace contains those. Wait must be called for every started sandbox:
// it releases the descriptors, the log reader, the home directory and the
// copy of the code.
package process
