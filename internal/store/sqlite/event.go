package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
)

var _ core.EventStore = (*DB)(nil)

const eventColumns = `id, occurred_at, type, severity, principal, ip, agent_id, invocation_id, request_id, message, details`

// AppendEvents stores evs in one transaction: all of them or, on error,
// none. Each event needs an ID that is not stored yet (a duplicate, within
// the batch or with a stored event, is a core.CodeConflict error), a known
// Type and a known Severity; a zero Time is set, in evs, to the current
// time. Strings that are not valid UTF-8 or hold a NUL byte are refused
// rather than altered (JSON, which holds Details, cannot carry the first
// and PostgreSQL text neither). Those violations are core.CodeValidation
// errors. An empty batch does nothing.
func (db *DB) AppendEvents(ctx context.Context, evs []core.SecurityEvent) error {
	if len(evs) == 0 {
		return nil
	}
	type row struct {
		at      int64
		details string
	}
	rows := make([]row, len(evs))
	for i := range evs {
		ev := &evs[i]
		if err := checkEvent(ev); err != nil {
			return err
		}
		if ev.Time.IsZero() {
			ev.Time = db.now().UTC()
		}
		at, err := encodeTime(ev.Time)
		if err != nil {
			return err
		}
		details, err := encodeDetails(ev.Details)
		if err != nil {
			return fmt.Errorf("append event %q: encode details: %w", ev.ID, err)
		}
		rows[i] = row{at, details}
	}

	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	defer tx.Rollback()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO security_events (`+eventColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	defer stmt.Close()
	for i := range evs {
		ev := &evs[i]
		_, err := stmt.ExecContext(ctx, ev.ID, rows[i].at, string(ev.Type), string(ev.Severity),
			ev.Principal, ev.IP, ev.AgentID, ev.InvocationID, ev.RequestID, ev.Message, rows[i].details)
		if db.isConstraint(err) {
			return &core.Error{Code: core.CodeConflict, Message: fmt.Sprintf("event %q already exists", ev.ID), Field: "event_id", Err: err}
		}
		if err != nil {
			return fmt.Errorf("append event %q: %w", ev.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("append events: commit: %w", err)
	}
	return nil
}

// checkEvent validates what AppendEvents refuses.
func checkEvent(ev *core.SecurityEvent) error {
	switch {
	case ev.ID == "":
		return &core.Error{Code: core.CodeValidation, Message: "event id is required", Field: "event_id"}
	case !ev.Type.Valid():
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown event type %q", ev.Type), Field: "type"}
	case !ev.Severity.Valid():
		return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown severity %q", ev.Severity), Field: "severity"}
	}
	for _, f := range []struct{ name, v string }{
		{"event_id", ev.ID}, {"principal", ev.Principal}, {"ip", ev.IP}, {"agent_id", ev.AgentID},
		{"invocation_id", ev.InvocationID}, {"request_id", ev.RequestID}, {"message", ev.Message},
	} {
		if !representable(f.v) {
			return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("event %s is not valid UTF-8 or holds a NUL byte", f.name), Field: f.name}
		}
	}
	for k, v := range ev.Details {
		if !representable(k) || !representable(v) {
			return &core.Error{Code: core.CodeValidation, Message: "event details are not valid UTF-8 or hold a NUL byte", Field: "details"}
		}
	}
	return nil
}

// representable reports whether s can be stored unchanged.
func representable(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// encodeDetails encodes d as a JSON object; nil is {}.
func encodeDetails(d map[string]string) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	b, err := json.Marshal(d)
	return string(b), err
}

// Events lists the events matching f, newest first (ties broken by id,
// descending). Since is inclusive and Until exclusive; zero times are
// unbounded. A zero f.Limit means DefaultLimit and larger limits are
// capped at MaxLimit; a negative limit or offset, or an unknown type or
// severity, is a core.CodeValidation error.
func (db *DB) Events(ctx context.Context, f core.EventFilter) ([]core.SecurityEvent, error) {
	q, args, err := eventQuery(f)
	if err != nil {
		return nil, err
	}
	return list(ctx, db, "list events", scanEvent, q, args...)
}

// eventQuery validates f and returns the query that lists its events.
func eventQuery(f core.EventFilter) (string, []any, error) {
	switch {
	case f.Limit < 0:
		return "", nil, &core.Error{Code: core.CodeValidation, Message: "limit must not be negative", Field: "limit"}
	case f.Offset < 0:
		return "", nil, &core.Error{Code: core.CodeValidation, Message: "offset must not be negative", Field: "offset"}
	case f.Type != "" && !f.Type.Valid():
		return "", nil, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown event type %q", f.Type), Field: "type"}
	case f.Severity != "" && !f.Severity.Valid():
		return "", nil, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown severity %q", f.Severity), Field: "severity"}
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	c := eventConditions(f)
	q := `SELECT ` + eventColumns + ` FROM security_events` + c.where() + ` ORDER BY occurred_at DESC, id DESC LIMIT ? OFFSET ?`
	return q, append(c.args, limit, f.Offset), nil
}

// eventConditions are the conditions of f's fields but Limit and Offset.
func eventConditions(f core.EventFilter) conditions {
	var c conditions
	c.equal("type", string(f.Type))
	c.equal("severity", string(f.Severity))
	c.equal("principal", f.Principal)
	c.equal("ip", f.IP)
	c.equal("agent_id", f.AgentID)
	if !f.Since.IsZero() {
		c.add("occurred_at >= ?", clampTime(f.Since))
	}
	if !f.Until.IsZero() {
		c.add("occurred_at < ?", clampTime(f.Until))
	}
	return c
}

// CountEvents counts the events matching f per type in buckets of width
// bucket from f.Since (inclusive) to f.Until (exclusive), grouped in the
// database so that a chart over a long time reads counts, not events.
// Buckets and types without events are left out; the result is ordered
// by bucket, then type. f.Limit and f.Offset are ignored. A missing
// Since or Until, an Until not after Since, a bucket under a
// millisecond, more than core.MaxEventBuckets buckets, or an unknown
// type or severity is a core.CodeValidation error.
func (db *DB) CountEvents(ctx context.Context, f core.EventFilter, bucket time.Duration) ([]core.EventCount, error) {
	switch {
	case f.Since.IsZero() || f.Until.IsZero():
		return nil, &core.Error{Code: core.CodeValidation, Message: "counting events needs both since and until", Field: "since"}
	case !f.Until.After(f.Since):
		return nil, &core.Error{Code: core.CodeValidation, Message: "until must be after since", Field: "until"}
	case bucket < time.Millisecond:
		return nil, &core.Error{Code: core.CodeValidation, Message: "the bucket must be at least a millisecond", Field: "bucket"}
	case buckets(f.Until.Sub(f.Since), bucket) > core.MaxEventBuckets:
		return nil, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("at most %d buckets: choose a wider bucket or a shorter time", core.MaxEventBuckets), Field: "bucket"}
	case f.Type != "" && !f.Type.Valid():
		return nil, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown event type %q", f.Type), Field: "type"}
	case f.Severity != "" && !f.Severity.Valid():
		return nil, &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("unknown severity %q", f.Severity), Field: "severity"}
	}
	since := clampTime(f.Since)
	c := eventConditions(f)
	// occurred_at >= since, so the integer division floors.
	q := `SELECT (occurred_at - ?) / ?, type, COUNT(*) FROM security_events` + c.where() + ` GROUP BY 1, 2 ORDER BY 1, 2`
	args := append([]any{since, int64(bucket)}, c.args...)
	return list(ctx, db, "count events", func(s scanner) (core.EventCount, error) {
		var (
			n   int64
			typ string
			ec  core.EventCount
		)
		if err := s.Scan(&n, &typ, &ec.Count); err != nil {
			return ec, err
		}
		ec.Start = decodeTime(since + n*int64(bucket))
		ec.Type = core.EventType(typ)
		return ec, nil
	}, q, args...)
}

// DeleteEventsBefore deletes the events that happened before t,
// deleteBatch rows per transaction, and returns how many it deleted. With
// dryRun it only counts them. If ctx is cancelled between batches it
// returns the count so far with ctx's error.
func (db *DB) DeleteEventsBefore(ctx context.Context, t time.Time, dryRun bool) (int64, error) {
	before := clampTime(t)
	if dryRun {
		var n int64
		err := db.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM security_events WHERE occurred_at < ?`, before).Scan(&n)
		if err != nil {
			return 0, fmt.Errorf("count events to delete: %w", err)
		}
		return n, nil
	}
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("delete events: %w", err)
		}
		res, err := db.write.ExecContext(ctx, `
DELETE FROM security_events WHERE `+db.dialect.RowID+` IN (
	SELECT `+db.dialect.RowID+` FROM security_events WHERE occurred_at < ? LIMIT ?
)`, before, deleteBatch)
		if err != nil {
			return total, fmt.Errorf("delete events: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("delete events: %w", err)
		}
		total += n
		if n < deleteBatch {
			return total, nil
		}
	}
}

