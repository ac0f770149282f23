package server

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/events"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/pyenv"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/sandbox"
)

// Config is the server's configuration. A zero field stands for its
// default, which WithDefaults fills in; the exceptions, where zero means
// something of its own, say so.
type Config struct {
	Addr      string   // listen address; default DefaultAddr
	DataDir   string   // database, unpacked agent code, runtime files; default DefaultDataDir
	AgentDirs []string // agent projects deployed at start
	// Python names the interpreters agents run with, in --python's
	// syntax (ParsePythons): a path, or name=path entries separated by
	// commas ("3.11=/usr/bin/python3.11,3.12=/opt/py/bin/python3"), the
	// first the default. Default: DefaultSandboxPython for the linux
	// sandbox, python3 on PATH otherwise.
	Python string
	Exe    string // binary that serves the __supervisor role; default this one
	// Sandbox names the backend: SandboxLinux (default) or SandboxProcess.
	Sandbox string
	// PackageIndexes are the PEP 503 indexes agents' dependencies come
	// from, the first primary; they may hold credentials (read from a
	// file or the environment, never argv). FindLinks are folders of
	// wheels on this server. BuildTimeout bounds one environment build
	// (default pyenv.DefaultBuildTimeout).
	PackageIndexes []string
	FindLinks      []string
	BuildTimeout   time.Duration
	// Backend, when set, is used instead of the named one (tests).
	Backend sandbox.Backend

	MaxBody int64 // request body cap; default api.DefaultMaxBody
	// MaxConcurrent is the invocations running at once (default
	// executor.DefaultMaxConcurrent); more wait in a fair queue, at most
	// QueueMax of them (default executor.DefaultQueuePerSlot per
	// MaxConcurrent) for at most QueueWait each (default
	// executor.DefaultQueueWait; negative: no queue), then get 503.
	MaxConcurrent int
	QueueWait     time.Duration
	QueueMax      int
	// StreamKeep is how long a finished stream's events stay for clients
	// to rejoin it (default api.DefaultStreamKeep; negative: none are kept
	// and no stream can be rejoined), StreamKeepBytes the most kept of one stream (default
	// api.DefaultStreamKeepBytes: older events are dropped first).
	StreamKeep      time.Duration
	StreamKeepBytes int
	// PoolSize is the least warm sandboxes kept per agent version in use
	// (default executor.DefaultPoolSize; negative: none); above it the
	// pool follows the version's arrival rate up to PoolMax (default
	// executor.DefaultPoolMax, at most MaxConcurrent), all pools together
	// within PoolMemoryMB MiB (default executor.DefaultPoolMemory), each
	// sandbox costing what it reports or SandboxMemoryMB MiB (default
	// executor.DefaultSandboxMemory). PoolIdle is how long a pool waits
	// unused before its sandboxes go.
	PoolSize        int
	PoolMax         int
	PoolMemoryMB    int64
	SandboxMemoryMB int64
	PoolIdle        time.Duration
	// NoForkServer starts a sandbox (a Python and its supervisor) for
	// every run. By default the linux backend forks each run from a
	// template of its agent version that imported the agent once
	// (executor.Config.Fork).
	NoForkServer bool
	// ReuseMax is the sandboxes kept per user_id for reuse_per_user agents
	// (default executor.DefaultReuseMax; negative: none), ReuseIdle how
	// long one waits unused before it goes.
	ReuseMax       int
	ReuseIdle      time.Duration
	DefaultTimeout time.Duration // per-invocation wall clock when the agent sets none
	MaxTimeout     time.Duration // cap on any invocation
	DrainTimeout   time.Duration // how long shutdown waits for running invocations

	// Auth is AuthKeys (default) or AuthNone (loopback only).
	Auth string
	// TLSCert and TLSKey serve HTTPS (reloaded when the files change);
	// TLSClientCA verifies client certificates (TLSClientAuth "optional",
	// the default, or "require"). Empty: no TLS.
	TLSCert, TLSKey, TLSClientCA, TLSClientAuth string
	// KeyTTL is the default lifetime of new API keys.
	KeyTTL time.Duration
	// SessionIdle ends a console session not used for that long;
	// SessionMax ends it that long after sign-in however used (zero:
	// session.DefaultIdle, session.DefaultAbsolute). Open refuses
	// lifetimes session.CheckLifetimes refuses.
	SessionIdle, SessionMax time.Duration
	// Connection and load caps: connections open at once in total and
	// per client address (negative: no cap), requests handled at once
	// (more get a fast 503), streams open per client address (more get
	// 429).
	MaxConns, MaxConnsPerIP, MaxInFlight, MaxStreamsPerIP int
	// MaxRunsPerPrincipal and MaxRunsPerAgent cap running invocations
	// per principal (or address) and per agent.
	MaxRunsPerPrincipal, MaxRunsPerAgent int
	// Block configures temporary blocks of client addresses that keep
	// failing authentication (Block.After negative: never block).
	Block api.BlockPolicy
	// RateLimit is the request limit per principal (and per client address
	// for requests without one); default ratelimit.DefaultLimit, 100 per
	// minute. NoRateLimit turns it off. RedisURL shares limits, temporary
	// blocks and notices of deploys and key rotations between nodes
	// through Redis (empty: limits and blocks per node; share.go), and
	// carries the cluster bus by which cancels, stream rejoins and waits
	// reach runs on other nodes (cluster.go), with or without NoRateLimit.
	RateLimit   ratelimit.Limit
	NoRateLimit bool
	RedisURL    string
	// StoreURL is the PostgreSQL database (postgres://…) the server keeps
	// its state in, which several nodes may share; empty: SQLite at
	// <data dir>/runagent.db. With it every run reads its agent's current
	// version from the store and the keyring follows rotations made by
	// other nodes (share.go).
	StoreURL string
	// NodeID names this node in the node registry and in the invocations
	// it runs (core.CheckNodeID); empty: the id kept in <data dir>/node-id
	// (LoadNodeID), made from the host name at the first start.
	// NodeTimeout is how long its heartbeat may be missing before another
	// node declares it dead and fails its runs; default DefaultNodeTimeout,
	// at least MinNodeTimeout.
	NodeID      string
	NodeTimeout time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// WebhookAllowPrefixes are internal addresses (private, loopback,
	// link-local, …) completion webhooks may reach, which they otherwise
	// never do; IP-literal targets in them need no egress rule. Empty
	// (the default): none, as for agents' own egress.
	WebhookAllowPrefixes []netip.Prefix
	// SecurityLog is the JSON-lines file of security events (default
	// <data dir>/security.jsonl); they also go to the store. AlertRules
	// override the alert thresholds ("auth_failure=20/5m", "suspicious=off";
	// none: events.DefaultRules); AlertCooldown is the least time between
	// two alerts for one rule and source. AlertWebhookURL receives alerts
	// signed with the secret in AlertWebhookSecretFile (empty: no webhook).
	SecurityLog                             string
	AlertRules                              []string
	AlertCooldown                           time.Duration
	AlertWebhookURL, AlertWebhookSecretFile string
	// OIDCConfig names a JSON file of OIDC/OAuth 2.0 token issuers whose
	// JWT access tokens are accepted besides API keys (empty: none).
	OIDCConfig string
	// Console receives what only the operator may see once (a generated
	// owner key); nil writes nothing, so set $RUNAGENT_BOOTSTRAP_KEY_FILE.
	Console io.Writer
	// Keyring says where the master key that encrypts data at rest comes
	// from (default: <data dir>/master.key, generated at the first start).
	Keyring KeyringConfig
	// Retention is how long each class of data is kept; the server
	// purges what is older every hour. Zero keeps everything (`runagent
	// serve` passes DefaultRetention unless told otherwise).
	Retention Retention
	// Memory configures agents' persistent memory (memory.go).
	Memory MemoryConfig
	// noAudit serves without the audit middleware: only for benchmarks
	// that measure what the middleware costs (never settable outside).
	noAudit bool
	// LocalRegistry is RunAgent's local registry file, where the agents
	// are registered for the SDKs in local mode; default
	// localreg.DefaultPath, LocalRegistryOff for none.
	LocalRegistry string

	Version string
	Log     *slog.Logger // default: discard
}

