package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache keeps the statements of the hot paths prepared, once per
// pool (database/sql then prepares each once per connection and reuses
// it): SQLite otherwise parses and compiles the SQL, triggers included,
// on every call — about a sixth of the CPU of an audited read, by pprof.
type stmtCache struct {
	mu sync.Mutex
	m  map[stmtKey]*sql.Stmt
}

type stmtKey struct {
	pool  *sql.DB
	query string
}

// prepared returns query prepared on pool. Never call it for db.write
// inside a transaction of the writer: preparing needs the writer pool's
// only connection, which the transaction holds.
func (db *DB) prepared(ctx context.Context, pool *sql.DB, query string) (*sql.Stmt, error) {
	k := stmtKey{pool, query}
	db.stmts.mu.Lock()
	s, ok := db.stmts.m[k]
	db.stmts.mu.Unlock()
	if ok {
		return s, nil
	}
	// Not under the lock: preparing may wait for a connection.
	s, err := pool.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	if prev, ok := db.stmts.m[k]; ok {
		s.Close() // another caller prepared it meanwhile
		return prev, nil
	}
	if db.stmts.m == nil {
		db.stmts.m = map[stmtKey]*sql.Stmt{}
	}
	db.stmts.m[k] = s
	return s, nil
}

// closeStmts closes the prepared statements (before the pools).
func (db *DB) closeStmts() {
	db.stmts.mu.Lock()
	defer db.stmts.mu.Unlock()
	for k, s := range db.stmts.m {
		s.Close()
		delete(db.stmts.m, k)
	}
}
