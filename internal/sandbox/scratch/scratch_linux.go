//go:build linux

package scratch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// mkfsArgs format an image fast: no journal (scratch data need not
// survive a crash), no blocks reserved for root, no resize inode, inode
// tables left uninitialised (the kernel knows from the group descriptor
// checksums which are unused; the mount option noinit_itable stops it from
// zeroing them in the background), and no discard of the fresh sparse file.
var mkfsArgs = []string{"-q", "-F", "-m", "0", "-O", "^has_journal,^resize_inode", "-E", "lazy_itable_init=1,nodiscard"}

const mountFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME

// Manager makes scratch areas under a state directory.
type Manager struct {
	stateDir string
	mkfs     string

	mu        sync.Mutex
	templates map[int64]string // formatted image per size

	// Areas prepared ahead of demand (KeepReady), by size and owner.
	keep    int
	recycle int // released areas wiped and kept ready, per size and owner (Recycle)
	ready   map[owner][]area
	filling map[owner]int
	seq     uint64
	closed  bool
	bg      sync.WaitGroup
}

// owner is what a ready area must match to serve a Prepare.
type owner struct {
	size     int64
	uid, gid int
}

type area struct {
	dir string
	rel *releaser // tears it down
}

// KeepReady makes the Manager keep n areas prepared ahead of demand for
// each size and owner that Prepare was asked for, so that Prepare only
// hands one over (the formatting copy, loop device and mount take a few
// milliseconds, and a mount can wait much longer on a busy disk). Ready
// areas are fresh and unused: one serves exactly one Prepare. Close
// releases them. n = 0 (the default) prepares every area on demand.
func (m *Manager) KeepReady(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keep = max(n, 0)
}

// Recycle makes the release of an area handed out by Prepare wipe it —
// every file and directory below its root removed, the root given back to
// its owner with mode 0700 — and keep it ready for the next Prepare of
// the same size and owner, while fewer than max(n, KeepReady) of those are
// ready, instead of unmounting and deleting it (n = 0: never): a fresh area costs a copy of the
// formatted image, a loop device and a mount (and their undoing), a wiped
// one an unlink per file the sandbox left. What a sandbox wrote is gone
// from the file system before the next one gets it (ext4 hands a file
// only blocks it has written or zeroes). An area that cannot be wiped is
// torn down.
func (m *Manager) Recycle(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.recycle = max(n, 0)
}

// New returns a Manager keeping its images and mount points under
// stateDir, which it creates. It fails, saying what is missing and how to
// fix it, unless the process is root, the loop driver is loaded and
// mkfs.ext4 is installed.
func New(stateDir string) (*Manager, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("scratch: attaching loop devices and mounting needs root: run runagent as root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return nil, fmt.Errorf("scratch: no loop device driver (/dev/loop-control): load it with modprobe loop (kernel option CONFIG_BLK_DEV_LOOP): %w", err)
	}
	mkfs, err := exec.LookPath("mkfs.ext4")
	if err != nil {
		for _, p := range []string{"/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"} {
			if _, serr := os.Stat(p); serr == nil {
				mkfs, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return nil, errors.New("scratch: mkfs.ext4 not found: install e2fsprogs (apt-get install e2fsprogs, dnf install e2fsprogs, apk add e2fsprogs)")
	}
	abs, err := filepath.Abs(stateDir)
	if err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	// The kernel reports loop backing files by their real path.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("scratch: %w", err)
	}
	return &Manager{stateDir: abs, mkfs: mkfs, templates: map[int64]string{}, ready: map[owner][]area{}, filling: map[owner]int{}}, nil
}

// StateDir is the directory holding the scratch areas.
func (m *Manager) StateDir() string { return m.stateDir }

// Prepare makes the scratch area of sandbox id: a file system of size
// bytes (DefaultSize if 0, at least MinSize) mounted nosuid,nodev at the
// returned dir, <stateDir>/<id>/scratch, whose root directory is owned by
// uid:gid with mode 0700. release unmounts it, frees its loop device and
// deletes it; it is safe to call more than once.
func (m *Manager) Prepare(id string, size int64, uid, gid int) (dir string, release func() error, err error) {
	if err := validateID(id); err != nil {
		return "", nil, err
	}
	if size <= 0 {
		size = DefaultSize
	}
	size = max(size, MinSize)
	o := owner{size, uid, gid}
	m.mu.Lock()
	if m.keep > 0 && !m.closed {
		defer m.refill(o)
		if r := m.ready[o]; len(r) > 0 {
			a := r[0]
			m.ready[o] = r[1:]
			m.mu.Unlock()
			return a.dir, m.handOut(o, a), nil
		}
	}
	m.mu.Unlock()
	dir, rel, err := m.prepare(id, o)
	if err != nil {
		return "", nil, err
	}
	return dir, m.handOut(o, area{dir, rel}), nil
}

// handOut returns the release of a, handed out for o: once, it recycles
// a (Recycle) or tears it down.
func (m *Manager) handOut(o owner, a area) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() { err = m.giveBack(o, a) })
		return err
	}
}

