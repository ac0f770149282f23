package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// newPoolExec returns an executor on b with pooling set up by cfg's pool
// fields; it is shut down when the test ends.
func newPoolExec(t *testing.T, b sandbox.Backend, cfg Config) *Executor {
	t.Helper()
	cfg.Backend = b
	if cfg.Interpreters == nil {
		cfg.Interpreters = []Interpreter{{Python: "python3", ShimPath: "/unused"}}
	}
	if cfg.DefaultTimeout == 0 {
		cfg.DefaultTimeout = 10 * time.Second
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Shutdown(context.Background()) })
	return e
}

// versionRequest is a request for tag of an agent version in dir with the
// entrypoints plain, s_stream and broken.
func versionRequest(dir, tag, args string) Request {
	cfg := &core.AgentConfig{AgentID: "agent-" + dir, EnvVars: map[string]string{"A": "1"}}
	for _, t := range []string{"plain", "s_stream", "broken"} {
		cfg.Entrypoints = append(cfg.Entrypoints, core.Entrypoint{Tag: t, Kind: core.KindPython, File: "main.py", Module: t})
	}
	ep, _ := cfg.Entrypoint(tag)
	return Request{InvocationID: "inv-" + tag, AgentDir: dir, Config: cfg, Entrypoint: ep, Args: json.RawMessage(args)}
}

// runToEnd runs req and returns its result, or the error.
func runToEnd(e *Executor, ctx context.Context, req Request) (result string, warm bool, err error) {
	run, err := e.Start(ctx, req)
	if err != nil {
		return "", false, err
	}
	defer run.Close()
	for {
		ev, err := run.Next()
		if err != nil {
			return "", run.Warm(), err
		}
		if ev.Kind == guest.Result {
			return string(ev.Value), run.Warm(), nil
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// checkAllReaped fails unless every sandbox b started was killed and
// waited for.
func checkAllReaped(t *testing.T, b *sandboxtest.Counting) {
	t.Helper()
	started, killed, waited := b.Counts()
	if killed != started || waited != started {
		t.Errorf("of %d sandboxes started, %d were killed and %d waited for; want all", started, killed, waited)
	}
}

func TestPoolHits(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}, Delay: 200 * time.Millisecond}
	e := newPoolExec(t, b, Config{PoolSize: 2})
	want := `{"args":[1],"kwargs":{}}`
	if res, warm, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[1]")); err != nil || warm || res != want {
		t.Fatalf("first run = %s warm %v, %v; want %s, cold", res, warm, err, want)
	}
	waitFor(t, "two ready sandboxes", func() bool { return e.Stats().Ready == 2 })
	if n := len(b.Started()); n != 3 {
		t.Errorf("started %d sandboxes, want 1 cold + 2 pooled", n)
	}
	for _, sb := range b.Started()[1:] {
		if sb.Spec.ID == "" || sb.Spec.AgentID != "agent-/v1" {
			t.Errorf("pooled spec ID %q AgentID %q", sb.Spec.ID, sb.Spec.AgentID)
		}
	}
	// The pooled sandboxes loaded every entrypoint, so any tag is served
	// warm; each take refills in the background, never in the request.
	for i, tag := range []string{"plain", "s_stream", "plain", "s_stream"} {
		if i > 0 {
			waitFor(t, "a ready sandbox", func() bool { return e.Stats().Ready >= 1 })
		}
		start := time.Now()
		res, warm, err := runToEnd(e, t.Context(), versionRequest("/v1", tag, "[1]"))
		if d := time.Since(start); d >= b.Delay {
			t.Errorf("warm run %d took %v, not less than a start (%v): it waited for a refill", i, d, b.Delay)
		}
		if err != nil || !warm {
			t.Fatalf("run %d (%s) = %s warm %v, %v; want a warm result", i, tag, res, warm, err)
		}
	}
	st := e.Stats()
	if st.Hits != 4 || st.Misses != 1 || st.Versions != 1 || st.RefillFailures != 0 {
		t.Errorf("Stats = %+v, want 4 hits, 1 miss, 1 version", st)
	}
	waitFor(t, "refills", func() bool { s := e.Stats(); return s.Ready == 2 && s.Starting == 0 })
	if st := e.Stats(); st.Refills != 6 {
		t.Errorf("Refills = %d, want 6 (2 after the miss, 1 per hit)", st.Refills)
	}
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAllReaped(t, b)
}

