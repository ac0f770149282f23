package e2e

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

const layoutID = "7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f"

// TestRunAgentLayout: a project laid out as RunAgent's templates are runs
// unchanged: main.py imports its sibling relatively (no __init__.py), an
// entrypoint in src/tools imports its sibling absolutely and its parent's
// module relatively, and the agent keeps SQLite memory beside its code —
// which lasts for one sandbox only and never reaches the deployed copy.
func TestRunAgentLayout(t *testing.T) {
	needSandbox(t)
	s := startServer(t, "testdata/layout")
	call := func(tag string, kwargs map[string]any) any {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"entrypoint_tag": tag, "input_kwargs": kwargs})
		status, env := s.do(t, http.MethodPost, "/api/v1/agents/"+layoutID+"/run", "application/json", strings.NewReader(string(b)))
		if status != http.StatusOK || !env.Success {
			t.Fatalf("%s: status %d, error %+v", tag, status, env.Error)
		}
		var str string
		json.Unmarshal(env.Data, &str)
		_, v := decodeStructured(t, str)
		return v
	}
	for i := range 2 {
		got, _ := call("respond", map[string]any{"prompt": "hi"}).(map[string]any)
		if got["reply"] != "mock reply to hi" || num(got["turns"]) != 1 || !strings.Contains(compact(got["files"]), "memory.sqlite") {
			t.Errorf("respond #%d = %v, want the mock reply, 1 turn (a fresh sandbox each time) and memory.sqlite beside main.py", i+1, got)
		}
	}
	if got := call("tool", nil); got != "shared via helper" {
		t.Errorf("tool = %v, want %q", got, "shared via helper")
	}
	// The deployed copy and the project: a sandbox's own scratch disk,
	// which holds its writes while it lives, is another matter (it may
	// still be mounted while the sandbox is torn down after its answer).
	for _, dir := range []string{filepath.Join(s.DataDir, "code"), "testdata/layout"} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Name() == "memory.sqlite" {
				t.Errorf("the agent's memory reached the host: %s", path)
			}
			return nil
		})
	}
}
