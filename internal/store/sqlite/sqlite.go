package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/core"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

var useFdatasync sync.Once

// MemoryPath opens a private in-memory database, for tests and throwaway
// servers. It is served by a single connection and is lost on Close.
const MemoryPath = ":memory:"

// pragmas run on every connection, in this order. busy_timeout comes first
// so that switching a fresh file to WAL waits for other processes instead
// of failing.
var pragmas = []string{
	"busy_timeout(5000)",
	"journal_mode(WAL)",
	"foreign_keys(1)",
	"synchronous(NORMAL)",
}

// DB is a SQLite-backed core.Store and core.IdentityStore. It is safe for
// concurrent use.
type DB struct {
	path  string
	write *sql.DB // one connection; transactions BEGIN IMMEDIATE
	read  *sql.DB // query-only connections; the same as write in memory

	// now is the clock used for timestamps the store fills in.
	now func() time.Time
	// sealer encrypts secrets and invocation payloads; nil stores
	// payloads in the clear and refuses secrets.
	sealer core.Sealer
	// stmts are the hot paths' prepared statements.
	stmts stmtCache
	// dialect is the database's: sqliteDialect for a DB of Open.
	dialect *Dialect
	// lazy, if set (SetLazyWriter), writes invocation records whose
	// context says a durable commit follows (core.DurableCommitFollows)
	// without waiting for them to reach disk.
	lazy *sql.DB
}

// SetSealer makes db seal what it stores at rest with s (the keyring):
// secrets always, invocation payloads from now on. Call it before the DB
// is shared.
func (db *DB) SetSealer(s core.Sealer) { db.sealer = s }

var _ core.Store = (*DB)(nil)

// Open opens the database file at path, creating it (mode 0600) and its
// parent directory (mode 0700) if they do not exist, and migrates it to the
// schema this binary knows. It fails with an error wrapping ErrSchemaTooNew
// if the file was migrated by a newer binary. An existing file keeps its
// permissions. Path may be MemoryPath.
func Open(ctx context.Context, path string) (*DB, error) {
	useFdatasync.Do(func() {
		// SQLite's own builds sync with fdatasync on Linux; this transpiled
		// one defaults to fsync, which on ext4 also journals the file's
		// timestamps: a durable commit (the audit trail's) takes about
		// twice as long for nothing. Process-wide; unavailable on macOS.
		sqlite.Fdatasync(true)
	})
	if path == "" {
		return nil, errors.New("sqlite: open: empty database path")
	}
	db := &DB{path: path, now: time.Now, dialect: sqliteDialect}
	if path == MemoryPath {
		if err := db.openMemory(ctx); err != nil {
			return nil, fmt.Errorf("sqlite: open in-memory database: %w", err)
		}
		return db, nil
	}
	if err := db.openFile(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}

func (db *DB) openFile(ctx context.Context) error {
	abs, err := filepath.Abs(db.path)
	if err != nil {
		return err
	}
	db.path = abs
	if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	// SQLite would create the file with mode 0644 (less umask); create it
	// first so it is private. SQLite gives the -wal and -shm files the
	// permissions of the database file.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	u := url.URL{Scheme: "file", Path: abs}
	db.write, err = sql.Open("sqlite", dsn(u.String(), false))
	if err != nil {
		return err
	}
	db.write.SetMaxOpenConns(1)
	db.write.SetMaxIdleConns(1)
	db.write.SetConnMaxLifetime(0)
	db.write.SetConnMaxIdleTime(0)
	// Migrate before the readers open, so they only ever see a complete
	// schema in WAL mode.
	if err := migrate(ctx, db.write, db.now); err != nil {
		db.write.Close()
		return err
	}

	db.read, err = sql.Open("sqlite", dsn(u.String(), true))
	if err != nil {
		db.write.Close()
		return err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	db.read.SetMaxOpenConns(n)
	db.read.SetMaxIdleConns(n)
	if err := db.read.PingContext(ctx); err != nil {
		db.Close()
		return err
	}
	return nil
}

// openMemory serves an in-memory database through one connection that is
// never closed, since every connection to ":memory:" is its own database.
func (db *DB) openMemory(ctx context.Context) error {
	w, err := sql.Open("sqlite", dsn("file::memory:", false))
	if err != nil {
		return err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w, db.now); err != nil {
		w.Close()
		return err
	}
	db.write, db.read = w, w
	return nil
}

// dsn returns the data source name for a SQLite URI. Writer connections
// begin transactions with BEGIN IMMEDIATE; reader connections are
// query-only.
func dsn(uri string, readOnly bool) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Set("_txlock", "immediate")
	}
	return uri + "?" + q.Encode()
}

// Path returns the absolute path of the database file, or MemoryPath.
func (db *DB) Path() string { return db.path }

// Ping checks that both connection pools can reach the database.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.write.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping writer: %w", err)
	}
	if err := db.read.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping reader: %w", err)
	}
	return nil
}

// Close lets SQLite refresh its query planner statistics and closes the
// database. Calls after the first return nil.
func (db *DB) Close() error {
	db.closeStmts()
	if db.dialect != sqliteDialect {
		return nil // NewShared's: its caller closes the pools
	}
	// Best effort: recommended before closing a long-lived connection.
	db.write.Exec("PRAGMA optimize")
	var err error
	if db.read != db.write {
		err = db.read.Close()
	}
	if werr := db.write.Close(); err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// isSQLiteConstraint reports whether err is a PRIMARY KEY or UNIQUE
// violation of SQLite.
func isSQLiteConstraint(err error) bool {
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return true
		}
	}
	return false
}

// Times are stored as unix nanoseconds.

// encodeTime returns t as unix nanoseconds, or an error if t is outside
// the range an int64 of nanoseconds can hold (years 1678 to 2262).
func encodeTime(t time.Time) (int64, error) {
	n := t.UnixNano()
	if !time.Unix(0, n).Equal(t) {
		return 0, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("time %s is out of range", t.UTC().Format(time.RFC3339Nano))}
	}
	return n, nil
}

func decodeTime(n int64) time.Time { return time.Unix(0, n).UTC() }
