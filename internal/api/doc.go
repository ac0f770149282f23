// Package api serves the RunAgent-compatible HTTP API (docs/api.md): runs
// over REST, streams over WebSocket and Server-Sent Events, health,
// architecture and invocation records, and runagent's own deploy routes.
// Every response is JSON in the RunAgent envelope; every failure carries a
// code from package core and a status that matches it, never a stack trace
// or an internal detail.
package api
