package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Listing limits.
const (
	DefaultLimit = 50
	MaxLimit     = 1000
)

// deleteBatch is how many invocations DeleteInvocationsBefore deletes per
// transaction, so that it never holds the write lock for long.
const deleteBatch = 500

const invocationColumns = `id, agent_id, project_id, agent_version, entrypoint_tag, streaming, transport, status,
	caller, user_id, input_args, input_kwargs, output, chunks, logs, error_code, error_message,
	created_at, completed_at, duration_ms, node_id`

// CreateInvocation inserts inv with status running. inv.ID must be set and
// unused (a duplicate fails with a core.CodeConflict error); an empty
// inv.Status is set to running and any other status is refused. A zero
// inv.CreatedAt is set to the current time and an empty inv.ProjectID to
// core.DefaultProject. The project and the node (inv.NodeID) are
// recorded as given, not checked.
func (db *DB) CreateInvocation(ctx context.Context, inv *core.Invocation) error {
	if inv.ID == "" {
		return &core.Error{Code: core.CodeValidation, Message: "invocation id is required", Field: "invocation_id"}
	}
	switch inv.Status {
	case "":
		inv.Status = core.StatusRunning
	case core.StatusRunning:
	default:
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("new invocation has status %q, want %q", inv.Status, core.StatusRunning), Field: "status"}
	}
	if inv.CreatedAt.IsZero() {
		inv.CreatedAt = db.now().UTC()
	}
	if inv.ProjectID == "" {
		inv.ProjectID = core.DefaultProject
	}
	createdAt, err := encodeTime(inv.CreatedAt)
	if err != nil {
		return err
	}
	completedAt, err := encodeTimePtr(inv.CompletedAt)
	if err != nil {
		return err
	}
	p, err := db.sealPayload(inv, true)
	if err != nil {
		return err
	}
	stmt, err := db.prepared(ctx, db.invocationWriter(ctx), `INSERT INTO invocations (`+invocationColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("create invocation %q: %w", inv.ID, err)
	}
	_, err = stmt.ExecContext(ctx,
		inv.ID, inv.AgentID, inv.ProjectID, inv.AgentVersion, inv.EntrypointTag, inv.Streaming, inv.Transport, string(inv.Status),
		inv.Caller, inv.UserID, p.args, p.kwargs, p.output,
		inv.Chunks, p.logs, inv.ErrorCode, p.errorMessage,
		createdAt, completedAt, inv.DurationMS, inv.NodeID)
	if db.isConstraint(err) {
		return &core.Error{Code: core.CodeConflict, Message: "invocation already exists", Err: err}
	}
	if err != nil {
		return fmt.Errorf("create invocation %q: %w", inv.ID, err)
	}
	return nil
}

// SetInvocationLogs implements core.InvocationStore.
func (db *DB) SetInvocationLogs(ctx context.Context, id, logs string) error {
	sealed, err := db.sealText("logs", id, logs)
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `UPDATE invocations SET logs = ? WHERE id = ? AND status <> ?`,
		sealed, id, string(core.StatusRunning))
	if err != nil {
		return fmt.Errorf("set logs of invocation %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("set logs of invocation %q: %w", id, err)
	} else if n == 1 {
		return nil
	}
	var status string
	err = db.write.QueryRowContext(ctx, `SELECT status FROM invocations WHERE id = ?`, id).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("set logs of invocation %q: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("set logs of invocation %q: %w", id, err)
	}
	return &core.Error{Code: core.CodeConflict, Message: "invocation is still running"}
}

// FinishInvocation records the terminal state of a running invocation:
// Status (which must be terminal), Output, Chunks, Logs, ErrorCode,
// ErrorMessage, CompletedAt (set to the current time if nil) and
// DurationMS. It fails with an error wrapping core.ErrNotFound for an
// unknown invocation and with a core.CodeConflict error for one that is
// already finished.
func (db *DB) FinishInvocation(ctx context.Context, inv *core.Invocation) error {
	if !inv.Status.Valid() || inv.Status == core.StatusRunning {
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("invalid final status %q", inv.Status), Field: "status"}
	}
	if inv.CompletedAt == nil {
		t := db.now().UTC()
		inv.CompletedAt = &t
	}
	completedAt, err := encodeTime(*inv.CompletedAt)
	if err != nil {
		return err
	}
	p, err := db.sealPayload(inv, false)
	if err != nil {
		return err
	}
	stmt, err := db.prepared(ctx, db.invocationWriter(ctx), `
UPDATE invocations SET
	status = ?, output = ?, chunks = ?, logs = ?, error_code = ?, error_message = ?,
	completed_at = ?, duration_ms = ?
WHERE id = ? AND status = ?`)
	if err != nil {
		return fmt.Errorf("finish invocation %q: %w", inv.ID, err)
	}
	res, err := stmt.ExecContext(ctx,
		string(inv.Status), p.output, inv.Chunks, p.logs, inv.ErrorCode, p.errorMessage,
		completedAt, inv.DurationMS,
		inv.ID, string(core.StatusRunning))
	if err != nil {
		return fmt.Errorf("finish invocation %q: %w", inv.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("finish invocation %q: %w", inv.ID, err)
	}
	if n == 1 {
		return nil
	}
	// Nothing updated: tell a missing invocation from a finished one.
	var status string
	err = db.write.QueryRowContext(ctx, `SELECT status FROM invocations WHERE id = ?`, inv.ID).Scan(&status)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("finish invocation %q: %w", inv.ID, core.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("finish invocation %q: %w", inv.ID, err)
	}
	return &core.Error{Code: core.CodeConflict, Message: fmt.Sprintf("invocation is already %s", status)}
}

