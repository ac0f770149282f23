package sqlite

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
)

// maxBuildLog caps a stored build log; the end, where pip says what
// failed, is kept.
const maxBuildLog = 256 << 10

// PutBuild inserts a build record.
func (db *DB) PutBuild(ctx context.Context, b *core.Build) error {
	if b.ID == "" || b.AgentID == "" {
		return &core.Error{Code: core.CodeValidation, Message: "a build needs an id and an agent id"}
	}
	if !b.Status.Valid() {
		return &core.Error{Code: core.CodeValidation, Field: "status", Message: fmt.Sprintf("unknown build status %q", b.Status)}
	}
	log, msg := b.Log, b.Error
	if len(log) > maxBuildLog {
		log = "[… earlier lines left out …]\n" + log[len(log)-maxBuildLog:]
	}
	for _, s := range []*string{&log, &msg} {
		if !utf8.ValidString(*s) {
			*s = string([]rune(*s)) // invalid bytes become U+FFFD: a log is text to read
		}
	}
	started, err := encodeTime(b.StartedAt)
	if err != nil {
		return err
	}
	finished, err := encodeTime(b.FinishedAt)
	if err != nil {
		return err
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO builds (`+buildColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		b.ID, b.AgentID, b.ProjectID, b.Version, b.EnvKey, b.Cached, string(b.Status), msg, log, started, finished)
	if db.isConstraint(err) {
		return &core.Error{Code: core.CodeConflict, Message: "build already recorded", Err: err}
	}
	if err != nil {
		return fmt.Errorf("record build %s: %w", b.ID, err)
	}
	return nil
}

const buildColumns = `id, agent_id, project_id, version, env_key, cached, status, error, log, started_at, finished_at`

// Build returns one build with its log.
func (db *DB) Build(ctx context.Context, id string) (*core.Build, error) {
	return getByID(ctx, db, "build", id, scanBuild, `SELECT `+buildColumns+` FROM builds WHERE id = ?`)
}

// Builds lists an agent's builds newest first, without their logs.
func (db *DB) Builds(ctx context.Context, agentID string, limit int) ([]*core.Build, error) {
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, MaxLimit)
	return list(ctx, db, "list builds", scanBuild, `SELECT id, agent_id, project_id, version, env_key, cached, status, error, '', started_at, finished_at
FROM builds WHERE agent_id = ? ORDER BY started_at DESC, id DESC LIMIT ?`, agentID, limit)
}

func scanBuild(s scanner) (*core.Build, error) {
	var (
		b                 core.Build
		status            string
		started, finished int64
	)
	if err := s.Scan(&b.ID, &b.AgentID, &b.ProjectID, &b.Version, &b.EnvKey, &b.Cached, &status, &b.Error, &b.Log, &started, &finished); err != nil {
		return nil, err
	}
	b.Status = core.BuildStatus(status)
	b.StartedAt, b.FinishedAt = decodeTime(started), decodeTime(finished)
	return &b, nil
}
