// Package sqlite stores agents, agent versions, invocation records,
// projects, principals, API keys and the security log in an embedded SQLite
// database file, implementing core.Store, core.IdentityStore and
// core.EventStore.
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
package sqlite
