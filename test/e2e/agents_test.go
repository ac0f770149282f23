package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAgentVersionsRollbackDelete walks managing an agent with the real
// binary: two deploys are two versions, a rollback serves the first
// again, an invocation's logs are printed, and a deleted agent is gone
// (its invocation records stay).
func TestAgentVersionsRollbackDelete(t *testing.T) {
	needSandbox(t)
	s := startServer(t)
	const id = "5f1d2c3b-4a59-4687-9a1b-2c3d4e5f6a7b"
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "runagent.config.json"), []byte(`{
  "agent_name": "versioned", "agent_id": "`+id+`",
  "agent_architecture": {"entrypoints": [{"file": "main.py", "module": "which", "tag": "which"}]},
  "auth_settings": {"type": "api_key"}}`), 0o644)
	writeVersion := func(v string) {
		os.WriteFile(filepath.Join(dir, "main.py"), []byte("def which():\n    print('log line of "+v+"')\n    return '"+v+"'\n"), 0o644)
	}
	run := func() string {
		t.Helper()
		return strings.TrimSpace(cli(t, s, "run", "--id", id, "--tag", "which"))
	}

	writeVersion("v1")
	cli(t, s, "deploy", dir)
	writeVersion("v2")
	cli(t, s, "deploy", dir)
	if got := run(); got != "v2" {
		t.Fatalf("run after the second deploy = %q, want v2", got)
	}

	out := cli(t, s, "agents", "versions", id)
	hashes := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindAllString(out, -1)
	if len(hashes) != 2 {
		t.Fatalf("agents versions lists %d versions, want 2:\n%s", len(hashes), out)
	}
	v1 := hashes[1] // newest first
	if !strings.Contains(strings.SplitN(out, "\n", 3)[1], "*") {
		t.Errorf("agents versions: the newest is not marked current:\n%s", out)
	}
	if out := cli(t, s, "agents", "list"); !strings.Contains(out, id) || !strings.Contains(out, "versioned") {
		t.Errorf("agents list:\n%s", out)
	}
	var listed map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(cli(t, s, "agents", "list", "--json"), "\n", 2)[0]), &listed); err != nil {
		t.Errorf("agents list --json: %v", err)
	}

	// A prefix is enough.
	out = cli(t, s, "agents", "rollback", id, "--to", v1[:len("sha256:")+10])
	if !strings.Contains(out, "rolled back to version "+v1) {
		t.Errorf("rollback: %s", out)
	}
	if got := run(); got != "v1" {
		t.Errorf("run after rollback = %q, want v1", got)
	}
	if _, errOut, err := cliResult(s, "agents", "rollback", id, "--to", "ffffffffff"); err == nil || !strings.Contains(errOut, "no version") {
		t.Errorf("rollback to an unknown version: err %v, stderr %q", err, errOut)
	}

	// The logs of an invocation.
	status, env := s.do(t, http.MethodPost, "/api/v1/agents/"+id+"/run", "application/json", strings.NewReader(`{"entrypoint_tag":"which"}`))
	if status != http.StatusOK || env.InvocationID == "" {
		t.Fatalf("run over the API: %d %+v", status, env)
	}
	waitLogs(t, s, env.InvocationID)
	if out := cli(t, s, "logs", env.InvocationID); !strings.Contains(out, "log line of v1") {
		t.Errorf("logs %s = %q, want v1's print", env.InvocationID, out)
	}

	cli(t, s, "delete", "--id", id)
	if status, _ := s.do(t, http.MethodGet, "/api/v1/agents/"+id+"/architecture", "", nil); status != http.StatusNotFound {
		t.Errorf("architecture after delete: %d, want 404", status)
	}
	if _, errOut, err := cliResult(s, "run", "--id", id, "--tag", "which"); err == nil || !strings.Contains(errOut, "not found") {
		t.Errorf("run after delete: err %v, stderr %q", err, errOut)
	}
	if _, _, err := cliResult(s, "agents", "delete", id); err == nil {
		t.Errorf("agents delete of a deleted agent succeeded")
	}
	if out := cli(t, s, "logs", env.InvocationID); !strings.Contains(out, "log line of v1") {
		t.Errorf("logs after delete = %q, want them kept", out)
	}
}