// Defaults of the server's own settings; the rest come from the parts
// they configure (api, executor, ratelimit, events).
const (
	// DefaultAddr is where `runagent serve` listens unless told otherwise
	// (RunAgent's local port).
	DefaultAddr          = "127.0.0.1:8450"
	DefaultDrainTimeout  = 30 * time.Second
	DefaultMaxConns      = 4096
	DefaultMaxConnsPerIP = 128
	DefaultTLSClientAuth = "optional"
	// securityLogName is the security log's file in the data directory.
	securityLogName = "security.jsonl"
)

// ErrNoDataDir: no data directory is configured and none can be found.
var ErrNoDataDir = errors.New("no data directory: set --data-dir or $RUNAGENT_DATA_DIR (this user has no config directory)")

// DefaultDataDir is the data directory used when none is configured:
// $RUNAGENT_DATA_DIR, else runagent/ under the user's config directory.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("RUNAGENT_DATA_DIR"); d != "" {
		return d, nil
	}
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find a data directory (set --data-dir or RUNAGENT_DATA_DIR): %w", err)
	}
	return filepath.Join(base, "runagent"), nil
}

// WithDefaults returns c with every zero field that stands for a default
// set to it: the configuration a server runs with. It is the one place
// the server's settings get their defaults; Open calls it, and what Open
// hands the API, the executor and the listener is already complete.
// Negative sizes and durations take the default too, except where the
// field says negative turns something off. (The one setting left out is
// the master key file, which depends on whether a passphrase is given:
// OpenKeyring, shared with the offline tools, chooses it.)
//
// DataDir stays empty when there is no $RUNAGENT_DATA_DIR and no user
// config directory, and Exe when this binary cannot be found: Open
// refuses both.
func (c Config) WithDefaults() Config {
	c.Addr = cmp.Or(c.Addr, DefaultAddr)
	if c.DataDir == "" {
		c.DataDir, _ = DefaultDataDir()
	}
	c.Sandbox = cmp.Or(c.Sandbox, SandboxLinux)
	c.BuildTimeout = cmp.Or(c.BuildTimeout, pyenv.DefaultBuildTimeout)
	if c.Python == "" {
		c.Python = "python3" // on PATH
		if c.Sandbox == SandboxLinux && c.Backend == nil {
			c.Python = DefaultSandboxPython
		}
	}
	if c.Exe == "" {
		c.Exe, _ = os.Executable()
	}
	c.MaxBody = positiveOr(c.MaxBody, api.DefaultMaxBody)
	c.MaxConcurrent = positiveOr(c.MaxConcurrent, executor.DefaultMaxConcurrent())
	c.QueueWait = cmp.Or(c.QueueWait, executor.DefaultQueueWait)
	c.QueueMax = positiveOr(c.QueueMax, executor.DefaultQueuePerSlot*c.MaxConcurrent)
	c.StreamKeep = cmp.Or(c.StreamKeep, api.DefaultStreamKeep)
	c.StreamKeepBytes = positiveOr(c.StreamKeepBytes, api.DefaultStreamKeepBytes)
	c.PoolSize = cmp.Or(c.PoolSize, executor.DefaultPoolSize)
	c.PoolMax = positiveOr(c.PoolMax, executor.DefaultPoolMax)
	c.PoolMemoryMB = positiveOr(c.PoolMemoryMB, executor.DefaultPoolMemory>>20)
	c.SandboxMemoryMB = positiveOr(c.SandboxMemoryMB, executor.DefaultSandboxMemory>>20)
	c.PoolIdle = positiveOr(c.PoolIdle, executor.DefaultPoolIdle)
	c.ReuseMax = cmp.Or(c.ReuseMax, executor.DefaultReuseMax)
	c.ReuseIdle = positiveOr(c.ReuseIdle, executor.DefaultReuseIdle)
	c.DefaultTimeout = positiveOr(c.DefaultTimeout, executor.DefaultRunTimeout)
	c.MaxTimeout = positiveOr(c.MaxTimeout, executor.DefaultMaxTimeout)
	c.DrainTimeout = positiveOr(c.DrainTimeout, DefaultDrainTimeout)
	c.Auth = cmp.Or(c.Auth, AuthKeys)
	c.TLSClientAuth = cmp.Or(c.TLSClientAuth, DefaultTLSClientAuth)
	c.KeyTTL = positiveOr(c.KeyTTL, api.DefaultKeyTTL)
	c.SessionIdle = cmp.Or(c.SessionIdle, session.DefaultIdle)
	c.SessionMax = cmp.Or(c.SessionMax, session.DefaultAbsolute)
	c.MaxConns = cmp.Or(c.MaxConns, DefaultMaxConns)
	c.MaxConnsPerIP = cmp.Or(c.MaxConnsPerIP, DefaultMaxConnsPerIP)
	c.MaxInFlight = positiveOr(c.MaxInFlight, api.DefaultMaxInFlight)
	c.MaxStreamsPerIP = positiveOr(c.MaxStreamsPerIP, api.DefaultMaxStreamsPerIP)
	c.MaxRunsPerPrincipal = positiveOr(c.MaxRunsPerPrincipal, api.DefaultMaxRunsPerPrincipal)
	c.MaxRunsPerAgent = positiveOr(c.MaxRunsPerAgent, api.DefaultMaxRunsPerAgent)
	c.Block.After = cmp.Or(c.Block.After, api.DefaultBlock.After)
	c.Block.Window = positiveOr(c.Block.Window, api.DefaultBlock.Window)
	c.Block.For = positiveOr(c.Block.For, api.DefaultBlock.For)
	if c.RateLimit == (ratelimit.Limit{}) {
		c.RateLimit = ratelimit.DefaultLimit
	}
	if c.SecurityLog == "" && c.DataDir != "" {
		c.SecurityLog = filepath.Join(c.DataDir, securityLogName)
	}
	// Negative: events.New refuses it.
	c.AlertCooldown = cmp.Or(c.AlertCooldown, events.DefaultCooldown)
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	c.Memory = c.Memory.withDefaults()
	c.NodeTimeout = positiveOr(c.NodeTimeout, DefaultNodeTimeout)
	return c
}

