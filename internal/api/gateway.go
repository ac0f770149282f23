package api

import (
	"context"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/tlsconf"
)

// The gateway: the way every request takes, in order. The server adds
// the security headers before it (tlsconf.SecurityHeaders).
//
//	every request  recover → request id → shed → block → origin → route
//	each route     metrics → authenticate → authorize → rate limit → audit → agent → handler
//
// ServeHTTP is the first line, chain the second; each step is a function
// below, in that order. A step answers by returning an error, which the
// outermost step of the route writes as the envelope.

// ServeHTTP runs the steps every request takes, matched or not, then its
// route's chain. Unmatched routes get the envelope, not plain text.
func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// recover, and request id (the recovery's log names it).
	id := newRequestID()
	r = r.WithContext(context.WithValue(r.Context(), requestIDKey, id))
	w.Header().Set("X-Request-ID", id)
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			g.log.Error("panic in handler", "request_id", id, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			g.writeError(w, r, &core.Error{Code: core.CodeInternal, Message: "internal error"})
		}
	}()
	// shed: past the in-flight cap, 503 at once.
	if !g.shed.enter() {
		w.Header().Set("Retry-After", "1")
		g.writeError(w, r, errOverloaded)
		return
	}
	defer g.shed.leave()
	// block: a client address blocked for repeated failures (health
	// stays open to load balancers).
	if r.URL.Path != "/api/v1/health" {
		if err := g.checkBlock(w, r, g.addrKey(r)); err != nil {
			g.writeError(w, r, err)
			return
		}
	}
	// origin: DNS rebinding and cross-site requests.
	if err := g.checkOrigin(r); err != nil {
		g.writeError(w, r, err)
		return
	}
	// route.
	if _, pattern := g.mux.Handler(r); pattern == "" {
		g.writeError(w, r, g.unmatched(r))
		return
	}
	g.mux.ServeHTTP(w, r)
}

// step is one step of a route's chain.
type step func(next handlerFunc) handlerFunc

// chain compiles rt's steps, once, at start.
func (g *gateway) chain(rt route) http.Handler {
	steps := []step{
		g.authenticate(rt),
		g.authorize(rt),
		g.limitRate(rt),
		g.auditStep(rt),
		g.resolveAgent(rt),
	}
	h := rt.serve
	for i := len(steps) - 1; i >= 0; i-- {
		h = steps[i](h)
	}
	return g.metered(rt, h)
}

// metered records the request in the metrics and the log (requestlog.go)
// and writes the error a step or the handler answered with.
func (g *gateway) metered(rt route, h handlerFunc) http.Handler {
	pattern := rt.pattern()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		start := time.Now()
		r, rl := withRequestLog(r)
		if err := h(sw, r); err != nil {
			g.writeError(sw, r, err)
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		took := time.Since(start)
		g.metrics.Request(pattern, r.Method, status, took)
		g.logRequest(r, rl, pattern, status, took)
	})
}

// authenticate establishes who the request acts as (identify, in
// access.go) and puts the identity in its context. Public routes pass.
func (g *gateway) authenticate(rt route) step {
	return func(next handlerFunc) handlerFunc {
		if rt.access.public {
			return next
		}
		return func(w http.ResponseWriter, r *http.Request) error {
			id, err := g.identify(r, rt)
			if err != nil {
				return err
			}
			return next(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
		}
	}
}

// authorize checks the route's permission (and owner-only, and a client
// certificate for the control API under mTLS). A refusal of an audited
// route is recorded as denied.
func (g *gateway) authorize(rt route) step {
	return func(next handlerFunc) handlerFunc {
		if rt.access.public {
			return next
		}
		rl := rt.access
		return func(w http.ResponseWriter, r *http.Request) error {
			id := identity(r)
			if !id.Can(rl.perm) || (rl.owner && !id.Owner()) {
				g.auditDenied(r, rt.audit)
				return core.Errorf(core.CodeForbidden, "your credential does not allow this (it needs the %s permission%s)", rl.perm, ownerSuffix(rl.owner))
			}
			if rl.perm == core.PermAdmin && g.controlMTLS {
				if _, ok := tlsconf.VerifiedClient(r); !ok {
					return core.Errorf(core.CodeForbidden, "the control API also needs a TLS client certificate signed by the server's --tls-client-ca")
				}
			}
			return next(w, r)
		}
	}
}

// limitRate applies the caller's rate limit and blocks (limit, in
// access.go).
func (g *gateway) limitRate(rt route) step {
	return func(next handlerFunc) handlerFunc {
		if rt.access.public {
			return next
		}
		return func(w http.ResponseWriter, r *http.Request) error {
			if err := g.limit(w, r, identity(r)); err != nil {
				return err
			}
			return next(w, r)
		}
	}
}

// auditStep records the route in the audit trail (audit.go).
func (g *gateway) auditStep(rt route) step {
	return func(next handlerFunc) handlerFunc {
		if rt.audit.action == "" {
			return next
		}
		return g.auditRecords(rt.audit, next)
	}
}

// resolveAgent finds an agent-scoped route's agent as the caller may see
// it (agentFor, in access.go): NOT_FOUND for one it may not, like one
// that does not exist.
func (g *gateway) resolveAgent(rt route) step {
	return func(next handlerFunc) handlerFunc {
		if !rt.agent {
			return next
		}
		return func(w http.ResponseWriter, r *http.Request) error {
			d, err := g.agents.agentFor(r, r.PathValue("agent_id"))
			if err != nil {
				return err
			}
			return next(w, r.WithContext(context.WithValue(r.Context(), agentKey{}, d)))
		}
	}
}

type agentKey struct{}

// agentOf returns the agent resolveAgent found for an agent-scoped route.
func agentOf(r *http.Request) *registry.Deployment {
	d, _ := r.Context().Value(agentKey{}).(*registry.Deployment)
	return d
}
