package api

import (
	"context"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
)

// Access control: the rules routes declare (routes.go), and what the
// gateway's authenticate, authorize and rate-limit steps (gateway.go)
// call. Every route declares a rule (the API is not built otherwise, and
// TestRouteAccessMatrix walks every route with every role). Agent-scoped
// routes resolve their agent with agentFor (agents.go), and handlers check
// other objects they touch the same way: NOT_FOUND for what the identity
// may not see, exactly as for what does not exist. What a credential may
// hand out or change is narrow.go's.

// rule is a route's access rule.
type rule struct {
	public bool            // no credential needed (health)
	perm   core.Permission // needed in the identity's project
	owner  bool            // instance owners only
	query  bool            // the credential may come as ?token= (WebSocket)
	// anon: on a server that allows it (loopback development), a request
	// without a credential acts as the anonymous identity, which may use
	// only agents whose auth_settings.type is "none".
	anon bool
	// signIn: the console's sign-in, which takes the credential itself,
	// never a session cookie, and audits its failures.
	signIn bool
}

var (
	public       = rule{public: true}
	readRule     = rule{perm: core.PermRead}
	readAgent    = rule{perm: core.PermRead, anon: true}
	invokeRule   = rule{perm: core.PermWrite, anon: true}
	streamRule   = rule{perm: core.PermStream, anon: true}
	streamWSRule = rule{perm: core.PermStream, anon: true, query: true}
	adminRule    = rule{perm: core.PermAdmin}
	cancelRule   = rule{perm: core.PermWrite}
	rejoinRule   = rule{perm: core.PermRead, query: true}
	ownerRule    = rule{perm: core.PermAdmin, owner: true}
	signInRule   = rule{perm: core.PermRead, signIn: true}
)

// anonymous is the identity of a request without a credential on a
// server that allows anonymous use of auth-none agents.
var anonymous = auth.Identity{Method: auth.MethodAnonymous, Role: core.RoleAdmin,
	Scopes: []core.Permission{core.PermRead, core.PermWrite, core.PermStream}}

// unrestricted is every request's identity on a server without
// authentication (--auth none, loopback only): it acts for every end
// user. (anonymous, above, acts for none.)
var unrestricted = auth.Identity{Method: auth.MethodAnonymous, Role: core.RoleOwner, Users: []string{core.AnyUser}}

// limitKey is who a request's rate limit and blocks are counted against:
// its principal, or its client address when it has none.
func (c *clients) limitKey(r *http.Request, id auth.Identity) string {
	if id.Method == auth.MethodAnonymous {
		return c.addrKey(r)
	}
	return id.Caller()
}

// addrKey names r's client address ("ip:192.0.2.1", "ip:2001:db8::/64"),
// believing X-Forwarded-For only from trusted proxies.
func (c *clients) addrKey(r *http.Request) string {
	return ratelimit.ClientKey(r.RemoteAddr, strings.Join(r.Header.Values("X-Forwarded-For"), ","), c.proxies)
}

