//go:build linux

package memory

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/sandbox/scratch"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// env is a real SQLite store and keyring in a temporary directory.
type env struct {
	dir  string
	db   *sqlite.DB
	keys *keyring.Keyring
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("uid %d may not attach loop devices or mount file systems, which persistent memory needs (the server refuses it without root as well); run as root", os.Geteuid())
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		t.Fatalf("no loop device driver (/dev/loop-control: %v): persistent memory needs it; load it with modprobe loop", err)
	}
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), filepath.Join(dir, "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	master := make([]byte, keyring.KeySize)
	rand.Read(master)
	keys, err := keyring.Open(t.Context(), db, keyring.Master{Key: master})
	if err != nil {
		t.Fatal(err)
	}
	return &env{dir: dir, db: db, keys: keys}
}

// manager opens a Manager on the env's memory directory and closes it
// when the test ends.
func (e *env) manager(t *testing.T, o Options) *Manager {
	t.Helper()
	o.Dir = filepath.Join(e.dir, "memory")
	o.Store, o.Keyring = e.db, e.keys
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if left := scratch.MountsUnder(m.dir + "/"); len(left) > 0 {
			t.Errorf("mounts left after Close: %v", left)
		}
	})
	return m
}

func acquire(t *testing.T, m *Manager, k Key, capMB int) *Lease {
	t.Helper()
	l, err := m.Acquire(t.Context(), k, capMB)
	if err != nil {
		t.Fatalf("Acquire(%v) = %v", k, err)
	}
	t.Cleanup(func() { l.Release() })
	return l
}

var alice = Key{"default", "agent-1", "alice"}

func TestPersistsAcrossLeasesAndRestart(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{})
	if !m.Encrypted() {
		t.Fatal("this host passed Probe but the Manager does not encrypt")
	}
	l := acquire(t, m, alice, 0)
	var st syscall.Stat_t
	if err := syscall.Stat(l.Dir, &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Uid) != m.o.UID || int(st.Gid) != m.o.GID || st.Mode&0o777 != 0o700 {
		t.Errorf("lease dir owned by %d:%d mode %o, want %d:%d 0700", st.Uid, st.Gid, st.Mode&0o777, m.o.UID, m.o.GID)
	}
	if err := os.MkdirAll(filepath.Join(l.Dir, "notes"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "notes", "a.txt"), []byte("remember me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	rec, err := e.db.Memory(t.Context(), "default", "agent-1", "alice")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Files != 2 || rec.UsedBytes <= 0 || rec.CapBytes != DefaultCapMB<<20 || rec.SealedKey == nil {
		t.Errorf("record after release: files %d used %d cap %d sealed %v; want 2 files, some bytes, the default cap, a sealed key",
			rec.Files, rec.UsedBytes, rec.CapBytes, rec.SealedKey != nil)
	}
	l = acquire(t, m, alice, 0)
	if b, err := os.ReadFile(filepath.Join(l.Dir, "notes", "a.txt")); string(b) != "remember me" {
		t.Errorf("second lease reads %q, %v; want what the first wrote", b, err)
	}
	l.Release()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// A new Manager on the same directory and database: a restart.
	m2 := e.manager(t, Options{})
	l = acquire(t, m2, alice, 0)
	if b, err := os.ReadFile(filepath.Join(l.Dir, "notes", "a.txt")); string(b) != "remember me" {
		t.Errorf("after a restart the store reads %q, %v; want what was written", b, err)
	}
}

func TestUsersIsolated(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{})
	keys := []Key{alice, {"default", "agent-1", "bob"}, {"default", "agent-2", "alice"}, {"other", "agent-1", "alice"}}
	dirs := map[string]bool{}
	for _, k := range keys {
		l := acquire(t, m, k, 0)
		if dirs[l.Dir] {
			t.Fatalf("%v got the directory of another key: %s", k, l.Dir)
		}
		dirs[l.Dir] = true
		if err := os.WriteFile(filepath.Join(l.Dir, "who"), []byte(k.Project+"/"+k.Agent+"/"+k.User), 0o600); err != nil {
			t.Fatal(err)
		}
		l.Release()
	}
	for _, k := range keys {
		l := acquire(t, m, k, 0)
		b, _ := os.ReadFile(filepath.Join(l.Dir, "who"))
		if want := k.Project + "/" + k.Agent + "/" + k.User; string(b) != want {
			t.Errorf("%v reads %q, want its own %q", k, b, want)
		}
		l.Release()
	}
}

