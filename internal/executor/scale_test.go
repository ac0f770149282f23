package executor

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// burst runs workers×each runs of the versions in dirs at once.
func burst(t *testing.T, e *Executor, workers, each int, dirs ...string) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				dir := dirs[(w+i)%len(dirs)]
				if _, _, err := runToEnd(e, t.Context(), versionRequest(dir, "plain", "[]")); err != nil {
					t.Errorf("run in the burst: %v", err)
				}
			}
		})
	}
	wg.Wait()
}

// sampleStats calls f with the executor's stats every millisecond until
// the returned stop is called.
func sampleStats(e *Executor, f func(Stats)) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
				f(e.Stats())
			}
		}
	}()
	return func() { close(done); <-stopped }
}

func TestPoolTargetFollowsDemand(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}, Delay: 20 * time.Millisecond}
	e := newPoolExec(t, b, Config{PoolSize: 1, PoolMax: 12, MaxConcurrent: 64, rateWindow: 500 * time.Millisecond, scaleEvery: 20 * time.Millisecond})
	if _, _, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[]")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the floor of one ready sandbox", func() bool { s := e.Stats(); return s.Ready == 1 && s.Starting == 0 })
	if st := e.Stats(); st.Target != 1 {
		t.Errorf("Target after one run = %d, want PoolSize (1)", st.Target)
	}

	var maxTarget, maxPooled int
	stop := sampleStats(e, func(s Stats) {
		maxTarget = max(maxTarget, s.Target)
		maxPooled = max(maxPooled, s.Ready+s.Starting)
	})
	burst(t, e, 16, 6, "/v1")
	// The pool keeps growing towards the target for a moment after.
	time.Sleep(100 * time.Millisecond)
	stop()
	st := e.Stats()
	t.Logf("after the burst: max target %d, max pooled %d, %+v", maxTarget, maxPooled, st)
	if maxTarget < 4 {
		t.Errorf("the target rose to %d under a burst of 96 runs, want at least 4", maxTarget)
	}
	if maxTarget > 12 || maxPooled > 12 {
		t.Errorf("target %d, pooled %d: above PoolMax (12)", maxTarget, maxPooled)
	}
	if maxPooled < 3 {
		t.Errorf("at most %d sandboxes were pooled under the burst, want the pool to grow past 2", maxPooled)
	}

	// Demand stops: the target falls back to the floor and the ready
	// sandboxes above it go, long before the pool's idle time (5 min).
	waitFor(t, "the pool to shrink to PoolSize", func() bool {
		s := e.Stats()
		return s.Target == 1 && s.Ready <= 1 && s.Starting == 0
	})
	st = e.Stats()
	if st.Versions != 1 || st.Trimmed == 0 {
		t.Errorf("after demand fell: %+v, want the pool kept and sandboxes trimmed", st)
	}
	waitFor(t, "trimmed sandboxes to be reaped", func() bool {
		started, _, waited := b.Counts()
		return waited >= started-e.Stats().Ready
	})
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAllReaped(t, b)
}

func TestPoolMemoryBudgetAndMaxConcurrent(t *testing.T) {
	const mib = 1 << 20
	b := &memBackend{Counting: sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}, Delay: 10 * time.Millisecond}, bytes: 100 * mib}
	e := newPoolExec(t, b, Config{PoolSize: 1, PoolMax: 50, MaxConcurrent: 64, PoolMemory: 350 * mib,
		rateWindow: 500 * time.Millisecond, scaleEvery: 20 * time.Millisecond})
	// Before any sandbox reported its use, the estimate applies.
	if st := e.Stats(); st.SandboxMemory != DefaultSandboxMemory || st.PoolBudget != int(350*mib/DefaultSandboxMemory) {
		t.Errorf("before any measurement: SandboxMemory %d budget %d, want the default estimate", st.SandboxMemory, st.PoolBudget)
	}
	if _, _, err := runToEnd(e, t.Context(), versionRequest("/v1", "plain", "[]")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a ready sandbox", func() bool { return e.Stats().Ready == 1 })
	if st := e.Stats(); st.SandboxMemory != 100*mib || st.PoolBudget != 3 {
		t.Errorf("after a measurement: SandboxMemory %d budget %d, want 100 MiB and 3", st.SandboxMemory, st.PoolBudget)
	}
	var over atomic.Int64
	stop := sampleStats(e, func(s Stats) {
		if s.Ready+s.Starting > 3 {
			over.Store(int64(s.Ready + s.Starting))
		}
	})
	burst(t, e, 12, 6, "/v1", "/v2")
	stop()
	if n := over.Load(); n > 0 {
		t.Errorf("%d sandboxes pooled, over the memory budget of 3", n)
	}

	// PoolMax is bounded by MaxConcurrent, but never below PoolSize.
	for _, c := range []struct{ size, max, conc, want int }{{1, 50, 4, 4}, {6, 50, 4, 6}, {2, 0, 64, DefaultPoolMax}, {3, 2, 64, 3}} {
		cfg := Config{PoolSize: c.size, PoolMax: c.max, MaxConcurrent: c.conc}
		cfg.setDefaults()
		if cfg.PoolMax != c.want {
			t.Errorf("PoolSize %d PoolMax %d MaxConcurrent %d: PoolMax = %d, want %d", c.size, c.max, c.conc, cfg.PoolMax, c.want)
		}
	}
}

// memBackend's sandboxes report that they use bytes of memory.
type memBackend struct {
	sandboxtest.Counting
	bytes int64
}

func (b *memBackend) Start(ctx context.Context, spec sandbox.Spec) (sandbox.Sandbox, error) {
	sb, err := b.Counting.Start(ctx, spec)
	if err != nil {
		return nil, err
	}
	return memSandbox{sb.(*sandboxtest.Counted), b.bytes}, nil
}

type memSandbox struct {
	*sandboxtest.Counted
	bytes int64
}

func (s memSandbox) MemoryBytes() int64 { return s.bytes }