// Invocation returns one invocation, or an error wrapping core.ErrNotFound.
func (db *DB) Invocation(ctx context.Context, id string) (*core.Invocation, error) {
	return getByID(ctx, db, "invocation", id, db.scanInvocation, `SELECT `+invocationColumns+` FROM invocations WHERE id = ?`)
}

// Invocations lists the invocations matching f, newest first (ties broken
// by id, descending); an empty f.ProjectID matches every project. A zero
// f.Limit means DefaultLimit and larger limits are capped at MaxLimit; a
// negative limit or offset, an unknown status, or a cursor (f.After) with
// an offset is a core.CodeValidation error. With f.After the page starts
// after that place by a range on the (created_at, id) order the indexes
// keep, so a page costs the same wherever it is.
func (db *DB) Invocations(ctx context.Context, f core.InvocationFilter) ([]*core.Invocation, error) {
	if f.Limit < 0 {
		return nil, &core.Error{Code: core.CodeValidation, Message: "limit must not be negative", Field: "limit"}
	}
	if f.Offset < 0 {
		return nil, &core.Error{Code: core.CodeValidation, Message: "offset must not be negative", Field: "offset"}
	}
	if f.Status != "" && !f.Status.Valid() {
		return nil, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown status %q", f.Status), Field: "status"}
	}
	if f.After != nil && f.Offset != 0 {
		return nil, &core.Error{Code: core.CodeValidation, Message: "page with a cursor or with an offset, not both", Field: "offset"}
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)

	var c conditions
	c.equal("agent_id", f.AgentID)
	c.equal("project_id", f.ProjectID)
	c.in("agent_id", f.AgentIDs)
	c.equal("status", string(f.Status))
	c.equal("user_id", f.UserID)
	c.equal("caller", f.Caller)
	if err := timeBound(&c, "created_at >= ?", f.Since); err != nil {
		return nil, err
	}
	if err := timeBound(&c, "created_at < ?", f.Until); err != nil {
		return nil, err
	}
	if f.After != nil {
		after, err := encodeTime(f.After.CreatedAt)
		if err != nil {
			return nil, err
		}
		// The first term bounds the index range; the second drops the
		// cursor's own time up to and including its id.
		c.add("created_at <= ? AND (created_at < ? OR id < ?)", after, after, f.After.ID)
	}
	q := `SELECT ` + invocationColumns + ` FROM invocations` + c.where() + ` ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`
	return list(ctx, db, "list invocations", db.scanInvocation, q, append(c.args, limit, f.Offset)...)
}

// timeBound adds clause with t's encoding, unless t is zero.
func timeBound(c *conditions, clause string, t time.Time) error {
	if t.IsZero() {
		return nil
	}
	n, err := encodeTime(t)
	if err != nil {
		return err
	}
	c.add(clause, n)
	return nil
}

// InvocationStats summarises one agent's invocations from a single
// snapshot. ByStatus has an entry for every status, zero included;
// AvgDurationMS averages the finished (non-running) invocations; LastAt is
// nil when the agent has none. An unknown agent has all zeros.
func (db *DB) InvocationStats(ctx context.Context, agentID string) (*core.InvocationStats, error) {
	st := &core.InvocationStats{
		AgentID: agentID,
		ByStatus: map[core.InvocationStatus]int64{
			core.StatusRunning:   0,
			core.StatusCompleted: 0,
			core.StatusFailed:    0,
			core.StatusTimeout:   0,
			core.StatusCancelled: 0,
		},
	}
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("invocation stats %q: %w", agentID, err)
	}
	defer tx.Rollback()

	var (
		avg  sql.NullFloat64
		last sql.NullInt64
	)
	err = tx.QueryRowContext(ctx, `
SELECT COUNT(*), AVG(CASE WHEN status <> ? THEN duration_ms END), MAX(created_at)
FROM invocations WHERE agent_id = ?`, string(core.StatusRunning), agentID).
		Scan(&st.Total, &avg, &last)
	if err != nil {
		return nil, fmt.Errorf("invocation stats %q: %w", agentID, err)
	}
	st.AvgDurationMS = avg.Float64
	if last.Valid {
		t := decodeTime(last.Int64)
		st.LastAt = &t
	}

	rows, err := tx.QueryContext(ctx, `
SELECT status, COUNT(*) FROM invocations WHERE agent_id = ? GROUP BY status`, agentID)
	if err != nil {
		return nil, fmt.Errorf("invocation stats %q: %w", agentID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			status string
			n      int64
		)
		if err := rows.Scan(&status, &n); err != nil {
			return nil, fmt.Errorf("invocation stats %q: %w", agentID, err)
		}
		st.ByStatus[core.InvocationStatus(status)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("invocation stats %q: %w", agentID, err)
	}
	return st, nil
}

