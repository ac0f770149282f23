// Package core holds runagent's domain types: agents and their entrypoints,
// agent versions, invocations, and the error type whose code and safe
// message are what clients see. It imports only the standard library; every
// adapter (store, HTTP, sandbox) speaks these types.
package core
