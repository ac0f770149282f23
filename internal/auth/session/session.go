package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Defaults of Config.
const (
	DefaultIdle     = 30 * time.Minute
	DefaultAbsolute = 12 * time.Hour
	// MaxAbsolute bounds Absolute: a sign-in lasts at most this long.
	MaxAbsolute = 30 * 24 * time.Hour
)

// CheckLifetimes reports whether idle and absolute are lifetimes a
// server may run with: 0 < idle <= absolute <= MaxAbsolute. Its errors
// name the serve flags that set them.
func CheckLifetimes(idle, absolute time.Duration) error {
	switch {
	case idle <= 0:
		return fmt.Errorf("--session-idle %s: must be positive, e.g. 30m", idle)
	case absolute < idle:
		return fmt.Errorf("--session-max %s is shorter than --session-idle %s: a session cannot outlive its sign-in, so raise --session-max or lower --session-idle", absolute, idle)
	case absolute > MaxAbsolute:
		return fmt.Errorf("--session-max %s: at most %s (30 days); sign in again instead", absolute, MaxAbsolute)
	}
	return nil
}

// Why a token opens no session, for the security log (callers answer
// them all alike).
var (
	ErrUnknown = errors.New("no such session (signed out, or never signed in)")
	ErrExpired = errors.New("session expired")
	ErrIdle    = errors.New("session idle too long")
)

// Config configures a Manager.
type Config struct {
	Store core.SessionStore
	// Idle ends a session not used for that long; Absolute ends it that
	// long after sign-in however used. Zero: DefaultIdle, DefaultAbsolute.
	Idle, Absolute time.Duration
	// Now is the clock (tests inject one); nil: time.Now.
	Now func() time.Time
}

// Manager starts, checks and ends sessions.
type Manager struct {
	store          core.SessionStore
	idle, absolute time.Duration
	now            func() time.Time
	// touchEvery bounds how often a use is written: a session may end
	// up to touchEvery before Idle has passed since its last use.
	touchEvery time.Duration
}

// New returns a Manager.
func New(cfg Config) *Manager {
	if cfg.Idle <= 0 {
		cfg.Idle = DefaultIdle
	}
	if cfg.Absolute <= 0 {
		cfg.Absolute = DefaultAbsolute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Manager{store: cfg.Store, idle: cfg.Idle, absolute: cfg.Absolute, now: cfg.Now,
		touchEvery: min(time.Minute, cfg.Idle/10)}
}

// Idle is how long an unused session lasts.
func (m *Manager) Idle() time.Duration { return m.idle }

// Start is who a new session acts as.
type Start struct {
	// Method is how the caller signed in ("api_key" or "oidc").
	Method             string
	KeyID, PrincipalID string
	// Subject, Role and ProjectID are an OIDC sign-in's issuer#subject
	// and the role and project its access token gave.
	Subject, Role, ProjectID string
	// NotAfter, when set, is when the credential ends (a key's expiry,
	// an access token's): the session ends no later.
	NotAfter *time.Time
}

// Create starts a session and returns its token (for the cookie only)
// and record. It first deletes sessions that have ended, so the store
// holds only live ones and the few ended since the last sign-in.
func (m *Manager) Create(ctx context.Context, st Start) (Token, *core.Session, error) {
	now := m.now().UTC()
	if _, err := m.store.DeleteExpiredSessions(ctx, now, now.Add(-m.idle)); err != nil {
		return Token{}, nil, fmt.Errorf("delete ended sessions: %w", err)
	}
	expires := now.Add(m.absolute)
	if st.NotAfter != nil && st.NotAfter.Before(expires) {
		expires = st.NotAfter.UTC()
	}
	t := NewToken()
	s := &core.Session{ID: t.ID(), Method: st.Method, KeyID: st.KeyID, PrincipalID: st.PrincipalID,
		Subject: st.Subject, Role: st.Role, ProjectID: st.ProjectID, CreatedAt: now, LastSeenAt: now, ExpiresAt: expires}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return Token{}, nil, err
	}
	return t, s, nil
}

// Check returns t's session if it is live, and records the use. An
// ended session is deleted; its error is ErrExpired or ErrIdle, and one
// the store does not hold ErrUnknown. Other errors are the store's.
func (m *Manager) Check(ctx context.Context, t Token) (*core.Session, error) {
	id := t.ID()
	s, err := m.store.Session(ctx, id)
	if errors.Is(err, core.ErrNotFound) {
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, err
	}
	now := m.now().UTC()
	var ended error
	switch {
	case !now.Before(s.ExpiresAt):
		ended = ErrExpired
	case now.Sub(s.LastSeenAt) > m.idle:
		ended = ErrIdle
	}
	if ended != nil {
		if err := m.store.DeleteSession(ctx, id); err != nil && !errors.Is(err, core.ErrNotFound) {
			return nil, err
		}
		return nil, ended
	}
	if now.Sub(s.LastSeenAt) >= m.touchEvery {
		if err := m.store.TouchSession(ctx, id, now); err != nil {
			return nil, err
		}
		s.LastSeenAt = now
	}
	return s, nil
}

// IdleEnd is when s ends unless used again.
func (m *Manager) IdleEnd(s *core.Session) time.Time {
	if end := s.LastSeenAt.Add(m.idle); end.Before(s.ExpiresAt) {
		return end
	}
	return s.ExpiresAt
}

// Revoke ends t's session (sign-out). A session already gone is not an
// error.
func (m *Manager) Revoke(ctx context.Context, t Token) error {
	if err := m.store.DeleteSession(ctx, t.ID()); err != nil && !errors.Is(err, core.ErrNotFound) {
		return err
	}
	return nil
}

// RevokeKey ends every session signed in with API key keyID.
func (m *Manager) RevokeKey(ctx context.Context, keyID string) error {
	_, err := m.store.DeleteKeySessions(ctx, keyID)
	return err
}
