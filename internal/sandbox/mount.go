package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Mount is a host directory shown read-write to one sandbox's guest, for
// state that outlives the sandbox (an agent's persistent memory). What
// the guest writes under Guest goes to Host, and nothing else of the
// sandbox's does; a sandbox without the Mount sees nothing of it.
//
// The linux backend binds Host at Guest nosuid, nodev and noexec, over
// the agent's writable layer, and the guest can neither unmount nor
// remount it. When the server is root it first chowns Host itself (not
// what is in it) to the sandbox's agent uid and gid on the host
// (linux.HostIDBase+linux.AgentUID, as for Spec.OutDir), and the files
// the guest writes there belong to that id: whoever fills Host for the
// guest must give it that owner, or make it writable by it. The process
// backend, which isolates nothing, makes Guest a symbolic link to Host.
type Mount struct {
	// Host is an existing host directory (absolute, clean, not a
	// symbolic link). Only the directory's own mount is shown: file
	// systems mounted below it are not.
	Host string
	// Guest is where the guest sees it: an absolute, clean path strictly
	// below GuestAgentDir (the agent's working directory) or GuestHomeDir
	// (its HOME), e.g. "/agent/memory".
	Guest string
}

// The guest directories a Mount's Guest may lie in, as the linux backend
// shows them (the process backend maps them to its copy of the agent's
// code and its home directory).
const (
	GuestAgentDir = "/agent" // the agent's code and working directory
	GuestHomeDir  = "/tmp"   // the guest's HOME and TMPDIR
)

// MaxMounts bounds the Mounts of one sandbox (each is a descriptor in the
// messages that set it up).
const MaxMounts = 16

// maxGuestPath bounds a Mount's Guest path.
const maxGuestPath = 1024

// CheckMounts checks ms before a backend uses them: each Guest a clean
// absolute path strictly below GuestAgentDir or GuestHomeDir, none
// inside another, each Host an absolute path of an existing directory
// that is not a symbolic link. Its errors say which mount is wrong.
func CheckMounts(ms []Mount) error {
	if len(ms) > MaxMounts {
		return fmt.Errorf("%d mounts for one sandbox; at most %d are allowed", len(ms), MaxMounts)
	}
	for i, m := range ms {
		if err := checkGuestPath(m.Guest); err != nil {
			return fmt.Errorf("mount %d: %w", i, err)
		}
		for _, o := range ms[:i] {
			if within(m.Guest, o.Guest) || within(o.Guest, m.Guest) {
				return fmt.Errorf("mount %d: guest path %s overlaps %s; give each mount a directory of its own", i, m.Guest, o.Guest)
			}
		}
		if err := checkHostDir(m.Host); err != nil {
			return fmt.Errorf("mount %d: %w", i, err)
		}
	}
	return nil
}

// checkGuestPath checks one Mount's Guest path.
func checkGuestPath(g string) error {
	switch {
	case g == "":
		return errors.New("no guest path; name where the sandbox should see the directory, e.g. /agent/memory")
	case len(g) > maxGuestPath:
		return fmt.Errorf("guest path of %d bytes; at most %d are allowed", len(g), maxGuestPath)
	case strings.ContainsRune(g, 0):
		return errors.New("guest path contains a NUL byte")
	case !path.IsAbs(g):
		return fmt.Errorf("guest path %q is not absolute; write it under %s or %s", g, GuestAgentDir, GuestHomeDir)
	case path.Clean(g) != g:
		return fmt.Errorf("guest path %q is not clean (no \"..\", \".\", \"//\" or trailing \"/\"); write it as %q", g, path.Clean(g))
	}
	if !strings.HasPrefix(g, GuestAgentDir+"/") && !strings.HasPrefix(g, GuestHomeDir+"/") {
		return fmt.Errorf("guest path %s is not below %s or %s, where the agent may keep its state", g, GuestAgentDir, GuestHomeDir)
	}
	return nil
}

// within reports whether the clean path p is dir or below it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// checkHostDir checks one Mount's Host path.
func checkHostDir(h string) error {
	if h == "" || !filepath.IsAbs(h) || filepath.Clean(h) != h || strings.ContainsRune(h, 0) {
		return fmt.Errorf("host path %q is not a clean absolute path", h)
	}
	fi, err := os.Lstat(h)
	if err != nil {
		return fmt.Errorf("host directory of the mount: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("host path %s is not a directory (a symbolic link is not followed)", h)
	}
	return nil
}
