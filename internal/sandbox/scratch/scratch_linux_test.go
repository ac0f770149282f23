//go:build linux

package scratch

// These tests attach real loop devices and mount real ext4 file systems,
// so they need root; each uses its own state directory in t.TempDir() and
// checks in t.Cleanup that no mount or loop device is left.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func mustManager(tb testing.TB) *Manager {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to attach loop devices and mount")
	}
	m, err := New(tb.TempDir())
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	tb.Cleanup(func() {
		m.CleanStale()
		assertNothingLeft(tb, m)
		if ents, _ := os.ReadDir(m.stateDir); len(ents) > 0 {
			tb.Errorf("CleanStale left %v", ents)
		}
	})
	return m
}

// assertNothingLeft checks there is no mount, no loop device and no file
// of m's left.
func assertNothingLeft(tb testing.TB, m *Manager) {
	tb.Helper()
	if mps := mountsUnder(m.stateDir + "/"); len(mps) > 0 {
		tb.Errorf("mounts left under %s: %v", m.stateDir, mps)
	}
	for dev, file := range loopBackingFiles() {
		if strings.HasPrefix(file, m.stateDir+"/") {
			tb.Errorf("loop device %s still bound to %s", dev, file)
		}
	}
	ents, _ := os.ReadDir(m.stateDir)
	ents = slices.DeleteFunc(ents, func(e os.DirEntry) bool {
		return strings.HasPrefix(e.Name(), templatePrefix) // the Manager's, until Close
	})
	if len(ents) > 0 {
		tb.Errorf("files left in %s: %v", m.stateDir, ents)
	}
}

// fill writes dir/fill in 1 MiB chunks until an error and returns the
// bytes written and the error.
func fill(dir string) (int64, error) {
	f, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	var total int64
	for {
		n, err := f.Write(buf)
		total += int64(n)
		if err == nil {
			err = f.Sync() // make delayed allocation fail here, not at close
		}
		if err != nil {
			return total, err
		}
	}
}

func TestNewChecks(t *testing.T) {
	if os.Geteuid() != 0 {
		_, err := New(t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "root") {
			t.Errorf("New as non-root = %v, want an error saying root is needed", err)
		}
		return
	}
	t.Setenv("PATH", "/nonexistent")
	if _, err := New(t.TempDir()); err != nil {
		t.Errorf("New with mkfs.ext4 only in /usr/sbin or /sbin: %v", err)
	}
}

func TestPrepareFillRelease(t *testing.T) {
	m := mustManager(t)
	const size = 32 << 20
	t0 := time.Now()
	dir, release, err := m.Prepare("fill", size, 1234, 5678)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	t.Logf("Prepare of %d MiB took %v", size>>20, time.Since(t0))
	if dir != filepath.Join(m.stateDir, "fill", "scratch") {
		t.Errorf("dir = %s, want %s/fill/scratch", dir, m.stateDir)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil || st.Uid != 1234 || st.Gid != 5678 || st.Mode&0o777 != 0o700 {
		t.Errorf("scratch root: uid %d gid %d mode %o (%v), want 1234 5678 700", st.Uid, st.Gid, st.Mode&0o777, err)
	}
	var opts string
	for _, line := range strings.Split(readFile(t, "/proc/self/mountinfo"), "\n") {
		if f := strings.Fields(line); len(f) > 5 && f[4] == dir {
			opts = f[5]
			if !strings.Contains(line, " - ext4 /dev/loop") {
				t.Errorf("mount of %s: %q, want ext4 on a loop device", dir, line)
			}
		}
	}
	for _, o := range []string{"nosuid", "nodev"} {
		if !strings.Contains(opts, o) {
			t.Errorf("mount options %q, want %s", opts, o)
		}
	}
	if _, _, err := m.Prepare("fill", size, 0, 0); err == nil {
		t.Errorf("second Prepare of the same id succeeded, want an error")
	}

	n, err := fill(dir)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("writing until failure: %v after %d bytes, want ENOSPC", err, n)
	}
	t.Logf("wrote %d of %d bytes (%.1f%%) before ENOSPC", n, size, 100*float64(n)/size)
	if n < size*85/100 || n > size {
		t.Errorf("wrote %d bytes before ENOSPC, want about %d (85–100%%)", n, size)
	}
	img, err := os.Stat(filepath.Join(m.stateDir, "fill", "image"))
	if err != nil || img.Size() != size {
		t.Errorf("image: %v, %v; want %d bytes", img, err, size)
	}

	if err := release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	assertNothingLeft(t, m)
	if err := release(); err != nil {
		t.Errorf("second release: %v", err)
	}
}