func TestCapsHold(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{DefaultCapMB: 32, MaxCapMB: 64, MaxFiles: 100})
	if _, err := m.Acquire(t.Context(), alice, 65); !isCode(err, core.CodeValidation) {
		t.Errorf("Acquire above the server maximum = %v, want VALIDATION", err)
	}
	l := acquire(t, m, alice, MinCapMB)
	f, err := os.Create(filepath.Join(l.Dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	written := 0
	for ; written < 2*MinCapMB; written++ {
		if _, err = f.Write(chunk); err != nil {
			break
		}
	}
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
		t.Errorf("writing %d MiB into a %d MiB store: %v, want ENOSPC", written, MinCapMB, err)
	}
	os.Remove(filepath.Join(l.Dir, "big"))
	n := 0
	for ; n < 1000; n++ {
		if err = os.WriteFile(filepath.Join(l.Dir, fmt.Sprintf("f%04d", n)), nil, 0o600); err != nil {
			break
		}
	}
	t.Logf("a store capped at 100 files took %d files, then %v", n, err)
	if !errors.Is(err, syscall.ENOSPC) || n < 90 || n > 128 {
		t.Errorf("made %d empty files in a store capped at 100 files, then %v; want ENOSPC after about 100", n, err)
	}
	if err := os.WriteFile(filepath.Join(e.dir, "host-still-writable"), []byte("ok"), 0o600); err != nil {
		t.Errorf("the host's disk is harmed by a full store: %v", err)
	}
	l.Release()
	// A bigger cap grows the store, keeping its files.
	l = acquire(t, m, alice, 32)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(l.Dir, &fs); err != nil {
		t.Fatal(err)
	}
	if size := int64(fs.Blocks) * fs.Bsize; size < 24<<20 {
		t.Errorf("after growing to 32 MiB the file system has %d bytes", size)
	}
	if _, err := os.Stat(filepath.Join(l.Dir, "f0000")); err != nil {
		t.Errorf("growing lost the files: %v", err)
	}
	rec, _ := e.db.Memory(t.Context(), alice.Project, alice.Agent, alice.User)
	if rec.CapBytes != 32<<20 {
		t.Errorf("recorded cap after growing = %d, want %d", rec.CapBytes, 32<<20)
	}
}

func isCode(err error, code string) bool {
	ce, ok := errors.AsType[*core.Error](err)
	return ok && ce.Code == code
}

func TestEncryptedAtRest(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{IdleUnmount: -1})
	const marker = "PLAINTEXT-MARKER-7f3a9c"
	l := acquire(t, m, alice, 0)
	if err := os.WriteFile(filepath.Join(l.Dir, marker+".txt"), []byte(strings.Repeat(marker, 1000)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil { // IdleUnmount < 0: key removed, unmounted
		t.Fatal(err)
	}
	image := filepath.Join(m.dir, alice.Name(), "image")
	b, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(marker)) {
		t.Errorf("the image holds the plaintext marker")
	}
	// Mounted without the key, the directory shows only encrypted names,
	// and the file does not open.
	mnt := t.TempDir()
	dev, err := mountImage(image, mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unmountImage(image, mnt, dev) })
	ents, err := os.ReadDir(filepath.Join(mnt, "data"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || strings.Contains(ents[0].Name(), marker) {
		t.Fatalf("without the key the directory lists %v, want one encrypted name", ents)
	}
	if _, err := os.ReadFile(filepath.Join(mnt, "data", ents[0].Name())); err == nil {
		t.Errorf("a file opened without the key")
	}
}

func TestDeleteLeavesNothing(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{})
	l := acquire(t, m, alice, 0)
	os.WriteFile(filepath.Join(l.Dir, "x"), []byte("x"), 0o600)
	l.Release() // stays mounted (idle)
	if err := m.Delete(t.Context(), alice); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(m.dir, alice.Name())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Delete the store's directory: %v, want gone", err)
	}
	if left := scratch.MountsUnder(m.dir + "/"); len(left) > 0 {
		t.Errorf("after Delete still mounted: %v", left)
	}
	if _, err := e.db.Memory(t.Context(), alice.Project, alice.Agent, alice.User); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("after Delete the record (and sealed key): %v, want not found", err)
	}
	if err := m.Delete(t.Context(), alice); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Delete of an unknown store = %v, want not found", err)
	}
	// The next use starts afresh.
	l = acquire(t, m, alice, 0)
	if ents, _ := os.ReadDir(l.Dir); len(ents) != 0 {
		t.Errorf("a store made after erasure holds %v", ents)
	}
}

