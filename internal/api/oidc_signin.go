package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/oidc"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/tlsconf"
)

// Console sign-in through an OpenID Connect issuer (authorization code
// with PKCE; the flow itself is oidc.SignIn's). The sign-in page lists
// the issuers (GET /api/v1/session/oidc); a link starts a sign-in
// (GET .../{id}/start), which sets the sealed state cookie and sends the
// browser to the issuer; the issuer sends it back to the callback
// (GET /api/v1/session/oidc/callback), which checks the state, exchanges
// the code, verifies the access token with the API's own verifier and
// starts a console session with Method "oidc" that acts as that token
// would: its role and project, ending when the token does. The console
// goes back through the issuer when it ends; no refresh token is kept.
//
// The three routes are public: the gateway has no credential to check
// yet. The callback audits itself (a session.create record as the
// signed-in identity, or a denied one with the reason), and a failed
// callback is an authentication failure like a wrong API key: the
// security log, a security event, and a strike towards blocking the
// client's address. The browser always gets a redirect, never a page:
// errors come back to the console as a fixed code (signin_error=...),
// never as text from the request.

// signInAudit is how a console sign-in is audited, by either route.
var signInAudit = audited("session.create", auditChange, fixedRes("session"))

// Codes the callback sends the console back with; the console shows a
// message for each.
const (
	signInDenied      = "denied"      // the issuer said no (the user cancelled, or is not allowed)
	signInFailed      = "failed"      // state, code exchange or token refused
	signInUnavailable = "unavailable" // the issuer or the store cannot be reached
)

// consoleHome is where a finished sign-in lands.
const consoleHome = "/console/"

// oidcSignIn serves the console's OIDC sign-in routes.
type oidcSignIn struct {
	*base
	gw       *gateway
	signin   *oidc.SignIn     // nil: no issuer has a console client
	sessions *session.Manager // nil: console sign-in is off
}

func (h *oidcSignIn) off() bool { return h.signin == nil || h.sessions == nil }

// providers lists the issuers the console can sign in through: an empty
// list when there are none.
func (h *oidcSignIn) providers(w http.ResponseWriter, r *http.Request) error {
	list := []oidc.Provider{}
	if !h.off() {
		list = h.signin.Providers()
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"providers": list})
	return nil
}

