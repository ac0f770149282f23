-- 0011_builds: the record of each deploy's making of an agent version
-- ready (its Python environment, built or cached, and its load check).
-- Failed builds are kept too, for their logs; a build belongs to its
-- agent's project. log holds pip's output (index credentials removed).
CREATE TABLE builds (
	id          TEXT    NOT NULL PRIMARY KEY,
	agent_id    TEXT    NOT NULL,
	project_id  TEXT    NOT NULL,
	version     TEXT    NOT NULL,
	env_key     TEXT    NOT NULL,
	cached      INTEGER NOT NULL CHECK (cached IN (0, 1)),
	status      TEXT    NOT NULL CHECK (status IN ('succeeded', 'failed')),
	error       TEXT    NOT NULL,
	log         TEXT    NOT NULL,
	started_at  INTEGER NOT NULL,
	finished_at INTEGER NOT NULL
) STRICT;

-- An agent's builds, newest first.
CREATE INDEX builds_agent_started ON builds (agent_id, started_at DESC, id DESC);
