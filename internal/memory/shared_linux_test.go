//go:build linux

package memory

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runagent/runagent/internal/store/postgres"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// pgLocker is the server's Locker: a PostgreSQL session lock per store.
type pgLocker struct{ db *postgres.DB }

func (l pgLocker) Lock(ctx context.Context, name string) (Held, error) {
	return l.db.SessionLock(ctx, name)
}

// sharedManagers opens two Managers ("nodes") on one directory, with the
// env's SQLite store for records and one PostgreSQL database for locks,
// whose URL it returns.
func sharedManagers(t *testing.T, e *env, fence time.Duration) (*Manager, *Manager, string) {
	t.Helper()
	url := pgtest.Start(t).NewDatabase(t)
	db, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a := e.manager(t, Options{Locker: pgLocker{db}, Fence: fence})
	b := e.manager(t, Options{Locker: pgLocker{db}, Fence: fence})
	return a, b, url
}

// TestSharedLingeringCopy: on node A a copy of a store's mount outlives
// its unmount (as in a sandbox made ahead of demand, here a bind mount).
// With a Locker, A made the file system read-only first, so node B may
// mount the image at once and write it while the copy lives, and the
// image stays a clean file system; A mounts it again afterwards and sees
// B's writes.
func TestSharedLingeringCopy(t *testing.T) {
	e := newEnv(t)
	a, b, _ := sharedManagers(t, e, time.Minute)
	l := acquire(t, a, alice, 0)
	os.WriteFile(filepath.Join(l.Dir, "f"), []byte("from A"), 0o600)
	other := t.TempDir()
	if err := syscall.Mount(filepath.Dir(l.Dir), other, "", syscall.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Unmount(other, syscall.MNT_DETACH) })
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(other, "x"), nil, 0o600); err == nil {
		t.Errorf("the lingering copy on node A is still writable after A let the store go")
	}

	start := time.Now()
	lb := acquire(t, b, alice, 0)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("node B waited %v: a clean let-go needs no fence", d)
	}
	if got, err := os.ReadFile(filepath.Join(lb.Dir, "f")); string(got) != "from A" {
		t.Errorf("node B reads %q, %v; want what A wrote", got, err)
	}
	os.WriteFile(filepath.Join(lb.Dir, "f"), []byte("from B"), 0o600)
	if err := lb.Release(); err != nil {
		t.Fatal(err)
	}
	la := acquire(t, a, alice, 0)
	if got, err := os.ReadFile(filepath.Join(la.Dir, "f")); string(got) != "from B" {
		t.Errorf("node A reads %q, %v after B wrote; want B's", got, err)
	}
	la.Release()
	syscall.Unmount(other, syscall.MNT_DETACH)
	image := filepath.Join(a.dir, alice.Name(), "image")
	if out, err := exec.Command("/usr/sbin/e2fsck", "-f", "-n", image).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -n: %v\n%s", err, out)
	}
}

// TestSharedFenceAfterLostLock: node A's lock ends with its connection
// while A holds the store: A's lease reports Lost, and node B takes the
// store only after the fence (A did not let go cleanly); a clean let-go
// afterwards needs no fence.
func TestSharedFenceAfterLostLock(t *testing.T) {
	e := newEnv(t)
	const fence = 2 * time.Second
	a, b, url := sharedManagers(t, e, fence)
	l := acquire(t, a, alice, 0)
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	if _, err := admin.Exec(t.Context(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'runagent lock'"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-l.Lost():
	case <-time.After(3 * postgres.LockPing):
		t.Fatal("the lease did not report its lost lock")
	}
	// A stops its run, as the server does on Lost, and lets go of what
	// it no longer holds.
	l.Release()
	start := time.Now()
	lb := acquire(t, b, alice, 0)
	if d := time.Since(start); d < fence {
		t.Errorf("node B mounted the store %v after A lost its lock; want it to wait the fence, %v", d, fence)
	}
	lb.Release()
	start = time.Now()
	acquire(t, b, alice, 0).Release()
	if d := time.Since(start); d >= fence {
		t.Errorf("taking a store let go cleanly took %v: no fence is due", d)
	}
}
