package cli

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeMemoryDir: --memory-dir, else $RUNAGENT_MEMORY_DIR, else
// <data dir>/memory is where persistent memory is kept, as
// --print-config shows.
func TestServeMemoryDir(t *testing.T) {
	data := t.TempDir()
	tests := []struct {
		name, env string
		args      []string
		want      string
	}{
		{"default", "", nil, filepath.Join(data, "memory")},
		{"flag", "", []string{"--memory-dir", "/srv/shared-memory"}, "/srv/shared-memory"},
		{"environment", "/mnt/nfs/memory", nil, "/mnt/nfs/memory"},
		{"flag over environment", "/mnt/nfs/memory", []string{"--memory-dir", "/srv/shared-memory"}, "/srv/shared-memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("RUNAGENT_MEMORY_DIR", tt.env)
			var out, errs strings.Builder
			args := append([]string{"serve", "--print-config", "--data-dir", data}, tt.args...)
			if code := Main(t.Context(), args, strings.NewReader(""), &out, &errs); code != 0 {
				t.Fatalf("serve %v: exit %d:\n%s", tt.args, code, errs.String())
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(out.String()), &m); err != nil {
				t.Fatal(err)
			}
			if got := m["memory_dir"]; got != tt.want {
				t.Errorf("serve %v with $RUNAGENT_MEMORY_DIR=%q: memory_dir %v, want %s", tt.args, tt.env, got, tt.want)
			}
		})
	}
}
