-- 0003_nodes: the registry of the nodes sharing the store, and the node
-- each invocation runs on, as package sqlite's 0015_nodes (see there).
CREATE TABLE nodes (
	id           TEXT   NOT NULL PRIMARY KEY,
	version      TEXT   NOT NULL,
	addr         TEXT   NOT NULL,
	started_at   BIGINT NOT NULL,
	heartbeat_at BIGINT NOT NULL,
	stopped_at   BIGINT,
	dead_at      BIGINT
);

ALTER TABLE invocations ADD COLUMN node_id TEXT NOT NULL DEFAULT '';

CREATE INDEX invocations_running_node ON invocations (node_id) WHERE status = 'running';