// giveBack wipes a and keeps it ready for o, if recycling and fewer than
// KeepReady are ready; otherwise, or if the wipe fails, tears it down.
func (m *Manager) giveBack(o owner, a area) error {
	m.mu.Lock()
	limit := max(m.recycle, m.keep)
	keep := m.recycle > 0 && !m.closed && len(m.ready[o]) < limit
	m.mu.Unlock()
	if !keep || wipe(a.dir, o.uid, o.gid) != nil {
		return a.rel.release()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || len(m.ready[o]) >= limit {
		return a.rel.release()
	}
	m.ready[o] = append(m.ready[o], a)
	return nil
}

// wipe removes everything below the root dir of an area and gives the
// root back to uid:gid with mode 0700. It follows no symbolic link.
func wipe(dir string, uid, gid int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return setupRoot(dir, uid, gid)
}

// Ready returns how many areas are prepared ahead of demand, of every
// size and owner.
func (m *Manager) Ready() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.ready {
		n += len(r)
	}
	return n
}

// refill starts preparing areas for o until KeepReady of them are ready
// or being prepared.
func (m *Manager) refill(o owner) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for !m.closed && len(m.ready[o])+m.filling[o] < m.keep {
		m.filling[o]++
		m.seq++
		id := fmt.Sprintf("ready-%d", m.seq)
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			dir, rel, err := m.prepare(id, o)
			m.mu.Lock()
			defer m.mu.Unlock()
			m.filling[o]--
			switch {
			case err != nil:
				// Prepare makes the area on demand and reports the error.
			case m.closed:
				rel.release()
			default:
				m.ready[o] = append(m.ready[o], area{dir, rel})
			}
		}()
	}
}

// prepare makes the area id for o.
func (m *Manager) prepare(id string, o owner) (dir string, rel *releaser, err error) {
	size, uid, gid := o.size, o.uid, o.gid
	base := filepath.Join(m.stateDir, id)
	if err := os.Mkdir(base, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return "", nil, fmt.Errorf("scratch: %s already exists", base)
		}
		return "", nil, fmt.Errorf("scratch: %w", err)
	}
	image := filepath.Join(base, "image")
	dir = filepath.Join(base, "scratch")
	fail := func(err error) (string, *releaser, error) {
		os.RemoveAll(base)
		return "", nil, err
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fail(fmt.Errorf("scratch: %w", err))
	}
	tmpl, err := m.template(size)
	if err != nil {
		return fail(err)
	}
	if err := copySparse(image, tmpl, size); err != nil {
		return fail(err)
	}
	dev, lf, err := attachLoop(image)
	if err != nil {
		return fail(err)
	}
	err = unix.Mount(dev, dir, "ext4", mountFlags, "noinit_itable")
	lf.Close() // the mount holds the device now; on error AUTOCLEAR frees it
	if err != nil {
		detachLoop(dev, image, time.Second)
		return fail(fmt.Errorf("scratch: mount %s (%s) at %s: %w", dev, image, dir, err))
	}
	rel = &releaser{base: base, dir: dir, dev: dev}
	if err := setupRoot(dir, uid, gid); err != nil {
		rel.release()
		return "", nil, err
	}
	return dir, rel, nil
}

