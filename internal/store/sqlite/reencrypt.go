package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/runagent/runagent/internal/core"
)

// reencryptBatch is how many rows Reencrypt rewrites per transaction.
const reencryptBatch = 200

// payloadColumns are the sealed columns of invocations.
var payloadColumns = []string{"input_args", "input_kwargs", "output", "logs", "error_message"}

// Reencrypt seals again, with the sealer's current key, every stored
// value (secrets, invocation payloads, webhook delivery URLs and
// persistent-memory keys) for which stale reports true
// (given its ciphertext: "sealed with a key other than the active one"),
// and values stored in the clear before the store had a sealer. It works
// in batches so the server can keep writing, and returns how many values
// it rewrote. A row changed meanwhile by someone else is left for the
// next run.
func (db *DB) Reencrypt(ctx context.Context, stale func(ciphertext []byte) bool) (int64, error) {
	if db.sealer == nil {
		return 0, errNoSealer
	}
	n, err := db.reencryptSecrets(ctx, stale)
	if err != nil {
		return n, err
	}
	m, err := db.reencryptInvocations(ctx, stale)
	n += m
	if err != nil {
		return n, err
	}
	m, err = db.reencryptDeliveries(ctx, stale)
	n += m
	if err != nil {
		return n, err
	}
	m, err = db.reencryptMemories(ctx, stale)
	return n + m, err
}

