// Package sqlite stores agents, agent versions, invocation records,
// projects, principals, API keys, agent secrets, the security log, the
// keyring (keyring.Store) and the audit trail (audit.Store) in an embedded
// SQLite database file, implementing core.Store.
//
// The file is opened in WAL mode with two connection pools: a writer pool of
// exactly one connection, whose transactions start with BEGIN IMMEDIATE so
// concurrent writers queue in Go instead of failing with SQLITE_BUSY, and a
// query-only reader pool that runs concurrently with the writer. The schema
// is created and upgraded by numbered SQL migrations embedded in the binary,
// each applied in its own transaction and recorded in schema_migrations; a
// database migrated by a newer binary is refused.
//
// Times are stored as INTEGER unix nanoseconds and read back as UTC, so they
// sort as numbers and round-trip exactly between the years 1678 and 2262.
//
// Every agent and invocation belongs to a project; rows from before
// projects existed belong to core.DefaultProject, which the migration that
// introduced projects creates. Foreign keys are enforced, except from
// agents and invocations to projects: the store checks an agent's project
// itself, and records an invocation's as given.
//
// Security events are appended in batches, one transaction per batch, and
// never updated; their Details are a JSON object in a TEXT column. Every
// equality filter of core.EventFilter has an index ordered like the listing
// (time, then id, descending), so a filtered page is read in order.
//
// With a Sealer (SetSealer: the keyring), secrets are stored only sealed,
// and invocation payloads (inputs, output, logs, error message) as
// "sealed:v1:" + base64 of the ciphertext, bound by AAD to table, column
// and row; rows written before stay readable, and Reencrypt re-seals them.
// The keyring's tables hold only wrapped keys.
//
// The audit trail is append-only in the database itself: triggers refuse
// UPDATE, refuse DELETE except by a purge that writes a covering signed
// checkpoint in the same transaction, and refuse an INSERT that does not
// extend the hash chain. AppendAudit commits durably (synchronous=FULL
// for that transaction on the writer connection); IndexAudit stores
// records that the audit Log's journal already holds durably, with
// synchronous=NORMAL like every other write, and SyncAudit forces one
// synced commit before the journal starts over. The process syncs with
// fdatasync.
package sqlite
