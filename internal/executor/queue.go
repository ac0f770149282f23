package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// The admission queue.
//
// At most MaxConcurrent runs are in progress (admitted: from Start until
// Close). A run that arrives when all slots are taken waits in a queue
// instead of being refused at once, and takes the slot of the next run
// that closes. The queue is fair: runs wait in sub-queues per agent and,
// within an agent, per principal (Request.Caller), and a freed slot goes
// round-robin — to the agent after the one served last, and within it to
// the principal after the one served last — so one principal flooding an
// agent, or one agent flooding the server, gets its turn like the others
// and no more. Within a principal's sub-queue runs keep their order.
//
// Bounds. At most QueueMax runs wait; one more is refused at once. A run
// waits at most QueueWait, never past its own deadline (the wait counts
// against it: the deadline runs from Start) and never past its context;
// then it is refused with UNAVAILABLE (errors.Is ErrAtCapacity), as a run
// was before there was a queue. A caller that goes away leaves the queue
// at once. Shutdown refuses every waiting run with ErrClosed.
//
// Invariant: while a run waits, every slot is taken (a freed slot is
// handed to a waiter, never returned while one waits), so a new run that
// finds a free slot takes it without jumping anyone.

// ErrAtCapacity is wrapped by the UNAVAILABLE error of a run refused
// because MaxConcurrent runs were in progress: the queue was full, or the
// run waited as long as it could. The API answers it with Retry-After.
var ErrAtCapacity = errors.New("executor: at capacity")

// waiter is a run waiting for a slot. Its fields are guarded by
// Executor.mu.
type waiter struct {
	agent, principal string
	queued           time.Time
	// done is closed when the wait is decided: granted (the waiter now
	// holds a slot and a count in Executor.running) or err set.
	done    chan struct{}
	granted bool
	err     error
}

// principalQueue holds one principal's waiting runs of one agent, oldest
// first.
type principalQueue struct {
	principal string
	waiters   []*waiter
}

// agentQueue holds the waiting runs of one agent: its principals with
// waiting runs, in serving order (the next to serve first).
type agentQueue struct {
	agent      string
	principals []*principalQueue
}

// fairQueue is the admission queue: agents with waiting runs, in serving
// order. Guarded by Executor.mu.
type fairQueue struct {
	agents []*agentQueue
	n      int
}

func (q *fairQueue) push(w *waiter) {
	i := slices.IndexFunc(q.agents, func(a *agentQueue) bool { return a.agent == w.agent })
	if i < 0 {
		q.agents = append(q.agents, &agentQueue{agent: w.agent})
		i = len(q.agents) - 1
	}
	a := q.agents[i]
	j := slices.IndexFunc(a.principals, func(p *principalQueue) bool { return p.principal == w.principal })
	if j < 0 {
		a.principals = append(a.principals, &principalQueue{principal: w.principal})
		j = len(a.principals) - 1
	}
	a.principals[j].waiters = append(a.principals[j].waiters, w)
	q.n++
}

// pop removes and returns the next waiter in round-robin order, or nil:
// the oldest run of the first principal of the first agent; that
// principal moves to the back of its agent's order, and the agent to the
// back of the server's.
func (q *fairQueue) pop() *waiter {
	if q.n == 0 {
		return nil
	}
	a := q.agents[0]
	p := a.principals[0]
	w := p.waiters[0]
	p.waiters[0] = nil
	p.waiters = p.waiters[1:]
	q.n--
	a.principals = a.principals[1:]
	if len(p.waiters) > 0 {
		a.principals = append(a.principals, p)
	}
	q.agents = q.agents[1:]
	if len(a.principals) > 0 {
		q.agents = append(q.agents, a)
	}
	return w
}

// remove takes w out of the queue (it gave up); it reports whether w was
// there.
func (q *fairQueue) remove(w *waiter) bool {
	i := slices.IndexFunc(q.agents, func(a *agentQueue) bool { return a.agent == w.agent })
	if i < 0 {
		return false
	}
	a := q.agents[i]
	j := slices.IndexFunc(a.principals, func(p *principalQueue) bool { return p.principal == w.principal })
	if j < 0 {
		return false
	}
	p := a.principals[j]
	k := slices.Index(p.waiters, w)
	if k < 0 {
		return false
	}
	p.waiters = slices.Delete(p.waiters, k, k+1)
	q.n--
	if len(p.waiters) == 0 {
		a.principals = slices.Delete(a.principals, j, j+1)
	}
	if len(a.principals) == 0 {
		q.agents = slices.Delete(q.agents, i, i+1)
	}
	return true
}

