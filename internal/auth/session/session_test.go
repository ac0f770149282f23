package session

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newManager(t *testing.T, idle, absolute time.Duration) (*Manager, *clock, *sqlite.DB) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	c := &clock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
	return New(Config{Store: st, Idle: idle, Absolute: absolute, Now: c.now}), c, st
}

func mustStart(t *testing.T, m *Manager, st Start) (Token, *core.Session) {
	t.Helper()
	if st.Method == "" {
		st.Method = "api_key"
	}
	tok, s, err := m.Create(t.Context(), st)
	if err != nil {
		t.Fatalf("Create() = %v", err)
	}
	return tok, s
}

func TestCreateStoresOnlyTheHash(t *testing.T) {
	m, _, st := newManager(t, 30*time.Minute, 12*time.Hour)
	tok, s := mustStart(t, m, Start{KeyID: "k1", PrincipalID: "p1"})
	if s.ID != tok.ID() {
		t.Fatalf("session id %q, want the token's hash %q", s.ID, tok.ID())
	}
	if _, err := st.Session(t.Context(), tok.String()); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("store lookup by the token itself = %v, want ErrNotFound", err)
	}
	if got, err := m.Check(t.Context(), tok); err != nil || got.KeyID != "k1" || got.PrincipalID != "p1" {
		t.Fatalf("Check() = %+v, %v; want the session of k1", got, err)
	}
	if _, err := m.Check(t.Context(), NewToken()); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Check(another token) = %v, want ErrUnknown", err)
	}
}

func TestIdleExpiry(t *testing.T) {
	idle := 30 * time.Minute
	m, c, st := newManager(t, idle, 12*time.Hour)
	tok, _ := mustStart(t, m, Start{KeyID: "k1"})
	// Used every 29 minutes, it lives on past several idle periods.
	for range 5 {
		c.advance(idle - time.Minute)
		if _, err := m.Check(t.Context(), tok); err != nil {
			t.Fatalf("Check() %v after the last use = %v, want live", idle-time.Minute, err)
		}
	}
	c.advance(idle + time.Second)
	if _, err := m.Check(t.Context(), tok); !errors.Is(err, ErrIdle) {
		t.Fatalf("Check() %v after the last use = %v, want ErrIdle", idle+time.Second, err)
	}
	if _, err := st.Session(t.Context(), tok.ID()); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("idle session still stored: %v", err)
	}
	if _, err := m.Check(t.Context(), tok); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Check() again = %v, want ErrUnknown", err)
	}
}

func TestAbsoluteExpiry(t *testing.T) {
	absolute := 2 * time.Hour
	m, c, _ := newManager(t, 30*time.Minute, absolute)
	tok, s := mustStart(t, m, Start{KeyID: "k1"})
	if want := c.now().Add(absolute); !s.ExpiresAt.Equal(want) {
		t.Fatalf("ExpiresAt = %v, want %v", s.ExpiresAt, want)
	}
	for elapsed := time.Duration(0); elapsed < absolute-10*time.Minute; elapsed += 10 * time.Minute {
		c.advance(10 * time.Minute)
		if _, err := m.Check(t.Context(), tok); err != nil {
			t.Fatalf("Check() %v after sign-in = %v, want live", elapsed+10*time.Minute, err)
		}
	}
	c.advance(10 * time.Minute) // exactly absolute after sign-in
	if _, err := m.Check(t.Context(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("Check() at the absolute expiry = %v, want ErrExpired", err)
	}
}

func TestSessionEndsWithItsKey(t *testing.T) {
	m, c, _ := newManager(t, 30*time.Minute, 12*time.Hour)
	keyEnds := c.now().Add(time.Hour)
	tok, s := mustStart(t, m, Start{KeyID: "k1", NotAfter: &keyEnds})
	if !s.ExpiresAt.Equal(keyEnds) {
		t.Fatalf("ExpiresAt = %v, want the key's expiry %v", s.ExpiresAt, keyEnds)
	}
	other, _ := mustStart(t, m, Start{KeyID: "k2"})
	if err := m.RevokeKey(t.Context(), "k1"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(t.Context(), tok); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Check() after RevokeKey(k1) = %v, want ErrUnknown", err)
	}
	if _, err := m.Check(t.Context(), other); err != nil {
		t.Fatalf("Check(k2's session) after RevokeKey(k1) = %v, want live", err)
	}
}

func TestRevoke(t *testing.T) {
	m, _, _ := newManager(t, 30*time.Minute, 12*time.Hour)
	tok, _ := mustStart(t, m, Start{KeyID: "k1"})
	if err := m.Revoke(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Check(t.Context(), tok); !errors.Is(err, ErrUnknown) {
		t.Fatalf("Check() after Revoke = %v, want ErrUnknown", err)
	}
	if err := m.Revoke(t.Context(), tok); err != nil {
		t.Fatalf("Revoke() twice = %v, want nil", err)
	}
}

func TestCreateDeletesEndedSessions(t *testing.T) {
	m, c, st := newManager(t, 30*time.Minute, 12*time.Hour)
	old, _ := mustStart(t, m, Start{KeyID: "k1"})
	c.advance(31 * time.Minute)
	mustStart(t, m, Start{KeyID: "k2"})
	if _, err := st.Session(t.Context(), old.ID()); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("idle session kept after the next sign-in: %v", err)
	}
}

func TestCheckLifetimes(t *testing.T) {
	tests := []struct {
		idle, absolute time.Duration
		ok             bool
	}{
		{DefaultIdle, DefaultAbsolute, true},
		{time.Second, time.Second, true},
		{time.Minute, MaxAbsolute, true},
		{0, time.Hour, false},
		{-time.Minute, time.Hour, false},
		{time.Hour, time.Minute, false},
		{time.Hour, MaxAbsolute + time.Second, false},
	}
	for _, tt := range tests {
		if err := CheckLifetimes(tt.idle, tt.absolute); (err == nil) != tt.ok {
			t.Errorf("CheckLifetimes(%s, %s) = %v, want ok %v", tt.idle, tt.absolute, err, tt.ok)
		}
	}
}

// TestOIDCSessionKeepsItsIdentity: a session signed in through an OIDC
// issuer keeps the subject, role and project its token gave, and ends
// when the token does.
func TestOIDCSessionKeepsItsIdentity(t *testing.T) {
	m, c, _ := newManager(t, 30*time.Minute, 12*time.Hour)
	tokenEnd := c.now().Add(20 * time.Minute)
	tok, _ := mustStart(t, m, Start{Method: "oidc", Subject: "https://sso.example#alice", Role: "viewer", ProjectID: "p1", NotAfter: &tokenEnd})
	got, err := m.Check(t.Context(), tok)
	if err != nil || got.Method != "oidc" || got.Subject != "https://sso.example#alice" || got.Role != "viewer" || got.ProjectID != "p1" ||
		!got.ExpiresAt.Equal(tokenEnd) {
		t.Fatalf("Check() = %+v, %v; want alice, viewer in p1, ending with the token at %v", got, err, tokenEnd)
	}
	c.advance(15 * time.Minute)
	if _, err := m.Check(t.Context(), tok); err != nil {
		t.Fatalf("Check() before the token ends = %v", err)
	}
	c.advance(5 * time.Minute)
	if _, err := m.Check(t.Context(), tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("Check() when the token ends = %v, want ErrExpired", err)
	}
}
