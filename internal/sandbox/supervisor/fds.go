package supervisor

import (
	"os"
	"strconv"
)

// The descriptors a backend hands the supervisor, and the supervisor the
// shim, by number. They are the contract between the parent (packages
// internal/sandbox/linux and internal/sandbox/process), this package and
// the shim (guest/python/shim.py), and are named only here; a parent
// builds its exec.Cmd.ExtraFiles with Files.ExtraFiles, so it cannot put
// one at the wrong number.
//
// The supervisor's, both modes:
//
//	0              /dev/null
//	1, 2           the log pipe (stdout and stderr share it)
//	ControlFD      the control channel, a unix stream socket, which it
//	               passes on to the shim and never reads or writes
//
// and in sandbox mode (FlagSandbox) also, all set by the linux backend:
//
//	ConfigFD       the SandboxConfig: a unix stream socket carrying it as
//	               JSON to end-of-file, with the detached mounts it names
//	               attached (SCM_RIGHTS; see SandboxConfig)
//	SyncFD         the read end of the sync pipe: one byte means "go on"
//	               (the parent has put the supervisor in its cgroup, or
//	               set the limits of the one it waits in); end-of-file
//	               means "give up"
//	ExeFD          the runagent executable (O_PATH), which the parent
//	               execs as ExePath
//
// The shim (Python) gets, in either mode, only the following; the sandbox
// supervisor marks every descriptor past ControlFD close-on-exec once it
// has its configuration.
//
//	0              /dev/null
//	1, 2           the log pipe
//	ControlFD      the control channel, where shim.py reads it
//	ShimSeccompFD  the process-creation filter, only when
//	               ExecConfig.ShimSeccomp is set; ShimSeccompEnv names it
//
// or, a fork server's (ExecConfig.Zygote; ZygoteEnv names them):
//
//	ZygoteSeccompFD   a pipe holding each run's seccomp filter
//	ZygoteLandlockFD  a pipe holding each run's landlock plan (JSON),
//	                  when the kernel has landlock
const (
	ControlFD = 3
	ConfigFD  = 4
	SyncFD    = 5
	ExeFD     = 6

	// ShimSeccompFD is a descriptor of the shim's, not the supervisor's
	// (which has ConfigFD there): the one after the control channel.
	ShimSeccompFD  = ControlFD + 1
	ShimSeccompEnv = "RUNAGENT_SECCOMP_FD"

	// A fork server's, in place of ShimSeccompFD.
	ZygoteSeccompFD  = ControlFD + 1
	ZygoteLandlockFD = ControlFD + 2
)

// ExePath is the path a parent execs the supervisor by when it passes the
// executable as ExeFD. exec resolves it in the child, once its descriptors
// are in place, so it names the child's ExeFD: the sandbox's root is a
// foreign uid that may not search the directories leading to the binary.
func ExePath() string { return "/proc/self/fd/" + strconv.Itoa(ExeFD) }

// Files are the descriptors a parent hands the supervisor beyond 0–2:
// sandbox mode needs all of them, the plain mode (Args) only Control.
type Files struct {
	Control *os.File // becomes ControlFD
	Config  *os.File // becomes ConfigFD
	Sync    *os.File // becomes SyncFD
	Exe     *os.File // becomes ExeFD
}

// ExtraFiles returns f as exec.Cmd.ExtraFiles, whose entry i becomes the
// child's descriptor 3+i: each file at its number, and nothing past the
// last one set (one unset before it is closed in the child).
func (f Files) ExtraFiles() []*os.File {
	const first = 3 // the descriptor of ExtraFiles[0]
	files := []*os.File{
		ControlFD - first: f.Control,
		ConfigFD - first:  f.Config,
		SyncFD - first:    f.Sync,
		ExeFD - first:     f.Exe,
	}
	for len(files) > 0 && files[len(files)-1] == nil {
		files = files[:len(files)-1]
	}
	return files
}