func TestExport(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{IdleUnmount: -1})
	l := acquire(t, m, alice, 0)
	os.MkdirAll(filepath.Join(l.Dir, "d"), 0o700)
	os.WriteFile(filepath.Join(l.Dir, "d", "f.txt"), []byte("hello"), 0o600)
	os.Symlink("/etc/passwd", filepath.Join(l.Dir, "escape"))
	l.Release()
	var buf bytes.Buffer
	if err := m.Export(t.Context(), alice, &buf); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		switch h.Typeflag {
		case tar.TypeSymlink:
			got[h.Name] = "-> " + h.Linkname
		case tar.TypeDir:
			got[h.Name] = "dir"
		default:
			got[h.Name] = string(b)
		}
	}
	want := map[string]string{"d/": "dir", "d/f.txt": "hello", "escape": "-> /etc/passwd"}
	if len(got) != len(want) {
		t.Errorf("export = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("export[%q] = %q, want %q (symlinks kept as links, never followed)", k, got[k], v)
		}
	}
	if err := m.Export(t.Context(), Key{"default", "agent-1", "nobody"}, io.Discard); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("Export of an unknown store = %v, want not found", err)
	}
}

func TestPurgeByLastUse(t *testing.T) {
	e := newEnv(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	m := e.manager(t, Options{Now: clock})
	old, recent, busy := alice, Key{"default", "agent-1", "recent"}, Key{"default", "agent-1", "busy"}
	acquire(t, m, old, 0).Release()
	bl := acquire(t, m, busy, 0)
	now = now.Add(10 * 24 * time.Hour)
	acquire(t, m, recent, 0).Release()
	n, err := m.Purge(t.Context(), now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("Purge deleted %d stores, want 1 (the old one; the recent one is kept, the busy one is in use)", n)
	}
	for _, c := range []struct {
		k    Key
		kept bool
	}{{old, false}, {recent, true}, {busy, true}} {
		_, err := e.db.Memory(t.Context(), c.k.Project, c.k.Agent, c.k.User)
		if kept := err == nil; kept != c.kept {
			t.Errorf("after Purge %v kept = %v, want %v", c.k, kept, c.kept)
		}
	}
	bl.Release()
}

func TestAcquireSerializes(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{})
	first := acquire(t, m, alice, 0)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := m.Acquire(ctx, alice, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second Acquire while the first holds the store = %v, want it to wait until its context ends", err)
	}
	got := make(chan error, 1)
	go func() {
		l, err := m.Acquire(t.Context(), alice, 0)
		if err == nil {
			l.Release()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second Acquire returned (%v) before the first released", err)
	case <-time.After(100 * time.Millisecond):
	}
	first.Release()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second Acquire still waits after the first released")
	}
	// Another user is not held up.
	acquire(t, m, Key{"default", "agent-1", "bob"}, 0).Release()
}

func TestIdleUnmount(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{IdleUnmount: 50 * time.Millisecond})
	acquire(t, m, alice, 0).Release()
	deadline := time.Now().Add(5 * time.Second)
	for len(scratch.MountsUnder(m.dir+"/")) > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := scratch.MountsUnder(m.dir + "/"); len(left) > 0 {
		t.Errorf("a store released long ago is still mounted: %v", left)
	}
}

