package server

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/runagent/runagent/internal/memory"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
	"github.com/runagent/runagent/internal/sandbox/scratch"
	"github.com/runagent/runagent/internal/store/postgres/pgtest"
)

// memoryNodes starts n nodes serving test/e2e/testdata/memory through the
// linux sandbox, on one PostgreSQL store with one master key, keeping
// persistent memory in one directory (a local one stands in for the
// shared file system). It returns the nodes, the directory and the
// store's URL.
func memoryNodes(t *testing.T, n int) ([]*Server, string, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("uid %d: the linux sandbox and persistent memory's loop mounts need root; run as root", os.Geteuid())
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	url := pgtest.Start(t).NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	shared := t.TempDir()
	t.Cleanup(func() {
		// Registered first, so run after the nodes have stopped: every
		// node has let go: nothing of the stores is mounted, and
		// each image is a clean file system (two nodes never wrote it at
		// once).
		if left := scratch.MountsUnder(shared + "/"); len(left) > 0 {
			t.Errorf("mounts left under the shared memory directory: %v", left)
		}
		images, _ := filepath.Glob(filepath.Join(shared, "*", "image"))
		for _, img := range images {
			if out, err := exec.Command("/usr/sbin/e2fsck", "-f", "-n", img).CombinedOutput(); err != nil {
				t.Errorf("e2fsck -n %s: %v\n%s", img, err, out)
			}
		}
	})
	var nodes []*Server
	for range n {
		nodes = append(nodes, serve(t, Config{AgentDirs: []string{"../../test/e2e/testdata/memory"}, Exe: exe, Version: "test",
			Auth: AuthNone, Sandbox: SandboxLinux, StoreURL: url, Keyring: KeyringConfig{MasterKeyFile: keyFile},
			Memory: MemoryConfig{Mode: MemoryOn, Dir: shared}}))
	}
	return nodes, shared, url
}

// memCall runs the memory agent's tag on s for user with persistent
// memory, and returns the status and the decoded answer.
func memCall(t *testing.T, s *Server, user, tag string, kwargs map[string]any, async bool) (int, map[string]json.RawMessage) {
	t.Helper()
	body := map[string]any{"entrypoint_tag": tag, "user_id": user, "persistent_memory": true, "input_kwargs": kwargs}
	if async {
		body["async_execution"] = true
	}
	return call(t, "POST", s.URL()+"/api/v1/agents/"+memoryAgentID+"/run", body)
}

// memOutput decodes a run's output: data is the structured output, a
// JSON string of {"type", "payload"} whose payload is the value as JSON.
func memOutput(t *testing.T, env map[string]json.RawMessage) any {
	t.Helper()
	var structured string
	var out struct {
		Payload string `json:"payload"`
	}
	var v any
	if json.Unmarshal(env["data"], &structured) != nil || json.Unmarshal([]byte(structured), &out) != nil || json.Unmarshal([]byte(out.Payload), &v) != nil {
		return nil
	}
	return v
}

// TestMemorySharedNodes: two nodes on one PostgreSQL store and one
// memory directory. What a user's run writes through node 1 is what
// their next run reads through node 2; a run on node 2 that arrives while
// node 1 runs the same user waits its turn and sees everything the first
// wrote; another user is not held up.
func TestMemorySharedNodes(t *testing.T) {
	nodes, _, _ := memoryNodes(t, 2)
	n1, n2 := nodes[0], nodes[1]

	if status, env := memCall(t, n1, "alice", "remember", map[string]any{"key": "k", "value": "from node 1"}, false); status != http.StatusOK {
		t.Fatalf("remember on node 1: %d %s", status, errorText(env))
	}
	status, env := memCall(t, n2, "alice", "recall", map[string]any{"key": "k"}, false)
	if got := memOutput(t, env); status != http.StatusOK || got != "from node 1" {
		t.Fatalf("recall on node 2 of what alice wrote through node 1: %d %v %s, want %q", status, got, errorText(env), "from node 1")
	}

	// Turns: a slow writer on node 1, then a reader on node 2.
	status, env = memCall(t, n1, "alice", "append_slowly", map[string]any{"key": "log", "n": 20, "delay": 0.05}, true)
	if status != http.StatusAccepted {
		t.Fatalf("background append on node 1: %d %s", status, errorText(env))
	}
	// Bob's memory is not held up by alice's run.
	start := time.Now()
	if status, env := memCall(t, n2, "bob", "recall", map[string]any{}, false); status != http.StatusOK {
		t.Fatalf("bob's run on node 2 while alice's runs on node 1: %d %s", status, errorText(env))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("bob's run took %v while alice's store was held on the other node", d)
	}
	status, env = memCall(t, n2, "alice", "recall", map[string]any{"key": "log"}, false)
	text, _ := memOutput(t, env).(string)
	if status != http.StatusOK || strings.Count(text, "\n") != 20 {
		t.Errorf("the run on node 2 saw %d lines of node 1's 20 (%d %s): the runs of one user overlapped across nodes", strings.Count(text, "\n"), status, errorText(env))
	}
}

