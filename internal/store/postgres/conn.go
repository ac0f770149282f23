package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
)

// connector serves the pool's connections to database/sql as conns.
type connector struct{ driver.Connector }

// Connect takes a connection from the pool, trying again while
// PostgreSQL cannot be reached (see retry).
func (c connector) Connect(ctx context.Context) (driver.Conn, error) {
	var dc driver.Conn
	err := retry(ctx, func() (err error) {
		dc, err = c.Connector.Connect(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	pc, ok := dc.(pgxConn)
	if !ok {
		dc.Close()
		return nil, fmt.Errorf("postgres: the driver's connection is a %T, not pgx's", dc)
	}
	return &conn{pgxConn: pc}, nil
}

// pgxConn is what stdlib.Conn, the pool's connections, implement.
type pgxConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.NamedValueChecker
	driver.SessionResetter
}

// conn is a connection taking package sqlite's queries: it rewrites their
// ? placeholders to PostgreSQL's $n, and begins transactions as package
// sqlite's code expects of SQLite's. A read-only transaction is
// REPEATABLE READ, so that it reads one snapshot as SQLite's read
// transactions do; a write transaction is READ COMMITTED and first takes
// the transaction-scoped advisory lock writerLock, so that write
// transactions run one at a time across every node, as SQLite's BEGIN
// IMMEDIATE makes them run one at a time in a file, and each of their
// statements sees what the previous writer committed.
//
// A statement outside a transaction that fails because the connection
// was lost (lostConn) fails with driver.ErrBadConn, so that database/sql
// runs it again on another connection, which Connect tries to make until
// PostgreSQL answers or retry gives up. Transactions are run again whole
// by the dialect's Retry.
type conn struct {
	pgxConn
	inTx bool
}

// lost returns err, or driver.ErrBadConn if err says the connection was
// lost outside a transaction.
func (c *conn) lost(err error) error {
	if err != nil && !c.inTx && lostConn(err) {
		return driver.ErrBadConn
	}
	return err
}

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.pgxConn.PrepareContext(ctx, rebind(query))
	if err != nil {
		return nil, c.lost(err)
	}
	ps, ok := st.(pgxStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("postgres: the driver's statement is a %T, not pgx's", st)
	}
	return &stmt{pgxStmt: ps, c: c}, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.pgxConn.ExecContext(ctx, rebind(query), args)
	return res, c.lost(err)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.pgxConn.QueryContext(ctx, rebind(query), args)
	return rows, c.lost(err)
}

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if opts.ReadOnly {
		opts.Isolation = driver.IsolationLevel(sql.LevelRepeatableRead)
	}
	t, err := c.pgxConn.BeginTx(ctx, opts)
	if err != nil {
		return nil, c.lost(err)
	}
	if !opts.ReadOnly {
		if _, err := c.pgxConn.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, []driver.NamedValue{{Ordinal: 1, Value: writerLock}}); err != nil {
			t.Rollback()
			return nil, fmt.Errorf("take the writer lock: %w", c.lost(err))
		}
	}
	c.inTx = true
	return &tx{Tx: t, c: c}, nil
}

// tx is a transaction of conn, which is outside it again once it ends.
type tx struct {
	driver.Tx
	c *conn
}

func (t *tx) Commit() error {
	t.c.inTx = false
	return t.Tx.Commit()
}

func (t *tx) Rollback() error {
	t.c.inTx = false
	return t.Tx.Rollback()
}

// pgxStmt is what stdlib.Stmt, the pool's prepared statements, implement.
type pgxStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// stmt is a prepared statement of conn, whose lost connection is
// driver.ErrBadConn as conn's statements' is.
type stmt struct {
	pgxStmt
	c *conn
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	res, err := s.pgxStmt.ExecContext(ctx, args)
	return res, s.c.lost(err)
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := s.pgxStmt.QueryContext(ctx, args)
	return rows, s.c.lost(err)
}