// TestPlaintextRefusal simulates only the probe's result (this host can
// encrypt): a host whose probe fails gets no Manager unless Plaintext, and
// the error names the flag.
func TestPlaintextRefusal(t *testing.T) {
	e := newEnv(t)
	noFscrypt := func(string) error { return errors.New("memory: no fscrypt (simulated)") }
	_, err := New(Options{Dir: filepath.Join(e.dir, "memory"), Store: e.db, Keyring: e.keys, probe: noFscrypt})
	if err == nil || !strings.Contains(err.Error(), "--memory-plaintext") || !strings.Contains(err.Error(), "simulated") {
		t.Fatalf("New without fscrypt = %v, want a refusal naming what is missing and --memory-plaintext", err)
	}
	m := e.manager(t, Options{Plaintext: true, probe: noFscrypt})
	if m.Encrypted() {
		t.Fatal("a Manager on a host without fscrypt says it encrypts")
	}
	l := acquire(t, m, alice, 0)
	os.WriteFile(filepath.Join(l.Dir, "f"), []byte("plain"), 0o600)
	l.Release()
	rec, _ := e.db.Memory(t.Context(), alice.Project, alice.Agent, alice.User)
	if rec.SealedKey != nil {
		t.Errorf("a plaintext store has a sealed key")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// A server that refuses plaintext does not mount it.
	strict := e.manager(t, Options{})
	if _, err := strict.Acquire(t.Context(), alice, 0); err == nil || !strings.Contains(err.Error(), "--memory-plaintext") {
		t.Errorf("Acquire of a plaintext store without Plaintext = %v, want a refusal", err)
	}
}

// TestCrashRecovery: a server that dies (here: a Manager dropped without
// Close) leaves its stores mounted with their keys; the next Manager on
// the directory unmounts them at start, and the data written before is
// there.
func TestCrashRecovery(t *testing.T) {
	e := newEnv(t)
	crashed, err := New(Options{Dir: filepath.Join(e.dir, "memory"), Store: e.db, Keyring: e.keys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { close(crashed.stop); crashed.bg.Wait() })
	l, err := crashed.Acquire(t.Context(), alice, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.Dir, "kept"), []byte("before the crash"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No Release, no Close: the store stays mounted, its key loaded.
	if len(scratch.MountsUnder(crashed.dir+"/")) == 0 {
		t.Fatal("the store is not mounted before the simulated crash")
	}
	m := e.manager(t, Options{})
	l2 := acquire(t, m, alice, 0)
	if b, err := os.ReadFile(filepath.Join(l2.Dir, "kept")); string(b) != "before the crash" {
		t.Errorf("after a crash the store reads %q, %v", b, err)
	}
	if n := len(scratch.MountsUnder(m.dir + "/")); n != 1 {
		t.Errorf("%d mounts under the memory directory after recovery, want 1 (the new lease's)", n)
	}
}

// TestRemountSharesLingeringFileSystem: a store unmounted here while
// another mount of it lives on (as in a sandbox's mount namespace, here a
// bind mount) is mounted again through the same loop device — one file
// system, never two on one image — and its key is out of the kernel in
// between.
func TestRemountSharesLingeringFileSystem(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{IdleUnmount: -1})
	l := acquire(t, m, alice, 0)
	mnt := filepath.Dir(l.Dir)
	other := t.TempDir()
	if err := syscall.Mount(mnt, other, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(other, syscall.MNT_DETACH) })
	os.WriteFile(filepath.Join(l.Dir, "f"), []byte("one"), 0o600)
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(filepath.Join(other, "data", "f")); err == nil {
		t.Errorf("the lingering mount reads the store's file after its key was removed")
	}
	image := filepath.Join(m.dir, alice.Name(), "image")
	before := boundLoop(image)
	if before == "" {
		t.Fatal("no loop device holds the image while the bind mount lives")
	}
	l = acquire(t, m, alice, 0)
	if after := boundLoop(image); after != before {
		t.Errorf("the store was mounted through %s, not %s which still holds it", after, before)
	}
	n := 0
	for _, file := range scratch.LoopBackingFiles() {
		if file == image {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d loop devices on one image, want 1", n)
	}
	if b, err := os.ReadFile(filepath.Join(l.Dir, "f")); string(b) != "one" {
		t.Errorf("remounted store reads %q, %v", b, err)
	}
}
