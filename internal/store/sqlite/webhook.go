package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Completion webhook deliveries (core.WebhookStore). A delivery's url is
// sealed like an invocation's payloads, bound to its row: it may hold a
// token in its query.

const deliveryColumns = `id, invocation_id, agent_id, project_id, source, url, with_output, status, attempts,
	next_attempt_at, last_error, created_at, updated_at, delivered_at`

// maxDeliveryError caps a stored attempt error or failure reason.
const maxDeliveryError = 1024

func deliveryAAD(id string) []byte { return []byte("webhook_deliveries\x00url\x00" + id) }

func (db *DB) sealURL(id, u string) (string, error) {
	if db.sealer == nil {
		return u, nil
	}
	ct, err := db.sealer.Seal([]byte(u), deliveryAAD(id))
	if err != nil {
		return "", fmt.Errorf("seal url of delivery %q: %w", id, err)
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(ct), nil
}

func (db *DB) openURL(id, s string) (string, error) {
	rest, ok := strings.CutPrefix(s, sealedPrefix)
	if !ok {
		return s, nil
	}
	if db.sealer == nil {
		return "", fmt.Errorf("url of delivery %q: %w", id, errSealedNoKeyring)
	}
	ct, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("url of delivery %q: malformed sealed value", id)
	}
	pt, err := db.sealer.Open(ct, deliveryAAD(id))
	if err != nil {
		return "", fmt.Errorf("open url of delivery %q: %w", id, err)
	}
	return string(pt), nil
}

