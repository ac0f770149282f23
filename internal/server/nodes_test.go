package server

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
	"github.com/runagent/runagent/internal/store/sqlite"
)

// holdStream starts a stream on s whose second chunk never comes (the
// backend waits an hour between chunks), waits for its first chunk, and
// returns its invocation's id; the stream is closed when t ends.
func holdStream(t *testing.T, s *Server) string {
	t.Helper()
	req, _ := http.NewRequest("POST", s.URL()+"/api/v1/agents/"+helloID+"/run-stream",
		strings.NewReader(`{"entrypoint_tag":"generate_stream","input_args":[1,2]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("run-stream = %d", resp.StatusCode)
	}
	id := resp.Header.Get("X-Invocation-Id")
	r := bufio.NewReader(resp.Body)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before its first chunk: %v", err)
		}
		if id == "" {
			if v, ok := strings.CutPrefix(strings.TrimSpace(l), "data: "); ok {
				var ev struct {
					InvocationID string `json:"invocation_id"`
				}
				if json.Unmarshal([]byte(v), &ev) == nil {
					id = ev.InvocationID
				}
			}
		}
		if strings.HasPrefix(l, "event: data") {
			break
		}
	}
	if id == "" {
		t.Fatal("the stream named no invocation")
	}
	return id
}

// TestDeadNodeRunsFailed: two nodes on one PostgreSQL, each with a run
// in flight. Node 1 stops heartbeating (as if it crashed); node 2
// declares it dead within the timeout and a sweep, fails node 1's run
// with a message naming it, records one node.dead audit record and
// shows it dead in GET /api/v1/nodes, while its own run goes on. Node 1
// coming back under its id fails nothing of node 2's; a graceful stop
// marks a node stopped.
func TestDeadNodeRunsFailed(t *testing.T) {
	c := pgtest.Start(t)
	url := c.NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	const timeout = 2 * time.Second
	// node opens a node, stopped when t ends unless stopped before.
	node := func(id string) (*Server, func()) {
		s, stop := open(t, Config{AgentDirs: []string{"../../examples/hello"}, Version: "test", Auth: AuthNone,
			Backend: sandboxtest.EchoBackend{ChunkDelay: time.Hour}, StoreURL: url, Keyring: KeyringConfig{MasterKeyFile: keyFile},
			NodeID: id, NodeTimeout: timeout})
		stop = sync.OnceFunc(stop)
		t.Cleanup(stop)
		return s, stop
	}
	n1, stop1 := node("node-1")
	n2, stop2 := node("node-2")
	ctx := t.Context()

	run1, run2 := holdStream(t, n1), holdStream(t, n2)
	for id, node := range map[string]string{run1: "node-1", run2: "node-2"} {
		inv, err := n2.store.Invocation(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != core.StatusRunning || inv.NodeID != node {
			t.Fatalf("invocation %s is %s on %q, want running on %s", id, inv.Status, inv.NodeID, node)
		}
	}

	n1.node.halt() // node 1 stops answering
	halted := time.Now()
	var failed *core.Invocation
	for deadline := halted.Add(timeout + timeout/3 + 5*time.Second); ; {
		inv, err := n2.store.Invocation(ctx, run1)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != core.StatusRunning {
			failed = inv
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 1's run still running %s after its heartbeat stopped (timeout %s)", time.Since(halted), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(halted)
	t.Logf("node 1's run failed %s after its heartbeat stopped (timeout %s)", took.Round(time.Millisecond), timeout)
	if took < timeout-timeout/3 {
		t.Errorf("node 1's run failed %s after its heartbeat stopped: sooner than the timeout %s allows", took, timeout)
	}
	if failed.Status != core.StatusFailed || !strings.Contains(failed.ErrorMessage, "node node-1 stopped answering at ") {
		t.Errorf("node 1's run = %s %q, want failed with \"node node-1 stopped answering at …\"", failed.Status, failed.ErrorMessage)
	}
	if inv, err := n2.store.Invocation(ctx, run2); err != nil || inv.Status != core.StatusRunning {
		t.Errorf("node 2's own run = %+v, %v; want still running", inv, err)
	}

	// The registry, through the API of node 2.
	resp, err := http.Get(n2.URL() + "/api/v1/nodes")
	if err != nil {
		t.Fatal(err)
	}
	var env struct {
		Data struct {
			Nodes []struct {
				ID      string         `json:"node_id"`
				State   core.NodeState `json:"state"`
				Running int64          `json:"running_invocations"`
				Age     float64        `json:"heartbeat_age_seconds"`
			} `json:"nodes"`
		} `json:"data"`
	}
	err = json.NewDecoder(resp.Body).Decode(&env)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/nodes = %d, %v", resp.StatusCode, err)
	}
	if got := env.Data.Nodes; len(got) != 2 ||
		got[0].ID != "node-1" || got[0].State != core.NodeDead || got[0].Running != 0 ||
		got[1].ID != "node-2" || got[1].State != core.NodeAlive || got[1].Running != 1 || got[1].Age > timeout.Seconds() {
		t.Errorf("GET /api/v1/nodes = %+v, want node-1 dead with nothing running, node-2 alive with its run", got)
	}

	// One audit record, by node 2.
	if err := n2.audit.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := n2.audit.Store().AuditRecords(ctx, audit.Filter{Action: "node.dead"})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Resource != "node/node-1" || recs[0].Details["declared_by"] != "node-2" || recs[0].Details["invocations_failed"] != "1" {
		t.Errorf("node.dead audit records = %+v, want one for node-1 by node-2 with 1 invocation failed", recs)
	}

	// Node 1 restarts under its id: alive again, node 2's run untouched.
	stop1()
	n1, _ = node("node-1")
	if inv, err := n1.store.Invocation(ctx, run2); err != nil || inv.Status != core.StatusRunning {
		t.Errorf("node 2's run after node 1 restarted = %+v, %v; want still running", inv, err)
	}
	states := nodeStates(t, n1)
	if states["node-1"] != core.NodeAlive {
		t.Errorf("node 1 after its restart is %s, want alive", states["node-1"])
	}

	// A graceful stop of node 2: stopped, not dead, and nothing of it is
	// left running.
	stop2()
	if got := nodeStates(t, n1)["node-2"]; got != core.NodeStopped {
		t.Errorf("node 2 after a graceful stop is %s, want stopped", got)
	}
	if inv, err := n1.store.Invocation(ctx, run2); err != nil || inv.Status == core.StatusRunning {
		t.Errorf("node 2's run after node 2 stopped = %+v, %v; want finished", inv, err)
	}
}

func nodeStates(t *testing.T, s *Server) map[string]core.NodeState {
	t.Helper()
	nodes, err := s.store.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]core.NodeState{}
	for _, n := range nodes {
		m[n.ID] = n.State()
	}
	return m
}

// TestRestartFailsOwnRuns: on SQLite a restarted server fails what it
// left running, its own and those recorded before nodes were.
func TestRestartFailsOwnRuns(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{AgentDirs: []string{"../../examples/hello"}, Version: "test", Auth: AuthNone, DataDir: dir}
	s, stop := open(t, cfg)
	id := s.cfg.NodeID
	ctx := t.Context()
	for _, inv := range []*core.Invocation{{ID: "own", AgentID: helloID, NodeID: id}, {ID: "before-nodes", AgentID: helloID}} {
		if err := s.store.CreateInvocation(ctx, inv); err != nil {
			t.Fatal(err)
		}
	}
	// A crash: the node is not marked stopped, its runs not failed.
	s.node.halt()
	s.node = nil
	stop()
	s = serve(t, cfg)
	if s.cfg.NodeID != id {
		t.Errorf("node id after a restart = %q, want %q, kept in the data directory", s.cfg.NodeID, id)
	}
	for _, want := range []string{"own", "before-nodes"} {
		inv, err := s.store.Invocation(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != core.StatusFailed || !strings.Contains(inv.ErrorMessage, "restarted") {
			t.Errorf("invocation %s after the restart = %s %q, want failed as interrupted", want, inv.Status, inv.ErrorMessage)
		}
	}
}

func TestLoadNodeID(t *testing.T) {
	dir := t.TempDir()
	id, err := LoadNodeID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := core.CheckNodeID(id); err != nil {
		t.Errorf("LoadNodeID made %q: %v", id, err)
	}
	again, err := LoadNodeID(dir)
	if err != nil || again != id {
		t.Errorf("LoadNodeID again = %q, %v; want %q, kept", again, err, id)
	}
	if fi, err := os.Stat(filepath.Join(dir, NodeIDName)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("node id file: %v, %v; want mode 0600", fi, err)
	}
	if err := os.WriteFile(filepath.Join(dir, NodeIDName), []byte("Not An Id\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadNodeID(dir); err == nil || !strings.Contains(err.Error(), "--node-id") {
		t.Errorf("LoadNodeID of a bad file = %v, want an error saying to fix it or pass --node-id", err)
	}
}

func TestOpenRefusesBadNodeSettings(t *testing.T) {
	for _, tt := range []struct {
		cfg  Config
		want string
	}{
		{Config{NodeID: "Web 1"}, "--node-id"},
		{Config{NodeTimeout: 100 * time.Millisecond}, "--node-timeout"},
	} {
		tt.cfg.Addr, tt.cfg.DataDir, tt.cfg.Auth, tt.cfg.Backend = "127.0.0.1:0", t.TempDir(), AuthNone, sandboxtest.EchoBackend{}
		if _, err := Open(t.Context(), tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Open(node id %q, timeout %s) = %v, want an error naming %s", tt.cfg.NodeID, tt.cfg.NodeTimeout, err, tt.want)
		}
	}
}

func TestHostNodeID(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"web-1", "web-1-abc123"},
		{"Web-1.example.com", "web-1-abc123"},
		{"", "node-abc123"},
		{"---", "node-abc123"},
		{"db_02", "db_02-abc123"},
		{"ünïcode", "n--code-abc123"},
		{strings.Repeat("x", 80), strings.Repeat("x", core.MaxNodeIDLen-7) + "-abc123"},
	} {
		if got := HostNodeID(tt.host, "abc123"); got != tt.want {
			t.Errorf("HostNodeID(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

// FuzzHostNodeID: whatever the host name, the id made of it is valid.
func FuzzHostNodeID(f *testing.F) {
	for _, s := range []string{"web-1", "Web-1.example.com", "", "-", "ünï", strings.Repeat("a-", 40), "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		id := HostNodeID(host, "0a1b2c")
		if err := core.CheckNodeID(id); err != nil {
			t.Errorf("HostNodeID(%q) = %q: %v", host, id, err)
		}
	})
}

// FuzzParseNodeIDFile: a node-id file is accepted only if it holds a
// valid id, returned without the white space around it.
func FuzzParseNodeIDFile(f *testing.F) {
	for _, s := range []string{"web-1\n", "  web-1  ", "", "\n", "Web-1", "web 1", "a/../b", strings.Repeat("a", 64)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseNodeIDFile(b)
		if err != nil {
			return
		}
		if cerr := core.CheckNodeID(id); cerr != nil || id != strings.TrimSpace(string(b)) {
			t.Errorf("ParseNodeIDFile(%q) = %q, which is not the trimmed file or not valid (%v)", b, id, cerr)
		}
	})
}

// TestSweepWaitsAfterOutage: a node whose heartbeat failed (the database
// was out of reach) sweeps again only after a whole timeout of
// successful heartbeats, so that the other nodes, late through no fault
// of theirs, can heartbeat first; then a node still late is declared.
func TestSweepWaitsAfterOutage(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "runagent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	now := t0
	const timeout = 15 * time.Second
	nb := &nodeBeat{store: db, log: slog.New(slog.DiscardHandler), timeout: timeout, now: func() time.Time { return now },
		node: core.Node{ID: "a", Version: "test"}}
	for _, id := range []string{"a", "b"} {
		if err := db.RegisterNode(t.Context(), &core.Node{ID: id, StartedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	nb.healthySince = t0
	state := func() core.NodeState { return nodeStates(t, &Server{store: db})["b"] }

	// The database is out of reach for 20 s: a's heartbeat fails.
	now = t0.Add(5 * time.Second)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	nb.beat(cancelled)
	if !nb.healthySince.IsZero() {
		t.Fatalf("a failed heartbeat left healthySince %v, want zero", nb.healthySince)
	}
	// Back: a heartbeats and sweeps at once; b is 20 s late but a has
	// been healthy for no time.
	now = t0.Add(20 * time.Second)
	nb.beat(t.Context())
	nb.sweep(t.Context())
	if got := state(); got != core.NodeAlive {
		t.Fatalf("b right after the outage is %s, want alive: a swept before b could heartbeat", got)
	}
	now = t0.Add(20*time.Second + timeout - time.Second)
	nb.beat(t.Context())
	nb.sweep(t.Context())
	if got := state(); got != core.NodeAlive {
		t.Fatalf("b is %s before a was healthy for a whole timeout, want alive", got)
	}
	// b never heartbeat again: declared once a has been healthy a timeout.
	now = t0.Add(20*time.Second + timeout)
	nb.beat(t.Context())
	nb.sweep(t.Context())
	if got := state(); got != core.NodeDead {
		t.Errorf("b after a was healthy for a timeout is %s, want dead", got)
	}
}
