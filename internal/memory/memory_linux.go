//go:build linux

package memory

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox/linux"
	"github.com/runagent/runagent/internal/sandbox/scratch"
)

// Manager keeps the persistent-memory stores of one node. It is safe for
// concurrent use.
type Manager struct {
	o       Options
	dir     string
	tools   tools
	encrypt bool // new stores are encrypted

	mu      sync.Mutex
	slots   map[string]*slot // by Key.Name
	mounted int
	closed  bool

	stop chan struct{}
	bg   sync.WaitGroup
}

// slot serializes the users of one store and remembers its mount.
type slot struct {
	key  Key
	name string
	// lock is held (a value sent) by whoever uses the store: a lease,
	// an export, a deletion, the idle sweep.
	lock chan struct{}
	// refs counts holders and waiters; a slot without refs or mount
	// leaves the map. Guarded by Manager.mu.
	refs int
	// mnt is the store's mount, nil when unmounted; idle is when it was
	// last released. Written with both lock and Manager.mu held, read
	// with either.
	mnt  *mounted
	idle time.Time
	// held is the store's lock across nodes (Options.Locker), taken with
	// lock and let go once the store is unmounted and flushed. Written
	// with both lock and Manager.mu held, read with either.
	held Held
}

// mounted is a mounted store.
type mounted struct {
	image, mnt, data, dev string
	encrypted             bool
	keyID                 [unix.FSCRYPT_KEY_IDENTIFIER_SIZE]byte
}

// Lease is a store handed to one run. Until Release, no other Acquire,
// Export or Delete of the same store proceeds.
type Lease struct {
	// Dir is the store's directory on the host, owned by the sandbox's
	// agent: mount it read-write into the run.
	Dir string

	m    *Manager
	s    *slot
	rec  *core.Memory
	lost <-chan struct{}
	once sync.Once
	err  error
}

// Lost is closed if this node lost the store's lock across nodes while
// the lease holds it (Options.Locker: its database connection ended), so
// that another node may take the store: stop the run at once. Without a
// Locker it is never closed.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Probe says whether this host can keep encrypted stores: it makes a
// small ext4 image under dir with the encrypt feature, mounts it, adds a
// random key, encrypts a directory with a v2 policy, and undoes it all.
// The error names what is missing.
func Probe(dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("memory: mounting stores needs root: run runagent as root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return fmt.Errorf("memory: no loop device driver (/dev/loop-control): load it with modprobe loop: %w", err)
	}
	t, err := findTools()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	tmp, err := os.MkdirTemp(dir, ".probe-")
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer os.RemoveAll(tmp)
	image, mnt := filepath.Join(tmp, "image"), filepath.Join(tmp, "mnt")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if err := t.format(image, MinCapMB<<20, 64); err != nil {
		return err
	}
	dev, err := mountImage(image, mnt)
	if err != nil {
		return err
	}
	defer unmountImage(image, mnt, dev)
	key := newMasterKey()
	defer clear(key)
	id, err := addKey(mnt, key)
	if err != nil {
		return fmt.Errorf("%w (the kernel needs CONFIG_FS_ENCRYPTION and ext4 with fscrypt v2 keys, Linux 5.4+)", err)
	}
	defer removeKey(mnt, id)
	data := filepath.Join(mnt, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if err := ensurePolicy(data, id); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(data, "probe"), []byte("probe"), 0o600); err != nil {
		return fmt.Errorf("memory: write into an encrypted directory: %w", err)
	}
	return nil
}

