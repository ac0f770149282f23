package api

import (
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/oidc"
	"github.com/runagent/runagent/internal/auth/oidc/oidctest"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
)

// apiHost is the address the API answers at in these tests: a loopback
// host, so its plain-http redirect URL is allowed.
const apiHost = "127.0.0.1:9"

// oidcWorld is a world whose console signs in through a test issuer,
// and a browser: a real http.Client with a cookie jar, whose requests to
// apiHost are served by the API in the test's goroutine (so the world's
// clock needs no lock) and whose requests to the issuer go over
// loopback.
type oidcWorld struct {
	*world
	idp    *oidctest.Issuer
	signin *oidc.SignIn
	client *http.Client
	jar    http.CookieJar
	from   string // the browser's address
}

func newOIDCWorld(t *testing.T) *oidcWorld {
	t.Helper()
	idp := oidctest.New(t, oidctest.Config{ClientID: "console", RedirectURL: "http://" + apiHost + oidc.CallbackPath})
	idp.SetUser(oidctest.User{Subject: "alice", Claims: map[string]any{"runagent_role": "viewer", "runagent_project": "p1"}})
	ow := &oidcWorld{idp: idp, from: "192.0.2.9"}
	var clock func() time.Time
	v, err := oidc.New(t.Context(), oidc.Config{Issuers: []oidc.IssuerConfig{{Issuer: idp.URL, Audiences: []string{"runagent"},
		Console: &oidc.ConsoleClient{ClientID: "console", RedirectURL: "http://" + apiHost + oidc.CallbackPath, Name: "Test SSO"}}}},
		oidc.WithLogger(slog.New(slog.DiscardHandler)), oidc.WithClock(func() time.Time { return clock() }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	ow.signin = newTestSignIn(t, v)
	ow.world = newWorld(t, func(d *Deps) {
		d.Auth = auth.New(auth.Config{Store: d.Store, Now: d.Now, Tokens: auth.OIDC(v)})
		d.OIDCSignIn = ow.signin
	})
	clock = func() time.Time { return ow.clock }
	now := ow.now
	idp.SetClock(func() time.Time { return now })

	ow.jar, _ = cookiejar.New(nil)
	ow.client = &http.Client{Jar: ow.jar, Transport: ow, CheckRedirect: stopAtConsole}
	return ow
}

// stopAtConsole follows redirects but to the console's pages, which are
// not the API's.
func stopAtConsole(r *http.Request, _ []*http.Request) error {
	if r.URL.Host == apiHost && !strings.HasPrefix(r.URL.Path, "/api/") {
		return http.ErrUseLastResponse
	}
	return nil
}

func newTestSignIn(t *testing.T, v *oidc.Verifier) *oidc.SignIn {
	t.Helper()
	key := make([]byte, oidc.StateKeySize)
	rand.Read(key)
	s, err := oidc.NewSignIn(v, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// RoundTrip serves requests to apiHost with the API, others over the
// network.
func (ow *oidcWorld) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != apiHost {
		return http.DefaultTransport.RoundTrip(r)
	}
	sr := httptest.NewRequest(r.Method, r.URL.String(), r.Body)
	sr.Header = r.Header.Clone()
	sr.RemoteAddr = ow.from + ":40000"
	rec := httptest.NewRecorder()
	ow.api.ServeHTTP(rec, sr)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// get fetches path on the API through the browser and returns the
// response, its body read.
func (ow *oidcWorld) get(path string) (*http.Response, string) {
	ow.t.Helper()
	return ow.send("GET", path, "", "")
}

func (ow *oidcWorld) send(method, path, csrf, body string) (*http.Response, string) {
	ow.t.Helper()
	req, err := http.NewRequest(method, "http://"+apiHost+path, strings.NewReader(body))
	if err != nil {
		ow.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf != "" {
		req.Header.Set(session.CSRFHeader, csrf)
	}
	resp, err := ow.client.Do(req)
	if err != nil {
		ow.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signInOIDC signs in through the issuer: the console's link, the
// issuer, the callback. It returns where the browser landed.
func (ow *oidcWorld) signInOIDC() string {
	ow.t.Helper()
	resp, body := ow.get("/api/v1/session/oidc/" + oidc.ConsoleID(ow.idp.URL) + "/start")
	if resp.StatusCode != http.StatusFound {
		ow.t.Fatalf("sign-in ended with %d %s, want a redirect to the console", resp.StatusCode, body)
	}
	return resp.Header.Get("Location")
}

// whoami returns the browser's whoami, or the status if it is not 200.
func (ow *oidcWorld) whoami() (whoamiBody, int) {
	ow.t.Helper()
	resp, body := ow.get("/api/v1/whoami")
	var env struct {
		Data whoamiBody `json:"data"`
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &env); err != nil {
			ow.t.Fatal(err)
		}
	}
	return env.Data, resp.StatusCode
}

func (ow *oidcWorld) sessionCookie() *http.Cookie {
	for _, c := range ow.jar.Cookies(&url.URL{Scheme: "http", Host: apiHost, Path: "/"}) {
		if c.Name == session.CookieName {
			return c
		}
	}
	return nil
}

func TestOIDCProvidersList(t *testing.T) {
	ow := newOIDCWorld(t)
	resp, body := ow.get("/api/v1/session/oidc")
	want := `"data":{"providers":[{"id":"` + oidc.ConsoleID(ow.idp.URL) + `","name":"Test SSO"}]}`
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("GET /api/v1/session/oidc = %d %s, want 200 %s", resp.StatusCode, body, want)
	}
	// Without an issuer: an empty list, not an error.
	ow.api.oidc.signin = nil
	if _, body := ow.get("/api/v1/session/oidc"); !strings.Contains(body, `"data":{"providers":[]}`) {
		t.Errorf("without issuers: %s, want an empty list", body)
	}
	if resp, _ := ow.get("/api/v1/session/oidc/nope/start"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("start without issuers: %d, want 404", resp.StatusCode)
	}
}

// TestOIDCSignIn: the whole flow, as a browser goes through it, ends in
// a console session that acts as the issuer's access token: its role
// and project, its subject, the same authorization as the API's.
func TestOIDCSignIn(t *testing.T) {
	ow := newOIDCWorld(t)
	// The start sets the state cookie and sends the browser on with
	// PKCE.
	ow.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ := ow.get("/api/v1/session/oidc/" + oidc.ConsoleID(ow.idp.URL) + "/start")
	authURL, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(authURL.String(), ow.idp.URL+"/authorize?") {
		t.Fatalf("start: %d to %s, want a redirect to the issuer", resp.StatusCode, authURL)
	}
	q := authURL.Query()
	if q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 || q.Get("nonce") == "" || q.Get("state") == "" ||
		q.Get("client_id") != "console" || q.Get("redirect_uri") != "http://"+apiHost+oidc.CallbackPath {
		t.Errorf("authorization request %v: want S256 PKCE, nonce, state, the client and its redirect URI", q)
	}
	var state *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == oidc.StateCookieName {
			state = c
		}
	}
	if state == nil || !state.HttpOnly || state.SameSite != http.SameSiteLaxMode || state.Path != oidc.CallbackPath || state.MaxAge != 600 {
		t.Fatalf("state cookie %v: want HttpOnly, SameSite=Lax, Path=%s, 10 minutes", state, oidc.CallbackPath)
	}
	if strings.Contains(state.Value, q.Get("state")) || strings.Contains(state.Value, q.Get("nonce")) {
		t.Error("the state cookie shows the state or nonce: it must be sealed")
	}
	if resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("start Cache-Control %q, want no-store", resp.Header.Get("Cache-Control"))
	}

	// Through the issuer and back.
	ow.client.CheckRedirect = stopAtConsole
	resp, _ = ow.client.Get(authURL.String())
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
		t.Fatalf("callback: %d to %q, want a redirect to /console/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c := ow.sessionCookie(); c == nil {
		t.Fatal("no session cookie after the callback")
	}
	if tr := ow.idp.TokenRequests(); len(tr) != 1 || len(tr[0].Get("code_verifier")) != 43 || tr[0].Get("redirect_uri") != "http://"+apiHost+oidc.CallbackPath {
		t.Errorf("token requests %v: want one, with the PKCE verifier and the redirect URI", tr)
	}

	me, status := ow.whoami()
	if status != http.StatusOK || me.Method != auth.MethodOIDC || me.Role != core.RoleViewer || me.ProjectID != "p1" ||
		me.Subject != ow.idp.URL+"#alice" || me.Session == nil || me.KeyID != "" {
		t.Fatalf("whoami = %d %+v, want the issuer's alice, viewer in p1, with a session", status, me)
	}
	// A viewer reads, and may not administer.
	if resp, body := ow.get("/api/v1/agents"); resp.StatusCode != http.StatusOK || !strings.Contains(body, agentP1) {
		t.Errorf("GET agents: %d %s, want p1's agents", resp.StatusCode, body)
	}
	if resp, _ := ow.get("/api/v1/keys"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET keys as a viewer: %d, want 403", resp.StatusCode)
	}
	if resp, _ := ow.send("POST", "/api/v1/keys", me.Session.CSRFToken, `{"name":"x","role":"viewer"}`); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST keys as a viewer: %d, want 403", resp.StatusCode)
	}
	// Sign-in audited as the signed-in subject.
	recs := ow.trail(audit.Filter{Action: "session.create"})
	if len(recs) == 0 || recs[len(recs)-1].Subject != ow.idp.URL+"#alice" || recs[len(recs)-1].Outcome != audit.OutcomeSuccess ||
		recs[len(recs)-1].Details["auth"] != auth.MethodOIDC {
		t.Errorf("session.create records %+v: want a success for the issuer's alice", recs)
	}
	// Changes need the CSRF token; sign-out ends the session.
	if resp, _ := ow.send("DELETE", "/api/v1/session", "", ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, body := ow.send("DELETE", "/api/v1/session", me.Session.CSRFToken, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("sign-out: %d %s", resp.StatusCode, body)
	}
	if _, status := ow.whoami(); status != http.StatusUnauthorized {
		t.Errorf("whoami after sign-out: %d, want 401", status)
	}
}

// TestOIDCSignInAdminNeedsCSRF: an admin's session may change things,
// with the CSRF token only.
func TestOIDCSignInAdminNeedsCSRF(t *testing.T) {
	ow := newOIDCWorld(t)
	ow.idp.SetUser(oidctest.User{Subject: "root", Claims: map[string]any{"runagent_role": "admin", "runagent_project": "p1"}})
	ow.signInOIDC()
	me, _ := ow.whoami()
	if me.Role != core.RoleAdmin {
		t.Fatalf("whoami %+v, want admin", me)
	}
	const body = `{"name":"ci","role":"viewer"}`
	if resp, _ := ow.send("POST", "/api/v1/keys", "", body); resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST keys without the CSRF token: %d, want 403", resp.StatusCode)
	}
	if resp, body := ow.send("POST", "/api/v1/keys", me.Session.CSRFToken, body); resp.StatusCode != http.StatusCreated {
		t.Errorf("POST keys with the CSRF token: %d %s, want 201", resp.StatusCode, body)
	}
}

// TestOIDCCallbackRefused: a callback whose state is not the cookie's
// starts no session, lands on the console with a fixed error code, is
// audited as denied with the reason, and counts towards blocking the
// address like any failed sign-in.
func TestOIDCCallbackRefused(t *testing.T) {
	ow := newOIDCWorld(t)
	ow.api.setBlocker(ratelimit.NewMemoryBlocks(BlockPolicy{After: 3, Window: time.Minute, For: 5 * time.Minute}, func() time.Time { return ow.clock }))
	for i := range 3 {
		// Start, but come back with another state (a forged callback).
		ow.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		resp, _ := ow.get("/api/v1/session/oidc/" + oidc.ConsoleID(ow.idp.URL) + "/start")
		resp, _ = ow.client.Get(resp.Header.Get("Location"))
		back, _ := url.Parse(resp.Header.Get("Location"))
		cq := back.Query()
		cq.Set("state", "forged"+cq.Get("state"))
		ow.client.CheckRedirect = stopAtConsole
		resp, body := ow.get(oidc.CallbackPath + "?" + cq.Encode())
		if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/?signin_error=failed" {
			t.Fatalf("forged callback %d: %d to %q %s, want a redirect to the console with signin_error=failed", i, resp.StatusCode, resp.Header.Get("Location"), body)
		}
		if ow.sessionCookie() != nil {
			t.Fatal("a forged callback set a session cookie")
		}
	}
	recs := ow.trail(audit.Filter{Action: "session.create"})
	if len(recs) != 3 || recs[0].Outcome != audit.OutcomeDenied || !strings.Contains(recs[0].Details["reason"], "state does not match") {
		t.Errorf("session.create records %+v: want 3 denied, for the state", recs)
	}
	if resp, _ := ow.get("/api/v1/session/oidc"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("after 3 failed callbacks: %d, want 429 (blocked)", resp.StatusCode)
	}
}

// TestOIDCCallbackIssuerError: the issuer's refusal comes back to the
// console as a fixed code, never as the issuer's (or an attacker's)
// text, and is audited.
func TestOIDCCallbackIssuerError(t *testing.T) {
	ow := newOIDCWorld(t)
	ow.idp.SetUser(oidctest.User{Deny: true})
	if got := ow.signInOIDC(); got != "/console/?signin_error=denied" {
		t.Errorf("denied sign-in landed on %q, want /console/?signin_error=denied", got)
	}
	recs := ow.trail(audit.Filter{Action: "session.create"})
	if len(recs) != 1 || recs[0].Outcome != audit.OutcomeDenied || !strings.Contains(recs[0].Details["reason"], `"access_denied"`) {
		t.Errorf("session.create records %+v: want one denied for access_denied", recs)
	}
	// An error code that is not one is not repeated.
	resp, _ := ow.get(oidc.CallbackPath + "?error=%3Cscript%3E&state=x")
	if resp.Header.Get("Location") != "/console/?signin_error=denied" {
		t.Errorf("callback with error=<script>: to %q", resp.Header.Get("Location"))
	}
	recs = ow.trail(audit.Filter{Action: "session.create"})
	if r := recs[len(recs)-1].Details["reason"]; strings.Contains(r, "<script>") {
		t.Errorf("audit reason %q repeats the request's error", r)
	}
}

// TestOIDCSessionEndsWithToken: the session ends when the access token
// it was made from does, though it was used all along.
func TestOIDCSessionEndsWithToken(t *testing.T) {
	ow := newOIDCWorld(t)
	ow.idp.SetTokenTTL(20 * time.Minute)
	ow.signInOIDC()
	me, status := ow.whoami()
	if status != http.StatusOK || !me.Session.ExpiresAt.Equal(ow.now.Add(20*time.Minute).Truncate(time.Second)) {
		t.Fatalf("whoami %d %+v: want a session ending with the token, at %v", status, me.Session, ow.now.Add(20*time.Minute))
	}
	ow.clock = ow.now.Add(19 * time.Minute)
	if _, status := ow.whoami(); status != http.StatusOK {
		t.Fatalf("whoami a minute before the token ends: %d", status)
	}
	ow.clock = ow.now.Add(20*time.Minute + time.Second)
	if _, status := ow.whoami(); status != http.StatusUnauthorized {
		t.Errorf("whoami after the token ended: %d, want 401", status)
	}
}

// TestOIDCSessionIssuerRemoved: a session whose issuer is no longer
// configured for console sign-in is refused and deleted.
func TestOIDCSessionIssuerRemoved(t *testing.T) {
	ow := newOIDCWorld(t)
	ow.signInOIDC()
	if _, status := ow.whoami(); status != http.StatusOK {
		t.Fatalf("whoami: %d", status)
	}
	tok, _ := session.ParseToken(ow.sessionCookie().Value)
	// The same server restarted with the issuer kept for API tokens, but
	// without its console client.
	other := oidctest.New(t, oidctest.Config{ClientID: "x", RedirectURL: "http://" + apiHost + oidc.CallbackPath})
	v, err := oidc.New(t.Context(), oidc.Config{Issuers: []oidc.IssuerConfig{
		{Issuer: ow.idp.URL, Audiences: []string{"runagent"}},
		{Issuer: other.URL, Audiences: []string{"runagent"},
			Console: &oidc.ConsoleClient{ClientID: "x", RedirectURL: "http://" + apiHost + oidc.CallbackPath, Name: "Other"}},
	}}, oidc.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	ow.api.gw.signin = newTestSignIn(t, v)
	if _, status := ow.whoami(); status != http.StatusUnauthorized {
		t.Errorf("whoami after the issuer's console client was removed: %d, want 401", status)
	}
	if _, err := ow.store.Session(t.Context(), tok.ID()); err == nil {
		t.Error("the refused session is still stored")
	}
}
