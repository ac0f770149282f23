package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/auth/oidc"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/bundle"
	"github.com/runagent/runagent/internal/cluster"
	"github.com/runagent/runagent/internal/connlimit"
	"github.com/runagent/runagent/internal/console"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/dotenv"
	"github.com/runagent/runagent/internal/events"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/metrics"
	"github.com/runagent/runagent/internal/registry"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/tlsconf"
	"github.com/runagent/runagent/internal/webhook"
)

// Server is a running runagent.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   Store
	keyring *keyring.Keyring
	audit   *audit.Log
	// Background jobs (retention) run until bgCancel; Close waits.
	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	reg      *registry.Registry
	exec     *executor.Executor
	api      *api.API
	http     *http.Server
	tls      bool // serving HTTPS
	oidc     *oidc.Verifier
	// webhooks delivers completion webhooks.
	webhooks *webhook.Dispatcher
	// events records security events; relay hands them to it from parts
	// opened before it.
	events *events.Emitter
	relay  relay
	// closers release what Open acquired beyond the fields above.
	closers []func()
	ln      net.Listener
	// releaseSandbox frees the backend's host resources after the last
	// sandbox ended.
	releaseSandbox func()
	local          localMode
	// memory is agents' persistent memory (memory.go).
	memory *MemoryStores
	// cluster is the bus to the other nodes (cluster.go); nil without Redis.
	cluster *cluster.Bus
	// node keeps this node in the node registry (nodes.go).
	node *nodeBeat
}

// CheckAddr checks that cfg may listen where it is told: an address
// reachable from other machines needs authentication (it is refused with
// --auth none) and should have TLS (warning returned).
func CheckAddr(cfg Config) (warning string, err error) {
	return tlsconf.CheckBind(cfg.Addr, cfg.TLSCert != "", cfg.Auth != AuthNone)
}

// isLoopbackAddr reports whether addr (host:port) is a loopback address.
func isLoopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && loopbackHost(host)
}

