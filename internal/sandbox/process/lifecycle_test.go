//go:build linux

package process

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// pids is what the process agents report about themselves.
type pids struct {
	Pgid       int `json:"pgid"`
	Child      int `json:"child"`
	Shim       int `json:"shim"`
	Supervisor int `json:"supervisor"`
}

const spawner = `import os, subprocess, time

def report(p):
    return {"pgid": os.getpgrp(), "child": p.pid, "shim": os.getpid(), "supervisor": os.getppid()}

def hang():
    p = subprocess.Popen(["sleep", "1000"])
    yield report(p)
    time.sleep(1000)

def leave_behind():
    # Returns at once, leaving a child that holds stdout open.
    return report(subprocess.Popen(["sleep", "1000"]))
`

func decodePids(tb testing.TB, raw string) pids {
	tb.Helper()
	var p pids
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		tb.Fatalf("decoding %s: %v", raw, err)
	}
	if p.Pgid == 0 || p.Child == 0 {
		tb.Fatalf("agent reported %s", raw)
	}
	return p
}

// TestKill checks Kill ends the whole group, the agent's own children
// included, and Wait then reaps the supervisor.
func TestKill(t *testing.T) {
	a := startAgent(t, map[string]string{"main.py": spawner}, refs("h_stream=hang"), options{})
	a.invoke(t, call{tag: "h_stream", stream: true})
	ev, err := a.next(t, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	p := decodePids(t, string(ev.Value))
	if p.Pgid != p.Supervisor {
		t.Errorf("agent's process group %d is not the supervisor's pid %d", p.Pgid, p.Supervisor)
	}
	if !alive(p.Child) {
		t.Fatalf("agent's child %d is not running", p.Child)
	}

	if err := a.sb.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if err := a.sb.Kill(); err != nil {
		t.Errorf("second Kill: %v", err)
	}
	done := make(chan sandbox.Exit, 1)
	go func() { done <- a.sb.Wait() }()
	var exit sandbox.Exit
	select {
	case exit = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return within 10s of Kill")
	}
	if exit.Code != -1 || exit.Signal != "SIGKILL" {
		t.Errorf("exit %d (%q), want -1 (SIGKILL)", exit.Code, exit.Signal)
	}
	if _, err := a.conn.Next(); !errors.Is(err, guest.ErrClosed) {
		t.Errorf("Next after Kill: got %v, want ErrClosed", err)
	}
	waitGroupDead(t, p.Pgid)
	if state, pgrp, ok := procState(p.Supervisor); ok && pgrp == p.Pgid {
		t.Errorf("supervisor %d still exists (state %s) after Wait", p.Supervisor, state)
	}
	if err := a.sb.Kill(); err != nil {
		t.Errorf("Kill after Wait: %v", err)
	}
}

// TestLeftBehind checks Wait returns promptly, and kills the rest, when the
// guest finished but left a child holding the log pipe.
func TestLeftBehind(t *testing.T) {
	a := startAgent(t, map[string]string{"main.py": spawner}, refs("t=leave_behind"), options{})
	o := a.run(t, call{tag: "t"})
	if o.err != nil {
		t.Fatal(o.err)
	}
	p := decodePids(t, o.result)
	start := time.Now()
	exit := a.sb.Wait()
	if d := time.Since(start); d > logDrainTimeout {
		t.Errorf("Wait took %v, want well under %v", d, logDrainTimeout)
	}
	if exit.Code != 0 {
		t.Errorf("exit %d (%q), want 0", exit.Code, exit.Signal)
	}
	waitGroupDead(t, p.Pgid)
}

// TestControlChannelProtected checks the agent cannot write to the control
// channel through fd 3, its children do not inherit the channel, and its
// stdin is /dev/null.
func TestControlChannelProtected(t *testing.T) {
	const src = `import os, subprocess, sys

def poke():
    try:
        os.write(3, b"\x00\x00\x00\x05garbage")
        wrote = "wrote to fd 3"
    except OSError as e:
        wrote = type(e).__name__
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(' '.join(sorted(os.readlink('/proc/self/fd/' + f) for f in os.listdir('/proc/self/fd'))))"],
        close_fds=False, capture_output=True, text=True,
    ).stdout.strip()
    return {"write": wrote, "child_fds": child, "stdin": os.readlink("/proc/self/fd/0"), "read": sys.stdin.read()}
`
	a := startAgent(t, map[string]string{"main.py": src}, refs("t=poke"), options{})
	o := a.run(t, call{tag: "t"})
	if o.err != nil {
		t.Fatalf("call failed: %v", o.err)
	}
	var got struct {
		Write    string `json:"write"`
		ChildFDs string `json:"child_fds"`
		Stdin    string `json:"stdin"`
		Read     string `json:"read"`
	}
	if err := json.Unmarshal([]byte(o.result), &got); err != nil {
		t.Fatal(err)
	}
	if got.Write != "OSError" {
		t.Errorf("writing to fd 3: %s, want OSError", got.Write)
	}
	if strings.Contains(got.ChildFDs, "socket:") {
		t.Errorf("the agent's child inherited a socket: %s", got.ChildFDs)
	}
	if got.Stdin != "/dev/null" || got.Read != "" {
		t.Errorf("stdin is %q and reads %q, want /dev/null and nothing", got.Stdin, got.Read)
	}
}

func TestChunkTooLarge(t *testing.T) {
	const src = `def big():
    yield "x" * (4 << 20)
`
	a := startAgent(t, map[string]string{"main.py": src}, refs("b_stream=big"), options{maxFrame: 64 << 10})
	o := a.run(t, call{tag: "b_stream", stream: true})
	if _, ok := errors.AsType[*guest.ProtocolError](o.err); !ok || !errors.Is(o.err, guest.ErrFrameTooLarge) {
		t.Fatalf("call ended with %d chunks, %v; want a frame-too-large protocol error", len(o.chunks), o.err)
	}
}

func TestOutputLimit(t *testing.T) {
	const src = `def many():
    for i in range(100):
        yield "x" * 10000
`
	a := startAgent(t, map[string]string{"main.py": src}, refs("m_stream=many"), options{})
	a.conn.SetMaxOutput(50000)
	o := a.run(t, call{tag: "m_stream", stream: true})
	if !errors.Is(o.err, guest.ErrOutputLimit) || len(o.chunks) != 4 {
		t.Fatalf("call ended with %d chunks, %v; want 4 chunks then ErrOutputLimit", len(o.chunks), o.err)
	}
}

// TestWarmDiscard checks a guest that got init but no invoke exits cleanly
// when the host closes the channel.
func TestWarmDiscard(t *testing.T) {
	a := startAgent(t, map[string]string{"main.py": "def f():\n    return 1\n"}, refs("f"), options{})
	a.conn.Close()
	exit := a.sb.Wait()
	if exit.Code != 0 || exit.Logs != "" {
		t.Errorf("discarded guest exited %d with logs %q, want 0 and none", exit.Code, exit.Logs)
	}
}

// TestHostProtocolError checks the shim answers a malformed frame with a
// PROTOCOL_ERROR.
func TestHostProtocolError(t *testing.T) {
	tests := []struct {
		name  string
		frame string
	}{
		{"not JSON", `{"type":`},
		{"not an object", `[1]`},
		{"invoke before init", `{"type":"invoke","id":"x","tag":"t"}`},
		{"init without agent_dir", `{"type":"init","entrypoints":[]}`},
		{"bad entrypoint", `{"type":"init","agent_dir":"/","entrypoints":[{"tag":1}]}`},
	}
	e := mustEnv(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, err := e.backend.Start(t.Context(), sandbox.Spec{AgentDir: t.TempDir(), ShimPath: e.shim, Python: e.python, Env: quickExit})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sb.Kill(); sb.Wait() })
			if err := guest.WriteFrame(sb.Conn(), []byte(tt.frame)); err != nil {
				t.Fatal(err)
			}
			b, err := guest.ReadFrame(sb.Conn(), 0)
			if err != nil {
				t.Fatalf("reading the answer to %s: %v", tt.frame, err)
			}
			var m struct {
				Type  string        `json:"type"`
				Error guest.Failure `json:"error"`
			}
			if err := json.Unmarshal(b, &m); err != nil || m.Type != "error" || m.Error.Code != guest.CodeProtocolError {
				t.Fatalf("answer to %s: %s, want a PROTOCOL_ERROR error frame", tt.frame, b)
			}
			if exit := sb.Wait(); exit.Code != 0 {
				t.Errorf("guest exited %d, want 0", exit.Code)
			}
		})
	}
	t.Run("bad invoke", func(t *testing.T) {
		a := startAgent(t, map[string]string{"main.py": "def f():\n    return 1\n"}, refs("f"), options{})
		if err := guest.WriteFrame(a.sb.Conn(), []byte(`{"type":"invoke","id":"bad","tag":"f","args":{}}`)); err != nil {
			t.Fatal(err)
		}
		b, err := guest.ReadFrame(a.sb.Conn(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if s := string(b); !strings.Contains(s, `"id":"bad"`) || !strings.Contains(s, "PROTOCOL_ERROR") {
			t.Errorf("answer to a bad invoke: %s, want a PROTOCOL_ERROR for call bad", s)
		}
	})
}

func TestStartErrors(t *testing.T) {
	e := mustEnv(t)
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		spec sandbox.Spec
	}{
		{"no agent dir", t.Context(), sandbox.Spec{ShimPath: e.shim, Python: e.python}},
		{"no shim", t.Context(), sandbox.Spec{AgentDir: t.TempDir(), Python: e.python, Env: quickExit}},
		{"missing python", t.Context(), sandbox.Spec{AgentDir: t.TempDir(), ShimPath: e.shim, Python: "/nonexistent/python3", Env: quickExit}},
		{"missing agent dir", t.Context(), sandbox.Spec{AgentDir: "/nonexistent/agent", ShimPath: e.shim, Python: e.python, Env: quickExit}},
		{"cancelled", cancelled, sandbox.Spec{AgentDir: t.TempDir(), ShimPath: e.shim, Python: e.python, Env: quickExit}},
	}
	before := openFDs(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sb, err := e.backend.Start(tt.ctx, tt.spec)
			if err == nil {
				sb.Kill()
				sb.Wait()
				t.Fatalf("Start(%+v) succeeded", tt.spec)
			}
		})
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after failed starts, %d before", after, before)
	}
	e2 := env{backend: New("/nonexistent/runagent"), python: e.python, shim: e.shim}
	if _, err := e2.backend.Start(t.Context(), sandbox.Spec{AgentDir: t.TempDir(), ShimPath: e.shim, Python: e.python, Env: quickExit}); err == nil {
		t.Errorf("Start with a missing executable succeeded")
	}
}

