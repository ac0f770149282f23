//go:build linux

package linux

import (
	"context"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/runagent/runagent/guest/python"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/scratch"
)

// BenchmarkLinuxStartInvoke measures one whole call of a trivial agent in
// a full sandbox: start, init, invoke, result, wait. Compare with
// BenchmarkBarePython.
func BenchmarkLinuxStartInvoke(b *testing.B) {
	e := mustEnv(b)
	benchStartInvoke(b, e, e.shim)
}

// BenchmarkBarePython is the floor: /usr/bin/python3 -c 'print(1)'.
func BenchmarkBarePython(b *testing.B) {
	for b.Loop() {
		if err := exec.Command(systemPython, "-c", "print(1)").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLinuxStartPhases is BenchmarkLinuxStartInvoke with the time of
// each phase reported: start (Start returns), hello (the shim answered
// init), result (the call returned), wait (Wait released everything).
func BenchmarkLinuxStartPhases(b *testing.B) { benchPhases(b, mustEnv(b)) }

// BenchmarkLinuxStartPhasesProduction is BenchmarkLinuxStartPhases with
// the real cgroup and scratch managers.
func BenchmarkLinuxStartPhasesProduction(b *testing.B) {
	e := mustEnv(b)
	e.backend.cfg.Cgroups = realCgroups(b)
	e.backend.cfg.Scratch = realScratch(b)
	benchPhases(b, e)
}

func benchPhases(b *testing.B, e testEnv) {
	dir := writeAgent(b, map[string]string{"main.py": "def f(x):\n    return x\n"})
	spec := sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Env: quickExit}
	init := guest.Init{AgentDir: AgentMount, Entrypoints: refs("f")}
	ctx := context.Background()
	var start, hello, result, wait time.Duration
	for b.Loop() {
		t0 := time.Now()
		sb, err := e.backend.Start(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		c := guest.NewConn(sb.Conn(), 0)
		if _, err := c.Init(ctx, init); err != nil {
			sb.Kill()
			b.Fatal(err, sb.Wait().Logs)
		}
		t2 := time.Now()
		if err := c.Invoke(guest.Invoke{ID: "i", Tag: "f", Args: []byte(`[1]`)}); err != nil {
			b.Fatal(err)
		}
		if ev, err := c.Next(); err != nil || string(ev.Value) != "1" {
			sb.Kill()
			b.Fatalf("Next = %s, %v", ev.Value, err)
		}
		t3 := time.Now()
		if exit := sb.Wait(); exit.Code != 0 {
			b.Fatalf("exit %d: %s", exit.Code, exit.Logs)
		}
		t4 := time.Now()
		start += t1.Sub(t0)
		hello += t2.Sub(t1)
		result += t3.Sub(t2)
		wait += t4.Sub(t3)
	}
	n := float64(b.N)
	b.ReportMetric(float64(start.Microseconds())/n, "start-µs/op")
	b.ReportMetric(float64(hello.Microseconds())/n, "hello-µs/op")
	b.ReportMetric(float64(result.Microseconds())/n, "result-µs/op")
	b.ReportMetric(float64(wait.Microseconds())/n, "wait-µs/op")
}

// BenchmarkLinuxCreateDestroy starts a sandbox up to hello, kills it and
// waits: the cost of one sandbox's life cycle. sandboxes/s/core divides
// the rate by GOMAXPROCS (one sandbox at a time, but the parent, the
// supervisor and Python run on several cores).
func BenchmarkLinuxCreateDestroy(b *testing.B) {
	e := mustEnv(b)
	dir := writeAgent(b, map[string]string{"main.py": "def f(x):\n    return x\n"})
	spec := sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Env: quickExit}
	init := guest.Init{AgentDir: AgentMount, Entrypoints: refs("f")}
	ctx := context.Background()
	t0 := time.Now()
	for b.Loop() {
		sb, err := e.backend.Start(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		c := guest.NewConn(sb.Conn(), 0)
		if _, err := c.Init(ctx, init); err != nil {
			sb.Kill()
			b.Fatal(err, sb.Wait().Logs)
		}
		sb.Kill()
		sb.Wait()
	}
	perOp := time.Since(t0).Seconds() / float64(b.N)
	b.ReportMetric(1/perOp/float64(runtime.GOMAXPROCS(0)), "sandboxes/s/core")
}

// BenchmarkLinuxCreateDestroyParallel runs BenchmarkLinuxCreateDestroy's
// cycle on every core at once: the throughput that counts for a server.
func BenchmarkLinuxCreateDestroyParallel(b *testing.B) {
	e := mustEnv(b)
	dir := writeAgent(b, map[string]string{"main.py": "def f(x):\n    return x\n"})
	spec := sandbox.Spec{AgentDir: dir, ShimPath: e.shim, Python: systemPython, Env: quickExit}
	init := guest.Init{AgentDir: AgentMount, Entrypoints: refs("f")}
	ctx := context.Background()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sb, err := e.backend.Start(ctx, spec)
			if err != nil {
				b.Error(err)
				return
			}
			c := guest.NewConn(sb.Conn(), 0)
			if _, err := c.Init(ctx, init); err != nil {
				sb.Kill()
				b.Error(err, sb.Wait().Logs)
				return
			}
			sb.Kill()
			sb.Wait()
		}
	})
	perOp := time.Since(t0).Seconds() / float64(b.N)
	b.ReportMetric(1/perOp/float64(runtime.GOMAXPROCS(0)), "sandboxes/s/core")
}

