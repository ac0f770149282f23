//go:build linux

package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/supervisor"
)

// shimDir holds the shim for the whole test binary.
var shimDir string

func TestMain(m *testing.M) {
	supervisor.MaybeRun()
	dir, err := os.MkdirTemp("", "runagent-shim-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	shimDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var pythonOnce = sync.OnceValues(func() (string, error) {
	py, err := exec.LookPath("python3")
	if err != nil {
		return "", err
	}
	// Resolve wrappers such as pyenv's shim script to the interpreter.
	out, err := exec.Command(py, "-I", "-c", "import sys; print(sys.executable)").Output()
	if err != nil {
		return "", fmt.Errorf("running %s: %w", py, err)
	}
	return strings.TrimSpace(string(out)), nil
})

// quickExit is the environment every test sandbox gets: the supervisor is
// this test binary, and under -race its runtime would otherwise sleep a
// second at exit (GORACE atexit_sleep_ms defaults to 1000).
var quickExit = []string{"GORACE=atexit_sleep_ms=0"}

// env is what starting a sandbox needs.
type env struct {
	backend *Backend
	python  string
	shim    string // the shim's source
	shimPyc string // the shim compiled for python
}

var pycOnce = sync.OnceValues(func() (string, error) {
	py, err := pythonOnce()
	if err != nil {
		return "", err
	}
	src, err := python.WriteShim(shimDir)
	if err != nil {
		return "", err
	}
	return python.CompileShim(context.Background(), py, src)
})

func mustEnv(tb testing.TB) env {
	tb.Helper()
	py, err := pythonOnce()
	if err != nil {
		tb.Fatalf("python3 is required by the tests (scripts/deps.sh installs it): %v", err)
	}
	shim, err := python.WriteShim(shimDir)
	if err != nil {
		tb.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	pyc, err := pycOnce()
	if err != nil {
		tb.Fatal(err)
	}
	return env{backend: New(exe), python: py, shim: shim, shimPyc: pyc}
}

// options of startAgent.
type options struct {
	logLimit int
	maxFrame int
	env      []string
	compiled bool // run the shim's bytecode, not its source
	envDir   string
	outDir   string
	mounts   []sandbox.Mount
}

// agent is a started guest that has answered hello.
type agent struct {
	dir     string // the agent directory the guest runs in
	hostDir string // the host's, which the guest runs a copy of
	sb      sandbox.Sandbox
	conn    *guest.Conn
	hello   guest.Hello
}

// writeFiles writes files (path → content) under dir.
func writeFiles(tb testing.TB, dir string, files map[string]string) {
	tb.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

// refs makes entrypoint refs for main.py from "tag=module" pairs; a bare
// name is both.
func refs(pairs ...string) []guest.EntrypointRef {
	var out []guest.EntrypointRef
	for _, p := range pairs {
		tag, module, ok := strings.Cut(p, "=")
		if !ok {
			module = tag
		}
		out = append(out, guest.EntrypointRef{Tag: tag, File: "main.py", Module: module})
	}
	return out
}

// startAgent writes files into a new agent directory, starts a sandbox on
// it and sends init. The sandbox is killed and waited for when the test
// ends.
func startAgent(tb testing.TB, files map[string]string, eps []guest.EntrypointRef, opt options) *agent {
	tb.Helper()
	e := mustEnv(tb)
	dir := tb.TempDir()
	writeFiles(tb, dir, files)
	shim := e.shim
	if opt.compiled {
		shim = e.shimPyc
	}
	spec := sandbox.Spec{
		AgentDir: dir,
		EnvDir:   opt.envDir,
		OutDir:   opt.outDir,
		ShimPath: shim,
		Python:   e.python,
		Env:      append(quickExit, opt.env...),
		LogLimit: opt.logLimit,
		Mounts:   opt.mounts,
	}
	sb, err := e.backend.Start(context.Background(), spec)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		sb.Kill()
		sb.Wait()
	})
	conn := guest.NewConn(sb.Conn(), opt.maxFrame)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dirs := sandbox.DirsOf(sb, spec)
	hello, err := conn.Init(ctx, guest.Init{AgentDir: dirs.Agent, EnvDir: dirs.Env, Entrypoints: eps})
	if err != nil {
		sb.Kill()
		tb.Fatalf("Init: %v; logs:\n%s", err, sb.Wait().Logs)
	}
	return &agent{dir: dirs.Agent, hostDir: dir, sb: sb, conn: conn, hello: hello}
}

