// Package postgres stores everything package sqlite stores — agents and
// their versions, invocation records, projects, principals, API keys,
// agent secrets, the security log, builds, webhook deliveries,
// persistent-memory records, the keyring (keyring.Store) and the audit
// trail (audit.Store) — in a PostgreSQL database that several runagent
// nodes share, implementing core.Store with pgx (a pgxpool.Pool served
// through database/sql). The store methods are package sqlite's, not a
// copy: they run in this package's sqlite.Dialect (the few statements that
// differ, constraint errors, retries) on connections that rewrite their ?
// placeholders to $n and begin transactions as described below. This
// package holds only what is PostgreSQL's own: opening and configuring
// the pool, its migrations (schema and audit-chain trigger), retries.
//
// The schema is created and upgraded by numbered SQL migrations embedded
// in the binary, applied in one transaction under an advisory lock, so
// nodes starting together migrate it once, and recorded in
// schema_migrations; a database migrated by a newer binary is refused.
//
// Every connection runs with a statement_timeout (DefaultStatementTimeout
// unless the URL sets one). Operations that fail with a serialization
// failure or deadlock, or before PostgreSQL saw them (a connection lost
// to a restarted server, a refused connection while it starts), are
// retried a bounded number of times; then the error says the database is
// unavailable. The pool pings a connection that sat idle before handing
// it out, so a restarted server costs no reopening of the store.
//
// Write transactions run one at a time across every node: each takes the
// transaction-scoped advisory lock writerLock first (READ COMMITTED, so
// each of its statements sees what the previous writer committed), which
// gives them the semantics of SQLite's single writer that the code shares.
// Read-only transactions are REPEATABLE READ: one snapshot.
//
// The audit trail is one hash chain for all nodes, serialized in the
// database: the BEFORE INSERT trigger on audit_records takes the advisory
// lock chainLock and only then reads the head (last record, or latest
// checkpoint), refusing a record that is not the next seq with the head's
// hash as prev_hash. Two nodes can therefore never both extend one head.
// A node's audit Log that knows the head (nobody else appended since its
// last batch) appends its batch with one INSERT outside a transaction,
// which commits durably on its own: one round trip, ordered by the
// trigger's lock alone. Once another node has moved the head, the Log
// appends through AppendAuditChained instead, whose write transaction
// takes chainLock before it reads the head: no other append commits
// between the read and the commit, so appends from any number of nodes
// under steady contention all succeed, failing only when the database
// cannot be reached (503). `audit verify` over the table checks the
// whole trail of every node. As in package sqlite, triggers refuse
// UPDATE, TRUNCATE, and DELETE except by a purge that writes a covering
// signed checkpoint in the same transaction. PostgreSQL commits durably (synchronous_commit on), so
// AppendAudit, IndexAudit and SyncAudit all commit synced.
//
// Durability of invocation records. Every write commits synced (the WAL
// flushed before the commit returns) except CreateInvocation and
// FinishInvocation called with a context marked by
// core.WithDurableCommitFollows: those run on a second, smaller pool
// (LazyConfig) whose connections set synchronous_commit off, as SQLite
// commits them with synchronous=NORMAL. The API marks only requests whose
// answer is held back until their audit record's durable append, which
// starts after those writes have returned (plain runs, and a background
// run's 202 after its CreateInvocation); a stream, a background run's
// end and logs written after the answer stay synced. The WAL is one
// sequence and a synced commit flushes it up to its own commit record,
// so the audit append makes the earlier lazy commits durable too: a
// crash of PostgreSQL loses no acknowledged run's record
// (TestPostgresCrashKeepsAcknowledgedRuns in internal/server). It may
// lose lazy commits of runs that were never answered (the audit append
// failed: 503), which may leave such a run's record running, or absent.
//
// Times are BIGINT unix nanoseconds read back as UTC, as in package
// sqlite. PostgreSQL text holds neither NUL bytes nor invalid UTF-8; such
// strings are refused with a validation error, never altered.
package postgres