func TestPoolDeadSandboxSkipped(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}}
	e := newPoolExec(t, b, Config{PoolSize: 2})
	if _, _, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[]")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two ready sandboxes", func() bool { return e.Stats().Ready == 2 })
	for _, sb := range b.Started()[1:] {
		sb.Kill() // the guest dies on its own, as far as the executor knows
	}
	waitFor(t, "the pooled guests' deaths to be noticed", func() bool { s := e.Stats(); return s.Ready == 0 && s.DeadSkipped == 2 })
	waitFor(t, "the dead pooled sandboxes to be reaped", func() bool { _, _, w := b.Counts(); return w == 3 })
	res, warm, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[2]"))
	if err != nil || warm || res != `{"args":[2],"kwargs":{}}` {
		t.Fatalf("run = %s warm %v, %v; want a cold result", res, warm, err)
	}
	if st := e.Stats(); st.DeadSkipped != 2 || st.Misses != 2 || st.Hits != 0 {
		t.Errorf("Stats = %+v, want 2 dead skipped, 2 misses", st)
	}
	e.Shutdown(t.Context())
	checkAllReaped(t, b)
}

func TestPoolIdleExpiry(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}}
	e := newPoolExec(t, b, Config{PoolSize: 2, PoolIdle: 150 * time.Millisecond})
	if _, _, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[]")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two ready sandboxes", func() bool { return e.Stats().Ready == 2 })
	waitFor(t, "the idle pool to be dropped", func() bool { s := e.Stats(); return s.Versions == 0 && s.Ready == 0 })
	waitFor(t, "the pooled sandboxes to be reaped", func() bool { _, _, w := b.Counts(); return w == 3 })
	checkAllReaped(t, b)
	if st := e.Stats(); st.Evicted != 1 {
		t.Errorf("Evicted = %d, want 1", st.Evicted)
	}
	// The next request is cold again and recreates the pool.
	if _, warm, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[]")); err != nil || warm {
		t.Fatalf("run after expiry: warm %v, %v", warm, err)
	}
	waitFor(t, "the pool to be refilled", func() bool { return e.Stats().Ready == 2 })
}

func TestPoolShutdownLeavesNothing(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}, Delay: 30 * time.Millisecond}
	e := newPoolExec(t, b, Config{PoolSize: 2, PoolMaxVersions: 2})
	for i := range 6 {
		dir := fmt.Sprintf("/v%d", i%3) // three versions: LRU eviction too
		if _, _, err := runToEnd(e, t.Context(), versionRequest(dir, "plain", "[]")); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.Stats(); st.Versions > 2 || st.Ready+st.Starting > 4 || st.Evicted == 0 {
		t.Errorf("Stats = %+v, want at most 2 versions, 4 pooled, some evicted", st)
	}
	// Refills are in flight now.
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAllReaped(t, b)
	n := len(b.Started())
	time.Sleep(100 * time.Millisecond)
	if m := len(b.Started()); m != n {
		t.Errorf("%d sandboxes started after Shutdown returned", m-n)
	}
	if st := e.Stats(); st.Versions != 0 || st.Ready != 0 || st.Starting != 0 {
		t.Errorf("Stats after Shutdown = %+v", st)
	}
	if _, err := e.Start(t.Context(), versionRequest("/v0", "plain", "[]")); core.ErrorCode(err) != core.CodeUnavailable {
		t.Errorf("Start after Shutdown = %v, want UNAVAILABLE", err)
	}
	if err := e.Prewarm(versionRequest("/v0", "plain", "[]")); err != ErrClosed {
		t.Errorf("Prewarm after Shutdown = %v, want ErrClosed", err)
	}
}