// loopbackHost allows the names a loopback-bound server is reached by.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Open prepares a server with cfg and its defaults (Config.WithDefaults):
// it opens the store, deploys the configured agent directories and binds
// the listener. Nothing is served until Serve.
func Open(ctx context.Context, cfg Config) (_ *Server, err error) {
	cfg = cfg.WithDefaults()
	if cfg.Auth != AuthKeys && cfg.Auth != AuthNone {
		return nil, fmt.Errorf("--auth %q: use %s or %s", cfg.Auth, AuthKeys, AuthNone)
	}
	if err := session.CheckLifetimes(cfg.SessionIdle, cfg.SessionMax); err != nil {
		return nil, err
	}
	if warn, err := CheckAddr(cfg); err != nil {
		return nil, err
	} else if warn != "" {
		cfg.Log.Warn(warn)
	}
	if cfg.DataDir == "" {
		return nil, ErrNoDataDir
	}
	if err := cfg.Memory.checkShared(cfg.StoreURL); err != nil {
		return nil, err
	}
	if cfg.Exe == "" {
		return nil, errors.New("cannot find the path of this runagent binary, which serves the sandboxes")
	}
	pythons, err := resolvePythons(ctx, cfg.Python)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	if cfg.NodeID == "" {
		if cfg.NodeID, err = LoadNodeID(cfg.DataDir); err != nil {
			return nil, err
		}
	} else if err := core.CheckNodeID(cfg.NodeID); err != nil {
		return nil, fmt.Errorf("--node-id: %w", err)
	}
	if cfg.NodeTimeout < MinNodeTimeout {
		return nil, fmt.Errorf("--node-timeout %s: want at least %s (a live node must not be declared dead for one slow heartbeat)", cfg.NodeTimeout, MinNodeTimeout)
	}
	s := &Server{cfg: cfg, log: cfg.Log}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := s.local.acquire(cfg.DataDir, cfg.Addr); err != nil {
		return nil, err
	}
	if cfg.Backend == nil {
		if cfg.Backend, s.releaseSandbox, err = openSandbox(cfg, cfg.Log, &s.relay); err != nil {
			return nil, err
		}
	}
	if pc, ok := cfg.Backend.(pythonChecker); ok {
		for _, py := range pythons {
			if err := pc.CheckPython(py.Path); err != nil {
				return nil, fmt.Errorf("--python: Python %s cannot run in the %s sandbox: %w", py.Name, cfg.Sandbox, err)
			}
		}
	}
	s.cfg = cfg
	if s.store, err = openStore(ctx, cfg); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	kc := cfg.Keyring
	kc.Generate = true
	if s.keyring, err = OpenKeyring(ctx, s.store, cfg.DataDir, kc, cfg.Console, s.log); err != nil {
		return nil, err
	}
	if cfg.Auth == AuthKeys {
		if err := checkBootstrap(ctx, s.store); err != nil {
			return nil, err
		}
	}
	auditKey := s.keyring.MACKey(AuditKeyPurpose)
	// The journal in the data directory is one node's: with a shared
	// PostgreSQL store, where every node appends to one chain, each batch
	// is a transaction of the store instead.
	journal := AuditJournal(cfg.DataDir)
	if cfg.StoreURL != "" {
		journal = ""
	}
	if s.audit, err = audit.New(s.store, auditKey, audit.Options{Journal: journal}); err != nil {
		return nil, fmt.Errorf("open the audit trail: %w", err)
	}
	if s.events, err = s.openEvents(cfg); err != nil {
		return nil, err
	}
	s.relay.to.Store(s.events)
	interpreters, err := installShims(ctx, cfg.DataDir, pythons)
	if err != nil {
		return nil, err
	}
	for i, py := range pythons {
		s.log.Info("python runtime", "name", py.Name, "interpreter", py.Path, "version", py.Version, "default", i == 0)
	}
	if s.reg, err = registry.New(s.store, filepath.Join(cfg.DataDir, "code"), bundle.Limits{}); err != nil {
		return nil, err
	}
	s.reg.Check = func(c *core.AgentConfig) error {
		_, err := sandbox.LimitsFor(c.Resources, sandbox.Limits{}, sandbox.Limits{})
		return err
	}
	if s.exec, err = executor.New(executor.Config{
		Backend:        cfg.Backend,
		Interpreters:   interpreters,
		DefaultTimeout: cfg.DefaultTimeout,
		MaxTimeout:     cfg.MaxTimeout,
		MaxConcurrent:  cfg.MaxConcurrent,
		QueueWait:      cfg.QueueWait,
		QueueMax:       cfg.QueueMax,
		PoolSize:       max(cfg.PoolSize, 0), // negative: off, the executor's 0
		PoolMax:        cfg.PoolMax,
		PoolMemory:     cfg.PoolMemoryMB << 20,
		SandboxMemory:  cfg.SandboxMemoryMB << 20,
		PoolIdle:       cfg.PoolIdle,
		ReuseMax:       cfg.ReuseMax,
		ReuseIdle:      cfg.ReuseIdle,
		Fork:           !cfg.NoForkServer,
		Logger:         s.log,
	}); err != nil {
		return nil, err
	}
	if err := s.prepareDeploys(ctx, cfg, pythons); err != nil {
		return nil, err
	}
	for _, dir := range cfg.AgentDirs {
		res, err := s.reg.DeployDir(ctx, dir, "")
		if err != nil {
			return nil, fmt.Errorf("deploy %s: %w", dir, err)
		}
		for _, w := range res.Warnings {
			s.log.Warn("agent config", "dir", dir, "warning", w)
		}
		s.log.Info("agent ready", "dir", dir, "agent_id", res.Deployment.AgentID, "name", res.Deployment.Config.AgentName, "version", res.Deployment.Hash)
		s.local.deployed(dir, res.Deployment.AgentID)
		if err := s.importDotEnv(ctx, dir, res.Deployment.AgentID); err != nil {
			return nil, err
		}
	}
	if err := cfg.Memory.check(); err != nil {
		return nil, err
	}
	s.memory = newMemoryStores(cfg, s.store, s.keyring)
	if cfg.Memory.Mode == MemoryOn {
		if _, err := s.memory.manager(); err != nil {
			return nil, fmt.Errorf("--memory on: %w", err)
		}
	}
	if s.webhooks, err = webhook.New(ctx, webhook.Config{Store: s.store, Log: s.log.With("component", "webhooks"),
		AllowPrefixes: cfg.WebhookAllowPrefixes}); err != nil {
		return nil, err
	}
	loopback := isLoopbackAddr(cfg.Addr)
	deps := api.Deps{
		Store: s.store, Registry: s.reg, Exec: s.exec, Log: s.log, Version: cfg.Version,
		Audit: s.auditor(), AuditStore: s.audit.Store(), AuditKey: auditKey, Keyring: s.keyring,
		Limits:      api.InputLimits{MaxBody: cfg.MaxBody},
		KeyTTL:      cfg.KeyTTL,
		MaxInFlight: cfg.MaxInFlight, MaxStreamsPerIP: cfg.MaxStreamsPerIP,
		StreamKeep:          api.StreamKeep{Keep: cfg.StreamKeep, MaxBytes: cfg.StreamKeepBytes},
		Block:               cfg.Block,
		Events:              &s.relay,
		MaxRunsPerPrincipal: cfg.MaxRunsPerPrincipal, MaxRunsPerAgent: cfg.MaxRunsPerAgent,
		RateLimit: cfg.RateLimit, TrustedProxies: cfg.TrustedProxies,
		Metrics: metrics.New(),
		Memory:  s.memory,
		// With client certificates configured, the control API needs one.
		ControlNeedsClientCert: cfg.TLSClientCA != "",
		Webhooks:               s.webhooks,
		NodeID:                 cfg.NodeID,
	}
	if loopback {
		// Only loopback names: defeats DNS rebinding from web pages.
		deps.AllowedHost = loopbackHost
	}
	rc, err := openRedis(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if rc != nil {
		// Closed after its users (limits, the cluster bus, sharing), which
		// are closed in the order they were opened, also when Open fails.
		defer func() { s.closers = append(s.closers, func() { rc.Close() }) }()
	}
	if !cfg.NoRateLimit {
		var closeLimiter func()
		deps.Limiter, deps.Runs, closeLimiter = openLimiter(rc, s.log)
		s.closers = append(s.closers, closeLimiter)
	}
	if rc != nil {
		// With Redis, other nodes may hold the runs asked about (cluster.go).
		deps.Cluster, err = s.openCluster(ctx, rc, deps.Metrics)
		if err != nil {
			return nil, err
		}
	}
	if cfg.Auth == AuthKeys {
		if err := bootstrap(ctx, s.store, cfg.Console, time.Now()); err != nil {
			return nil, err
		}
		ac := auth.Config{Store: s.store, Log: s.log.With("log", "security")}
		if cfg.OIDCConfig != "" {
			oc, err := readOIDCConfig(cfg.OIDCConfig)
			if err != nil {
				return nil, err
			}
			if s.oidc, err = oidc.New(ctx, oc, oidc.WithLogger(s.log)); err != nil {
				return nil, fmt.Errorf("--oidc-config: %w", err)
			}
			ac.Tokens = auth.OIDC(s.oidc)
			// The console's sign-in through the issuers that have a
			// console client. Its state cookies are sealed with a key of
			// the shared keyring, so any node can finish a sign-in
			// another started.
			signIn, err := oidc.NewSignIn(s.oidc, s.keyring.MACKey(OIDCStateKeyPurpose))
			if err != nil {
				return nil, fmt.Errorf("--oidc-config: %w", err)
			}
			if len(signIn.Providers()) > 0 {
				deps.OIDCSignIn = signIn
			}
		}
		deps.Auth = auth.New(ac)
		deps.Anonymous = loopback
		// The web console's sign-ins, in the store: every node sees them.
		deps.Sessions = session.New(session.Config{Store: s.store, Idle: cfg.SessionIdle, Absolute: cfg.SessionMax})
	} else {
		if cfg.OIDCConfig != "" {
			return nil, errors.New("--oidc-config needs --auth keys")
		}
		s.log.Warn("authentication is off (--auth none): every request acts as an owner; loopback development only")
	}
	closeSharing, err := s.openSharing(ctx, cfg, rc, &deps)
	if err != nil {
		return nil, err
	}
	s.closers = append(s.closers, closeSharing)
	s.api = api.New(deps)
	tlsCfg, err := s.tlsConfig()
	if err != nil {
		return nil, err
	}
	s.http = &http.Server{
		Handler:           tlsconf.SecurityHeaders(console.Mount(s.api), tlsconf.HeaderOptions{}),
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.tls = tlsCfg != nil
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	// Negative caps: none, connlimit's 0.
	cl := connlimit.Wrap(ln, connlimit.Limits{Total: max(cfg.MaxConns, 0), PerIP: max(cfg.MaxConnsPerIP, 0)})
	s.ln = cl
	registerGauges(deps.Metrics, s.exec, cl)
	if err := s.startNode(ctx); err != nil {
		return nil, err
	}
	s.local.announce(ctx, s.log, cfg.LocalRegistry, s.Addr(), s.reg.Loaded())
	return s, nil
}

// Addr is the address the server listens on (useful with port 0).
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL clients use.
func (s *Server) URL() string {
	if s.tls {
		return "https://" + s.Addr()
	}
	return "http://" + s.Addr()
}

// tlsConfig returns the TLS configuration of cfg, or nil to serve HTTP.
func (s *Server) tlsConfig() (*tls.Config, error) {
	cfg := s.cfg
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		if cfg.TLSClientCA != "" {
			return nil, errors.New("--tls-client-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if cfg.TLSCert == "" || cfg.TLSKey == "" {
		return nil, errors.New("serving TLS needs both --tls-cert and --tls-key")
	}
	src, err := tlsconf.NewReloader(cfg.TLSCert, cfg.TLSKey, tlsconf.WithLogger(s.log))
	if err != nil {
		return nil, err
	}
	if w := src.Warning(); w != "" {
		s.log.Warn(w)
	}
	mode, err := tlsconf.ParseClientAuthMode(cfg.TLSClientAuth)
	if err != nil {
		return nil, err
	}
	return tlsconf.ServerConfig(src, tlsconf.Options{ClientCAFile: cfg.TLSClientCA, ClientAuth: mode})
}

// Handler is the HTTP handler (for in-process benchmarks).
func (s *Server) Handler() http.Handler { return s.api }

// Serve serves until ctx is done, then shuts down gracefully: it stops
// accepting, lets running invocations finish for up to DrainTimeout, then
// stops what is left.
func (s *Server) Serve(ctx context.Context) error {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.bgCancel = cancel
	s.bg.Go(func() { s.retain(bctx, time.Minute) })
	errc := make(chan error, 1)
	go func() {
		if s.tls {
			errc <- s.http.ServeTLS(s.ln, "", "")
			return
		}
		errc <- s.http.Serve(s.ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return s.Shutdown()
}

// Shutdown drains and stops the server.
func (s *Server) Shutdown() error {
	s.log.Info("shutting down: draining running invocations", "timeout", s.cfg.DrainTimeout, "active", s.exec.Active())
	s.api.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	var errs []error
	if err := s.http.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		errs = append(errs, err)
	}
	if err := s.exec.Shutdown(ctx); err != nil {
		s.log.Warn("drain timed out; stopped the remaining invocations")
	}
	_ = s.api.WaitSockets(context.Background())
	_ = s.api.WaitBackground(ctx)
	// Runs that answered are still being torn down; their logs go to the
	// store, which Close shuts after this.
	_ = s.api.WaitTeardown(context.Background())
	s.http.Close()
	return errors.Join(errs...)
}

// Close releases everything Open acquired.
func (s *Server) Close() error {
	var errs []error
	if s.ln != nil {
		s.ln.Close()
	}
	if s.exec != nil {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		s.exec.Shutdown(ctx)
	}
	if s.api != nil {
		_ = s.api.WaitTeardown(context.Background())
	}
	if s.releaseSandbox != nil {
		s.releaseSandbox()
	}
	if s.memory != nil {
		if err := s.memory.Close(); err != nil {
			s.log.Warn("persistent memory: unmounting the stores", "err", err)
		}
	}
	// After the runs (which enqueue) and before the store: pending
	// deliveries stay recorded for the next start.
	s.webhooks.Close()
	if s.bgCancel != nil {
		s.bgCancel()
	}
	s.bg.Wait()
	// After the runs, before the audit trail: a dead node found by a
	// last sweep is still recorded.
	if s.node != nil {
		if err := s.node.stop(); err != nil {
			s.log.Warn("node registry", "err", err)
		}
	}
	if s.audit != nil {
		if err := s.audit.Close(); err != nil {
			s.log.Warn("audit trail: closing", "err", err)
		}
	}
	if s.events != nil {
		if err := s.events.Close(); err != nil {
			s.log.Warn("security events: not all were written before shutdown", "err", err)
		}
	}
	if s.oidc != nil {
		s.oidc.Close()
	}
	for _, c := range s.closers {
		c()
	}
	if s.store != nil {
		errs = append(errs, s.store.Close())
	}
	s.local.close(s.log)
	return errors.Join(errs...)
}

// DataDir is the data directory in use.
func (s *Server) DataDir() string { return s.cfg.DataDir }

// AgentSummary describes a served agent for start-up output.
type AgentSummary struct {
	ID, Name, Tags string
}

// Agents lists the agents loaded at start.
func (s *Server) Agents() []AgentSummary {
	var out []AgentSummary
	for _, d := range s.reg.Loaded() {
		var tags []string
		for _, e := range d.Config.Entrypoints {
			tags = append(tags, e.Tag)
		}
		out = append(out, AgentSummary{ID: d.AgentID, Name: d.Config.AgentName, Tags: strings.Join(tags, ", ")})
	}
	return out
}

// registerGauges exposes the executor's and the listener's state.
func registerGauges(m *metrics.Metrics, ex *executor.Executor, cl *connlimit.Listener) {
	stat := func(f func(executor.Stats) float64) func() float64 {
		return func() float64 { return f(ex.Stats()) }
	}
	m.Gauge("runagent_invocations_running", "Invocations running now.", stat(func(s executor.Stats) float64 { return float64(s.Running) }))
	m.Gauge("runagent_pool_ready_sandboxes", "Warm sandboxes ready to serve.", stat(func(s executor.Stats) float64 { return float64(s.Ready) }))
	m.Gauge("runagent_pool_starting_sandboxes", "Warm sandboxes being started.", stat(func(s executor.Stats) float64 { return float64(s.Starting) }))
	m.Gauge("runagent_kept_sandboxes", "Sandboxes kept for a user_id's next call.", stat(func(s executor.Stats) float64 { return float64(s.Kept) }))
	m.Counter("runagent_pool_hits_total", "Runs served by a warm sandbox.", stat(func(s executor.Stats) float64 { return float64(s.Hits) }))
	m.Counter("runagent_pool_misses_total", "Runs that cold started.", stat(func(s executor.Stats) float64 { return float64(s.Misses) }))
	m.Counter("runagent_sandbox_starts_total", "Warm sandboxes started.", stat(func(s executor.Stats) float64 { return float64(s.Refills) }))
	m.Counter("runagent_sandbox_forks_total", "Sandboxes forked from a template of their agent version (the fork server).", stat(func(s executor.Stats) float64 { return float64(s.Forked) }))
	m.Gauge("runagent_sandbox_templates", "Fork servers running: one per agent version whose runs are forked.", stat(func(s executor.Stats) float64 { return float64(s.Templates) }))
	m.Gauge("runagent_pool_target_sandboxes", "Warm sandboxes wanted (ready or starting), summed over agent versions; each version's follows its arrival rate.", stat(func(s executor.Stats) float64 { return float64(s.Target) }))
	m.Gauge("runagent_pool_budget_sandboxes", "Warm sandboxes the pool memory budget allows, all versions together.", stat(func(s executor.Stats) float64 { return float64(s.PoolBudget) }))
	m.Gauge("runagent_pool_sandbox_memory_bytes", "Memory one warm sandbox is taken to use (measured when the backend can, else the configured estimate).", stat(func(s executor.Stats) float64 { return float64(s.SandboxMemory) }))
	m.Counter("runagent_pool_trimmed_total", "Ready warm sandboxes destroyed as demand fell.", stat(func(s executor.Stats) float64 { return float64(s.Trimmed) }))
	m.Gauge("runagent_invocations_queued", "Invocations waiting for a free slot (all --max-concurrent running).", stat(func(s executor.Stats) float64 { return float64(s.Queued) }))
	m.Counter("runagent_invocations_queued_total", "Invocations that had to wait for a free slot.", stat(func(s executor.Stats) float64 { return float64(s.QueuedTotal) }))
	m.Counter("runagent_invocations_refused_after_wait_total", "Invocations refused (503) after waiting as long as they could for a slot.", stat(func(s executor.Stats) float64 { return float64(s.QueueRefused) }))
	m.Counter("runagent_invocations_refused_queue_full_total", "Invocations refused (503) at once: every slot taken and the queue full (or no queue).", stat(func(s executor.Stats) float64 { return float64(s.QueueFull) }))
	m.Counter("runagent_invocations_queue_cancelled_total", "Invocations whose caller went away while they waited for a slot.", stat(func(s executor.Stats) float64 { return float64(s.QueueCancelled) }))
	m.HistogramFunc("runagent_invocation_queue_wait_seconds", "Time invocations waited for a free slot, admitted or refused.", executor.QueueWaitBuckets,
		func() (uint64, float64, []uint64) {
			h := ex.Stats().QueueWait
			return h.Count, h.Sum, h.Buckets
		})
	m.Counter("runagent_connections_refused_total", "Connections closed on accept by the connection caps.", func() float64 { return float64(cl.Refused()) })
	m.Gauge("runagent_connections_open", "Connections open now.", func() float64 {
		total, _ := cl.Open(netip.Addr{})
		return float64(total)
	})
}

// auditor is the API's audit trail (none for a noAudit benchmark).
func (s *Server) auditor() api.Auditor {
	if s.cfg.noAudit {
		return nil
	}
	return s.audit
}

// importDotEnv sets the variables of dir's .env file, if it has one, as
// the agent's secrets (the file is never part of the deployed code).
func (s *Server) importDotEnv(ctx context.Context, dir, agentID string) error {
	vars, err := dotenv.Read(filepath.Join(dir, dotenv.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("agent secrets: %w", err)
	}
	for name, v := range vars {
		if err := s.store.PutSecret(ctx, &core.Secret{AgentID: agentID, Name: name, UpdatedBy: "serve:" + dotenv.Name}, v); err != nil {
			return fmt.Errorf("agent secrets from %s: %s: %w", filepath.Join(dir, dotenv.Name), name, err)
		}
	}
	s.log.Info("agent secrets imported from .env", "agent_id", agentID, "count", len(vars))
	return nil
}
