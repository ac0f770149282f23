-- 0015_console_sessions: web console sessions (core.Session). The id is
-- the SHA-256 of the session token, never the token. No foreign key to
-- api_keys: a session is checked against its key on every use, and an
-- OIDC sign-in (later) has no key.
CREATE TABLE console_sessions (
	id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 64),
	method       TEXT    NOT NULL CHECK (method <> ''),
	key_id       TEXT    NOT NULL,
	principal_id TEXT    NOT NULL,
	subject      TEXT    NOT NULL,
	created_at   INTEGER NOT NULL,
	last_seen_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL
);
CREATE INDEX console_sessions_key ON console_sessions (key_id);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
CREATE INDEX console_sessions_seen ON console_sessions (last_seen_at);
