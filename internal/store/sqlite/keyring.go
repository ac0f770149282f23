package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"

	"github.com/runagent/runagent/internal/keyring"
)

var _ keyring.Store = (*DB)(nil)

// LoadKeyring returns the stored keyring, read in one transaction, or a
// zero keyring.State (Version 0) if none is stored yet.
func (db *DB) LoadKeyring(ctx context.Context) (*keyring.State, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("load keyring: %w", err)
	}
	defer tx.Rollback()

	var (
		st                    keyring.State
		salt                  []byte
		tcost, memory, thread sql.NullInt64
		active                int64
	)
	err = tx.QueryRowContext(ctx, `
SELECT version, master_key_id, kdf_salt, kdf_time, kdf_memory_kib, kdf_threads, mac_root, active_key_id
FROM keyring WHERE id = 1`).Scan(&st.Version, &st.MasterKeyID, &salt, &tcost, &memory, &thread, &st.MACRoot, &active)
	if errors.Is(err, sql.ErrNoRows) {
		return &keyring.State{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load keyring: %w", err)
	}
	if active < 1 || active > math.MaxUint32 {
		return nil, fmt.Errorf("load keyring: active data key id %d is out of range", active)
	}
	st.ActiveKeyID = uint32(active)
	if salt != nil {
		if !inRange(tcost, math.MaxUint32) || !inRange(memory, math.MaxUint32) || !inRange(thread, math.MaxUint8) {
			return nil, fmt.Errorf("load keyring: passphrase parameters (time %v, memory %v KiB, threads %v) are out of range", tcost.Int64, memory.Int64, thread.Int64)
		}
		st.KDF = &keyring.KDF{Salt: salt, Params: keyring.ArgonParams{
			Time: uint32(tcost.Int64), MemoryKiB: uint32(memory.Int64), Threads: uint8(thread.Int64),
		}}
	}

	rows, err := tx.QueryContext(ctx, `SELECT id, wrapped, created_at FROM keyring_data_keys ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("load keyring data keys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id      int64
			k       keyring.WrappedKey
			created int64
		)
		if err := rows.Scan(&id, &k.Wrapped, &created); err != nil {
			return nil, fmt.Errorf("load keyring data keys: %w", err)
		}
		if id < 1 || id > math.MaxUint32 {
			return nil, fmt.Errorf("load keyring data keys: id %d is out of range", id)
		}
		k.ID, k.CreatedAt = uint32(id), decodeTime(created)
		st.DataKeys = append(st.DataKeys, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load keyring data keys: %w", err)
	}
	return &st, nil
}

// inRange reports whether n is set and between 1 and hi.
func inRange(n sql.NullInt64, hi int64) bool {
	return n.Valid && n.Int64 >= 1 && n.Int64 <= hi
}

// SaveKeyring replaces the stored keyring with s in one transaction, if
// the stored version is still s.Version (0: none stored); otherwise it
// fails with an error wrapping keyring.ErrConflict. It refuses a state
// that lacks a data key the database holds, since values sealed with it
// would become unreadable. On success s.Version is the new version, and a
// zero CreatedAt of a data key is set to the current time.
func (db *DB) SaveKeyring(ctx context.Context, s *keyring.State) error {
	if len(s.DataKeys) == 0 {
		return errors.New("save keyring: no data keys")
	}
	created := make([]int64, len(s.DataKeys))
	for i, k := range s.DataKeys {
		t := k.CreatedAt
		if t.IsZero() {
			t = db.now().UTC()
		}
		var err error
		if created[i], err = encodeTime(t); err != nil {
			return fmt.Errorf("save keyring: data key %d: %w", k.ID, err)
		}
	}
	var (
		salt                  any // NULL unless a passphrase
		tcost, memory, thread sql.NullInt64
	)
	if s.KDF != nil {
		if s.KDF.Salt == nil {
			return errors.New("save keyring: passphrase salt is missing")
		}
		salt = s.KDF.Salt
		tcost = sql.NullInt64{Int64: int64(s.KDF.Params.Time), Valid: true}
		memory = sql.NullInt64{Int64: int64(s.KDF.Params.MemoryKiB), Valid: true}
		thread = sql.NullInt64{Int64: int64(s.KDF.Params.Threads), Valid: true}
	}
	updated, err := encodeTime(db.now())
	if err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}

	// BEGIN IMMEDIATE: the version read below cannot change before commit.
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}
	defer tx.Rollback()
	var cur int64
	err = tx.QueryRowContext(ctx, `SELECT version FROM keyring WHERE id = 1`).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("save keyring: read version: %w", err)
	}
	if cur != s.Version {
		return fmt.Errorf("save keyring: stored version is %d, the state was loaded at %d: %w", cur, s.Version, keyring.ErrConflict)
	}
	for i, k := range s.DataKeys {
		if _, err := tx.ExecContext(ctx, `
INSERT INTO keyring_data_keys (id, wrapped, created_at) VALUES (?, ?, ?)
ON CONFLICT (id) DO UPDATE SET wrapped = excluded.wrapped, created_at = excluded.created_at`,
			int64(k.ID), k.Wrapped, created[i]); err != nil {
			return fmt.Errorf("save keyring: data key %d: %w", k.ID, err)
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keyring_data_keys`).Scan(&n); err != nil {
		return fmt.Errorf("save keyring: count data keys: %w", err)
	}
	if n != len(s.DataKeys) {
		return fmt.Errorf("save keyring: the state has %d data keys but the database would hold %d: data keys must have distinct ids and none may be dropped", len(s.DataKeys), n)
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO keyring (id, version, master_key_id, kdf_salt, kdf_time, kdf_memory_kib, kdf_threads, mac_root, active_key_id, updated_at)
VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	version = excluded.version, master_key_id = excluded.master_key_id,
	kdf_salt = excluded.kdf_salt, kdf_time = excluded.kdf_time,
	kdf_memory_kib = excluded.kdf_memory_kib, kdf_threads = excluded.kdf_threads,
	mac_root = excluded.mac_root, active_key_id = excluded.active_key_id,
	updated_at = excluded.updated_at`,
		cur+1, s.MasterKeyID, salt, tcost, memory, thread, s.MACRoot, int64(s.ActiveKeyID), updated); err != nil {
		return fmt.Errorf("save keyring: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save keyring: commit: %w", err)
	}
	s.Version = cur + 1
	for i := range s.DataKeys {
		s.DataKeys[i].CreatedAt = decodeTime(created[i])
	}
	return nil
}