// New returns a Manager keeping its stores under o.Dir. It fails unless
// the process is root with loop devices and e2fsprogs, and, unless
// o.Plaintext, unless Probe succeeds: then the error says what is missing
// and that --memory-plaintext accepts unencrypted stores. It removes what
// a crashed predecessor left mounted under o.Dir (the stores stay).
func New(o Options) (*Manager, error) {
	o = o.withDefaults()
	if o.Dir == "" || o.Store == nil {
		return nil, errors.New("memory: a Manager needs a directory and a store")
	}
	if o.MaxCapMB < MinCapMB || o.DefaultCapMB < MinCapMB || o.DefaultCapMB > o.MaxCapMB {
		return nil, fmt.Errorf("memory: caps must satisfy %d MiB <= default (%d MiB) <= maximum (%d MiB)", MinCapMB, o.DefaultCapMB, o.MaxCapMB)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("memory: mounting stores needs root: run runagent as root")
	}
	t, err := findTools()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil { // the kernel reports loop backing files by their real path
		return nil, fmt.Errorf("memory: %w", err)
	}
	if o.UID == 0 && o.GID == 0 {
		o.UID, o.GID = linux.HostIDBase+linux.AgentUID, linux.HostIDBase+linux.AgentGID
	}
	m := &Manager{o: o, dir: abs, tools: t, slots: map[string]*slot{}, stop: make(chan struct{})}
	m.cleanStale()
	probe := o.probe
	if probe == nil {
		probe = Probe
	}
	perr := probe(abs)
	switch {
	case perr == nil && o.Keyring == nil:
		if !o.Plaintext {
			return nil, errors.New("memory: encrypted stores need the keyring to seal their keys")
		}
	case perr == nil:
		m.encrypt = true
	case !o.Plaintext:
		return nil, fmt.Errorf("memory: this host cannot encrypt persistent memory at rest: %w; pass --memory-plaintext to accept unencrypted stores", perr)
	}
	if o.IdleUnmount > 0 || o.Locker != nil {
		m.bg.Add(1)
		go m.sweep()
	}
	return m, nil
}

// Encrypted reports whether new stores are encrypted.
func (m *Manager) Encrypted() bool { return m.encrypt }

// cleanStale unmounts what a crashed predecessor left mounted under the
// directory (a store's key went with its file system's last mount) and
// removes half-made images and probes.
func (m *Manager) cleanStale() {
	prefix := m.dir + "/"
	devs := map[string]string{}
	for dev, file := range scratch.LoopBackingFiles() {
		if strings.HasPrefix(file, prefix) {
			devs[filepath.Dir(file)] = dev
		}
	}
	for _, mp := range scratch.MountsUnder(prefix) {
		if _, err := scratch.Unmount(mp); err != nil {
			m.o.Log.Warn("memory: unmount a store left mounted", "mount", mp, "err", err)
		}
	}
	for dir, dev := range devs {
		scratch.DetachLoop(dev, filepath.Join(dir, "image"), 0)
	}
	// Probes left by a crash are removed once old enough not to be
	// another node's, probing now in a shared directory. A half-made
	// image.new is left: the store's next creation, under its lock,
	// replaces it.
	ents, _ := os.ReadDir(m.dir)
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".probe-") {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleProbe {
			os.RemoveAll(filepath.Join(m.dir, e.Name()))
		}
	}
}

// staleProbe is the age beyond which a probe directory is a crash's
// leftover: a probe takes well under a second.
const staleProbe = 10 * time.Minute

// lockSlot returns the slot of k, locked (on every node, with a Locker),
// waiting until its holder lets go or ctx ends.
func (m *Manager) lockSlot(ctx context.Context, k Key) (*slot, error) {
	name := k.Name()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, core.Errorf(core.CodeUnavailable, "persistent memory is shutting down")
	}
	s := m.slots[name]
	if s == nil {
		s = &slot{key: k, name: name, lock: make(chan struct{}, 1)}
		m.slots[name] = s
	}
	s.refs++
	m.mu.Unlock()
	select {
	case s.lock <- struct{}{}:
	case <-ctx.Done():
		m.unref(s)
		return nil, fmt.Errorf("memory: waiting for the run using %s: %w", k, ctx.Err())
	}
	if err := m.lockNodes(ctx, s); err != nil {
		<-s.lock
		m.unref(s)
		return nil, err
	}
	return s, nil
}

