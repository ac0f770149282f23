package api

import (
	"context"
	"errors"
	"math"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/registry"
)

// Access control happens here, in one place, for every route.
//
// Every route is registered with a rule (handle refuses a route without
// one, and TestRouteAccessMatrix walks every route with every role).
// The wrapper authenticates the request (unless the route is public),
// checks the route's permission (403 if the identity lacks it), and puts
// the identity in the context; handlers then check the objects they touch
// with canAgent/canProject, which answer NOT_FOUND for what the identity
// may not see, exactly as for what does not exist.

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
}

var (
	public       = rule{public: true}
	readRule     = rule{perm: core.PermRead}
	readAgent    = rule{perm: core.PermRead, anon: true}
	invokeRule   = rule{perm: core.PermWrite, anon: true}
	streamRule   = rule{perm: core.PermStream, anon: true}
	streamWSRule = rule{perm: core.PermStream, anon: true, query: true}
	adminRule    = rule{perm: core.PermAdmin}
	ownerRule    = rule{perm: core.PermAdmin, owner: true}
)

// anonymous is the identity of a request without a credential on a
// server that allows anonymous use of auth-none agents.
var anonymous = auth.Identity{Method: auth.MethodAnonymous, Role: core.RoleAdmin,
	Scopes: []core.Permission{core.PermRead, core.PermWrite, core.PermStream}}

// unrestricted is every request's identity on a server without
// authentication (--auth none, loopback only).
var unrestricted = auth.Identity{Method: auth.MethodAnonymous, Role: core.RoleOwner}

// limitKey is who a request's rate limit and blocks are counted against:
// its principal, or its client address when it has none.
func (a *API) limitKey(r *http.Request, id auth.Identity) string {
	if id.Method == auth.MethodAnonymous {
		return a.addrKey(r)
	}
	return id.Caller()
}

// addrKey names r's client address ("ip:192.0.2.1", "ip:2001:db8::/64"),
// believing X-Forwarded-For only from trusted proxies.
func (a *API) addrKey(r *http.Request) string {
	return ratelimit.ClientKey(r.RemoteAddr, strings.Join(r.Header.Values("X-Forwarded-For"), ","), a.proxies)
}

// limit applies the rate limit of r's principal (or address): 429 with
// Retry-After past it, and a strike towards a temporary block. A limiter
// that fails refuses the request (fail closed).
func (a *API) limit(w http.ResponseWriter, r *http.Request, id auth.Identity) error {
	key := a.limitKey(r, id)
	if left := a.block.check(key); left > 0 {
		return blockedError(w, left)
	}
	if a.limiter == nil {
		return nil
	}
	limit, err := a.principalLimit(r.Context(), id)
	if err != nil {
		a.log.Error("cannot read the project's rate limit; refusing the request", "project", id.ProjectID, "err", err)
		return &core.Error{Code: core.CodeUnavailable, Message: "rate limiting is unavailable; retry shortly", Err: err}
	}
	res, err := a.limiter.Allow(r.Context(), key, limit)
	if err != nil {
		a.log.Error("rate limiter unavailable; refusing the request", "err", err)
		return &core.Error{Code: core.CodeUnavailable, Message: "rate limiting is unavailable; retry shortly", Err: err}
	}
	ratelimit.SetHeaders(w.Header(), res)
	scope := "principal"
	if id.Method == auth.MethodAnonymous {
		scope = "address"
	}
	a.metrics.LimiterDecision(scope, res.Allowed)
	if res.Allowed {
		return nil
	}
	a.emit(r.WithContext(auth.WithIdentity(r.Context(), id)), core.SecurityEvent{Type: core.EventRateLimitExceeded,
		Message: "rate limit exceeded", Details: map[string]string{"client": key, "limit": limit.String(), "path": r.URL.Path}})
	if a.block.strike(key) {
		a.blocked(r, key, "repeated rate-limit violations")
	}
	return core.Errorf(core.CodeRateLimited, "rate limit exceeded (%s); retry after %d s", limit, int(math.Ceil(res.RetryAfter.Seconds())))
}

