-- 0001_init: agents, their immutable versions, and invocation records.
--
-- Times are INTEGER unix nanoseconds (UTC), so they compare and sort as
-- numbers and round-trip exactly. Raw JSON (config, input, output) is TEXT
-- holding the caller's bytes unchanged; NULL stands for a nil
-- json.RawMessage, '' for an empty one.

CREATE TABLE agents (
	id              TEXT    NOT NULL PRIMARY KEY,
	name            TEXT    NOT NULL,
	current_version TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE agent_versions (
	agent_id   TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	hash       TEXT    NOT NULL,
	config     TEXT    NOT NULL CHECK (json_valid(config)),
	package    BLOB    NOT NULL,
	size       INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (agent_id, hash)
) STRICT;

CREATE TABLE invocations (
	id             TEXT    NOT NULL PRIMARY KEY,
	agent_id       TEXT    NOT NULL,
	agent_version  TEXT    NOT NULL,
	entrypoint_tag TEXT    NOT NULL,
	streaming      INTEGER NOT NULL,
	transport      TEXT    NOT NULL,
	status         TEXT    NOT NULL,
	caller         TEXT    NOT NULL,
	user_id        TEXT    NOT NULL,
	input_args     TEXT,
	input_kwargs   TEXT,
	output         TEXT,
	chunks         INTEGER NOT NULL,
	logs           TEXT    NOT NULL,
	error_code     TEXT    NOT NULL,
	error_message  TEXT    NOT NULL,
	created_at     INTEGER NOT NULL,
	completed_at   INTEGER,
	duration_ms    INTEGER NOT NULL
) STRICT;

-- Listing one agent's invocations newest first (id breaks ties).
CREATE INDEX invocations_agent_created ON invocations (agent_id, created_at DESC, id DESC);
-- Status filters, and finding the running ones after a crash.
CREATE INDEX invocations_status_created ON invocations (status, created_at);
-- Listing all invocations, and retention by age.
CREATE INDEX invocations_created ON invocations (created_at, id);
