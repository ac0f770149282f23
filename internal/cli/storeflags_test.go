package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestHelpHidesURLsFromTheEnvironment: a store or Redis URL in the
// environment, which may hold a password, is not shown as a flag's
// default by --help of any command that takes them.
func TestHelpHidesURLsFromTheEnvironment(t *testing.T) {
	t.Setenv("RUNAGENT_STORE_URL", "postgres://u:hunter2-store@db/ra")
	t.Setenv("RUNAGENT_REDIS_URL", "redis://:hunter2-redis@cache:6379/0")
	for _, args := range [][]string{{"serve", "--help"}, {"doctor", "--help"}, {"audit", "verify", "--help"}, {"db", "invocations", "--help"}} {
		var out, errs strings.Builder
		Main(t.Context(), args, strings.NewReader(""), &out, &errs)
		all := out.String() + errs.String()
		if !strings.Contains(all, "--store") {
			t.Errorf("runagent %v: no --store in the help:\n%s", args, all)
		}
		if strings.Contains(all, "hunter2") {
			t.Errorf("runagent %v shows a password from the environment:\n%s", args, all)
		}
	}
}

// TestStoreFlagsResolve: which URL the store flags name, by precedence:
// the command line, then a file, then the environment.
func TestStoreFlagsResolve(t *testing.T) {
	file := filepath.Join(t.TempDir(), "url")
	if err := os.WriteFile(file, []byte(" postgres://file@db/ra\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name         string
		args         []string
		envURL, envF string
		want, err    string
	}{
		{"none", nil, "", "", "", ""},
		{"argv", []string{"--store", "postgres://argv@db/ra"}, "postgres://env@db/ra", file, "postgres://argv@db/ra", ""},
		{"file flag", []string{"--store-file", file}, "postgres://env@db/ra", "", "postgres://file@db/ra", ""},
		{"file env", nil, "postgres://env@db/ra", file, "postgres://file@db/ra", ""},
		{"env", nil, "postgres://env@db/ra", "", "postgres://env@db/ra", ""},
		{"both flags", []string{"--store", "postgres://argv@db/ra", "--store-file", file}, "", "", "", "give one"},
		{"password on argv", []string{"--store", "postgres://u:pw@db/ra"}, "", "", "", "--store-file"},
		{"password in env", nil, "postgres://u:pw@db/ra", "", "postgres://u:pw@db/ra", ""},
		{"missing file", []string{"--store-file", file + ".nope"}, "", "", "", "--store-file"},
		{"not postgres", nil, "mysql://db/ra", "", "", "postgres://"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RUNAGENT_STORE_URL", tt.envURL)
			t.Setenv("RUNAGENT_STORE_URL_FILE", tt.envF)
			var s storeFlags
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			s.add(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			got, err := s.resolve()
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "pw@") {
					t.Errorf("resolve(%v) = %q, %v; want an error saying %q", tt.args, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("resolve(%v) = %q, %v; want %q", tt.args, got, err, tt.want)
			}
		})
	}
}
