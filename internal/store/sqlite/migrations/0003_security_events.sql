-- 0003_security_events: the security log (core.SecurityEvent).
--
-- Append-only apart from retention (DeleteEventsBefore). occurred_at is
-- INTEGER unix nanoseconds like every other time. Optional fields are ''
-- rather than NULL so that equality filters need no IS. details is a JSON
-- object of strings ('{}' for none).

CREATE TABLE security_events (
	id            TEXT    NOT NULL PRIMARY KEY,
	occurred_at   INTEGER NOT NULL,
	type          TEXT    NOT NULL,
	severity      TEXT    NOT NULL,
	principal     TEXT    NOT NULL,
	ip            TEXT    NOT NULL,
	agent_id      TEXT    NOT NULL,
	invocation_id TEXT    NOT NULL,
	request_id    TEXT    NOT NULL,
	message       TEXT    NOT NULL,
	details       TEXT    NOT NULL CHECK (json_valid(details) AND json_type(details) = 'object')
) STRICT;

-- Listing newest first (id breaks ties), since/until ranges, and
-- retention by age.
CREATE INDEX security_events_time ON security_events (occurred_at DESC, id DESC);
-- One index per equality filter, each ordered like the listing so that a
-- filtered page is read in order without sorting.
CREATE INDEX security_events_type_time ON security_events (type, occurred_at DESC, id DESC);
CREATE INDEX security_events_severity_time ON security_events (severity, occurred_at DESC, id DESC);
CREATE INDEX security_events_principal_time ON security_events (principal, occurred_at DESC, id DESC);
CREATE INDEX security_events_ip_time ON security_events (ip, occurred_at DESC, id DESC);
CREATE INDEX security_events_agent_time ON security_events (agent_id, occurred_at DESC, id DESC);