// admit takes a slot for a run of r, waiting in the queue if all are
// taken. On success the caller holds a slot and a count in e.running.
func (e *Executor) admit(ctx context.Context, r Request, deadline time.Duration) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if e.starting < e.cfg.MaxConcurrent {
		e.starting++
		e.running.Add(1)
		e.mu.Unlock()
		return nil
	}
	wait := min(e.cfg.QueueWait, deadline)
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	if wait <= 0 || e.queue.n >= e.cfg.QueueMax {
		e.stats.queueFull++
		e.mu.Unlock()
		return &core.Error{Code: core.CodeUnavailable, Err: ErrAtCapacity, Message: fmt.Sprintf(
			"the server is at capacity: it is running its maximum of %d invocations and cannot queue more; retry shortly", e.cfg.MaxConcurrent)}
	}
	w := &waiter{principal: r.Caller, queued: time.Now(), done: make(chan struct{})}
	if r.Config != nil {
		w.agent = r.Config.AgentID
	}
	e.queue.push(w)
	e.stats.queued++
	e.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	var why error
	select {
	case <-w.done:
	case <-t.C:
		why = ErrAtCapacity
	case <-ctx.Done():
		why = ctx.Err()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if why != nil && e.queue.remove(w) {
		waited := time.Since(w.queued)
		e.stats.queueWait.observe(waited)
		if errors.Is(why, context.Canceled) {
			e.stats.queueCancelled++
			return &core.Error{Code: core.CodeCancelled, Message: "the caller went away while the invocation waited for a free slot", Err: why}
		}
		e.stats.queueRefused++
		return &core.Error{Code: core.CodeUnavailable, Err: ErrAtCapacity, Message: fmt.Sprintf(
			"the server is at capacity: it is running its maximum of %d invocations and none finished within %s while this one waited; retry shortly",
			e.cfg.MaxConcurrent, waited.Round(time.Millisecond))}
	}
	// Decided (granted or refused by Shutdown), perhaps just as the timer
	// or ctx fired.
	if w.err != nil {
		return w.err
	}
	if err := ctx.Err(); err != nil {
		// Granted, but the caller is gone: pass the slot on.
		e.releaseLocked()
		e.running.Done()
		return &core.Error{Code: core.CodeCancelled, Message: "the caller went away while the invocation waited for a free slot", Err: err}
	}
	return nil
}

// releaseLocked frees the slot of a run that ends: it goes to the next
// waiting run, if any, else back to the pool of free slots.
// Preconditions: e.mu is held, and the caller still counts in e.running
// (so that Add here does not race with Shutdown's Wait).
func (e *Executor) releaseLocked() {
	if e.closed {
		e.starting--
		return
	}
	if w := e.queue.pop(); w != nil {
		w.granted = true
		e.running.Add(1)
		e.stats.queueWait.observe(time.Since(w.queued))
		close(w.done)
		return
	}
	e.starting--
}

// refuseQueuedLocked refuses every waiting run with err (Shutdown).
func (e *Executor) refuseQueuedLocked(err error) {
	for w := e.queue.pop(); w != nil; w = e.queue.pop() {
		w.err = err
		close(w.done)
	}
}

// QueueWaitBuckets are the upper bounds, in seconds, of the buckets of
// Stats.QueueWait.
var QueueWaitBuckets = []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// WaitHistogram counts queue waits (admitted or refused) by duration.
type WaitHistogram struct {
	Count uint64
	Sum   float64 // seconds
	// Buckets[i] counts the waits of at most QueueWaitBuckets[i]
	// seconds (cumulative, as Prometheus wants).
	Buckets []uint64
}

type waitHistogram struct {
	count   uint64
	sum     float64
	buckets [13]uint64 // len(QueueWaitBuckets); not cumulative
}

func (h *waitHistogram) observe(d time.Duration) {
	s := d.Seconds()
	h.count++
	h.sum += s
	for i, b := range QueueWaitBuckets {
		if s <= b {
			h.buckets[i]++
			return
		}
	}
}

func (h *waitHistogram) snapshot() WaitHistogram {
	out := WaitHistogram{Count: h.count, Sum: h.sum, Buckets: make([]uint64, len(QueueWaitBuckets))}
	var c uint64
	for i := range QueueWaitBuckets {
		c += h.buckets[i]
		out.Buckets[i] = c
	}
	return out
}
