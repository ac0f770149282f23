package core

import (
	"context"
	"time"
)

// Session is a web console sign-in: a credential exchanged for a short
// session that a browser holds as an HttpOnly cookie. The session token
// itself is never stored; ID is the hex SHA-256 of it, so the store's
// contents cannot be replayed as cookies.
//
// A session acts as the credential it was made from: each request
// carrying it is authorized as that credential is at that moment, so
// revoking the key or disabling its principal ends the session too.
type Session struct {
	// ID is the hex SHA-256 of the session token (64 characters).
	ID string
	// Method is how the session was signed in: "api_key", or "oidc"
	// for a sign-in through an OpenID Connect issuer.
	Method string
	// KeyID and PrincipalID name the API key signed in with and its
	// principal.
	KeyID, PrincipalID string
	// Subject is an OIDC sign-in's issuer#subject; "" for API keys.
	Subject string
	// Role and ProjectID are an OIDC sign-in's role and project, as its
	// access token gave them; "" for API keys, whose principal says.
	Role, ProjectID string
	// CreatedAt is the sign-in; ExpiresAt its absolute end, however
	// active it is; LastSeenAt its last use, which the idle expiry counts
	// from.
	CreatedAt, LastSeenAt, ExpiresAt time.Time
}

// SessionStore keeps web console sessions, shared by every node of a
// store.
type SessionStore interface {
	// CreateSession inserts s. s.ID must be 64 lower-case hex characters
	// and s.Method set (else CodeValidation); an ID in use is
	// CodeConflict. A zero LastSeenAt is s.CreatedAt.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns a session by ID, or an error wrapping ErrNotFound.
	Session(ctx context.Context, id string) (*Session, error)
	// TouchSession records a use of session id at t; an earlier t than
	// the recorded one changes nothing. An unknown id wraps ErrNotFound.
	TouchSession(ctx context.Context, id string, t time.Time) error
	// DeleteSession deletes a session (sign-out); an unknown id wraps
	// ErrNotFound.
	DeleteSession(ctx context.Context, id string) error
	// DeleteKeySessions deletes every session signed in with API key
	// keyID and returns how many.
	DeleteKeySessions(ctx context.Context, keyID string) (int64, error)
	// DeleteExpiredSessions deletes the sessions whose ExpiresAt is at or
	// before now or whose LastSeenAt is before idleSince, and returns how
	// many.
	DeleteExpiredSessions(ctx context.Context, now, idleSince time.Time) (int64, error)
}