// TestMemorySharedLeaseLost: node 1's lock on a user's store ends with its
// database connection (as when node 1 dies, or is cut off) in the middle
// of a run. Node 2 gets the store without waiting for the run's end, only
// for the fence, by which node 1 has stopped its run; the store then holds
// the lines node 1 synced, whole and in order, and its file system is
// clean (checked when the test ends).
func TestMemorySharedLeaseLost(t *testing.T) {
	nodes, _, url := memoryNodes(t, 2)
	n1, n2 := nodes[0], nodes[1]
	status, env := memCall(t, n1, "carol", "append_slowly", map[string]any{"key": "log", "n": 600, "delay": 0.05}, true)
	if status != http.StatusAccepted {
		t.Fatalf("background append on node 1: %d %s", status, errorText(env))
	}
	var id string
	json.Unmarshal(env["invocation_id"], &id)
	time.Sleep(time.Second) // some lines written

	db := pgAdmin(t, url)
	var killed int
	if err := db.QueryRow(t.Context(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'runagent lock'").Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminate the lock's connection: %d terminated, %v; want the one of node 1's run", killed, err)
	}
	start := time.Now()
	status, env = memCall(t, n2, "carol", "recall", map[string]any{"key": "log"}, false)
	took := time.Since(start)
	if status != http.StatusOK {
		t.Fatalf("recall on node 2 after node 1 lost the lock: %d %s", status, errorText(env))
	}
	if took > memory.DefaultFence+10*time.Second {
		t.Errorf("node 2 waited %v for the store: it waited for node 1's run (30 s), not for the lost lock and the fence", took)
	}
	text, _ := memOutput(t, env).(string)
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if text == "" || len(lines) >= 600 {
		t.Fatalf("node 2 read %d lines; want some, and fewer than the run's 600 (it was stopped)", len(lines))
	}
	for i, l := range lines {
		if l != "line "+strconv.Itoa(i) {
			t.Fatalf("line %d is %q: the lines must be whole and in order", i, l)
		}
	}
	// Node 1's run was stopped when its lock was lost.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, env := call(t, "GET", n1.URL()+"/api/v1/invocations/"+id, nil)
		rec := recordOf(t, env)
		if rec.Status != "running" {
			if rec.Status == "completed" {
				t.Errorf("node 1's run completed after it lost the store's lock; want it stopped")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node 1's run still runs 10 s after node 2 took the store")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// And the store keeps working on node 1 afterwards.
	if status, env := memCall(t, n1, "carol", "recall", map[string]any{"key": "log"}, false); status != http.StatusOK {
		t.Errorf("recall on node 1 afterwards: %d %s", status, errorText(env))
	}
}

// TestMemorySharedStoreNeedsDir: a node on a PostgreSQL store with
// persistent memory not off and no --memory-dir refuses to start, saying
// what to set; --memory off, or an explicit --memory-dir, starts.
func TestMemorySharedStoreNeedsDir(t *testing.T) {
	url := pgtest.Start(t).NewDatabase(t)
	keyFile := filepath.Join(t.TempDir(), "master.key")
	cfg := func(mc MemoryConfig) Config {
		return Config{AgentDirs: []string{"../../examples/hello"}, Version: "test", Auth: AuthNone, StoreURL: url,
			Keyring: KeyringConfig{MasterKeyFile: keyFile}, Memory: mc, Addr: "127.0.0.1:0", DataDir: t.TempDir(),
			Exe: "/bin/true", Backend: sandboxtest.EchoBackend{}}
	}
	for _, mode := range []string{MemoryAuto, MemoryOn} {
		s, err := Open(t.Context(), cfg(MemoryConfig{Mode: mode}))
		if err == nil {
			s.Close()
			t.Errorf("--memory %s on PostgreSQL without --memory-dir started; want a refusal", mode)
			continue
		}
		for _, want := range []string{"--memory-dir", "--memory off", "shared"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("--memory %s: refusal %q does not say %q", mode, err, want)
			}
		}
	}
	serve(t, cfg(MemoryConfig{Mode: MemoryOff}))
	serve(t, cfg(MemoryConfig{Mode: MemoryAuto, Dir: t.TempDir()}))
	// SQLite: one node, memory in its data directory as before.
	c := cfg(MemoryConfig{Mode: MemoryAuto})
	c.StoreURL = ""
	serve(t, c)
}

// pgAdmin connects to the database at url, for what a test does behind
// the nodes' backs.
func pgAdmin(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}
