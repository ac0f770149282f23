-- 0015_nodes: the registry of the nodes sharing the store, and the node
-- each invocation runs on.
--
-- A node registers at start (started_at, heartbeat_at), heartbeats while
-- it runs, and gets stopped_at when it shuts down gracefully; a node
-- whose heartbeat is older than the timeout gets dead_at from the first
-- node to notice, which fails its running invocations in the same
-- transaction. Registering again clears both. Times are unix nanoseconds.
CREATE TABLE nodes (
	id           TEXT    NOT NULL PRIMARY KEY,
	version      TEXT    NOT NULL,
	addr         TEXT    NOT NULL,
	started_at   INTEGER NOT NULL,
	heartbeat_at INTEGER NOT NULL,
	stopped_at   INTEGER,
	dead_at      INTEGER
) STRICT;

-- '' for invocations recorded before this column.
ALTER TABLE invocations ADD COLUMN node_id TEXT NOT NULL DEFAULT '';

-- The sweep and the registry's counts look up a node's running
-- invocations, a few among many finished ones.
CREATE INDEX invocations_running_node ON invocations (node_id) WHERE status = 'running';
