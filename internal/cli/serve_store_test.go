package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeStoreFlags: --store, --store-file and $RUNAGENT_STORE_URL name
// a PostgreSQL store, which --print-config shows without its password; a
// password on the command line, another scheme, or both flags are
// refused before anything starts, without repeating the password.
func TestServeStoreFlags(t *testing.T) {
	for _, env := range []string{"RUNAGENT_STORE_URL", "RUNAGENT_STORE_URL_FILE"} {
		t.Setenv(env, "")
	}
	file := filepath.Join(t.TempDir(), "store-url")
	if err := os.WriteFile(file, []byte("postgres://runagent:hunter2@db.example:5432/ra\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      string
		args     []string
		wantOK   bool
		wantText string // in the printed store, or in the error
	}{
		{"default", "", nil, true, "sqlite "},
		{"flag without password", "", []string{"--store", "postgres://runagent@db.example:5432/ra"}, true, "postgres://runagent@db.example:5432/ra"},
		{"file", "", []string{"--store-file", file}, true, "postgres://runagent:[redacted]@db.example:5432/ra"},
		{"environment", "postgres://runagent:hunter2@db.example/ra", nil, true, "postgres://runagent:[redacted]@db.example/ra"},
		{"password on argv", "", []string{"--store", "postgres://runagent:hunter2@db.example/ra"}, false, "--store-file"},
		{"password parameter on argv", "", []string{"--store", "postgres://runagent@db.example/ra?password=hunter2"}, false, "--store-file"},
		{"not postgres", "", []string{"--store", "mysql://runagent@db.example/ra"}, false, "postgres://"},
		{"both", "", []string{"--store", "postgres://db.example/ra", "--store-file", file}, false, "give one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RUNAGENT_STORE_URL", tt.env)
			var out, errs strings.Builder
			args := append([]string{"serve", "--print-config", "--data-dir", t.TempDir()}, tt.args...)
			code := Main(t.Context(), args, strings.NewReader(""), &out, &errs)
			all := out.String() + errs.String()
			if strings.Contains(all, "hunter2") {
				t.Errorf("serve %v shows the password:\n%s", tt.args, all)
			}
			if !tt.wantOK {
				if code == 0 || !strings.Contains(errs.String(), tt.wantText) {
					t.Errorf("serve %v: exit %d, want refused with %q:\n%s", tt.args, code, tt.wantText, all)
				}
				return
			}
			if code != 0 {
				t.Fatalf("serve %v: exit %d:\n%s", tt.args, code, all)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(out.String()), &m); err != nil {
				t.Fatal(err)
			}
			if got, _ := m["store"].(string); !strings.HasPrefix(got, tt.wantText) {
				t.Errorf("serve %v: store %q, want %q", tt.args, got, tt.wantText)
			}
		})
	}
}
