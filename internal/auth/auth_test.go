package auth

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/store/sqlite"
)

func openStore(t *testing.T) *sqlite.DB {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateProject(t.Context(), &core.Project{ID: "p1", Name: "p1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return st
}

// addKey stores a principal of role in p1 with a key and returns the
// token and the key id.
func addKey(t *testing.T, st *sqlite.DB, role core.Role, mod func(*core.Principal, *core.APIKey)) (string, string) {
	t.Helper()
	now := time.Now().UTC()
	token, id, hash := apikey.New()
	exp := now.Add(time.Hour)
	p := &core.Principal{ID: "pr-" + id, ProjectID: "p1", Name: "n", Kind: core.PrincipalService, Role: role, CreatedAt: now}
	k := &core.APIKey{ID: id, PrincipalID: p.ID, ProjectID: "p1", Name: "k", Hash: hash, CreatedAt: now, ExpiresAt: &exp}
	if mod != nil {
		mod(p, k)
	}
	if err := st.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIKey(t.Context(), k); err != nil {
		t.Fatal(err)
	}
	return token, id
}

func TestAuthenticateAPIKey(t *testing.T) {
	st := openStore(t)
	a := New(Config{Store: st})
	token, id := addKey(t, st, core.RoleUser, func(_ *core.Principal, k *core.APIKey) {
		k.Scopes = []core.Permission{core.PermRead}
		k.Agents = []string{"agent-1"}
	})
	got, err := a.Authenticate(t.Context(), token, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Method != MethodAPIKey || got.KeyID != id || got.ProjectID != "p1" || got.Role != core.RoleUser || got.Caller() != "key:"+id {
		t.Errorf("identity = %+v", got)
	}
	if !got.Can(core.PermRead) || got.Can(core.PermWrite) {
		t.Errorf("scopes [read] on role user: read %v write %v; want true false", got.Can(core.PermRead), got.Can(core.PermWrite))
	}
	if !got.CanAgent("p1", "agent-1") || got.CanAgent("p1", "agent-2") || got.CanAgent("p2", "agent-1") {
		t.Error("agent limits not applied")
	}
	// Last use is recorded (in the background).
	deadline := time.Now().Add(5 * time.Second)
	for {
		k, err := st.APIKey(t.Context(), id)
		if err != nil {
			t.Fatal(err)
		}
		if k.LastUsedAt != nil && k.LastUsedIP == "192.0.2.1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("last use not recorded: %+v", k)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAuthenticateFailures(t *testing.T) {
	st := openStore(t)
	a := New(Config{Store: st})
	good, goodID := addKey(t, st, core.RoleAdmin, nil)
	past := time.Now().Add(-time.Minute)
	expired, _ := addKey(t, st, core.RoleAdmin, func(_ *core.Principal, k *core.APIKey) { k.ExpiresAt = &past })
	revoked, revokedID := addKey(t, st, core.RoleAdmin, nil)
	if err := st.RevokeAPIKey(t.Context(), revokedID, past); err != nil {
		t.Fatal(err)
	}
	disabled, _ := addKey(t, st, core.RoleAdmin, func(p *core.Principal, _ *core.APIKey) { p.DisabledAt = &past })
	deleted, deletedID := addKey(t, st, core.RoleAdmin, nil)
	if _, err := st.DeletePrincipal(t.Context(), "pr-"+deletedID, past); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateProject(t.Context(), &core.Project{ID: "gone", Name: "gone", CreatedAt: past}); err != nil {
		t.Fatal(err)
	}
	inGone, _ := addKey(t, st, core.RoleAdmin, func(p *core.Principal, k *core.APIKey) { p.ProjectID, k.ProjectID = "gone", "gone" })
	if _, err := st.DeleteProject(t.Context(), "gone", false, past); err != nil {
		t.Fatal(err)
	}
	unknown, _, _ := apikey.New()
	for _, c := range []struct{ name, token, reason string }{
		{"empty", "", "malformed"},
		{"garbage", "hello", "malformed"},
		{"truncated", good[:len(good)-1], "malformed"},
		{"unknown", unknown, "unknown key"},
		{"wrong secret", apikey.NewForID(goodID), "wrong secret"},
		{"expired", expired, "expired"},
		{"revoked", revoked, "revoked"},
		{"disabled principal", disabled, "principal disabled"},
		{"deleted principal", deleted, "principal deleted"},
		{"key of a deleted project", inGone, "project deleted"},
		{"jwt without an issuer configured", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "malformed"},
	} {
		_, err := a.Authenticate(t.Context(), c.token, "ip")
		var f *Failure
		if !errors.As(err, &f) || f.Reason != c.reason {
			t.Errorf("%s: %v, want failure %q", c.name, err, c.reason)
			continue
		}
		if c.token != "" && strings.Contains(f.Error(), c.token) {
			t.Errorf("%s: the failure text holds the credential", c.name)
		}
	}
}

// stubTokens stands in for the OIDC verifier (tested against a real
// in-process issuer in package oidc): it accepts one token.
type stubTokens struct{ claims TokenClaims }

func (s stubTokens) Verify(_ context.Context, raw string) (TokenClaims, error) {
	if raw != "eyJ.eyJ.sig" {
		return TokenClaims{}, errors.New("bad signature")
	}
	return s.claims, nil
}

func TestAuthenticateToken(t *testing.T) {
	st := openStore(t)
	a := New(Config{Store: st, Tokens: stubTokens{TokenClaims{Issuer: "https://idp", Subject: "u1", Project: "p1", Role: core.RoleStreamer}}})
	id, err := a.Authenticate(t.Context(), "eyJ.eyJ.sig", "ip")
	if err != nil {
		t.Fatal(err)
	}
	if id.Method != MethodOIDC || id.ProjectID != "p1" || id.Role != core.RoleStreamer || id.Caller() != "oidc:https://idp#u1" {
		t.Errorf("identity = %+v", id)
	}
	if _, err := a.Authenticate(t.Context(), "eyJ.eyJ.forged", "ip"); err == nil {
		t.Error("a token the verifier rejects was accepted")
	}
	a = New(Config{Store: st, Tokens: stubTokens{TokenClaims{Issuer: "i", Subject: "s", Role: core.RoleUser}}})
	if _, err := a.Authenticate(t.Context(), "eyJ.eyJ.sig", "ip"); err == nil {
		t.Error("a token mapping to no project was accepted")
	}
}

func TestCredential(t *testing.T) {
	for _, c := range []struct {
		name, header, query string
		allowQuery          bool
		want                string
		ok                  bool
	}{
		{"bearer", "Bearer abc", "", false, "abc", true},
		{"case-insensitive scheme", "bearer abc", "", false, "abc", true},
		{"basic is not bearer", "Basic abc", "", false, "\x00", true},
		{"query refused", "", "abc", false, "", false},
		{"query allowed", "", "abc", true, "abc", true},
		{"header wins", "Bearer h", "q", true, "h", true},
		{"none", "", "", true, "", false},
	} {
		r := httptest.NewRequest("GET", "/x", nil)
		if c.query != "" {
			r = httptest.NewRequest("GET", "/x?token="+c.query, nil)
		}
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		got, ok := Credential(r, c.allowQuery)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: Credential = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestRoles(t *testing.T) {
	want := map[core.Role][]core.Permission{
		core.RoleViewer:   {core.PermRead},
		core.RoleUser:     {core.PermRead, core.PermWrite, core.PermStream},
		core.RoleStreamer: {core.PermRead, core.PermStream},
		core.RoleAdmin:    core.AllPermissions,
		core.RoleOwner:    core.AllPermissions,
	}
	for role, perms := range want {
		for _, p := range core.AllPermissions {
			id := Identity{Role: role}
			has := false
			for _, q := range perms {
				has = has || q == p
			}
			if id.Can(p) != has {
				t.Errorf("%s can %s = %v, want %v", role, p, id.Can(p), has)
			}
		}
	}
	if (Identity{Role: "root"}).Can(core.PermRead) {
		t.Error("an unknown role has a permission")
	}
	owner := Identity{Role: core.RoleOwner}
	if !owner.CanAgent("any", "a") || (Identity{Role: core.RoleAdmin, ProjectID: "p1"}).CanAgent("p2", "a") {
		t.Error("project boundaries wrong")
	}
}

// TestKeyCache: a key is read from the store at most once per cacheFor;
// a revocation in the store takes effect when that runs out, or at once
// after Forget (what the API calls when it revokes or rotates).
func TestKeyCache(t *testing.T) {
	st := openStore(t)
	now := time.Now()
	a := New(Config{Store: st, Now: func() time.Time { return now }})
	token, id := addKey(t, st, core.RoleUser, nil)
	if _, err := a.Authenticate(t.Context(), token, "ip"); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeAPIKey(t.Context(), id, now.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(t.Context(), token, "ip"); err != nil {
		t.Errorf("within the cache time the revocation in the store is not yet seen: %v", err)
	}
	now = now.Add(cacheFor)
	if _, err := a.Authenticate(t.Context(), token, "ip"); err == nil {
		t.Errorf("a key revoked %v ago still authenticates", cacheFor)
	}

	token2, id2 := addKey(t, st, core.RoleUser, nil)
	if _, err := a.Authenticate(t.Context(), token2, "ip"); err != nil {
		t.Fatal(err)
	}
	st.RevokeAPIKey(t.Context(), id2, now.Add(-time.Second))
	a.Forget(id2)
	if _, err := a.Authenticate(t.Context(), token2, "ip"); err == nil {
		t.Error("a forgotten, revoked key still authenticates")
	}

	// Disabling a principal touches no key: ForgetAll makes it seen.
	token3, id3 := addKey(t, st, core.RoleUser, nil)
	if _, err := a.Authenticate(t.Context(), token3, "ip"); err != nil {
		t.Fatal(err)
	}
	if err := st.DisablePrincipal(t.Context(), "pr-"+id3, now); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(t.Context(), token3, "ip"); err != nil {
		t.Errorf("within the cache time the disabled principal is not yet seen: %v", err)
	}
	a.ForgetAll()
	if _, err := a.Authenticate(t.Context(), token3, "ip"); err == nil {
		t.Error("after ForgetAll a disabled principal's key still authenticates")
	}
}

// BenchmarkAuthenticate is the authentication and authorization of one
// request with a cached API key: parse, checksum, cache lookup, hash
// compare, expiry, permission and agent checks.
func BenchmarkAuthenticate(b *testing.B) {
	st, err := sqlite.Open(b.Context(), filepath.Join(b.TempDir(), "db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	st.CreateProject(b.Context(), &core.Project{ID: "p1", Name: "p1", CreatedAt: now})
	token, id, hash := apikey.New()
	exp := now.Add(time.Hour)
	st.CreatePrincipal(b.Context(), &core.Principal{ID: "p", ProjectID: "p1", Name: "n", Kind: core.PrincipalService, Role: core.RoleUser, CreatedAt: now})
	st.CreateAPIKey(b.Context(), &core.APIKey{ID: id, PrincipalID: "p", ProjectID: "p1", Name: "k", Hash: hash, CreatedAt: now, ExpiresAt: &exp})
	a := New(Config{Store: st})
	for b.Loop() {
		ident, err := a.Authenticate(b.Context(), token, "127.0.0.1")
		if err != nil || !ident.Can(core.PermWrite) || !ident.CanAgent("p1", "agent") {
			b.Fatal("denied", err)
		}
	}
}
