package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/runagent/runagent/client"
	"github.com/runagent/runagent/internal/server"
)

// TestNodes runs runagent nodes against a real server started with
// --node-id web-1: the table and the JSON lines show it alive with its
// version and address; a key that is not an owner's is refused.
func TestNodes(t *testing.T) {
	s, owner := ownedServer(t, server.Config{NodeID: "web-1", Version: "9.9.9"})
	run := func(key string, args ...string) (int, string, string) {
		t.Helper()
		t.Setenv("RUNAGENT_API_KEY", key)
		var out, errOut strings.Builder
		code := Main(t.Context(), append(args, "--server", s.URL()), strings.NewReader(""), &out, &errOut)
		return code, out.String(), errOut.String()
	}

	code, out, errOut := run(owner, "nodes")
	if code != 0 {
		t.Fatalf("nodes: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "NODE") {
		t.Fatalf("nodes printed %q, want a header and one node", out)
	}
	if f := strings.Fields(lines[1]); len(f) < 7 || f[0] != "web-1" || f[1] != "alive" || !strings.HasSuffix(f[2], "s") || f[3] != "ago" ||
		f[4] != "0" || f[5] != "9.9.9" || f[6] != s.Addr() {
		t.Errorf("nodes row = %q, want web-1 alive, a heartbeat age, 0 running, version 9.9.9, address %s", lines[1], s.Addr())
	}

	code, out, errOut = run(owner, "nodes", "--json")
	if code != 0 {
		t.Fatalf("nodes --json: exit %d: %s", code, errOut)
	}
	var n client.Node
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		t.Fatalf("nodes --json printed %q: %v", out, err)
	}
	if n.ID != "web-1" || n.State != "alive" || n.Version != "9.9.9" || n.StartedAt.IsZero() || n.HeartbeatAge < 0 || n.HeartbeatAge > 60 {
		t.Errorf("nodes --json = %+v, want web-1 alive, version 9.9.9, just started", n)
	}

	// An admin of a project is not an instance owner.
	code, out, errOut = run(owner, "keys", "create", "--name", "ops", "--role", "admin")
	if code != 0 {
		t.Fatalf("keys create: exit %d: %s", code, errOut)
	}
	if code, _, errOut = run(strings.TrimSpace(out), "nodes"); code == 0 || !strings.Contains(strings.ToLower(errOut), "owner") {
		t.Errorf("nodes with an admin key: exit %d, %q; want refused, saying owners may", code, errOut)
	}
}

func TestHeartbeatAge(t *testing.T) {
	for _, tt := range []struct {
		secs float64
		want string
	}{
		{0, "0.0s ago"},
		{1.26, "1.3s ago"},
		{59.9, "59.9s ago"},
		{200.4, "3m20s ago"},
		{7200, "2h0m0s ago"},
	} {
		if got := heartbeatAge(tt.secs); got != tt.want {
			t.Errorf("heartbeatAge(%v) = %q, want %q", tt.secs, got, tt.want)
		}
	}
}
