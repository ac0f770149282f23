//go:build linux

package linux

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// Probe checks which features the linux backend needs this host has. It
// starts short-lived child processes (/bin/true) in new namespaces.
func Probe() Report {
	var r Report
	add := func(f Feature) { r.Features = append(r.Features, f) }
	root := os.Geteuid() == 0
	add(Feature{Name: FeatureRoot, OK: root, Detail: fmt.Sprintf("euid %d", os.Geteuid()),
		Fix: "run as root for a separate uid range per sandbox (without it the agent is uid 0 of its own namespace, mapped to the server's uid)"})

	userErr := tryClone(syscall.CLONE_NEWUSER, root)
	add(feature(FeatureUserNS, userErr, "sysctl -w user.max_user_namespaces=15000 (and kernel.unprivileged_userns_clone=1 or kernel.apparmor_restrict_unprivileged_userns=0 where those exist)"))
	for _, ns := range []struct {
		name string
		flag uintptr
		fix  string
	}{
		{FeatureMountNS, syscall.CLONE_NEWNS, "a kernel with CONFIG_NAMESPACES; in a container, run it with --privileged or a seccomp profile allowing unshare/mount"},
		{FeaturePIDNS, syscall.CLONE_NEWPID, "a kernel with CONFIG_PID_NS"},
		{FeatureNetNS, syscall.CLONE_NEWNET, "a kernel with CONFIG_NET_NS"},
		{FeatureIPCNS, syscall.CLONE_NEWIPC, "a kernel with CONFIG_IPC_NS"},
		{FeatureUTSNS, syscall.CLONE_NEWUTS, "a kernel with CONFIG_UTS_NS"},
	} {
		err := userErr
		if err == nil {
			err = tryClone(syscall.CLONE_NEWUSER|ns.flag, root)
		}
		add(feature(ns.name, err, ns.fix))
	}
	if root {
		add(Feature{Name: FeatureIDMapping, OK: userErr == nil, Detail: fmt.Sprintf("host ids %#x+%d", HostIDBase, IDRange),
			Fix: "user namespaces are needed to map a uid range"})
	}

	// seccomp: PR_GET_SECCOMP answers EINVAL without CONFIG_SECCOMP.
	mode, err := unix.PrctlRetInt(unix.PR_GET_SECCOMP, 0, 0, 0, 0)
	f := feature(FeatureSeccomp, err, "a kernel with CONFIG_SECCOMP_FILTER")
	if err == nil {
		f.Detail = fmt.Sprintf("available (this process: mode %d)", mode)
	}
	add(f)

	abi := supervisor.LandlockABI()
	f = Feature{Name: FeatureLandlock, OK: abi > 0, Detail: fmt.Sprintf("ABI %d", abi),
		Fix: "boot with lsm=landlock,... (CONFIG_SECURITY_LANDLOCK); the sandbox runs without it, best effort"}
	if abi == 0 {
		f.Detail = "not enabled"
	}
	add(f)

	// The new mount API (open_tree, move_mount, mount_setattr: 5.12+).
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	add(feature(FeatureMountAPI, err, "Linux 5.12 or later"))

	add(overlayFeature())

	add(cgroupFeature())

	_, err = os.Stat("/dev/loop-control")
	add(feature(FeatureLoop, err, "modprobe loop (size-capped scratch images need it; tmpfs scratch does not)"))
	return r
}

func feature(name string, err error, fix string) Feature {
	if err != nil {
		return Feature{Name: name, Detail: err.Error(), Fix: fix}
	}
	return Feature{Name: name, OK: true, Detail: "available"}
}

// tryClone runs /bin/true in new namespaces.
func tryClone(flags uintptr, root bool) error {
	truePath, err := exec.LookPath("true")
	if err != nil {
		return errors.New("no true(1) to probe with")
	}
	cmd := exec.Command(truePath)
	cmd.SysProcAttr = sysProcAttr(root)
	cmd.SysProcAttr.Cloneflags = flags
	cmd.SysProcAttr.Setpgid = false
	if flags&syscall.CLONE_NEWUSER == 0 {
		cmd.SysProcAttr.UidMappings, cmd.SysProcAttr.GidMappings, cmd.SysProcAttr.Credential = nil, nil, nil
	}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("clone(%#x): %w", flags, err)
	}
	return nil
}

// overlayFeature says whether a sandbox can mount the overlay that makes
// the agent's directory writable: overlayfs known to the kernel, which
// mounts it in user namespaces from Linux 5.11 on.
func overlayFeature() Feature {
	f := Feature{Name: FeatureOverlay, Fix: "Linux 5.11 or later with CONFIG_OVERLAY_FS (modprobe overlay)"}
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		f.Detail = err.Error()
		return f
	}
	release := unix.ByteSliceToString(u.Release[:])
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil || major < 5 || major == 5 && minor < 11 {
		f.Detail = "Linux " + release
		return f
	}
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		f.Detail = err.Error()
		return f
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(strings.TrimPrefix(l, "nodev")) == "overlay" {
			f.OK, f.Detail = true, "available in user namespaces (Linux "+release+")"
			return f
		}
	}
	f.Detail = "overlay is not in /proc/filesystems"
	return f
}

// cgroupFeature says which cgroup hierarchy the host has.
func cgroupFeature() Feature {
	f := Feature{Name: FeatureCgroups, Fix: "mount cgroup2 on /sys/fs/cgroup (systemd.unified_cgroup_hierarchy=1) and delegate a subtree to runagent"}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		f.Detail = err.Error()
		return f
	}
	switch st.Type {
	case unix.CGROUP2_SUPER_MAGIC:
		f.OK, f.Detail = true, "cgroup v2 (unified)"
	case unix.TMPFS_MAGIC:
		var st2 unix.Statfs_t
		if unix.Statfs("/sys/fs/cgroup/unified", &st2) == nil && st2.Type == unix.CGROUP2_SUPER_MAGIC {
			f.OK, f.Detail = true, "cgroup v1 with a v2 hierarchy at /sys/fs/cgroup/unified (hybrid)"
		} else {
			f.OK, f.Detail = true, "cgroup v1"
		}
		if b, err := os.ReadFile("/proc/self/cgroup"); err == nil && !strings.Contains(string(b), "pids") {
			f.Detail += "; no pids controller"
		}
	default:
		f.Detail = fmt.Sprintf("unknown file system %#x at /sys/fs/cgroup", st.Type)
	}
	return f
}
