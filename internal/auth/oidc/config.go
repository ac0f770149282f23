package oidc

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Defaults and bounds of a Config; see the fields of the same names.
const (
	DefaultLeeway                    = 60 * time.Second
	MaxLeeway                        = 5 * time.Minute
	DefaultProjectClaim              = "runagent_project"
	DefaultRoleClaim                 = "runagent_role"
	DefaultMaxTokenBytes             = 16 << 10
	DefaultHTTPTimeout               = 10 * time.Second
	DefaultMaxResponseBytes          = 1 << 20
	DefaultRefreshInterval           = 15 * time.Minute
	DefaultUnknownKeyRefreshInterval = time.Minute
	DefaultRetryInterval             = 10 * time.Second

	// maxIdentityBytes bounds the subject, project and role an Identity
	// carries, so a verified but absurd token cannot flood logs or stores.
	maxIdentityBytes = 1024
)

// asymmetricAlgs are the JWS algorithms an issuer may allow: signatures
// verified with a public key. "none" and the HMAC family (HS256, ...) are
// not here on purpose: a shared secret has no place in a JWKS, and HS* is
// the algorithm of the classic key-confusion attack.
var asymmetricAlgs = []string{
	"RS256", "RS384", "RS512",
	"PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512",
	"EdDSA",
}

// DefaultAlgorithms returns the algorithms an issuer allows when its
// config lists none: RS256, ES256, EdDSA and PS256.
func DefaultAlgorithms() []string {
	return []string{"RS256", "ES256", "EdDSA", "PS256"}
}

// DefaultRoles returns the roles a token may carry when Config.Roles is
// empty, from least to most privileged.
func DefaultRoles() []string {
	return []string{"viewer", "user", "streamer", "admin", "owner"}
}

// Config configures a Verifier. Zero durations and sizes take the
// defaults above.
type Config struct {
	// Issuers are the token issuers to accept; at least one.
	Issuers []IssuerConfig
	// Roles are the valid values of a token's role (default DefaultRoles).
	Roles []string

	// MaxTokenBytes bounds the length of a raw token (default 16 KiB).
	MaxTokenBytes int
	// HTTPTimeout bounds each discovery and JWKS request (default 10 s).
	HTTPTimeout time.Duration
	// MaxResponseBytes bounds a discovery or JWKS response body (default
	// 1 MiB).
	MaxResponseBytes int64
	// RefreshInterval is how often each issuer's JWKS is fetched again in
	// the background (default 15 min); a key the issuer stopped publishing
	// is forgotten at the next refresh.
	RefreshInterval time.Duration
	// UnknownKeyRefreshInterval is the least time between two JWKS fetches
	// caused by tokens whose key ID is not in the cached set (default
	// 1 min). The first unknown key ID fetches at once; more within the
	// interval are rejected without a fetch, so garbage key IDs cannot
	// make the verifier hammer the issuer.
	UnknownKeyRefreshInterval time.Duration
	// RetryInterval is how long after a failed discovery or first JWKS
	// fetch the next token for that issuer tries again (default 10 s);
	// tokens arriving in between are rejected at once.
	RetryInterval time.Duration
}

// IssuerConfig describes one accepted issuer.
type IssuerConfig struct {
	// Issuer is the issuer identifier, compared byte for byte with a
	// token's "iss" claim and with the "issuer" of the discovery document.
	// It must be an https URL (http only on a loopback host).
	Issuer string
	// Audiences are the accepted "aud" values; a token must name at least
	// one of them. Required: without it any token the issuer minted for
	// any client would be accepted.
	Audiences []string
	// Algorithms are the accepted JWS algorithms (default
	// DefaultAlgorithms). Only asymmetric algorithms are allowed: "none"
	// and HS256/384/512 are rejected.
	Algorithms []string
	// Leeway is the clock skew allowed when checking exp, nbf and iat
	// (default 60 s, at most MaxLeeway).
	Leeway time.Duration
	// JWKSURL is where the issuer publishes its keys. When empty it is
	// read from <Issuer>/.well-known/openid-configuration.
	JWKSURL string

	// ProjectClaim names the claim holding the project (default
	// "runagent_project"); RoleClaim the one holding the role (default
	// "runagent_role"). Both are top-level string claims.
	ProjectClaim string
	RoleClaim    string
	// Project, when set, is the project of every token from this issuer;
	// the token's project claim is then ignored, so the issuer cannot
	// reach any other project. Role does the same for the role.
	Project string
	Role    string

	// Console, when set, lets people sign in to the web console through
	// this issuer (authorization code with PKCE; see SignIn).
	Console *ConsoleClient
}

