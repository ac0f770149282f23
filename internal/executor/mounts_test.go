//go:build linux

package executor

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/linux/linuxtest"
)

// memoryAgent counts its calls in a global (a kept or reused sandbox
// shows a count above 1) and keeps a note in memory/ when it has one.
const memoryAgent = `import os
count = 0

def f(x):
    global count
    count += 1
    prev = None
    if os.path.exists("memory/note.txt"):
        with open("memory/note.txt") as fh:
            prev = fh.read()
    if os.path.isdir("memory"):
        with open("memory/note.txt", "w") as fh:
            fh.write(str(x))
    return {"count": count, "prev": prev, "pid": os.getpid()}
`

type memoryReply struct {
	Count int     `json:"count"`
	Prev  *string `json:"prev"`
	PID   int     `json:"pid"`
}

func memoryRun(t *testing.T, e *Executor, req Request, x string, mounts ...sandbox.Mount) memoryReply {
	t.Helper()
	req.Args = json.RawMessage(`["` + x + `"]`)
	req.Mounts = mounts
	res, logs, err := runExit(e, t.Context(), req)
	if err != nil {
		t.Fatalf("run %s: %v (logs %q)", x, err, logs)
	}
	var r memoryReply
	if err := json.Unmarshal([]byte(res), &r); err != nil {
		t.Fatalf("reply %s: %v", res, err)
	}
	return r
}

func prev(r memoryReply) string {
	if r.Prev == nil {
		return "<none>"
	}
	return *r.Prev
}

// TestMountsNeverPooledNorKept: a request with mounts starts a sandbox of
// its own, with them, even where a pooled or kept sandbox is ready, and
// its sandbox is not kept for the user's next run.
func TestMountsNeverPooledNorKept(t *testing.T) {
	e, b, req := realAgentExec(t, Config{PoolSize: 2}, memoryAgent, core.Resources{ReusePerUser: true}, "f")
	req.UserID, req.Caller = "alice", "key:k"
	mem := t.TempDir()
	mount := sandbox.Mount{Host: mem, Guest: "/agent/memory"}

	// alice's sandbox is kept after a run without mounts...
	if r := memoryRun(t, e, req, "plain"); r.Count != 1 {
		t.Fatalf("first run %+v", r)
	}
	waitFor(t, "the pool to fill", func() bool { return e.Stats().Ready == 2 })
	before := e.Stats()
	if before.Kept != 1 {
		t.Fatalf("Stats %+v: want alice's sandbox kept", before)
	}
	// ...but a run with mounts takes neither it nor a pooled one.
	r1 := memoryRun(t, e, req, "one", mount)
	r2 := memoryRun(t, e, req, "two", mount)
	if r1.Count != 1 || r2.Count != 1 || r1.PID == r2.PID {
		t.Errorf("runs with mounts = %+v, %+v; want a fresh sandbox each", r1, r2)
	}
	if prev(r1) != "<none>" || prev(r2) != "one" {
		t.Errorf("runs with mounts saw notes %q then %q; want none, then the first's", prev(r1), prev(r2))
	}
	if data, _ := os.ReadFile(filepath.Join(mem, "note.txt")); string(data) != "two" {
		t.Errorf("the host directory holds %q, want the second run's note", data)
	}
	after := e.Stats()
	if after.Hits != before.Hits || after.Reused != before.Reused || after.Kept != 1 || after.Ready != 2 {
		t.Errorf("Stats before %+v, after %+v: runs with mounts took a pooled or kept sandbox, or were kept", before, after)
	}
	// alice's kept sandbox never had the mount; it serves her next run
	// without it.
	if r := memoryRun(t, e, req, "three"); r.Count != 2 || prev(r) != "<none>" {
		t.Errorf("alice's run without mounts = %+v (note %q); want her kept sandbox, which sees no note", r, prev(r))
	}
	withMounts := 0
	for _, sb := range b.Started() {
		if len(sb.Spec.Mounts) > 0 {
			withMounts++
		}
	}
	if withMounts != 2 {
		t.Errorf("%d sandboxes started with mounts; want one for each of the two runs with mounts", withMounts)
	}
}

