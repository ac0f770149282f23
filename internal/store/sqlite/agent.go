package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/runagent/runagent/internal/core"
)

// PutAgentVersion stores v and makes it the agent's current version, in one
// transaction. The agent is created if new, in project v.ProjectID (an
// empty one is set to core.DefaultProject), which must exist (else a
// core.CodeValidation error); its name is taken from v.Config.AgentName and
// its updated_at changes only when its name or current version does. A
// version for an agent of another project, or with the id of a deleted
// agent, is a core.CodeConflict error that does not name the project. A version whose (AgentID, Hash) is already
// stored is left as it is, package included, and created is false.
//
// v.Size must be zero or len(v.Package); it is set to len(v.Package), and a
// zero v.CreatedAt is set to the time the version was stored.
func (db *DB) PutAgentVersion(ctx context.Context, v *core.AgentVersion) (created bool, err error) {
	if v.AgentID == "" || v.Hash == "" {
		return false, &core.Error{Code: core.CodeValidation, Message: "agent version needs an agent id and a hash"}
	}
	if v.ProjectID == "" {
		v.ProjectID = core.DefaultProject
	}
	size := int64(len(v.Package))
	if v.Size != 0 && v.Size != size {
		return false, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("agent version size %d does not match its %d-byte package", v.Size, size)}
	}
	config, err := json.Marshal(v.Config)
	if err != nil {
		return false, fmt.Errorf("put agent version %s: encode config: %w", v.Hash, err)
	}
	pkg := v.Package
	if pkg == nil {
		pkg = []byte{} // a nil []byte binds as NULL
	}
	now := db.now()
	nowNS, err := encodeTime(now)
	if err != nil {
		return false, err
	}
	createdAt := v.CreatedAt
	if createdAt.IsZero() {
		createdAt = now
	}
	createdNS, err := encodeTime(createdAt)
	if err != nil {
		return false, err
	}

	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("put agent version %s: %w", v.Hash, err)
	}
	defer tx.Rollback()
	if err := checkAgentProject(ctx, tx, v.AgentID, v.ProjectID); err != nil {
		return false, fmt.Errorf("put agent version %s: %w", v.Hash, err)
	}
	// The agent row comes first: agent_versions references it. Its project
	// never changes.
	if _, err := tx.ExecContext(ctx, `
INSERT INTO agents (id, project_id, name, current_version, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	name = excluded.name,
	current_version = excluded.current_version,
	updated_at = CASE
		WHEN agents.name IS NOT DISTINCT FROM excluded.name AND agents.current_version IS NOT DISTINCT FROM excluded.current_version THEN agents.updated_at
		ELSE excluded.updated_at
	END`,
		v.AgentID, v.ProjectID, v.Config.AgentName, v.Hash, nowNS, nowNS); err != nil {
		return false, fmt.Errorf("put agent version %s: upsert agent: %w", v.Hash, err)
	}
	res, err := tx.ExecContext(ctx, `
INSERT INTO agent_versions (agent_id, hash, config, package, size, created_at)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (agent_id, hash) DO NOTHING`,
		v.AgentID, v.Hash, string(config), pkg, size, createdNS)
	if err != nil {
		return false, fmt.Errorf("put agent version %s: insert version: %w", v.Hash, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("put agent version %s: %w", v.Hash, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("put agent version %s: commit: %w", v.Hash, err)
	}
	if n == 1 {
		v.Size = size
		v.CreatedAt = decodeTime(createdNS)
	}
	return n == 1, nil
}

// checkAgentProject returns an error unless agent id may be stored in
// project: the project must exist and not be deleted, an existing agent
// must be in it, and a deleted agent's id is not reused.
func checkAgentProject(ctx context.Context, tx *sql.Tx, id, project string) error {
	var (
		current string
		deleted sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, `SELECT project_id, deleted_at FROM agents WHERE id = ?`, id).Scan(&current, &deleted)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return fmt.Errorf("read agent project: %w", err)
	// The messages must not tell the caller which project has the id.
	case deleted.Valid:
		return &core.Error{
			Code:    core.CodeConflict,
			Message: fmt.Sprintf("agent id %q belonged to a deleted agent and is not reused; give this agent a new id with `runagent init --existing --force <project dir>`", id),
			Field:   "agent_id",
		}
	case current != project:
		return &core.Error{
			Code:    core.CodeConflict,
			Message: fmt.Sprintf("agent id %q is already used by another project; give this agent a new id with `runagent init --existing --force <project dir>`", id),
			Field:   "agent_id",
		}
	}
	return checkProject(ctx, tx, project)
}