// lockNodes takes s's lock across nodes, if there are several and this
// node does not hold it yet. The caller holds s.lock.
func (m *Manager) lockNodes(ctx context.Context, s *slot) error {
	if m.o.Locker == nil {
		return nil
	}
	if s.held != nil {
		select {
		case <-s.held.Lost(): // kept by a release that could not let go, then lost
			s.held.Unlock()
			m.setHeld(s, nil)
		default:
			return nil
		}
	}
	h, err := m.o.Locker.Lock(ctx, "memory/"+s.name)
	if err != nil {
		return fmt.Errorf("memory: waiting for the node using %s: %w", s.key, err)
	}
	if err := m.fence(ctx, s); err != nil {
		h.Unlock()
		return err
	}
	m.setHeld(s, h)
	return nil
}

// heldName is the file in a store's directory that says a node holds
// it: written once the lock is taken, removed before a clean let-go.
const heldName = "held"

// fence marks s's store as held by this node. If the mark is there
// already, the last holder did not let go cleanly — it died, or lost its
// lock with its connection and may still be writing until it notices —
// and fence first waits Options.Fence (or until ctx ends).
func (m *Manager) fence(ctx context.Context, s *slot) error {
	dir := filepath.Join(m.dir, s.name)
	mark := filepath.Join(dir, heldName)
	if _, err := os.Stat(mark); err == nil {
		m.o.Log.Warn("memory: the last node to hold a store did not let it go cleanly; waiting for it to stop before mounting", "agent", s.key.Agent, "wait", m.o.Fence)
		t := time.NewTimer(m.o.Fence)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("memory: waiting for the node that last held %s to stop: %w", s.key, ctx.Err())
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	f, err := os.OpenFile(mark, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = f.Sync()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("memory: mark %s as held: %w", s.key, err)
	}
	return nil
}

// unlockNodes lets go of s's lock across nodes once nothing this node
// does can write the store's image: it unmounts the store (read-only
// first: teardown) and flushes the image to the (shared) file system. If
// the store cannot be unmounted, the lock is kept and the sweep tries
// again: two nodes must never write one image. The caller holds s.lock.
func (m *Manager) unlockNodes(s *slot) {
	if s.held == nil {
		return
	}
	if err := m.unmount(s); err != nil {
		m.o.Log.Error("memory: a store this node cannot unmount stays locked to it", "agent", s.key.Agent, "err", err)
		return
	}
	image := filepath.Join(m.dir, s.name, "image")
	if f, err := os.Open(image); err == nil {
		err = f.Sync()
		f.Close()
		if err != nil {
			m.o.Log.Error("memory: flushing a store's image failed; it stays locked to this node", "agent", s.key.Agent, "err", err)
			return
		}
	}
	select {
	case <-s.held.Lost():
		// Another node may hold the store already: its mark is not ours
		// to remove, and ours, left, makes the next holder wait.
		s.held.Unlock()
		m.setHeld(s, nil)
		return
	default:
	}
	if err := os.Remove(filepath.Join(m.dir, s.name, heldName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.o.Log.Error("memory: a store's held mark cannot be removed; it stays locked to this node", "agent", s.key.Agent, "err", err)
		return
	}
	if err := s.held.Unlock(); err != nil {
		m.o.Log.Warn("memory: let go of a store's lock", "agent", s.key.Agent, "err", err)
	}
	m.setHeld(s, nil)
}

// setHeld records s's lock across nodes. The caller holds s.lock.
func (m *Manager) setHeld(s *slot, h Held) {
	m.mu.Lock()
	s.held = h
	m.mu.Unlock()
}

// unlockSlot lets go of s (across nodes too, once the store is
// unmounted).
func (m *Manager) unlockSlot(s *slot) {
	m.unlockNodes(s)
	<-s.lock
	m.unref(s)
}

func (m *Manager) unref(s *slot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s.refs--
	if s.refs == 0 && s.mnt == nil && s.held == nil && m.slots[s.name] == s {
		delete(m.slots, s.name)
	}
}

// setMount records s's mount (nil: unmounted). The caller holds s.lock.
func (m *Manager) setMount(s *slot, mt *mounted) {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case s.mnt == nil && mt != nil:
		m.mounted++
	case s.mnt != nil && mt == nil:
		m.mounted--
	}
	s.mnt = mt
}

// capBytes checks a cap in MiB (0: the default) against the maximum.
func (m *Manager) capBytes(capMB int) (int64, error) {
	if capMB == 0 {
		capMB = m.o.DefaultCapMB
	}
	if capMB < MinCapMB || capMB > m.o.MaxCapMB {
		return 0, &core.Error{Code: core.CodeValidation,
			Message: fmt.Sprintf("a memory cap of %d MiB is outside what this server allows (%d to %d MiB; the operator sets the maximum with --memory-max-mb)", capMB, MinCapMB, m.o.MaxCapMB)}
	}
	return int64(capMB) << 20, nil
}

// Acquire hands the store of k to one run, creating it on first use (of
// capMB MiB, 0 for the default) and mounting it if it is not. It waits,
// until ctx ends, while another run (or an export or deletion) holds the
// same store: the runs of one user on one agent are serialized. A cap
// above the stored one grows the store; a smaller one is not applied (a
// file system is not shrunk under its files) and the store keeps its
// size. Call Release when the run is over.
func (m *Manager) Acquire(ctx context.Context, k Key, capMB int) (*Lease, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	size, err := m.capBytes(capMB)
	if err != nil {
		return nil, err
	}
	s, err := m.lockSlot(ctx, k)
	if err != nil {
		return nil, err
	}
	l, err := m.acquire(ctx, s, size)
	if err != nil {
		m.unlockSlot(s)
		return nil, err
	}
	return l, nil
}

func (m *Manager) acquire(ctx context.Context, s *slot, size int64) (*Lease, error) {
	rec, err := m.o.Store.Memory(ctx, s.key.Project, s.key.Agent, s.key.User)
	switch {
	case errors.Is(err, core.ErrNotFound):
		if rec, err = m.create(ctx, s, size); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	}
	if err := m.mount(s, rec); err != nil {
		return nil, err
	}
	if size > rec.CapBytes {
		if err := m.grow(ctx, s, rec, size); err != nil {
			return nil, err
		}
	}
	l := &Lease{Dir: s.mnt.data, m: m, s: s, rec: rec}
	if s.held != nil {
		l.lost = s.held.Lost()
	}
	return l, nil
}

// create makes the store of s: its image, formatted, then its record
// with the sealed key. A crash in between leaves an image without a
// record, which the next create replaces.
func (m *Manager) create(ctx context.Context, s *slot, size int64) (*core.Memory, error) {
	dir := filepath.Join(m.dir, s.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	tmp, image := filepath.Join(dir, "image.new"), filepath.Join(dir, "image")
	if err := m.tools.format(tmp, size, m.o.MaxFiles); err != nil {
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, image); err != nil {
		os.Remove(tmp)
		return nil, fmt.Errorf("memory: %w", err)
	}
	now := m.o.Now().UTC().Truncate(time.Microsecond)
	rec := &core.Memory{ProjectID: s.key.Project, AgentID: s.key.Agent, UserID: s.key.User, Image: s.name,
		CapBytes: size, CreatedAt: now, LastUsedAt: now}
	if m.encrypt {
		key := newMasterKey()
		sealed, err := m.o.Keyring.Seal(key, s.key.additionalData(s.name))
		clear(key)
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("memory: seal the key of %s: %w", s.key, err)
		}
		rec.SealedKey = sealed
	}
	if err := m.o.Store.CreateMemory(ctx, rec); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return rec, nil
}

// grow makes the mounted store of s size bytes: online, or, where the
// kernel refuses that (online resizing needs CAP_SYS_RESOURCE), unmounted
// with e2fsprogs — unless a sandbox still holds its file system (then it
// stays as it is, and a later Acquire grows it).
func (m *Manager) grow(ctx context.Context, s *slot, rec *core.Memory, size int64) error {
	grown, err := true, growOnline(s.mnt.image, s.mnt.mnt, s.mnt.dev, size)
	if errors.Is(err, unix.EPERM) {
		grown, err = m.growOffline(s, rec, size)
	}
	if err != nil || !grown {
		return err
	}
	rec.CapBytes = size
	return m.o.Store.UpdateMemory(ctx, rec)
}

// growOffline unmounts the store of s, grows its image unless a loop
// device still holds it, and mounts it again.
func (m *Manager) growOffline(s *slot, rec *core.Memory, size int64) (grown bool, err error) {
	image := s.mnt.image
	if err := m.unmount(s); err != nil {
		return false, err
	}
	if dev := boundLoop(image); dev != "" {
		m.o.Log.Info("memory: a store stays at its size until no sandbox holds it", "agent", s.key.Agent, "device", dev)
	} else if err := growOffline(image, size); err != nil {
		m.mount(s, rec)
		return false, err
	} else {
		grown = true
	}
	return grown, m.mount(s, rec)
}

// mount mounts the store of s if it is not, adds its key to the file
// system and makes sure its data directory is encrypted with it and
// owned by the agent.
func (m *Manager) mount(s *slot, rec *core.Memory) (err error) {
	if s.mnt != nil {
		return nil
	}
	if rec.SealedKey == nil && !m.o.Plaintext {
		return &core.Error{Code: core.CodeUnavailable, Message: fmt.Sprintf("the memory of %s was stored unencrypted, and this server refuses unencrypted stores: start it with --memory-plaintext, or delete the store", s.key)}
	}
	dir := filepath.Join(m.dir, s.name)
	mt := &mounted{image: filepath.Join(dir, "image"), mnt: filepath.Join(dir, "mnt")}
	mt.data = filepath.Join(mt.mnt, "data")
	if _, err := os.Stat(mt.image); err != nil {
		return fmt.Errorf("memory: the image of %s is missing (%w); delete the store (runagent memory delete) to start afresh", s.key, err)
	}
	if err := os.Mkdir(mt.mnt, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("memory: %w", err)
	}
	if mt.dev, err = mountImage(mt.image, mt.mnt); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			m.teardown(mt)
		}
	}()
	if rec.SealedKey != nil {
		key, err := m.o.Keyring.Open(rec.SealedKey, s.key.additionalData(rec.Image))
		if err != nil {
			return fmt.Errorf("memory: open the key of %s: %w", s.key, err)
		}
		mt.keyID, err = addKey(mt.mnt, key)
		clear(key)
		if err != nil {
			return err
		}
		mt.encrypted = true
	}
	if err := os.Mkdir(mt.data, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("memory: %w", err)
	}
	if mt.encrypted {
		if err := ensurePolicy(mt.data, mt.keyID); err != nil {
			return err
		}
	}
	os.Remove(filepath.Join(mt.mnt, "lost+found")) // kept by e2fsck if it found orphans
	if err := os.Chown(mt.data, m.o.UID, m.o.GID); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	if err := os.Chmod(mt.data, 0o700); err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	m.setMount(s, mt)
	return nil
}

