// Package storetest is the conformance suite for core.Store,
// core.IdentityStore and core.EventStore implementations: every store
// (SQLite now, PostgreSQL later) runs Run against a fresh instance and must
// pass all of it, so the server can rely on one set of semantics whichever
// store is configured.
package storetest
