// Package registry is the control plane for agent code: it turns an
// uploaded package into a validated, content-addressed agent version in the
// store, keeps each version's files unpacked (read-only) on local disk, and
// answers "which code does agent X run now" without a database round trip.
package registry
