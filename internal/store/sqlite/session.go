package sqlite

import (
	"context"
	"fmt"
	"time"

	"github.com/runagent/runagent/internal/core"
)

const sessionColumns = `id, method, key_id, principal_id, subject, role, project_id, created_at, last_seen_at, expires_at`

// CreateSession inserts s (core.SessionStore).
func (db *DB) CreateSession(ctx context.Context, s *core.Session) error {
	if !isSessionID(s.ID) {
		return core.Errorf(core.CodeValidation, "a session id is 64 lower-case hex characters")
	}
	if s.Method == "" {
		return core.Errorf(core.CodeValidation, "a session needs the method it was signed in with")
	}
	if s.LastSeenAt.IsZero() {
		s.LastSeenAt = s.CreatedAt
	}
	var at [3]int64
	for i, t := range []time.Time{s.CreatedAt, s.LastSeenAt, s.ExpiresAt} {
		n, err := encodeTime(t)
		if err != nil {
			return err
		}
		at[i] = n
	}
	_, err := db.write.ExecContext(ctx, `INSERT INTO console_sessions (`+sessionColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.Method, s.KeyID, s.PrincipalID, s.Subject, s.Role, s.ProjectID, at[0], at[1], at[2])
	if db.isConstraint(err) {
		return &core.Error{Code: core.CodeConflict, Message: "session id already in use", Err: err}
	}
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session returns a session by id (core.SessionStore). Errors may name
// the id: the hash of the token, which cannot be replayed as a cookie.
func (db *DB) Session(ctx context.Context, id string) (*core.Session, error) {
	return getByID(ctx, db, "session", id, scanSession, `SELECT `+sessionColumns+` FROM console_sessions WHERE id = ?`)
}

// TouchSession records a use of session id at t (core.SessionStore).
func (db *DB) TouchSession(ctx context.Context, id string, t time.Time) error {
	at, err := encodeTime(t)
	if err != nil {
		return err
	}
	res, err := db.write.ExecContext(ctx, `UPDATE console_sessions SET last_seen_at = ? WHERE id = ? AND last_seen_at < ?`, at, id, at)
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return err
	}
	// Nothing changed: the session is unknown, or was used later.
	_, err = db.Session(ctx, id)
	return err
}

// DeleteSession deletes a session (core.SessionStore).
func (db *DB) DeleteSession(ctx context.Context, id string) error {
	res, err := db.write.ExecContext(ctx, `DELETE FROM console_sessions WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("delete session: %w", core.ErrNotFound)
	}
	return nil
}

// DeleteKeySessions deletes the sessions of API key keyID
// (core.SessionStore).
func (db *DB) DeleteKeySessions(ctx context.Context, keyID string) (int64, error) {
	if keyID == "" {
		return 0, core.Errorf(core.CodeValidation, "name the key whose sessions to delete")
	}
	res, err := db.write.ExecContext(ctx, `DELETE FROM console_sessions WHERE key_id = ?`, keyID)
	if err != nil {
		return 0, fmt.Errorf("delete sessions of key %q: %w", keyID, err)
	}
	return res.RowsAffected()
}

// DeleteExpiredSessions deletes expired and idle sessions
// (core.SessionStore).
func (db *DB) DeleteExpiredSessions(ctx context.Context, now, idleSince time.Time) (int64, error) {
	n, err := encodeTime(now)
	if err != nil {
		return 0, err
	}
	idle, err := encodeTime(idleSince)
	if err != nil {
		return 0, err
	}
	res, err := db.write.ExecContext(ctx, `DELETE FROM console_sessions WHERE expires_at <= ? OR last_seen_at < ?`, n, idle)
	if err != nil {
		return 0, fmt.Errorf("delete expired sessions: %w", err)
	}
	return res.RowsAffected()
}

func scanSession(s scanner) (*core.Session, error) {
	var (
		ss                    core.Session
		created, seen, expire int64
	)
	if err := s.Scan(&ss.ID, &ss.Method, &ss.KeyID, &ss.PrincipalID, &ss.Subject, &ss.Role, &ss.ProjectID, &created, &seen, &expire); err != nil {
		return nil, err
	}
	ss.CreatedAt, ss.LastSeenAt, ss.ExpiresAt = decodeTime(created), decodeTime(seen), decodeTime(expire)
	return &ss, nil
}

// isSessionID reports whether id is 64 lower-case hex characters.
func isSessionID(id string) bool {
	if len(id) != 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