// reencryptDeliveries seals webhook delivery URLs again.
func (db *DB) reencryptDeliveries(ctx context.Context, stale func([]byte) bool) (int64, error) {
	type row struct{ id, url string }
	var due []row
	rows, err := db.read.QueryContext(ctx, `SELECT id, url FROM webhook_deliveries`)
	if err != nil {
		return 0, fmt.Errorf("reencrypt webhook deliveries: %w", err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.url); err != nil {
			rows.Close()
			return 0, fmt.Errorf("reencrypt webhook deliveries: %w", err)
		}
		if staleText(r.url, stale) {
			due = append(due, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reencrypt webhook deliveries: %w", err)
	}
	var n int64
	for _, r := range due {
		plain, err := db.openURL(r.id, r.url)
		if err != nil {
			return n, err
		}
		sealed, err := db.sealURL(r.id, plain)
		if err != nil {
			return n, err
		}
		res, err := db.write.ExecContext(ctx, `UPDATE webhook_deliveries SET url = ? WHERE id = ? AND url = ?`, sealed, r.id, r.url)
		if err != nil {
			return n, fmt.Errorf("reencrypt webhook delivery %s: %w", r.id, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

// reencryptMemories seals persistent-memory stores' keys again (a store
// the operator accepted unencrypted has none).
func (db *DB) reencryptMemories(ctx context.Context, stale func([]byte) bool) (int64, error) {
	type row struct {
		project, agent, user, image string
		key                         []byte
	}
	var due []row
	rows, err := db.read.QueryContext(ctx, `SELECT project_id, agent_id, user_id, image, sealed_key FROM memories WHERE sealed_key IS NOT NULL`)
	if err != nil {
		return 0, fmt.Errorf("reencrypt memory keys: %w", err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.project, &r.agent, &r.user, &r.image, &r.key); err != nil {
			rows.Close()
			return 0, fmt.Errorf("reencrypt memory keys: %w", err)
		}
		if stale(r.key) {
			due = append(due, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reencrypt memory keys: %w", err)
	}
	var n int64
	for _, r := range due {
		ad := core.MemoryKeyAD(r.project, r.agent, r.user, r.image)
		plain, err := db.sealer.Open(r.key, ad)
		if err != nil {
			return n, fmt.Errorf("reencrypt the memory key of agent %s: %w", r.agent, err)
		}
		sealed, err := db.sealer.Seal(plain, ad)
		clear(plain)
		if err != nil {
			return n, err
		}
		res, err := db.write.ExecContext(ctx, `UPDATE memories SET sealed_key = ? WHERE image = ? AND sealed_key = ?`, sealed, r.image, r.key)
		if err != nil {
			return n, fmt.Errorf("reencrypt the memory key of agent %s: %w", r.agent, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

func (db *DB) reencryptSecrets(ctx context.Context, stale func([]byte) bool) (int64, error) {
	type row struct {
		agent, name string
		value       []byte
	}
	var due []row
	rows, err := db.read.QueryContext(ctx, `SELECT agent_id, name, value FROM secrets`)
	if err != nil {
		return 0, fmt.Errorf("reencrypt secrets: %w", err)
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.agent, &r.name, &r.value); err != nil {
			rows.Close()
			return 0, fmt.Errorf("reencrypt secrets: %w", err)
		}
		if stale(r.value) {
			due = append(due, r)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reencrypt secrets: %w", err)
	}
	var n int64
	for _, r := range due {
		aad := secretAAD(r.agent, r.name)
		plain, err := db.sealer.Open(r.value, aad)
		if err != nil {
			return n, fmt.Errorf("reencrypt secret %s of agent %s: %w", r.name, r.agent, err)
		}
		sealed, err := db.sealer.Seal(plain, aad)
		clear(plain)
		if err != nil {
			return n, err
		}
		res, err := db.write.ExecContext(ctx, `UPDATE secrets SET value = ? WHERE agent_id = ? AND name = ? AND value = ?`, sealed, r.agent, r.name, r.value)
		if err != nil {
			return n, fmt.Errorf("reencrypt secret %s: %w", r.name, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	return n, nil
}

// staleText reports whether a payload column's stored text needs sealing
// again: clear text, or sealed with a stale key.
func staleText(s string, stale func([]byte) bool) bool {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return s != ""
	}
	ct, err := base64.StdEncoding.DecodeString(rest)
	return err == nil && stale(ct)
}

func (db *DB) reencryptInvocations(ctx context.Context, stale func([]byte) bool) (int64, error) {
	var n int64
	after := ""
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		rows, err := db.read.QueryContext(ctx, `SELECT id, status, input_args, input_kwargs, output, logs, error_message
FROM invocations WHERE id > ? ORDER BY id LIMIT ?`, after, reencryptBatch)
		if err != nil {
			return n, fmt.Errorf("reencrypt invocations: %w", err)
		}
		type row struct {
			id, status string
			cols       [5]sql.NullString
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.status, &r.cols[0], &r.cols[1], &r.cols[2], &r.cols[3], &r.cols[4]); err != nil {
				rows.Close()
				return n, fmt.Errorf("reencrypt invocations: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, fmt.Errorf("reencrypt invocations: %w", err)
		}
		if len(page) == 0 {
			return n, nil
		}
		after = page[len(page)-1].id
		tx, err := db.write.BeginTx(ctx, nil)
		if err != nil {
			return n, fmt.Errorf("reencrypt invocations: %w", err)
		}
		for _, r := range page {
			for i, col := range payloadColumns {
				v := r.cols[i]
				if !v.Valid || !staleText(v.String, stale) {
					continue
				}
				plain, err := db.openText(col, r.id, v.String)
				if err != nil {
					tx.Rollback()
					return n, err
				}
				sealed, err := db.sealText(col, r.id, plain)
				if err != nil {
					tx.Rollback()
					return n, err
				}
				// col comes from payloadColumns, never from input.
				// Only if unchanged since read (a running invocation's
				// output or logs may be written meanwhile).
				res, err := tx.ExecContext(ctx, `UPDATE invocations SET `+col+` = ? WHERE id = ? AND `+col+` = ?`, sealed, r.id, v.String)
				if err != nil {
					tx.Rollback()
					return n, fmt.Errorf("reencrypt invocation %s: %w", r.id, err)
				}
				k, _ := res.RowsAffected()
				n += k
			}
		}
		if err := tx.Commit(); err != nil {
			return n, fmt.Errorf("reencrypt invocations: %w", err)
		}
	}
}
