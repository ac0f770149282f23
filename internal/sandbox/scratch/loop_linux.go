//go:build linux

package scratch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

const loopMajor = 7

// attachLoop binds image to a free loop device with LO_FLAGS_AUTOCLEAR and
// returns the device's path and an open descriptor of it. The caller must
// keep the descriptor open until the device is mounted: with AUTOCLEAR the
// kernel detaches the device on its last close while it is not mounted.
func attachLoop(image string) (string, *os.File, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("scratch: %w", err)
	}
	defer ctl.Close()
	img, err := os.OpenFile(image, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("scratch: %w", err)
	}
	defer img.Close()
	// Another attach (ours or another program's) can take the device
	// between LOOP_CTL_GET_FREE and LOOP_CONFIGURE: then it is EBUSY and
	// we ask again.
	for attempt := 0; ; attempt++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("scratch: LOOP_CTL_GET_FREE: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		f, err := openLoop(dev, n)
		if err != nil {
			return "", nil, err
		}
		err = configure(f, img, image)
		if err == nil {
			return dev, f, nil
		}
		f.Close()
		if !errors.Is(err, unix.EBUSY) || attempt == 100 {
			return "", nil, fmt.Errorf("scratch: attach %s to %s: %w", image, dev, err)
		}
	}
}

// openLoop opens /dev/loopN, creating the node if there is no devtmpfs
// (or udev) to do it.
func openLoop(dev string, n int) (*os.File, error) {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, os.ErrNotExist) {
		if err := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(loopMajor, uint32(n)))); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("scratch: create %s: %w", dev, err)
		}
		f, err = os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	return f, nil
}

// configure binds img to the loop device f: LOOP_CONFIGURE (Linux 5.8+),
// else LOOP_SET_FD then LOOP_SET_STATUS64.
func configure(f, img *os.File, name string) error {
	var info unix.LoopInfo64
	info.Flags = unix.LO_FLAGS_AUTOCLEAR
	copy(info.File_name[:len(info.File_name)-1], name)
	err := unix.IoctlLoopConfigure(int(f.Fd()), &unix.LoopConfig{Fd: uint32(img.Fd()), Info: info})
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOTTY) {
		return err
	}
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_SET_FD, int(img.Fd())); err != nil {
		return err
	}
	if err := unix.IoctlLoopSetStatus64(int(f.Fd()), &info); err != nil {
		unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0)
		return err
	}
	return nil
}

// loopBackingFiles maps each bound loop device (/dev/loopN) to the path
// of its backing file, without a " (deleted)" suffix.
func loopBackingFiles() map[string]string {
	out := map[string]string{}
	paths, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // detached meanwhile
		}
		name := filepath.Base(filepath.Dir(filepath.Dir(p)))
		out["/dev/"+name] = strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)")
	}
	return out
}

// loopBoundTo says whether dev is still bound to image (a freed device
// can be bound again at once by a concurrent Prepare).
func loopBoundTo(dev, image string) bool {
	b, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(dev), "loop", "backing_file"))
	return err == nil && strings.TrimSuffix(strings.TrimSpace(string(b)), " (deleted)") == image
}

// detachLoop waits up to wait for the AUTOCLEAR device dev to be freed
// from image, then detaches it with LOOP_CLR_FD (which, for a device
// still open elsewhere, only marks it AUTOCLEAR).
func detachLoop(dev, image string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for sleep := 50 * time.Microsecond; loopBoundTo(dev, image) && time.Now().Before(deadline); sleep = min(2*sleep, 10*time.Millisecond) {
		time.Sleep(sleep)
	}
	if !loopBoundTo(dev, image) {
		return nil
	}
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	defer f.Close()
	if err := unix.IoctlSetInt(int(f.Fd()), unix.LOOP_CLR_FD, 0); err != nil && !errors.Is(err, unix.ENXIO) {
		return fmt.Errorf("scratch: LOOP_CLR_FD %s: %w", dev, err)
	}
	return nil
}