// DeleteInvocationsBefore deletes the finished invocations created before
// t, deleteBatch rows per transaction, and returns how many it deleted.
// Running invocations are kept. With dryRun it only counts them. If ctx is
// cancelled between batches it returns the count so far with ctx's error.
func (db *DB) DeleteInvocationsBefore(ctx context.Context, t time.Time, dryRun bool) (int64, error) {
	// Every stored time is in range, so a t outside it is before or after
	// all of them.
	before, err := encodeTime(t)
	if err != nil {
		before = math.MaxInt64
		if t.Before(time.Unix(0, 0)) {
			before = math.MinInt64
		}
	}
	if dryRun {
		var n int64
		err := db.read.QueryRowContext(ctx, `
SELECT COUNT(*) FROM invocations WHERE created_at < ? AND status <> ?`,
			before, string(core.StatusRunning)).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count invocations to delete: %w", err)
		}
		return n, nil
	}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("delete invocations: %w", err)
		}
		res, err := db.write.ExecContext(ctx, `
DELETE FROM invocations WHERE `+db.dialect.RowID+` IN (
	SELECT `+db.dialect.RowID+` FROM invocations WHERE created_at < ? AND status <> ? LIMIT ?
)`, before, string(core.StatusRunning), deleteBatch)
		if err != nil {
			return total, fmt.Errorf("delete invocations: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("delete invocations: %w", err)
		}
		total += n
		if n < deleteBatch {
			return total, nil
		}
	}
}

// payload is an invocation's payload columns as stored.
type payload struct {
	args, kwargs, output any // NULL or TEXT
	logs, errorMessage   string
}

// sealPayload seals inv's payload for storing (the inputs only when
// withInputs: they are written once, at creation).
func (db *DB) sealPayload(inv *core.Invocation, withInputs bool) (payload, error) {
	var p payload
	var err error
	if withInputs {
		if p.args, err = db.sealJSON("input_args", inv.ID, inv.InputArgs); err != nil {
			return p, err
		}
		if p.kwargs, err = db.sealJSON("input_kwargs", inv.ID, inv.InputKwargs); err != nil {
			return p, err
		}
	}
	if p.output, err = db.sealJSON("output", inv.ID, inv.Output); err != nil {
		return p, err
	}
	if p.logs, err = db.sealText("logs", inv.ID, inv.Logs); err != nil {
		return p, err
	}
	if p.errorMessage, err = db.sealText("error_message", inv.ID, inv.ErrorMessage); err != nil {
		return p, err
	}
	return p, nil
}

func (db *DB) scanInvocation(s scanner) (*core.Invocation, error) {
	var (
		inv                  core.Invocation
		status               string
		args, kwargs, output sql.NullString
		createdAt            int64
		completedAt          sql.NullInt64
	)
	err := s.Scan(&inv.ID, &inv.AgentID, &inv.ProjectID, &inv.AgentVersion, &inv.EntrypointTag, &inv.Streaming, &inv.Transport, &status,
		&inv.Caller, &inv.UserID, &args, &kwargs, &output, &inv.Chunks, &inv.Logs, &inv.ErrorCode, &inv.ErrorMessage,
		&createdAt, &completedAt, &inv.DurationMS, &inv.NodeID)
	if err != nil {
		return nil, err
	}
	inv.Status = core.InvocationStatus(status)
	if inv.InputArgs, err = db.openJSON("input_args", inv.ID, args); err != nil {
		return nil, err
	}
	if inv.InputKwargs, err = db.openJSON("input_kwargs", inv.ID, kwargs); err != nil {
		return nil, err
	}
	if inv.Output, err = db.openJSON("output", inv.ID, output); err != nil {
		return nil, err
	}
	if inv.Logs, err = db.openText("logs", inv.ID, inv.Logs); err != nil {
		return nil, err
	}
	if inv.ErrorMessage, err = db.openText("error_message", inv.ID, inv.ErrorMessage); err != nil {
		return nil, err
	}
	inv.CreatedAt = decodeTime(createdAt)
	if completedAt.Valid {
		t := decodeTime(completedAt.Int64)
		inv.CompletedAt = &t
	}
	return &inv, nil
}

func encodeTimePtr(t *time.Time) (any, error) {
	if t == nil {
		return nil, nil
	}
	return encodeTime(*t)
}
