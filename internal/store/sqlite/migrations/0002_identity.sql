-- 0002_identity: projects, principals and API keys; agents and invocations
-- belong to a project.
--
-- Rows that existed before projects land in the 'default' project
-- (core.DefaultProject), which this migration creates. An instance owner
-- has no project: its project_id, and its keys', is NULL.

CREATE TABLE projects (
	id         TEXT    NOT NULL PRIMARY KEY,
	name       TEXT    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

-- Created now, at millisecond precision (all SQLite's clock offers).
INSERT INTO projects (id, name, created_at)
VALUES ('default', 'Default', CAST(unixepoch('subsec') * 1000 AS INTEGER) * 1000000);

CREATE TABLE principals (
	id          TEXT    NOT NULL PRIMARY KEY,
	project_id  TEXT    REFERENCES projects (id),
	name        TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	role        TEXT    NOT NULL,
	created_at  INTEGER NOT NULL,
	disabled_at INTEGER,
	-- Owners, and only owners, are instance-wide.
	CHECK ((project_id IS NULL) = (role = 'owner'))
) STRICT;

-- Listing a project's principals (or, with NULL, the owners) by id.
CREATE INDEX principals_project ON principals (project_id, id);

-- hash is the hash of the key's secret, never the secret. scopes and agents
-- are JSON arrays of strings ('[]': no restriction). project_id is the
-- principal's, copied so that keys are listed by project without a join.
-- replaced_by is the id of the key that rotated this one out, or ''.
CREATE TABLE api_keys (
	id           TEXT    NOT NULL PRIMARY KEY,
	principal_id TEXT    NOT NULL REFERENCES principals (id),
	project_id   TEXT    REFERENCES projects (id),
	name         TEXT    NOT NULL,
	hash         BLOB    NOT NULL,
	scopes       TEXT    NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
	agents       TEXT    NOT NULL CHECK (json_valid(agents) AND json_type(agents) = 'array'),
	created_at   INTEGER NOT NULL,
	expires_at   INTEGER,
	revoked_at   INTEGER,
	last_used_at INTEGER,
	last_used_ip TEXT    NOT NULL,
	replaced_by  TEXT    NOT NULL
) STRICT;

-- Listing keys newest first: a principal's, a project's, or all of them.
CREATE INDEX api_keys_principal_created ON api_keys (principal_id, created_at DESC, id DESC);
CREATE INDEX api_keys_project_created ON api_keys (project_id, created_at DESC, id DESC);
CREATE INDEX api_keys_created ON api_keys (created_at DESC, id DESC);

-- SQLite cannot add a column with both a non-NULL default and a foreign
-- key while foreign keys are enforced, and rebuilding agents would mean
-- rebuilding agent_versions too (dropping agents cascades to it), copying
-- every package; the store checks that an agent's project exists instead.
-- Invocations, like their agent_id, reference nothing.
ALTER TABLE agents ADD COLUMN project_id TEXT NOT NULL DEFAULT 'default';
ALTER TABLE invocations ADD COLUMN project_id TEXT NOT NULL DEFAULT 'default';

-- Listing one project's invocations newest first (id breaks ties).
CREATE INDEX invocations_project_created ON invocations (project_id, created_at DESC, id DESC);
