-- 0008_audit: the tamper-evident audit trail (audit.Record, audit.Checkpoint).
--
-- audit_records is a hash chain: each row's hash is SHA-256 of its
-- prev_hash and the canonical encoding of its other columns (see package
-- audit), and its prev_hash is the hash of the row before it. seq is the
-- rowid, numbered 1, 2, 3, ... without gaps. at is INTEGER unix
-- nanoseconds like every other time; optional fields are '' rather than
-- NULL; details is a JSON object of strings ('{}' for none).
--
-- The table is append-only in the database itself: the triggers below
-- refuse an UPDATE, refuse a DELETE except of rows a purge has just
-- covered with a checkpoint, and refuse an INSERT that does not extend the
-- chain. They stop mistakes and any code path that only has SQL; someone
-- who can write the file can drop them, which is what the hash chain and
-- the signed checkpoints are for.

CREATE TABLE audit_records (
	seq          INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
	at           INTEGER NOT NULL,
	principal_id TEXT    NOT NULL,
	key_id       TEXT    NOT NULL,
	subject      TEXT    NOT NULL,
	action       TEXT    NOT NULL,
	resource     TEXT    NOT NULL,
	outcome      TEXT    NOT NULL,
	ip           TEXT    NOT NULL,
	user_agent   TEXT    NOT NULL,
	request_id   TEXT    NOT NULL,
	details      TEXT    NOT NULL CHECK (json_valid(details) AND json_type(details) = 'object'),
	prev_hash    BLOB    NOT NULL CHECK (length(prev_hash) = 32),
	hash         BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

-- One index per equality filter of audit.Filter and one for time ranges.
-- Every index of a rowid table ends with the rowid, here seq, so a filtered
-- page (seq > cursor ORDER BY seq) is read in order from the cursor.
CREATE INDEX audit_records_principal ON audit_records (principal_id);
CREATE INDEX audit_records_action ON audit_records (action);
CREATE INDEX audit_records_resource ON audit_records (resource);
CREATE INDEX audit_records_outcome ON audit_records (outcome);
CREATE INDEX audit_records_at ON audit_records (at);

-- A checkpoint is written by each purge transaction: the last purged
-- record's seq and hash, signed with HMAC-SHA256. Verification starts from
-- the latest one. Append-only, with no exception.
CREATE TABLE audit_checkpoints (
	purged_through_seq INTEGER NOT NULL PRIMARY KEY CHECK (purged_through_seq > 0),
	hash               BLOB    NOT NULL CHECK (length(hash) = 32),
	created_at         INTEGER NOT NULL,
	signature          BLOB    NOT NULL CHECK (length(signature) = 32)
) STRICT;

-- One row; active is 1 only inside a purge transaction, which sets it,
-- writes the checkpoint, deletes the records it covers and clears it.
CREATE TABLE audit_purge_guard (
	id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	active INTEGER NOT NULL CHECK (active IN (0, 1))
) STRICT;
INSERT INTO audit_purge_guard (id, active) VALUES (1, 0);

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
	SELECT RAISE(ABORT, 'audit records are append-only');
END;

-- A record is deleted only by a purge, and only once a checkpoint covers it.
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
WHEN (SELECT active FROM audit_purge_guard WHERE id = 1) IS NOT 1
	OR OLD.seq > (SELECT COALESCE(MAX(purged_through_seq), 0) FROM audit_checkpoints)
BEGIN
	SELECT RAISE(ABORT, 'audit records are deleted only by a purge');
END;

-- A new record follows the last one (or the latest checkpoint, once every
-- record was purged): the next seq, and its hash as prev_hash.
CREATE TRIGGER audit_records_chain BEFORE INSERT ON audit_records
WHEN NEW.seq IS NOT 1 + COALESCE(
		(SELECT seq FROM audit_records ORDER BY seq DESC LIMIT 1),
		(SELECT purged_through_seq FROM audit_checkpoints ORDER BY purged_through_seq DESC LIMIT 1),
		0)
	OR NEW.prev_hash IS NOT COALESCE(
		(SELECT hash FROM audit_records ORDER BY seq DESC LIMIT 1),
		(SELECT hash FROM audit_checkpoints ORDER BY purged_through_seq DESC LIMIT 1),
		zeroblob(32))
BEGIN
	SELECT RAISE(ABORT, 'audit record does not extend the chain');
END;

-- A checkpoint is written only inside a purge and names a stored record.
CREATE TRIGGER audit_checkpoints_insert BEFORE INSERT ON audit_checkpoints
WHEN (SELECT active FROM audit_purge_guard WHERE id = 1) IS NOT 1
	OR NOT EXISTS (SELECT 1 FROM audit_records WHERE seq = NEW.purged_through_seq AND hash = NEW.hash)
BEGIN
	SELECT RAISE(ABORT, 'audit checkpoints are written only by a purge, for a stored record');
END;

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN
	SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

-- The guard row stays: without it no purge could run.
CREATE TRIGGER audit_purge_guard_no_delete BEFORE DELETE ON audit_purge_guard
BEGIN
	SELECT RAISE(ABORT, 'the audit purge guard is permanent');
END;