func TestPoolDeadlineFromTake(t *testing.T) {
	// A pooled sandbox older than the timeout still serves a fast call.
	e := newPoolExec(t, sandboxtest.EchoBackend{}, Config{PoolSize: 1})
	if _, _, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[]")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a ready sandbox", func() bool { return e.Stats().Ready == 1 })
	time.Sleep(300 * time.Millisecond)
	req := versionRequest("/v1", "plain", "[]")
	req.Timeout = 200 * time.Millisecond
	if _, warm, err := runToEnd(e, t.Context(), req); err != nil || !warm {
		t.Fatalf("warm run with a timeout shorter than the sandbox's age: warm %v, %v", warm, err)
	}

	// And the deadline still stops a warm run that overstays it, counted
	// from the take.
	e = newPoolExec(t, hangBackend{}, Config{PoolSize: 1})
	req = versionRequest("/v2", "plain", "[]")
	req.Timeout = 300 * time.Millisecond
	if _, _, err := runToEnd(e, t.Context(), req); core.ErrorCode(err) != core.CodeAgentTimeout {
		t.Fatalf("cold hanging run = %v, want AGENT_TIMEOUT", err)
	}
	waitFor(t, "a ready sandbox", func() bool { return e.Stats().Ready == 1 })
	time.Sleep(400 * time.Millisecond)
	start := time.Now()
	_, warm, err := runToEnd(e, t.Context(), req)
	if core.ErrorCode(err) != core.CodeAgentTimeout || !warm {
		t.Fatalf("warm hanging run = warm %v, %v; want AGENT_TIMEOUT", warm, err)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("warm run timed out after %v, want about 300ms from the take", d)
	}

	// Cancellation covers the warm run too.
	waitFor(t, "a ready sandbox", func() bool { return e.Stats().Ready == 1 })
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(50*time.Millisecond, cancel)
	req.Timeout = 0
	if _, warm, err := runToEnd(e, ctx, req); core.ErrorCode(err) != core.CodeCancelled || !warm {
		t.Errorf("cancelled warm run = warm %v, %v; want CANCELLED", warm, err)
	}
}

func TestPoolStress(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}, Delay: time.Millisecond}
	e := newPoolExec(t, b, Config{PoolSize: 2, MaxConcurrent: 64})
	const workers, each = 20, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				dir := fmt.Sprintf("/v%d", (w+i)%3)
				args := fmt.Sprintf("[%d,%d]", w, i)
				res, _, err := runToEnd(e, t.Context(), versionRequest(dir, "plain", args))
				if err == nil && res != `{"args":`+args+`,"kwargs":{}}` {
					err = fmt.Errorf("result %s for args %s", res, args)
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := e.Stats()
	if st.Hits+st.Misses != workers*each || st.Running != 0 {
		t.Errorf("Stats = %+v, want %d hits+misses and nothing running", st, workers*each)
	}
	if st.Hits == 0 {
		t.Errorf("no pool hits: %+v", st)
	}
	t.Logf("stats: %+v", st)
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAllReaped(t, b)
}

func TestPoolSizeZeroStartsCold(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}}
	e := newPoolExec(t, b, Config{})
	for range 3 {
		if _, warm, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[]")); err != nil || warm {
			t.Fatalf("run: warm %v, %v", warm, err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if n := len(b.Started()); n != 3 {
		t.Errorf("started %d sandboxes for 3 runs, want 3", n)
	}
	if st := e.Stats(); st.QueueWait.Count != 0 || !cmp.Equal(st, Stats{}, cmpopts.IgnoreFields(Stats{}, "QueueWait")) {
		t.Errorf("Stats = %+v, want zero", st)
	}
	if err := e.Prewarm(versionRequest("/v1", "plain", "[]")); err != nil || len(b.Started()) != 3 {
		t.Errorf("Prewarm with no pool = %v, started %d", err, len(b.Started()))
	}
	checkAllReaped(t, b)
}

func TestPrewarmAndEvict(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}}
	e := newPoolExec(t, b, Config{PoolSize: 2})
	if err := e.Prewarm(versionRequest("/v1", "plain", "[]")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two ready sandboxes", func() bool { return e.Stats().Ready == 2 })
	if _, warm, err := runToEnd(e, t.Context(), versionRequest("/v1", "s_stream", "[1,2]")); err != nil || !warm {
		t.Fatalf("first run after Prewarm: warm %v, %v", warm, err)
	}
	waitFor(t, "the refill", func() bool { return e.Stats().Ready == 2 })
	if n := e.Evict("/v1"); n != 2 {
		t.Errorf("Evict = %d, want 2", n)
	}
	waitFor(t, "the evicted sandboxes to be reaped", func() bool { _, _, w := b.Counts(); return w == 3 })
	checkAllReaped(t, b)
	if st := e.Stats(); st.Versions != 0 || st.Ready != 0 {
		t.Errorf("Stats after Evict = %+v", st)
	}
}