// setupRoot empties the new file system's root and hands it to uid:gid.
func setupRoot(dir string, uid, gid int) error {
	if err := os.Remove(filepath.Join(dir, "lost+found")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("scratch: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	return nil
}

type releaser struct {
	once           sync.Once
	err            error
	base, dir, dev string
}

func (r *releaser) release() error {
	r.once.Do(func() { r.err = teardown(r.base, r.dir, r.dev) })
	return r.err
}

// teardown unmounts dir (lazily if busy), frees dev and deletes base.
// It leaves the files alone if dir cannot be unmounted.
func teardown(base, dir, dev string) error {
	lazy, err := unmount(dir)
	if err != nil {
		return err
	}
	var errs []error
	// After a lazy unmount the file system, and so the device, lives on
	// until its last user is gone; AUTOCLEAR frees the device then.
	// Otherwise clear it at once: if something still holds it (a sandbox
	// created while this area was mounted got a copy of the mount in its
	// new mount namespace, kept alive by its detached old root), the kernel
	// only marks it for auto-clear and returns. Waiting for it to come free
	// instead cost every warm-pool run a second.
	if dev != "" && !lazy {
		if err := detachLoop(dev, filepath.Join(base, "image"), 0); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(base); err != nil {
		errs = append(errs, fmt.Errorf("scratch: %w", err))
	}
	return errors.Join(errs...)
}

// unmount unmounts dir, detaching it lazily if busy (then lazy is true).
// Not mounted is fine.
func unmount(dir string) (lazy bool, err error) {
	for {
		err := unix.Unmount(dir, 0)
		switch {
		case err == nil:
			continue // unmount again in case of stacked mounts
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT):
			return lazy, nil // not (or no longer) a mount point
		case errors.Is(err, unix.EBUSY):
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
				return lazy, fmt.Errorf("scratch: unmount %s: %w", dir, err)
			}
			lazy = true
		case errors.Is(err, unix.EINTR):
		default:
			return lazy, fmt.Errorf("scratch: unmount %s: %w", dir, err)
		}
	}
}

// CleanStale removes what a crashed server left under the state
// directory: it unmounts every mount below it, detaches loop devices whose
// backing file is below it, and deletes the areas. It returns how many
// areas it removed. Call it at start, before Prepare.
func (m *Manager) CleanStale() (int, error) {
	ents, err := os.ReadDir(m.stateDir)
	if err != nil {
		return 0, fmt.Errorf("scratch: %w", err)
	}
	prefix := m.stateDir + "/"
	// Devices first: after the unmounts the image paths still tell which
	// device was whose (an AUTOCLEAR device is gone once unmounted).
	devs := map[string]string{} // area → device
	for dev, file := range loopBackingFiles() {
		if rel, ok := strings.CutPrefix(file, prefix); ok {
			area, _, _ := strings.Cut(rel, "/")
			devs[area] = dev
		}
	}
	var errs []error
	for _, mp := range mountsUnder(prefix) {
		if _, err := unmount(mp); err != nil {
			errs = append(errs, err)
		}
	}
	n := 0
	for _, e := range ents {
		if !e.IsDir() {
			if strings.HasPrefix(e.Name(), templatePrefix) {
				// Formatted by a predecessor, maybe by another mkfs.
				os.Remove(filepath.Join(m.stateDir, e.Name()))
			}
			continue
		}
		base := filepath.Join(m.stateDir, e.Name())
		if err := teardown(base, filepath.Join(base, "scratch"), devs[e.Name()]); err != nil {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}

// mountsUnder lists the mount points below prefix, deepest first.
func mountsUnder(prefix string) []string {
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return !strings.HasPrefix(i.Mountpoint, prefix), false
	})
	if err != nil {
		return nil
	}
	// Later mounts first, so stacked and nested mounts come off in order.
	out := make([]string, 0, len(infos))
	for i := len(infos) - 1; i >= 0; i-- {
		out = append(out, infos[i].Mountpoint)
	}
	return out
}

// Close releases the areas prepared ahead of demand and deletes the
// formatted templates; call it when no more areas will be prepared. Areas
// handed out by Prepare are not affected.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	m.mu.Unlock()
	m.bg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for o, r := range m.ready {
		for _, a := range r {
			if err := a.rel.release(); err != nil {
				errs = append(errs, err)
			}
		}
		delete(m.ready, o)
	}
	for size, t := range m.templates {
		if err := os.Remove(t); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("scratch: %w", err))
		}
		delete(m.templates, size)
	}
	return errors.Join(errs...)
}

// templatePrefix starts the names of formatted template images in the
// state directory; sandbox ids cannot start with a dot.
const templatePrefix = ".template-"

// template returns a freshly formatted, never mounted image of size bytes,
// making it on first use. Every scratch area of that size starts as a
// sparse copy of it: copying its few hundred KiB of metadata costs a
// fraction of running mkfs.ext4 per sandbox (a fork and exec, ~5 ms of
// CPU). The copies share the file system UUID, which nothing here uses.
func (m *Manager) template(size int64) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if t, ok := m.templates[size]; ok {
		return t, nil
	}
	t := filepath.Join(m.stateDir, fmt.Sprintf("%s%d", templatePrefix, size))
	tmp := t + ".new"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("scratch: %w", err)
	}
	err = f.Truncate(size) // sparse: mkfs writes only metadata
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if out, merr := exec.Command(m.mkfs, append(mkfsArgs, tmp)...).CombinedOutput(); merr != nil {
			err = fmt.Errorf("scratch: mkfs.ext4 %s: %w: %s", tmp, merr, bytes.TrimSpace(out))
		}
	}
	if err == nil {
		err = os.Rename(tmp, t)
	}
	if err != nil {
		os.Remove(tmp)
		return "", err
	}
	m.templates[size] = t
	return t, nil
}

// copySparse creates dst as a sparse file of size bytes holding the data
// extents of src (found with SEEK_DATA/SEEK_HOLE).
func copySparse(dst, src string, size int64) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("scratch: %w", cerr)
		}
	}()
	if err := out.Truncate(size); err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	ifd := int(in.Fd())
	for off := int64(0); off < size; {
		data, err := unix.Seek(ifd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			return nil // no data after off
		}
		if err != nil {
			return fmt.Errorf("scratch: seek data in %s: %w", src, err)
		}
		hole, err := unix.Seek(ifd, data, unix.SEEK_HOLE)
		if err != nil {
			return fmt.Errorf("scratch: seek hole in %s: %w", src, err)
		}
		if _, err := io.Copy(io.NewOffsetWriter(out, data), io.NewSectionReader(in, data, hole-data)); err != nil {
			return fmt.Errorf("scratch: copy %s: %w", src, err)
		}
		off = hole
	}
	return nil
}
