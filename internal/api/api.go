package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/oidc"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/cluster"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/metrics"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/webhook"
)

// Deps are what the API needs.
type Deps struct {
	Store    core.Store
	Registry *registry.Registry
	Exec     *executor.Executor
	Log      *slog.Logger
	Version  string
	Limits   InputLimits
	// MaxRecordedOutput caps the output stored with an invocation record;
	// larger outputs are recorded as a truncation marker. Default 1 MiB.
	MaxRecordedOutput int
	// MaxPackage caps a deploy upload. Default 64 MiB.
	MaxPackage int64
	// AllowedHost reports whether a request's Host (without port) may be
	// served. A server bound to loopback allows only loopback names, which
	// defeats DNS-rebinding attacks from web pages. Nil allows any host.
	AllowedHost func(host string) bool
	// Now is the clock (tests inject one).
	Now func() time.Time
	// Auth authenticates requests; nil serves without authentication
	// (every request acts as an owner: loopback development only).
	Auth *auth.Authenticator
	// ControlNeedsClientCert makes the control API (routes that need the
	// admin permission) also require a verified TLS client certificate
	// (mTLS), on top of the credential.
	ControlNeedsClientCert bool
	// MaxInFlight caps requests being handled at once (streams included);
	// more are shed at once with 503 and Retry-After. Default
	// DefaultMaxInFlight.
	MaxInFlight int
	// MaxStreamsPerIP caps the WebSocket and SSE streams one client
	// address (IPv6: /64) holds open; more get 429. Default
	// DefaultMaxStreamsPerIP.
	MaxStreamsPerIP int
	// Metrics receives request and invocation metrics and serves them at
	// /api/v1/metrics (owners); nil makes a registry of the API's own.
	Metrics *metrics.Metrics
	// Limiter decides request rates: per principal, and per client
	// address for requests without one. Nil turns rate limiting off. An
	// error from it (Redis unreachable) fails the request with 503.
	Limiter ratelimit.Limiter
	// RateLimit is the limit per principal or address; default
	// ratelimit.DefaultLimit (100 per minute).
	RateLimit ratelimit.Limit
	// TrustedProxies are the peers whose X-Forwarded-For is believed
	// when telling client addresses apart.
	TrustedProxies []netip.Prefix
	// MaxRunsPerPrincipal and MaxRunsPerAgent cap the invocations
	// running at once for one principal (or client address without one)
	// and for one agent, on this node; more get 429. Defaults
	// DefaultMaxRunsPerPrincipal and DefaultMaxRunsPerAgent.
	MaxRunsPerPrincipal, MaxRunsPerAgent int
	// Runs counts running invocations for those caps; nil counts on
	// this node only.
	Runs ratelimit.Slots
	// Events records security events; nil records none (the metrics
	// still count them).
	Events core.EventEmitter
	// Audit records the audit trail; nil records none (tests of other
	// things). A server always has one.
	Audit Auditor
	// AuditStore and AuditKey serve the trail's admin routes (list,
	// export, verify); nil: those answer 404.
	AuditStore audit.Store
	AuditKey   []byte
	// Keyring rotates data keys for the owner's API; nil: those routes
	// answer 404.
	Keyring KeyRotator
	// Block configures temporary blocks of clients that keep failing
	// authentication; zero fields take DefaultBlock's.
	Block BlockPolicy
	// Blocks keeps those blocks; nil keeps them in memory, on this node
	// (ratelimit.NewMemoryBlocks under Block). Several nodes share
	// ratelimit.RedisBlocks made with the same policy.
	Blocks Blocks
	// KeyTTL is the lifetime of a new API key unless its creator says
	// otherwise. Default DefaultKeyTTL.
	KeyTTL time.Duration
	// Memory is agents' persistent memory: the admin routes (memory.go)
	// and runs use it. Nil (not a nil pointer in it): the routes answer
	// 404.
	Memory PersistentMemory
	// Anonymous lets requests without a credential use agents whose
	// auth_settings.type is "none" (loopback development).
	Anonymous bool
	// StreamKeep is what is kept of streams for resumption.
	StreamKeep StreamKeep
	// Webhooks delivers completion webhooks; nil: runs that ask for one
	// are refused (webhook.Dispatcher's methods say so on a nil one).
	Webhooks *webhook.Dispatcher
	// Cluster reaches the other nodes sharing the store: cancel, stream
	// rejoin and waits for runs another node holds (cluster.go). Nil: a
	// single node, whose routes answer only for its own runs.
	Cluster *cluster.Bus
	// NodeID is this node's id, recorded with every invocation it runs
	// (core.Invocation.NodeID); "" records none.
	NodeID string
	// Sessions are the web console's sign-ins (session.go); nil: the
	// session routes answer 404 and session cookies are not read.
	Sessions *session.Manager
	// OIDCSignIn signs in to the console through OpenID Connect issuers
	// (oidc_signin.go); nil: no issuer has a console client. It needs
	// Sessions.
	OIDCSignIn *oidc.SignIn
}

