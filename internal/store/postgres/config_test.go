package postgres

import (
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		url         string
		wantTimeout string
		wantTarget  string
	}{
		{"postgres://runagent:s3cret@db.example:5433/ra?sslmode=disable", "30000", "postgres db.example:5433/ra"},
		{"postgres://runagent@127.0.0.1/ra?sslmode=disable&statement_timeout=5000", "5000", "postgres 127.0.0.1:5432/ra"},
		{"host=/run/postgresql dbname=ra user=runagent", "30000", "postgres /run/postgresql/ra"},
	}
	for _, tt := range tests {
		cfg, err := ParseConfig(tt.url)
		if err != nil {
			t.Errorf("ParseConfig(%q) = %v", tt.url, err)
			continue
		}
		if got := cfg.ConnConfig.RuntimeParams["statement_timeout"]; got != tt.wantTimeout {
			t.Errorf("ParseConfig(%q): statement_timeout %q, want %q", tt.url, got, tt.wantTimeout)
		}
		if cfg.MaxConns != DefaultMaxConns {
			t.Errorf("ParseConfig(%q): MaxConns %d, want %d", tt.url, cfg.MaxConns, DefaultMaxConns)
		}
		if got := Target(cfg); got != tt.wantTarget {
			t.Errorf("Target(ParseConfig(%q)) = %q, want %q", tt.url, got, tt.wantTarget)
		}
	}
}

func TestParseConfigErrorsHidePassword(t *testing.T) {
	for _, url := range []string{
		"",
		"postgres://u:s3cret@host:notaport/db",
		"postgres://u:s3cret@host/db?sslmode=bogus",
		"mysql://u:s3cret@host/db",
	} {
		_, err := ParseConfig(url)
		if err == nil {
			t.Errorf("ParseConfig(%q) = nil error, want one", url)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseConfig(%q) = %v, which shows the password", url, err)
		}
	}
}

// FuzzParseConfig: any store URL parses or fails without panicking, and
// an error never shows the password it held.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"postgres://runagent:s3cret@db.example:5432/runagent?sslmode=require",
		"postgresql://u@[::1]:5432/db?statement_timeout=100",
		"host=/tmp port=5432 dbname=x user=y password=s3cret",
		"postgres://u:s3cret@host:99999/db",
		"postgres://%zz@host/db",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, url string) {
		cfg, err := ParseConfig(url)
		if err != nil {
			if pw := passwordOf(url); len(pw) >= 4 && strings.Contains(err.Error(), pw) {
				t.Errorf("ParseConfig(%q) = %v, which shows the password", url, err)
			}
			return
		}
		if cfg.ConnConfig.RuntimeParams["statement_timeout"] == "" {
			t.Errorf("ParseConfig(%q): no statement_timeout", url)
		}
		_ = Target(cfg)
	})
}

// passwordOf returns the password of a postgres:// URL, or "".
func passwordOf(url string) string {
	_, rest, ok := strings.Cut(url, "://")
	if !ok {
		return ""
	}
	userinfo, _, ok := strings.Cut(rest, "@")
	if !ok {
		return ""
	}
	_, pw, _ := strings.Cut(userinfo, ":")
	return pw
}
