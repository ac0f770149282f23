-- 0002_audit: the tamper-evident audit trail (audit.Record,
-- audit.Checkpoint), as package sqlite's 0008_audit: a hash chain whose
-- seq runs 1, 2, 3, ... without gaps, append-only in the database itself.
--
-- One chain for every node: the chain trigger takes the
-- transaction-scoped advisory lock chain_lock (key 0x72756e6175646974,
-- "runaudit") before it reads the head, so that two transactions, from
-- any nodes, cannot both extend the same head; the second waits for the
-- first to commit, then sees its record and refuses a record that does
-- not follow it.

CREATE TABLE audit_records (
	seq          BIGINT NOT NULL PRIMARY KEY CHECK (seq > 0),
	at           BIGINT NOT NULL,
	principal_id TEXT   NOT NULL,
	key_id       TEXT   NOT NULL,
	subject      TEXT   NOT NULL,
	action       TEXT   NOT NULL,
	resource     TEXT   NOT NULL,
	outcome      TEXT   NOT NULL,
	ip           TEXT   NOT NULL,
	user_agent   TEXT   NOT NULL,
	request_id   TEXT   NOT NULL,
	details      TEXT   NOT NULL CHECK (json_typeof(details::json) = 'object'),
	prev_hash    BYTEA  NOT NULL CHECK (length(prev_hash) = 32),
	hash         BYTEA  NOT NULL CHECK (length(hash) = 32)
);
CREATE INDEX audit_records_principal ON audit_records (principal_id, seq);
CREATE INDEX audit_records_action ON audit_records (action, seq);
CREATE INDEX audit_records_resource ON audit_records (resource, seq);
CREATE INDEX audit_records_outcome ON audit_records (outcome, seq);
CREATE INDEX audit_records_at ON audit_records (at, seq);

CREATE TABLE audit_checkpoints (
	purged_through_seq BIGINT NOT NULL PRIMARY KEY CHECK (purged_through_seq > 0),
	hash               BYTEA  NOT NULL CHECK (length(hash) = 32),
	created_at         BIGINT NOT NULL,
	signature          BYTEA  NOT NULL CHECK (length(signature) = 32)
);

CREATE TABLE audit_purge_guard (
	id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	active INTEGER NOT NULL CHECK (active IN (0, 1))
);
INSERT INTO audit_purge_guard (id, active) VALUES (1, 0);

CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_refuse('audit records are append-only');
CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse('audit records are deleted only by a purge');

-- A record is deleted only by a purge, and only once a checkpoint covers it.
CREATE FUNCTION audit_records_no_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT active FROM audit_purge_guard WHERE id = 1) IS DISTINCT FROM 1
		OR OLD.seq > (SELECT COALESCE(MAX(purged_through_seq), 0) FROM audit_checkpoints) THEN
		RAISE EXCEPTION 'audit records are deleted only by a purge' USING ERRCODE = 'restrict_violation';
	END IF;
	RETURN OLD;
END $$;
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_records_no_delete();

-- A new record follows the last one (or the latest checkpoint, once every
-- record was purged): the next seq, and its hash as prev_hash. The lock
-- serializes appends across nodes; it is held until the transaction ends.
CREATE FUNCTION audit_records_chain() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
	head_seq  BIGINT;
	head_hash BYTEA;
BEGIN
	PERFORM pg_advisory_xact_lock(8247619657459329396); -- 0x72756e6175646974, "runaudit"
	SELECT seq, hash INTO head_seq, head_hash FROM audit_records ORDER BY seq DESC LIMIT 1;
	IF NOT FOUND THEN
		SELECT purged_through_seq, hash INTO head_seq, head_hash
		FROM audit_checkpoints ORDER BY purged_through_seq DESC LIMIT 1;
		IF NOT FOUND THEN
			head_seq := 0;
			head_hash := decode(repeat('00', 32), 'hex');
		END IF;
	END IF;
	IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
		RAISE EXCEPTION 'audit record does not extend the chain' USING ERRCODE = 'restrict_violation';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER audit_records_chain BEFORE INSERT ON audit_records
FOR EACH ROW EXECUTE FUNCTION audit_records_chain();

-- A checkpoint is written only inside a purge and names a stored record.
CREATE FUNCTION audit_checkpoints_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT active FROM audit_purge_guard WHERE id = 1) IS DISTINCT FROM 1
		OR NOT EXISTS (SELECT 1 FROM audit_records WHERE seq = NEW.purged_through_seq AND hash = NEW.hash) THEN
		RAISE EXCEPTION 'audit checkpoints are written only by a purge, for a stored record' USING ERRCODE = 'restrict_violation';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER audit_checkpoints_insert BEFORE INSERT ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_insert();

CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_refuse('audit checkpoints are append-only');
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
FOR EACH ROW EXECUTE FUNCTION audit_refuse('audit checkpoints are append-only');
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse('audit checkpoints are append-only');

CREATE TRIGGER audit_purge_guard_no_delete BEFORE DELETE ON audit_purge_guard
FOR EACH ROW EXECUTE FUNCTION audit_refuse('the audit purge guard is permanent');
