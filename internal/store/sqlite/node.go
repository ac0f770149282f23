package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// The node registry (core.NodeStore; see migrations/0015_nodes.sql).
//
// The queries name the running status as a literal, not a parameter, so
// that both databases use the partial index invocations_running_node.

const nodeColumns = `id, version, addr, started_at, heartbeat_at, stopped_at, dead_at`

// RegisterNode records n as started and alive, replacing what was known
// of a node of the same id (a restart): its stopped and dead marks are
// cleared. A zero n.StartedAt is set to now; n.HeartbeatAt is set to
// n.StartedAt. The id must pass core.CheckNodeID.
func (db *DB) RegisterNode(ctx context.Context, n *core.Node) error {
	if err := core.CheckNodeID(n.ID); err != nil {
		return err
	}
	if n.StartedAt.IsZero() {
		n.StartedAt = db.now().UTC()
	}
	n.HeartbeatAt = n.StartedAt
	n.StoppedAt, n.DeadAt = nil, nil
	started, err := encodeTime(n.StartedAt)
	if err != nil {
		return err
	}
	_, err = db.write.ExecContext(ctx, `
INSERT INTO nodes (`+nodeColumns+`) VALUES (?, ?, ?, ?, ?, NULL, NULL)
ON CONFLICT (id) DO UPDATE SET
	version = excluded.version, addr = excluded.addr, started_at = excluded.started_at,
	heartbeat_at = excluded.heartbeat_at, stopped_at = NULL, dead_at = NULL`,
		n.ID, n.Version, n.Addr, started, started)
	if err != nil {
		return fmt.Errorf("register node %q: %w", n.ID, err)
	}
	return nil
}

// NodeHeartbeat records that node id is alive at t. An unknown node wraps
// core.ErrNotFound; one marked stopped or dead is a core.CodeConflict
// error: it was given up on, and must register again.
func (db *DB) NodeHeartbeat(ctx context.Context, id string, t time.Time) error {
	at, err := encodeTime(t)
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `
UPDATE nodes SET heartbeat_at = ? WHERE id = ? AND stopped_at IS NULL AND dead_at IS NULL`, at, id)
	if err != nil {
		return fmt.Errorf("heartbeat of node %q: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("heartbeat of node %q: %w", id, err)
	} else if n == 1 {
		return nil
	}
	node, err := db.node(ctx, db.write, id)
	if err != nil {
		return fmt.Errorf("heartbeat of node %q: %w", id, err)
	}
	return &core.Error{Code: core.CodeConflict, Field: "node_id",
		Message: fmt.Sprintf("node %s is marked %s: it must register again", id, node.State())}
}

// StopNode marks node id stopped at t and fails its running invocations
// with message, in one transaction, and returns how many it failed. An
// unknown node wraps core.ErrNotFound; a node already stopped or dead is
// left as it is (0, nil).
func (db *DB) StopNode(ctx context.Context, id string, t time.Time, message string) (int64, error) {
	at, err := encodeTime(t)
	if err != nil {
		return 0, err
	}
	var failed int64
	err = db.writeTx(ctx, "stop node "+id, func(tx *sql.Tx) error {
		failed = 0
		res, err := tx.ExecContext(ctx, `
UPDATE nodes SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL AND dead_at IS NULL`, at, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			_, err := db.node(ctx, tx, id)
			return err
		}
		failed, err = db.failOn(ctx, tx, id, false, message, at)
		return err
	})
	return failed, err
}

// Nodes lists every node, ordered by id, with the count of its running
// invocations.
func (db *DB) Nodes(ctx context.Context) ([]*core.Node, error) {
	return list(ctx, db, "list nodes", func(s scanner) (*core.Node, error) {
		return scanNode(s, true)
	}, `SELECT `+nodeColumns+`,
	(SELECT COUNT(*) FROM invocations WHERE node_id = nodes.id AND status = 'running')
FROM nodes ORDER BY id`)
}

