-- 0006_secrets: agent secrets, injected into the sandbox environment of
-- the agent's invocations. The value is only ever stored sealed by the
-- keyring (AES-256-GCM, bound to agent and name); never in the clear.
CREATE TABLE secrets (
	agent_id   TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	value      BLOB    NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	updated_by TEXT    NOT NULL,
	PRIMARY KEY (agent_id, name)
) STRICT;