// API is the HTTP API: a gateway (gateway.go) in front of handler
// groups, each holding only what its routes use. The route table
// (routes.go) says which group serves which route.
type API struct {
	gw     *gateway
	runs   *runHandlers
	routes []route // as registered, for the tests

	agents      *agentHandlers
	invocations *invocationHandlers
	secrets     *secretHandlers
	keys        *keyHandlers
	projects    *projectHandlers
	ops         *opsHandlers
	trail       *trailHandlers
	memory      *memoryHandlers
	sessions    *sessionHandlers
	oidc        *oidcSignIn
}

// base is what every part of the API shares: the envelope it answers in
// (envelope.go) and the security log it reports to (events.go).
type base struct {
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics.Metrics
	events  core.EventEmitter
}

// clients names a request's client for rate limits, blocks and stream
// caps (access.go).
type clients struct {
	proxies []netip.Prefix
}

// gateway is every step a request takes before its handler.
type gateway struct {
	*base
	clients
	rates       *rateBook
	agents      *agentFinder
	auth        *auth.Authenticator
	anonymous   bool
	controlMTLS bool
	allowHost   func(string) bool
	shed        *shedder
	block       Blocks
	blockFor    time.Duration // how long a block lasts, for the log
	limiter     ratelimit.Limiter
	audit       Auditor
	sessions    *session.Manager // nil: cookies are not read
	signin      *oidc.SignIn     // nil: no OIDC console sign-in
	mux         *http.ServeMux
}

// rateBook resolves the rate limit that applies to a credential (access.go,
// narrow.go).
type rateBook struct {
	store        core.IdentityStore
	limiter      ratelimit.Limiter // nil: no rate limits
	rateLimit    ratelimit.Limit   // the server's default
	projectRates *ttlCache[*core.RateLimit]
	now          func() time.Time
}

// agentFinder finds agents as a request's caller may see them (access.go,
// lifecycle.go).
type agentFinder struct {
	store        core.IdentityStore
	reg          *registry.Registry
	exec         *executor.Executor
	liveProjects *ttlCache[bool]
	noSecrets    *ttlCache[struct{}]
	now          func() time.Time
}

// runHandlers run agents: REST, WebSocket and SSE (run.go, stream.go).
type runHandlers struct {
	*base
	clients
	store     core.Store
	exec      *executor.Executor
	limits    InputLimits
	maxRecord int
	limiter   ratelimit.Limiter // agents' own rate limits
	slots     ratelimit.Slots
	maxRunsP  int
	maxRunsA  int
	shed      *shedder
	noSecrets *ttlCache[struct{}] // agents known to have no secrets
	draining  atomic.Bool
	// drainCtx is cancelled by Drain: WebSocket clients that have not yet
	// sent their request stop waiting.
	drainCtx    context.Context
	drainCancel context.CancelFunc
	sockets     sync.WaitGroup // hijacked WebSocket connections
	teardown    sync.WaitGroup // sandboxes being torn down after their answer
	background  sync.WaitGroup // runs that outlive their request
	live        *liveRuns
	mem         PersistentMemory // nil: none

	// webhooks delivers completion webhooks (Deps.Webhooks).
	webhooks *webhook.Dispatcher
	// cluster announces run ends and serves other nodes' rejoins
	// (Deps.Cluster); nil: none.
	cluster *cluster.Bus
	// nodeID is recorded with every invocation (Deps.NodeID).
	nodeID string
}

