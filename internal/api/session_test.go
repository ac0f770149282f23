package api

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
)

// browser is a console session as a browser holds it: the cookie and
// the CSRF token the sign-in answered.
type browser struct {
	cookie *http.Cookie
	csrf   string
}

// signIn signs in to the console with cred's key.
func (w *world) signIn(cred string) browser {
	w.t.Helper()
	r := httptest.NewRequest("POST", "/api/v1/session", nil)
	r.RemoteAddr = "192.0.2.1:40000"
	r.Header.Set("Authorization", "Bearer "+w.keys[cred])
	rec := httptest.NewRecorder()
	w.api.ServeHTTP(rec, r)
	if rec.Code != http.StatusCreated {
		w.t.Fatalf("sign in as %s: %d %s", cred, rec.Code, rec.Body)
	}
	var b browser
	for _, c := range rec.Result().Cookies() {
		if c.Name == session.CookieName {
			b.cookie = c
		}
	}
	var env struct {
		Data whoamiBody `json:"data"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Data.Session == nil || b.cookie == nil {
		w.t.Fatalf("sign in as %s: no cookie or session in %s (%v)", cred, rec.Body, err)
	}
	b.csrf = env.Data.Session.CSRFToken
	return b
}

// with makes a request with the browser's cookie, and its CSRF token if
// csrf.
func (w *world) with(b browser, csrf bool, method, path, body string, header ...string) *httptest.ResponseRecorder {
	w.t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	r.RemoteAddr = net.JoinHostPort("192.0.2.1", "40000")
	r.AddCookie(b.cookie)
	if csrf {
		r.Header.Set(session.CSRFHeader, b.csrf)
	}
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	w.api.ServeHTTP(rec, r)
	return rec
}

func TestSignInSetsASessionCookie(t *testing.T) {
	w := newWorld(t)
	b := w.signIn("viewer")
	c := b.cookie
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie %s: want HttpOnly, SameSite=Strict, Path=/, not Secure over plain HTTP", c)
	}
	tok, err := session.ParseToken(c.Value)
	if err != nil {
		t.Fatalf("cookie value is not a session token: %v", err)
	}
	if strings.Contains(c.Value, w.keys["viewer"]) || strings.Contains(w.keys["viewer"], c.Value) {
		t.Error("the cookie carries the key")
	}
	s, err := w.store.Session(t.Context(), tok.ID())
	if err != nil {
		t.Fatalf("the session is not stored by its token's hash: %v", err)
	}
	k, _ := apikey.Parse(w.keys["viewer"])
	if s.KeyID != k.ID || s.Method != "api_key" {
		t.Errorf("stored session %+v: want key %s, api_key", s, k.ID)
	}
	recs := w.trail(audit.Filter{Action: "session.create"})
	if len(recs) == 0 || recs[len(recs)-1].KeyID != k.ID || recs[len(recs)-1].Outcome != audit.OutcomeSuccess {
		t.Errorf("session.create audit records %+v: want a success for key %s", recs, k.ID)
	}
}

// TestSessionActsAsItsKey: with the cookie, a request is the key's:
// its role's reads pass and what it may not do is refused, as for the

// TestSessionCookieSecureBehindProxy: behind a trusted proxy that says
// the client used HTTPS (X-Forwarded-Proto), the session cookie is
// Secure, and so is the cookie that clears it on sign-out; the same
// header from a peer that is not a trusted proxy, or a proxy that says
// http, leaves it as plain HTTP gets it.
func TestSessionCookieSecureBehindProxy(t *testing.T) {
	w := newWorld(t, func(d *Deps) { d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	for _, tt := range []struct {
		peer, proto string
		secure      bool
	}{
		{"10.1.2.3:5000", "https", true},
		{"10.1.2.3:5000", "HTTPS, http", true},
		{"10.1.2.3:5000", "http", false},
		{"10.1.2.3:5000", "", false},
		{"192.0.2.1:40000", "https", false},
		{"[::ffff:10.1.2.3]:5000", "https", true},
	} {
		r := httptest.NewRequest("POST", "/api/v1/session", nil)
		r.RemoteAddr = tt.peer
		r.Header.Set("Authorization", "Bearer "+w.keys["admin"])
		if tt.proto != "" {
			r.Header.Set("X-Forwarded-Proto", tt.proto)
		}
		rec := httptest.NewRecorder()
		w.api.ServeHTTP(rec, r)
		if rec.Code != http.StatusCreated {
			t.Fatalf("sign in from %s: %d %s", tt.peer, rec.Code, rec.Body)
		}
		var cookie *http.Cookie
		for _, c := range rec.Result().Cookies() {
			if c.Name == session.CookieName {
				cookie = c
			}
		}
		if cookie == nil || cookie.Secure != tt.secure {
			t.Errorf("from %s with X-Forwarded-Proto %q: cookie %v, want Secure %v", tt.peer, tt.proto, cookie, tt.secure)
			continue
		}
		var env struct {
			Data whoamiBody `json:"data"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Data.Session == nil {
			t.Fatalf("sign-in answer %s: %v", rec.Body, err)
		}
		out := httptest.NewRequest("DELETE", "/api/v1/session", nil)
		out.RemoteAddr = tt.peer
		out.AddCookie(cookie)
		out.Header.Set(session.CSRFHeader, env.Data.Session.CSRFToken)
		if tt.proto != "" {
			out.Header.Set("X-Forwarded-Proto", tt.proto)
		}
		rec = httptest.NewRecorder()
		w.api.ServeHTTP(rec, out)
		cleared := rec.Result().Cookies()
		if rec.Code >= 300 || len(cleared) != 1 || cleared[0].Secure != tt.secure || cleared[0].MaxAge >= 0 {
			t.Errorf("sign out from %s: %d, cookies %v; want one clearing cookie with Secure %v", tt.peer, rec.Code, cleared, tt.secure)
		}
	}
}

