package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/runagent/runagent/internal/core"
)

// sessionLockClass is the first key of every SessionLock
// (pg_advisory_lock(int4, int4)): the two-key form keeps them apart from
// the store's one-key locks (writerLock, chainLock, migrateLock), and the
// class from any other application's two-key locks on the database.
const sessionLockClass int32 = 0x726c636b // "rlck"

// LockPing is how often a held SessionLock checks that its connection,
// and so its lock, lives; a check fails after as long again.
const LockPing = 2 * time.Second

// SessionLock is a session-level advisory lock held for this node on a
// connection of its own, outside the pool: the lock lasts as long as the
// connection. Unlock releases it; if the connection ends otherwise — the
// node dies (the kernel closes its socket and PostgreSQL frees the lock at
// once), the database restarts, the network parts them (the server's TCP
// keepalives, set on the connection to a few seconds, end it) — the lock
// is freed for the other nodes, and Lost is closed here within about
// 2×LockPing, so that its holder can stop using what it guards.
type SessionLock struct {
	name string
	lost chan struct{}
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex // serializes the connection's users
	conn *pgx.Conn
	once sync.Once
	err  error
}

// lockKey is the second key of name's lock: 32 bits of its SHA-256. Two
// names that share it take turns needlessly, never together.
func lockKey(name string) int32 {
	h := sha256.Sum256([]byte(name))
	return int32(binary.BigEndian.Uint32(h[:4]))
}

// SessionLock takes the advisory lock called name on a new connection,
// waiting until another node's holder lets it go or ctx ends (the error
// then wraps ctx's). Waiting costs that connection; PostgreSQL queues
// waiters in order.
func (db *DB) SessionLock(ctx context.Context, name string) (*SessionLock, error) {
	cfg := db.pool.Config().ConnConfig.Copy()
	rp := cfg.RuntimeParams
	rp["application_name"] = "runagent lock"
	// The wait is bounded by ctx, not by the pool's statement timeout.
	rp["statement_timeout"] = "0"
	rp["lock_timeout"] = "0"
	// A node that vanishes without closing its socket (power loss, a
	// partition) loses its locks once these keepalives go unanswered
	// (about 5 + 3×2 s); ignored on a Unix socket, where the kernel
	// reports a dead peer at once.
	rp["tcp_keepalives_idle"] = "5"
	rp["tcp_keepalives_interval"] = "2"
	rp["tcp_keepalives_count"] = "3"
	// A cancelled wait is cancelled on the server, so that no stray
	// waiter is left in the lock's queue.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: time.Second}
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("postgres: lock %s: %w", name, ctx.Err())
		}
		return nil, &core.Error{Code: core.CodeUnavailable, Message: "the database is unavailable: try again later",
			Err: fmt.Errorf("postgres: connect to %s to lock %s: %w", db.target, name, redactError(err, cfg.Password))}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1, $2)", sessionLockClass, lockKey(name)); err != nil {
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return nil, fmt.Errorf("postgres: lock %s: %w", name, ctx.Err())
		}
		return nil, &core.Error{Code: core.CodeUnavailable, Message: "the database is unavailable: try again later",
			Err: fmt.Errorf("postgres: lock %s on %s: %w", name, db.target, err)}
	}
	l := &SessionLock{name: name, conn: conn, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch()
	return l, nil
}

// watch pings the lock's connection every LockPing until Unlock; a ping
// that fails or takes longer than LockPing closes Lost and the
// connection (which frees the lock on the server if it did not notice
// yet).
func (l *SessionLock) watch() {
	defer close(l.done)
	t := time.NewTicker(LockPing)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		ctx, cancel := context.WithTimeout(context.Background(), LockPing)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			l.conn.Close(context.Background())
			close(l.lost)
		}
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Lost is closed when the lock was lost other than by Unlock: from then
// on another node may hold it.
func (l *SessionLock) Lost() <-chan struct{} { return l.lost }

// Unlock releases the lock and closes its connection. A lock lost
// before fails with an error saying so. Calls after the first return
// what the first did.
func (l *SessionLock) Unlock() error {
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.mu.Lock()
		defer l.mu.Unlock()
		select {
		case <-l.lost:
			l.err = fmt.Errorf("postgres: the lock %s was lost with its connection before it was released", l.name)
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var ok bool
		err := l.conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1, $2)", sessionLockClass, lockKey(l.name)).Scan(&ok)
		if err == nil && !ok {
			err = errors.New("not held")
		}
		if err != nil {
			l.err = fmt.Errorf("postgres: unlock %s: %w", l.name, err)
		}
		// Closing the session frees the lock all the same.
		l.conn.Close(ctx)
	})
	return l.err
}