// TestMountsPooledLinux: on the linux backend with fork servers, a
// request with mounts takes a run forked ahead (the warm pool), whose
// waiter attaches them before its invoke; the pool refills, and its next
// run, without mounts, sees none of them.
func TestMountsPooledLinux(t *testing.T) {
	e, req, _ := forkExec(t, linuxtest.Server(t), 1, memoryAgent)
	mem := t.TempDir()
	mount := sandbox.Mount{Host: mem, Guest: "/agent/memory"}

	if r := memoryRun(t, e, req, "plain"); r.Count != 1 {
		t.Fatalf("first run %+v", r)
	}
	var rs []memoryReply
	for _, x := range []string{"one", "two"} {
		waitFor(t, "the pool to fill", func() bool { return e.Stats().Ready == 1 })
		before := e.Stats()
		rs = append(rs, memoryRun(t, e, req, x, mount))
		after := e.Stats()
		if after.Hits != before.Hits+1 || after.Misses != before.Misses {
			t.Errorf("run %s with mounts: Stats before %+v, after %+v; want it served by the pooled run", x, before, after)
		}
		if after.Kept != 0 {
			t.Errorf("run %s with mounts was kept (%+v)", x, after)
		}
	}
	if prev(rs[0]) != "<none>" || prev(rs[1]) != "one" {
		t.Errorf("runs with mounts saw notes %q then %q; want none, then the first's", prev(rs[0]), prev(rs[1]))
	}
	if rs[0].PID != 1 || rs[1].PID != 1 || rs[0].Count != 1 || rs[1].Count != 1 {
		t.Errorf("runs with mounts %+v: want each a fresh forked run (PID 1 of its namespace)", rs)
	}
	if data, _ := os.ReadFile(filepath.Join(mem, "note.txt")); string(data) != "two" {
		t.Errorf("the host directory holds %q, want the second run's note", data)
	}
	// The next pooled run, forked ahead, has no mount.
	waitFor(t, "the pool to fill", func() bool { return e.Stats().Ready == 1 })
	if r := memoryRun(t, e, req, "pooled"); prev(r) != "<none>" {
		t.Errorf("a run without mounts saw the note %q", prev(r))
	}
	if data, _ := os.ReadFile(filepath.Join(mem, "note.txt")); string(data) != "two" {
		t.Errorf("a run without mounts changed the host directory: %q", data)
	}
}

// TestMountsPooledAttachFailsLinux: a pooled run whose mounts cannot be
// attached (its mount point is a link the agent's code made) fails the
// request and is killed, never returned to the pool.
func TestMountsPooledAttachFailsLinux(t *testing.T) {
	e, req, _ := forkExec(t, linuxtest.Server(t), 1, memoryAgent)
	if err := os.Symlink("/usr", filepath.Join(req.AgentDir, "data")); err != nil {
		t.Fatal(err)
	}
	if r := memoryRun(t, e, req, "plain"); r.Count != 1 {
		t.Fatalf("first run %+v", r)
	}
	waitFor(t, "the pool to fill", func() bool { return e.Stats().Ready == 1 })
	before := e.Stats()
	req.Args = json.RawMessage(`["x"]`)
	req.Mounts = []sandbox.Mount{{Host: t.TempDir(), Guest: "/agent/data/x"}}
	_, _, err := runExit(e, t.Context(), req)
	if err == nil {
		t.Fatal("a run whose mount point is a link succeeded")
	}
	t.Logf("the run: %v", err)
	after := e.Stats()
	if after.Hits != before.Hits+1 {
		t.Errorf("Stats before %+v, after %+v: want the pooled run taken", before, after)
	}
	waitFor(t, "the runs to end", func() bool { return e.Stats().Running == 0 })
	waitFor(t, "the pool to refill", func() bool { return e.Stats().Ready == 1 })
	req.Mounts = nil
	if r := memoryRun(t, e, req, "after"); r.Count != 1 || r.PID != 1 {
		t.Errorf("the run after the failure %+v: want a fresh forked run", r)
	}
}
