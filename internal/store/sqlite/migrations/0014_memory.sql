-- 0014_memory: persistent-memory stores, one per (project, agent, user).
-- The files live in an ext4 image under the server's memory directory
-- (image names it); sealed_key is the image's fscrypt master key sealed
-- by the keyring with the store's identity as associated data, or NULL
-- for a store the operator accepted unencrypted. Deleting the row and the
-- image is erasure: without the key nothing of the files can be read.
CREATE TABLE memories (
	project_id   TEXT    NOT NULL,
	agent_id     TEXT    NOT NULL,
	user_id      TEXT    NOT NULL,
	image        TEXT    NOT NULL UNIQUE,
	sealed_key   BLOB,
	cap_bytes    INTEGER NOT NULL CHECK (cap_bytes > 0),
	used_bytes   INTEGER NOT NULL CHECK (used_bytes >= 0),
	files        INTEGER NOT NULL CHECK (files >= 0),
	created_at   INTEGER NOT NULL,
	last_used_at INTEGER NOT NULL,
	PRIMARY KEY (project_id, agent_id, user_id)
) STRICT;

-- Retention finds the stores nobody used for a while.
CREATE INDEX memories_last_used ON memories (last_used_at);
