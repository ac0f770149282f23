-- 0012_webhook_deliveries: completion webhooks of invocations, one row
-- per (invocation, target), with every attempt. url is sealed like an
-- invocation's payloads (it may hold a token). A delivery goes with its
-- invocation (the trigger), whichever path deletes the invocation.
CREATE TABLE webhook_deliveries (
	id              TEXT    NOT NULL PRIMARY KEY,
	invocation_id   TEXT    NOT NULL,
	agent_id        TEXT    NOT NULL,
	project_id      TEXT    NOT NULL,
	source          TEXT    NOT NULL CHECK (source IN ('config', 'request')),
	url             TEXT    NOT NULL,
	with_output     INTEGER NOT NULL CHECK (with_output IN (0, 1)),
	status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
	attempts        INTEGER NOT NULL,
	next_attempt_at INTEGER NOT NULL,
	last_error      TEXT    NOT NULL,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	delivered_at    INTEGER
) STRICT;

-- An invocation's deliveries, oldest first.
CREATE INDEX webhook_deliveries_invocation ON webhook_deliveries (invocation_id, created_at, id);
-- What a dispatcher resumes at start.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';

CREATE TABLE webhook_attempts (
	delivery_id TEXT    NOT NULL,
	n           INTEGER NOT NULL,
	at          INTEGER NOT NULL,
	duration_ms INTEGER NOT NULL,
	status_code INTEGER NOT NULL,
	error       TEXT    NOT NULL,
	PRIMARY KEY (delivery_id, n)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER webhook_deliveries_follow_invocation AFTER DELETE ON invocations
BEGIN
	DELETE FROM webhook_deliveries WHERE invocation_id = OLD.id;
END;

CREATE TRIGGER webhook_attempts_follow_delivery AFTER DELETE ON webhook_deliveries
BEGIN
	DELETE FROM webhook_attempts WHERE delivery_id = OLD.id;
END;
