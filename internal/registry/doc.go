// Package registry is the control plane for agent code: it turns an
// uploaded package into a validated, content-addressed agent version in the
// store, keeps each version's files unpacked (read-only) on local disk, and
// answers "which code does agent X run now": from memory on one node, and
// with one read of the agent's row when several nodes share the store
// (Registry.Shared), so that a deploy, rollback or deletion on any node
// holds on all of them from the next run.
package registry