// agentHandlers list, describe and deploy agents (handlers.go).
type agentHandlers struct {
	*base
	store      core.Store
	reg        *registry.Registry
	finder     *agentFinder     // stops serving deleted agents
	mem        PersistentMemory // erased with the agent; nil: none
	maxPackage int64
}

// invocationHandlers read invocation records (handlers.go).
type invocationHandlers struct {
	*base
	store   core.Store
	live    *liveRuns
	cluster *cluster.Bus // nil: a single node
}

// secretHandlers set, delete and list agents' secrets (secrets.go).
type secretHandlers struct {
	*base
	store     core.Store
	noSecrets *ttlCache[struct{}]
}

// keyHandlers create, list, rotate and revoke API keys (admin.go).
type keyHandlers struct {
	*base
	store  core.Store
	auth   *auth.Authenticator
	rates  *rateBook
	agents *agentFinder
	keyTTL time.Duration
}

// projectHandlers manage projects and principals (admin.go,
// lifecycle.go).
type projectHandlers struct {
	*base
	store  core.Store
	auth   *auth.Authenticator
	rates  *rateBook
	agents *agentFinder
	mem    PersistentMemory // erased with the project's agents; nil: none
}

// opsHandlers serve health, blocks, metrics, security events and the
// node registry (handlers.go, block.go, observe.go, events.go, nodes.go).
type opsHandlers struct {
	*base
	store    core.Store
	reg      *registry.Registry
	exec     *executor.Executor
	block    Blocks
	version  string
	started  time.Time
	draining *atomic.Bool
}

// trailHandlers serve the audit trail and the keyring (auditapi.go,
// keyring.go).
type trailHandlers struct {
	*base
	auditStore audit.Store
	auditKey   []byte
	keyring    KeyRotator
}

// Defaults of what Deps leaves zero. The server passes every one of these
// from its configuration, whose defaults (server.Config.WithDefaults) are
// these values.
const (
	DefaultMaxBody             = 4 << 20 // InputLimits.MaxBody
	DefaultMaxInFlight         = 1024
	DefaultMaxStreamsPerIP     = 16
	DefaultMaxRunsPerPrincipal = 16
	DefaultMaxRunsPerAgent     = 64
	// DefaultKeyTTL is how long a key lives unless its creator says
	// otherwise.
	DefaultKeyTTL = 90 * 24 * time.Hour
)

// DefaultBlock is what a zero BlockPolicy stands for: 10 failures within
// a minute block a client for 5 minutes.
var DefaultBlock = ratelimit.DefaultBlock

