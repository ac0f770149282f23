//go:build linux

package memory

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/sandbox/scratch"
)

// Every store is mounted so that nothing in it can be a device, gain
// privileges or be executed from it: it holds data, not programs.
const mountFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_NOATIME

// tools are the e2fsprogs programs the Manager runs.
type tools struct {
	mkfs, e2fsck, resize2fs string
}

// findTools looks up mkfs.ext4, e2fsck and resize2fs.
func findTools() (tools, error) {
	var t tools
	for _, p := range []struct {
		name string
		dst  *string
	}{{"mkfs.ext4", &t.mkfs}, {"e2fsck", &t.e2fsck}, {"resize2fs", &t.resize2fs}} {
		path, err := exec.LookPath(p.name)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/sbin"} {
				if _, serr := os.Stat(filepath.Join(dir, p.name)); serr == nil {
					path, err = filepath.Join(dir, p.name), nil
					break
				}
			}
		}
		if err != nil {
			return t, fmt.Errorf("memory: %s not found: install e2fsprogs (apt-get install e2fsprogs, dnf install e2fsprogs, apk add e2fsprogs)", p.name)
		}
		*p.dst = path
	}
	return t, nil
}

// format makes image a sparse ext4 file system of size bytes: 4 KiB
// blocks (fscrypt needs the page size), the encrypt feature, at least
// files inodes (which bound the number of files), no blocks reserved
// for root (the agent may use all of it; the host never shares it), and
// a 4 MiB journal, so that a crash or kill -9 mid-run leaves a
// consistent file system (the journal is replayed at the next mount).
func (t tools) format(image string, size int64, files int) error {
	f, err := os.OpenFile(image, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	args := []string{"-q", "-F", "-b", "4096", "-m", "0", "-N", fmt.Sprint(files), "-J", "size=4",
		"-O", "encrypt", "-E", "nodiscard", "-L", "runagent-memory", image}
	if out, err := exec.Command(t.mkfs, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("memory: mkfs.ext4 %s: %w: %s", image, err, bytes.TrimSpace(out))
	}
	return nil
}

// grow makes the unmounted image size bytes: the file is extended, then
// checked (resize2fs insists) and resized. The new block groups bring
// their inodes, so the file cap grows in proportion.
func (t tools) grow(image string, size int64) error {
	if err := os.Truncate(image, size); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	// e2fsck exits 1 when it corrected something: the file system is
	// then fine.
	if out, err := exec.Command(t.e2fsck, "-f", "-y", image).CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			return fmt.Errorf("memory: e2fsck %s: %w: %s", image, err, bytes.TrimSpace(out))
		}
	}
	if out, err := exec.Command(t.resize2fs, image).CombinedOutput(); err != nil {
		return fmt.Errorf("memory: resize2fs %s: %w: %s", image, err, bytes.TrimSpace(out))
	}
	return nil
}

// mountImage attaches image to a loop device and mounts it at mnt, and
// returns the device.
func mountImage(image, mnt string) (string, error) {
	dev, lf, err := scratch.AttachLoop(image)
	if err != nil {
		return "", err
	}
	err = unix.Mount(dev, mnt, "ext4", mountFlags, "")
	lf.Close() // the mount holds the device now; on error AUTOCLEAR frees it
	if err != nil {
		scratch.DetachLoop(dev, image, time.Second)
		return "", fmt.Errorf("memory: mount %s (%s) at %s: %w", dev, image, mnt, err)
	}
	return dev, nil
}

// unmountImage unmounts mnt and frees its loop device. A file system
// still mounted elsewhere (a sandbox made while the store was mounted
// holds a copy of the mount in its namespace until it ends) or lazily
// unmounted keeps its device until its last user is gone; the device is
// then only marked to be freed (AUTOCLEAR), without waiting for it.
func unmountImage(image, mnt, dev string) error {
	lazy, err := scratch.Unmount(mnt)
	if err != nil {
		return err
	}
	if lazy || dev == "" {
		return nil
	}
	return scratch.DetachLoop(dev, image, 0)
}
