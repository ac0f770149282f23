package storetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/runagent/runagent/internal/core"
)

// sessionTests pin down, beyond core.SessionStore's documentation:
//
//   - A session comes back as created, times in UTC; a zero LastSeenAt
//     is CreatedAt.
//   - TouchSession never moves LastSeenAt back.
//   - DeleteExpiredSessions deletes at ExpiresAt (inclusive) and before
//     idleSince (exclusive), and nothing else.
var sessionTests = []struct {
	name string
	fn   func(t *testing.T, s core.Store)
}{
	{"SessionRoundTrip", testSessionRoundTrip},
	{"SessionErrors", testSessionErrors},
	{"SessionExpiry", testSessionExpiry},
}

func runSessionTests(t *testing.T, open func(t *testing.T) core.Store) {
	for _, tt := range sessionTests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// sessionID is a valid session id made of c.
func sessionID(c byte) string { return strings.Repeat(string(c), 64) }

func session(id, keyID string, created time.Time) *core.Session {
	return &core.Session{ID: id, Method: "api_key", KeyID: keyID, PrincipalID: "pr-" + keyID,
		CreatedAt: created, ExpiresAt: created.Add(12 * time.Hour)}
}

func mustCreateSession(t *testing.T, s core.SessionStore, ss *core.Session) {
	t.Helper()
	if err := s.CreateSession(t.Context(), ss); err != nil {
		t.Fatalf("CreateSession(%s) = %v", ss.ID, err)
	}
}

func mustSessionGone(t *testing.T, s core.SessionStore, id string) {
	t.Helper()
	if _, err := s.Session(t.Context(), id); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("Session(%s) = %v, want ErrNotFound", id, err)
	}
}

func testSessionRoundTrip(t *testing.T, s core.Store) {
	ctx := t.Context()
	in := session(sessionID('a'), "key1", base)
	in.Subject = "https://issuer.example#sub é"
	in.Role, in.ProjectID = "viewer", "proj-é" // an OIDC session's; kept as given
	mustCreateSession(t, s, in)
	got, err := s.Session(ctx, in.ID)
	if err != nil {
		t.Fatalf("Session() = %v", err)
	}
	want := *in
	want.LastSeenAt = base
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("Session() (-want +got):\n%s", diff)
	}

	later := base.Add(time.Minute)
	if err := s.TouchSession(ctx, in.ID, later); err != nil {
		t.Fatalf("TouchSession(later) = %v", err)
	}
	if err := s.TouchSession(ctx, in.ID, base.Add(time.Second)); err != nil {
		t.Fatalf("TouchSession(earlier) = %v", err)
	}
	got, _ = s.Session(ctx, in.ID)
	if !got.LastSeenAt.Equal(later) {
		t.Errorf("LastSeenAt after touches at +1m then +1s = %v, want %v", got.LastSeenAt, later)
	}

	mustCreateSession(t, s, session(sessionID('b'), "key1", base))
	mustCreateSession(t, s, session(sessionID('c'), "key2", base))
	if n, err := s.DeleteKeySessions(ctx, "key1"); err != nil || n != 2 {
		t.Fatalf("DeleteKeySessions(key1) = %d, %v; want 2, nil", n, err)
	}
	mustSessionGone(t, s, sessionID('a'))
	mustSessionGone(t, s, sessionID('b'))
	if err := s.DeleteSession(ctx, sessionID('c')); err != nil {
		t.Fatalf("DeleteSession(c) = %v", err)
	}
	mustSessionGone(t, s, sessionID('c'))
}

func testSessionErrors(t *testing.T, s core.Store) {
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		s    *core.Session
	}{
		{"short id", session("abc", "k", base)},
		{"upper-case id", session(sessionID('A'), "k", base)},
		{"non-hex id", session(sessionID('g'), "k", base)},
		{"no method", &core.Session{ID: sessionID('d'), CreatedAt: base, ExpiresAt: base}},
	} {
		if err := s.CreateSession(ctx, tc.s); core.ErrorCode(err) != core.CodeValidation {
			t.Errorf("CreateSession(%s) = %v, want %s", tc.name, err, core.CodeValidation)
		}
	}
	mustCreateSession(t, s, session(sessionID('e'), "k", base))
	if err := s.CreateSession(ctx, session(sessionID('e'), "other", base)); core.ErrorCode(err) != core.CodeConflict {
		t.Errorf("CreateSession(same id) = %v, want %s", err, core.CodeConflict)
	}
	unknown := sessionID('f')
	mustSessionGone(t, s, unknown)
	if err := s.TouchSession(ctx, unknown, base); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("TouchSession(unknown) = %v, want ErrNotFound", err)
	}
	if err := s.DeleteSession(ctx, unknown); !errors.Is(err, core.ErrNotFound) {
		t.Errorf("DeleteSession(unknown) = %v, want ErrNotFound", err)
	}
	if n, err := s.DeleteKeySessions(ctx, "nobody"); err != nil || n != 0 {
		t.Errorf("DeleteKeySessions(nobody) = %d, %v; want 0, nil", n, err)
	}
}

func testSessionExpiry(t *testing.T, s core.Store) {
	ctx := t.Context()
	now := base.Add(24 * time.Hour)
	idleSince := now.Add(-30 * time.Minute)
	ended := session(sessionID('1'), "k", now.Add(-12*time.Hour)) // ExpiresAt == now
	ended.LastSeenAt = now
	idle := session(sessionID('2'), "k", now.Add(-time.Hour))
	idle.LastSeenAt = idleSince.Add(-time.Microsecond)
	edge := session(sessionID('3'), "k", now.Add(-time.Hour))
	edge.LastSeenAt = idleSince // idle exactly the limit: kept
	live := session(sessionID('4'), "k", now.Add(-time.Hour))
	live.LastSeenAt = now
	for _, ss := range []*core.Session{ended, idle, edge, live} {
		mustCreateSession(t, s, ss)
	}
	n, err := s.DeleteExpiredSessions(ctx, now, idleSince)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredSessions() = %d, %v; want 2, nil", n, err)
	}
	mustSessionGone(t, s, ended.ID)
	mustSessionGone(t, s, idle.ID)
	for _, id := range []string{edge.ID, live.ID} {
		if _, err := s.Session(ctx, id); err != nil {
			t.Errorf("Session(%s) after DeleteExpiredSessions = %v, want kept", id, err)
		}
	}
}
