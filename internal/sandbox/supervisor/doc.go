// Package supervisor is the body of runagent's hidden "__supervisor"
// subcommand: the first process of every sandbox. It starts the language
// shim, relays signals to it, and exits with its status.
//
// Command line (built by Args, with which the process backend starts it;
// the linux backend starts it in sandbox mode instead, below):
//
//	runagent __supervisor -python PATH -shim PATH
//
//	-python  the interpreter; a bare name is looked up in PATH
//	-shim    the shim script (guest/python's shim-<hash>.py)
//
// It runs "PYTHON -I -B -u SHIM" with stdin from /dev/null, stdout and
// stderr inherited, and the control channel — its own fd 3 (ControlFD),
// which it never reads or writes — passed through as the shim's fd 3 and
// then closed in the supervisor, so the host sees end-of-file as soon as
// the shim exits. fds.go names every descriptor a parent hands the
// supervisor and the supervisor the shim.
// -I keeps PYTHON* variables, the user's site directory and the working
// directory out of sys.path; -B and -u replace PYTHONDONTWRITEBYTECODE and
// PYTHONUNBUFFERED, which -I ignores.
//
// SIGTERM, SIGINT and SIGHUP are forwarded to the shim. The supervisor
// exits with the shim's exit status, or 128+N if signal N killed it; with
// 2 for a bad command line and 127 when the interpreter cannot be started.
//
// When it runs as PID 1 (inside a new PID namespace) it also reaps every
// orphan re-parented to it, and exits when the shim does.
//
// With the single argument --sandbox it is instead PID 1 of a linux-backend
// sandbox: it builds the sandbox's root (the agent's code under a
// writable overlay on the scratch area, the environment and output
// directories), then restricts a spare thread of its own and fork-execs
// the agent's Python from it; it reads its configuration, and the
// detached mounts of the host objects to bind, from a socket on ConfigFD
// (see sandbox.go and internal/sandbox/linux). In egress mode it relays
// 127.0.0.1:3128 to the host's egress proxy socket, and writes each
// refusal by the proxy as one line to stderr, the invocation's log
// ("runagent egress: 403 denied; reason=…"; egress.RefusalWatch). With
// the single argument --hold it waits for end-of-file on stdin and exits
// 0 (the linux backend holds a user namespace with it).
//
// Main programs and test binaries that serve as the sandbox executable call
// MaybeRun first thing in main or TestMain.
package supervisor