func clip(s string) string {
	if len(s) > maxDeliveryError {
		s = s[:maxDeliveryError]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// CreateWebhookDelivery implements core.WebhookStore.
func (db *DB) CreateWebhookDelivery(ctx context.Context, d *core.WebhookDelivery) error {
	switch {
	case d.ID == "" || d.InvocationID == "" || d.AgentID == "" || d.URL == "":
		return &core.Error{Code: core.CodeValidation, Message: "a webhook delivery needs an id, an invocation id, an agent id and a url"}
	case !d.Status.Valid():
		return &core.Error{Code: core.CodeValidation, Field: "status", Message: fmt.Sprintf("unknown delivery status %q", d.Status)}
	case d.Source != core.WebhookFromConfig && d.Source != core.WebhookFromRequest:
		return &core.Error{Code: core.CodeValidation, Field: "source", Message: fmt.Sprintf("unknown delivery source %q", d.Source)}
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = db.now().UTC()
	}
	if d.UpdatedAt.IsZero() {
		d.UpdatedAt = d.CreatedAt
	}
	if d.NextAttemptAt.IsZero() {
		d.NextAttemptAt = d.CreatedAt
	}
	if d.ProjectID == "" {
		d.ProjectID = core.DefaultProject
	}
	created, err := encodeTime(d.CreatedAt)
	if err != nil {
		return err
	}
	updated, err := encodeTime(d.UpdatedAt)
	if err != nil {
		return err
	}
	next, err := encodeTime(d.NextAttemptAt)
	if err != nil {
		return err
	}
	delivered, err := encodeTimePtr(d.DeliveredAt)
	if err != nil {
		return err
	}
	u, err := db.sealURL(d.ID, d.URL)
	if err != nil {
		return err
	}
	_, err = db.write.ExecContext(ctx, `INSERT INTO webhook_deliveries (`+deliveryColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		d.ID, d.InvocationID, d.AgentID, d.ProjectID, d.Source, u, d.WithOutput, string(d.Status), d.Attempts,
		next, clip(d.LastError), created, updated, delivered)
	if db.isConstraint(err) {
		return &core.Error{Code: core.CodeConflict, Message: "webhook delivery already recorded", Err: err}
	}
	if err != nil {
		return fmt.Errorf("record webhook delivery %q: %w", d.ID, err)
	}
	return nil
}

// RecordWebhookAttempt implements core.WebhookStore.
func (db *DB) RecordWebhookAttempt(ctx context.Context, id string, a core.WebhookAttempt, status core.DeliveryStatus, next time.Time) error {
	if !status.Valid() {
		return &core.Error{Code: core.CodeValidation, Field: "status", Message: fmt.Sprintf("unknown delivery status %q", status)}
	}
	at, err := encodeTime(a.At)
	if err != nil {
		return err
	}
	nextN, err := encodeTime(next)
	if err != nil {
		return err
	}
	now := db.now().UTC()
	nowN, err := encodeTime(now)
	if err != nil {
		return err
	}
	var delivered any
	if status == core.DeliveryDelivered {
		delivered = nowN
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record webhook attempt: %w", err)
	}
	defer tx.Rollback()
	if err := pendingDelivery(ctx, tx, id, a.N-1); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_attempts (delivery_id, n, at, duration_ms, status_code, error) VALUES (?, ?, ?, ?, ?, ?)`,
		id, a.N, at, a.DurationMS, a.StatusCode, clip(a.Error)); err != nil {
		return fmt.Errorf("record webhook attempt of %q: %w", id, err)
	}
	if _, err := tx.ExecContext(ctx, `
UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ?, delivered_at = ?
WHERE id = ?`, string(status), a.N, nextN, clip(a.Error), nowN, delivered, id); err != nil {
		return fmt.Errorf("record webhook attempt of %q: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record webhook attempt of %q: %w", id, err)
	}
	return nil
}

// pendingDelivery checks, in tx, that delivery id exists, is pending and
// (if attempts >= 0) has made that many attempts.
func pendingDelivery(ctx context.Context, tx *sql.Tx, id string, attempts int) error {
	var (
		status string
		n      int
	)
	err := tx.QueryRowContext(ctx, `SELECT status, attempts FROM webhook_deliveries WHERE id = ?`, id).Scan(&status, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("webhook delivery %q: %w", id, core.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("webhook delivery %q: %w", id, err)
	}
	if status != string(core.DeliveryPending) {
		return &core.Error{Code: core.CodeConflict, Message: fmt.Sprintf("webhook delivery %q is already %s", id, status)}
	}
	if attempts >= 0 && n != attempts {
		return &core.Error{Code: core.CodeConflict, Message: fmt.Sprintf("webhook delivery %q has made %d attempts, not %d", id, n, attempts)}
	}
	return nil
}

// FailWebhookDelivery implements core.WebhookStore.
func (db *DB) FailWebhookDelivery(ctx context.Context, id, reason string) error {
	now, err := encodeTime(db.now().UTC())
	if err != nil {
		return err
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("fail webhook delivery: %w", err)
	}
	defer tx.Rollback()
	if err := pendingDelivery(ctx, tx, id, -1); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET status = ?, last_error = ?, updated_at = ? WHERE id = ?`,
		string(core.DeliveryFailed), clip(reason), now, id); err != nil {
		return fmt.Errorf("fail webhook delivery %q: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("fail webhook delivery %q: %w", id, err)
	}
	return nil
}

// WebhookDelivery implements core.WebhookStore.
func (db *DB) WebhookDelivery(ctx context.Context, id string) (*core.WebhookDelivery, error) {
	return getByID(ctx, db, "webhook delivery", id, db.scanDelivery,
		`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE id = ?`)
}

// WebhookDeliveries implements core.WebhookStore.
func (db *DB) WebhookDeliveries(ctx context.Context, invocationID string) ([]*core.WebhookDelivery, error) {
	ds, err := list(ctx, db, "list webhook deliveries", db.scanDelivery,
		`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE invocation_id = ? ORDER BY created_at, id`, invocationID)
	if err != nil || len(ds) == 0 {
		return ds, err
	}
	byID := make(map[string]*core.WebhookDelivery, len(ds))
	for _, d := range ds {
		byID[d.ID] = d
	}
	rows, err := db.read.QueryContext(ctx, `
SELECT a.delivery_id, a.n, a.at, a.duration_ms, a.status_code, a.error
FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
WHERE d.invocation_id = ? ORDER BY a.delivery_id, a.n`, invocationID)
	if err != nil {
		return nil, fmt.Errorf("list webhook attempts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id string
			a  core.WebhookAttempt
			at int64
		)
		if err := rows.Scan(&id, &a.N, &at, &a.DurationMS, &a.StatusCode, &a.Error); err != nil {
			return nil, fmt.Errorf("list webhook attempts: %w", err)
		}
		a.At = decodeTime(at)
		if d := byID[id]; d != nil {
			d.AttemptLog = append(d.AttemptLog, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list webhook attempts: %w", err)
	}
	return ds, nil
}

// PendingWebhookDeliveries implements core.WebhookStore.
func (db *DB) PendingWebhookDeliveries(ctx context.Context, limit int) ([]*core.WebhookDelivery, error) {
	if limit <= 0 {
		limit = MaxLimit
	}
	return list(ctx, db, "list pending webhook deliveries", db.scanDelivery,
		`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE status = 'pending' ORDER BY next_attempt_at, id LIMIT ?`, limit)
}

func (db *DB) scanDelivery(s scanner) (*core.WebhookDelivery, error) {
	var (
		d                      core.WebhookDelivery
		status, u              string
		next, created, updated int64
		delivered              sql.NullInt64
	)
	if err := s.Scan(&d.ID, &d.InvocationID, &d.AgentID, &d.ProjectID, &d.Source, &u, &d.WithOutput, &status, &d.Attempts,
		&next, &d.LastError, &created, &updated, &delivered); err != nil {
		return nil, err
	}
	var err error
	if d.URL, err = db.openURL(d.ID, u); err != nil {
		return nil, err
	}
	d.Status = core.DeliveryStatus(status)
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = decodeTime(next), decodeTime(created), decodeTime(updated)
	d.DeliveredAt = decodeTimePtr(delivered)
	return &d, nil
}