// principalLimit is id's rate limit (see effectiveRate); anonymous
// requests get the server's.
func (a *API) principalLimit(ctx context.Context, id auth.Identity) (ratelimit.Limit, error) {
	if id.Method == auth.MethodAnonymous {
		return a.rateLimit, nil
	}
	rl, err := a.effectiveRate(ctx, id.ProjectID, id.RateLimit, id.RateLimitByOwner)
	if err != nil || rl == nil {
		return a.rateLimit, err
	}
	return toLimit(*rl), nil
}

// projectRate is a project's own rate limit (nil: none), through
// a.projectRates.
func (a *API) projectRate(ctx context.Context, project string) (*core.RateLimit, error) {
	now := a.now()
	if rl, ok := a.projectRates.get(project, now); ok {
		return rl, nil
	}
	p, err := a.store.Project(ctx, project)
	if errors.Is(err, core.ErrNotFound) {
		// An OIDC token may name a project that does not exist: the
		// server's default applies.
		p, err = &core.Project{}, nil
	}
	if err != nil {
		return nil, err
	}
	a.projectRates.put(project, p.RateLimit, now)
	return p.RateLimit, nil
}

func toLimit(r core.RateLimit) ratelimit.Limit {
	return ratelimit.Limit{Rate: r.Requests, Period: time.Duration(r.PeriodSeconds) * time.Second, Burst: r.Requests}
}

