package executor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"slices"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/guest"
	"github.com/runagent/runagent/internal/sandbox"
)

// The warm pool.
//
// Each agent version that served a request recently has a pool of
// sandboxes that are started and initialised with all of the version's
// Python entrypoints, have sent hello, and wait for their one invoke. They
// hold no secrets: per-invocation environment travels in the invoke frame.
// Start takes a ready sandbox when there is one (a hit) and cold starts
// otherwise (a miss). Either way it then tops the pool up to its target in
// the background, so the first request of a version is cold and the next
// ones are warm; no request ever waits for a refill. A pooled sandbox
// serves one invocation and is destroyed after it — unless the agent
// keeps sandboxes per user_id (reuse.go), when a cleanly ended run's
// sandbox is kept for that user's next call instead.
//
// Size. A version's target follows its arrival rate (scale.go): at least
// PoolSize, at most PoolMax, about the runs that arrive while a sandbox
// starts, times PoolHeadroom; it rises at once under a burst and falls
// back to PoolSize as demand falls, the ready sandboxes above it being
// destroyed.
//
// Bounds. Pooled sandboxes are not runs: they do not count against
// MaxConcurrent. Per version, ready plus starting sandboxes never exceed
// the target (at most PoolMax, itself at most MaxConcurrent unless
// PoolSize is larger); all of them together never cost more than
// PoolMemory; at most PoolMaxVersions versions have a pool (a new one
// evicts the least recently used); so at most MaxConcurrent running plus
// PoolMemory's worth of pooled sandboxes exist, plus at most PoolRefills
// being started for a version evicted meanwhile (destroyed as soon as
// they are up). At most PoolRefills refills run at once.
//
// Failure handling. A pooled guest may die while it waits: a goroutine
// per pooled sandbox reads its control channel (the guest sends nothing
// before its invoke), so a guest that goes away is noticed at once,
// removed and reaped; Start checks again when it takes one (stopping that
// read with a read deadline) and falls back to a cold start. Sandbox.Wait
// is not used as the liveness signal because backends release the control
// channel in Wait, which would race with reading the result. A failed
// refill or a dead pooled guest backs the version's refills off (0.5 s
// doubling up to a minute) so an agent that cannot stay up does not churn
// sandboxes. An entrypoint that failed to load is reported from the
// pooled hello just as from a cold one.
//
// Lifetime. A pool without requests for PoolIdle is drained (its sandboxes
// are killed and reaped) and forgotten; Evict does it at once, e.g. on
// redeploy. Shutdown stops refills and kills and reaps every pooled
// sandbox before draining runs.

// Stats are the executor's counters, for metrics and benchmarks.
type Stats struct {
	Hits           uint64 // runs served by a pooled sandbox
	Misses         uint64 // runs that cold started although pooling is on
	DeadSkipped    uint64 // pooled sandboxes whose guest went away unused
	Refills        uint64 // pooled sandboxes started and initialised
	RefillFailures uint64 // pooled sandboxes that failed to start or init
	Evicted        uint64 // pools dropped: idle, least recently used or Evict
	Trimmed        uint64 // ready sandboxes destroyed as demand fell
	Reused         uint64 // runs served by a sandbox kept for their user_id
	Forked         uint64 // sandboxes forked from a template (Config.Fork)
	Templates      int    // fork servers running (one per forked version)
	Kept           int    // sandboxes kept for a user_id's next run
	Versions       int    // agent versions with a pool
	Ready          int    // pooled sandboxes ready to serve
	Starting       int    // pooled sandboxes being started
	Target         int    // pooled sandboxes wanted, summed over versions
	PoolBudget     int    // pooled sandboxes the memory budget allows
	SandboxMemory  int64  // bytes one pooled sandbox is taken to cost
	Running        int    // runs in progress (Active)

	// The admission queue (queue.go).
	Queued         int           // runs waiting for a slot now
	QueuedTotal    uint64        // runs that had to wait
	QueueFull      uint64        // runs refused at once: the queue was full (or no queue)
	QueueRefused   uint64        // runs refused after waiting as long as they could
	QueueCancelled uint64        // runs whose caller went away while they waited
	QueueWait      WaitHistogram // how long runs waited, admitted or not
}

type counters struct {
	hits, misses, dead, refills, refillFailures, evicted, reused uint64
	queued, queueFull, queueRefused, queueCancelled              uint64
	trimmed                                                      uint64
	queueWait                                                    waitHistogram
}

