package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/runagent/runagent/internal/core"
)

// secretAAD binds a sealed secret value to its agent and name.
func secretAAD(agentID, name string) []byte {
	return []byte("secrets\x00value\x00" + agentID + "\x00" + name)
}

// errNoSealer refuses to store a secret without encryption at rest.
var errNoSealer = errors.New("secrets are stored only encrypted, and this store has no keyring")

// PutSecret creates or replaces a secret, sealed. The agent need not be
// deployed yet (a deploy may bring secrets before its first version).
func (db *DB) PutSecret(ctx context.Context, s *core.Secret, value string) error {
	if err := core.CheckSecretName(s.Name); err != nil {
		return err
	}
	if len(value) > core.MaxSecretValue {
		return &core.Error{Code: core.CodeValidation, Field: "value", Message: fmt.Sprintf("a secret value is at most %d bytes", core.MaxSecretValue)}
	}
	if db.sealer == nil {
		return errNoSealer
	}
	sealed, err := db.sealer.Seal([]byte(value), secretAAD(s.AgentID, s.Name))
	if err != nil {
		return fmt.Errorf("seal secret %s: %w", s.Name, err)
	}
	now, err := encodeTime(db.now().UTC())
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put secret: %w", err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM secrets WHERE agent_id = ? AND name <> ?`, s.AgentID, s.Name).Scan(&n); err != nil {
		return fmt.Errorf("put secret: %w", err)
	}
	if n >= core.MaxSecretsPerAgent {
		return &core.Error{Code: core.CodeValidation, Field: "name", Message: fmt.Sprintf("an agent has at most %d secrets; delete one first", core.MaxSecretsPerAgent)}
	}
	if _, err := tx.ExecContext(ctx, `
INSERT INTO secrets (agent_id, name, value, created_at, updated_at, updated_by) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (agent_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		s.AgentID, s.Name, sealed, now, now, s.UpdatedBy); err != nil {
		return fmt.Errorf("put secret %s: %w", s.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put secret %s: %w", s.Name, err)
	}
	got, err := scanSecret(db.write.QueryRowContext(ctx, `
SELECT agent_id, name, created_at, updated_at, updated_by FROM secrets WHERE agent_id = ? AND name = ?`, s.AgentID, s.Name))
	if err != nil {
		return fmt.Errorf("put secret %s: read it back: %w", s.Name, err)
	}
	*s = *got
	return nil
}

func scanSecret(r scanner) (*core.Secret, error) {
	var (
		s                core.Secret
		created, updated int64
	)
	if err := r.Scan(&s.AgentID, &s.Name, &created, &updated, &s.UpdatedBy); err != nil {
		return nil, err
	}
	s.CreatedAt, s.UpdatedAt = decodeTime(created), decodeTime(updated)
	return &s, nil
}

// Secrets lists an agent's secrets by name, without their values.
func (db *DB) Secrets(ctx context.Context, agentID string) ([]*core.Secret, error) {
	return list(ctx, db, "list secrets", scanSecret, `
SELECT agent_id, name, created_at, updated_at, updated_by FROM secrets WHERE agent_id = ? ORDER BY name`, agentID)
}

// SecretValues opens an agent's secrets.
func (db *DB) SecretValues(ctx context.Context, agentID string) (map[string]string, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT name, value FROM secrets WHERE agent_id = ?`, agentID)
	if err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var (
			name   string
			sealed []byte
		)
		if err := rows.Scan(&name, &sealed); err != nil {
			return nil, fmt.Errorf("read secrets: %w", err)
		}
		if db.sealer == nil {
			return nil, errNoSealer
		}
		v, err := db.sealer.Open(sealed, secretAAD(agentID, name))
		if err != nil {
			return nil, fmt.Errorf("open secret %s of agent %s: %w", name, agentID, err)
		}
		out[name] = string(v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read secrets: %w", err)
	}
	return out, nil
}

// DeleteSecret removes a secret; an unknown one wraps core.ErrNotFound.
func (db *DB) DeleteSecret(ctx context.Context, agentID, name string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM secrets WHERE agent_id = ? AND name = ?`, agentID, name)
	if err != nil {
		return fmt.Errorf("delete secret %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete secret %s: %w", name, err)
	} else if n == 0 {
		return fmt.Errorf("secret %q: %w", name, core.ErrNotFound)
	}
	return nil
}
