-- 0001_init: the whole schema of package sqlite's migrations 0001 to 0014
-- (see their comments for what each table and column means), in
-- PostgreSQL's types.
--
-- Times are BIGINT unix nanoseconds (UTC), as in SQLite, so they compare
-- and sort as numbers and round-trip exactly. Raw JSON is TEXT holding the
-- caller's bytes unchanged (checked to parse as json, which keeps them,
-- unlike jsonb); NULL stands for a nil json.RawMessage, '' for an empty
-- one. Flags set from Go bools are BOOLEAN.

CREATE TABLE projects (
	id            TEXT   NOT NULL PRIMARY KEY,
	name          TEXT   NOT NULL,
	created_at    BIGINT NOT NULL,
	rate_requests BIGINT CHECK (rate_requests IS NULL OR rate_requests > 0),
	rate_period_s BIGINT CHECK (rate_period_s IS NULL OR rate_period_s > 0),
	deleted_at    BIGINT
);

-- Created now, at millisecond precision (as in SQLite).
INSERT INTO projects (id, name, created_at)
VALUES ('default', 'Default', (floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint * 1000000);

CREATE TABLE agents (
	id              TEXT   NOT NULL PRIMARY KEY,
	name            TEXT   NOT NULL,
	current_version TEXT   NOT NULL,
	created_at      BIGINT NOT NULL,
	updated_at      BIGINT NOT NULL,
	project_id      TEXT   NOT NULL DEFAULT 'default',
	deleted_at      BIGINT
);
CREATE INDEX agents_project ON agents (project_id, id);

-- ord breaks ties between versions stored in the same nanosecond, in
-- the order they were stored (SQLite's rowid).
CREATE TABLE agent_versions (
	agent_id   TEXT      NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
	hash       TEXT      NOT NULL,
	config     TEXT      NOT NULL CHECK (config::json IS NOT NULL),
	package    BYTEA     NOT NULL,
	size       BIGINT    NOT NULL,
	created_at BIGINT    NOT NULL,
	ord        BIGSERIAL NOT NULL,
	PRIMARY KEY (agent_id, hash)
);

CREATE TABLE invocations (
	id             TEXT    NOT NULL PRIMARY KEY,
	agent_id       TEXT    NOT NULL,
	agent_version  TEXT    NOT NULL,
	entrypoint_tag TEXT    NOT NULL,
	streaming      BOOLEAN NOT NULL,
	transport      TEXT    NOT NULL,
	status         TEXT    NOT NULL,
	caller         TEXT    NOT NULL,
	user_id        TEXT    NOT NULL,
	input_args     TEXT,
	input_kwargs   TEXT,
	output         TEXT,
	chunks         BIGINT  NOT NULL,
	logs           TEXT    NOT NULL,
	error_code     TEXT    NOT NULL,
	error_message  TEXT    NOT NULL,
	created_at     BIGINT  NOT NULL,
	completed_at   BIGINT,
	duration_ms    BIGINT  NOT NULL,
	project_id     TEXT    NOT NULL DEFAULT 'default'
);
CREATE INDEX invocations_agent_created ON invocations (agent_id, created_at DESC, id DESC);
CREATE INDEX invocations_status_created ON invocations (status, created_at);
CREATE INDEX invocations_created ON invocations (created_at, id);
CREATE INDEX invocations_project_created ON invocations (project_id, created_at DESC, id DESC);

CREATE TABLE principals (
	id          TEXT   NOT NULL PRIMARY KEY,
	project_id  TEXT   REFERENCES projects (id),
	name        TEXT   NOT NULL,
	kind        TEXT   NOT NULL,
	role        TEXT   NOT NULL,
	created_at  BIGINT NOT NULL,
	disabled_at BIGINT,
	deleted_at  BIGINT,
	CHECK ((project_id IS NULL) = (role = 'owner'))
);
CREATE INDEX principals_project ON principals (project_id, id);

CREATE TABLE api_keys (
	id            TEXT    NOT NULL PRIMARY KEY,
	principal_id  TEXT    NOT NULL REFERENCES principals (id),
	project_id    TEXT    REFERENCES projects (id),
	name          TEXT    NOT NULL,
	hash          BYTEA   NOT NULL,
	scopes        TEXT    NOT NULL CHECK (json_typeof(scopes::json) = 'array'),
	agents        TEXT    NOT NULL CHECK (json_typeof(agents::json) = 'array'),
	created_at    BIGINT  NOT NULL,
	expires_at    BIGINT,
	revoked_at    BIGINT,
	last_used_at  BIGINT,
	last_used_ip  TEXT    NOT NULL,
	replaced_by   TEXT    NOT NULL,
	rate_requests BIGINT  CHECK (rate_requests IS NULL OR rate_requests > 0),
	rate_period_s BIGINT  CHECK (rate_period_s IS NULL OR rate_period_s > 0),
	rate_by_owner BOOLEAN NOT NULL DEFAULT false,
	users         TEXT    NOT NULL DEFAULT '[]' CHECK (json_typeof(users::json) = 'array')
);
CREATE INDEX api_keys_principal_created ON api_keys (principal_id, created_at DESC, id DESC);
CREATE INDEX api_keys_project_created ON api_keys (project_id, created_at DESC, id DESC);
CREATE INDEX api_keys_created ON api_keys (created_at DESC, id DESC);

CREATE TABLE security_events (
	id            TEXT   NOT NULL PRIMARY KEY,
	occurred_at   BIGINT NOT NULL,
	type          TEXT   NOT NULL,
	severity      TEXT   NOT NULL,
	principal     TEXT   NOT NULL,
	ip            TEXT   NOT NULL,
	agent_id      TEXT   NOT NULL,
	invocation_id TEXT   NOT NULL,
	request_id    TEXT   NOT NULL,
	message       TEXT   NOT NULL,
	details       TEXT   NOT NULL CHECK (json_typeof(details::json) = 'object')
);
CREATE INDEX security_events_time ON security_events (occurred_at DESC, id DESC);
CREATE INDEX security_events_type_time ON security_events (type, occurred_at DESC, id DESC);
CREATE INDEX security_events_severity_time ON security_events (severity, occurred_at DESC, id DESC);
CREATE INDEX security_events_principal_time ON security_events (principal, occurred_at DESC, id DESC);
CREATE INDEX security_events_ip_time ON security_events (ip, occurred_at DESC, id DESC);
CREATE INDEX security_events_agent_time ON security_events (agent_id, occurred_at DESC, id DESC);

CREATE TABLE secrets (
	agent_id   TEXT   NOT NULL,
	name       TEXT   NOT NULL,
	value      BYTEA  NOT NULL,
	created_at BIGINT NOT NULL,
	updated_at BIGINT NOT NULL,
	updated_by TEXT   NOT NULL,
	PRIMARY KEY (agent_id, name)
);

CREATE TABLE keyring_data_keys (
	id         BIGINT NOT NULL PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
	wrapped    BYTEA  NOT NULL,
	created_at BIGINT NOT NULL
);

CREATE TABLE keyring (
	id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	version        BIGINT  NOT NULL CHECK (version > 0),
	master_key_id  TEXT    NOT NULL,
	kdf_salt       BYTEA,
	kdf_time       BIGINT  CHECK (kdf_time > 0),
	kdf_memory_kib BIGINT  CHECK (kdf_memory_kib > 0),
	kdf_threads    BIGINT  CHECK (kdf_threads BETWEEN 1 AND 255),
	mac_root       BYTEA   NOT NULL,
	active_key_id  BIGINT  NOT NULL REFERENCES keyring_data_keys (id),
	updated_at     BIGINT  NOT NULL,
	CHECK ((kdf_salt IS NULL) = (kdf_time IS NULL)
		AND (kdf_salt IS NULL) = (kdf_memory_kib IS NULL)
		AND (kdf_salt IS NULL) = (kdf_threads IS NULL))
);

CREATE TABLE builds (
	id          TEXT    NOT NULL PRIMARY KEY,
	agent_id    TEXT    NOT NULL,
	project_id  TEXT    NOT NULL,
	version     TEXT    NOT NULL,
	env_key     TEXT    NOT NULL,
	cached      BOOLEAN NOT NULL,
	status      TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
	error       TEXT    NOT NULL,
	log         TEXT    NOT NULL,
	started_at  BIGINT  NOT NULL,
	finished_at BIGINT  NOT NULL
);
CREATE INDEX builds_agent_started ON builds (agent_id, started_at DESC, id DESC);

CREATE TABLE webhook_deliveries (
	id              TEXT    NOT NULL PRIMARY KEY,
	invocation_id   TEXT    NOT NULL,
	agent_id        TEXT    NOT NULL,
	project_id      TEXT    NOT NULL,
	source          TEXT    NOT NULL CHECK (source IN ('config', 'request')),
	url             TEXT    NOT NULL,
	with_output     BOOLEAN NOT NULL,
	status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts        BIGINT  NOT NULL,
	next_attempt_at BIGINT  NOT NULL,
	last_error      TEXT    NOT NULL,
	created_at      BIGINT  NOT NULL,
	updated_at      BIGINT  NOT NULL,
	delivered_at    BIGINT
);
CREATE INDEX webhook_deliveries_invocation ON webhook_deliveries (invocation_id, created_at, id);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
	delivery_id TEXT   NOT NULL,
	n           BIGINT NOT NULL,
	at          BIGINT NOT NULL,
	duration_ms BIGINT NOT NULL,
	status_code BIGINT NOT NULL,
	error       TEXT   NOT NULL,
	PRIMARY KEY (delivery_id, n)
);

-- A delivery goes with its invocation, an attempt with its delivery,
-- whichever path deletes them.
CREATE FUNCTION webhook_deliveries_follow_invocation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM webhook_deliveries WHERE invocation_id = OLD.id;
	RETURN OLD;
END $$;
CREATE TRIGGER webhook_deliveries_follow_invocation AFTER DELETE ON invocations
FOR EACH ROW EXECUTE FUNCTION webhook_deliveries_follow_invocation();

CREATE FUNCTION webhook_attempts_follow_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	DELETE FROM webhook_attempts WHERE delivery_id = OLD.id;
	RETURN OLD;
END $$;
CREATE TRIGGER webhook_attempts_follow_delivery AFTER DELETE ON webhook_deliveries
FOR EACH ROW EXECUTE FUNCTION webhook_attempts_follow_delivery();

CREATE TABLE memories (
	project_id   TEXT   NOT NULL,
	agent_id     TEXT   NOT NULL,
	user_id      TEXT   NOT NULL,
	image        TEXT   NOT NULL UNIQUE,
	sealed_key   BYTEA,
	cap_bytes    BIGINT NOT NULL CHECK (cap_bytes > 0),
	used_bytes   BIGINT NOT NULL CHECK (used_bytes >= 0),
	files        BIGINT NOT NULL CHECK (files >= 0),
	created_at   BIGINT NOT NULL,
	last_used_at BIGINT NOT NULL,
	PRIMARY KEY (project_id, agent_id, user_id)
);
CREATE INDEX memories_last_used ON memories (last_used_at);