// SweepDeadNodes declares dead at t every node neither stopped nor dead
// whose heartbeat is before cutoff, failing its running invocations with
// its core.Node.DeadMessage, all in one write transaction. Write
// transactions run one at a time (on PostgreSQL across nodes too) and a
// node is declared only while its row still says it is late and alive,
// so of several nodes sweeping at once exactly one declares it.
func (db *DB) SweepDeadNodes(ctx context.Context, cutoff, t time.Time) ([]*core.DeadNode, error) {
	before, err := encodeTime(cutoff)
	if err != nil {
		return nil, err
	}
	at, err := encodeTime(t)
	if err != nil {
		return nil, err
	}
	// Most sweeps find nobody: look first without the writer (on
	// PostgreSQL a lock every node's writes wait for).
	var late int
	err = db.read.QueryRowContext(ctx, `
SELECT COUNT(*) FROM nodes WHERE heartbeat_at < ? AND stopped_at IS NULL AND dead_at IS NULL`, before).Scan(&late)
	if err != nil {
		return nil, fmt.Errorf("sweep dead nodes: %w", err)
	}
	if late == 0 {
		return []*core.DeadNode{}, nil
	}
	var dead []*core.DeadNode
	err = db.writeTx(ctx, "sweep dead nodes", func(tx *sql.Tx) error {
		dead = []*core.DeadNode{}
		late, err := listTx(ctx, tx, func(s scanner) (*core.Node, error) { return scanNode(s, false) }, `
SELECT `+nodeColumns+` FROM nodes
WHERE heartbeat_at < ? AND stopped_at IS NULL AND dead_at IS NULL ORDER BY id`, before)
		if err != nil {
			return err
		}
		for _, n := range late {
			res, err := tx.ExecContext(ctx, `
UPDATE nodes SET dead_at = ?
WHERE id = ? AND heartbeat_at < ? AND stopped_at IS NULL AND dead_at IS NULL`, at, n.ID, before)
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err != nil {
				return err
			} else if k == 0 {
				continue // it heartbeat meanwhile
			}
			failed, err := db.failOn(ctx, tx, n.ID, false, n.DeadMessage(), at)
			if err != nil {
				return err
			}
			dead = append(dead, &core.DeadNode{Node: *n, Failed: failed})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return dead, nil
}

// FailNodeInvocations marks the invocations running on node (left
// behind by its crash) as failed with code core.CodeInternal and message,
// completed now; with unowned also those recorded without a node. It
// returns how many it marked.
func (db *DB) FailNodeInvocations(ctx context.Context, node string, unowned bool, message string) (int64, error) {
	at, err := encodeTime(db.now())
	if err != nil {
		return 0, err
	}
	var n int64
	err = db.writeTx(ctx, "fail the invocations of node "+node, func(tx *sql.Tx) error {
		n, err = db.failOn(ctx, tx, node, unowned, message, at)
		return err
	})
	return n, err
}

// failOn fails the running invocations of node (and with unowned those
// of no node) at time at.
func (db *DB) failOn(ctx context.Context, tx *sql.Tx, node string, unowned bool, message string, at int64) (int64, error) {
	which := `node_id = ?`
	args := []any{string(core.StatusFailed), core.CodeInternal, message, at, at, node}
	if unowned {
		which = `node_id IN (?, '')`
	}
	res, err := tx.ExecContext(ctx, `
UPDATE invocations SET
	status = ?, error_code = ?, error_message = ?, completed_at = ?,
	duration_ms = `+db.dialect.NonNegativeDuration+`
WHERE status = 'running' AND `+which, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// node reads node id through q, or wraps core.ErrNotFound.
func (db *DB) node(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, id string) (*core.Node, error) {
	n, err := scanNode(q.QueryRowContext(ctx, `SELECT `+nodeColumns+` FROM nodes WHERE id = ?`, id), false)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("node %q: %w", id, core.ErrNotFound)
	}
	return n, err
}

// scanNode scans nodeColumns, and the running count after them if
// withRunning.
func scanNode(s scanner, withRunning bool) (*core.Node, error) {
	var (
		n                 core.Node
		started, beat     int64
		stopped, deadTime sql.NullInt64
	)
	dest := []any{&n.ID, &n.Version, &n.Addr, &started, &beat, &stopped, &deadTime}
	if withRunning {
		dest = append(dest, &n.Running)
	}
	if err := s.Scan(dest...); err != nil {
		return nil, err
	}
	n.StartedAt, n.HeartbeatAt = decodeTime(started), decodeTime(beat)
	n.StoppedAt, n.DeadAt = decodeTimePtr(stopped), decodeTimePtr(deadTime)
	return &n, nil
}

// listTx is list in a transaction.
func listTx[T any](ctx context.Context, tx *sql.Tx, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
