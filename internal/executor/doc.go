// Package executor runs invocations: for each call it starts a fresh
// sandbox through a sandbox.Backend, hands the guest runtime the agent's
// entrypoints, sends the one invoke, and passes chunks and the result back
// as the guest produces them. It enforces the wall-clock deadline by
// killing the sandbox and turns every way a run can fail into a
// client-safe *core.Error.
package executor
