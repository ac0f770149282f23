package executor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// newQueueExec returns an executor on hangBackend (runs last until
// closed) with cfg's slot and queue fields.
func newQueueExec(t *testing.T, cfg Config) *Executor {
	t.Helper()
	return newPoolExec(t, hangBackend{}, cfg)
}

// callerRequest is a request of agent by principal.
func callerRequest(agent, principal string) Request {
	r := request("x", "[]")
	r.Config = &core.AgentConfig{AgentID: agent}
	r.Caller = principal
	return r
}

// queued starts a run of req in the background once the queue holds
// want-1 runs, and waits until it holds want: the order of the queue is
// the order of the calls. The outcome arrives on the returned channel.
func queued(t *testing.T, e *Executor, ctx context.Context, req Request, want int) <-chan startResult {
	t.Helper()
	out := make(chan startResult, 1)
	go func() {
		run, err := e.Start(ctx, req)
		out <- startResult{req.Caller, run, err}
	}()
	t.Cleanup(func() {
		// Close what a failed test left running, or Shutdown waits for it.
		select {
		case r := <-out:
			if r.run != nil {
				r.run.Close()
			}
			out <- r
		default:
		}
	})
	waitFor(t, fmt.Sprintf("%d queued runs", want), func() bool { return e.Stats().Queued == want })
	return out
}

type startResult struct {
	label string
	run   *Run
	err   error
}

func TestQueuedRunStartsWhenSlotFrees(t *testing.T) {
	e := newQueueExec(t, Config{MaxConcurrent: 1})
	first, err := e.Start(t.Context(), callerRequest("a", "p"))
	if err != nil {
		t.Fatal(err)
	}
	second := queued(t, e, t.Context(), callerRequest("a", "q"), 1)
	select {
	case res := <-second:
		t.Fatalf("second Start returned while the only slot was taken: %v", res.err)
	case <-time.After(50 * time.Millisecond):
	}
	first.Close()
	res := <-second
	if res.err != nil {
		t.Fatalf("queued Start = %v, want a run once the slot freed", res.err)
	}
	if n := e.Active(); n != 1 {
		t.Errorf("Active = %d, want 1", n)
	}
	res.run.Close()
	st := e.Stats()
	if st.Queued != 0 || st.QueuedTotal != 1 || st.QueueWait.Count != 1 || st.QueueRefused != 0 || st.Running != 0 {
		t.Errorf("Stats = %+v, want 1 queued in total, 1 wait observed, nothing left", st)
	}
	if st.QueueWait.Sum < 0.04 {
		t.Errorf("QueueWait.Sum = %v s, want at least the 50 ms it waited", st.QueueWait.Sum)
	}
	// The slot is free again: a run starts at once.
	run, err := e.Start(t.Context(), callerRequest("a", "p"))
	if err != nil {
		t.Fatal(err)
	}
	run.Close()
}

func TestQueueFairAcrossAgentsAndPrincipals(t *testing.T) {
	e := newQueueExec(t, Config{MaxConcurrent: 1, QueueMax: 16})
	holder, err := e.Start(t.Context(), callerRequest("x", "hold"))
	if err != nil {
		t.Fatal(err)
	}
	// Principal A floods agent x; B calls x twice after, and C calls
	// agent y once, last of all.
	var arrivals []string
	var results []<-chan startResult
	add := func(agent, principal string, n int) {
		for i := range n {
			label := fmt.Sprintf("%s%d", principal, i+1)
			req := callerRequest(agent, principal)
			req.Caller = principal
			arrivals = append(arrivals, label)
			ch := queued(t, e, t.Context(), req, len(arrivals))
			results = append(results, relabel(ch, label))
		}
	}
	add("x", "A", 6)
	add("x", "B", 2)
	add("y", "C", 1)
	admitted := make(chan startResult, len(results))
	for _, ch := range results {
		go func() { admitted <- <-ch }()
	}
	got := 0
	t.Cleanup(func() {
		// A failed test leaves runs open, and queued ones that they
		// would let in: close them all, or Shutdown waits for them.
		holder.Close()
		for ; got < len(results); got++ {
			select {
			case r := <-admitted:
				if r.run != nil {
					r.run.Close()
				}
			case <-time.After(2 * time.Second):
				return
			}
		}
	})

	var order []string
	prev := holder
	for range results {
		prev.Close() // frees the one slot: the next waiter gets it
		res := <-admitted
		got++
		if res.err != nil {
			t.Fatalf("%s: %v", res.label, res.err)
		}
		order = append(order, res.label)
		prev = res.run
	}
	prev.Close()
	// Round-robin between agents, and between principals within x; each
	// principal's own runs in their order.
	want := []string{"A1", "C1", "B1", "A2", "B2", "A3", "A4", "A5", "A6"}
	if !slices.Equal(order, want) {
		t.Errorf("admitted in order %v, want %v (arrived %v)", order, want, arrivals)
	}
	// However long A's backlog, B's two runs were among the first five.
	if i := slices.Index(order, "B2"); i > 4 {
		t.Errorf("B's second run was admitted %dth, behind A's flood", i+1)
	}
	if st := e.Stats(); st.QueuedTotal != 9 || st.Queued != 0 || st.Running != 0 {
		t.Errorf("Stats = %+v", st)
	}
}

// relabel passes ch's result on with label.
func relabel(ch <-chan startResult, label string) <-chan startResult {
	out := make(chan startResult, 1)
	go func() {
		r := <-ch
		r.label = label
		out <- r
	}()
	return out
}

