package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
)

var (
	_ audit.IndexStore = (*DB)(nil)
	_ audit.ChainStore = (*DB)(nil)
)

const auditColumns = `seq, at, principal_id, key_id, subject, action, resource, outcome, ip, user_agent, request_id, details, prev_hash, hash`

const auditInsert = `INSERT INTO audit_records (` + auditColumns + `)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// auditInsertRows is how many records one execution of auditInsertMany
// stores: one statement for several rows saves database/sql's and the
// driver's cost per execution (the rows are inserted one after the other,
// each after its chain trigger).
const auditInsertRows = 16

var auditInsertMany = `INSERT INTO audit_records (` + auditColumns + `) VALUES ` +
	strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, auditInsertRows), ", ")

// AppendAudit stores recs in one durable transaction (see durableTx): all
// of them or, on error, none; on PostgreSQL a batch of up to
// auditBatchRows records is one INSERT outside a transaction, which
// commits durably on its own. Each record needs a positive Seq, hashes of
// audit.HashSize bytes and strings that are valid UTF-8 without NUL, or
// the batch is a core.CodeValidation error; the database refuses, with
// the error of its audit_records_chain trigger, a record that does not
// follow the stored chain (the next seq, the last hash as PrevHash), an
// error wrapping audit.ErrNotNext. An empty batch does nothing.
func (db *DB) AppendAudit(ctx context.Context, recs []audit.Record) error {
	return db.appendAudit(ctx, recs, true)
}

// IndexAudit stores recs like AppendAudit, in one transaction that is not
// synced: for records that are durable elsewhere already (the audit
// Log's journal). They become durable with the next synced commit or WAL
// checkpoint; SyncAudit forces one.
func (db *DB) IndexAudit(ctx context.Context, recs []audit.Record) error {
	return db.appendAudit(ctx, recs, false)
}

// SyncAudit makes every committed transaction durable: it commits one
// synced transaction, which syncs the WAL with every frame before it.
func (db *DB) SyncAudit(ctx context.Context) error {
	return db.durableTx(ctx, "sync audit records", func(tx *sql.Tx) error {
		// A write is needed for the commit to write (and sync) the WAL;
		// the purge guard is idle outside a purge.
		_, err := tx.ExecContext(ctx, `UPDATE audit_purge_guard SET active = 0 WHERE id = 1`)
		return err
	})
}

// AppendAuditChained stores the records chain returns for the head of
// the stored chain, read in the same durable transaction (see durableTx)
// as they are inserted: a write transaction, which runs alone (SQLite's
// one writer), after the dialect's LockAuditChain (on PostgreSQL the
// advisory lock the chain trigger of every append takes, in a write
// transaction or not), so the head cannot move between the read and the
// insert, and a batch chained from it always extends the trail, however
// many Logs or nodes append. chain is called again if the transaction is
// run again (PostgreSQL's retries); what its last call returned is
// stored, all of it or, on error, none. Records are checked as
// AppendAudit checks them.
func (db *DB) AppendAuditChained(ctx context.Context, chain func(audit.Head) []audit.Record) error {
	var stmts auditInserts
	if db.dialect == sqliteDialect {
		var err error
		if stmts, err = db.auditStmts(ctx, true); err != nil {
			return err
		}
	}
	return db.durableTx(ctx, "append audit records", func(tx *sql.Tx) error {
		if q := db.dialect.LockAuditChain; q != "" {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("lock the audit chain: %w", err)
			}
		}
		var h audit.Head
		err := tx.QueryRowContext(ctx, auditHeadQuery).Scan(&h.Seq, &h.Hash)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read audit head: %w", err)
		}
		recs := chain(h)
		rows, err := encodeAuditRecords(recs)
		if err != nil {
			return err
		}
		if db.dialect != sqliteDialect {
			return insertAuditBatch(ctx, tx, recs, rows)
		}
		return insertAudit(ctx, tx, stmts, recs, rows)
	})
}

// auditBatchRows is the most records insertAuditBatch inserts with one
// statement.
const auditBatchRows = 128

// auditInsertN caches the INSERTs of 1 to auditBatchRows records.
var auditInsertN [auditBatchRows + 1]struct {
	once sync.Once
	q    string
}

// auditInsertOf returns the INSERT of n records (1 to auditBatchRows) in
// one statement.
func auditInsertOf(n int) string {
	c := &auditInsertN[n]
	c.once.Do(func() {
		c.q = `INSERT INTO audit_records (` + auditColumns + `) VALUES ` +
			strings.TrimSuffix(strings.Repeat(`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?), `, n), ", ")
	})
	return c.q
}

// execer runs a statement: a pool (a statement that commits on its own)
// or a transaction.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// insertAuditBatch inserts recs, whose rows are rows, with one statement
// per auditBatchRows records. On PostgreSQL each statement is one round
// trip, whose cost (two context switches and the scheduling of a server
// process on a loaded machine) outweighs its execution; the driver
// prepares each text once per connection. SQLite compiles a statement it
// was not given prepared every time: there, insertAudit's prepared ones
// are cheaper.
func insertAuditBatch(ctx context.Context, ex execer, recs []audit.Record, rows []auditRow) error {
	for i := 0; i < len(recs); i += auditBatchRows {
		n := min(auditBatchRows, len(recs)-i)
		args := make([]any, 0, 14*n)
		for j := i; j < i+n; j++ {
			r := &recs[j]
			args = append(args, r.Seq, rows[j].at, r.PrincipalID, r.KeyID, r.Subject, r.Action, r.Resource,
				r.Outcome, r.IP, r.UserAgent, r.RequestID, rows[j].details, r.PrevHash, r.Hash)
		}
		if _, err := ex.ExecContext(ctx, auditInsertOf(n), args...); err != nil {
			return fmt.Errorf("records %d to %d: %w", recs[i].Seq, recs[i+n-1].Seq, err)
		}
	}
	return nil
}

// auditRow is what a record's row holds beside its fields as they are.
type auditRow struct {
	at      int64
	details string
}

// encodeAuditRecords checks recs and encodes their times and details.
func encodeAuditRecords(recs []audit.Record) ([]auditRow, error) {
	rows := make([]auditRow, len(recs))
	for i := range recs {
		r := &recs[i]
		if err := checkAuditRecord(r); err != nil {
			return nil, err
		}
		at, err := encodeTime(r.Time)
		if err != nil {
			return nil, err
		}
		details, err := encodeDetails(r.Details)
		if err != nil {
			return nil, fmt.Errorf("append audit record %d: encode details: %w", r.Seq, err)
		}
		rows[i] = auditRow{at, details}
	}
	return rows, nil
}

// auditInserts are the prepared INSERTs of audit records: one row, and
// auditInsertRows rows (nil unless asked for).
type auditInserts struct{ one, many *sql.Stmt }

// auditStmts prepares the INSERTs of audit records, many only if asked.
//
// They are prepared once, before the transaction takes the writer's only
// connection; the transaction uses that connection's compiled copy.
// Compiling the INSERT and its triggers per batch cost ~70 µs, 5 % of an
// audited read's CPU (pprof, BenchmarkGatewayFull).
func (db *DB) auditStmts(ctx context.Context, many bool) (auditInserts, error) {
	var s auditInserts
	var err error
	if s.one, err = db.prepared(ctx, db.write, auditInsert); err != nil {
		return s, fmt.Errorf("append audit records: %w", err)
	}
	if many {
		if s.many, err = db.prepared(ctx, db.write, auditInsertMany); err != nil {
			return s, fmt.Errorf("append audit records: %w", err)
		}
	}
	return s, nil
}

func (db *DB) appendAudit(ctx context.Context, recs []audit.Record, durable bool) error {
	if len(recs) == 0 {
		return nil
	}
	rows, err := encodeAuditRecords(recs)
	if err != nil {
		return err
	}
	if durable && db.dialect != sqliteDialect && len(recs) <= auditBatchRows {
		// Elsewhere (PostgreSQL) a statement outside a transaction
		// commits, durably, on its own: one round trip instead of a
		// transaction's four or more. The chain trigger, not the writer
		// lock, orders it against every other append.
		if err := insertAuditBatch(ctx, db.write, recs, rows); err != nil {
			if _, ok := errors.AsType[*core.Error](err); ok {
				return err
			}
			return fmt.Errorf("append audit records: %w", notNext(err))
		}
		return nil
	}
	stmts, err := db.auditStmts(ctx, len(recs) >= auditInsertRows)
	if err != nil {
		return err
	}
	tx := db.durableTx
	if !durable {
		tx = db.writeTx
	}
	return tx(ctx, "append audit records", func(tx *sql.Tx) error {
		return notNext(insertAudit(ctx, tx, stmts, recs, rows))
	})
}

// chainRefusal is the message of the audit_records_chain trigger of
// both databases' migrations.
const chainRefusal = "audit record does not extend the chain"

// notNext returns err, wrapping audit.ErrNotNext as well if it is the
// chain trigger's refusal of a record.
func notNext(err error) error {
	if err != nil && strings.Contains(err.Error(), chainRefusal) {
		return fmt.Errorf("%w: %w", audit.ErrNotNext, err)
	}
	return err
}

// insertAudit inserts recs, whose rows are rows, in tx:
// auditInsertRows at a time while that many are left (and stmts.many is
// prepared), then one at a time.
func insertAudit(ctx context.Context, tx *sql.Tx, stmts auditInserts, recs []audit.Record, rows []auditRow) error {
	args := make([]any, 0, 14*min(len(recs), auditInsertRows))
	add := func(i int) {
		r := &recs[i]
		args = append(args, r.Seq, rows[i].at, r.PrincipalID, r.KeyID, r.Subject, r.Action, r.Resource,
			r.Outcome, r.IP, r.UserAgent, r.RequestID, rows[i].details, r.PrevHash, r.Hash)
	}
	i := 0
	if stmts.many != nil && len(recs) >= auditInsertRows {
		stmt := tx.StmtContext(ctx, stmts.many)
		defer stmt.Close()
		for ; i+auditInsertRows <= len(recs); i += auditInsertRows {
			args = args[:0]
			for j := i; j < i+auditInsertRows; j++ {
				add(j)
			}
			if _, err := stmt.ExecContext(ctx, args...); err != nil {
				return fmt.Errorf("records %d to %d: %w", recs[i].Seq, recs[i+auditInsertRows-1].Seq, err)
			}
		}
	}
	if i == len(recs) {
		return nil
	}
	stmt := tx.StmtContext(ctx, stmts.one)
	defer stmt.Close()
	for ; i < len(recs); i++ {
		args = args[:0]
		add(i)
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("record %d: %w", recs[i].Seq, err)
		}
	}
	return nil
}

// checkAuditRecord validates what AppendAudit refuses.
func checkAuditRecord(r *audit.Record) error {
	switch {
	case r.Seq <= 0:
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("audit record seq %d is not positive", r.Seq), Field: "seq"}
	case len(r.Hash) != audit.HashSize || len(r.PrevHash) != audit.HashSize:
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("audit record %d: hashes must be %d bytes", r.Seq, audit.HashSize), Field: "hash"}
	}
	for _, f := range []struct{ name, v string }{
		{"principal_id", r.PrincipalID}, {"key_id", r.KeyID}, {"subject", r.Subject}, {"action", r.Action},
		{"resource", r.Resource}, {"outcome", r.Outcome}, {"ip", r.IP}, {"user_agent", r.UserAgent}, {"request_id", r.RequestID},
	} {
		if !representable(f.v) {
			return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("audit record %d: %s is not valid UTF-8 or holds a NUL byte", r.Seq, f.name), Field: f.name}
		}
	}
	for k, v := range r.Details {
		if !representable(k) || !representable(v) {
			return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("audit record %d: details are not valid UTF-8 or hold a NUL byte", r.Seq), Field: "details"}
		}
	}
	return nil
}

// durableTx runs fn in a write transaction whose COMMIT is synced to
// stable storage before it returns, and commits it if fn returns nil.
//
// The database runs with synchronous=NORMAL, under which a WAL commit is
// not synced (the WAL is, at each checkpoint): a power loss may undo the
// last transactions, though never corrupt the file. The audit trail must
// not lose a committed record, so its transactions run with
// synchronous=FULL, under which SQLite syncs the WAL at every COMMIT; the
// rest of the database keeps the cheaper setting. The setting belongs to a
// connection and cannot change inside a transaction, so durableTx takes
// the writer connection for itself, sets FULL, runs the transaction
// (BEGIN IMMEDIATE, from the DSN) and sets NORMAL again before giving the
// connection back. A connection whose setting cannot be restored is
// discarded: the pool opens a new one with the DSN's pragmas. An
// in-memory database has nothing to sync and uses the writer as it is.
//
// modernc.org/sqlite applies PRAGMA synchronous per connection like C
// SQLite: TestDurableTxSynchronous checks the setting inside and after the
// transaction, and under strace each audit commit makes one fsync(2) while
// the other writes make none (only WAL checkpoints do). The driver syncs
// with fsync, not fdatasync, unless sqlite.Fdatasync switches it,
// process-wide.
func (db *DB) durableTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	if db.path == MemoryPath || db.dialect != sqliteDialect {
		// Elsewhere every commit is durable.
		return db.writeTx(ctx, what, fn)
	}
	conn, err := db.write.Conn(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer func() {
		if _, err := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return commitWith(tx, what, fn)
}

// writeTx runs fn in a transaction of the writer and commits it if fn
// returns nil.
func (db *DB) writeTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	run := func() error {
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return commitWith(tx, what, fn)
	}
	if db.dialect.Retry == nil {
		return run()
	}
	return db.dialect.Retry(ctx, run)
}

func commitWith(tx *sql.Tx, what string, fn func(*sql.Tx) error) error {
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		if _, ok := errors.AsType[*core.Error](err); ok {
			return err
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", what, err)
	}
	return nil
}

// auditHeadQuery reads the head of the chain (see AuditHead).
const auditHeadQuery = `
SELECT seq, hash FROM (
	SELECT * FROM (SELECT seq, hash FROM audit_records ORDER BY seq DESC LIMIT 1) r
	UNION ALL
	SELECT * FROM (SELECT purged_through_seq, hash FROM audit_checkpoints ORDER BY purged_through_seq DESC LIMIT 1) c
) h ORDER BY seq DESC LIMIT 1`

// AuditHead returns the seq and hash of the last record or, if there is
// none, of the latest checkpoint; zero if there is neither.
func (db *DB) AuditHead(ctx context.Context) (audit.Head, error) {
	var h audit.Head
	err := db.read.QueryRowContext(ctx, auditHeadQuery).Scan(&h.Seq, &h.Hash)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Head{}, nil
	}
	if err != nil {
		return audit.Head{}, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

// AuditRecords lists the records matching f in seq order, at most
// f.PageSize(). An invalid f is a core.CodeValidation error.
func (db *DB) AuditRecords(ctx context.Context, f audit.Filter) ([]audit.Record, error) {
	q, args, err := auditQuery(f)
	if err != nil {
		return nil, err
	}
	return list(ctx, db, "list audit records", scanAuditRecord, q, args...)
}

// auditQuery validates f and returns the query that lists its records.
func auditQuery(f audit.Filter) (string, []any, error) {
	if err := f.Validate(); err != nil {
		return "", nil, err
	}
	var c conditions
	c.add("seq > ?", f.AfterSeq)
	c.equal("principal_id", f.PrincipalID)
	c.equal("action", f.Action)
	c.equal("resource", f.Resource)
	c.equal("outcome", f.Outcome)
	if !f.Since.IsZero() {
		c.add("at >= ?", clampTime(f.Since))
	}
	if !f.Until.IsZero() {
		c.add("at < ?", clampTime(f.Until))
	}
	q := `SELECT ` + auditColumns + ` FROM audit_records` + c.where() + ` ORDER BY seq LIMIT ?`
	return q, append(c.args, f.PageSize()), nil
}

// ScanAudit calls fn with every checkpoint and a sequence of every record,
// both in seq order and read in one read transaction, so that a purge or
// an append running meanwhile is either wholly seen or not at all. The
// transaction lasts as long as fn: while it does, SQLite cannot
// checkpoint the WAL past it, so the WAL grows with the writes meanwhile.
func (db *DB) ScanAudit(ctx context.Context, fn func(cps []audit.Checkpoint, recs iter.Seq2[audit.Record, error]) error) error {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("scan audit trail: %w", err)
	}
	defer tx.Rollback()
	cps, err := auditCheckpoints(ctx, tx)
	if err != nil {
		return err
	}
	recs := func(yield func(audit.Record, error) bool) {
		rows, err := tx.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_records ORDER BY seq`)
		if err != nil {
			yield(audit.Record{}, fmt.Errorf("scan audit records: %w", err))
			return
		}
		defer rows.Close()
		for rows.Next() {
			r, err := scanAuditRecord(rows)
			if err != nil && !errors.Is(err, audit.ErrMalformed) {
				yield(r, fmt.Errorf("scan audit records: %w", err))
				return
			}
			if !yield(r, err) {
				return
			}
		}
		if err := rows.Err(); err != nil {
			yield(audit.Record{}, fmt.Errorf("scan audit records: %w", err))
		}
	}
	return fn(cps, recs)
}