// Stats returns the current counters.
func (e *Executor) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Stats{
		Hits: e.stats.hits, Misses: e.stats.misses, DeadSkipped: e.stats.dead,
		Refills: e.stats.refills, RefillFailures: e.stats.refillFailures, Evicted: e.stats.evicted, Trimmed: e.stats.trimmed,
		Versions: len(e.pools), Running: len(e.active), Reused: e.stats.reused, Kept: len(e.kept),
		Queued: e.queue.n, QueuedTotal: e.stats.queued, QueueFull: e.stats.queueFull,
		QueueRefused: e.stats.queueRefused, QueueCancelled: e.stats.queueCancelled,
		QueueWait: e.stats.queueWait.snapshot(),
		Forked:    e.forked.Load(), Templates: int(e.templates.Load()),
	}
	for _, p := range e.pools {
		s.Ready += len(p.ready)
		s.Starting += p.starting
		s.Target += p.target
	}
	if e.cfg.PoolSize > 0 {
		s.PoolBudget, s.SandboxMemory = e.budgetLocked(), e.sandboxMemoryLocked()
	}
	return s
}

// pool holds the ready sandboxes of one agent version. Its fields are
// guarded by Executor.mu.
type pool struct {
	key      string
	req      Request // template: AgentDir, EnvDir, Config and Entrypoint
	init     guest.Init
	ready    []*warm // oldest first
	starting int
	lastUsed time.Time
	idle     *time.Timer
	dropped  bool
	fails    int // consecutive refill failures and dead sandboxes
	retryAt  time.Time
	fork     forkState // its template (fork.go), guarded by its own mutex

	// Sizing (scale.go): the arrival rate (runs per second, a moving
	// average as of rateAt), the version's measured start time, the
	// pooled sandboxes it should have, and the timer that shrinks it
	// while demand falls.
	rate     float64
	rateAt   time.Time
	startEst time.Duration
	target   int
	scale    *time.Timer
	scaling  bool // scale is armed
}

// warm is a pooled sandbox that has said hello.
type warm struct {
	sb    sandbox.Sandbox
	conn  *guest.Conn
	hello guest.Hello
	p     *pool // nil for a kept sandbox

	// A sandbox kept for one user_id (reuse.go).
	reuseKey string
	agentDir string
	runs     int // invocations served
	keptAt   time.Time
	idle     *time.Timer

	// The watcher reads the control channel while the sandbox waits: the
	// guest sends nothing before its invoke, so the read ends only when
	// the guest goes away (or misbehaves), or when claim sets a read
	// deadline to stop it. Nil when the channel has no read deadlines.
	dl      deadliner
	watched chan bool // the watcher's verdict: true if stopped by claim
}

type deadliner interface{ SetReadDeadline(time.Time) error }

// watch starts the watcher; onDead is called if the guest goes away
// while pooled.
func (w *warm) watch(onDead func(*warm)) {
	rw := w.sb.Conn()
	dl, ok := rw.(deadliner)
	if !ok {
		return
	}
	w.dl, w.watched = dl, make(chan bool, 1)
	go func() {
		var b [1]byte
		n, err := rw.Read(b[:])
		stopped := n == 0 && errors.Is(err, os.ErrDeadlineExceeded)
		w.watched <- stopped
		if !stopped {
			onDead(w)
		}
	}()
}

// claim stops the watcher and reports whether the guest is still there.
// Call it once, before anything else reads the channel.
func (w *warm) claim() bool {
	if w.dl == nil {
		return true
	}
	w.dl.SetReadDeadline(time.Unix(1, 0))
	alive := <-w.watched
	w.dl.SetReadDeadline(time.Time{})
	return alive
}

// poolInit returns the init frame of req's version — all its Python
// entrypoints, and req's own if the config lacks it, with the host's
// directories, which guestInit replaces with the guest's — and the pool
// key: the agent directory (unique per version) plus everything that
// shapes its sandboxes, the environment and the interpreter among it. ok
// is false if req cannot be pooled.
func poolInit(req Request) (key string, init guest.Init, ok bool) {
	ref := func(ep core.Entrypoint) guest.EntrypointRef {
		return guest.EntrypointRef{Tag: ep.Tag, File: ep.File, Module: ep.Module}
	}
	want := ref(req.Entrypoint)
	init.AgentDir, init.EnvDir = req.AgentDir, req.EnvDir
	have := false
	k := struct {
		Dir     string
		EnvDir  string
		AgentID string
		Eps     []guest.EntrypointRef
		Res     core.Resources
		Net     core.NetworkPolicy
		Runtime string
	}{Dir: req.AgentDir, EnvDir: req.EnvDir}
	if req.Config != nil {
		for _, ep := range req.Config.Entrypoints {
			if ep.Kind == core.KindWebhook {
				continue
			}
			r := ref(ep)
			if r.Tag == want.Tag {
				if r != want {
					return "", guest.Init{}, false
				}
				have = true
			}
			init.Entrypoints = append(init.Entrypoints, r)
		}
		k.AgentID, k.Res, k.Net, k.Runtime = req.Config.AgentID, req.Config.Resources, req.Config.Network, req.Config.Runtime
	}
	if !have {
		init.Entrypoints = append(init.Entrypoints, want)
	}
	k.Eps = init.Entrypoints
	b, err := json.Marshal(k)
	if err != nil {
		return "", guest.Init{}, false
	}
	return string(b), init, true
}

