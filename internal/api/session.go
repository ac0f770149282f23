package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/tlsconf"
)

// Console sessions (package session): the web console signs in by
// sending an API key, as any client does, to POST /api/v1/session, and
// gets a session cookie back. Requests that carry the cookie and no
// Authorization header act as the key, checked again at each request
// (sessionIdentity): the same authorization, rate limits and audit as the
// key itself. Changes made with the cookie need the session's CSRF token
// in X-CSRF-Token.
//
// A sign-in through an OIDC issuer (oidc_signin.go) creates a session
// with Method "oidc" that sessionIdentity makes the identity of the
// issuer's access token of; every other part is the same.

// sessionHandlers sign in to and out of the console, and tell a caller
// who it is (whoami).
type sessionHandlers struct {
	*base
	clients
	store    core.Store
	sessions *session.Manager // nil: console sign-in is off
}

// sessionBody is a console session as the API shows it.
type sessionBody struct {
	CSRFToken     string    `json:"csrf_token"`
	ExpiresAt     time.Time `json:"expires_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	IdleSeconds   int       `json:"idle_timeout_seconds"`
}

// whoamiBody is who a request acts as, and what it may do.
type whoamiBody struct {
	Method       string            `json:"method"`
	PrincipalID  string            `json:"principal_id,omitempty"`
	KeyID        string            `json:"key_id,omitempty"`
	Subject      string            `json:"subject,omitempty"`
	ProjectID    string            `json:"project_id,omitempty"`
	Role         core.Role         `json:"role"`
	Owner        bool              `json:"owner"`
	Permissions  []core.Permission `json:"permissions"`
	Agents       []string          `json:"agents,omitempty"`
	Users        []string          `json:"users,omitempty"` // the end users it acts for (see docs/api.md)
	KeyExpiresAt *time.Time        `json:"key_expires_at,omitempty"`
	Session      *sessionBody      `json:"session,omitempty"`
}

func whoamiOf(id auth.Identity) whoamiBody {
	b := whoamiBody{Method: id.Method, PrincipalID: id.PrincipalID, KeyID: id.KeyID, Subject: id.Subject,
		ProjectID: id.ProjectID, Role: id.Role, Owner: id.Owner(), Agents: id.Agents, Users: id.UserEntries(), KeyExpiresAt: id.Expires,
		Permissions: []core.Permission{}}
	for _, p := range core.AllPermissions {
		if id.Can(p) {
			b.Permissions = append(b.Permissions, p)
		}
	}
	return b
}

func (h *sessionHandlers) bodyOf(tok session.Token, s *core.Session) *sessionBody {
	return &sessionBody{CSRFToken: tok.CSRF(), ExpiresAt: s.ExpiresAt, IdleExpiresAt: h.sessions.IdleEnd(s),
		IdleSeconds: int(h.sessions.Idle() / time.Second)}
}

var errConsoleOff = core.Errorf(core.CodeNotFound, "console sign-in is not enabled on this server")

// signIn exchanges the request's API key for a console session: it sets
// the session cookie and answers the CSRF token. A session cookie the
// request carries is ended first. The key was checked by
// the gateway exactly as for any route (signInRule); a failure is audited
// there.
func (h *sessionHandlers) signIn(w http.ResponseWriter, r *http.Request) error {
	if h.sessions == nil {
		return errConsoleOff
	}
	id := identity(r)
	if id.Method != auth.MethodAPIKey {
		return core.Errorf(core.CodeValidation, "sign in to the console with an API key (Authorization: Bearer <key>)")
	}
	// A session the browser already holds is replaced, not left open.
	if old, present, err := session.FromRequest(r); present && err == nil {
		if err := h.sessions.Revoke(r.Context(), old); err != nil {
			return err
		}
	}
	tok, s, err := h.sessions.Create(r.Context(), session.Start{Method: auth.MethodAPIKey, KeyID: id.KeyID,
		PrincipalID: id.PrincipalID, NotAfter: id.Expires})
	if err != nil {
		return err
	}
	noteAudit(r, "session", shortID(s.ID))
	tlsconf.NoStore(w)
	http.SetCookie(w, session.Cookie(tok, s.ExpiresAt, h.overTLS(r)))
	b := whoamiOf(id)
	b.Session = h.bodyOf(tok, s)
	h.writeData(w, r, http.StatusCreated, b)
	return nil
}

// signOut ends the request's console session, on the server, and clears
// its cookie.
func (h *sessionHandlers) signOut(w http.ResponseWriter, r *http.Request) error {
	if h.sessions == nil {
		return errConsoleOff
	}
	tok, present, err := session.FromRequest(r)
	if identity(r).Session == "" || !present || err != nil {
		return core.Errorf(core.CodeValidation, "sign-out ends a console session, and this request carries none (an API key is revoked with POST /api/v1/keys/{key_id}/revoke)")
	}
	if err := h.sessions.Revoke(r.Context(), tok); err != nil {
		return err
	}
	noteAudit(r, "session", shortID(tok.ID()))
	tlsconf.NoStore(w)
	http.SetCookie(w, session.ClearCookie(h.overTLS(r)))
	h.writeData(w, r, http.StatusOK, map[string]bool{"signed_out": true})
	return nil
}

// whoami answers who the request acts as and its permissions (the
// console shows only what they allow), and for a console session its
// CSRF token and expiry.
func (h *sessionHandlers) whoami(w http.ResponseWriter, r *http.Request) error {
	id := identity(r)
	b := whoamiOf(id)
	if id.Session != "" {
		tok, _, _ := session.FromRequest(r)
		s, err := h.store.Session(r.Context(), id.Session)
		if err != nil {
			return err
		}
		b.Session = h.bodyOf(tok, s)
	}
	tlsconf.NoStore(w)
	h.writeData(w, r, http.StatusOK, b)
	return nil
}

// shortID is enough of a session id to tell sessions apart in the audit
// trail.
func shortID(id string) string { return id[:min(len(id), 16)] }

// sessionIdentity authenticates a request by its session cookie (tok, or
// the error of parsing it): the session must be live and what it was
// signed in with usable now (its key; or, signed in through an OIDC
// issuer, that issuer and the role and project the token gave), and a
// change needs the session's CSRF token. A session that no longer works
// is deleted. The failures are authentication failures like any other
// (authFailed), but for a missing CSRF token: 403.
func (g *gateway) sessionIdentity(r *http.Request, tok session.Token, parseErr error, start time.Time) (auth.Identity, error) {
	ctx := r.Context()
	if parseErr != nil {
		return auth.Identity{}, g.authFailed(r, &auth.Failure{Reason: "session cookie malformed"}, start)
	}
	s, err := g.sessions.Check(ctx, tok)
	switch {
	case errors.Is(err, session.ErrUnknown) || errors.Is(err, session.ErrExpired) || errors.Is(err, session.ErrIdle):
		return auth.Identity{}, g.authFailed(r, &auth.Failure{Reason: "session: " + err.Error()}, start)
	case err != nil:
		g.log.Error("cannot read the console session; refusing the request", "err", err)
		return auth.Identity{}, &core.Error{Code: core.CodeUnavailable, Message: "sessions are unavailable; retry shortly", Err: err}
	}
	var (
		id auth.Identity
		f  *auth.Failure
	)
	switch s.Method {
	case auth.MethodAPIKey:
		if id, err = g.auth.KeyIdentity(ctx, s.KeyID, clientIP(r)); err != nil {
			f, _ = err.(*auth.Failure)
			if f == nil {
				f = &auth.Failure{Reason: err.Error(), KeyID: s.KeyID}
			}
			f.Reason = "session's key: " + f.Reason
		}
	case auth.MethodOIDC:
		id, f = g.oidcSessionIdentity(s)
	default:
		// A sign-in method this server does not know.
		f = &auth.Failure{Reason: "session of sign-in method " + s.Method + " is not supported"}
	}
	if f != nil {
		if rerr := g.sessions.Revoke(ctx, tok); rerr != nil {
			g.log.Warn("cannot delete a console session that no longer works", "method", s.Method, "err", rerr)
		}
		return auth.Identity{}, g.authFailed(r, f, start)
	}
	id.Session = s.ID
	if needsCSRF(r) && !tok.CheckCSRF(r.Header.Get(session.CSRFHeader)) {
		g.emit(r.WithContext(auth.WithIdentity(ctx, id)), core.SecurityEvent{Type: core.EventAuthFailure,
			Message: "console session change without its CSRF token",
			Details: map[string]string{"reason": "csrf token missing or wrong", "method": r.Method, "path": r.URL.Path}})
		return auth.Identity{}, errCSRF
	}
	return id, nil
}

var errCSRF = core.Errorf(core.CodeForbidden, "a change made with a console session needs the session's CSRF token in the "+session.CSRFHeader+" header (GET /api/v1/whoami returns it)")

// needsCSRF reports whether r changes something, or may: every method
// but GET, HEAD and OPTIONS, and WebSocket upgrades (a GET that starts a
// run; a browser cannot add the header to one, so the console streams
// over SSE instead).
func needsCSRF(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return r.Header.Get("Upgrade") != ""
	}
	return true
}