// agentRate applies an agent's own rate limit (its config's rate_limit:
// calls from all callers together), or refuses with 429 and Retry-After.
func (a *API) agentRate(r *http.Request, d *registry.Deployment) error {
	if a.limiter == nil || d.Config.RateLimit == nil {
		return nil
	}
	limit := toLimit(*d.Config.RateLimit)
	res, err := a.limiter.Allow(r.Context(), "agent-rate:"+d.AgentID, limit)
	if err != nil {
		a.log.Error("rate limiter unavailable; refusing the request", "err", err)
		return &core.Error{Code: core.CodeUnavailable, Message: "rate limiting is unavailable; retry shortly", Err: err}
	}
	a.metrics.LimiterDecision("agent", res.Allowed)
	if res.Allowed {
		return nil
	}
	a.emit(r, core.SecurityEvent{Type: core.EventRateLimitExceeded, AgentID: d.AgentID, Message: "agent rate limit exceeded",
		Details: map[string]string{"limit": limit.String(), "path": r.URL.Path}})
	secs := int(math.Ceil(res.RetryAfter.Seconds()))
	return &retryError{secs: secs, err: core.Errorf(core.CodeRateLimited, "agent %s takes at most %s; retry after %d s", d.AgentID, limit, secs)}
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

// identify authenticates r. Every failure is errUnauthorized, answered no
// sooner than auth.FailureFloor after the check began.
func (a *API) identify(r *http.Request, rl rule) (auth.Identity, error) {
	if a.auth == nil {
		return unrestricted, nil
	}
	start := time.Now()
	token, ok := auth.Credential(r, rl.query)
	if !ok && rl.anon && a.anonymous {
		return anonymous, nil
	}
	ip := clientIP(r)
	var f *auth.Failure
	if !ok {
		f = &auth.Failure{Reason: "missing"}
	} else {
		id, err := a.auth.Authenticate(r.Context(), token, ip)
		if err == nil {
			return id, nil
		}
		f, _ = err.(*auth.Failure)
		if f == nil {
			f = &auth.Failure{Reason: err.Error()}
		}
	}
	a.auth.LogFailure(f, ip, r.Method, r.URL.Path)
	ev := core.SecurityEvent{Type: core.EventAuthFailure, Message: "authentication failed: " + f.Reason,
		Details: map[string]string{"reason": f.Reason, "method": r.Method, "path": r.URL.Path}}
	if f.KeyID != "" {
		ev.Principal = "key:" + f.KeyID
	}
	a.emit(r, ev)
	if key := a.addrKey(r); a.block.strike(key) {
		a.blocked(r, key, "repeated authentication failures")
	}
	sleepCtx(r.Context(), auth.FailureFloor-time.Since(start))
	return auth.Identity{}, errUnauthorized
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

// canAgent reports whether the request's identity may use agent d.
func canAgent(r *http.Request, d *registry.Deployment) bool {
	id := identity(r)
	if id.Method == auth.MethodAnonymous && !id.Owner() {
		return d.Config.AuthType == core.AuthNone
	}
	return id.CanAgent(d.ProjectID, d.AgentID)
}

// agentFor returns the current deployment of agentID if the request may
// use it; otherwise the same NOT_FOUND as for an unknown agent.
//
// An anonymous request (no credential, loopback development) gets the
// 401 that asks for a credential instead, for every agent but the ones
// that allow anonymous use — also for unknown ones, so that it learns
// nothing about which agents exist.
func (a *API) agentFor(r *http.Request, agentID string) (*registry.Deployment, error) {
	denied := agentLookupError(agentID, core.ErrNotFound)
	if id := identity(r); id.Method == auth.MethodAnonymous && !id.Owner() {
		denied = errUnauthorized
	}
	if !validID(agentID) {
		return nil, denied
	}
	d, err := a.reg.Get(r.Context(), agentID)
	if err != nil {
		if core.ErrorCode(err) == core.CodeNotFound {
			return nil, denied
		}
		return nil, err
	}
	if !canAgent(r, d) {
		return nil, denied
	}
	// Its project may have been deleted on another node since the
	// registry loaded it.
	gone, err := a.projectGone(r.Context(), d.ProjectID)
	if err != nil {
		return nil, err
	}
	if gone {
		a.dropAgents([]string{d.AgentID})
		return nil, denied
	}
	return d, nil
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
func (a *API) blocked(r *http.Request, client, reason string) {
	a.log.Warn("client blocked", "client", client, "for", a.block.pol.For.String(), "reason", reason)
	a.emit(r, core.SecurityEvent{Type: core.EventClientBlocked, Message: "client blocked: " + reason,
		Details: map[string]string{"client": client, "for": a.block.pol.For.String()}})
}

// runSlots takes a running-invocation slot for r's principal (or client
// address) and one for the agent, or refuses with 429 (503 when the count
// cannot be had: fail closed).
func (a *API) runSlots(r *http.Request, agentID string) (release func(), err error) {
	who := a.limitKey(r, identity(r))
	relP, ok, err := a.runs.Acquire(r.Context(), "runs:"+who, a.maxRunsP)
	if err != nil {
		return nil, a.slotsUnavailable(err)
	}
	if !ok {
		a.metrics.LimiterDecision("runs_principal", false)
		return nil, core.Errorf(core.CodeRateLimited, "you have %d invocations running, the most allowed at once; wait for one to finish", a.maxRunsP)
	}
	relA, ok, err := a.runs.Acquire(r.Context(), "agent:"+agentID, a.maxRunsA)
	if err != nil {
		relP()
		return nil, a.slotsUnavailable(err)
	}
	if !ok {
		relP()
		a.metrics.LimiterDecision("runs_agent", false)
		return nil, core.Errorf(core.CodeRateLimited, "agent %s has %d invocations running, the most allowed at once; retry shortly", agentID, a.maxRunsA)
	}
	return func() { relA(); relP() }, nil
}

func (a *API) slotsUnavailable(err error) error {
	a.log.Error("cannot count running invocations; refusing the request", "err", err)
	return &core.Error{Code: core.CodeUnavailable, Message: "invocation limits are unavailable; retry shortly", Err: err}
}
