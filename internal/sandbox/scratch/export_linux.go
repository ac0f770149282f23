//go:build linux

package scratch

import (
	"os"
	"time"
)

// The loop and mount steps below are exported for other loop-mounted file
// systems (internal/memory's persistent stores), so that attaching,
// detaching and unmounting are written once.

// AttachLoop binds image to a free loop device with LO_FLAGS_AUTOCLEAR and
// returns the device's path and an open descriptor of it. Keep the
// descriptor open until the device is mounted (the kernel detaches an
// AUTOCLEAR device on its last close while it is not mounted), then close
// it.
func AttachLoop(image string) (dev string, f *os.File, err error) { return attachLoop(image) }

// DetachLoop waits up to wait for the AUTOCLEAR device dev to be freed
// from image, then detaches it.
func DetachLoop(dev, image string, wait time.Duration) error { return detachLoop(dev, image, wait) }

// Unmount unmounts dir, and whatever is stacked on it, detaching it
// lazily if busy (then lazy is true). Not mounted is fine.
func Unmount(dir string) (lazy bool, err error) { return unmount(dir) }

// MountsUnder lists the mount points below prefix, deepest first.
func MountsUnder(prefix string) []string { return mountsUnder(prefix) }

// LoopBackingFiles maps each bound loop device (/dev/loopN) to the path
// of its backing file.
func LoopBackingFiles() map[string]string { return loopBackingFiles() }
