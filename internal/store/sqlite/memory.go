package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/runagent/runagent/internal/core"
)

const memoryColumns = `project_id, agent_id, user_id, image, sealed_key, cap_bytes, used_bytes, files, created_at, last_used_at`

// CreateMemory inserts a persistent-memory record.
func (db *DB) CreateMemory(ctx context.Context, m *core.Memory) error {
	if m.ProjectID == "" || m.AgentID == "" || m.UserID == "" || m.Image == "" {
		return &core.Error{Code: core.CodeValidation, Message: "a memory record needs a project, an agent, a user and an image"}
	}
	for _, s := range []string{m.ProjectID, m.AgentID, m.UserID, m.Image} {
		if !representable(s) {
			return &core.Error{Code: core.CodeValidation, Message: "a memory record's ids must be valid UTF-8 without NUL bytes"}
		}
	}
	if m.CapBytes <= 0 || m.UsedBytes < 0 || m.Files < 0 {
		return &core.Error{Code: core.CodeValidation, Message: "a memory record needs a positive cap and non-negative usage"}
	}
	created, err := encodeTime(m.CreatedAt)
	if err != nil {
		return err
	}
	used, err := encodeTime(m.LastUsedAt)
	if err != nil {
		return err
	}
	var key any // a nil []byte binds as NULL; keep an empty one empty
	if m.SealedKey != nil {
		key = m.SealedKey
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO memories (`+memoryColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.ProjectID, m.AgentID, m.UserID, m.Image, key, m.CapBytes, m.UsedBytes, m.Files, created, used)
	if db.isConstraint(err) {
		return &core.Error{Code: core.CodeConflict, Message: "this user's memory of this agent already exists", Err: err}
	}
	if err != nil {
		return fmt.Errorf("record memory of agent %s: %w", m.AgentID, err)
	}
	return nil
}

// Memory returns one persistent-memory record.
func (db *DB) Memory(ctx context.Context, projectID, agentID, userID string) (*core.Memory, error) {
	m, err := scanMemory(db.read.QueryRowContext(ctx, `SELECT `+memoryColumns+` FROM memories
WHERE project_id = ? AND agent_id = ? AND user_id = ?`, projectID, agentID, userID))
	if err != nil {
		if isNoRows(err) {
			return nil, fmt.Errorf("memory of agent %s for user %q: %w", agentID, userID, core.ErrNotFound)
		}
		return nil, fmt.Errorf("get memory of agent %s: %w", agentID, err)
	}
	return m, nil
}

// Memories lists an agent's persistent-memory records by user id, after
// afterUser, at most limit (0: all; capped at MaxLimit): a range of the
// primary key, so a page reads its own rows only.
func (db *DB) Memories(ctx context.Context, projectID, agentID, afterUser string, limit int) ([]*core.Memory, error) {
	q, args, err := memoriesQuery(projectID, agentID, afterUser, limit)
	if err != nil {
		return nil, err
	}
	return list(ctx, db, "list memories", scanMemory, q, args...)
}

// memoriesQuery is the query of Memories and its arguments.
func memoriesQuery(projectID, agentID, afterUser string, limit int) (string, []any, error) {
	if limit < 0 {
		return "", nil, &core.Error{Code: core.CodeValidation, Message: "limit must not be negative", Field: "limit"}
	}
	q := `SELECT ` + memoryColumns + ` FROM memories WHERE project_id = ? AND agent_id = ? AND user_id > ? ORDER BY user_id`
	args := []any{projectID, agentID, afterUser}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, min(limit, MaxLimit))
	}
	return q, args, nil
}

// UpdateMemory records a store's cap, usage and last use.
func (db *DB) UpdateMemory(ctx context.Context, m *core.Memory) error {
	if m.CapBytes <= 0 || m.UsedBytes < 0 || m.Files < 0 {
		return &core.Error{Code: core.CodeValidation, Message: "a memory record needs a positive cap and non-negative usage"}
	}
	used, err := encodeTime(m.LastUsedAt)
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `UPDATE memories SET cap_bytes = ?, used_bytes = ?, files = ?, last_used_at = ?
WHERE project_id = ? AND agent_id = ? AND user_id = ?`, m.CapBytes, m.UsedBytes, m.Files, used, m.ProjectID, m.AgentID, m.UserID)
	return affectedOne(res, err, "update memory", m.AgentID, m.UserID)
}

// DeleteMemory deletes one persistent-memory record with its sealed key.
func (db *DB) DeleteMemory(ctx context.Context, projectID, agentID, userID string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM memories WHERE project_id = ? AND agent_id = ? AND user_id = ?`, projectID, agentID, userID)
	return affectedOne(res, err, "delete memory", agentID, userID)
}

// MemoriesUnusedSince lists the records last used before t, oldest first.
func (db *DB) MemoriesUnusedSince(ctx context.Context, t time.Time, limit int) ([]*core.Memory, error) {
	before, err := encodeTime(t)
	if err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, MaxLimit)
	return list(ctx, db, "list unused memories", scanMemory, `SELECT `+memoryColumns+` FROM memories
WHERE last_used_at < ? ORDER BY last_used_at, project_id, agent_id, user_id LIMIT ?`, before, limit)
}

func affectedOne(res sql.Result, err error, what, agentID, userID string) error {
	if err != nil {
		return fmt.Errorf("%s of agent %s: %w", what, agentID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s of agent %s: %w", what, agentID, err)
	}
	if n == 0 {
		return fmt.Errorf("memory of agent %s for user %q: %w", agentID, userID, core.ErrNotFound)
	}
	return nil
}

func scanMemory(s scanner) (*core.Memory, error) {
	var (
		m             core.Memory
		created, used int64
	)
	if err := s.Scan(&m.ProjectID, &m.AgentID, &m.UserID, &m.Image, &m.SealedKey, &m.CapBytes, &m.UsedBytes, &m.Files, &created, &used); err != nil {
		return nil, err
	}
	m.CreatedAt, m.LastUsedAt = decodeTime(created), decodeTime(used)
	return &m, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