// take returns req's pool (nil when pooling is off) and a live ready
// sandbox from it, or nil for a cold start. It creates the pool on first
// use. The caller must refill the pool.
//
// A request with mounts takes only a sandbox that can be given them
// before its invoke (sandbox.Mounter: a run forked from the pool's
// template). When the pool's runs are not forked, it takes none and is
// not counted in the pool's arrivals (which size the ready sandboxes it
// cannot use) nor as a miss: it needs only the pool's template.
func (e *Executor) take(req Request) (*pool, *warm) {
	mounts := len(req.Mounts) > 0
	if e.cfg.PoolSize <= 0 {
		return nil, nil
	}
	key, init, ok := poolInit(req)
	if !ok {
		return nil, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, nil
	}
	p := e.pools[key]
	if p == nil {
		p = e.newPoolLocked(key, req, init)
	}
	p.lastUsed = time.Now()
	p.idle.Reset(e.cfg.PoolIdle)
	if mounts && !p.fork.live.Load() {
		return p, nil
	}
	e.arriveLocked(p, p.lastUsed)
	for i := 0; i < len(p.ready); {
		w := p.ready[i]
		if _, ok := w.sb.(sandbox.Mounter); mounts && !ok {
			i++ // started while the template was down: no late mounts
			continue
		}
		if i == 0 {
			p.ready[0] = nil
			p.ready = p.ready[1:]
		} else {
			p.ready = append(p.ready[:i], p.ready[i+1:]...)
		}
		if w.claim() {
			e.stats.hits++
			return p, w
		}
		// It died just now; its watcher finds it gone from the pool.
		e.stats.dead++
		e.backoffLocked(p)
		e.destroyLocked(w)
	}
	e.stats.misses++
	return p, nil
}

// died is called by the watcher of a pooled sandbox whose guest went
// away; if it is still in its pool, it is removed and reaped.
func (e *Executor) died(w *warm) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := w.p
	i := slices.Index(p.ready, w)
	if i < 0 || p.dropped || e.closed {
		return // taken, or destroyed by whoever removed it
	}
	p.ready = slices.Delete(p.ready, i, i+1)
	e.stats.dead++
	e.backoffLocked(p)
	e.destroyLocked(w)
}

// newPoolLocked creates and registers a pool, evicting the least recently
// used one if there are PoolMaxVersions already.
func (e *Executor) newPoolLocked(key string, req Request, init guest.Init) *pool {
	if len(e.pools) >= e.cfg.PoolMaxVersions {
		var lru *pool
		for _, q := range e.pools {
			if lru == nil || q.lastUsed.Before(lru.lastUsed) {
				lru = q
			}
		}
		delete(e.pools, lru.key)
		e.stats.evicted++
		e.dropLocked(lru)
	}
	p := &pool{
		key:      key,
		req:      Request{AgentDir: req.AgentDir, EnvDir: req.EnvDir, Config: req.Config, Entrypoint: req.Entrypoint},
		init:     init,
		lastUsed: time.Now(),
		rateAt:   time.Now(),
		target:   e.cfg.PoolSize,
	}
	p.idle = time.AfterFunc(e.cfg.PoolIdle, func() { e.expire(p) })
	e.pools[key] = p
	return p
}

// expire drops p if it has been idle for PoolIdle.
func (e *Executor) expire(p *pool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p.dropped || e.pools[p.key] != p {
		return
	}
	if idle := time.Since(p.lastUsed); idle < e.cfg.PoolIdle {
		p.idle.Reset(e.cfg.PoolIdle - idle)
		return
	}
	delete(e.pools, p.key)
	e.stats.evicted++
	e.dropLocked(p)
}

// dropLocked marks p dropped and kills its ready sandboxes; background
// work reaps them. The caller removes p from e.pools.
func (e *Executor) dropLocked(p *pool) {
	p.dropped = true
	p.idle.Stop()
	e.bgWork.Add(1)
	go func() {
		defer e.bgWork.Done()
		e.dropFork(p)
	}()
	if p.scale != nil {
		p.scale.Stop()
	}
	for _, w := range p.ready {
		e.destroyLocked(w)
	}
	p.ready = nil
}

