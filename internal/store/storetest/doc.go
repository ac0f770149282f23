// Package storetest is the conformance suite for core.Store and
// core.IdentityStore implementations: every store (SQLite now, PostgreSQL
// later) runs Run against a fresh instance and must pass all of it, so the
// server can rely on one set of semantics whichever store is configured.
package storetest