// key itself.
func TestSessionActsAsItsKey(t *testing.T) {
	w := newWorld(t)
	viewer := w.signIn("viewer")
	if rec := w.with(viewer, false, "GET", "/api/v1/agents", ""); rec.Code != http.StatusOK {
		t.Fatalf("GET agents with the viewer's cookie: %d %s", rec.Code, rec.Body)
	}
	rec := w.with(viewer, false, "GET", "/api/v1/whoami", "")
	var env struct {
		Data whoamiBody `json:"data"`
	}
	json.Unmarshal(rec.Body.Bytes(), &env)
	if env.Data.Role != core.RoleViewer || len(env.Data.Permissions) != 1 || env.Data.Permissions[0] != core.PermRead ||
		env.Data.Session == nil || env.Data.Session.CSRFToken != viewer.csrf {
		t.Errorf("whoami with the viewer's cookie = %s: want role viewer, permissions [read], the session's CSRF token", rec.Body)
	}
	if rec := w.with(viewer, true, "POST", "/api/v1/keys", `{"name":"x","role":"viewer"}`); rec.Code != http.StatusForbidden {
		t.Errorf("POST keys with the viewer's cookie and CSRF token: %d, want 403", rec.Code)
	}
	admin := w.signIn("admin")
	if rec := w.with(admin, true, "POST", "/api/v1/keys", `{"name":"x","role":"viewer"}`); rec.Code != http.StatusCreated {
		t.Errorf("POST keys with the admin's cookie and CSRF token: %d %s, want 201", rec.Code, rec.Body)
	}
	k, _ := apikey.Parse(w.keys["admin"])
	recs := w.trail(audit.Filter{Action: "key.create"})
	if len(recs) == 0 || recs[len(recs)-1].KeyID != k.ID {
		t.Errorf("key.create made with the admin's session is not audited as the admin's key: %+v", recs)
	}
}

// TestSessionChangesNeedCSRF: a change with the cookie but without the
// session's CSRF token — what a page of another site can send — is
// refused before it runs, and so is a WebSocket upgrade.
func TestSessionChangesNeedCSRF(t *testing.T) {
	w := newWorld(t)
	admin := w.signIn("admin")
	other := w.signIn("owner")
	const create = `{"name":"csrf","role":"viewer"}`
	before := w.keyCount()
	for _, tc := range []struct {
		name   string
		header []string
	}{
		{"no token", nil},
		{"another session's token", []string{session.CSRFHeader, other.csrf}},
		{"the cookie as token", []string{session.CSRFHeader, admin.cookie.Value}},
		{"empty token", []string{session.CSRFHeader, ""}},
	} {
		rec := w.with(admin, false, "POST", "/api/v1/keys", create, tc.header...)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), session.CSRFHeader) {
			t.Errorf("POST keys with the cookie and %s: %d %s, want 403 naming %s", tc.name, rec.Code, rec.Body, session.CSRFHeader)
		}
	}
	if rec := w.with(admin, false, "DELETE", "/api/v1/session", ""); rec.Code != http.StatusForbidden {
		t.Errorf("sign-out without the CSRF token: %d, want 403", rec.Code)
	}
	if rec := w.with(admin, false, "GET", "/api/v1/agents/"+agentP1+"/run-stream", "", "Upgrade", "websocket", "Connection", "Upgrade"); rec.Code != http.StatusForbidden {
		t.Errorf("WebSocket upgrade with the cookie: %d, want 403", rec.Code)
	}
	if got := w.keyCount(); got != before {
		t.Errorf("keys: %d after refused changes, want %d", got, before)
	}
	if rec := w.with(admin, true, "POST", "/api/v1/keys", create); rec.Code != http.StatusCreated {
		t.Errorf("POST keys with the CSRF token: %d %s, want 201", rec.Code, rec.Body)
	}
}