// withDefaults fills what d leaves zero (or, for sizes and durations,
// negative), and the nil dependencies that have a stand-in. It is the
// one place the API defaults anything.
func (d Deps) withDefaults() Deps {
	d.Limits.MaxBody = positiveOr(d.Limits.MaxBody, DefaultMaxBody)
	d.Limits.MaxDepth = positiveOr(d.Limits.MaxDepth, 64)
	d.Limits.MaxElements = positiveOr(d.Limits.MaxElements, 100_000)
	d.MaxRecordedOutput = positiveOr(d.MaxRecordedOutput, 1<<20)
	d.MaxPackage = positiveOr(d.MaxPackage, 64<<20)
	d.KeyTTL = positiveOr(d.KeyTTL, DefaultKeyTTL)
	d.MaxInFlight = positiveOr(d.MaxInFlight, DefaultMaxInFlight)
	d.MaxStreamsPerIP = positiveOr(d.MaxStreamsPerIP, DefaultMaxStreamsPerIP)
	d.MaxRunsPerPrincipal = positiveOr(d.MaxRunsPerPrincipal, DefaultMaxRunsPerPrincipal)
	d.MaxRunsPerAgent = positiveOr(d.MaxRunsPerAgent, DefaultMaxRunsPerAgent)
	d.Block = d.Block.WithDefaults() // After negative: never block
	if d.Blocks == nil {
		d.Blocks = ratelimit.NewMemoryBlocks(d.Block, d.Now)
	}
	if d.RateLimit == (ratelimit.Limit{}) {
		d.RateLimit = ratelimit.DefaultLimit
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Runs == nil {
		d.Runs = (&ratelimit.Concurrency{}).Local()
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New()
	}
	return d
}

// positiveOr returns v, or def when v is not positive.
func positiveOr[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// New returns the API.
func New(d Deps) *API {
	d = d.withDefaults()
	b := &base{log: d.Log, now: d.Now, metrics: d.Metrics, events: d.Events}
	cl := clients{proxies: d.TrustedProxies}
	noSecrets := newTTLCache[struct{}]()
	rates := &rateBook{store: d.Store, limiter: d.Limiter, rateLimit: d.RateLimit, projectRates: newTTLCache[*core.RateLimit](), now: d.Now}
	agents := &agentFinder{store: d.Store, reg: d.Registry, exec: d.Exec, liveProjects: newTTLCache[bool](), noSecrets: noSecrets, now: d.Now}
	shed := &shedder{maxInFlight: int64(d.MaxInFlight), maxStreams: d.MaxStreamsPerIP, streams: map[string]int{}}
	block := d.Blocks
	a := &API{
		gw: &gateway{base: b, clients: cl, rates: rates, agents: agents, auth: d.Auth, anonymous: d.Anonymous,
			controlMTLS: d.ControlNeedsClientCert, allowHost: d.AllowedHost, shed: shed, block: block, blockFor: d.Block.For,
			limiter: d.Limiter, audit: d.Audit, sessions: d.Sessions, signin: d.OIDCSignIn, mux: http.NewServeMux()},
		runs: &runHandlers{base: b, clients: cl, store: d.Store, exec: d.Exec, limits: d.Limits, maxRecord: d.MaxRecordedOutput,
			limiter: d.Limiter, slots: d.Runs, maxRunsP: d.MaxRunsPerPrincipal, maxRunsA: d.MaxRunsPerAgent, shed: shed, noSecrets: noSecrets,
			webhooks: d.Webhooks, nodeID: d.NodeID},
		agents:      &agentHandlers{base: b, store: d.Store, reg: d.Registry, finder: agents, maxPackage: d.MaxPackage},
		invocations: &invocationHandlers{base: b, store: d.Store},
		secrets:     &secretHandlers{base: b, store: d.Store, noSecrets: noSecrets},
		keys:        &keyHandlers{base: b, store: d.Store, auth: d.Auth, rates: rates, agents: agents, keyTTL: d.KeyTTL},
		projects:    &projectHandlers{base: b, store: d.Store, auth: d.Auth, rates: rates, agents: agents},
		trail:       &trailHandlers{base: b, auditStore: d.AuditStore, auditKey: d.AuditKey, keyring: d.Keyring},
		memory:      &memoryHandlers{base: b, mem: d.Memory},
		sessions:    &sessionHandlers{base: b, clients: cl, store: d.Store, sessions: d.Sessions},
	}
	a.oidc = &oidcSignIn{base: b, gw: a.gw, signin: d.OIDCSignIn, sessions: d.Sessions}
	a.runs.live = newLiveRuns(d.StreamKeep, d.Now)
	a.runs.mem = d.Memory
	a.agents.mem = d.Memory
	a.projects.mem = d.Memory
	a.invocations.live = a.runs.live
	if d.Cluster != nil {
		a.runs.cluster, a.invocations.cluster = d.Cluster, d.Cluster
		d.Cluster.Attach(clusterRuns{live: a.runs.live})
	}
	a.ops = &opsHandlers{base: b, store: d.Store, reg: d.Registry, exec: d.Exec, block: block, version: d.Version,
		started: d.Now(), draining: &a.runs.draining}
	a.runs.drainCtx, a.runs.drainCancel = context.WithCancel(context.Background())
	a.routes = a.gw.register(a.routeTable())
	return a
}

// ServeHTTP serves a request through the gateway.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.gw.ServeHTTP(w, r) }

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// unmatched tells 404 from 405 by probing the other methods.
func (g *gateway) unmatched(r *http.Request) error {
	var allow []string
	for _, m := range probeMethods {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := g.mux.Handler(r2); p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		return &core.Error{Code: core.CodeMethodNotAllowed, Details: allowDetails{Allow: strings.Join(allow, ", ")},
			Message: fmt.Sprintf("method %s is not allowed here; use %s", r.Method, strings.Join(allow, " or "))}
	}
	return core.Errorf(core.CodeNotFound, "no route for %s %s", r.Method, r.URL.Path)
}

// Drain makes new runs fail with 503 while running ones finish.
func (a *API) Drain() {
	a.runs.draining.Store(true)
	a.runs.drainCancel()
}

// WaitTeardown waits until every finished run's sandbox is torn down and
// its logs recorded, or ctx ends.
func (a *API) WaitTeardown(ctx context.Context) error {
	done := make(chan struct{})
	go func() { a.runs.teardown.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitBackground waits for the runs that outlive their requests
// (async_execution, on_disconnect "continue") to end, or ctx; then it
// cancels those left.
func (a *API) WaitBackground(ctx context.Context) error {
	done := make(chan struct{})
	go func() { a.runs.background.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		a.runs.live.cancelAll()
		<-done
		return ctx.Err()
	}
}

// WaitSockets waits for open WebSocket streams to end, or ctx.
func (a *API) WaitSockets(ctx context.Context) error {
	done := make(chan struct{})
	go func() { a.runs.sockets.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// readBody reads a capped request body.
func (b *base) readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, core.Errorf(core.CodeTooLarge, "request body is %d bytes; the limit is %d", r.ContentLength, limit)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, core.Errorf(core.CodeTooLarge, "request body is larger than the limit of %d bytes", limit)
		}
		return nil, &core.Error{Code: core.CodeValidation, Message: "could not read the request body", Err: err}
	}
	return body, nil
}

// checkOrigin refuses requests a web page could make on the user's behalf:
// a Host that is not ours (DNS rebinding) and a cross-origin Origin.
// SDKs and curl send no Origin.
func (g *gateway) checkOrigin(r *http.Request) error {
	if g.allowHost != nil {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !g.allowHost(strings.Trim(host, "[]")) {
			return core.Errorf(core.CodeForbidden, "this server answers only to its own address; the request's Host header names another (if you use a proxy, make it keep the Host header)")
		}
	}
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return core.Errorf(core.CodeForbidden, "cross-origin requests from web pages are refused")
		}
	}
	return nil
}

// requireJSON insists on a JSON Content-Type. Besides catching mistakes,
// this keeps web pages from posting runs as CORS "simple requests"
// (text/plain or no type), which would skip the browser's preflight.
func requireJSON(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return core.Errorf(core.CodeUnsupportedMedia, "send the request with Content-Type: application/json")
	}
	mt, _, _ := strings.Cut(ct, ";")
	mt = strings.ToLower(strings.TrimSpace(mt))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return core.Errorf(core.CodeUnsupportedMedia, "Content-Type %q is not supported; send application/json", mt)
	}
	return nil
}