// BenchmarkLinuxStartInvokeCompiled is BenchmarkLinuxStartInvoke with the
// shim precompiled (python.CompileShim), as the server runs it.
func BenchmarkLinuxStartInvokeCompiled(b *testing.B) {
	benchStartInvokeCompiled(b, mustEnv(b))
}

// BenchmarkLinuxStartInvokeProduction is BenchmarkLinuxStartInvokeCompiled
// with the real cgroup and scratch managers, as the server configures
// the backend.
func BenchmarkLinuxStartInvokeProduction(b *testing.B) {
	e := mustEnv(b)
	e.backend.cfg.Cgroups = realCgroups(b)
	e.backend.cfg.Scratch = realScratch(b)
	benchStartInvokeCompiled(b, e)
}

// BenchmarkLinuxStartInvokeServer is BenchmarkLinuxStartInvokeProduction
// with supervisors and scratch areas prepared ahead of demand: the
// backend as the server configures it.
func BenchmarkLinuxStartInvokeServer(b *testing.B) {
	e, shim, ready := serverEnv(b)
	benchStartInvokeWait(b, e, shim, ready)
}

// serverEnv is a backend configured as the server configures it, the
// compiled shim, and a function that reports whether what is prepared
// ahead of demand is ready: a benchmark waits for it, untimed, to time a
// request that finds everything prepared, as one does unless requests
// arrive faster than the background refills.
func serverEnv(b *testing.B) (e testEnv, shim string, ready func() bool) {
	e = mustEnv(b)
	e.backend.cfg.Cgroups = realCgroups(b)
	sc := realScratch(b).(*scratch.Manager)
	sc.KeepReady(serverAhead)
	e.backend.cfg.Scratch = sc
	withPrestart(b, e, serverAhead)
	shim, err := python.CompileShim(context.Background(), systemPython, e.shim)
	if err != nil {
		b.Fatal(err)
	}
	return e, shim, func() bool { return sc.Ready() >= 1 && len(e.backend.pool) >= 1 }
}

// serverAhead is how many supervisors and scratch areas internal/server
// keeps prepared ahead of demand.
const serverAhead = 2

// withPrestart makes e's backend keep n supervisors started ahead of
// demand, and stops them when b ends.
func withPrestart(b testing.TB, e testEnv, n int) {
	e.backend.cfg.Prestart = n
	e.backend.cfg.PrestartEnv = quickExit
	e.backend.pool = make(chan *spawned, n)
	b.Cleanup(func() { e.backend.Close() })
}

