//go:build linux

package linux

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
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
	dir, err := os.MkdirTemp("", "runagent-linux-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Chmod(dir, 0o755)
	shimDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// systemPython is Debian's interpreter: a sandbox binds only system
// directories, so the python3 on PATH (a pyenv build under /root) would
// not exist inside.
const systemPython = "/usr/bin/python3"

// quickExit keeps the race runtime of the supervisor (this test binary)
// from sleeping a second at exit.
var quickExit = []string{"GORACE=atexit_sleep_ms=0"}

var shimOnce = sync.OnceValues(func() (string, error) { return python.WriteShim(shimDir) })

// testEnv is what starting a sandbox needs.
type testEnv struct {
	backend *Backend
	cgroups *fakeCgroups
	shim    string
	state   string
}

func mustEnv(tb testing.TB) testEnv {
	tb.Helper()
	if _, err := os.Stat(systemPython); err != nil {
		tb.Fatalf("%s is required by the tests (scripts/deps.sh installs it): %v", systemPython, err)
	}
	shim, err := shimOnce()
	if err != nil {
		tb.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	state := tb.TempDir()
	cg := &fakeCgroups{}
	b, err := New(Config{Exe: exe, StateDir: state, Cgroups: cg})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { b.Close() }) // after the test's sandboxes (cleanups run last first)
	return testEnv{backend: b, cgroups: cg, shim: shim, state: state}
}

// fakeCgroups is a test double of CgroupManager (package
// internal/sandbox/cgroup is being written): it records what the backend
// asks and checks the supervisor is still held when its pid is added.
type fakeCgroups struct {
	mu   sync.Mutex
	pids []int
	held []bool // the process had not got past the sync pipe
	live int
}

func (f *fakeCgroups) New(id string, l sandbox.Limits) (Cgroup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.live++
	return &fakeCgroup{f: f}, nil
}

type fakeCgroup struct {
	f         *fakeCgroups
	destroyed bool
}

func (c *fakeCgroup) AddPID(pid int) error {
	// Still blocked on the sync pipe: its root is still the host's.
	_, err := os.Stat(fmt.Sprintf("/proc/%d/root/usr/bin", pid))
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.pids = append(c.f.pids, pid)
	c.f.held = append(c.f.held, err == nil)
	return nil
}

func (c *fakeCgroup) SetLimits(sandbox.Limits) error { return nil }

func (c *fakeCgroup) Violations() []string { return nil }

func (c *fakeCgroup) Destroy() error {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	if !c.destroyed {
		c.destroyed = true
		c.f.live--
	}
	return nil
}

// agentUID is the agent's uid inside the sandbox.
func agentUID() float64 {
	if os.Geteuid() == 0 {
		return AgentUID
	}
	return 0
}

// writeAgent writes files into a new world-readable agent directory.
func writeAgent(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// agent is a started sandbox that has answered hello.
type agent struct {
	sb    sandbox.Sandbox
	conn  *guest.Conn
	hello guest.Hello
	keep  bool // call asks the guest to wait for another call
	calls int
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

// startAgent starts a sandbox on an agent with main.py = src and sends
// init for the entrypoints names.
func startAgent(tb testing.TB, e testEnv, src string, spec sandbox.Spec, names ...string) *agent {
	tb.Helper()
	spec.AgentDir = writeAgent(tb, map[string]string{"main.py": src})
	return startSpec(tb, e, spec, refs(names...))
}

// startSpec starts a sandbox for spec (its AgentDir written already) and
// sends init for eps, with the directories where the sandbox shows them.
func startSpec(tb testing.TB, e testEnv, spec sandbox.Spec, eps []guest.EntrypointRef) *agent {
	tb.Helper()
	if forked {
		mounts := spec.Mounts
		spec.Mounts = nil // the run's, not the template's
		tmpl, _, init := startTemplateSpec(tb, e, spec, eps)
		return forkRun(tb, tmpl, init, spec.ID, mounts...)
	}
	spec.ShimPath = e.shim
	spec.Python = systemPython
	spec.Env = append(append([]string{}, quickExit...), spec.Env...)
	sb, err := e.backend.Start(context.Background(), spec)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		sb.Kill()
		sb.Wait()
	})
	conn := guest.NewConn(sb.Conn(), 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dirs := sandbox.DirsOf(sb, spec)
	if dirs.Agent != AgentMount {
		tb.Errorf("the sandbox shows the agent's code at %q, want %s", dirs.Agent, AgentMount)
	}
	hello, err := conn.Init(ctx, guest.Init{AgentDir: dirs.Agent, EnvDir: dirs.Env, Entrypoints: eps})
	if err != nil {
		sb.Kill()
		tb.Fatalf("Init: %v; logs:\n%s", err, sb.Wait().Logs)
	}
	for _, ep := range hello.Entrypoints {
		if !ep.OK {
			tb.Fatalf("entrypoint %s failed to load: %+v", ep.Tag, ep.Error)
		}
	}
	return &agent{sb: sb, conn: conn, hello: hello}
}

// call invokes tag with args and returns the result value, or fails.
func (a *agent) call(tb testing.TB, tag, args string) string {
	tb.Helper()
	in := guest.Invoke{ID: "c", Tag: tag, Args: json.RawMessage(args)}
	if a.keep {
		in.Keep, in.LogMark = true, "--call-done--"
		if a.calls > 0 {
			if err := a.conn.Again(); err != nil {
				tb.Fatal(err)
			}
		}
		a.calls++
	}
	if err := a.conn.Invoke(in); err != nil {
		tb.Fatal(err)
	}
	type res struct {
		ev  guest.Event
		err error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			ev, err := a.conn.Next()
			if err != nil || ev.Kind == guest.Result {
				ch <- res{ev, err}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			a.sb.Kill()
			tb.Fatalf("%s(%s): %v; logs:\n%s", tag, args, r.err, a.sb.Wait().Logs)
		}
		return string(r.ev.Value)
	case <-time.After(30 * time.Second):
		a.sb.Kill()
		tb.Fatalf("%s(%s): no result within 30s; logs:\n%s", tag, args, a.sb.Wait().Logs)
		return ""
	}
}

// decode unmarshals a result into a map.
func decode(tb testing.TB, raw string) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		tb.Fatalf("decoding %s: %v", raw, err)
	}
	return m
}

// mounts returns the host's mount table as "mount point, type, source"
// lines.
func mounts(tb testing.TB) map[string]bool {
	tb.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) > 4 && len(g) > 1 {
			out[f[4]+" "+g[0]+" "+g[1]] = true
		}
	}
	return out
}

// newMounts returns the mounts of after not in before, leaving out the
// loop-device file systems that package scratch's tests (which may run
// at the same time) mount.
func newMounts(before, after map[string]bool) []string {
	var out []string
	for m := range after {
		if !before[m] && !strings.Contains(m, " /dev/loop") {
			out = append(out, m)
		}
	}
	return out
}
