//go:build linux

package executor

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/process"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// envBackend adds env to every sandbox's base environment.
type envBackend struct {
	sandbox.Backend
	env []string
}

func (b envBackend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	spec.Env = append(append([]string(nil), spec.Env...), b.env...)
	return b.Backend.Start(ctx, spec)
}

// realExec returns an executor on the process backend running real Python
// (skipping if there is none), counting its sandboxes, and a request for
// the entrypoint f of a trivial agent (it also has g_stream).
func realExec(tb testing.TB, poolSize int) (*Executor, *sandboxtest.Counting, Request) {
	tb.Helper()
	src := "def f(x):\n    return x\n\ndef g_stream(n):\n    for i in range(n):\n        yield i\n"
	return realAgentExec(tb, Config{PoolSize: poolSize}, src, core.Resources{}, "f", "g_stream")
}

// realAgentExec returns an executor configured by cfg on the process
// backend running real Python, counting its sandboxes, and a request for
// the first of tags, functions of the same name in main.py = src, of an
// agent with resources res.
func realAgentExec(tb testing.TB, cfg Config, src string, res core.Resources, tags ...string) (*Executor, *sandboxtest.Counting, Request) {
	tb.Helper()
	in, err := python.Resolve(context.Background(), "python3")
	if err != nil {
		tb.Fatalf("python3 is required by the tests (scripts/deps.sh installs it): %v", err)
	}
	shim, err := python.WriteShim(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	if shim, err = python.CompileShim(context.Background(), in.Path, shim); err != nil {
		tb.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	// The supervisor is this test binary: under -race it would sleep a
	// second at exit unless told not to.
	b := &sandboxtest.Counting{Backend: envBackend{process.New(exe), []string{"GORACE=atexit_sleep_ms=0"}}}
	cfg.Backend, cfg.Interpreters = b, []Interpreter{{Python: in.Path, ShimPath: shim}}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = 20 * time.Second
	}
	e, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Shutdown(context.Background()) })

	dir := tb.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.py"), []byte(src), 0o644); err != nil {
		tb.Fatal(err)
	}
	ac := &core.AgentConfig{AgentID: "real", Resources: res}
	for _, tag := range tags {
		ac.Entrypoints = append(ac.Entrypoints, core.Entrypoint{Tag: tag, Kind: core.KindPython, File: "main.py", Module: tag})
	}
	req := Request{InvocationID: "inv", AgentDir: dir, Config: ac, Entrypoint: ac.Entrypoints[0], Args: json.RawMessage(`[1]`)}
	return e, b, req
}

// timedRun runs req and returns the time from Start to the first event.
func timedRun(tb testing.TB, e *Executor, req Request) (ttfe time.Duration, warm bool) {
	tb.Helper()
	start := time.Now()
	run, err := e.Start(context.Background(), req)
	if err != nil {
		tb.Fatal(err)
	}
	defer run.Close()
	for first := true; ; first = false {
		ev, err := run.Next()
		if first {
			ttfe = time.Since(start)
		}
		if err != nil {
			tb.Fatalf("Next: %v (logs: %s)", err, run.Close().Logs)
		}
		if ev.Kind == guest.Result {
			return ttfe, run.Warm()
		}
	}
}

func median(d []time.Duration) time.Duration {
	d = slices.Clone(d)
	slices.Sort(d)
	return d[len(d)/2]
}

func TestRealProcessWarmFasterThanCold(t *testing.T) {
	e, b, req := realExec(t, 2)
	var cold, warm []time.Duration
	for i := range 5 {
		// Evict drops the pool, so this run misses and cold starts.
		e.Evict(req.AgentDir)
		d, w := timedRun(t, e, req)
		if w {
			t.Fatalf("cold run %d was warm", i)
		}
		cold = append(cold, d)
		waitFor(t, "a full pool", func() bool { s := e.Stats(); return s.Ready == 2 && s.Starting == 0 })
		d, w = timedRun(t, e, req)
		if !w {
			t.Fatalf("run %d after the pool filled was cold: %+v", i, e.Stats())
		}
		warm = append(warm, d)
	}
	// A pooled sandbox loaded every entrypoint: a streaming tag is warm too.
	waitFor(t, "a ready sandbox", func() bool { return e.Stats().Ready >= 1 })
	sreq := req
	sreq.Entrypoint, sreq.Args = req.Config.Entrypoints[1], json.RawMessage(`[3]`)
	if _, w := timedRun(t, e, sreq); !w {
		t.Errorf("stream run was not warm")
	}
	t.Logf("time to first event: cold median %v %v, warm median %v %v; stats %+v", median(cold), cold, median(warm), warm, e.Stats())
	if median(warm)*3 > median(cold) {
		t.Errorf("warm median %v is not much below cold median %v", median(warm), median(cold))
	}
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAllReaped(t, b)
}

// benchInvoke runs b.N invocations of a trivial agent on the process
// backend and reports the p50 and p99 time from Start to the first event.
// With a pool, the wait for the pool to be full again is not timed: it
// measures a request that finds a ready sandbox.
// sustained skips that wait: requests back to back, as a sequential
// client would send them; misses happen when refills fall behind.
func benchInvoke(b *testing.B, poolSize int, sustained bool) {
	e, _, req := realExec(b, poolSize)
	if poolSize > 0 {
		e.Prewarm(req)
	}
	var ttfe []time.Duration
	for b.Loop() {
		if poolSize > 0 && !sustained {
			b.StopTimer()
			deadline := time.Now().Add(20 * time.Second)
			for s := e.Stats(); s.Ready < poolSize || s.Starting > 0; s = e.Stats() {
				if time.Now().After(deadline) {
					b.Fatalf("pool not refilled: %+v", s)
				}
				time.Sleep(100 * time.Microsecond)
			}
			b.StartTimer()
		}
		d, warm := timedRun(b, e, req)
		if !sustained && warm != (poolSize > 0) {
			b.Fatalf("warm = %v with pool size %d", warm, poolSize)
		}
		ttfe = append(ttfe, d)
	}
	slices.Sort(ttfe)
	b.ReportMetric(float64(ttfe[len(ttfe)/2].Nanoseconds()), "p50-ttfe-ns")
	b.ReportMetric(float64(ttfe[(len(ttfe)*99)/100].Nanoseconds()), "p99-ttfe-ns")
	if st := e.Stats(); poolSize > 0 {
		b.ReportMetric(float64(st.Hits)/float64(st.Hits+st.Misses), "hit-ratio")
	}
}

// BenchmarkColdInvoke: every invocation starts Python and imports the
// agent.
func BenchmarkColdInvoke(b *testing.B) { benchInvoke(b, 0, false) }

// BenchmarkWarmInvoke: every invocation takes a pooled sandbox.
func BenchmarkWarmInvoke(b *testing.B) { benchInvoke(b, DefaultPoolSize, false) }

// BenchmarkWarmInvokeSustained: back-to-back invocations with the default
// pool; the pool is refilled while they run.
func BenchmarkWarmInvokeSustained(b *testing.B) { benchInvoke(b, DefaultPoolSize, true) }