// start sends the browser to the issuer, with the sign-in's state in a
// sealed cookie for the callback.
func (h *oidcSignIn) start(w http.ResponseWriter, r *http.Request) error {
	if h.off() {
		return errConsoleOff
	}
	authURL, sealed, err := h.signin.Start(r.Context(), r.PathValue("id"))
	if errors.Is(err, oidc.ErrUnknownProvider) {
		return core.Errorf(core.CodeNotFound, "no issuer is configured for console sign-in under that id (GET /api/v1/session/oidc lists them)")
	}
	tlsconf.NoStore(w)
	if err != nil {
		h.log.Warn("console sign-in cannot start: the issuer's endpoints are unavailable", "err", err)
		return backToConsole(w, r, signInUnavailable)
	}
	http.SetCookie(w, oidc.StateCookie(sealed, h.gw.overTLS(r)))
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

// callback finishes a sign-in the issuer sent the browser back from.
func (h *oidcSignIn) callback(w http.ResponseWriter, r *http.Request) error {
	if h.off() {
		return errConsoleOff
	}
	begin := time.Now()
	ctx := r.Context()
	secure := h.gw.overTLS(r)
	tlsconf.NoStore(w)
	// A state serves once, whatever happens next.
	http.SetCookie(w, oidc.ClearStateCookie(secure))
	q := r.URL.Query()
	var sealed string
	if c, err := r.Cookie(oidc.StateCookieName); err == nil {
		sealed = c.Value
	}

	if q.Has("error") {
		// The issuer refused, or the user cancelled. Audited, but not
		// a strike: nothing was guessed.
		h.gw.auditFailedSignIn(r, signInAudit, &auth.Failure{Reason: "oidc sign-in: the issuer answered error " + quoteCode(q.Get("error"))})
		return backToConsole(w, r, signInDenied)
	}
	fail := func(f *auth.Failure) error {
		h.gw.auditFailedSignIn(r, signInAudit, f)
		h.gw.authFailed(r, f, begin)
		return backToConsole(w, r, signInFailed)
	}
	tid, err := h.signin.Finish(ctx, sealed, q.Get("state"), q.Get("code"))
	if err != nil {
		// A *SignInError's text holds no code, token, state or secret.
		return fail(&auth.Failure{Reason: err.Error()})
	}
	id, err := auth.TokenIdentity(auth.TokenClaims{Issuer: tid.Issuer, Subject: tid.Subject, Project: tid.Project, Role: core.Role(tid.Role)})
	if err != nil {
		f, _ := err.(*auth.Failure)
		if f == nil {
			f = &auth.Failure{Reason: err.Error()}
		}
		return fail(f)
	}
	// A session the browser already holds is replaced, not left open.
	if old, present, err := session.FromRequest(r); present && err == nil {
		if err := h.sessions.Revoke(ctx, old); err != nil {
			h.log.Error("cannot end the browser's previous console session", "err", err)
			return backToConsole(w, r, signInUnavailable)
		}
	}
	expires := tid.ExpiresAt
	tok, s, err := h.sessions.Create(ctx, session.Start{Method: auth.MethodOIDC, Subject: id.Subject,
		Role: string(id.Role), ProjectID: id.ProjectID, NotAfter: &expires})
	if err != nil {
		h.log.Error("cannot store a console session", "err", err)
		return backToConsole(w, r, signInUnavailable)
	}
	id.Session = s.ID
	if h.gw.audit != nil {
		note := &auditNote{details: map[string]string{"session": shortID(s.ID)}}
		ar := r.WithContext(context.WithValue(auth.WithIdentity(ctx, id), auditNoteKey{}, note))
		if err := h.gw.appendAudit(ar, signInAudit, audit.OutcomeSuccess, http.StatusFound); err != nil {
			// Fail closed: a sign-in the trail does not hold does not
			// happen.
			if rerr := h.sessions.Revoke(ctx, tok); rerr != nil {
				h.log.Error("cannot end an unaudited console session", "err", rerr)
			}
			return backToConsole(w, r, signInUnavailable)
		}
	}
	http.SetCookie(w, session.Cookie(tok, s.ExpiresAt, secure))
	http.Redirect(w, r, consoleHome, http.StatusFound)
	return nil
}

// backToConsole redirects the browser to the console's sign-in page
// with a fixed error code.
func backToConsole(w http.ResponseWriter, r *http.Request, code string) error {
	http.Redirect(w, r, consoleHome+"?signin_error="+code, http.StatusFound)
	return nil
}

// quoteCode returns an OAuth error code from the request for the log, if
// it looks like one of the registered codes (lower-case letters and
// underscores: access_denied, invalid_scope, ...), else a placeholder:
// the request's text is not repeated.
func quoteCode(s string) string {
	if s == "" || len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' }) {
		return `"unrecognized"`
	}
	return `"` + s + `"`
}

// oidcSessionIdentity rebuilds the identity of a console session signed
// in through an issuer, as its access token gave it: the issuer must
// still be configured for console sign-in, and the role and project
// still valid.
func (g *gateway) oidcSessionIdentity(s *core.Session) (auth.Identity, *auth.Failure) {
	issuer, sub, ok := strings.Cut(s.Subject, "#") // an issuer has no fragment
	if !ok || g.signin == nil || !g.signin.Has(issuer) {
		return auth.Identity{}, &auth.Failure{Reason: "session: its issuer is no longer configured for console sign-in"}
	}
	id, err := auth.TokenIdentity(auth.TokenClaims{Issuer: issuer, Subject: sub, Project: s.ProjectID, Role: core.Role(s.Role)})
	if err != nil {
		return auth.Identity{}, &auth.Failure{Reason: "session: " + err.Error()}
	}
	return id, nil
}