// destroyLocked kills a pooled sandbox and waits for it in the background.
// Preconditions: e.mu is held and e is not closed, or this is Shutdown
// before it waits for e.bgWork.
func (e *Executor) destroyLocked(w *warm) {
	w.sb.Kill()
	w.conn.Close()
	e.bgWork.Add(1)
	go func() {
		defer e.bgWork.Done()
		w.sb.Wait()
	}()
}

func (e *Executor) backoffLocked(p *pool) {
	p.fails++
	d := min(500*time.Millisecond<<min(p.fails-1, 7), time.Minute)
	p.retryAt = time.Now().Add(d)
}

// refillLocked starts background refills to bring p up to its target,
// as far as the memory budget allows.
func (e *Executor) refillLocked(p *pool) {
	if e.closed || p.dropped || time.Now().Before(p.retryAt) {
		return
	}
	pooled, budget := e.pooledLocked(), e.budgetLocked()
	for len(p.ready)+p.starting < p.target && pooled < budget {
		pooled++
		p.starting++
		e.bgWork.Add(1)
		go e.fill(p)
	}
}

// fill starts one pooled sandbox for p.
func (e *Executor) fill(p *pool) {
	defer e.bgWork.Done()
	gone := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		if e.closed || p.dropped {
			p.starting--
			return true
		}
		return false
	}
	select {
	case e.refill <- struct{}{}:
	case <-e.bg.Done():
		gone()
		return
	}
	if gone() {
		<-e.refill
		return
	}
	began := time.Now()
	w, err := e.startPooled(p)
	took := time.Since(began)
	<-e.refill
	var mem int64
	if err == nil {
		if m, ok := w.sb.(memoryReporter); ok {
			mem = m.MemoryBytes()
		}
	}

	e.mu.Lock()
	p.starting--
	if err != nil {
		e.stats.refillFailures++
		e.backoffLocked(p)
		e.mu.Unlock()
		return
	}
	e.stats.refills++
	e.observeStartLocked(p, took)
	e.observeMemoryLocked(mem)
	if e.closed || p.dropped {
		e.mu.Unlock()
		w.sb.Kill()
		w.conn.Close()
		w.sb.Wait()
		return
	}
	p.fails = 0
	p.ready = append(p.ready, w)
	w.watch(e.died)
	e.mu.Unlock()
}

// startPooled starts a sandbox for p and initialises it with all of p's
// entrypoints. On error nothing is left running.
func (e *Executor) startPooled(p *pool) (*warm, error) {
	ctx, cancel := context.WithTimeout(e.bg, e.cfg.StartTimeout)
	defer cancel()
	spec, err := e.spec(p.req)
	if err != nil {
		return nil, err
	}
	sb, err := e.newSandbox(ctx, p, spec)
	if err != nil {
		return nil, err
	}
	w := &warm{sb: sb, p: p}
	w.conn = guest.NewConn(sb.Conn(), e.cfg.MaxFrame)
	w.hello, err = w.conn.Init(ctx, guestInit(p.init, sb, spec))
	if err != nil {
		sb.Kill()
		w.conn.Close()
		sb.Wait()
		return nil, err
	}
	return w, nil
}

// Prewarm creates the pool of req's agent version, if it has none, and
// starts filling it in the background; the server may call it at deploy
// time so that even the first request is warm. Only AgentDir, EnvDir,
// Config and Entrypoint of req matter.
func (e *Executor) Prewarm(req Request) error {
	if req.Entrypoint.Kind == core.KindWebhook {
		return core.Errorf(core.CodeValidation, "entrypoint %q is a webhook entrypoint; it has no sandbox to prewarm", req.Entrypoint.Tag)
	}
	if e.cfg.PoolSize <= 0 {
		return nil
	}
	key, init, ok := poolInit(req)
	if !ok {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	p := e.pools[key]
	if p == nil {
		p = e.newPoolLocked(key, req, init)
	}
	p.lastUsed = time.Now()
	p.idle.Reset(e.cfg.PoolIdle)
	e.refillLocked(p)
	return nil
}

// Evict drops the pools of the agent version in agentDir (e.g. when it is
// replaced by a new deployment), killing their ready sandboxes and the
// sandboxes kept for its users, and returns how many it killed. Runs in progress are not affected.
func (e *Executor) Evict(agentDir string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return 0
	}
	n := 0
	for key, p := range e.pools {
		if p.req.AgentDir == agentDir {
			n += len(p.ready)
			delete(e.pools, key)
			e.stats.evicted++
			e.dropLocked(p)
		}
	}
	for _, w := range e.kept {
		if w.agentDir == agentDir {
			n++
			e.unkeepLocked(w)
		}
	}
	return n
}