// Agent returns the agent with the given id, or an error wrapping
// core.ErrNotFound (also for an agent deleted with its project).
func (db *DB) Agent(ctx context.Context, id string) (*core.Agent, error) {
	return getByID(ctx, db, "agent", id, scanAgent, `
SELECT id, project_id, name, current_version, created_at, updated_at
FROM agents WHERE id = ? AND deleted_at IS NULL`)
}

// Agents returns all agents but deleted ones, ordered by id.
func (db *DB) Agents(ctx context.Context) ([]*core.Agent, error) {
	return db.AgentsPage(ctx, core.AgentFilter{})
}

// AgentsPage returns the agents f selects but deleted ones, ordered by
// id. The project and the ids are conditions of the query, so that a
// page holds f.Limit (capped at MaxLimit) of the agents f selects: keyset
// paging on the primary key or the project_id, id index.
func (db *DB) AgentsPage(ctx context.Context, f core.AgentFilter) ([]*core.Agent, error) {
	q, args, err := agentsQuery(f)
	if err != nil {
		return nil, err
	}
	return list(ctx, db, "list agents", scanAgent, q, args...)
}

// agentsQuery is the query of AgentsPage(f) and its arguments.
func agentsQuery(f core.AgentFilter) (string, []any, error) {
	if f.Limit < 0 {
		return "", nil, &core.Error{Code: core.CodeValidation, Message: "limit must not be negative", Field: "limit"}
	}
	c := conditions{clauses: []string{"deleted_at IS NULL"}}
	c.equal("project_id", f.ProjectID)
	c.in("id", f.IDs)
	if f.After != "" {
		c.add("id > ?", f.After)
	}
	q := `SELECT id, project_id, name, current_version, created_at, updated_at FROM agents` + c.where() + ` ORDER BY id`
	if f.Limit > 0 {
		return q + ` LIMIT ?`, append(c.args, min(f.Limit, MaxLimit)), nil
	}
	return q, c.args, nil
}