func TestSignOutRevokesOnTheServer(t *testing.T) {
	w := newWorld(t)
	b := w.signIn("viewer")
	rec := w.with(b, true, "DELETE", "/api/v1/session", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("sign-out: %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("sign-out Set-Cookie %q: want the cookie cleared", rec.Header().Get("Set-Cookie"))
	}
	// The browser's copy of the cookie no longer works.
	if rec := w.with(b, false, "GET", "/api/v1/agents", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("GET agents with the signed-out cookie: %d, want 401", rec.Code)
	}
	if n := len(w.trail(audit.Filter{Action: "session.delete", Outcome: audit.OutcomeSuccess})); n != 1 {
		t.Errorf("session.delete success records: %d, want 1", n)
	}
}

// TestSessionEndsWithItsCredential: revoking the key or disabling its
// principal ends its sessions at the next request.
func TestSessionEndsWithItsCredential(t *testing.T) {
	w := newWorld(t)
	w.keys["victim"] = w.key("p1", core.RoleAdmin, nil, nil, nil)
	w.keys["victim2"] = w.key("p1", core.RoleAdmin, nil, nil, nil)
	b, b2 := w.signIn("victim"), w.signIn("victim2")
	k, _ := apikey.Parse(w.keys["victim"])
	if status, body := w.do("admin", "POST", "/api/v1/keys/"+k.ID+"/revoke", ""); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if rec := w.with(b, false, "GET", "/api/v1/agents", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("session of a revoked key: %d, want 401", rec.Code)
	}
	if _, err := w.store.Session(t.Context(), mustToken(t, b).ID()); err == nil {
		t.Error("the session of a revoked key is still stored")
	}
	if status, body := w.do("owner", "POST", "/api/v1/principals/"+w.principalOf(w.keys["victim2"])+"/disable", ""); status != http.StatusOK {
		t.Fatalf("disable: %d %s", status, body)
	}
	if rec := w.with(b2, false, "GET", "/api/v1/agents", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("session of a disabled principal: %d, want 401", rec.Code)
	}
}

func TestSessionExpiresIdle(t *testing.T) {
	w := newWorld(t)
	b := w.signIn("viewer")
	w.clock = w.clock.Add(session.DefaultIdle + time.Second)
	if rec := w.with(b, false, "GET", "/api/v1/agents", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("idle session: %d, want 401", rec.Code)
	}
}

func mustToken(t *testing.T, b browser) session.Token {
	t.Helper()
	tok, err := session.ParseToken(b.cookie.Value)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestFailedSignIns: a failed sign-in is audited with the key it named
// and counts towards blocking the address like any authentication
// failure; a cookie cannot sign in again (a session cannot extend
// itself).
func TestFailedSignIns(t *testing.T) {
	w := newWorld(t)
	w.api.setBlocker(ratelimit.NewMemoryBlocks(BlockPolicy{After: 3, Window: time.Minute, For: 5 * time.Minute}, func() time.Time { return w.clock }))
	const bad = "198.51.100.7"
	for range 3 {
		if status, _ := w.doFrom(bad, "wrong-secret", "POST", "/api/v1/session", ""); status != http.StatusUnauthorized {
			t.Fatalf("sign-in with a wrong secret: %d, want 401", status)
		}
	}
	if status, _ := w.doFrom(bad, "admin", "POST", "/api/v1/session", ""); status != http.StatusTooManyRequests {
		t.Errorf("sign-in from a blocked address: %d, want 429", status)
	}
	k, _ := apikey.Parse(w.keys["wrong-secret"])
	recs := w.trail(audit.Filter{Action: "session.create", Outcome: audit.OutcomeDenied})
	if len(recs) != 3 || recs[0].KeyID != k.ID || recs[0].Details["reason"] != "wrong secret" {
		t.Errorf("denied session.create records %+v: want 3 naming key %s, reason wrong secret", recs, k.ID)
	}
	b := w.signIn("viewer")
	if rec := w.with(b, true, "POST", "/api/v1/session", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("sign-in with a session cookie and no key: %d, want 401", rec.Code)
	}
}

// TestSignInReplacesTheSession: signing in again from a browser that
// holds a session ends that session.
func TestSignInReplacesTheSession(t *testing.T) {
	w := newWorld(t)
	old := w.signIn("viewer")
	rec := w.with(old, false, "POST", "/api/v1/session", "", "Authorization", "Bearer "+w.keys["admin"])
	if rec.Code != http.StatusCreated {
		t.Fatalf("sign in again: %d %s", rec.Code, rec.Body)
	}
	if rec := w.with(old, false, "GET", "/api/v1/agents", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("the replaced session: %d, want 401", rec.Code)
	}
}

func TestForgedCookies(t *testing.T) {
	w := newWorld(t)
	for _, v := range []string{"garbage", session.NewToken().String(), ""} {
		b := browser{cookie: &http.Cookie{Name: session.CookieName, Value: v}}
		if rec := w.with(b, false, "GET", "/api/v1/agents", ""); rec.Code != http.StatusUnauthorized {
			t.Errorf("cookie %q: %d, want 401", v, rec.Code)
		}
	}
}