// overTLS reports whether r reached the server over TLS: directly, or
// through a trusted proxy (--trusted-proxy) that says so with
// X-Forwarded-Proto: https. A console cookie is marked Secure then, so
// a server behind a TLS-terminating proxy sets Secure cookies too. The
// header of a peer that is not a trusted proxy is ignored.
func (c *clients) overTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	proto := r.Header.Values("X-Forwarded-Proto")
	if len(proto) == 0 || len(c.proxies) == 0 {
		return false
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	// The first value is the scheme the client used with the first
	// proxy (a later proxy may append its own). A client that forges it
	// gains nothing: a Secure cookie only stops its own browser sending
	// it over plain HTTP.
	first, _, _ := strings.Cut(proto[0], ",")
	if !strings.EqualFold(strings.TrimSpace(first), "https") {
		return false
	}
	addr := peer.Addr().Unmap()
	for _, p := range c.proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// limit applies the rate limit of r's principal (or address): 429 with
// Retry-After past it, and a strike towards a temporary block. A limiter
// that fails refuses the request (fail closed).
func (g *gateway) limit(w http.ResponseWriter, r *http.Request, id auth.Identity) error {
	key := g.limitKey(r, id)
	if err := g.checkBlock(w, r, key); err != nil {
		return err
	}
	if g.limiter == nil {
		return nil
	}
	limit, err := g.rates.principalLimit(r.Context(), id)
	if err != nil {
		g.log.Error("cannot read the project's rate limit; refusing the request", "project", id.ProjectID, "err", err)
		return &core.Error{Code: core.CodeUnavailable, Message: "rate limiting is unavailable; retry shortly", Err: err}
	}
	res, err := g.limiter.Allow(r.Context(), key, limit)
	if err != nil {
		g.log.Error("rate limiter unavailable; refusing the request", "err", err)
		return &core.Error{Code: core.CodeUnavailable, Message: "rate limiting is unavailable; retry shortly", Err: err}
	}
	ratelimit.SetHeaders(w.Header(), res)
	scope := "principal"
	if id.Method == auth.MethodAnonymous {
		scope = "address"
	}
	g.metrics.LimiterDecision(scope, res.Allowed)
	if res.Allowed {
		return nil
	}
	g.emit(r.WithContext(auth.WithIdentity(r.Context(), id)), core.SecurityEvent{Type: core.EventRateLimitExceeded,
		Message: "rate limit exceeded", Details: map[string]string{"client": key, "limit": limit.String(), "path": r.URL.Path}})
	g.strike(r, key, "repeated rate-limit violations")
	return core.Errorf(core.CodeRateLimited, "rate limit exceeded (%s); retry after %d s", limit, int(math.Ceil(res.RetryAfter.Seconds())))
}

// retryError is an error answered with a Retry-After header.
type retryError struct {
	secs int
	err  error
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

func ownerSuffix(owner bool) string {
	if owner {
		return " of an instance owner"
	}
	return ""
}

// errUnauthorized is every authentication failure, as the caller sees it.
var errUnauthorized = &core.Error{Code: core.CodeUnauthorized,
	Message: "authentication required: send a valid API key or access token as Authorization: Bearer <credential>"}

// identify authenticates r for route rt: by its credential, else by a
// console session cookie (session.go; never on the sign-in route), else
// as the anonymous identity where allowed. Every failure is
// errUnauthorized, answered no sooner than auth.FailureFloor after the
// check began; on the sign-in route it is audited too.
func (g *gateway) identify(r *http.Request, rt route) (auth.Identity, error) {
	if g.auth == nil {
		return unrestricted, nil
	}
	rl := rt.access
	start := time.Now()
	token, ok := auth.Credential(r, rl.query)
	if !ok && g.sessions != nil && !rl.signIn {
		if tok, present, err := session.FromRequest(r); present {
			return g.sessionIdentity(r, tok, err, start)
		}
	}
	if !ok && rl.anon && g.anonymous {
		return anonymous, nil
	}
	var f *auth.Failure
	if !ok {
		f = &auth.Failure{Reason: "missing"}
	} else {
		id, err := g.auth.Authenticate(r.Context(), token, clientIP(r))
		if err == nil {
			return id, nil
		}
		f, _ = err.(*auth.Failure)
		if f == nil {
			f = &auth.Failure{Reason: err.Error()}
		}
	}
	if rl.signIn {
		g.auditFailedSignIn(r, rt.audit, f)
	}
	return auth.Identity{}, g.authFailed(r, f, start)
}

// authFailed records the authentication failure f of r (the security
// log, a security event, a strike towards blocking the client's
// address), waits out the rest of auth.FailureFloor since start, and
// returns errUnauthorized.
func (g *gateway) authFailed(r *http.Request, f *auth.Failure, start time.Time) error {
	g.auth.LogFailure(f, clientIP(r), r.Method, r.URL.Path)
	ev := core.SecurityEvent{Type: core.EventAuthFailure, Message: "authentication failed: " + f.Reason,
		Details: map[string]string{"reason": f.Reason, "method": r.Method, "path": r.URL.Path}}
	if f.KeyID != "" {
		ev.Principal = "key:" + f.KeyID
	}
	g.emit(r, ev)
	g.strike(r, g.addrKey(r), "repeated authentication failures")
	sleepCtx(r.Context(), auth.FailureFloor-time.Since(start))
	return errUnauthorized
}

// auditFailedSignIn records a failed console sign-in in the audit trail
// (other authentication failures are security events only), with the
// key it named, if any, and the reason. The request is refused either
// way.
func (g *gateway) auditFailedSignIn(r *http.Request, spec auditSpec, f *auth.Failure) {
	if g.audit == nil {
		return
	}
	rec := g.auditRecord(r.WithContext(auth.WithIdentity(r.Context(), auth.Identity{KeyID: f.KeyID})), spec, audit.OutcomeDenied, http.StatusUnauthorized)
	rec.Details["reason"] = f.Reason
	if _, err := g.audit.Append(context.WithoutCancel(r.Context()), rec); err != nil {
		g.log.Error("audit record of a failed sign-in not written", "request_id", requestID(r), "err", err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// identity returns the request's identity (set by guard).
func identity(r *http.Request) auth.Identity {
	id, _ := auth.FromContext(r.Context())
	return id
}

// clientIP is the request's peer address.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// callerOf names who made the request in invocation records and logs.
func callerOf(r *http.Request) string {
	id, ok := auth.FromContext(r.Context())
	if !ok || id.Method == auth.MethodAnonymous {
		return "ip:" + clientIP(r)
	}
	return id.Caller()
}

// blocked records that client was blocked.
func (g *gateway) blocked(r *http.Request, client, reason string) {
	g.log.Warn("client blocked", "client", client, "for", g.blockFor.String(), "reason", reason)
	g.emit(r, core.SecurityEvent{Type: core.EventClientBlocked, Message: "client blocked: " + reason,
		Details: map[string]string{"client": client, "for": g.blockFor.String()}})
}
