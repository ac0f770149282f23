//go:build linux

package linux

import (
	"fmt"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// codeIDMap returns a user namespace, as a descriptor the backend keeps
// until Close, that maps the uid and gid owning dir to the host ids the
// sandbox's agent runs as (HostIDBase+AgentUID, +AgentGID). Mounting the
// agent's code idmapped with it makes the code's files show as the
// agent's inside the sandbox, so the agent may change them (in its
// overlay, never on the host) as it may the files it creates; without it
// they belong to an unmapped owner (nobody), and the agent may add files
// beside them but not change them. 0 means no namespace could be made;
// the caller mounts the code without an idmap. Files owned by other ids
// than dir's owner show as nobody either way.
func (b *Backend) codeIDMap(dir string) int {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return 0
	}
	key := [2]uint32{st.Uid, st.Gid}
	b.idmapMu.Lock()
	defer b.idmapMu.Unlock()
	if b.idmapClosed {
		return 0
	}
	if fd, ok := b.idmaps[key]; ok {
		return fd
	}
	fd, err := b.newIDMap(st.Uid, st.Gid)
	if err != nil {
		return 0
	}
	if b.idmaps == nil {
		b.idmaps = map[[2]uint32]int{}
	}
	b.idmaps[key] = fd
	return fd
}

// newIDMap makes a user namespace mapping uid and gid to the agent's host
// ids: a process of this binary in hold mode, started in a new user
// namespace with those maps, keeps it alive until its descriptor is
// opened, and is then killed.
func (b *Backend) newIDMap(uid, gid uint32) (int, error) {
	cmd := exec.Command(b.cfg.Exe, supervisor.HoldArgs()...)
	cmd.Args[0] = "runagent"
	cmd.Dir = "/"
	cmd.Env = append(environ(nil, false), b.cfg.PrestartEnv...)
	if _, err := cmd.StdinPipe(); err != nil { // held open: the process waits
		return 0, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: int(uid), HostID: HostIDBase + AgentUID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: int(gid), HostID: HostIDBase + AgentGID, Size: 1}},
	}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting a user namespace for the code's idmap: %w", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", cmd.Process.Pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("opening the user namespace for the code's idmap: %w", err)
	}
	return fd, nil
}

// closeIDMaps closes the user namespaces codeIDMap made.
func (b *Backend) closeIDMaps() {
	b.idmapMu.Lock()
	defer b.idmapMu.Unlock()
	for _, fd := range b.idmaps {
		unix.Close(fd)
	}
	b.idmaps = nil
	b.idmapClosed = true
}
