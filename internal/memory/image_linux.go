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
	mkfs string
}

// findTools looks up mkfs.ext4.
func findTools() (tools, error) {
	mkfs, err := findTool("mkfs.ext4")
	return tools{mkfs: mkfs}, err
}

// findTool looks up an e2fsprogs program on PATH or in the sbin folders.
func findTool(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return filepath.Join(dir, name), nil
		}
	}
	return "", fmt.Errorf("memory: %s not found: install e2fsprogs (apt-get install e2fsprogs, dnf install e2fsprogs, apk add e2fsprogs)", name)
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
	args := []string{"-q", "-F", "-b", fmt.Sprint(blockSize), "-m", "0", "-N", fmt.Sprint(files), "-J", "size=4",
		"-O", "encrypt", "-E", "nodiscard", "-L", "runagent-memory", image}
	if out, err := exec.Command(t.mkfs, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("memory: mkfs.ext4 %s: %w: %s", image, err, bytes.TrimSpace(out))
	}
	return nil
}

// growOnline makes the image mounted at mnt through dev size bytes: the
// file is extended, the loop device told (LOOP_SET_CAPACITY), and ext4
// grown while mounted (EXT4_IOC_RESIZE_FS, what resize2fs does on a
// mounted file system). Online, it is safe even where another mount
// namespace still holds the same file system. The new block groups bring
// their inodes, so the file cap grows in proportion.
func growOnline(image, mnt, dev string, size int64) error {
	if err := os.Truncate(image, size); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	d, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	err = unix.IoctlSetInt(int(d.Fd()), unix.LOOP_SET_CAPACITY, 0)
	d.Close()
	if err != nil {
		return fmt.Errorf("memory: LOOP_SET_CAPACITY %s: %w", dev, err)
	}
	f, err := os.Open(mnt)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer f.Close()
	blocks := uint64(size / blockSize)
	if err := ioctlResize(int(f.Fd()), &blocks); err != nil {
		return fmt.Errorf("memory: grow the file system at %s to %d blocks (EXT4_IOC_RESIZE_FS): %w", mnt, blocks, err)
	}
	return nil
}

// growOffline makes the unmounted image size bytes with e2fsprogs: the
// file is extended, checked (resize2fs insists) and resized. The caller
// makes sure no loop device holds the image (boundLoop).
func growOffline(image string, size int64) error {
	if err := os.Truncate(image, size); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	e2fsck, err := findTool("e2fsck")
	if err != nil {
		return err
	}
	resize2fs, err := findTool("resize2fs")
	if err != nil {
		return err
	}
	// e2fsck exits 1 when it corrected something: the file system is
	// then fine.
	if out, err := exec.Command(e2fsck, "-f", "-y", image).CombinedOutput(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			return fmt.Errorf("memory: e2fsck %s: %w: %s", image, err, bytes.TrimSpace(out))
		}
	}
	if out, err := exec.Command(resize2fs, image).CombinedOutput(); err != nil {
		return fmt.Errorf("memory: resize2fs %s: %w: %s", image, err, bytes.TrimSpace(out))
	}
	return nil
}

// blockSize is the stores' block size: fscrypt needs the page size.
const blockSize = 4096

// mountImage mounts image at mnt and returns its loop device. If a loop
// device is still bound to this very file (same device and inode) — its
// file system lives on in the mount namespace of a sandbox made while it
// was mounted here, though unmounted here — that device is mounted again,
// which gives the same file system: attaching the file to a second device
// would run two file systems on one image and corrupt it. Otherwise the
// image is attached to a free device.
func mountImage(image, mnt string) (string, error) {
	if dev := boundLoop(image); dev != "" {
		if err := unix.Mount(dev, mnt, "ext4", mountFlags, ""); err == nil {
			// Freed and bound to another file just before the mount? The
			// mount holds the device now: check it is still ours.
			if boundLoop(image) == dev {
				return dev, nil
			}
			scratch.Unmount(mnt)
		}
	}
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

// boundLoop returns the loop device bound to image's very file (same
// device and inode: a deleted image's device is not its successor's), or
// "".
func boundLoop(image string) string {
	var st unix.Stat_t
	if err := unix.Stat(image, &st); err != nil {
		return ""
	}
	for dev, file := range scratch.LoopBackingFiles() {
		if file != image {
			continue
		}
		f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
		f.Close()
		if err == nil && info.Inode == st.Ino && info.Device == st.Dev {
			return dev
		}
	}
	return ""
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
