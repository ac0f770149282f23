// Package python holds the Python shim, the guest runtime that imports a
// Python agent's entrypoints and runs one call of them for the runagent
// host (docs/guest-protocol.md). The shim is embedded in the binary; the
// host writes it to a cache directory once (WriteShim) and the supervisor
// runs it with "python3 -I -B -u <shim>" and the control channel on fd 3.
package python
