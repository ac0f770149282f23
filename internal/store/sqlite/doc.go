// Package sqlite stores agents, agent versions and invocation records in an
// embedded SQLite database file, implementing core.Store.
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
package sqlite