func TestQueueWaitTimeoutUnavailable(t *testing.T) {
	e := newQueueExec(t, Config{MaxConcurrent: 1, QueueWait: 150 * time.Millisecond, QueueMax: 1})
	holder, err := e.Start(t.Context(), callerRequest("a", "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	start := time.Now()
	waiting := queued(t, e, t.Context(), callerRequest("a", "q"), 1)
	// The queue holds one: the next is refused at once.
	_, err = e.Start(t.Context(), callerRequest("a", "r"))
	if core.ErrorCode(err) != core.CodeUnavailable || !errors.Is(err, ErrAtCapacity) {
		t.Errorf("Start with the queue full = %v, want UNAVAILABLE (ErrAtCapacity)", err)
	}
	res := <-waiting
	d := time.Since(start)
	if core.ErrorCode(res.err) != core.CodeUnavailable || !errors.Is(res.err, ErrAtCapacity) {
		t.Fatalf("queued Start = %v, want UNAVAILABLE after the wait", res.err)
	}
	if d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("refused after %v, want about QueueWait (150ms)", d)
	}
	t.Logf("refusal: %v", res.err)

	// A run's own deadline bounds its wait.
	req := callerRequest("a", "q")
	req.Timeout = 40 * time.Millisecond
	e2 := newQueueExec(t, Config{MaxConcurrent: 1})
	h2, err := e2.Start(t.Context(), callerRequest("a", "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	start = time.Now()
	if _, err := e2.Start(t.Context(), req); !errors.Is(err, ErrAtCapacity) {
		t.Errorf("Start with a 40ms timeout = %v, want UNAVAILABLE", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a run with a 40ms deadline waited %v (QueueWait is 10s)", d)
	}

	// Without a queue, a run is refused at once, as before there was one.
	e3 := newQueueExec(t, Config{MaxConcurrent: 1, QueueWait: -1})
	h3, err := e3.Start(t.Context(), callerRequest("a", "p"))
	if err != nil {
		t.Fatal(err)
	}
	defer h3.Close()
	start = time.Now()
	if _, err := e3.Start(t.Context(), callerRequest("a", "p")); !errors.Is(err, ErrAtCapacity) || time.Since(start) > time.Second {
		t.Errorf("Start without a queue = %v after %v, want UNAVAILABLE at once", err, time.Since(start))
	}

	st := e.Stats()
	if st.QueueRefused != 1 || st.QueueFull != 1 || st.Queued != 0 {
		t.Errorf("Stats = %+v, want 1 refused after waiting and 1 at once", st)
	}
}

func TestQueueCancelLeavesAtOnce(t *testing.T) {
	before := runtime.NumGoroutine()
	e, err := New(Config{Backend: hangBackend{}, Interpreters: []Interpreter{{Python: "python3", ShimPath: "/unused"}}, MaxConcurrent: 1, QueueMax: 32})
	if err != nil {
		t.Fatal(err)
	}
	holder, err := e.Start(t.Context(), callerRequest("a", "p"))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	var cancels []context.CancelFunc
	var results []<-chan startResult
	for i := range n {
		ctx, cancel := context.WithCancel(t.Context())
		cancels = append(cancels, cancel)
		results = append(results, queued(t, e, ctx, callerRequest("a", fmt.Sprint("p", i%3)), i+1))
	}
	for i, cancel := range cancels {
		start := time.Now()
		cancel()
		res := <-results[i]
		if core.ErrorCode(res.err) != core.CodeCancelled {
			t.Errorf("cancelled queued Start = %v, want CANCELLED", res.err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("cancelled Start returned after %v", d)
		}
		if q := e.Stats().Queued; q != n-1-i {
			t.Errorf("after %d cancels %d queued, want %d", i+1, q, n-1-i)
		}
	}
	if st := e.Stats(); st.QueueCancelled != n {
		t.Errorf("QueueCancelled = %d, want %d", st.QueueCancelled, n)
	}
	// No waiter kept a slot: once the holder closes, one is free at once.
	holder.Close()
	run, err := e.Start(t.Context(), callerRequest("a", "p"))
	if err != nil {
		t.Fatal(err)
	}
	run.Close()
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestQueueShutdownRefusesWaiters(t *testing.T) {
	e := newQueueExec(t, Config{MaxConcurrent: 1})
	holder, err := e.Start(t.Context(), callerRequest("a", "p"))
	if err != nil {
		t.Fatal(err)
	}
	waiting := queued(t, e, t.Context(), callerRequest("a", "q"), 1)
	go func() {
		time.Sleep(50 * time.Millisecond)
		holder.Close()
	}()
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res := <-waiting; res.err != ErrClosed {
		t.Errorf("queued Start at Shutdown = %v, want ErrClosed", res.err)
	}
}

func TestQueueStress(t *testing.T) {
	b := &sandboxtest.Counting{Backend: sandboxtest.EchoBackend{}, Delay: time.Millisecond}
	e := newPoolExec(t, b, Config{PoolSize: 1, MaxConcurrent: 2, QueueMax: 64})
	const workers, each = 16, 15
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				req := versionRequest(fmt.Sprintf("/v%d", i%2), "plain", fmt.Sprintf("[%d,%d]", w, i))
				req.Caller = fmt.Sprint("p", w%4)
				if _, _, err := runToEnd(e, t.Context(), req); err != nil {
					t.Errorf("worker %d run %d: %v", w, i, err)
				}
			}
		})
	}
	wg.Wait()
	st := e.Stats()
	t.Logf("stats: %+v", st)
	if st.Running != 0 || st.Queued != 0 || st.QueuedTotal == 0 || st.QueueRefused+st.QueueFull != 0 {
		t.Errorf("Stats = %+v, want runs that queued, none refused, nothing left", st)
	}
	if err := e.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	checkAllReaped(t, b)
}
