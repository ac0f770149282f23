package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"maps"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// DefaultStatementTimeout bounds every statement of a connection whose
// URL does not set statement_timeout itself.
const DefaultStatementTimeout = 30 * time.Second

// DefaultMaxConns is the size of the connection pool of a URL that does
// not set pool_max_conns.
const DefaultMaxConns = 16

// writerLock and chainLock are the keys of the transaction-scoped
// advisory locks (pg_advisory_xact_lock) that serialize the store's write
// transactions and the audit chain's appends, on every node.
const (
	writerLock int64 = 0x72756e6167656e74 // "runagent"
	chainLock  int64 = 0x72756e6175646974 // "runaudit"
	// migrateLock is held (session-scoped, in the migrating connection's
	// transaction) while migrations run.
	migrateLock int64 = 0x72756e6d69677261 // "runmigra"
)

// DB is a PostgreSQL-backed core.Store. It is safe for concurrent use,
// and several DBs (one per node) may share one database. Its store
// methods are package sqlite's, run in the postgres dialect (see
// sqlite.NewShared): one implementation for both databases.
type DB struct {
	*sqlite.DB
	pool *pgxpool.Pool
	sql  *sql.DB // the pool through database/sql, rewriting placeholders
	// lazyPool and lazy are a second, smaller pool whose connections
	// commit with synchronous_commit off, for the invocation records a
	// durable commit follows (sqlite.DB.SetLazyWriter, doc.go).
	lazyPool *pgxpool.Pool
	lazy     *sql.DB
	// read and write are sql, named as the shared code names its pools.
	read, write *sql.DB
	// target names the server (host and database, never credentials)
	// in errors.
	target string
}

var _ core.Store = (*DB)(nil)

// dialect is PostgreSQL's, for package sqlite's store methods.
var dialect = &sqlite.Dialect{
	Name:         "postgres",
	IsConstraint: isConstraint,
	Retry:        retry,
	// The schema's id primary keys and agent_versions.ord (a sequence).
	RowID:               "id",
	VersionOrder:        "v.ord",
	NonNegativeDuration: "GREATEST(0, (?::bigint - created_at) / 1000000)",
	// The lock the chain trigger takes (migrations/0002_audit.sql), so
	// that an append outside a write transaction (AppendAudit's single
	// statement, which takes no writer lock) waits too.
	LockAuditChain: "SELECT pg_advisory_xact_lock(" + strconv.FormatInt(chainLock, 10) + ")",
}

// Open connects to the PostgreSQL database at url (postgres://… or a
// key=value connection string) and migrates it to the schema this binary
// knows, under an advisory lock so that nodes starting together migrate
// it once. It fails with an error wrapping ErrSchemaTooNew if the
// database was migrated by a newer binary. Errors never contain the
// URL's password.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := ParseConfig(url)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", redactError(err, cfg.ConnConfig.Password))
	}
	sdb := sql.OpenDB(connector{stdlib.GetPoolConnector(pool)})
	// database/sql keeps 2 idle connections unless told otherwise: the
	// rest went back to the pool after each use, and every statement
	// prepared on them (the hot paths' are, see sqlite's stmtCache) was
	// deallocated and prepared again on the next. Keep as many as the
	// pool holds.
	sdb.SetMaxOpenConns(int(cfg.MaxConns))
	sdb.SetMaxIdleConns(int(cfg.MaxConns))
	db := &DB{pool: pool, sql: sdb, read: sdb, write: sdb, target: Target(cfg)}
	if err := retry(ctx, func() error { return migrate(ctx, sdb, time.Now) }); err != nil {
		sdb.Close()
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", db.target, redactError(err, cfg.ConnConfig.Password))
	}
	lcfg := LazyConfig(cfg)
	if db.lazyPool, err = pgxpool.NewWithConfig(ctx, lcfg); err != nil {
		sdb.Close()
		pool.Close()
		return nil, fmt.Errorf("postgres: open %s: %w", db.target, redactError(err, cfg.ConnConfig.Password))
	}
	// Its connections are conns too: a transaction on them would take
	// the writer lock as any other (the invocation records' writes are
	// single statements, which take none on either pool).
	db.lazy = sql.OpenDB(connector{stdlib.GetPoolConnector(db.lazyPool)})
	db.lazy.SetMaxOpenConns(int(lcfg.MaxConns))
	db.lazy.SetMaxIdleConns(int(lcfg.MaxConns))
	db.DB = sqlite.NewShared(sdb, sdb, dialect)
	db.DB.SetLazyWriter(db.lazy)
	return db, nil
}

// LazyConfig returns the configuration of the pool that writes the
// invocation records a durable commit follows: cfg's, with
// synchronous_commit off and half its connections (at least
// lazyMinConns; the writes are single statements that wait for no disk).
func LazyConfig(cfg *pgxpool.Config) *pgxpool.Config {
	lcfg := cfg.Copy()
	lcfg.ConnConfig.RuntimeParams = maps.Clone(cfg.ConnConfig.RuntimeParams)
	lcfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
	lcfg.MaxConns = max(lazyMinConns, cfg.MaxConns/2)
	lcfg.MinConns = min(lcfg.MinConns, lcfg.MaxConns)
	return lcfg
}

