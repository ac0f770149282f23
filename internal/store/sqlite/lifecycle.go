package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Deleting projects and principals, and disabling principals. A delete
// sets deleted_at and leaves the row (see migrations/0010_lifecycle.sql):
// ids stay taken and the audit trail's references stay meaningful.

// DeleteProject deletes project id at t in one transaction: its agents
// (marked deleted; their versions and secrets removed, their invocations
// kept), its principals (marked deleted) and their keys (revoked), and the
// project (marked deleted; its id stays taken). It returns what it
// removed: the agents and principals not deleted before, the keys not
// revoked before.
//
// A project with agents is deleted only with force; without it nothing
// changes and the error is a core.CodeConflict whose Details are the
// *core.ProjectContents that would be removed. core.DefaultProject cannot
// be deleted (core.CodeConflict); an unknown or already deleted project is
// an error wrapping core.ErrNotFound.
func (db *DB) DeleteProject(ctx context.Context, id string, force bool, t time.Time) (*core.ProjectContents, error) {
	if id == core.DefaultProject {
		return nil, &core.Error{Code: core.CodeConflict, Field: "project_id",
			Message: "the default project cannot be deleted: agents deployed without a project go there"}
	}
	at, err := encodeTime(t)
	if err != nil {
		return nil, err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("delete project %q: %w", id, err)
	}
	defer tx.Rollback()
	var deleted sql.NullInt64
	err = tx.QueryRowContext(ctx, `SELECT deleted_at FROM projects WHERE id = ?`, id).Scan(&deleted)
	if errors.Is(err, sql.ErrNoRows) || err == nil && deleted.Valid {
		return nil, fmt.Errorf("project %q: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("delete project %q: %w", id, err)
	}

	var c core.ProjectContents
	for _, q := range []struct {
		into  *[]string
		query string
	}{
		{&c.Agents, `SELECT id FROM agents WHERE project_id = ? AND deleted_at IS NULL ORDER BY id`},
		{&c.Principals, `SELECT id FROM principals WHERE project_id = ? AND deleted_at IS NULL ORDER BY id`},
		{&c.Keys, `SELECT id FROM api_keys WHERE project_id = ? AND revoked_at IS NULL ORDER BY id`},
	} {
		if *q.into, err = column(ctx, tx, q.query, id); err != nil {
			return nil, fmt.Errorf("delete project %q: %w", id, err)
		}
	}
	if len(c.Agents) > 0 && !force {
		return nil, &core.Error{Code: core.CodeConflict, Field: "project_id", Details: &c,
			Message: fmt.Sprintf("project %q has %d agents; deleting it removes them and needs force", id, len(c.Agents))}
	}

	// The agents' dependents first: their rows are selected by the
	// agents not yet marked.
	for _, stmt := range []struct {
		what, query string
		args        []any
	}{
		{"secrets", `DELETE FROM secrets WHERE agent_id IN (SELECT id FROM agents WHERE project_id = ? AND deleted_at IS NULL)`, []any{id}},
		{"agent versions", `DELETE FROM agent_versions WHERE agent_id IN (SELECT id FROM agents WHERE project_id = ? AND deleted_at IS NULL)`, []any{id}},
		{"agents", `UPDATE agents SET deleted_at = ? WHERE project_id = ? AND deleted_at IS NULL`, []any{at, id}},
		{"keys", `UPDATE api_keys SET revoked_at = ? WHERE project_id = ? AND revoked_at IS NULL`, []any{at, id}},
		{"principals", `UPDATE principals SET deleted_at = ? WHERE project_id = ? AND deleted_at IS NULL`, []any{at, id}},
		{"project", `UPDATE projects SET deleted_at = ? WHERE id = ?`, []any{at, id}},
	} {
		if _, err := tx.ExecContext(ctx, stmt.query, stmt.args...); err != nil {
			return nil, fmt.Errorf("delete project %q: %s: %w", id, stmt.what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("delete project %q: commit: %w", id, err)
	}
	return &c, nil
}

// principalState is what the lifecycle operations need of a principal.
type principalState struct {
	role              core.Role
	disabled, deleted bool
}

// readPrincipalState reads principal id in tx; a missing one wraps
// core.ErrNotFound.
func readPrincipalState(ctx context.Context, tx *sql.Tx, op, id string) (principalState, error) {
	var (
		s                 principalState
		role              string
		disabled, deleted sql.NullInt64
	)
	err := tx.QueryRowContext(ctx, `SELECT role, disabled_at, deleted_at FROM principals WHERE id = ?`, id).Scan(&role, &disabled, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return s, fmt.Errorf("principal %q: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return s, fmt.Errorf("%s principal %q: %w", op, id, err)
	}
	s.role, s.disabled, s.deleted = core.Role(role), disabled.Valid, deleted.Valid
	return s, nil
}

// checkKeepsOwner returns a core.CodeConflict error unless an owner other
// than id is enabled and has a key usable at at: taking id away must not
// leave the instance without an owner who can sign in.
func checkKeepsOwner(ctx context.Context, tx *sql.Tx, id string, at int64) error {
	var n int
	err := tx.QueryRowContext(ctx, `
SELECT count(*) FROM principals p
WHERE p.role = 'owner' AND p.id <> ? AND p.disabled_at IS NULL AND p.deleted_at IS NULL
AND EXISTS (
	SELECT 1 FROM api_keys k
	WHERE k.principal_id = p.id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > ?)
)`, id, at).Scan(&n)
	if err != nil {
		return fmt.Errorf("count owners: %w", err)
	}
	if n == 0 {
		return &core.Error{Code: core.CodeConflict, Field: "principal_id",
			Message: "this is the last enabled owner with a usable key, and the instance would be left without one; create another owner key first (runagent keys create --role owner)"}
	}
	return nil
}

// DisablePrincipal disables principal id at t: its keys are refused until
// EnablePrincipal. A principal already disabled keeps its first time. An
// unknown principal is an error wrapping core.ErrNotFound; a deleted one,
// and the last enabled owner with a usable key, are core.CodeConflict
// errors.
func (db *DB) DisablePrincipal(ctx context.Context, id string, t time.Time) error {
	at, err := encodeTime(t)
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("disable principal %q: %w", id, err)
	}
	defer tx.Rollback()
	s, err := readPrincipalState(ctx, tx, "disable", id)
	switch {
	case err != nil:
		return err
	case s.deleted:
		return &core.Error{Code: core.CodeConflict, Field: "principal_id", Message: "the principal was deleted"}
	case s.disabled:
		return nil
	case s.role == core.RoleOwner:
		if err := checkKeepsOwner(ctx, tx, id, at); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE principals SET disabled_at = ? WHERE id = ?`, at, id); err != nil {
		return fmt.Errorf("disable principal %q: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("disable principal %q: commit: %w", id, err)
	}
	return nil
}

// EnablePrincipal clears principal id's disabled time. An unknown
// principal is an error wrapping core.ErrNotFound, a deleted one a
// core.CodeConflict error.
func (db *DB) EnablePrincipal(ctx context.Context, id string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("enable principal %q: %w", id, err)
	}
	defer tx.Rollback()
	s, err := readPrincipalState(ctx, tx, "enable", id)
	switch {
	case err != nil:
		return err
	case s.deleted:
		return &core.Error{Code: core.CodeConflict, Field: "principal_id", Message: "the principal was deleted; a deleted principal cannot be enabled"}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE principals SET disabled_at = NULL WHERE id = ?`, id); err != nil {
		return fmt.Errorf("enable principal %q: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("enable principal %q: commit: %w", id, err)
	}
	return nil
}

// DeletePrincipal deletes principal id at t and revokes its keys, in one
// transaction, and returns the ids of the keys it revoked (those not
// revoked before). A principal already deleted keeps its first time and
// nothing is revoked. An unknown principal is an error wrapping
// core.ErrNotFound; the last enabled owner with a usable key is a
// core.CodeConflict error.
func (db *DB) DeletePrincipal(ctx context.Context, id string, t time.Time) ([]string, error) {
	at, err := encodeTime(t)
	if err != nil {
		return nil, err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("delete principal %q: %w", id, err)
	}
	defer tx.Rollback()
	s, err := readPrincipalState(ctx, tx, "delete", id)
	switch {
	case err != nil:
		return nil, err
	case s.deleted:
		return []string{}, nil
	case s.role == core.RoleOwner && !s.disabled:
		if err := checkKeepsOwner(ctx, tx, id, at); err != nil {
			return nil, err
		}
	}
	keys, err := column(ctx, tx, `SELECT id FROM api_keys WHERE principal_id = ? AND revoked_at IS NULL ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("delete principal %q: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE api_keys SET revoked_at = ? WHERE principal_id = ? AND revoked_at IS NULL`, at, id); err != nil {
		return nil, fmt.Errorf("delete principal %q: revoke keys: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE principals SET deleted_at = ? WHERE id = ?`, at, id); err != nil {
		return nil, fmt.Errorf("delete principal %q: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("delete principal %q: commit: %w", id, err)
	}
	return keys, nil
}

// column runs a query of one text column in tx and returns its values;
// none is an empty slice, not nil.
func column(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// DeleteAgent deletes agent id at t the way DeleteProject deletes a
// project's agents, in one transaction: its secrets and versions are
// removed, the agent is marked deleted (its id stays taken), its
// invocations are kept. An unknown or already deleted agent wraps
// core.ErrNotFound.
func (db *DB) DeleteAgent(ctx context.Context, id string, t time.Time) error {
	at, err := encodeTime(t)
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete agent %q: %w", id, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE agents SET deleted_at = ? WHERE id = ? AND deleted_at IS NULL`, at, id)
	if err != nil {
		return fmt.Errorf("delete agent %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("delete agent %q: %w", id, err)
	} else if n == 0 {
		return fmt.Errorf("agent %q: %w", id, core.ErrNotFound)
	}
	for _, stmt := range []struct{ what, query string }{
		{"secrets", `DELETE FROM secrets WHERE agent_id = ?`},
		{"agent versions", `DELETE FROM agent_versions WHERE agent_id = ?`},
	} {
		if _, err := tx.ExecContext(ctx, stmt.query, id); err != nil {
			return fmt.Errorf("delete agent %q: %s: %w", id, stmt.what, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete agent %q: commit: %w", id, err)
	}
	return nil
}