// withDefaults returns cfg with its zero fields set to the defaults.
func (cfg Config) withDefaults() Config {
	if len(cfg.Roles) == 0 {
		cfg.Roles = DefaultRoles()
	}
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if cfg.HTTPTimeout == 0 {
		cfg.HTTPTimeout = DefaultHTTPTimeout
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.UnknownKeyRefreshInterval == 0 {
		cfg.UnknownKeyRefreshInterval = DefaultUnknownKeyRefreshInterval
	}
	if cfg.RetryInterval == 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	cfg.Issuers = slices.Clone(cfg.Issuers)
	for i := range cfg.Issuers {
		cfg.Issuers[i] = cfg.Issuers[i].withDefaults()
	}
	return cfg
}

func (ic IssuerConfig) withDefaults() IssuerConfig {
	if len(ic.Algorithms) == 0 {
		ic.Algorithms = DefaultAlgorithms()
	}
	if ic.Leeway == 0 {
		ic.Leeway = DefaultLeeway
	}
	if ic.ProjectClaim == "" {
		ic.ProjectClaim = DefaultProjectClaim
	}
	if ic.RoleClaim == "" {
		ic.RoleClaim = DefaultRoleClaim
	}
	if ic.Console != nil {
		c := ic.Console.withDefaults()
		ic.Console = &c
	}
	return ic
}

// validate reports what is wrong with cfg, which has its defaults set.
func (cfg Config) validate() error {
	var errs []error
	if len(cfg.Issuers) == 0 {
		errs = append(errs, errors.New("no issuers configured"))
	}
	for _, r := range cfg.Roles {
		if r == "" {
			errs = append(errs, errors.New("roles: empty role name"))
		}
	}
	if cfg.MaxTokenBytes < 0 {
		errs = append(errs, errors.New("max token bytes is negative"))
	}
	if cfg.MaxResponseBytes < 0 {
		errs = append(errs, errors.New("max response bytes is negative"))
	}
	for name, d := range map[string]time.Duration{
		"http timeout":                 cfg.HTTPTimeout,
		"refresh interval":             cfg.RefreshInterval,
		"unknown key refresh interval": cfg.UnknownKeyRefreshInterval,
		"retry interval":               cfg.RetryInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s is negative", name))
		}
	}
	seen := map[string]bool{}
	for _, ic := range cfg.Issuers {
		if seen[ic.Issuer] {
			errs = append(errs, fmt.Errorf("issuer %q is configured twice", ic.Issuer))
		}
		seen[ic.Issuer] = true
		if err := ic.validate(cfg.Roles); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (ic IssuerConfig) validate(roles []string) error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("issuer %q: "+format, append([]any{ic.Issuer}, args...)...))
	}
	if err := checkURL(ic.Issuer); err != nil {
		add("%v", err)
	} else if u, _ := url.Parse(ic.Issuer); u.RawQuery != "" || u.Fragment != "" {
		add("an issuer has no query or fragment")
	}
	if ic.JWKSURL != "" {
		if err := checkURL(ic.JWKSURL); err != nil {
			add("jwks url: %v", err)
		}
	}
	if len(ic.Audiences) == 0 || slices.Contains(ic.Audiences, "") {
		add("at least one non-empty audience is required")
	}
	for _, alg := range ic.Algorithms {
		switch {
		case strings.EqualFold(alg, "none"):
			add(`algorithm "none" is never allowed`)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			add("algorithm %q is not allowed: HMAC needs a shared secret, and a JWKS has public keys only", alg)
		case !slices.Contains(asymmetricAlgs, alg):
			add("unknown algorithm %q (known: %s)", alg, strings.Join(asymmetricAlgs, ", "))
		}
	}
	if ic.Leeway < 0 || ic.Leeway > MaxLeeway {
		add("leeway %v is outside 0..%v", ic.Leeway, MaxLeeway)
	}
	if ic.ProjectClaim == ic.RoleClaim {
		add("project claim and role claim are both %q", ic.ProjectClaim)
	}
	if ic.Project != "" && !validText(ic.Project) {
		add("static project %q is not a valid project name", ic.Project)
	}
	if ic.Role != "" && !slices.Contains(roles, ic.Role) {
		add("static role %q is not one of %s", ic.Role, strings.Join(roles, ", "))
	}
	if ic.Console != nil {
		if err := ic.Console.validate(); err != nil {
			add("console: %w", err)
		}
	}
	return errors.Join(errs...)
}

// checkURL accepts an absolute https URL, or an http URL whose host is
// loopback (a development identity provider on the same machine).
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Host == "" || u.User != nil {
		return fmt.Errorf("%q is not an absolute URL with a host and no user info", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only on a loopback host", s)
	default:
		return fmt.Errorf("%q: scheme must be https", s)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validText reports whether s is usable as a subject, project or role: not
// empty, bounded, valid UTF-8 without control characters, so it is safe to
// log and to store.
func validText(s string) bool {
	if s == "" || len(s) > maxIdentityBytes {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}
