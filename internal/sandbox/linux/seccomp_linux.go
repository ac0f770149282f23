//go:build linux

package linux

import (
	"fmt"
	"slices"
	"strings"

	seccomp "github.com/elastic/go-seccomp-bpf"
	"github.com/elastic/go-seccomp-bpf/arch"
	"golang.org/x/net/bpf"

	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// The seccomp policy is a deny list on top of the other layers (the agent
// already has no capabilities, so most of these fail anyway): default
// allow; the calls below return EPERM, which Python reports as a readable
// PermissionError instead of a dead process; a system call of another
// architecture (the 32-bit ABI) kills the process, and the x32 ABI gets
// ENOSYS. clone3 gets ENOSYS, not EPERM, so the C library falls back to
// clone, whose flags — unlike clone3's — the filter can see.

// deniedSyscalls return EPERM unconditionally.
var deniedSyscalls = []string{
	// file systems and namespaces
	"mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
	"fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr",
	"open_by_handle_at", "name_to_handle_at", "quotactl", "quotactl_fd", "lookup_dcookie",
	// other processes
	"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "process_madvise", "kcmp",
	// kernel attack surface
	"bpf", "perf_event_open", "userfaultfd",
	"io_uring_setup", "io_uring_enter", "io_uring_register",
	"keyctl", "add_key", "request_key",
	// the machine
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
	"reboot", "swapon", "swapoff", "acct", "syslog", "vhangup",
	"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
	"iopl", "ioperm", "uselib", "_sysctl", "nfsservctl",
}

// Constants the filter's argument checks use.
const (
	afInet       = 2
	afInet6      = 10
	afPacket     = 17
	sockRaw      = 3
	sockNonblock = 0x800
	sockCloexec  = 0x80000
	// cloneNewAll are the CLONE_NEW* flags: NEWTIME, NEWNS, NEWCGROUP,
	// NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET.
	cloneNewAll = 0x80 | 0x20000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
	cloneThread = 0x10000
)

// Policy returns the sandbox's seccomp policy (without the architecture
// guard that Program adds).
func Policy() seccomp.Policy { return policy(false) }

// RunNamespaces are the namespaces a fork server's run unshares (user,
// mount, network, IPC, UTS and PID): ZygotePolicy allows unshare with
// exactly these flags.
const RunNamespaces = 0x10000000 | 0x00020000 | 0x40000000 | 0x08000000 | 0x04000000 | 0x20000000

// ZygotePolicy is the filter of a fork server (a template: the shim with
// the agent imported, forking a run per request): Policy, except that
// unshare is allowed with exactly RunNamespaces and mount, umount2 and
// move_mount (to attach the disk the host passes) are allowed, which a
// run needs to build its namespaces and layers before it installs Policy
// itself. What the agent's import may do beyond a run is
// therefore: create those namespaces (a user namespace of its own, where
// its capabilities reach nothing of the host's) and mount in them.
func ZygotePolicy() seccomp.Policy { return policy(true) }

func policy(zygote bool) seccomp.Policy {
	eq := func(arg uint32, v uint64) seccomp.Condition {
		return seccomp.Condition{Argument: arg, Operation: seccomp.Equal, Value: v}
	}
	var conds []seccomp.NameWithConditions
	// personality: only the default persona (0) and the query (0xffffffff).
	conds = append(conds, seccomp.NameWithConditions{Name: "personality", Conditions: seccomp.ArgumentConditions{
		{Argument: 0, Operation: seccomp.NotEqual, Value: 0},
		{Argument: 0, Operation: seccomp.NotEqual, Value: 0xffffffff},
	}})
	// socket: no AF_PACKET at all, no SOCK_RAW for IPv4 and IPv6.
	conds = append(conds, seccomp.NameWithConditions{Name: "socket", Conditions: seccomp.ArgumentConditions{eq(0, afPacket)}})
	for _, fam := range []uint64{afInet, afInet6} {
		for _, fl := range []uint64{0, sockNonblock, sockCloexec, sockNonblock | sockCloexec} {
			conds = append(conds, seccomp.NameWithConditions{Name: "socket", Conditions: seccomp.ArgumentConditions{eq(0, fam), eq(1, sockRaw|fl)}})
		}
	}
	// clone: no new namespaces.
	conds = append(conds, seccomp.NameWithConditions{Name: "clone", Conditions: seccomp.ArgumentConditions{
		{Argument: 0, Operation: seccomp.BitsSet, Value: cloneNewAll},
	}})
	denied := deniedSyscalls
	if zygote {
		denied = slices.DeleteFunc(slices.Clone(denied), func(n string) bool {
			return n == "mount" || n == "umount2" || n == "unshare" || n == "move_mount"
		})
		conds = append(conds, seccomp.NameWithConditions{Name: "unshare", Conditions: seccomp.ArgumentConditions{
			{Argument: 0, Operation: seccomp.NotEqual, Value: RunNamespaces},
		}})
	}
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: denied, NamesWithCondtions: conds},
			{Action: seccomp.ActionErrno | seccomp.Action(enosys), Names: []string{"clone3"}},
		},
	}
}

// NoProcessCreationPolicy is the filter for Limits.NoProcessCreation, to
// be installed (stacked) by the shim right before the agent's code runs:
// fork, vfork, execve, execveat and clone without CLONE_THREAD return
// EPERM; threads still work.
func NoProcessCreationPolicy() seccomp.Policy {
	return seccomp.Policy{
		DefaultAction: seccomp.ActionAllow,
		Syscalls: []seccomp.SyscallGroup{
			{Action: seccomp.ActionErrno, Names: []string{"fork", "vfork", "execve", "execveat"},
				NamesWithCondtions: []seccomp.NameWithConditions{{Name: "clone", Conditions: seccomp.ArgumentConditions{
					{Argument: 0, Operation: seccomp.BitsNotSet, Value: cloneThread},
				}}}},
			{Action: seccomp.ActionErrno | seccomp.Action(enosys), Names: []string{"clone3"}},
		},
	}
}

// enosys is ENOSYS on every Linux architecture Go supports.
const enosys = 38

// Offsets in struct seccomp_data.
const (
	seccompArchOffset = 4
	retKillProcess    = 0x80000000 // SECCOMP_RET_KILL_PROCESS
)

// Program assembles p for the running architecture, behind a guard that
// kills the process on a system call of any other architecture
// (go-seccomp-bpf on its own lets those through to the default action).
func Program(p seccomp.Policy) ([]bpf.Instruction, error) {
	info, err := arch.GetInfo("")
	if err != nil {
		return nil, err
	}
	body, err := p.Assemble()
	if err != nil {
		return nil, fmt.Errorf("assembling the seccomp policy: %w", err)
	}
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: seccompArchOffset, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(info.ID), SkipTrue: 1},
		bpf.RetConstant{Val: retKillProcess},
	}
	return append(prog, body...), nil
}

// raw turns instructions into the supervisor's wire form.
func raw(prog []bpf.Instruction) ([]supervisor.BPF, error) {
	r, err := bpf.Assemble(prog)
	if err != nil {
		return nil, err
	}
	out := make([]supervisor.BPF, len(r))
	for i, in := range r {
		out[i] = supervisor.BPF{Code: in.Op, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return out, nil
}

// Dump renders a program one instruction a line, for golden files.
func Dump(prog []bpf.Instruction) string {
	var b strings.Builder
	for i, in := range prog {
		fmt.Fprintf(&b, "%3d  %v\n", i, in)
	}
	return b.String()
}
