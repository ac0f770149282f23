// Package localreg writes this machine's RunAgent local registry: the
// SQLite file runagent_local.db in ~/.runagent (or $RUNAGENT_CACHE_DIR)
// in which RunAgent's SDKs, in local mode (no host or port given), look
// an agent's address up by its id.
//
// The file belongs to RunAgent's tools as much as to runagent: the table
// is created in RunAgent's own schema when it is missing, rows of other
// agents are left alone, and only the rows of the agents a server serves
// are written.
package localreg
