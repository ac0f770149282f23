package e2e

import (
	"net/http"
	"strings"
	"testing"
)

// TestDBAndAuditThroughServer: with --server, runagent db and runagent
// audit read through the server's API (an owner's key) instead of the
// local store, which a machine other than the server's does not have.
func TestDBAndAuditThroughServer(t *testing.T) {
	s := startServer(t)
	status, env := s.run(t, map[string]any{"entrypoint_tag": "value", "input_kwargs": map[string]any{"kind": "integer"}})
	if status != http.StatusOK {
		t.Fatalf("run: %d %+v", status, env.Error)
	}
	must := func(args ...string) string {
		t.Helper()
		out, errOut, err := cliAs(s, s.OwnerKey, args...)
		if err != nil {
			t.Fatalf("runagent %s: %v\n%s%s", strings.Join(args, " "), err, out, errOut)
		}
		return out
	}
	if out := must("db", "invocations", "--server", s.URL, "--agent", agentID); !strings.Contains(out, env.InvocationID) {
		t.Errorf("db invocations --server does not list %s:\n%s", env.InvocationID, out)
	}
	if out := must("db", "invocation", "--server", s.URL, env.InvocationID); !strings.Contains(out, "completed") {
		t.Errorf("db invocation --server:\n%s", out)
	}
	if out := must("audit", "verify", "--server", s.URL); !strings.Contains(out, "audit trail OK") {
		t.Errorf("audit verify --server:\n%s", out)
	}
	if out := must("audit", "list", "--server", s.URL, "--action", "invocation.run"); !strings.Contains(out, "invocation.run") {
		t.Errorf("audit list --server:\n%s", out)
	}
	if out := must("audit", "export", "--server", s.URL, "--action", "invocation.run"); !strings.Contains(out, `"action":"invocation.run"`) {
		t.Errorf("audit export --server:\n%s", out)
	}
	if _, errOut, err := cliAs(s, s.OwnerKey, "db", "invocations", "--server", s.URL); err == nil || !strings.Contains(errOut, "--agent") {
		t.Errorf("db invocations --server without --agent: %v %s", err, errOut)
	}
}
