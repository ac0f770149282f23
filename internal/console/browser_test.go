package console_test

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/apikey"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/console"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/store/sqlite"
	"github.com/runagent/runagent/internal/tlsconf"
)

// The browser tests: the console in a real headless Chromium (Debian's
// chromium, installed by scripts/deps.sh), driven by chromedp, against
// the API and console served as the server serves them (security
// headers, console.Mount) on loopback, with real SQLite.

// xssName is an agent name that runs script if put in the page as HTML.
const xssName = `<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>`

// site is a running API with the console, two agents (one named
// xssName) and a viewer's and an admin's key.
type site struct {
	url    string // http://127.0.0.1:port
	store  *sqlite.DB
	reg    *registry.Registry
	dbPath string // the store's file
	keys   map[string]string
	appJS  atomic.Int64 // GETs of /console/app.js
	agents []string
}

// newSite starts the site; opts change the API's dependencies before it
// is made.
func newSite(t *testing.T, opts ...func(*api.Deps)) *site {
	t.Helper()
	return newSiteWith(t, siteOptions{Deps: opts})
}

// siteOptions vary a site for a test.
type siteOptions struct {
	// ChunkDelay spaces the chunks of a streaming entrypoint.
	ChunkDelay time.Duration
	// Deps change the API's dependencies before it is made.
	Deps []func(*api.Deps)
	// Listener, when set, is where the site listens (a test that must
	// know the site's address before it starts, browser_oidc_test.go).
	Listener net.Listener
	// KeyNames name the site's keys by role ("k" for a role not named).
	KeyNames map[core.Role]string
}

