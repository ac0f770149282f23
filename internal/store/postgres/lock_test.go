package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// TestSessionLock: two nodes (two DBs on one database) take one named
// lock in turn: the second waits until the first unlocks, a wait ends
// with its context, another name is not held up, and a holder whose
// connection is terminated loses the lock to the waiter and sees Lost.
func TestSessionLock(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	a, b := mustOpen(t, url), mustOpen(t, url)

	first, err := a.SessionLock(t.Context(), "memory/x")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if _, err := b.SessionLock(ctx, "memory/x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second SessionLock while the first holds it = %v, want it to wait until its context ends", err)
	}
	other, err := b.SessionLock(t.Context(), "memory/y")
	if err != nil {
		t.Fatalf("a lock of another name = %v", err)
	}
	if err := other.Unlock(); err != nil {
		t.Fatal(err)
	}

	got := make(chan *SessionLock, 1)
	go func() {
		l, err := b.SessionLock(t.Context(), "memory/x")
		if err != nil {
			t.Error(err)
		}
		got <- l
	}()
	select {
	case <-got:
		t.Fatal("the second node got the lock before the first unlocked it")
	case <-time.After(200 * time.Millisecond):
	}
	if err := first.Unlock(); err != nil {
		t.Fatal(err)
	}
	var second *SessionLock
	select {
	case second = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("the second node still waits after the first unlocked")
	}
	if second == nil {
		t.FailNow()
	}

	// The holder's connection ends (as when its node dies): the lock is
	// free for the other node, and the holder is told.
	var pid uint32
	second.mu.Lock()
	pid = second.conn.PgConn().PID()
	second.mu.Unlock()
	if _, err := a.sql.ExecContext(t.Context(), "SELECT pg_terminate_backend($1)", int64(pid)); err != nil {
		t.Fatal(err)
	}
	third, err := a.SessionLock(t.Context(), "memory/x")
	if err != nil {
		t.Fatalf("the lock after its holder's connection ended = %v", err)
	}
	defer third.Unlock()
	select {
	case <-second.Lost():
	case <-time.After(3 * LockPing):
		t.Fatalf("Lost is not closed %v after the holder's connection ended", 3*LockPing)
	}
	if err := second.Unlock(); err == nil {
		t.Error("Unlock of a lost lock succeeded; want an error saying it was lost")
	}
}