func TestPoolEntrypointError(t *testing.T) {
	e := newPoolExec(t, brokenBackend{}, Config{PoolSize: 1})
	for i := range 2 {
		if i == 1 {
			waitFor(t, "a ready sandbox", func() bool { return e.Stats().Ready == 1 })
		}
		_, _, err := runToEnd(e, t.Context(), versionRequest("/v1", "broken", "[]"))
		warm := e.Stats().Hits == uint64(i)
		var ce *core.Error
		if !errors.As(err, &ce) || ce.Code != core.CodeAgentError {
			t.Fatalf("run %d = %v, want AGENT_ERROR", i, err)
		}
		if d, ok := ce.Details.(AgentErrorDetails); !ok || d.GuestCode != guest.CodeEntrypointError || !warm {
			t.Errorf("run %d (warm %v): details %+v, want ENTRYPOINT_ERROR", i, warm, ce.Details)
		}
	}
	// The same pooled sandbox kind serves the tags that did load.
	waitFor(t, "a ready sandbox", func() bool { return e.Stats().Ready == 1 })
	if res, warm, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[]")); err != nil || !warm || res != `"ok"` {
		t.Errorf("plain = %s warm %v, %v", res, warm, err)
	}
}

// brokenBackend starts guests that fail to load the entrypoint "broken"
// and answer any other with "ok".
type brokenBackend struct{ sandboxtest.EchoBackend }

func (brokenBackend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	host, g := net.Pipe()
	sb := &pipeSandbox{host: host, done: make(chan struct{})}
	go func() {
		defer close(sb.done)
		defer g.Close()
		var in struct {
			Entrypoints []guest.EntrypointRef `json:"entrypoints"`
			ID          string                `json:"id"`
		}
		b, err := guest.ReadFrame(g, guest.DefaultMaxFrame)
		if err != nil || json.Unmarshal(b, &in) != nil {
			return
		}
		var sts []guest.EntrypointStatus
		for _, ep := range in.Entrypoints {
			st := guest.EntrypointStatus{Tag: ep.Tag, OK: ep.Tag != "broken"}
			if !st.OK {
				st.Error = &guest.Failure{Code: guest.CodeEntrypointError, Type: "ImportError", Message: "no module broken"}
			}
			sts = append(sts, st)
		}
		hello, _ := json.Marshal(map[string]any{"type": "hello", "runtime": "go-broken", "version": "1", "entrypoints": sts})
		if guest.WriteFrame(g, hello) != nil {
			return
		}
		if b, err = guest.ReadFrame(g, guest.DefaultMaxFrame); err != nil || json.Unmarshal(b, &in) != nil {
			return
		}
		res, _ := json.Marshal(map[string]any{"type": "result", "id": in.ID, "value": "ok"})
		guest.WriteFrame(g, res)
	}()
	return sb, nil
}

type pipeSandbox struct {
	host net.Conn
	done chan struct{}
}

func (s *pipeSandbox) Conn() io.ReadWriteCloser { return s.host }
func (s *pipeSandbox) Kill() error              { return s.host.Close() }
func (s *pipeSandbox) Wait() sandbox.Exit       { <-s.done; return sandbox.Exit{} }