// A busy scratch area (a process has its cwd there) is detached lazily.
func TestReleaseBusy(t *testing.T) {
	m := mustManager(t)
	dir, release, err := m.Prepare("busy", 16<<20, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = release()
	f.Close()
	if err != nil {
		t.Fatalf("release of a busy area: %v", err)
	}
	// The device is freed once the last user (f) is gone.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		bound := false
		for _, file := range loopBackingFiles() {
			bound = bound || strings.HasPrefix(file, m.stateDir+"/")
		}
		if !bound {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	assertNothingLeft(t, m)
}

func TestCleanStale(t *testing.T) {
	m := mustManager(t)
	for i := range 3 {
		dir, _, err := m.Prepare(fmt.Sprintf("crashed%d", i), 16<<20, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		// "forget" the release, as a crashed server would; leave data.
		if err := os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A restarted server.
	m2, err := New(m.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := m2.CleanStale()
	if err != nil || n != 3 {
		t.Fatalf("CleanStale() = %d, %v; want 3, nil", n, err)
	}
	assertNothingLeft(t, m)
}

func TestConcurrentPrepare(t *testing.T) {
	m := mustManager(t)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("c%d", i)
			dir, release, err := m.Prepare(id, 16<<20, 1000+i, 1000+i)
			if err != nil {
				errs <- fmt.Errorf("Prepare(%s): %w", id, err)
				return
			}
			if err := os.WriteFile(filepath.Join(dir, "id"), []byte(id), 0o600); err != nil {
				errs <- err
			}
			time.Sleep(50 * time.Millisecond) // all eight mounted at once
			if got, err := os.ReadFile(filepath.Join(dir, "id")); err != nil || string(got) != id {
				errs <- fmt.Errorf("%s/id = %q, %v; want %q", dir, got, err, id)
			}
			if err := release(); err != nil {
				errs <- fmt.Errorf("release(%s): %w", id, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assertNothingLeft(t, m)
}

func TestPrepareInvalidID(t *testing.T) {
	m := mustManager(t)
	for _, id := range []string{"", "../x", "a/b", strings.Repeat("x", 65)} {
		if _, _, err := m.Prepare(id, 0, 0, 0); err == nil {
			t.Errorf("Prepare(%q) succeeded, want an invalid id error", id)
		}
	}
}

// BenchmarkPrepareRelease measures making and removing a scratch area:
// from the formatted template (what Prepare does), and, as the baseline,
// with mkfs.ext4 run for every area (what it did before templates).
func BenchmarkPrepareRelease(b *testing.B) {
	m := mustManager(b)
	for _, tc := range []struct {
		name     string
		size     int64
		mkfsEach bool
	}{
		{"64MiB", 64 << 20, false},
		{"1GiB", DefaultSize, false},
		{"1GiB-mkfs-each", DefaultSize, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var prepare time.Duration
			n := 0
			for ; b.Loop(); n++ {
				if tc.mkfsEach {
					m.mu.Lock()
					clear(m.templates)
					m.mu.Unlock()
				}
				t0 := time.Now()
				_, release, err := m.Prepare(fmt.Sprintf("b%d", n), tc.size, 1000, 1000)
				if err != nil {
					b.Fatal(err)
				}
				prepare += time.Since(t0)
				if err := release(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(prepare.Nanoseconds())/float64(n), "prepare-ns/op")
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestReleaseWhileAnotherNamespaceHoldsTheMount: a sandbox created while
// this area was mounted holds a copy of the mount in its own mount
// namespace. Release must not wait for that namespace to go away (it
// once waited a full second, on every warm-pool run); the device is freed
// as soon as it does.
func TestReleaseWhileAnotherNamespaceHoldsTheMount(t *testing.T) {
	m := mustManager(t)
	dir, release, err := m.Prepare("held", 16<<20, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A process in a new mount namespace with a private copy of the
	// host's mounts, including this area.
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatalf("start a process in a new mount namespace: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	deadline := time.Now().Add(5 * time.Second)
	for {
		mi, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(holder.Process.Pid), "mountinfo"))
		if strings.Contains(string(mi), dir) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the new mount namespace never showed the area's mount")
		}
		time.Sleep(5 * time.Millisecond)
	}

	start := time.Now()
	if err := release(); err != nil {
		t.Fatalf("release: %v", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("release took %v while another namespace held the mount; it must not wait for it", d)
	}

	holder.Process.Kill()
	holder.Wait()
	deadline = time.Now().Add(5 * time.Second)
	for {
		bound := false
		for _, file := range loopBackingFiles() {
			bound = bound || strings.HasPrefix(file, m.stateDir+"/")
		}
		if !bound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the loop device was not freed after the namespace holding it went away")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTemplate: areas of one size start from one formatted template and
// are independent of each other; Close deletes the template.
func TestTemplate(t *testing.T) {
	m := mustManager(t)
	const size = 16 << 20
	a, relA, err := m.Prepare("a", size, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer relA()
	b, relB, err := m.Prepare("b", size, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer relB()
	if err := os.WriteFile(filepath.Join(a, "x"), []byte("in a"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b, "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file written in area a is visible in area b: %v", err)
	}
	tmpl := filepath.Join(m.stateDir, templatePrefix+strconv.Itoa(size))
	st, err := os.Stat(tmpl)
	if err != nil {
		t.Fatalf("template: %v", err)
	}
	var sys syscall.Stat_t
	if err := syscall.Stat(tmpl, &sys); err == nil && sys.Blocks*512 > 4<<20 {
		t.Errorf("template of %d bytes uses %d bytes of disk; want it sparse", st.Size(), sys.Blocks*512)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmpl); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("template after Close: %v", err)
	}
	// A Prepare after Close formats a new template.
	c, relC, err := m.Prepare("c", size, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer relC()
	if ents, err := os.ReadDir(c); err != nil || len(ents) != 0 {
		t.Errorf("new area holds %v, %v; want an empty root", ents, err)
	}
}

// TestKeepReady: with KeepReady, Prepare hands over an area prepared
// ahead of demand for the same size and owner, fresh and owned as asked,
// and Close releases the areas nobody took.
func TestKeepReady(t *testing.T) {
	m := mustManager(t)
	m.KeepReady(2)
	const size = 8 << 20
	readyCount := func(o owner) int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.ready[o])
	}
	o := owner{size, 1000, 1000}
	first, rel1, err := m.Prepare("first", size, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer rel1()
	if !strings.Contains(first, "/first/") {
		t.Errorf("first area %s: want one made on demand for it", first)
	}
	deadline := time.Now().Add(10 * time.Second)
	for readyCount(o) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d areas ready after 10s, want 2", readyCount(o))
		}
		time.Sleep(5 * time.Millisecond)
	}
	dir, rel2, err := m.Prepare("second", size, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer rel2()
	if !strings.Contains(dir, "/ready-") {
		t.Errorf("second area %s: want one prepared ahead of demand", dir)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil || st.Uid != 1000 || st.Gid != 1000 || st.Mode&0o777 != 0o700 {
		t.Errorf("ready area: %v, owner %d:%d mode %o; want 1000:1000 0700", err, st.Uid, st.Gid, st.Mode&0o777)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("ready area holds %v; want it empty", ents)
	}
	if _, err := os.ReadDir(first); err != nil {
		t.Fatal(err)
	}
	// Another owner gets an area of its own, on demand.
	other, rel3, err := m.Prepare("other", size, 2000, 2000)
	if err != nil {
		t.Fatal(err)
	}
	defer rel3()
	if err := syscall.Stat(other, &st); err != nil || st.Uid != 2000 {
		t.Errorf("other owner's area: %v, uid %d", err, st.Uid)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := readyCount(o); n != 0 {
		t.Errorf("%d areas ready after Close", n)
	}
	if mps := mountsUnder(m.stateDir + "/"); len(mps) != 3 {
		t.Errorf("mounts after Close: %v; want only the 3 areas in use", mps)
	}
}

// TestRecycle: with Recycle, a released area comes back wiped (no file
// left, the root its owner's with mode 0700, its space free again) to the
// next Prepare of the same size and owner, and is released once only;
// with KeepReady areas ready already, a released area is torn down.
func TestRecycle(t *testing.T) {
	m := mustManager(t)
	m.Recycle(1)
	const size = 16 << 20
	// Made on demand (nothing kept ready yet: no refill in flight).
	dir, rel, err := m.Prepare("a", size, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	m.KeepReady(1)
	// What a sandbox leaves: files, a tree, a symlink out of the area,
	// a big file, the root's mode changed.
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "tmp/deep/er"), 0o755)
	os.WriteFile(filepath.Join(dir, "tmp/deep/er/secret"), []byte("run a's data"), 0o600)
	os.Symlink(outside, filepath.Join(dir, "tmp/link"))
	os.WriteFile(filepath.Join(dir, "big"), bytes.Repeat([]byte("x"), 8<<20), 0o644)
	os.Chmod(dir, 0o755)
	var before syscall.Statfs_t
	syscall.Statfs(dir, &before)
	if err := rel(); err != nil {
		t.Fatal(err)
	}
	if err := rel(); err != nil { // a second call does nothing
		t.Fatal(err)
	}
	if r := readyAreas(m); len(r) != 1 || r[0].dir != dir {
		t.Fatalf("ready areas %v, want the released one", r)
	}
	got, rel2, err := m.Prepare("b", size, 1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if got != dir {
		t.Fatalf("Prepare gave %s, want the recycled %s", got, dir)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("the recycled area holds %v", ents)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil || st.Uid != 1000 || st.Mode&0o777 != 0o700 {
		t.Errorf("recycled root: %v, uid %d mode %o; want 1000 0700", err, st.Uid, st.Mode&0o777)
	}
	var after syscall.Statfs_t
	syscall.Statfs(dir, &after)
	if freed := int64(after.Bfree-before.Bfree) * after.Bsize; freed < 8<<20 {
		t.Errorf("%d bytes freed by the wipe, want the 8 MiB file's", freed)
	}
	if b, err := os.ReadFile(outside); err != nil || string(b) != "keep me" {
		t.Errorf("the wipe followed a symlink out of the area: %q, %v", b, err)
	}
	// The Prepare that took it started a refill; once that one is ready,
	// a released area is one too many and goes.
	deadline := time.Now().Add(10 * time.Second)
	for len(readyAreas(m)) < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := rel2(); err != nil {
		t.Fatal(err)
	}
	if mps := mountsUnder(dir); len(mps) != 0 {
		t.Errorf("the area released past KeepReady is still mounted: %v", mps)
	}
	if n := len(readyAreas(m)); n != 1 {
		t.Errorf("%d areas ready, want KeepReady (1)", n)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if mps := mountsUnder(m.stateDir + "/"); len(mps) != 0 {
		t.Errorf("mounts after Close: %v", mps)
	}
}

func readyAreas(m *Manager) []area {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []area
	for _, r := range m.ready {
		out = append(out, r...)
	}
	return out
}