// AgentVersion returns one version of an agent with its package and the
// agent's project, or an error wrapping core.ErrNotFound (a deleted
// agent has no versions).
func (db *DB) AgentVersion(ctx context.Context, agentID, hash string) (*core.AgentVersion, error) {
	var (
		v         = core.AgentVersion{AgentID: agentID, Hash: hash}
		config    string
		createdAt int64
		pkg       []byte
	)
	err := db.read.QueryRowContext(ctx, `
SELECT a.project_id, v.config, v.package, v.size, v.created_at
FROM agent_versions v JOIN agents a ON a.id = v.agent_id
WHERE v.agent_id = ? AND v.hash = ? AND a.deleted_at IS NULL`, agentID, hash).
		Scan(&v.ProjectID, &config, &pkg, &v.Size, &createdAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("agent %q version %q: %w", agentID, hash, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get agent %q version %q: %w", agentID, hash, err)
	}
	if err := json.Unmarshal([]byte(config), &v.Config); err != nil {
		return nil, fmt.Errorf("get agent %q version %q: decode config: %w", agentID, hash, err)
	}
	if pkg == nil {
		pkg = []byte{}
	}
	v.Package = pkg
	v.CreatedAt = decodeTime(createdAt)
	return &v, nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// getByID reads the one row a query for id returns on the read pool; no
// row wraps core.ErrNotFound. what names the kind of object in errors.
func getByID[T any](ctx context.Context, db *DB, what, id string, scan func(scanner) (T, error), query string) (T, error) {
	stmt, err := db.prepared(ctx, db.read, query)
	if err != nil {
		var zero T
		return zero, fmt.Errorf("get %s %q: %w", what, id, err)
	}
	v, err := scan(stmt.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("%s %q: %w", what, id, core.ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("get %s %q: %w", what, id, err)
	}
	return v, nil
}

// list runs a query on the read pool and scans every row with scan; what
// names the listing in errors. It returns an empty slice, never nil.
func list[T any](ctx context.Context, db *DB, what string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.read.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

func scanAgent(s scanner) (*core.Agent, error) {
	var (
		a                    core.Agent
		createdAt, updatedAt int64
	)
	if err := s.Scan(&a.ID, &a.ProjectID, &a.Name, &a.CurrentVersion, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	a.CreatedAt = decodeTime(createdAt)
	a.UpdatedAt = decodeTime(updatedAt)
	return &a, nil
}

// AgentVersions lists the versions of agent agentID, newest first (the
// later deployed first among versions created at the same time), or
// wraps core.ErrNotFound: every agent not deleted has a version.
func (db *DB) AgentVersions(ctx context.Context, agentID string) ([]*core.VersionInfo, error) {
	return db.AgentVersionsPage(ctx, agentID, core.VersionFilter{})
}

// AgentVersionsPage lists one page of agent agentID's versions in
// AgentVersions' order: f.Limit of them (capped at MaxLimit; 0: all)
// after version f.After, read from the agent_id, created_at index. An
// unknown or deleted agent wraps core.ErrNotFound; an f.After the agent
// does not have is a CodeValidation error on "cursor".
func (db *DB) AgentVersionsPage(ctx context.Context, agentID string, f core.VersionFilter) ([]*core.VersionInfo, error) {
	var after *versionPlace
	if f.After != "" {
		var p versionPlace
		err := db.read.QueryRowContext(ctx, `
SELECT v.created_at, `+db.dialect.VersionOrder+`
FROM agent_versions v JOIN agents a ON a.id = v.agent_id
WHERE v.agent_id = ? AND v.hash = ? AND a.deleted_at IS NULL`, agentID, f.After).Scan(&p.createdAt, &p.ord)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := db.Agent(ctx, agentID); err != nil {
				return nil, err
			}
			return nil, &core.Error{Code: core.CodeValidation, Field: "cursor",
				Message: fmt.Sprintf("agent %q has no version %q to page after; list its versions again from the first page", agentID, f.After)}
		}
		if err != nil {
			return nil, fmt.Errorf("list agent versions: read the cursor's version: %w", err)
		}
		after = &p
	}
	q, args, err := db.versionsQuery(agentID, f.Limit, after)
	if err != nil {
		return nil, err
	}
	out, err := list(ctx, db, "list agent versions", scanVersionInfo, q, args...)
	if err != nil {
		return nil, err
	}
	if len(out) == 0 && after == nil {
		return nil, fmt.Errorf("agent %q: %w", agentID, core.ErrNotFound)
	}
	return out, nil
}

// versionPlace is a version's place in the listing of versions: its
// creation time and its upload order (Dialect.VersionOrder).
type versionPlace struct {
	createdAt, ord int64
}

// versionsQuery is the query of a page of agentID's versions, after
// after when set, and its arguments.
func (db *DB) versionsQuery(agentID string, limit int, after *versionPlace) (string, []any, error) {
	if limit < 0 {
		return "", nil, &core.Error{Code: core.CodeValidation, Message: "limit must not be negative", Field: "limit"}
	}
	c := conditions{clauses: []string{"v.agent_id = ?", "a.deleted_at IS NULL"}, args: []any{agentID}}
	if after != nil {
		// As for keys: the first term bounds the index range; the second
		// drops the cursor's own time up to and including its version.
		c.add("v.created_at <= ? AND (v.created_at < ? OR "+db.dialect.VersionOrder+" < ?)", after.createdAt, after.createdAt, after.ord)
	}
	q := `SELECT v.hash, v.size, v.created_at, v.hash = a.current_version
FROM agent_versions v JOIN agents a ON a.id = v.agent_id` + c.where() + `
ORDER BY v.created_at DESC, ` + db.dialect.VersionOrder + ` DESC`
	if limit > 0 {
		return q + ` LIMIT ?`, append(c.args, min(limit, MaxLimit)), nil
	}
	return q, c.args, nil
}

func scanVersionInfo(s scanner) (*core.VersionInfo, error) {
	var (
		v         core.VersionInfo
		createdAt int64
	)
	if err := s.Scan(&v.Hash, &v.Size, &createdAt, &v.Current); err != nil {
		return nil, err
	}
	v.CreatedAt = decodeTime(createdAt)
	return &v, nil
}

// SetCurrentVersion makes version hash of agent agentID its current one;
// updated_at changes only when the current version does. An unknown or
// deleted agent, or a version it does not have, wraps core.ErrNotFound.
func (db *DB) SetCurrentVersion(ctx context.Context, agentID, hash string) error {
	now, err := encodeTime(db.now())
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `
UPDATE agents SET
	updated_at = CASE WHEN current_version IS NOT DISTINCT FROM ? THEN updated_at ELSE ? END,
	current_version = ?
WHERE id = ? AND deleted_at IS NULL
	AND EXISTS (SELECT 1 FROM agent_versions WHERE agent_id = ? AND hash = ?)`,
		hash, now, hash, agentID, agentID, hash)
	if err != nil {
		return fmt.Errorf("set current version of agent %q: %w", agentID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("set current version of agent %q: %w", agentID, err)
	}
	if n == 0 {
		return fmt.Errorf("agent %q version %q: %w", agentID, hash, core.ErrNotFound)
	}
	return nil
}