// buckets is how many buckets of width bucket cover span.
func buckets(span, bucket time.Duration) int64 {
	n := int64(span / bucket)
	if span%bucket != 0 {
		n++
	}
	return n
}

// clampTime encodes t for a comparison. Every stored time is in range,
// so a t outside it is before or after all of them.
func clampTime(t time.Time) int64 {
	n, err := encodeTime(t)
	if err == nil {
		return n
	}
	if t.Before(time.Unix(0, 0)) {
		return math.MinInt64
	}
	return math.MaxInt64
}

func scanEvent(s scanner) (core.SecurityEvent, error) {
	var (
		ev                   core.SecurityEvent
		at                   int64
		typ, sev, detailsStr string
	)
	err := s.Scan(&ev.ID, &at, &typ, &sev, &ev.Principal, &ev.IP, &ev.AgentID, &ev.InvocationID, &ev.RequestID,
		&ev.Message, &detailsStr)
	if err != nil {
		return ev, err
	}
	ev.Time = decodeTime(at)
	ev.Type = core.EventType(typ)
	ev.Severity = core.Severity(sev)
	if detailsStr != "{}" {
		if err := json.Unmarshal([]byte(detailsStr), &ev.Details); err != nil {
			return ev, fmt.Errorf("event %q: decode details: %w", ev.ID, err)
		}
		if len(ev.Details) == 0 {
			ev.Details = nil
		}
	}
	return ev, nil
}