// unmount removes the key of s's store from the kernel, then unmounts
// it. The caller holds s.lock.
func (m *Manager) unmount(s *slot) error {
	if s.mnt == nil {
		return nil
	}
	if err := m.teardown(s.mnt); err != nil {
		return err
	}
	m.setMount(s, nil)
	return nil
}

// teardown removes mt's key (so that the kernel forgets it and the
// plaintext of every file not open), then unmounts it and frees its
// device.
//
// Where nodes share the directory (a Locker), the file system is first
// made read-only, for every mount of it: a sandbox made ahead of demand
// while it was mounted may hold a copy of the mount, and so the file
// system, until it ends; read-only, everything is written to the image
// now and nothing ever after, so another node may mount the image at
// once. (This node's next mount of it then attaches a new device: the
// kernel refuses to mount the lingering read-only one read-write.)
func (m *Manager) teardown(mt *mounted) error {
	if m.o.Locker != nil {
		if err := unix.Mount("", mt.mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY|mountFlags, ""); err != nil {
			return fmt.Errorf("memory: make %s read-only before another node may mount it: %w", mt.mnt, err)
		}
	}
	var errs []error
	if mt.encrypted {
		if err := removeKey(mt.mnt, mt.keyID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := unmountImage(mt.image, mt.mnt, mt.dev); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Release records the store's size, file count and last use, and lets
// the next run of the same user have it. The store stays mounted for
// IdleUnmount unless MaxMounted are mounted. It is safe to call more than
// once.
func (l *Lease) Release() error {
	l.once.Do(func() { l.err = l.m.release(l.s, l.rec) })
	return l.err
}

func (m *Manager) release(s *slot, rec *core.Memory) error {
	defer m.unlockSlot(s)
	var errs []error
	used, files, err := usage(s.mnt.data)
	if err != nil {
		errs = append(errs, err)
	}
	rec.UsedBytes, rec.Files, rec.LastUsedAt = used, files, m.o.Now().UTC().Truncate(time.Microsecond)
	// The run is over: its context may be too, and the record must be
	// written all the same.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := m.o.Store.UpdateMemory(ctx, rec); err != nil && !errors.Is(err, core.ErrNotFound) {
		errs = append(errs, err)
	}
	m.mu.Lock()
	s.idle = m.o.Now()
	over := m.mounted > m.o.MaxMounted || m.o.IdleUnmount < 0 || m.closed
	m.mu.Unlock()
	if over {
		if err := m.unmount(s); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// usage returns the bytes allocated to the files under dir and how many
// files and directories there are below it.
func usage(dir string) (bytes, files int64, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		files++
		info, err := d.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			bytes += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		err = fmt.Errorf("memory: measure %s: %w", dir, err)
	}
	return bytes, files, err
}

// sweep unmounts the stores released more than IdleUnmount ago.
func (m *Manager) sweep() {
	defer m.bg.Done()
	tick := max(m.o.IdleUnmount/4, 10*time.Millisecond)
	if m.o.Locker != nil {
		tick = time.Second // only locks a release could not let go of
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		m.mu.Lock()
		var idle []*slot
		for _, s := range m.slots {
			if (s.mnt != nil || s.held != nil) && s.refs == 0 && m.o.Now().Sub(s.idle) >= m.o.IdleUnmount {
				s.refs++
				idle = append(idle, s)
			}
		}
		m.mu.Unlock()
		for _, s := range idle {
			select {
			case s.lock <- struct{}{}:
				if err := m.unmount(s); err != nil {
					m.o.Log.Warn("memory: unmount an idle store", "agent", s.key.Agent, "err", err)
				}
				m.unlockSlot(s)
			default: // taken meanwhile
				m.unref(s)
			}
		}
	}
}

// List returns the records of an agent's stores in a project, by user
// id, without their keys: those after afterUser, at most limit (0: all;
// core.MemoryStore.Memories).
func (m *Manager) List(ctx context.Context, project, agent, afterUser string, limit int) ([]*core.Memory, error) {
	ms, err := m.o.Store.Memories(ctx, project, agent, afterUser, limit)
	for _, r := range ms {
		r.SealedKey = nil
	}
	return ms, err
}

// Export writes the files of k's store to w as a tar archive, waiting
// for a run that holds it. Symbolic links are written as links, never
// followed; special files (FIFOs, sockets) are left out. Owners are not
// kept. An unknown store wraps ErrNotFound.
func (m *Manager) Export(ctx context.Context, k Key, w io.Writer) error {
	if err := k.Validate(); err != nil {
		return err
	}
	s, err := m.lockSlot(ctx, k)
	if err != nil {
		return err
	}
	defer m.unlockSlot(s)
	rec, err := m.o.Store.Memory(ctx, k.Project, k.Agent, k.User)
	if err != nil {
		return err
	}
	if err := m.mount(s, rec); err != nil {
		return err
	}
	m.mu.Lock()
	s.idle = m.o.Now()
	m.mu.Unlock()
	return writeTar(ctx, w, s.mnt.data)
}

// writeTar writes the tree under dir to w. It reads through an os.Root,
// so that nothing outside dir is opened even if a file were swapped for
// a symbolic link.
func writeTar(ctx context.Context, w io.Writer, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer root.Close()
	tw := tar.NewWriter(w)
	err = fs.WalkDir(root.FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if path == "." {
			return nil
		}
		info, err := root.Lstat(path)
		if err != nil {
			return err
		}
		var link string
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			if link, err = root.Readlink(path); err != nil {
				return err
			}
		case info.Mode().IsRegular(), info.IsDir():
		default:
			return nil
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		h.Name, h.Uid, h.Gid, h.Uname, h.Gname = path, 0, 0, "", ""
		if info.IsDir() {
			h.Name += "/"
		}
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		f, err := root.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.CopyN(tw, f, info.Size())
		return err
	})
	if err != nil {
		return fmt.Errorf("memory: export: %w", err)
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("memory: export: %w", err)
	}
	return nil
}

// Delete erases k's store, waiting (until ctx ends) for a run that holds
// it: its key leaves the kernel, it is unmounted, its image and then its
// record with the sealed key are deleted. Without the key, nothing of
// what it held can be read, even from blocks the host's disk still
// holds. An unknown store wraps ErrNotFound (files left by a crash are
// removed all the same).
func (m *Manager) Delete(ctx context.Context, k Key) error {
	if err := k.Validate(); err != nil {
		return err
	}
	s, err := m.lockSlot(ctx, k)
	if err != nil {
		return err
	}
	defer m.unlockSlot(s)
	return m.delete(ctx, s)
}

func (m *Manager) delete(ctx context.Context, s *slot) error {
	if err := m.unmount(s); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(m.dir, s.name)); err != nil {
		return fmt.Errorf("memory: delete the image of %s: %w", s.key, err)
	}
	return m.o.Store.DeleteMemory(ctx, s.key.Project, s.key.Agent, s.key.User)
}

// Purge deletes the stores nobody used since before (the retention class
// "memory"), skipping those in use, and returns how many it deleted.
func (m *Manager) Purge(ctx context.Context, before time.Time) (int, error) {
	n := 0
	skipped := map[string]bool{}
	for {
		recs, err := m.o.Store.MemoriesUnusedSince(ctx, before, 100)
		if err != nil {
			return n, err
		}
		progress := false
		for _, r := range recs {
			k := Key{r.ProjectID, r.AgentID, r.UserID}
			if skipped[k.Name()] {
				continue
			}
			s, ok := m.tryLockSlot(k)
			if !ok {
				skipped[k.Name()] = true // in use: it will not be unused for long
				continue
			}
			err := m.delete(ctx, s)
			m.unlockSlot(s)
			if err != nil && !errors.Is(err, core.ErrNotFound) {
				return n, err
			}
			n++
			progress = true
		}
		if len(recs) < 100 || !progress {
			return n, nil
		}
	}
}

// tryLockSlot locks k's slot if nobody holds it.
func (m *Manager) tryLockSlot(k Key) (*slot, bool) {
	name := k.Name()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, false
	}
	s := m.slots[name]
	if s == nil {
		s = &slot{key: k, name: name, lock: make(chan struct{}, 1)}
		m.slots[name] = s
	}
	s.refs++
	m.mu.Unlock()
	select {
	case s.lock <- struct{}{}:
	default:
		m.unref(s)
		return nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), tryNodes)
	defer cancel()
	if err := m.lockNodes(ctx, s); err != nil {
		<-s.lock
		m.unref(s)
		return nil, false
	}
	return s, true
}

// tryNodes is how long tryLockSlot waits for a store's lock across
// nodes: long enough for the database to answer, not for a run to end.
const tryNodes = 500 * time.Millisecond

// Close unmounts every store (waiting for their runs to release them)
// and stops the idle sweep. Acquire fails afterwards.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var all []*slot
	for _, s := range m.slots {
		s.refs++
		all = append(all, s)
	}
	m.mu.Unlock()
	close(m.stop)
	m.bg.Wait()
	var errs []error
	for _, s := range all {
		s.lock <- struct{}{}
		if err := m.unmount(s); err != nil {
			errs = append(errs, err)
		}
		m.unlockSlot(s)
	}
	return errors.Join(errs...)
}
