package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Dialect is what the store's methods need to know of the SQL database
// under them: the few statements that differ, how constraint violations
// look, and whether a failed write transaction may be run again. The
// methods themselves (this package's) are shared by every dialect; the
// queries are written with ? placeholders, which a dialect whose
// database wants others rewrites in its driver.
type Dialect struct {
	// Name is the database's name in errors ("sqlite", "postgres").
	Name string
	// IsConstraint reports whether err is a PRIMARY KEY or UNIQUE
	// violation.
	IsConstraint func(err error) bool
	// Retry runs fn, a whole write transaction, until it succeeds or
	// fails with an error another try cannot mend. Nil runs it once.
	Retry func(ctx context.Context, fn func() error) error
	// RowID names a column that orders a table's rows by insertion and
	// picks one row: SQLite's rowid; a column of the schema elsewhere.
	RowID string
	// VersionOrder orders the versions of an agent by upload among
	// equal created_at (alias v).
	VersionOrder string
	// NonNegativeDuration is the expression of a run's duration in
	// milliseconds from its created_at to the time argument, at least 0.
	NonNegativeDuration string
	// LockAuditChain, if set, is run in a write transaction before it
	// reads the head of the audit chain to extend it: it must hold off
	// every other append until the transaction ends, including appends
	// outside a write transaction. Empty: the write transaction alone
	// does (SQLite's one writer).
	LockAuditChain string
}

// sqliteDialect is SQLite's.
var sqliteDialect = &Dialect{
	Name:                "sqlite",
	IsConstraint:        isSQLiteConstraint,
	RowID:               "rowid",
	VersionOrder:        "v.rowid",
	NonNegativeDuration: "MAX(0, (? - created_at) / 1000000)",
}

// NewShared returns a store whose methods run on the database behind
// read and write, spoken to in dialect d: write begins transactions that
// run one at a time, read read-only ones that each read one snapshot.
// Read and write may be the same pool. Its Close closes neither: the
// caller, who opened them, does. The database must be migrated to a
// schema with the tables and columns of this package's migrations.
func NewShared(read, write *sql.DB, d *Dialect) *DB {
	return &DB{read: read, write: write, dialect: d, now: time.Now}
}

// SetLazyWriter makes db write the invocation records of a context
// marked by core.WithDurableCommitFollows (CreateInvocation and
// FinishInvocation; nothing else) through lazy: a pool on the same
// database whose commits do not wait for the disk (PostgreSQL's
// synchronous_commit off), which is safe because the durable commit
// that follows flushes them too. Lazy's connections must begin
// transactions as write's do. Call it before the DB is shared; its
// Close does not close lazy.
func (db *DB) SetLazyWriter(lazy *sql.DB) { db.lazy = lazy }

// invocationWriter is the pool that writes invocation records for ctx:
// the lazy one if db has one and ctx says a durable commit follows.
func (db *DB) invocationWriter(ctx context.Context) *sql.DB {
	if db.lazy != nil && core.DurableCommitFollows(ctx) {
		return db.lazy
	}
	return db.write
}

// isConstraint reports whether err is a PRIMARY KEY or UNIQUE violation
// in db's dialect.
func (db *DB) isConstraint(err error) bool { return db.dialect.IsConstraint(err) }
