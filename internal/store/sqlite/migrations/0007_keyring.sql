-- 0007_keyring: the keyring that encrypts values at rest (internal/keyring).
--
-- Every secret here is wrapped (AES-256-GCM) by the operator's master key,
-- which is never stored. The keyring is saved whole, in one transaction;
-- keyring.version grows with every save, for optimistic concurrency.

-- The data keys. They are never deleted, so that values sealed with an
-- old key stay readable; a master key rotation rewrites every wrapped key.
CREATE TABLE keyring_data_keys (
	id         INTEGER NOT NULL PRIMARY KEY CHECK (id BETWEEN 1 AND 4294967295),
	wrapped    BLOB    NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;

-- The one row (id 1) saying which master key wraps the keys, and which
-- data key is active. The kdf_ columns hold the Argon2id salt and
-- parameters of a passphrase, or are all NULL for a master key from a key
-- file. mac_root is the wrapped root of the keyring's MAC keys.
CREATE TABLE keyring (
	id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	version        INTEGER NOT NULL CHECK (version > 0),
	master_key_id  TEXT    NOT NULL,
	kdf_salt       BLOB,
	kdf_time       INTEGER CHECK (kdf_time > 0),
	kdf_memory_kib INTEGER CHECK (kdf_memory_kib > 0),
	kdf_threads    INTEGER CHECK (kdf_threads BETWEEN 1 AND 255),
	mac_root       BLOB    NOT NULL,
	active_key_id  INTEGER NOT NULL REFERENCES keyring_data_keys (id),
	updated_at     INTEGER NOT NULL,
	CHECK ((kdf_salt IS NULL) = (kdf_time IS NULL)
		AND (kdf_salt IS NULL) = (kdf_memory_kib IS NULL)
		AND (kdf_salt IS NULL) = (kdf_threads IS NULL))
) STRICT;
