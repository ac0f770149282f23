package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

func newExec(t *testing.T, b sandbox.Backend) *Executor {
	t.Helper()
	e, err := New(Config{Backend: b, Interpreters: []Interpreter{{Python: "python3", ShimPath: "/unused"}}, DefaultTimeout: 10 * time.Second, MaxTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func request(tag string, args string) Request {
	return Request{
		InvocationID: "inv-1", AgentDir: "/agent", Config: &core.AgentConfig{},
		Entrypoint: core.Entrypoint{Tag: tag, Kind: core.KindPython, File: "a.py", Module: "f"},
		Args:       json.RawMessage(args), Kwargs: json.RawMessage(`{"k":1}`),
	}
}

func TestDeadline(t *testing.T) {
	e := newExec(t, sandboxtest.EchoBackend{})
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	tests := []struct {
		name      string
		agent, ep float64
		caller    time.Duration
		want      time.Duration
	}{
		{"server default", 0, 0, 0, 10 * time.Second},
		{"agent sets it", 5, 0, 0, 5 * time.Second},
		{"entrypoint beats agent", 5, 2, 0, 2 * time.Second},
		{"caller may lower", 5, 0, time.Second, time.Second},
		{"caller may not raise", 5, 0, time.Minute, 5 * time.Second},
		{"capped by max", 100, 0, 0, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request("x", "[]")
			r.Config.Resources.TimeoutSeconds = tt.agent
			r.Entrypoint.TimeoutSeconds = tt.ep
			r.Timeout = tt.caller
			if got := e.Deadline(r); got != tt.want {
				t.Errorf("Deadline = %v, want %v (agent %v entrypoint %v caller %v)", got, tt.want, sec(tt.agent), sec(tt.ep), tt.caller)
			}
		})
	}
}

func TestRunPlainAndStream(t *testing.T) {
	e := newExec(t, sandboxtest.EchoBackend{})
	run, err := e.Start(t.Context(), request("plain", `[1,"a"]`))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := run.Next()
	if err != nil || ev.Kind != guest.Result || string(ev.Value) != `{"args":[1,"a"],"kwargs":{"k":1}}` {
		t.Fatalf("Next = %+v %s, %v", ev, ev.Value, err)
	}
	if _, err := run.Next(); err != io.EOF {
		t.Errorf("Next after result = %v, want io.EOF", err)
	}
	run.Close()

	run, err = e.Start(t.Context(), request("s_stream", `[1,2,3]`))
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	var got []string
	for {
		ev, err := run.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == guest.Result {
			break
		}
		got = append(got, string(ev.Value))
	}
	if len(got) != 3 || got[0] != "1" || got[2] != "3" {
		t.Errorf("chunks = %v, want 1 2 3", got)
	}
	if e.Active() != 1 {
		t.Errorf("Active = %d before Close, want 1", e.Active())
	}
	run.Close()
	if e.Active() != 0 {
		t.Errorf("Active = %d after Close, want 0", e.Active())
	}
}

// hangBackend starts guests that answer init and then never answer the
// invoke, to test deadlines and cancellation.
type hangBackend struct{ sandboxtest.EchoBackend }

func (hangBackend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	return sandboxtest.Hang(), nil
}

func TestTimeoutAndCancel(t *testing.T) {
	e := newExec(t, hangBackend{})
	r := request("x", "[]")
	r.Timeout = 200 * time.Millisecond
	run, err := e.Start(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = run.Next()
	run.Close()
	if core.ErrorCode(err) != core.CodeAgentTimeout {
		t.Errorf("Next = %v, want AGENT_TIMEOUT", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout took %v", d)
	}

	ctx, cancel := context.WithCancel(t.Context())
	run, err = e.Start(ctx, request("x", "[]"))
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = run.Next()
	run.Close()
	if core.ErrorCode(err) != core.CodeCancelled {
		t.Errorf("Next after cancel = %v, want CANCELLED", err)
	}
}

func TestShutdownDrainsThenKills(t *testing.T) {
	e := newExec(t, hangBackend{})
	run, err := e.Start(t.Context(), request("x", "[]"))
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := run.Next()
		run.Close()
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := e.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown = %v, want deadline exceeded (a run was still going)", err)
	}
	if err := <-errc; core.ErrorCode(err) != core.CodeUnavailable {
		t.Errorf("the killed run got %v, want UNAVAILABLE", err)
	}
	if _, err := e.Start(t.Context(), request("x", "[]")); core.ErrorCode(err) != core.CodeUnavailable {
		t.Errorf("Start after Shutdown = %v, want UNAVAILABLE", err)
	}
}

func TestMaxConcurrent(t *testing.T) {
	e, err := New(Config{Backend: hangBackend{}, Interpreters: []Interpreter{{Python: "python3", ShimPath: "/unused"}}, MaxConcurrent: 2, QueueWait: -1})
	if err != nil {
		t.Fatal(err)
	}
	var runs []*Run
	for range 2 {
		r, err := e.Start(t.Context(), request("x", "[]"))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, r)
	}
	if _, err := e.Start(t.Context(), request("x", "[]")); core.ErrorCode(err) != core.CodeUnavailable {
		t.Fatalf("third Start = %v, want UNAVAILABLE", err)
	}
	runs[0].Close()
	r, err := e.Start(t.Context(), request("x", "[]"))
	if err != nil {
		t.Fatalf("Start after one finished: %v", err)
	}
	r.Close()
	runs[1].Close()
}

// specBackend records the specs it is asked to start and the init frame
// each guest gets, and shows the guest the agent at /agent and its
// environment at /env, like the linux backend.
type specBackend struct {
	sandboxtest.EchoBackend
	mu    sync.Mutex
	specs []sandbox.Spec
	sbs   []*specSandbox
}

func (b *specBackend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	sb, err := b.EchoBackend.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	s := &specSandbox{Sandbox: sb, spec: spec}
	s.conn = &recordingConn{Conn: sb.Conn().(net.Conn), s: s}
	b.mu.Lock()
	b.specs = append(b.specs, spec)
	b.sbs = append(b.sbs, s)
	b.mu.Unlock()
	return s, nil
}

// specSandbox is a sandbox of specBackend.
type specSandbox struct {
	sandbox.Sandbox
	spec sandbox.Spec
	conn *recordingConn

	mu   sync.Mutex
	sent []byte // what the host wrote to the guest
}

func (s *specSandbox) Conn() io.ReadWriteCloser { return s.conn }

func (s *specSandbox) GuestDirs() sandbox.GuestDirs {
	d := sandbox.GuestDirs{Agent: "/agent"}
	if s.spec.EnvDir != "" {
		d.Env = "/env"
	}
	return d
}

// init returns the init frame the host sent.
func (s *specSandbox) init(t *testing.T) map[string]any {
	t.Helper()
	s.mu.Lock()
	sent := bytes.NewReader(s.sent)
	s.mu.Unlock()
	b, err := guest.ReadFrame(sent, guest.DefaultMaxFrame)
	if err != nil {
		t.Fatalf("no init frame sent: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// recordingConn keeps what the host writes (keeping the net.Conn's read
// deadlines, which the pool's watcher uses).
type recordingConn struct {
	net.Conn
	s *specSandbox
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.s.mu.Lock()
	c.s.sent = append(c.s.sent, p...)
	c.s.mu.Unlock()
	return c.Conn.Write(p)
}

// TestEnvDirReachesGuest: a request's EnvDir goes to the sandbox's Spec,
// and the init frame names the agent and environment directories where
// the sandbox shows them, not the host's paths.
func TestEnvDirReachesGuest(t *testing.T) {
	for _, pooled := range []bool{false, true} {
		t.Run(map[bool]string{false: "cold", true: "pooled"}[pooled], func(t *testing.T) {
			b := &specBackend{}
			cfg := Config{}
			if pooled {
				cfg.PoolSize = 1
			}
			e := newPoolExec(t, b, cfg)
			req := versionRequest("/host/code/v1", "plain", "[]")
			req.EnvDir = "/host/envs/abc"
			if pooled {
				if err := e.Prewarm(req); err != nil {
					t.Fatal(err)
				}
				waitFor(t, "the pool to fill", func() bool { return e.Stats().Ready == 1 })
			}
			sb, warm := runIn(t, e, req)
			if warm != pooled {
				t.Errorf("run warm %v, want %v", warm, pooled)
			}
			if sb.spec.AgentDir != "/host/code/v1" || sb.spec.EnvDir != "/host/envs/abc" {
				t.Errorf("spec directories %q, %q; want the host's", sb.spec.AgentDir, sb.spec.EnvDir)
			}
			init := sb.init(t)
			if init["agent_dir"] != "/agent" || init["env_dir"] != "/env" {
				t.Errorf("init frame %v, want agent_dir /agent and env_dir /env", init)
			}

			// Without an environment the frame has none.
			sb, _ = runIn(t, e, versionRequest("/host/code/v2", "plain", "[]"))
			if init := sb.init(t); init["agent_dir"] != "/agent" || init["env_dir"] != nil {
				t.Errorf("init frame without an environment %v, want no env_dir", init)
			}
		})
	}
}

// runIn runs req to its result on a specBackend and returns the sandbox
// it ran in and whether that was a pooled one.
func runIn(t *testing.T, e *Executor, req Request) (*specSandbox, bool) {
	t.Helper()
	run, err := e.Start(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	for {
		ev, err := run.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == guest.Result {
			return run.sb.(*specSandbox), run.Warm()
		}
	}
}

// TestPoolKeysByEnvDir: two requests of one code directory with different
// environments never share a pooled or kept sandbox.
func TestPoolKeysByEnvDir(t *testing.T) {
	b := &specBackend{}
	e := newPoolExec(t, b, Config{PoolSize: 1})
	a, c := versionRequest("/host/code/v1", "plain", "[]"), versionRequest("/host/code/v1", "plain", "[]")
	a.EnvDir, c.EnvDir = "/host/envs/a", "/host/envs/c"
	ka, _, _ := poolInit(a)
	kc, _, _ := poolInit(c)
	if ka == kc {
		t.Fatalf("pool keys of two environments are equal: %s", ka)
	}
	for _, r := range []Request{a, c} {
		if err := e.Prewarm(r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both pools to fill", func() bool { return e.Stats().Ready == 2 })
	if v := e.Stats().Versions; v != 2 {
		t.Errorf("%d pools, want 2", v)
	}
	for _, r := range []Request{c, a, c} {
		if sb, warm := runIn(t, e, r); sb.spec.EnvDir != r.EnvDir {
			t.Errorf("a request for environment %s ran in a sandbox of %s (warm %v)", r.EnvDir, sb.spec.EnvDir, warm)
		}
	}
	// The config is shared with the pools' refills: change a copy.
	reuse := *a.Config
	reuse.Resources.ReusePerUser = true
	a.Config, c.Config = &reuse, &reuse
	a.UserID, c.UserID = "u", "u"
	if e.reuseKey(a) == "" || e.reuseKey(a) == e.reuseKey(c) {
		t.Errorf("reuse keys of two environments are equal")
	}
}

// TestInterpreterByRuntime: an agent runs with the interpreter its config
// names, with that interpreter's shim, or the first when it names none;
// agents of the same code with different interpreters never share a
// pooled sandbox; one naming an interpreter the executor lacks is
// refused, with the list.
func TestInterpreterByRuntime(t *testing.T) {
	b := &specBackend{}
	e := newPoolExec(t, b, Config{PoolSize: 1, Interpreters: []Interpreter{
		{Name: "3.11", Python: "/usr/bin/python3.11", ShimPath: "/rt/shim.cpython-311.pyc"},
		{Name: "3.12", Python: "/opt/py/bin/python3", ShimPath: "/rt/shim.cpython-312.pyc"},
	}})
	def, v311, v312 := versionRequest("/host/code/v1", "plain", "[]"), versionRequest("/host/code/v1", "plain", "[]"), versionRequest("/host/code/v1", "plain", "[]")
	v311.Config.Runtime, v312.Config.Runtime = "3.11", "3.12"
	k11, _, _ := poolInit(v311)
	k12, _, _ := poolInit(v312)
	if k11 == k12 {
		t.Fatalf("pool keys of two interpreters are equal: %s", k11)
	}
	for _, r := range []Request{v312, v311} {
		if err := e.Prewarm(r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both pools to fill", func() bool { return e.Stats().Ready == 2 })
	for _, tt := range []struct {
		name         string
		req          Request
		python, shim string
	}{
		{"3.12", v312, "/opt/py/bin/python3", "/rt/shim.cpython-312.pyc"},
		{"3.11", v311, "/usr/bin/python3.11", "/rt/shim.cpython-311.pyc"},
		{"default", def, "/usr/bin/python3.11", "/rt/shim.cpython-311.pyc"},
		{"3.12 again", v312, "/opt/py/bin/python3", "/rt/shim.cpython-312.pyc"},
	} {
		sb, warm := runIn(t, e, tt.req)
		if sb.spec.Python != tt.python || sb.spec.ShimPath != tt.shim {
			t.Errorf("%s: ran %s with %s (warm %v), want %s with %s", tt.name, sb.spec.Python, sb.spec.ShimPath, warm, tt.python, tt.shim)
		}
	}
	missing := versionRequest("/host/code/v2", "plain", "[]")
	missing.Config.Runtime = "3.13"
	_, err := e.Start(t.Context(), missing)
	if core.ErrorCode(err) != core.CodeUnavailable || !strings.Contains(err.Error(), "asks for Python 3.13, which this server does not have (it has 3.11, 3.12)") {
		t.Errorf("Start of an agent asking for 3.13 = %v, want UNAVAILABLE naming 3.11, 3.12", err)
	}
}

func TestSpecCarriesLimitsAndRefusesAboveMaxima(t *testing.T) {
	b := &specBackend{}
	e, err := New(Config{Backend: b, Interpreters: []Interpreter{{Python: "python3", ShimPath: "/unused"}}, MaxLimits: sandbox.Limits{MemoryBytes: 1 << 30}})
	if err != nil {
		t.Fatal(err)
	}
	r := request("x", "[]")
	r.Config.Resources = core.Resources{MemoryMB: 256, CPU: 0.5}
	r.Config.Network = core.NetworkPolicy{Mode: core.NetworkEgress, Allow: []core.EgressRule{{Host: "api.example.com"}}}
	run, err := e.Start(t.Context(), r)
	if err != nil {
		t.Fatal(err)
	}
	run.Close()
	sp := b.specs[0]
	if sp.Limits.MemoryBytes != 256<<20 || sp.Limits.CPU != 0.5 || sp.Limits.Processes != sandbox.DefaultLimits.Processes {
		t.Errorf("spec limits = %+v", sp.Limits)
	}
	if sp.Network.Mode != core.NetworkEgress || len(sp.Network.Allow) != 1 {
		t.Errorf("spec network = %+v", sp.Network)
	}
	if init := b.sbs[0].init(t); init["agent_dir"] != "/agent" {
		t.Errorf("init frame %v, want the guest's agent directory /agent", init)
	}
	r.Config.Resources.MemoryMB = 4096
	if _, err := e.Start(t.Context(), r); core.ErrorCode(err) != core.CodeValidation {
		t.Errorf("Start above the memory maximum = %v, want VALIDATION_ERROR", err)
	}
}

func TestExitMessageNamesViolations(t *testing.T) {
	got := exitMessage(sandbox.Exit{Code: -1, Signal: "SIGKILL", Violations: []string{"memory limit (OOM kill)"}})
	want := "the agent process was killed by SIGKILL before returning a result; it hit the sandbox's memory limit (OOM kill)"
	if got != want {
		t.Errorf("exitMessage = %q, want %q", got, want)
	}
}

func TestExitMessageNamesSignalFromStatus(t *testing.T) {
	got := exitMessage(sandbox.Exit{Code: 137, Violations: []string{"memory limit (OOM kill)"}})
	want := "the agent process was killed by signal 9 (killed) before returning a result; it hit the sandbox's memory limit (OOM kill)"
	if got != want {
		t.Errorf("exitMessage = %q, want %q", got, want)
	}
	if got := exitMessage(sandbox.Exit{Code: 7}); got != "the agent process exited with status 7 before returning a result" {
		t.Errorf("exitMessage(7) = %q", got)
	}
}