// TestNoLeaks runs whole calls, and kills, and checks no descriptor,
// goroutine, home directory or process outlives Wait.
func TestNoLeaks(t *testing.T) {
	const src = `import os
def f():
    return {"pgid": os.getpgrp(), "child": os.getpid(), "home": os.environ["HOME"]}
`
	e := mustEnv(t)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.py": src})
	once := func(kill bool) {
		sb, err := e.backend.Start(t.Context(), sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: e.python, Env: quickExit})
		if err != nil {
			t.Fatal(err)
		}
		defer sb.Wait()
		defer sb.Kill()
		c := guest.NewConn(sb.Conn(), 0)
		if _, err := c.Init(t.Context(), guest.Init{AgentDir: dir, Entrypoints: refs("f")}); err != nil {
			t.Fatal(err)
		}
		if kill {
			sb.Kill()
			sb.Wait()
			return
		}
		if err := c.Invoke(guest.Invoke{ID: "i", Tag: "f"}); err != nil {
			t.Fatal(err)
		}
		ev, err := c.Next()
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Pgid int    `json:"pgid"`
			Home string `json:"home"`
		}
		json.Unmarshal(ev.Value, &got)
		if exit := sb.Wait(); exit.Code != 0 {
			t.Errorf("exit %d", exit.Code)
		}
		if _, err := os.Stat(got.Home); !os.IsNotExist(err) {
			t.Errorf("home %s still exists after Wait (%v)", got.Home, err)
		}
		if state, pgrp, ok := procState(got.Pgid); ok && pgrp == got.Pgid {
			t.Errorf("supervisor %d still exists (state %s) after Wait", got.Pgid, state)
		}
	}
	once(false) // warm up lazily created descriptors (poller, pidfd support)
	fds, goroutines := openFDs(t), runtime.NumGoroutine()
	for i := range 6 {
		once(i%2 == 1)
	}
	if after := openFDs(t); after != fds {
		t.Errorf("%d descriptors open after 6 sandboxes, %d before", after, fds)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > goroutines && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > goroutines {
		t.Errorf("%d goroutines after 6 sandboxes, %d before", after, goroutines)
	}
}

func TestWaitConcurrent(t *testing.T) {
	a := startAgent(t, map[string]string{"main.py": "import sys\ndef f():\n    print('out')\n    sys.exit(3)\n"}, refs("f"), options{})
	a.invoke(t, call{tag: "f"})
	var wg sync.WaitGroup
	exits := make([]sandbox.Exit, 4)
	for i := range exits {
		wg.Go(func() { exits[i] = a.sb.Wait() })
	}
	wg.Wait()
	for i, e := range exits {
		if !reflect.DeepEqual(e, exits[0]) {
			t.Errorf("Wait %d = %+v, Wait 0 = %+v", i, e, exits[0])
		}
	}
	if exits[0].Code != 0 || exits[0].Logs != "out\n" || exits[0].Duration <= 0 {
		t.Errorf("exit %+v, want code 0 (the shim reports sys.exit), logs \"out\\n\" and a duration", exits[0])
	}
}

func TestName(t *testing.T) {
	if got := New("x").Name(); got != "process" {
		t.Errorf("Name() = %q, want process", got)
	}
}
