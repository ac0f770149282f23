package oidc

import (
	"strings"
	"testing"
	"time"
)

func TestNewRejectsBadConfig(t *testing.T) {
	good := IssuerConfig{Issuer: "https://idp.example", Audiences: []string{"runagent"}}
	edit := func(f func(*IssuerConfig)) Config {
		ic := good
		f(&ic)
		return Config{Issuers: []IssuerConfig{ic}}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // a part of the error text
	}{
		{"no issuers", Config{}, "no issuers"},
		{"alg none", edit(func(ic *IssuerConfig) { ic.Algorithms = []string{"RS256", "none"} }), `"none" is never allowed`},
		{"alg NONE", edit(func(ic *IssuerConfig) { ic.Algorithms = []string{"NONE"} }), `"none" is never allowed`},
		{"HS256", edit(func(ic *IssuerConfig) { ic.Algorithms = []string{"HS256"} }), "HMAC"},
		{"hs512", edit(func(ic *IssuerConfig) { ic.Algorithms = []string{"hs512"} }), "HMAC"},
		{"unknown alg", edit(func(ic *IssuerConfig) { ic.Algorithms = []string{"rs256"} }), "unknown algorithm"},
		{"no audience", edit(func(ic *IssuerConfig) { ic.Audiences = nil }), "audience"},
		{"empty audience", edit(func(ic *IssuerConfig) { ic.Audiences = []string{""} }), "audience"},
		{"leeway too long", edit(func(ic *IssuerConfig) { ic.Leeway = MaxLeeway + time.Second }), "leeway"},
		{"negative leeway", edit(func(ic *IssuerConfig) { ic.Leeway = -time.Second }), "leeway"},
		{"http issuer", edit(func(ic *IssuerConfig) { ic.Issuer = "http://idp.example" }), "loopback"},
		{"http jwks", edit(func(ic *IssuerConfig) { ic.JWKSURL = "http://idp.example/jwks" }), "loopback"},
		{"relative issuer", edit(func(ic *IssuerConfig) { ic.Issuer = "/idp" }), "absolute"},
		{"issuer with query", edit(func(ic *IssuerConfig) { ic.Issuer = "https://idp.example/?a=b" }), "query"},
		{"ftp jwks", edit(func(ic *IssuerConfig) { ic.JWKSURL = "ftp://idp.example/jwks" }), "https"},
		{"same claim twice", edit(func(ic *IssuerConfig) { ic.RoleClaim = DefaultProjectClaim }), "both"},
		{"static role not valid", edit(func(ic *IssuerConfig) { ic.Role = "root" }), "static role"},
		{"static project with newline", edit(func(ic *IssuerConfig) { ic.Project = "a\nb" }), "static project"},
		{"duplicate issuer", Config{Issuers: []IssuerConfig{good, good}}, "twice"},
		{"negative timeout", Config{Issuers: []IssuerConfig{good}, HTTPTimeout: -1}, "negative"},
		{"empty role name", Config{Issuers: []IssuerConfig{good}, Roles: []string{"a", ""}}, "empty role"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := New(t.Context(), tc.cfg)
			if err == nil {
				v.Close()
				t.Fatalf("New(%+v) = nil error, want one containing %q", tc.cfg, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New(%+v) = %v, want an error containing %q", tc.cfg, err, tc.want)
			}
		})
	}
}

func TestNewAcceptsLoopbackHTTP(t *testing.T) {
	for _, iss := range []string{"http://localhost:8080/realms/dev", "http://127.0.0.1:9000", "http://[::1]:9000"} {
		cfg := Config{Issuers: []IssuerConfig{{Issuer: iss, Audiences: []string{"a"}, JWKSURL: iss + "/jwks"}}}
		if err := cfg.withDefaults().validate(); err != nil {
			t.Errorf("validate(issuer %s) = %v", iss, err)
		}
	}
}

func TestDefaultsAreApplied(t *testing.T) {
	cfg := Config{Issuers: []IssuerConfig{{Issuer: "https://idp.example", Audiences: []string{"a"}}}}.withDefaults()
	ic := cfg.Issuers[0]
	if ic.Leeway != DefaultLeeway || ic.ProjectClaim != DefaultProjectClaim || ic.RoleClaim != DefaultRoleClaim {
		t.Errorf("defaults = leeway %v, claims %q %q", ic.Leeway, ic.ProjectClaim, ic.RoleClaim)
	}
	if got, want := strings.Join(ic.Algorithms, ","), "RS256,ES256,EdDSA,PS256"; got != want {
		t.Errorf("default algorithms = %s, want %s", got, want)
	}
	if got, want := strings.Join(cfg.Roles, ","), "viewer,user,streamer,admin,owner"; got != want {
		t.Errorf("default roles = %s, want %s", got, want)
	}
	if cfg.MaxTokenBytes != 16<<10 {
		t.Errorf("default max token bytes = %d", cfg.MaxTokenBytes)
	}
}

func TestLooksLikeJWT(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln", true},
		{"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0.", true}, // unsigned: Verify says why it fails
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0", false},
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln.x", false},
		{"eyJhbGciOiJSUzI1NiJ9..c2ln", false},
		{".eyJzdWIiOiJhIn0.c2ln", false},
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln=", false},
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2l+", false},
		{"eyJ hbGc.eyJzdWIiOiJhIn0.c2ln", false},
		{"YWJj.eyJzdWIiOiJhIn0.c2ln", false}, // header is not a JSON object
		{"ra_live_4f9c2b7e8d1a", false},
		{"ra.live.key", false},
		{"", false},
		{"e", false},
		{"e..", false},
	} {
		if got := LooksLikeJWT(tc.in); got != tc.want {
			t.Errorf("LooksLikeJWT(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
