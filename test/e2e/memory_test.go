package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// memoryAgentID is testdata/memory's agent: it keeps notes per user in
// its persistent folders "notes" and "state/cache" (16 MiB per user).
const memoryAgentID = "7f1c2b3a-4d5e-4f60-8a9b-0c1d2e3f4a5c"

// memRun calls the memory agent as key (the owner's when ""), for user
// (with persistent_memory unless user is ""), and returns the status and
// the result decoded from its structured string (or the error envelope).
func (s *server) memRun(t *testing.T, key, user, tag string, kwargs map[string]any) (int, any, *envelope) {
	t.Helper()
	body := map[string]any{"entrypoint_tag": tag, "input_kwargs": kwargs}
	if user != "" {
		body["user_id"], body["persistent_memory"] = user, true
	}
	b, _ := json.Marshal(body)
	hdr := map[string]string{}
	if key != "" {
		hdr["Authorization"] = "Bearer " + key
	}
	status, env := s.doWith(t, "POST", "/api/v1/agents/"+memoryAgentID+"/run", "application/json", bytes.NewReader(b), hdr)
	if status != 200 || !env.Success {
		return status, nil, env
	}
	var structured string
	json.Unmarshal(env.Data, &structured)
	_, v := decodeStructured(t, structured)
	return status, v, env
}

func notesOf(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("recall returned %#v, want an object", v)
	}
	notes, _ := m["notes"].(map[string]any)
	return notes
}

// TestPersistentMemoryE2E: with persistent_memory and a user_id, what an
// agent writes in its persistent folders is there at the user's next run,
// after a restart and for a new version of the agent; other users and
// runs without persistent_memory see none of it; the credential must be
// entitled to the user; the cap holds; erasure leaves nothing.
func TestPersistentMemoryE2E(t *testing.T) {
	needSandbox(t)
	data := t.TempDir()
	agentDir := filepath.Join(t.TempDir(), "memory")
	if err := os.CopyFS(agentDir, os.DirFS("testdata/memory")); err != nil {
		t.Fatal(err)
	}
	s := startServerIn(t, data, agentDir, "--memory", "on", "--memory-max-files", "300")

	if status, v, env := s.memRun(t, "", "alice", "remember", map[string]any{"key": "colour", "value": "green"}); status != 200 {
		t.Fatalf("alice remembers: %d %+v", status, env.Error)
	} else if l, _ := v.([]any); len(l) != 1 || l[0] != "colour" {
		t.Errorf("remember returned %#v", v)
	}
	_, v, _ := s.memRun(t, "", "alice", "recall", nil)
	if notes := notesOf(t, v); notes["colour"] != "green" || v.(map[string]any)["last"] != "colour" {
		t.Errorf("alice's next run sees %#v, want her note in both folders", v)
	}
	if _, v, _ := s.memRun(t, "", "bob", "recall", nil); len(notesOf(t, v)) != 0 {
		t.Errorf("bob sees %#v, want nothing of alice's", v)
	}
	// Without persistent_memory the folder is not there at all.
	status, _, env := s.memRun(t, "", "", "recall", nil)
	if status == 200 && env.Success {
		t.Errorf("a run without persistent_memory read the notes folder: %s", env.Data)
	}

	// A key for alice only: bob is refused with 403 and a security event.
	out, _, err := cliAs(s, s.OwnerKey, "keys", "create", "--name", "alice-app", "--role", "user", "--users", "alice")
	if err != nil {
		t.Fatalf("keys create --users alice: %v", err)
	}
	aliceKey := strings.TrimSpace(out)
	if status, _, env := s.memRun(t, aliceKey, "bob", "recall", nil); status != http.StatusForbidden {
		t.Errorf("alice's key asking for bob's memory: %d %+v, want 403", status, env.Error)
	}
	if status, v, env := s.memRun(t, aliceKey, "alice", "recall", nil); status != 200 || notesOf(t, v)["colour"] != "green" {
		t.Errorf("alice's key for alice: %d %+v %#v", status, env.Error, v)
	}
	_, env = s.do(t, "GET", "/api/v1/events?type=user_denied", "", nil)
	if !strings.Contains(string(env.Data), "user_denied") {
		t.Errorf("no user_denied security event after the refusal: %s", env.Data)
	}

	// The cap: 16 MiB per user; writing 40 fails inside the agent.
	if _, v, env := s.memRun(t, "", "alice", "fill", map[string]any{"mb": 40}); v == nil {
		t.Errorf("fill: %+v", env.Error)
	} else if m := v.(map[string]any); m["error"] == nil || num(m["written_mb"]) > 16 {
		t.Errorf("fill past the cap: %#v, want it stopped by the store's size", m)
	} else {
		t.Logf("fill: %v", m)
	}
	if _, v, env := s.memRun(t, "", "alice", "many_files", map[string]any{"n": 1000}); v == nil {
		t.Errorf("many_files: %+v", env.Error)
	} else if m := v.(map[string]any); m["error"] == nil || num(m["made"]) > 300 {
		t.Errorf("many files past --memory-max-files 300: %#v", m)
	} else {
		t.Logf("many_files: %v", m)
	}

	// Restart, and a new version of the agent: the memory stays.
	s.stop()
	os.WriteFile(filepath.Join(agentDir, "agent.py"), append(mustRead(t, filepath.Join(agentDir, "agent.py")), []byte("\n# version 2\n")...), 0o644)
	s = startServerIn(t, data, agentDir, "--memory", "on")
	if _, v, env := s.memRun(t, "", "alice", "recall", map[string]any{"key": "colour"}); v != "green" {
		t.Errorf("after a restart and a new version, alice's note: %#v %+v", v, env.Error)
	}

	// Erasure: the admin deletes alice's memory; nothing of it is left.
	if status, env := s.do(t, "DELETE", "/api/v1/agents/"+memoryAgentID+"/memory/alice", "", nil); status != 200 {
		t.Fatalf("delete alice's memory: %d %+v", status, env.Error)
	}
	_, env = s.do(t, "GET", "/api/v1/agents/"+memoryAgentID+"/memory", "", nil)
	if strings.Contains(string(env.Data), `"alice"`) {
		t.Errorf("alice is still listed after the deletion: %s", env.Data)
	}
	if _, v, _ := s.memRun(t, "", "alice", "recall", nil); len(notesOf(t, v)) != 0 {
		t.Errorf("after erasure alice's run sees %#v", v)
	}

	// Deleting the agent erases what it kept of every user.
	s.memRun(t, "", "dave", "remember", map[string]any{"key": "k", "value": "v"})
	if n := storeImages(t, data); n < 2 {
		t.Fatalf("%d store images on disk with alice's and dave's memory, want 2", n)
	}
	if status, env := s.do(t, "DELETE", "/api/v1/agents/"+memoryAgentID, "", nil); status != 200 {
		t.Fatalf("delete the agent: %d %+v", status, env.Error)
	}
	if n := storeImages(t, data); n != 0 {
		t.Errorf("%d store images left on disk after the agent's deletion", n)
	}
}