// lazyMinConns is the least number of connections of the lazy pool.
const lazyMinConns = 2

// ParseConfig parses a store URL into a pool configuration: the URL's
// own settings, a statement_timeout of DefaultStatementTimeout unless it
// sets one (0 turns it off), and application_name runagent. Errors never contain the
// password.
func ParseConfig(url string) (*pgxpool.Config, error) {
	if strings.TrimSpace(url) == "" {
		return nil, errors.New("postgres: empty store URL: want postgres://user@host:5432/database")
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn's parse errors quote the URL, redacting the password
		// only where they find it; say nothing of the URL instead.
		return nil, errors.New("postgres: the store URL does not parse: want postgres://user@host:5432/database, options as ?name=value (sslmode, statement_timeout, …)")
	}
	if !strings.Contains(url, "pool_max_conns") {
		// pgxpool's default, 4 on a small machine, is few for a server
		// whose write transactions queue on the writer lock, each
		// holding a connection, while reads go on.
		cfg.MaxConns = max(DefaultMaxConns, cfg.MaxConns)
	}
	rp := cfg.ConnConfig.RuntimeParams
	if rp["statement_timeout"] == "" { // missing or empty
		rp["statement_timeout"] = strconv.FormatInt(DefaultStatementTimeout.Milliseconds(), 10)
	}
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "runagent"
	}
	// A restarted server leaves the pool's idle connections dead: ping
	// any that sat idle before handing it out (pgxpool's default does
	// so after a second; make it explicit).
	cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool { return p.IdleDuration > time.Second }
	return cfg, nil
}

// Target names the server and database of cfg, without credentials, for
// messages.
func Target(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	host := c.Host
	if !strings.HasPrefix(host, "/") {
		host = net.JoinHostPort(host, strconv.Itoa(int(c.Port)))
	}
	return fmt.Sprintf("postgres %s/%s", host, c.Database)
}

// redactError returns err, or an error with its text where password
// appears replaced, so a password never reaches a log.
func redactError(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "xxxxx"))
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := retry(ctx, func() error { return db.sql.PingContext(ctx) }); err != nil {
		return fmt.Errorf("postgres: ping %s: %w", db.target, err)
	}
	return nil
}

// Close closes the connection pool. Calls after the first return nil.
func (db *DB) Close() error {
	db.DB.Close() // its prepared statements
	err := db.sql.Close()
	db.pool.Close()
	if lerr := db.lazy.Close(); err == nil {
		err = lerr
	}
	db.lazyPool.Close()
	if err != nil {
		return fmt.Errorf("postgres: close: %w", err)
	}
	return nil
}

// isConstraint reports whether err is a PRIMARY KEY or UNIQUE violation.
func isConstraint(err error) bool {
	e, ok := errors.AsType[*pgconn.PgError](err)
	return ok && e.Code == "23505"
}

// retryAttempts bounds retry: with its backoff, about 1.5 s in all.
const retryAttempts = 5

// retry runs fn until it succeeds, fails with an error that another try
// cannot mend, or retryAttempts have failed: PostgreSQL's serialization
// failures and deadlocks (the transaction was rolled back whole), and
// errors that PostgreSQL never saw the statement (a connection lost to a
// restarted server, a refused connection while it starts) are tried again
// after a growing pause. Giving up on those is a core.CodeUnavailable
// error (503), whose logged cause says what failed.
func retry(ctx context.Context, fn func() error) error {
	pause := 50 * time.Millisecond
	for i := 1; ; i++ {
		err := fn()
		if err == nil || !retryable(err) {
			return err
		}
		if i == retryAttempts {
			// 503 at the API: a client may try again later.
			return &core.Error{Code: core.CodeUnavailable, Message: "the database is unavailable: try again later", Err: &unavailable{tries: i, err: err}}
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		pause *= 2
	}
}

// unavailable is the error of an operation that retry gave up on; it is
// not retried again by an outer retry.
type unavailable struct {
	tries int
	err   error
}

func (e *unavailable) Error() string {
	return fmt.Sprintf("database unavailable after %d tries (is PostgreSQL running and reachable?): %v", e.tries, e.err)
}

func (e *unavailable) Unwrap() error { return e.err }

// lostConn reports whether err says the connection was lost or never
// made, so that the statement that failed was not run.
func lostConn(err error) bool {
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch e.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	return errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err)
}

// retryable reports whether the operation that failed with err may be
// run again as a whole.
func retryable(err error) bool {
	if _, ok := errors.AsType[*unavailable](err); ok {
		return false
	}
	if e, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch e.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return lostConn(err)
}

// rebind replaces each ? placeholder of query, outside quoted strings
// and identifiers, with $1, $2, … in order. The queries are the
// package's own constants; values are always arguments.
func rebind(query string) string {
	if !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}
