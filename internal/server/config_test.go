package server

import (
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/ratelimit"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// effectiveJSON is what `serve --print-config` prints for c, with the
// environment that Effective reads cleared.
func effectiveJSON(t *testing.T, c Config) []byte {
	t.Helper()
	for _, env := range []string{MasterKeyEnv, MasterKeyFileEnv, MasterPassphraseEnv, MasterPassphraseFileEnv, BootstrapKeyEnv} {
		t.Setenv(env, "")
	}
	b, err := json.MarshalIndent(c.Effective(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestEffectiveDefaultsGolden keeps the printed configuration of a zero
// Config in testdata, so that a changed default shows in review. Run with
// -update after a deliberate one. max_concurrent and queue_max depend on
// the CPUs, so the file has them for one.
func TestEffectiveDefaultsGolden(t *testing.T) {
	got := effectiveJSON(t, Config{DataDir: "/var/lib/runagent"})
	var m map[string]any
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	if n, want := m["max_concurrent"], float64(executor.DefaultMaxConcurrent()); n != want {
		t.Errorf("max_concurrent = %v, want %v", n, want)
	}
	one := strings.Replace(string(got), fmt.Sprintf(`"max_concurrent": %d,`, executor.DefaultMaxConcurrent()),
		fmt.Sprintf(`"max_concurrent": %d,`, executor.DefaultConcurrentPerCPU), 1)
	one = strings.Replace(one, fmt.Sprintf(`"queue_max": %d,`, executor.DefaultQueuePerSlot*executor.DefaultMaxConcurrent()),
		fmt.Sprintf(`"queue_max": %d,`, executor.DefaultQueuePerSlot*executor.DefaultConcurrentPerCPU), 1)
	path := filepath.Join("testdata", "effective_defaults.golden")
	if *update {
		if err := os.WriteFile(path, []byte(one), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), one); diff != "" {
		t.Errorf("effective defaults changed (-golden +got); rerun with -update if intended:\n%s", diff)
	}
}

// TestEffectiveShowsNoZeros: every setting of a zero Config that has a
// default prints its value, not 0 or an empty string. The settings listed
// here are off, or empty, by default.
func TestEffectiveShowsNoZeros(t *testing.T) {
	offByDefault := map[string]bool{
		"agent_dirs": true, "trusted_proxies": true, "tls_cert": true, "tls_key": true, "tls_client_ca": true,
		"oidc_config": true, "redis_url": true, "alert_webhook": true, "alert_webhook_secret_file": true,
		"retain_invocations": true, "retain_events": true, "retain_audit": true, "retain_memory": true,
		"package_indexes": true, "find_links": true, "webhook_allow_cidrs": true,
	}
	var m map[string]any
	if err := json.Unmarshal(effectiveJSON(t, Config{DataDir: t.TempDir()}), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range m {
		zero := v == nil || v == float64(0) || v == "" || v == "0s" || v == "off"
		if l, ok := v.([]any); ok {
			zero = len(l) == 0
		}
		if zero != offByDefault[k] {
			t.Errorf("%s = %#v: zero is %v, want %v", k, v, zero, offByDefault[k])
		}
	}
}

// TestWithDefaultsKeepsWhatIsSet: set fields, and the negative values that
// turn something off, are left alone; applying the defaults twice changes
// nothing.
func TestWithDefaultsKeepsWhatIsSet(t *testing.T) {
	set := Config{
		Addr: "127.0.0.1:1", DataDir: "/d", Python: "/opt/python", Exe: "/bin/runagent", Sandbox: SandboxProcess,
		MaxBody: 1, MaxConcurrent: 2, QueueWait: -1, QueueMax: 3, StreamKeep: -1, StreamKeepBytes: 9, PoolSize: -1, PoolMax: 4, PoolMemoryMB: 5, SandboxMemoryMB: 6,
		PoolIdle: time.Second, ReuseMax: -1, ReuseIdle: time.Second,
		DefaultTimeout: time.Second, MaxTimeout: time.Minute, DrainTimeout: time.Second, Auth: AuthNone,
		TLSClientAuth: "require", KeyTTL: time.Hour, SessionIdle: time.Minute, SessionMax: time.Hour, MaxConns: -1, MaxConnsPerIP: -1, MaxInFlight: 3, MaxStreamsPerIP: 4,
		MaxRunsPerPrincipal: 5, MaxRunsPerAgent: 6, Block: api.BlockPolicy{After: -1, Window: time.Second, For: time.Second},
		RateLimit: ratelimit.PerSecond(7), TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
		SecurityLog: "/log", AlertRules: []string{"suspicious=off"}, AlertCooldown: time.Second,
		Retention: Retention{Invocations: time.Hour}, Log: slog.Default(), BuildTimeout: time.Minute,
		PackageIndexes: []string{"https://pypi.internal/simple"}, FindLinks: []string{"/srv/wheels"},
		Memory: MemoryConfig{Mode: MemoryOff, DefaultMB: 20, MaxMB: 30, MaxFiles: 40, Plaintext: true},
		NodeID: "web-1", NodeTimeout: 3 * time.Second,
	}
	opts := []cmp.Option{cmpopts.IgnoreUnexported(Config{}), cmp.Comparer(func(a, b *slog.Logger) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })}
	if diff := cmp.Diff(set, set.WithDefaults(), opts...); diff != "" {
		t.Errorf("WithDefaults changed set fields (-set +got):\n%s", diff)
	}
	once := Config{DataDir: "/d"}.WithDefaults()
	if diff := cmp.Diff(once, once.WithDefaults(), opts...); diff != "" {
		t.Errorf("WithDefaults twice (-once +twice):\n%s", diff)
	}
	if got := (Config{Sandbox: SandboxProcess}).WithDefaults().Python; got != "python3" {
		t.Errorf("Python for the process sandbox = %q, want python3 on PATH", got)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://:hunter2@127.0.0.1:6379/0":     "redis://:[redacted]@127.0.0.1:6379/0",
		"rediss://user:hunter2@cache:6380/1":    "rediss://user:[redacted]@cache:6380/1",
		"redis://127.0.0.1:6379/0":              "redis://127.0.0.1:6379/0",
		"https://hooks.example/x?token=hunter2": "https://hooks.example/x?redacted",
		"":                                      "",
		"redis://:hunter2@[::1:6379/0":          "[unparsable URL redacted]",
	} {
		if got := RedactURL(in); got != want || (in != "" && strings.Contains(got, "hunter2")) {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEffectiveConfigRedacts: the printed configuration names where
// secrets come from, never the secrets.
func TestEffectiveConfigRedacts(t *testing.T) {
	t.Setenv(MasterPassphraseEnv, "correct horse battery staple")
	cfg := Config{Addr: "127.0.0.1:1", DataDir: "/d", RedisURL: "redis://:hunter2@127.0.0.1:6379/0",
		AlertWebhookURL: "https://hooks.example/x?sig=hunter3", AlertWebhookSecretFile: "/run/secrets/webhook",
		StoreURL: "postgres://runagent:hunter4@db.example:5432/ra?sslmode=require"}
	b, err := json.Marshal(cfg.Effective())
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "hunter3", "hunter4", "correct horse"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("effective config shows %q: %s", secret, b)
		}
	}
	for _, want := range []string{`"alert_webhook_secret_file":"/run/secrets/webhook"`, `passphrase from $RUNAGENT_MASTER_PASSPHRASE`, `"redis_url":"redis://:[redacted]@127.0.0.1:6379/0"`,
		`"store":"postgres://runagent:[redacted]@db.example:5432/ra?redacted"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("effective config lacks %s: %s", want, b)
		}
	}
}