// storeImages counts the persistent memory images under data.
func storeImages(t *testing.T, data string) int {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(data, "memory", "*", "image"))
	if err != nil {
		t.Fatal(err)
	}
	return len(matches)
}

// TestPersistentMemorySerializedE2E: two runs of one user take turns (the
// second starts when the first's sandbox has ended, and sees all it
// wrote); a server killed with SIGKILL in the middle of a run leaves the
// store mountable, holding every line the agent had synced.
func TestPersistentMemorySerializedE2E(t *testing.T) {
	needSandbox(t)
	data := t.TempDir()
	s := startServerIn(t, data, "testdata/memory", "--memory", "on")
	b, _ := json.Marshal(map[string]any{"entrypoint_tag": "append_slowly", "async_execution": true,
		"user_id": "carol", "persistent_memory": true, "input_kwargs": map[string]any{"key": "log", "n": 20, "delay": 0.05}})
	status, env := s.do(t, "POST", "/api/v1/agents/"+memoryAgentID+"/run", "application/json", bytes.NewReader(b))
	if status != http.StatusAccepted {
		t.Fatalf("async append: %d %+v", status, env.Error)
	}
	_, v, _ := s.memRun(t, "", "carol", "recall", map[string]any{"key": "log"})
	if lines := strings.Count(v.(string), "\n"); lines != 20 {
		t.Errorf("the second run saw %d lines of the first's 20: the runs of one user overlapped", lines)
	}

	// SIGKILL in the middle of a run.
	b, _ = json.Marshal(map[string]any{"entrypoint_tag": "append_slowly", "async_execution": true,
		"user_id": "carol", "persistent_memory": true, "input_kwargs": map[string]any{"key": "crash", "n": 200, "delay": 0.02}})
	if status, env := s.do(t, "POST", "/api/v1/agents/"+memoryAgentID+"/run", "application/json", bytes.NewReader(b)); status != http.StatusAccepted {
		t.Fatalf("async append: %d %+v", status, env.Error)
	}
	time.Sleep(1500 * time.Millisecond)
	s.cmd.Process.Kill()
	s.stop()
	s = startServerIn(t, data, "testdata/memory", "--memory", "on")
	_, v, env = s.memRun(t, "", "carol", "recall", map[string]any{"key": "crash"})
	text, _ := v.(string)
	if text == "" {
		t.Fatalf("after SIGKILL the store holds no line of the run (%+v)", env.Error)
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, l := range lines {
		if l != "line "+strconv.Itoa(i) {
			t.Fatalf("after SIGKILL line %d is %q: synced lines must survive whole and in order", i, l)
		}
	}
	if _, v, _ := s.memRun(t, "", "carol", "recall", map[string]any{"key": "log"}); strings.Count(v.(string), "\n") != 20 {
		t.Errorf("the earlier run's note after SIGKILL: %q", v)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