// PurgeAudit deletes the records through cp.Seq and stores cp, in one
// durable transaction: it sets the audit_purge_guard row, inserts the
// checkpoint (which the database refuses unless record cp.Seq is stored
// with hash cp.Hash), deletes the records it covers (which the database
// refuses for any record a checkpoint does not cover, or outside a purge)
// and clears the guard. It returns how many records it deleted.
func (db *DB) PurgeAudit(ctx context.Context, cp audit.Checkpoint) (int64, error) {
	switch {
	case cp.Seq <= 0:
		return 0, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("audit checkpoint seq %d is not positive", cp.Seq), Field: "seq"}
	case len(cp.Hash) != audit.HashSize || len(cp.Signature) != audit.HashSize:
		return 0, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("audit checkpoint hash and signature must be %d bytes", audit.HashSize), Field: "hash"}
	}
	at, err := encodeTime(cp.Time)
	if err != nil {
		return 0, err
	}
	var n int64
	err = db.durableTx(ctx, "purge audit records", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE audit_purge_guard SET active = 1 WHERE id = 1`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_checkpoints (purged_through_seq, hash, created_at, signature)
VALUES (?, ?, ?, ?)`, cp.Seq, cp.Hash, at, cp.Signature); err != nil {
			return fmt.Errorf("store checkpoint %d: %w", cp.Seq, err)
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM audit_records WHERE seq <= ?`, cp.Seq)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE audit_purge_guard SET active = 0 WHERE id = 1`)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// AuditCheckpoints returns every checkpoint in seq order.
func (db *DB) AuditCheckpoints(ctx context.Context) ([]audit.Checkpoint, error) {
	return auditCheckpoints(ctx, db.read)
}

