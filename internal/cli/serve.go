package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/runagent/runagent/internal/auth/session"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/ratelimit"
	"github.com/runagent/runagent/internal/server"
)

func (e *env) serveCmd() *cobra.Command {
	var (
		cfg          server.Config
		logLevel     string
		logJSON      bool
		rate         string
		proxies      []string
		retain       retentionFlags
		redis        redisFlags
		store        storeFlags
		indexFile    string
		printConfig  bool
		host, port   string
		reload       bool
		forkServer   bool
		retainMemory string
		webhookCIDRs []string
	)
	cmd := &cobra.Command{
		Use:   "serve [agent-dir...]",
		Short: "Serve agents over the RunAgent API",
		Long: `serve hosts any number of agents in one process. Each directory given is
deployed at start (packaged and stored as a content-addressed version);
with none given, "." is deployed when it holds a runagent.config.json. Agents
deployed earlier with 'runagent deploy' are served too. --reload
redeploys the directories given whenever their files change.

serve listens on 127.0.0.1:8450 unless --addr (or --host/--port) says
otherwise; when that default port is taken it moves to the first free
one up to 8500 and says so. A port asked for that is taken is an error.

Every invocation runs in its own sandbox (below); a run that passes its
deadline is killed with everything it started. On SIGINT/SIGTERM the
server stops accepting, lets running invocations finish (--drain-timeout),
then exits; a second Ctrl-C stops them at once.

Data at rest: agent secrets and invocation payloads (inputs, outputs,
logs, error messages) are encrypted (AES-256-GCM) with data keys wrapped
by a master key. The first start writes a random master key to
<data dir>/master.key (mode 0600) and says so: back it up, apart from the
database. --master-key-file (or $RUNAGENT_MASTER_KEY_FILE) names another
file; $RUNAGENT_MASTER_KEY holds the key itself (a key file's contents,
for nodes given it as a secret in their environment);
$RUNAGENT_MASTER_PASSPHRASE or $RUNAGENT_MASTER_PASSPHRASE_FILE use a
passphrase instead (Argon2id). A wrong key refuses to start.

One server per data directory: a second serve on it is refused, naming
the running one. Served agents are recorded in RunAgent's local registry
(--local-registry), where its SDKs in local mode find their address.

Authentication (--auth keys, the default): every route but health needs
an API key (Authorization: Bearer <key>; ?token=<key> on the WebSocket
route). A fresh server creates its first owner key and prints it once, or
stores the one in the file $RUNAGENT_BOOTSTRAP_KEY_FILE names; create
projects and narrower keys with 'runagent keys'. On a loopback address,
agents whose auth_settings.type is "none" may also be called without a
key (local development). --auth none (loopback only) serves everyone as
an owner. A non-loopback address needs authentication and should have
TLS (--tls-cert/--tls-key, reloaded when the files change).

The linux sandbox (the default) gives every invocation its own user,
mount, PID, network, IPC and UTS namespaces, a read-only root with the
agent's code read-only and a size-capped scratch /tmp, cgroup limits on
CPU, memory and processes, rlimits, a seccomp filter and landlock; agents
reach the network only through the egress proxy, and only the hosts their
config allows. If the host cannot provide this, serve refuses to start and
says why (see 'runagent doctor'); --sandbox process runs agents with no
isolation at all, for development.

Interpreters: --python names the Python agents run with. Several may be
named, each by its major.minor version, the first the default:
--python 3.11=/usr/bin/python3.11,3.12=/usr/local/bin/python3.12. An agent
chooses one in its runagent.config.json ("runtime": {"python": "3.12"}, or
RunAgent's "metadata": {"runtime": "python3.12"}); its environment is
built and load-checked with that interpreter, and a deploy naming one the
server lacks is refused with the list of those it has. Every interpreter
must run and be Python 3.8 or newer; the linux sandbox shows agents only
the host's system directories, so its interpreters must live there.`,
		Example: `  runagent serve ./my-agent
  runagent serve ./agent-a ./agent-b --addr 127.0.0.1:9000
  RUNAGENT_DATA_DIR=/var/lib/runagent runagent serve`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return fmt.Errorf("--log-level: %w (use debug, info, warn or error)", err)
			}
			opts := &slog.HandlerOptions{Level: level}
			if logJSON {
				cfg.Log = slog.New(slog.NewJSONHandler(e.stderr, opts))
			} else {
				cfg.Log = slog.New(slog.NewTextHandler(e.stderr, opts))
			}
			cfg.AgentDirs = defaultAgentDirs(args)
			cfg.Version = Version
			cfg.Console = e.stderr
			cfg.Keyring = server.KeyringFromEnv(cfg.Keyring)
			var err error
			if cfg.Addr, err = listenAddr(cfg.Addr, host, port, cmd.Flags().Changed("addr")); err != nil {
				return err
			}
			if !cmd.Flags().Changed("addr") && !cmd.Flags().Changed("port") && os.Getenv("RUNAGENT_ADDR") == "" && !printConfig {
				var moved bool
				if cfg.Addr, moved = freePort(cfg.Addr); moved {
					fmt.Fprintf(e.stderr, "Port %d is in use: serving on %s instead (--port chooses one).\n", defaultPort, cfg.Addr)
				}
			}
			if rate == "off" {
				cfg.NoRateLimit = true
			} else if cfg.RateLimit, err = ratelimit.ParseLimit(rate); err != nil {
				return fmt.Errorf("--rate-limit: %w", err)
			}
			if cfg.TrustedProxies, err = server.ParsePrefixes(proxies); err != nil {
				return fmt.Errorf("--trusted-proxy: %w", err)
			}
			if cfg.WebhookAllowPrefixes, err = server.ParsePrefixes(webhookCIDRs); err != nil {
				return fmt.Errorf("--webhook-allow-cidr: %w", err)
			}
			if cfg.Retention, err = retain.parse(); err != nil {
				return err
			}
			if cfg.Retention.Memory, err = server.ParseRetention(retainMemory); err != nil {
				return fmt.Errorf("--retain-memory: %w", err)
			}
			if cfg.StoreURL, err = store.resolve(); err != nil {
				return err
			}
			if cfg.RedisURL, err = redis.resolve(); err != nil {
				return err
			}
			if err := packageIndexes(cmd, &cfg, indexFile); err != nil {
				return err
			}
			if cfg.Python != "" {
				if _, err := server.ParsePythons(cfg.Python); err != nil {
					return fmt.Errorf("--python: %w", err)
				}
			}
			cfg.NoForkServer = !forkServer
			eff := cfg.WithDefaults()
			if err := session.CheckLifetimes(eff.SessionIdle, eff.SessionMax); err != nil {
				return err
			}
			if printConfig {
				if cfg.WithDefaults().DataDir == "" {
					return server.ErrNoDataDir
				}
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(cfg.Effective())
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if len(cfg.AgentDirs) > 0 {
				fmt.Fprintf(e.stderr, "Deploying %d agent(s)…\n", len(cfg.AgentDirs))
			}
			srv, err := server.Open(ctx, cfg)
			if err != nil {
				return err
			}
			defer srv.Close()
			fmt.Fprintf(e.stderr, "runagent %s serving on %s (data: %s)\n", Version, srv.URL(), srv.DataDir())
			for _, a := range srv.Agents() {
				fmt.Fprintf(e.stderr, "  agent %s  %s  entrypoints: %s\n", a.ID, a.Name, a.Tags)
			}
			switch {
			case reload && len(cfg.AgentDirs) > 0:
				fmt.Fprintf(e.stderr, "Reload: watching %s for changes.\n", strings.Join(cfg.AgentDirs, ", "))
				go e.watchAgentDirs(ctx, srv, cfg.AgentDirs, time.Second)
			case reload:
				fmt.Fprintf(e.stderr, "Reload: no agent directory given, nothing to watch.\n")
			}
			fmt.Fprintf(e.stderr, "Press Ctrl+C to stop.\n")
			served := make(chan struct{})
			defer close(served)
			go e.hurryOnSecondSignal(ctx, stop, served, srv)
			return srv.Serve(ctx)
		},
	}
	// Flags default to what a zero field would become, so that --help
	// shows the values in force.
	def := server.Config{}.WithDefaults()
	f := cmd.Flags()
	f.StringVar(&cfg.Addr, "addr", getenv("RUNAGENT_ADDR", def.Addr), "listen address (a non-loopback address needs --auth keys, and TLS is advised) [$RUNAGENT_ADDR]")
	f.StringVar(&host, "host", "", "listen host, in place of --addr's (RunAgent's flag)")
	f.StringVar(&port, "port", "", fmt.Sprintf("listen port, in place of --addr's (RunAgent's flag); without one, a taken %d moves to the first free port up to %d", defaultPort, lastAutoPort))
	f.BoolVar(&reload, "reload", false, "development: redeploy an agent directory given to serve when its files change (checked every second; the old version keeps serving if the new one fails)")
	f.StringVar(&cfg.Auth, "auth", getenv("RUNAGENT_AUTH", def.Auth), "authentication: keys (API keys required; auth-none agents callable without one on loopback) or none (loopback only: everyone is an owner) [$RUNAGENT_AUTH]")
	f.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) to serve HTTPS with; reloaded when it changes")
	f.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&cfg.TLSClientCA, "tls-client-ca", "", "PEM CA certificates that client certificates (mTLS) are verified against; the control API (keys, projects, deploy) then requires one")
	f.StringVar(&cfg.TLSClientAuth, "tls-client-auth", def.TLSClientAuth, "with --tls-client-ca: optional (verify certificates clients present) or require (refuse clients without one)")
	f.StringVar(&cfg.OIDCConfig, "oidc-config", "", `JSON file of OIDC/OAuth 2.0 issuers whose JWT access tokens are accepted: {"issuers": [{"issuer": "https://…", "audiences": ["…"], "project_claim": "…", "role_claim": "…"}]}; an issuer with "console": {"client_id": "…", "redirect_url": "https://<this server>/api/v1/session/oidc/callback", "client_secret_file": "…", "name": "…"} is offered on the web console's sign-in page (docs/api.md)`)
	f.DurationVar(&cfg.KeyTTL, "key-ttl", def.KeyTTL, "default lifetime of new API keys")
	f.DurationVar(&cfg.SessionIdle, "session-idle", def.SessionIdle, "end a web console session not used for this long (more than 0, at most --session-max)")
	f.DurationVar(&cfg.SessionMax, "session-max", def.SessionMax, "end a web console session this long after sign-in however it is used (at most 720h: 30 days)")
	f.StringVar(&cfg.Keyring.MasterKeyFile, "master-key-file", "", "file holding the master key that encrypts data at rest [$RUNAGENT_MASTER_KEY_FILE, default <data dir>/master.key, created at the first start]")
	f.StringVar(&cfg.Keyring.MasterPassphraseFile, "master-passphrase-file", "", "derive the master key from the passphrase in this file (Argon2id) instead of a key file [$RUNAGENT_MASTER_PASSPHRASE_FILE; or the passphrase itself in $RUNAGENT_MASTER_PASSPHRASE]")
	f.StringVar(&cfg.DataDir, "data-dir", "", "data directory for the database and agent code [$RUNAGENT_DATA_DIR, default <user config dir>/runagent]")
	f.StringVar(&cfg.Sandbox, "sandbox", getenv("RUNAGENT_SANDBOX", def.Sandbox), "sandbox backend: linux (isolated; refuses to start where the host cannot isolate) or process (NO isolation, development only) [$RUNAGENT_SANDBOX]")
	f.StringVar(&cfg.LocalRegistry, "local-registry", getenv("RUNAGENT_LOCAL_REGISTRY", ""), "RunAgent's local registry, where the served agents' address is recorded for the SDKs in local mode, or off [$RUNAGENT_LOCAL_REGISTRY, default $RUNAGENT_CACHE_DIR/runagent_local.db or ~/.runagent/runagent_local.db]")
	f.StringVar(&cfg.Python, "python", getenv("RUNAGENT_PYTHON", ""), "Python interpreter(s) that run agents: a path, or name=path entries separated by commas (3.11=/usr/bin/python3.11,3.12=/opt/py/bin/python3), the first the default; a name is a major.minor version, which agents choose with runtime.python or metadata.runtime; the linux sandbox runs only interpreters under /usr, /bin or /lib (default: "+server.DefaultSandboxPython+" for the linux sandbox, python3 on PATH for process) [$RUNAGENT_PYTHON]")
	f.Int64Var(&cfg.MaxBody, "max-body", def.MaxBody, "largest accepted request body in bytes")
	f.IntVar(&cfg.PoolSize, "pool-size", def.PoolSize, "least warm sandboxes kept ready per agent version in use, each serving one invocation; above it the pool follows the version's arrival rate (-1 = no pool; 0 = the default)")
	f.IntVar(&cfg.PoolMax, "pool-max", def.PoolMax, "most warm sandboxes (ready or starting) per agent version however high its arrival rate; at most --max-concurrent, at least --pool-size (= --pool-size: a fixed pool)")
	f.Int64Var(&cfg.PoolMemoryMB, "pool-memory-mb", def.PoolMemoryMB, "MiB of memory all warm sandboxes together may use; refills stop there")
	f.Int64Var(&cfg.SandboxMemoryMB, "sandbox-memory-mb", def.SandboxMemoryMB, "MiB one warm sandbox is taken to use, for --pool-memory-mb, when the sandbox backend cannot measure it")
	f.BoolVar(&forkServer, "fork-server", !def.NoForkServer, "linux sandbox: fork each run from a template of its agent version that imported the agent once (its own namespaces, cgroup, disk and filters, as a sandbox started for it would have); =false starts a Python and its supervisor for every run")
	f.DurationVar(&cfg.PoolIdle, "pool-idle", def.PoolIdle, "stop an agent version's warm sandboxes after this long without requests")
	f.IntVar(&cfg.ReuseMax, "reuse-max", def.ReuseMax, "sandboxes kept for the next call of the same user_id, for agents with resources.reuse_per_user (-1 = never keep; 0 = the default)")
	f.DurationVar(&cfg.ReuseIdle, "reuse-idle", def.ReuseIdle, "destroy a sandbox kept for a user_id after this long without a call")
	f.IntVar(&cfg.MaxConns, "max-conns", def.MaxConns, "connections open at once; more are closed on accept")
	f.IntVar(&cfg.MaxConnsPerIP, "max-conns-per-ip", def.MaxConnsPerIP, "connections open at once from one client address (IPv6: per /64)")
	f.IntVar(&cfg.MaxInFlight, "max-inflight", def.MaxInFlight, "requests handled at once, streams included; more get an immediate 503")
	f.IntVar(&cfg.MaxStreamsPerIP, "max-streams-per-ip", def.MaxStreamsPerIP, "WebSocket and SSE streams open at once from one client address; more get 429")
	f.StringVar(&rate, "rate-limit", ratelimit.FormatLimit(def.RateLimit), "requests per principal (per client address without a credential): <count>/<period>, or off")
	redis.add(f)
	store.add(f)
	f.StringVar(&cfg.NodeID, "node-id", getenv("RUNAGENT_NODE_ID", ""), "this node's id in the node registry and in the invocations it runs (lower-case letters, digits, '.', '_', '-'); default: made from the host name once and kept in <data dir>/node-id [$RUNAGENT_NODE_ID]")
	f.DurationVar(&cfg.NodeTimeout, "node-timeout", def.NodeTimeout, "a node whose heartbeat (every third of this) is older than this is declared dead and its running invocations failed (runagent nodes)")
	f.StringSliceVar(&cfg.PackageIndexes, "package-index", nil, "PEP 503 simple index agents' requirements are installed from (the first is primary); repeatable; one with a password belongs in --package-index-file or $RUNAGENT_PACKAGE_INDEX")
	f.StringVar(&indexFile, "package-index-file", getenv("RUNAGENT_PACKAGE_INDEX_FILE", ""), "file of package index URLs, one a line, credentials allowed (kept out of the process list and the logs) [$RUNAGENT_PACKAGE_INDEX_FILE]")
	f.StringSliceVar(&cfg.FindLinks, "find-links", nil, "folder of wheels on this server that builds may install from; repeatable")
	f.DurationVar(&cfg.BuildTimeout, "build-timeout", def.BuildTimeout, "wall-clock limit of one environment build (pip in a build sandbox)")
	f.BoolVar(&printConfig, "print-config", false, "print the effective configuration (defaults filled in, secrets redacted) as JSON and exit")
	f.StringSliceVar(&proxies, "trusted-proxy", nil, "address or CIDR of a reverse proxy whose X-Forwarded-For is believed; repeatable")
	f.StringSliceVar(&webhookCIDRs, "webhook-allow-cidr", nil, "internal address or CIDR (private, loopback, ...) that agents' completion webhooks may reach, e.g. 127.0.0.1/32 for a receiver on this host; repeatable; default none")
	f.StringVar(&cfg.SecurityLog, "security-log", "", "JSON-lines file of security events (default <data dir>/security.jsonl); they are also stored (runagent events)")
	f.StringSliceVar(&cfg.AlertRules, "alert-rule", nil, "alert threshold per event type and source, e.g. auth_failure=20/5m or suspicious=off; repeatable (defaults: auth_failure=10/1m, rate_limit_exceeded=5/1m, suspicious=3/1m)")
	f.DurationVar(&cfg.AlertCooldown, "alert-cooldown", def.AlertCooldown, "least time between two alerts for one rule and source")
	f.StringVar(&cfg.AlertWebhookURL, "alert-webhook", "", "URL that receives alerts as JSON POSTs signed with X-Runagent-Signature (https, or http to loopback)")
	f.StringVar(&cfg.AlertWebhookSecretFile, "alert-webhook-secret-file", getenv("RUNAGENT_ALERT_WEBHOOK_SECRET_FILE", ""), "file holding the webhook's HMAC secret (at least 16 bytes) [$RUNAGENT_ALERT_WEBHOOK_SECRET_FILE]")
	f.IntVar(&cfg.Block.After, "block-after", def.Block.After, "authentication failures from one client address within --block-window that block it (-1 = never block)")
	f.DurationVar(&cfg.Block.Window, "block-window", def.Block.Window, "window in which --block-after failures count")
	f.DurationVar(&cfg.Block.For, "block-for", def.Block.For, "how long a blocked address is refused (owners can lift it: DELETE /api/v1/blocks/<addr>)")
	f.IntVar(&cfg.MaxRunsPerPrincipal, "max-runs-per-principal", def.MaxRunsPerPrincipal, "invocations running at once for one principal (or client address without a key); more get 429")
	f.IntVar(&cfg.MaxRunsPerAgent, "max-runs-per-agent", def.MaxRunsPerAgent, "invocations running at once for one agent; more get 429")
	f.IntVar(&cfg.MaxConcurrent, "max-concurrent", def.MaxConcurrent, fmt.Sprintf("invocations running at once (%d per CPU); more wait in a queue fair across agents and callers, then get 503", executor.DefaultConcurrentPerCPU))
	f.DurationVar(&cfg.QueueWait, "queue-wait", def.QueueWait, "longest an invocation waits for a free slot (never past its own timeout) before it gets 503 with Retry-After (-1s = no queue: 503 at once)")
	f.IntVar(&cfg.QueueMax, "queue-max", 0, fmt.Sprintf("invocations waiting for a slot at once; more get 503 at once (0 = %d per --max-concurrent)", executor.DefaultQueuePerSlot))
	f.DurationVar(&cfg.StreamKeep, "stream-keep", def.StreamKeep, "how long a finished stream's events are kept for clients to rejoin it (GET /api/v1/invocations/<id>/stream, Last-Event-ID); -1s = keep none: streams cannot be rejoined")
	f.IntVar(&cfg.StreamKeepBytes, "stream-keep-bytes", def.StreamKeepBytes, "the most bytes of events kept of one stream; older events are dropped first, and a rejoin from before them is refused with 410")
	f.DurationVar(&cfg.DefaultTimeout, "timeout", def.DefaultTimeout, "wall-clock limit of an invocation when the agent sets none")
	f.DurationVar(&cfg.MaxTimeout, "max-timeout", def.MaxTimeout, "upper bound on any invocation's wall-clock limit")
	f.DurationVar(&cfg.DrainTimeout, "drain-timeout", def.DrainTimeout, "how long shutdown waits for running invocations")
	retain.add(f)
	f.StringVar(&retainMemory, "retain-memory", "off", "delete an agent's persistent memory of a user that nobody used for this long: days (90d), a duration, or off")
	f.StringVar(&cfg.Memory.Mode, "memory", def.Memory.Mode, "persistent memory (runs with persistent_memory and a user_id): auto (made ready when first needed; a host that cannot keep it serves the rest and those runs fail saying why), on (refuse to start where it cannot), off")
	f.IntVar(&cfg.Memory.DefaultMB, "memory-default-mb", def.Memory.DefaultMB, "MiB of persistent memory per user and agent when the agent sets none")
	f.IntVar(&cfg.Memory.MaxMB, "memory-max-mb", def.Memory.MaxMB, "most MiB of persistent memory an agent may set per user")
	f.IntVar(&cfg.Memory.MaxFiles, "memory-max-files", def.Memory.MaxFiles, "files (and folders) one user's persistent memory of an agent may hold")
	f.StringVar(&cfg.Memory.Dir, "memory-dir", getenv("RUNAGENT_MEMORY_DIR", ""), "directory of the persistent-memory images; nodes on one PostgreSQL store need it, on a file system they all mount (NFS, a ReadWriteMany volume: POSIX, close-to-open consistency), and each store is mounted by one node at a time [$RUNAGENT_MEMORY_DIR, default <data dir>/memory]")
	f.BoolVar(&cfg.Memory.Plaintext, "memory-plaintext", false, "accept persistent memory unencrypted at rest on a host without fscrypt (without it, such a host refuses persistent memory); where fscrypt works it is encrypted all the same")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	f.BoolVar(&logJSON, "log-json", false, "write logs as JSON lines")
	return cmd
}