func newSiteWith(t *testing.T, o siteOptions) *site {
	t.Helper()
	ctx := t.Context()
	dbPath := filepath.Join(t.TempDir(), "db")
	st, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := keyring.Open(ctx, st, keyring.Master{Key: make([]byte, keyring.KeySize)})
	if err != nil {
		t.Fatal(err)
	}
	st.SetSealer(kr)
	reg, err := registry.New(st, t.TempDir(), bundle.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := executor.New(executor.Config{Backend: sandboxtest.EchoBackend{ChunkDelay: o.ChunkDelay}, Interpreters: []executor.Interpreter{{Python: "python3", ShimPath: "/unused"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Shutdown(context.Background()) })
	auditKey := kr.MACKey("audit")
	trail, err := audit.New(st, auditKey, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { trail.Close() })
	if err := st.CreateProject(ctx, &core.Project{ID: "p1", Name: "p1", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s := &site{store: st, reg: reg, dbPath: dbPath, keys: map[string]string{}}
	for i, name := range []string{"support-bot", xssName} {
		id := fmt.Sprintf("aaaaaaaa-aaaa-4aaa-8aaa-%012d", i+1)
		if _, err := reg.DeployDir(ctx, agentDir(t, id, name), "p1"); err != nil {
			t.Fatal(err)
		}
		s.agents = append(s.agents, id)
	}
	for _, role := range []core.Role{core.RoleViewer, core.RoleAdmin} {
		s.keys[string(role)] = mustKey(t, st, "p1", role, cmp.Or(o.KeyNames[role], "k"))
	}
	deps := api.Deps{Store: st, Registry: reg, Exec: ex, Auth: auth.New(auth.Config{Store: st}),
		Sessions: session.New(session.Config{Store: st}), Audit: trail, AuditStore: st, AuditKey: auditKey, Keyring: kr,
		Block: api.BlockPolicy{After: -1}}
	for _, change := range o.Deps {
		change(&deps)
	}
	a := api.New(deps)
	h := tlsconf.SecurityHeaders(console.Mount(a), tlsconf.HeaderOptions{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/console/app.js" {
			s.appJS.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	if o.Listener != nil {
		srv.Listener.Close()
		srv.Listener = o.Listener
	}
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() { a.WaitTeardown(context.Background()) })
	s.url = srv.URL
	return s
}

func agentDir(t *testing.T, id, name string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := fmt.Sprintf(`{"agent_name": %q, "agent_id": %q,
  "agent_architecture": {"entrypoints": [
    {"file": "main.py", "module": "echo", "tag": "echo"},
    {"file": "main.py", "module": "echo_stream", "tag": "echo_stream"}]},
  "auth_settings": {"type": "api_key"}}`, name, id)
	for f, body := range map[string]string{"runagent.config.json": cfg, "main.py": "def echo(*a): return a\ndef echo_stream(*a): yield from a\n"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// mustKey makes a key of role in project, valid for an hour, and returns
// its secret. It is named "k", or name if one is given.
func mustKey(t *testing.T, st *sqlite.DB, project string, role core.Role, name ...string) string {
	t.Helper()
	keyName := "k"
	if len(name) > 0 {
		keyName = name[0]
	}
	token, id, hash := apikey.New()
	now := time.Now().UTC()
	p := &core.Principal{ID: "pr-" + id, ProjectID: project, Name: string(role), Kind: core.PrincipalService, Role: role, CreatedAt: now}
	if err := st.CreatePrincipal(t.Context(), p); err != nil {
		t.Fatal(err)
	}
	exp := now.Add(time.Hour)
	if err := st.CreateAPIKey(t.Context(), &core.APIKey{ID: id, PrincipalID: p.ID, ProjectID: project, Name: keyName, Hash: hash, CreatedAt: now, ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	return token
}

func (s *site) keyCount(t *testing.T) int {
	t.Helper()
	ks, err := s.store.APIKeys(t.Context(), core.KeyFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return len(ks)
}

// browser starts a headless Chromium with a fresh profile and returns a
// tab's context; everything is closed when t ends. A missing chromium
// fails the test: it is a prerequisite that scripts/deps.sh installs.
func browser(t *testing.T) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("the browser tests need Debian's chromium: run ./scripts/deps.sh (or apt-get install chromium): %v", err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser; it must not have a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs steps with a deadline.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// signIn opens the console and signs in with key, by keyboard: the key
// field has the focus, Enter submits.
func signIn(t *testing.T, ctx context.Context, s *site, key string) {
	t.Helper()
	do(t, ctx, "sign in",
		chromedp.Navigate(s.url+"/console"),
		chromedp.WaitVisible(chromedp.ID("api-key")),
		chromedp.SendKeys(chromedp.ID("api-key"), key+"\r"),
		chromedp.WaitVisible(chromedp.CSS(`#agents-body tr`)),
	)
}

// visibleAdminButtons counts the admin actions a user can see.
const visibleAdminButtons = `[...document.querySelectorAll("button.danger")].filter(b => b.offsetParent !== null).length`

func TestBrowserSignInAgentsSignOut(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])

	names := eval[[]string](t, ctx, `[...document.querySelectorAll("#agents-body td.name")].map(td => td.textContent)`)
	if len(names) != 2 || names[0] != "support-bot" || names[1] != xssName {
		t.Errorf("agent names shown: %q, want support-bot and the XSS name as text", names)
	}
	row := eval[string](t, ctx, `document.querySelector("#agents-body tr").textContent`)
	for _, want := range []string{s.agents[0], "echo", "echo_stream (stream)"} {
		if !strings.Contains(row, want) {
			t.Errorf("first agent's row %q lacks %q", row, want)
		}
	}
	if n := eval[int](t, ctx, visibleAdminButtons); n != 2 {
		t.Errorf("an admin sees %d delete buttons, want 2", n)
	}
	if key := eval[string](t, ctx, `document.getElementById("api-key").value`); key != "" {
		t.Error("the key is left in the sign-in form")
	}

	// The cookie, as the browser holds it.
	cookie := sessionCookie(t, ctx, s)
	if !cookie.HTTPOnly || cookie.SameSite != network.CookieSameSiteStrict {
		t.Errorf("session cookie: HttpOnly %v, SameSite %q; want HttpOnly, Strict", cookie.HTTPOnly, cookie.SameSite)
	}
	if got := eval[string](t, ctx, `document.cookie`); strings.Contains(got, session.CookieName) {
		t.Error("the page's script can read the session cookie")
	}
	if status := getWithCookie(t, s, cookie.Value); status != http.StatusOK {
		t.Fatalf("GET agents with the browser's cookie: %d, want 200", status)
	}

	do(t, ctx, "sign out",
		chromedp.Click(chromedp.ID("sign-out")),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
	)
	if status := getWithCookie(t, s, cookie.Value); status != http.StatusUnauthorized {
		t.Errorf("GET agents with the signed-out cookie: %d, want 401", status)
	}
	// Reloading does not bring the session back.
	do(t, ctx, "reload", chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.ID("sign-in")))
}

func sessionCookie(t *testing.T, ctx context.Context, s *site) *network.Cookie {
	t.Helper()
	var got *network.Cookie
	do(t, ctx, "read cookies", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{s.url}})
		if err != nil {
			return err
		}
		for _, c := range res.Cookies {
			if c.Name == session.CookieName {
				got = c
			}
		}
		return nil
	}))
	if got == nil {
		t.Fatal("the browser holds no session cookie")
	}
	return got
}

func getWithCookie(t *testing.T, s *site, value string) int {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", s.url+"/api/v1/agents", nil)
	req.AddCookie(&http.Cookie{Name: session.CookieName, Value: value})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestBrowserViewerSeesNoAdminActions(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["viewer"])
	if n := eval[int](t, ctx, visibleAdminButtons); n != 0 {
		t.Errorf("a viewer sees %d delete buttons, want none", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#agents-body tr").length`); n != 2 {
		t.Errorf("a viewer sees %d agents, want 2", n)
	}
	if who := eval[string](t, ctx, `document.getElementById("who-name").textContent`); !strings.Contains(who, "viewer") {
		t.Errorf("the shell names the caller %q, want its role viewer", who)
	}
}

// TestBrowserCSRF: with the session cookie in the browser, a change
// without the CSRF token is refused — from the console's own origin
// (the cookie is sent; the token is what is missing) and from another
// site (a form post and a fetch); a change with the token passes.
func TestBrowserCSRF(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	before := s.keyCount(t)
	const body = `JSON.stringify({name: "csrf", role: "viewer"})`
	status := eval[int](t, ctx, `fetch("/api/v1/keys", {method: "POST", headers: {"Content-Type": "application/json"}, body: `+body+`}).then(r => r.status)`)
	if status != http.StatusForbidden {
		t.Errorf("same-origin POST with the cookie and no CSRF token: %d, want 403", status)
	}

	// Another site: localhost is not 127.0.0.1's site.
	evil := evilSite(t, s, `<form id="f" method="POST" action="{{console}}/api/v1/keys" enctype="text/plain">
<input name='{"name":"csrf","role":"viewer","x":"' value='"}'></form>
<script>
fetch("{{console}}/api/v1/keys", {method: "POST", mode: "no-cors", credentials: "include",
  headers: {"Content-Type": "text/plain"}, body: '{"name":"csrf2","role":"viewer"}'}).finally(() => {
  document.title = "fetched"; document.getElementById("f").submit();
});
</script>`)
	do(t, ctx, "visit the other site", chromedp.Navigate(evil), chromedp.Sleep(time.Second))
	if got := s.keyCount(t); got != before {
		t.Errorf("keys: %d after the refused posts, want %d", got, before)
	}

	// The console itself, with its token, may.
	do(t, ctx, "back", chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.CSS(`#agents-body tr`)))
	status = eval[int](t, ctx, `import("/console/api.js").then(m => m.request("POST", "/api/v1/keys", {name: "ok", role: "viewer"})).then(() => 201, e => e.status)`)
	if status != http.StatusCreated || s.keyCount(t) != before+1 {
		t.Errorf("POST keys through the console with its CSRF token: %d (keys %d), want 201 (%d)", status, s.keyCount(t), before+1)
	}
}

// evilSite serves page (with {{console}} replaced by the console's
// origin) from another site, and returns its URL.
func evilSite(t *testing.T, s *site, page string) string {
	t.Helper()
	html := "<!doctype html><html><body>" + strings.ReplaceAll(page, "{{console}}", s.url) + "</body></html>"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte(html))
	}))
	t.Cleanup(srv.Close)
	return strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

// TestBrowserCannotBeFramed: the console forbids framing in its headers,
// and a page of another site that frames it shows no console: the frame
// holds Chromium's error page and never loaded the console's script.
func TestBrowserCannotBeFramed(t *testing.T) {
	s := newSite(t)
	res, err := http.Get(s.url + "/console")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(res.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		t.Errorf("GET /console: X-Frame-Options %q, CSP %q; want DENY and frame-ancestors 'none'", res.Header.Get("X-Frame-Options"), res.Header.Get("Content-Security-Policy"))
	}
	ctx := browser(t)
	evil := evilSite(t, s, `<iframe id="f" src="{{console}}/console" width="800" height="600"></iframe>`)
	loads := s.appJS.Load()
	do(t, ctx, "frame the console", chromedp.Navigate(evil), chromedp.Sleep(time.Second))
	if n := eval[int](t, ctx, `document.querySelectorAll("iframe#f").length`); n != 1 {
		t.Fatalf("the framing page has %d frames, want 1", n)
	}
	// The frame is another site's, in its own process (a target of its
	// own): look inside it for the console.
	targets, err := chromedp.Targets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	frames := 0
	for _, tg := range targets {
		if tg.Type != "iframe" {
			continue
		}
		frames++
		fctx, cancel := chromedp.NewContext(ctx, chromedp.WithTargetID(tg.TargetID))
		inside := eval[string](t, fctx, `location.href + " " + (document.getElementById("sign-in-form") ? "with the console" : "without the console")`)
		cancel()
		t.Logf("the frame holds %s", inside)
		if strings.HasSuffix(inside, " with the console") {
			t.Errorf("the framing page shows the console: %s", inside)
		}
	}
	if frames != 1 {
		t.Errorf("%d frame targets, want 1", frames)
	}
	if n := s.appJS.Load() - loads; n != 0 {
		t.Errorf("the framed console loaded its script %d times, want 0", n)
	}
}

// TestBrowserXSSShownAsText: an agent named with markup that would run
// script is shown as that text, no element is made of it, and no script
// ran.
func TestBrowserXSSShownAsText(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	if ran := eval[bool](t, ctx, `window.__xss !== undefined`); ran {
		t.Error("the XSS payload ran")
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#agents-body img, #agents-body script").length`); n != 0 {
		t.Errorf("the agents table holds %d img or script elements made of the payload", n)
	}
	shown := eval[string](t, ctx, `document.querySelector("#agents-body tr:nth-child(2) td.name").textContent`)
	if shown != xssName {
		t.Errorf("the agent's name is shown as %q, want the text %q", shown, xssName)
	}
}

// TestBrowserLayoutAndSpeed: the shell fits 1280 px and 390 px wide
// without sideways scrolling, and the agents view is interactive soon
// after navigation starts (logged; the target is 300 ms on loopback).
func TestBrowserLayoutAndSpeed(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	for _, width := range []int64{1280, 390} {
		do(t, ctx, fmt.Sprintf("%d px wide", width),
			chromedp.EmulateViewport(width, 844),
			chromedp.Navigate(s.url+"/console"),
			chromedp.WaitVisible(chromedp.CSS(`#agents-body tr`)),
		)
		if over := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); over {
			t.Errorf("at %d px the page scrolls sideways (%d px wide)", width, eval[int](t, ctx, `document.documentElement.scrollWidth`))
		}
		if ok := eval[bool](t, ctx, `["sign-out", "agents-title"].every(id => document.getElementById(id).offsetParent !== null)`); !ok {
			t.Errorf("at %d px the sign-out button or the view's title is hidden", width)
		}
		ms := eval[float64](t, ctx, `performance.getEntriesByName("agents-rendered")[0].startTime`)
		t.Logf("first view interactive at %d px: %.0f ms from navigation start (target 300 ms)", width, ms)
	}
}

// TestBrowserKeyboard: after sign-in the shell is used by keyboard alone:
// Tab reaches the skip link, the navigation, sign-out and each agent's
// link and actions in order, and Enter on sign-out signs out.
func TestBrowserKeyboard(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	// A fresh page load, signed in by the cookie: focus starts at the top.
	do(t, ctx, "reload", chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.CSS(`#agents-body tr`)))
	// The navigation holds the views the role may use, whichever those
	// are.
	nav := eval[[]string](t, ctx, `[...document.querySelectorAll("#nav a")].filter(a => a.offsetParent !== null).map(a => a.textContent)`)
	if len(nav) == 0 || nav[0] != "Agents" {
		t.Errorf("an admin's navigation: %q, want it to start with Agents", nav)
	}
	var reached []string
	for range len(nav) + 6 {
		do(t, ctx, "tab", chromedp.KeyEvent("\t"))
		reached = append(reached, eval[string](t, ctx, `(e => e.id || e.getAttribute("aria-label") || e.textContent.trim())(document.activeElement)`))
	}
	got := strings.Join(reached, " | ")
	want := "Skip to content | " + strings.Join(nav, " | ") + " | sign-out | support-bot | Delete agent support-bot | " + xssName + " | Delete agent " + xssName
	if !strings.HasPrefix(got, want) {
		t.Errorf("Tab reaches %q, want it to start %q", got, want)
	}
	// Back to sign-out, and Enter.
	eval[bool](t, ctx, `document.getElementById("sign-out").focus(), true`)
	do(t, ctx, "sign out by keyboard", chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if focused := eval[string](t, ctx, `document.activeElement.id`); focused != "api-key" {
		t.Errorf("after sign-out the focus is on %q, want the key field", focused)
	}
}

// TestBrowserEndedSession: when the session ends on the server (here:
// its key is revoked), the console's next call returns it to the sign-in
// and says why.
func TestBrowserEndedSession(t *testing.T) {
	s := newSite(t)
	ctx := browser(t)
	signIn(t, ctx, s, s.keys["admin"])
	// Another admin revokes the key through the API (which takes effect
	// at once on this node).
	k, err := apikey.Parse(s.keys["admin"])
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", s.url+"/api/v1/keys/"+k.ID+"/revoke", nil)
	req.Header.Set("Authorization", "Bearer "+mustKey(t, s.store, "p1", core.RoleAdmin))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("revoke the key: %d", res.StatusCode)
	}
	// The page is still open; its next call (here: the view shown again)
	// finds the session ended.
	do(t, ctx, "show the view again", chromedp.Evaluate[chromedp.Void](`location.hash = "#again"`), chromedp.WaitVisible(chromedp.ID("sign-in")))
	if msg := eval[string](t, ctx, `document.getElementById("status").textContent`); !strings.Contains(msg, "session has ended") {
		t.Errorf("status after the session ended: %q, want it to say so", msg)
	}
	if shown := eval[bool](t, ctx, `!document.getElementById("view-agents").hidden || !document.getElementById("nav").hidden`); shown {
		t.Error("the agents view or the navigation is still shown after the session ended")
	}
}

// waitFor polls expr in the page until it is true, for up to 15 s.
func waitFor(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !eval[bool](t, ctx, expr) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %s is still false after 15 s (status: %q)", what, expr, eval[string](t, ctx, `document.getElementById("status").textContent`))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startStream starts a streamed run (SSE) of agent with the admin's key
// and returns its invocation id and the body, closed when t ends (or
// when ctx is cancelled).
func startStream(ctx context.Context, t *testing.T, s *site, agent, body string) (string, io.Reader) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/api/v1/agents/"+agent+"/run-stream", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+s.keys["admin"])
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	id := res.Header.Get("X-Invocation-ID")
	if res.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("start a stream: %d, invocation %q", res.StatusCode, id)
	}
	return id, res.Body
}