func auditCheckpoints(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}) ([]audit.Checkpoint, error) {
	rows, err := q.QueryContext(ctx, `SELECT purged_through_seq, hash, created_at, signature FROM audit_checkpoints ORDER BY purged_through_seq`)
	if err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	defer rows.Close()
	cps := []audit.Checkpoint{}
	for rows.Next() {
		var (
			cp audit.Checkpoint
			at int64
		)
		if err := rows.Scan(&cp.Seq, &cp.Hash, &at, &cp.Signature); err != nil {
			return nil, fmt.Errorf("list audit checkpoints: %w", err)
		}
		cp.Time = decodeTime(at)
		cps = append(cps, cp)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit checkpoints: %w", err)
	}
	return cps, nil
}

// scanAuditRecord reads one row of auditColumns. Details that do not
// decode as a JSON object of strings give the record, with its Seq and
// hashes, and an error wrapping audit.ErrMalformed.
func scanAuditRecord(s scanner) (audit.Record, error) {
	var (
		r       audit.Record
		at      int64
		details string
	)
	err := s.Scan(&r.Seq, &at, &r.PrincipalID, &r.KeyID, &r.Subject, &r.Action, &r.Resource, &r.Outcome,
		&r.IP, &r.UserAgent, &r.RequestID, &details, &r.PrevHash, &r.Hash)
	if err != nil {
		return r, err
	}
	r.Time = decodeTime(at)
	if r.Details, err = decodeAuditDetails(details); err != nil {
		return r, fmt.Errorf("audit record %d: details: %w: %w", r.Seq, audit.ErrMalformed, err)
	}
	return r, nil
}

// decodeAuditDetails decodes the details column: a JSON object of
// strings, nil for none.
func decodeAuditDetails(s string) (map[string]string, error) {
	if s == "{}" {
		return nil, nil
	}
	var d map[string]string
	if err := json.Unmarshal([]byte(s), &d); err != nil {
		return nil, err
	}
	if d == nil {
		// JSON null: not what AppendAudit writes.
		return nil, errors.New("not a JSON object")
	}
	if len(d) == 0 {
		return nil, nil
	}
	return d, nil
}
