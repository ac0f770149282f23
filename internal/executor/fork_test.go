package executor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/linux"
	"github.com/runagent/runagent/internal/sandbox/linux/linuxtest"
)

// TestForkServerLinux: with Fork, a version's pooled sandboxes are forks
// of one template on the real linux backend: each run sees the agent
// imported and none of another run's memory; Evict ends the template.
func TestForkServerLinux(t *testing.T) {
	const src = "import os\nCOUNT = [0]\nIMPORTED = os.getpid()\ndef f(x):\n    COUNT[0] += 1\n    return {'pid': os.getpid(), 'count': COUNT[0], 'x': x}\n"
	e, req, dir := forkExec(t, linuxtest.Server(t), 2, src)
	agentDir := req.AgentDir

	forkedRuns := 0
	for i := range 8 {
		var got struct{ Pid, Count, X int }
		json.Unmarshal(runResult(t, e, req), &got)
		if got.Count != 1 || got.X != 7 {
			t.Errorf("run %d: %+v, want a fresh interpreter state and x=7", i, got)
		}
		if got.Pid == 1 {
			forkedRuns++ // a forked run is PID 1 of its namespace
		}
		time.Sleep(100 * time.Millisecond) // the pool refills
	}
	st := e.Stats()
	if st.Forked == 0 || forkedRuns == 0 || st.Templates != 1 {
		t.Fatalf("stats %+v, %d runs were forks: want forked runs from one template", st, forkedRuns)
	}
	t.Logf("%d of 8 runs were forked; stats %+v", forkedRuns, st)

	// A crashed template is replaced at the next need; the run that
	// needed it is served.
	var p *pool
	e.mu.Lock()
	for _, q := range e.pools {
		p = q
	}
	e.mu.Unlock()
	p.fork.mu.Lock()
	old := p.fork.tmpl
	p.fork.mu.Unlock()
	old.Kill()
	old.Wait()
	// Its pooled runs end with it (their PID namespaces are its own's
	// children); their watchers take them out of the pool. (A request
	// that took one in that instant would fail as with any pooled
	// sandbox that dies under it.)
	deadline := time.Now().Add(10 * time.Second)
	for e.Stats().Ready > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for range 3 {
		runResult(t, e, req)
	}
	p.fork.mu.Lock()
	replaced := p.fork.tmpl != nil && p.fork.tmpl != old
	p.fork.mu.Unlock()
	if !replaced || e.Stats().Templates != 1 {
		t.Errorf("the crashed template was not replaced (stats %+v)", e.Stats())
	}

	// Another version has a template of its own.
	other := filepath.Join(dir, "agent2")
	os.Mkdir(other, 0o755)
	os.WriteFile(filepath.Join(other, "main.py"), []byte(src), 0o644)
	req2 := req
	req2.AgentDir = other
	runResult(t, e, req2)
	if n := e.Stats().Templates; n != 2 {
		t.Errorf("%d templates for two versions, want 2", n)
	}
	e.Evict(other)
	e.Evict(agentDir)
	deadline = time.Now().Add(10 * time.Second)
	for e.Stats().Templates != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.Stats().Templates; n != 0 {
		t.Errorf("%d templates after Evict", n)
	}
}

// flakyTemplates fails its first StartTemplate calls (with never, as
// a version that may never be forked).
type flakyTemplates struct {
	*linux.Backend
	fails atomic.Int32
	never bool
}

func (f *flakyTemplates) StartTemplate(ctx context.Context, spec sandbox.Spec) (sandbox.Template, error) {
	if f.never {
		return nil, &sandbox.NotForkableError{Reason: "never"}
	}
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("no template this time")
	}
	return f.Backend.StartTemplate(ctx, spec)
}

// TestForkServerRetry: a version whose template failed to start is served
// by started sandboxes, then, templateRetry later, forked again.
func TestForkServerRetry(t *testing.T) {
	b := &flakyTemplates{Backend: linuxtest.Server(t)}
	b.fails.Store(1)
	e, req, _ := forkExec(t, b, -1, "def f(x):\n    return x\n")
	p := &pool{init: guest.Init{Entrypoints: []guest.EntrypointRef{{Tag: "f", File: "main.py", Module: "f"}}}, req: req}
	runOne := func() sandbox.Sandbox {
		spec, err := e.spec(req)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := e.newSandbox(context.Background(), p, spec)
		if err != nil {
			t.Fatal(err)
		}
		sb.Kill()
		sb.Wait()
		return sb
	}
	runOne()
	runOne()
	if st := e.Stats(); st.Forked != 0 || st.Templates != 0 {
		t.Fatalf("stats %+v: forked while the template is to be retried later", st)
	}
	p.fork.mu.Lock()
	if p.fork.retryAt.IsZero() {
		t.Error("no retry time after the template failed")
	}
	p.fork.retryAt = time.Now() // as if templateRetry had passed
	p.fork.mu.Unlock()
	runOne()
	if st := e.Stats(); st.Forked != 1 || st.Templates != 1 {
		t.Errorf("stats %+v: want the retried template to fork", st)
	}
	e.dropFork(p)

	// A version that may never be forked is not retried.
	b.never = true
	p = &pool{init: p.init, req: req}
	runOne()
	p.fork.mu.Lock()
	if p.fork.unusable != "never" || !p.fork.retryAt.IsZero() {
		t.Errorf("after a NotForkableError: unusable %q, retry at %v; want never, no retry", p.fork.unusable, p.fork.retryAt)
	}
	p.fork.mu.Unlock()
}

// forkExec returns an executor with Fork on backend b (pools of poolSize)
// running Debian's Python, a request for f(7) of an agent whose main.py is
// src, and the directory the agent is in.
func forkExec(t *testing.T, b sandbox.Backend, poolSize int, src string) (*Executor, Request, string) {
	t.Helper()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	shim, err := python.WriteShim(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Config{Backend: b, Interpreters: []Interpreter{{Python: "/usr/bin/python3", ShimPath: shim}},
		PoolSize: poolSize, Fork: true, StartTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	agentDir := filepath.Join(dir, "agent")
	if err := os.Mkdir(agentDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(agentDir, "main.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ac := &core.AgentConfig{AgentID: "forked", Entrypoints: []core.Entrypoint{{Tag: "f", Kind: core.KindPython, File: "main.py", Module: "f"}}}
	return e, Request{InvocationID: "inv", AgentDir: agentDir, Config: ac, Entrypoint: ac.Entrypoints[0], Args: json.RawMessage(`[7]`)}, dir
}

// runResult runs req and returns its result's value.
func runResult(t *testing.T, e *Executor, req Request) json.RawMessage {
	t.Helper()
	run, err := e.Start(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	for {
		ev, err := run.Next()
		if err != nil {
			t.Fatalf("%v; logs %s", err, run.Close().Logs)
		}
		if ev.Kind == guest.Result {
			return ev.Value
		}
	}
}