// positiveOr returns v, or def when v is not positive.
func positiveOr[T int | int64 | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Effective is the configuration a server would run with, for `runagent
// serve --print-config`: c with its defaults (WithDefaults), every secret
// redacted (a password in a URL, a passphrase), files named by path only,
// and the alert rules in force (the defaults with AlertRules applied).
func (c Config) Effective() map[string]any {
	c = c.WithDefaults()
	dur := func(d time.Duration) string {
		if d == 0 {
			return "off"
		}
		return d.String()
	}
	m := map[string]any{
		"addr": c.Addr, "data_dir": c.DataDir, "agent_dirs": c.AgentDirs, "sandbox": c.Sandbox, "python": pythons(c.Python),
		"auth": c.Auth, "tls_cert": c.TLSCert, "tls_key": c.TLSKey, "tls_client_ca": c.TLSClientCA, "tls_client_auth": c.TLSClientAuth,
		"oidc_config": c.OIDCConfig, "key_ttl": c.KeyTTL.String(),
		"session_idle": c.SessionIdle.String(), "session_max": c.SessionMax.String(),
		"max_body": c.MaxBody, "max_concurrent": c.MaxConcurrent, "queue_wait": dur(max(c.QueueWait, 0)), "queue_max": c.QueueMax,
		"stream_keep": dur(c.StreamKeep), "stream_keep_bytes": c.StreamKeepBytes,
		"pool_size": c.PoolSize, "pool_max": c.PoolMax, "pool_memory_mb": c.PoolMemoryMB, "sandbox_memory_mb": c.SandboxMemoryMB,
		"pool_idle": c.PoolIdle.String(), "fork_server": !c.NoForkServer,
		"reuse_max": c.ReuseMax, "reuse_idle": c.ReuseIdle.String(), "timeout": c.DefaultTimeout.String(),
		"max_timeout": c.MaxTimeout.String(), "drain_timeout": c.DrainTimeout.String(),
		"max_conns": c.MaxConns, "max_conns_per_ip": c.MaxConnsPerIP, "max_inflight": c.MaxInFlight, "max_streams_per_ip": c.MaxStreamsPerIP,
		"max_runs_per_principal": c.MaxRunsPerPrincipal, "max_runs_per_agent": c.MaxRunsPerAgent,
		"block_after": c.Block.After, "block_window": c.Block.Window.String(), "block_for": c.Block.For.String(),
		"redis_url": RedactURL(c.RedisURL), "store": storeName(c), "security_log": c.SecurityLog, "alert_rules": alertRules(c.AlertRules),
		"alert_cooldown": c.AlertCooldown.String(), "alert_webhook": RedactURL(c.AlertWebhookURL),
		"alert_webhook_secret_file": c.AlertWebhookSecretFile,
		"package_indexes":           redactAll(c.PackageIndexes), "find_links": nonNil(c.FindLinks), "build_timeout": c.BuildTimeout.String(),
		"retain_invocations": dur(c.Retention.Invocations), "retain_events": dur(c.Retention.Events), "retain_audit": dur(c.Retention.Audit),
		"retain_memory": dur(c.Retention.Memory),
		"memory":        c.Memory.Mode, "memory_default_mb": c.Memory.DefaultMB, "memory_max_mb": c.Memory.MaxMB,
		"memory_max_files": c.Memory.MaxFiles, "memory_dir": c.Memory.dir(c.DataDir), "memory_plaintext": map[bool]string{false: "refused", true: "accepted where fscrypt is missing"}[c.Memory.Plaintext],
	}
	m["node_id"], m["node_timeout"] = c.NodeID, c.NodeTimeout.String()
	if c.NodeID == "" {
		m["node_id"] = "kept in " + filepath.Join(c.DataDir, NodeIDName)
	}
	if c.NoRateLimit {
		m["rate_limit"] = "off"
	} else {
		m["rate_limit"] = c.RateLimit.String()
	}
	var proxies []string
	for _, p := range c.TrustedProxies {
		proxies = append(proxies, p.String())
	}
	m["trusted_proxies"] = proxies
	var hookPrefixes []string
	for _, p := range c.WebhookAllowPrefixes {
		hookPrefixes = append(hookPrefixes, p.String())
	}
	m["webhook_allow_cidrs"] = hookPrefixes
	k := KeyringFromEnv(c.Keyring)
	switch {
	case k.MasterKey != "":
		m["master_key"] = "key from $" + MasterKeyEnv + " [redacted]"
	case k.MasterPassphrase != "":
		m["master_key"] = "passphrase from $" + MasterPassphraseEnv + " [redacted]"
	case k.MasterPassphraseFile != "":
		m["master_key"] = "passphrase in " + k.MasterPassphraseFile
	case k.MasterKeyFile != "":
		m["master_key"] = "key file " + k.MasterKeyFile
	default:
		m["master_key"] = "key file " + c.DataDir + "/" + MasterKeyName
	}
	if os.Getenv(BootstrapKeyEnv) != "" {
		m["bootstrap_key_file"] = os.Getenv(BootstrapKeyEnv)
	}
	return m
}

// pythons are the interpreters spec names, each as name=path (or its
// path alone, named at start by its version), the default first; spec as
// it is if it does not parse (Open refuses it).
func pythons(spec string) []string {
	specs, err := ParsePythons(spec)
	if err != nil {
		return []string{spec}
	}
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.String()
	}
	return out
}

// alertRules are the alert rules specs give, written as events.ParseRule
// reads them; specs as they are if they do not parse (Open refuses them).
func alertRules(specs []string) []string {
	rules, err := events.ParseRules(specs)
	if err != nil {
		return specs
	}
	out := make([]string, len(rules))
	for i, r := range rules {
		out[i] = r.String()
	}
	return out
}

// RedactURL hides a URL's password (and any query, which may hold a
// token): what may be logged or printed of it.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable URL redacted]"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "REDACTEDPASSWORD0")
	}
	if u.RawQuery != "" {
		u.RawQuery = "redacted"
	}
	return strings.Replace(u.String(), "REDACTEDPASSWORD0", "[redacted]", 1)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// redactAll is RedactURL of each URL ([] for none).
func redactAll(urls []string) []string {
	out := []string{}
	for _, u := range urls {
		out = append(out, RedactURL(u))
	}
	return out
}

// URLHasPassword reports whether s is a URL carrying a password.
func URLHasPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}