// BenchmarkLinuxStartInvokePrestart is BenchmarkLinuxStartInvokeCompiled
// with one supervisor kept started ahead of demand (Config.Prestart).
func BenchmarkLinuxStartInvokePrestart(b *testing.B) {
	e := mustEnv(b)
	withPrestart(b, e, 1)
	benchStartInvokeCompiled(b, e)
}

// benchStartInvokeCompiled is benchStartInvoke with the precompiled shim.
func benchStartInvokeCompiled(b *testing.B, e testEnv) {
	shim, err := python.CompileShim(context.Background(), systemPython, e.shim)
	if err != nil {
		b.Fatal(err)
	}
	benchStartInvoke(b, e, shim)
}

// benchStartInvoke starts a sandbox with e's backend and shim, initialises
// it, invokes a trivial agent and waits for the sandbox to end, once per
// iteration.
func benchStartInvoke(b *testing.B, e testEnv, shim string) {
	benchStartInvokeWait(b, e, shim, nil)
}

// benchStartInvokeWait is benchStartInvoke; if ready is not nil, each
// iteration first waits, untimed, until it reports true.
func benchStartInvokeWait(b *testing.B, e testEnv, shim string, ready func() bool) {
	dir := writeAgent(b, map[string]string{"main.py": "def f(x):\n    return x\n"})
	benchColdStart(b, e, sandbox.Spec{AgentDir: dir, ShimPath: shim, Python: systemPython, Env: quickExit}, ready)
}

// benchColdStart is benchStartInvokeWait for spec, whose agent's main.py
// defines f(x) returning x.
func benchColdStart(b *testing.B, e testEnv, spec sandbox.Spec, ready func() bool) {
	once := coldStart(b, e, spec)
	if ready != nil {
		once() // what is prepared ahead is prepared for what was asked for
	}
	var toResult time.Duration
	for b.Loop() {
		waitReady(b, ready)
		toResult += once()
	}
	b.ReportMetric(float64(toResult.Nanoseconds())/float64(b.N), "to-result-ns/op")
}

// coldStart returns a function that runs one call of f(1) in a new
// sandbox for spec and returns the time from Start to its result; the
// rest is the sandbox's teardown, which a server does after answering.
// The init frame names the directories where the sandbox shows the
// agent's code and environment.
func coldStart(b *testing.B, e testEnv, spec sandbox.Spec) func() time.Duration {
	ctx := context.Background()
	return func() time.Duration {
		t0 := time.Now()
		sb, err := e.backend.Start(ctx, spec)
		if err != nil {
			b.Fatal(err)
		}
		c := guest.NewConn(sb.Conn(), 0)
		dirs := sandbox.DirsOf(sb, spec)
		if _, err := c.Init(ctx, guest.Init{AgentDir: dirs.Agent, EnvDir: dirs.Env, Entrypoints: refs("f")}); err != nil {
			sb.Kill()
			b.Fatal(err, sb.Wait().Logs)
		}
		if err := c.Invoke(guest.Invoke{ID: "i", Tag: "f", Args: []byte(`[1]`)}); err != nil {
			b.Fatal(err)
		}
		if ev, err := c.Next(); err != nil || string(ev.Value) != "1" {
			sb.Kill()
			b.Fatalf("Next = %s, %v; logs:\n%s", ev.Value, err, sb.Wait().Logs)
		}
		d := time.Since(t0)
		if exit := sb.Wait(); exit.Code != 0 {
			b.Fatalf("exit %d: %s", exit.Code, exit.Logs)
		}
		return d
	}
}

// waitReady waits, with b's timer stopped, until ready (if not nil)
// reports true.
func waitReady(b *testing.B, ready func() bool) {
	if ready == nil {
		return
	}
	b.StopTimer()
	defer b.StartTimer()
	deadline := time.Now().Add(20 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			b.Fatal("the sandboxes prepared ahead of demand were not refilled within 20s")
		}
		time.Sleep(100 * time.Microsecond)
	}
}