// call describes one invocation.
type call struct {
	tag    string
	args   string // JSON array; empty means []
	kwargs string // JSON object; empty means {}
	stream bool
	env    map[string]string
}

// invoke sends c.
func (a *agent) invoke(tb testing.TB, c call) {
	tb.Helper()
	err := a.conn.Invoke(guest.Invoke{
		ID:     "call-1",
		Tag:    c.tag,
		Args:   json.RawMessage(c.args),
		Kwargs: json.RawMessage(c.kwargs),
		Stream: c.stream,
		Env:    c.env,
	})
	if err != nil {
		tb.Fatalf("Invoke: %v", err)
	}
}

// next returns the next event, failing the test if none comes within d.
func (a *agent) next(tb testing.TB, d time.Duration) (guest.Event, error) {
	tb.Helper()
	type result struct {
		ev  guest.Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := a.conn.Next()
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		return r.ev, r.err
	case <-time.After(d):
		a.sb.Kill() // ends the Next above
		tb.Fatalf("no event within %v; logs:\n%s", d, a.sb.Wait().Logs)
		return guest.Event{}, nil
	}
}

// outcome is how a call ended.
type outcome struct {
	chunks []string // values, verbatim
	result string   // value, verbatim; "" when the call failed
	err    error
}

// run invokes c and collects its events until the result or an error.
func (a *agent) run(tb testing.TB, c call) outcome {
	tb.Helper()
	a.invoke(tb, c)
	return a.collect(tb, 0)
}

// collect collects events until the result or an error; from is the seq
// of the next chunk.
func (a *agent) collect(tb testing.TB, from int) outcome {
	tb.Helper()
	var o outcome
	for {
		ev, err := a.next(tb, 20*time.Second)
		if err != nil {
			o.err = err
			return o
		}
		switch ev.Kind {
		case guest.Chunk:
			if want := from + len(o.chunks); ev.Seq != want {
				tb.Fatalf("chunk seq %d, want %d", ev.Seq, want)
			}
			o.chunks = append(o.chunks, string(ev.Value))
		case guest.Result:
			o.result = string(ev.Value)
			return o
		}
	}
}

// failure returns o's *guest.Failure, failing the test if it has none.
func (o outcome) failure(tb testing.TB) *guest.Failure {
	tb.Helper()
	f, ok := errors.AsType[*guest.Failure](o.err)
	if !ok {
		tb.Fatalf("call ended with result %q and error %v; want a *guest.Failure", o.result, o.err)
	}
	return f
}

// procState returns the state letter of a process ("R", "S", "Z", …) and
// its process group, or ok false if it does not exist.
func procState(pid int) (state string, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return "", 0, false
	}
	pgrp, _ = strconv.Atoi(f[2])
	return f[0], pgrp, true
}

// liveInGroup lists the processes of group pgid that are not zombies.
func liveInGroup(pgid int) []int {
	entries, _ := os.ReadDir("/proc")
	var live []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, pgrp, ok := procState(pid); ok && pgrp == pgid && state != "Z" {
			live = append(live, pid)
		}
	}
	return live
}

// waitGroupDead fails the test unless every process of group pgid is gone
// or a zombie within 5s.
func waitGroupDead(tb testing.TB, pgid int) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		live := liveInGroup(pgid)
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("processes %v of group %d still alive", live, pgid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(tb testing.TB) int {
	tb.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		tb.Fatal(err)
	}
	return len(entries)
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	state, _, ok := procState(pid)
	return ok && state != "Z"
}
