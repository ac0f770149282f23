package server

import (
	"net/url"
	"os"
	"strings"
	"time"
)

// Effective is the configuration a server would run with, for `runagent
// serve --print-config`: every secret redacted (a password in a URL, a
// passphrase), files named by path only.
func (c Config) Effective() map[string]any {
	dur := func(d time.Duration) string {
		if d == 0 {
			return "off"
		}
		return d.String()
	}
	m := map[string]any{
		"addr": c.Addr, "data_dir": c.DataDir, "agent_dirs": c.AgentDirs, "sandbox": c.Sandbox, "python": c.Python,
		"auth": c.Auth, "tls_cert": c.TLSCert, "tls_key": c.TLSKey, "tls_client_ca": c.TLSClientCA, "tls_client_auth": c.TLSClientAuth,
		"oidc_config": c.OIDCConfig, "key_ttl": c.KeyTTL.String(),
		"max_body": c.MaxBody, "max_concurrent": c.MaxConcurrent, "pool_size": c.PoolSize, "pool_idle": c.PoolIdle.String(),
		"reuse_max": c.ReuseMax, "reuse_idle": c.ReuseIdle.String(), "timeout": c.DefaultTimeout.String(),
		"max_timeout": c.MaxTimeout.String(), "drain_timeout": c.DrainTimeout.String(),
		"max_conns": c.MaxConns, "max_conns_per_ip": c.MaxConnsPerIP, "max_inflight": c.MaxInFlight, "max_streams_per_ip": c.MaxStreamsPerIP,
		"max_runs_per_principal": c.MaxRunsPerPrincipal, "max_runs_per_agent": c.MaxRunsPerAgent,
		"block_after": c.Block.After, "block_window": c.Block.Window.String(), "block_for": c.Block.For.String(),
		"redis_url": RedactURL(c.RedisURL), "security_log": c.SecurityLog, "alert_rules": c.AlertRules,
		"alert_cooldown": c.AlertCooldown.String(), "alert_webhook": RedactURL(c.AlertWebhookURL),
		"alert_webhook_secret_file": c.AlertWebhookSecretFile,
		"retain_invocations":        dur(c.Retention.Invocations), "retain_events": dur(c.Retention.Events), "retain_audit": dur(c.Retention.Audit),
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
	k := KeyringFromEnv(c.Keyring)
	switch {
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

// URLHasPassword reports whether s is a URL carrying a password.
func URLHasPassword(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}