// packageIndexes settles cfg's package indexes: those on the command line
// (none with a password: it would show in the process list), then those
// of --package-index-file and $RUNAGENT_PACKAGE_INDEX, which may carry
// credentials.
func packageIndexes(cmd *cobra.Command, cfg *server.Config, file string) error {
	for _, ix := range cfg.PackageIndexes {
		if server.URLHasPassword(ix) {
			return errors.New("--package-index: a password on the command line shows in the process list and shell history: put the URL in a file (--package-index-file) or in $RUNAGENT_PACKAGE_INDEX")
		}
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("--package-index-file: %w", err)
		}
		for line := range strings.Lines(string(b)) {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				cfg.PackageIndexes = append(cfg.PackageIndexes, line)
			}
		}
	}
	if env := strings.TrimSpace(os.Getenv("RUNAGENT_PACKAGE_INDEX")); env != "" && !cmd.Flags().Changed("package-index") {
		cfg.PackageIndexes = append(cfg.PackageIndexes, strings.Fields(env)...)
	}
	for _, ix := range cfg.PackageIndexes {
		u, err := url.Parse(ix)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("package index %s is not an http(s) URL of a PEP 503 simple index (such as https://pypi.example.com/simple)", server.RedactURL(ix))
		}
	}
	return nil
}
