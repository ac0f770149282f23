// Package api serves the RunAgent-compatible HTTP API (docs/api.md): runs
// over REST, streams over WebSocket and Server-Sent Events, health,
// architecture and invocation records, and runagent's own control routes
// (deploy, keys, projects, principals, secrets, audit, keyring).
// Every response is JSON in the RunAgent envelope; every failure carries a
// code from package core and a status that matches it, never a stack trace
// or an internal detail.
//
// How to read it: routes.go declares every route once (access rule,
// audit, handler); gateway.go is the way every request takes, step by
// step, before its handler; the handler groups (agents.go, run.go and
// stream.go, invocations.go, secrets.go, keys.go, projects.go, block.go
// and observe.go, auditapi.go and keyring.go) each hold only what their
// routes use. access.go, narrow.go and rates.go decide who may do what;
// audit.go records it; envelope.go and events.go are how every part
// answers and reports.
package api
