package console_test

import (
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/oidc"
	"github.com/runagent/runagent/internal/auth/oidc/oidctest"
)

// Names that run script if put in the page as HTML: the issuer's name on
// the sign-in page, and the subject the shell shows.
const (
	xssProvider = `SSO <img src=x onerror="window.__xss=3">`
	xssSubject  = `alice<script>window.__xss=4</script>`
)

// oidcSite is a site whose console signs in through a test issuer (a
// stand-in for a real identity provider, which cannot run here) on
// localhost: another site than the console's 127.0.0.1, so the
// browser goes through the sign-in's redirects cross-site, as it does
// with a real one.
func oidcSite(t *testing.T) (*site, *oidctest.Issuer) {
	t.Helper()
	return oidcSiteNamed(t, xssProvider)
}

// oidcSiteNamed is oidcSite with the issuer shown on the sign-in page
// as name (the screenshots name it as people would).
func oidcSiteNamed(t *testing.T, name string) (*site, *oidctest.Issuer) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	redirect := "http://" + l.Addr().String() + oidc.CallbackPath
	idp := oidctest.New(t, oidctest.Config{ClientID: "console", RedirectURL: redirect, Localhost: true})
	idp.SetUser(oidctest.User{Subject: xssSubject, Claims: map[string]any{"runagent_role": "viewer", "runagent_project": "p1"}})
	v, err := oidc.New(t.Context(), oidc.Config{Issuers: []oidc.IssuerConfig{{Issuer: idp.URL, Audiences: []string{"runagent"},
		Console: &oidc.ConsoleClient{ClientID: "console", RedirectURL: redirect, Name: name}}}},
		oidc.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	signin, err := oidc.NewSignIn(v, make([]byte, oidc.StateKeySize))
	if err != nil {
		t.Fatal(err)
	}
	s := newSiteWith(t, siteOptions{Listener: l, Deps: []func(*api.Deps){func(d *api.Deps) {
		d.Auth = auth.New(auth.Config{Store: d.Store, Tokens: auth.OIDC(v)})
		d.OIDCSignIn = signin
	}}})
	return s, idp
}

// TestBrowserOIDCSignIn: in Chromium, the sign-in page offers the issuer
// (its name as text); following the link by keyboard goes through the
// issuer and lands on the console signed in as the issuer's user with
// the token's role (a viewer: no admin actions); sign-out ends the
// session. An issuer's refusal comes back as a message on the sign-in
// page. No name or subject runs as script. The page fits 390 px.
func TestBrowserOIDCSignIn(t *testing.T) {
	s, idp := oidcSite(t)
	ctx := browser(t)
	const link = `#sign-in-providers a`
	do(t, ctx, "open the sign-in page",
		chromedp.Navigate(s.url+"/console"),
		chromedp.WaitVisible(chromedp.CSS(link)),
	)
	if got := eval[string](t, ctx, `document.querySelector("#sign-in-providers a").textContent`); got != "Sign in with "+xssProvider {
		t.Errorf("provider link %q, want the issuer's name as text", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#sign-in-providers a").length`); n != 1 {
		t.Errorf("%d provider links, want 1", n)
	}

	// By keyboard: the link is reached with Tab from the sign-in's
	// heading (before the key field), and Enter follows it.
	eval[bool](t, ctx, `document.getElementById("sign-in-title").setAttribute("tabindex", "-1"), document.getElementById("sign-in-title").focus(), true`)
	do(t, ctx, "tab to the link", chromedp.KeyEvent("\t"))
	if got := eval[string](t, ctx, `document.activeElement.textContent`); got != "Sign in with "+xssProvider {
		t.Fatalf("Tab from the heading reaches %q, want the issuer's link", got)
	}
	do(t, ctx, "sign in through the issuer",
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS(`#agents-body tr`)),
	)
	who := eval[string](t, ctx, `document.getElementById("who-name").textContent`)
	if !strings.Contains(who, idp.URL+"#"+xssSubject) || !strings.Contains(who, "viewer in p1") {
		t.Errorf("the shell names the caller %q, want the issuer's subject as text, viewer in p1", who)
	}
	if n := eval[int](t, ctx, visibleAdminButtons); n != 0 {
		t.Errorf("an OIDC viewer sees %d delete buttons, want none", n)
	}
	if n := eval[int](t, ctx, `[...document.querySelectorAll("#nav a[data-needs=admin]")].filter(a => !a.hidden).length`); n != 0 {
		t.Errorf("an OIDC viewer sees %d admin links, want none", n)
	}
	if path := eval[string](t, ctx, `location.pathname + location.search`); path != "/console/" {
		t.Errorf("landed on %q, want /console/", path)
	}
	cookie := sessionCookie(t, ctx, s)
	if status := getWithCookie(t, s, cookie.Value); status != http.StatusOK {
		t.Fatalf("GET agents with the browser's session cookie: %d, want 200", status)
	}

	do(t, ctx, "sign out",
		chromedp.Click(chromedp.ID("sign-out")),
		chromedp.WaitVisible(chromedp.ID("sign-in")),
		chromedp.WaitVisible(chromedp.CSS(link)),
	)
	if status := getWithCookie(t, s, cookie.Value); status != http.StatusUnauthorized {
		t.Errorf("GET agents with the signed-out cookie: %d, want 401", status)
	}

	// The issuer refuses: the sign-in page says so, and the URL no
	// longer carries the error.
	idp.SetUser(oidctest.User{Deny: true})
	do(t, ctx, "sign in, refused",
		chromedp.Click(chromedp.CSS(link)),
		chromedp.WaitVisible(chromedp.CSS(link)),
	)
	waitFor(t, ctx, "the refusal's message", `document.getElementById("status").textContent.includes("did not sign you in")`)
	if got := eval[string](t, ctx, `location.search`); got != "" {
		t.Errorf("the URL still carries %q", got)
	}
	if xss := eval[bool](t, ctx, `window.__xss !== undefined`); xss {
		t.Error("a name or subject from the issuer ran as script")
	}

	// The sign-in page fits a phone.
	do(t, ctx, "390 px wide", chromedp.EmulateViewport(390, 844), chromedp.Navigate(s.url+"/console"), chromedp.WaitVisible(chromedp.CSS(link)))
	if over := eval[bool](t, ctx, `document.documentElement.scrollWidth > window.innerWidth`); over {
		t.Errorf("at 390 px the sign-in page scrolls sideways (%d px wide)", eval[int](t, ctx, `document.documentElement.scrollWidth`))
	}
}
