// Package executor runs invocations: for each call it starts a fresh
// sandbox through a sandbox.Backend, hands the guest runtime the agent's
// entrypoints, sends the one invoke, and passes chunks and the result back
// as the guest produces them. It enforces the wall-clock deadline by
// killing the sandbox and turns every way a run can fail into a
// client-safe *core.Error.
//
// A Request names the agent version's code (AgentDir) and its built
// environment (EnvDir) by their host paths; the sandbox's Spec carries
// them, and the guest's init frame names them where the started sandbox
// shows them (sandbox.DirsOf: /agent and /env in the linux backend).
// The agent's config names its Python (core.AgentConfig.Runtime); the
// executor runs that interpreter, with the shim compiled for it, or the
// first of Config.Interpreters when the config names none.
//
// With Config.PoolSize > 0 it keeps, per agent version in use, a warm pool
// of sandboxes that have already imported the agent and said hello, so a
// request skips the cold start; the pool's size follows the version's
// arrival rate within PoolSize, PoolMax and a memory budget for all pools
// (scale.go). A pooled sandbox serves one invocation and is destroyed
// after it, except that an agent with resources.reuse_per_user has the
// sandbox of a cleanly ended run kept for the same caller's and user_id's
// next call (reuse.go). A version is its code and its environment: the
// pool key includes both and the interpreter, so requests with different
// environments never share a sandbox. See pool.go.
//
// At most Config.MaxConcurrent runs are in progress; more wait in a queue
// that is fair across agents and, within an agent, across callers, for a
// bounded time, and are then refused with UNAVAILABLE (queue.go).
package executor
