package executor

import (
	"cmp"
	"math"
	"time"
)

// Pool sizing.
//
// A version's pool should hold the sandboxes that the runs arriving while
// one more starts will take: its target is
//
//	clamp(ceil(arrival rate × start time × PoolHeadroom), PoolSize, PoolMax)
//
// The arrival rate is an exponentially decaying count of the runs that
// asked the pool for a sandbox (rate += 1/window at each arrival, decaying
// by e^(-Δt/window) in between; its steady value is the arrival rate, and
// a burst raises it at once). The start time is a moving average of how
// long the version's sandboxes took to start and say hello, pooled or
// cold, seeded from every version's. The target is recomputed at each
// arrival, which refills up to it; while it is above PoolSize a timer
// recomputes it every scaleEvery as the rate decays and destroys the ready
// sandboxes above it, so a pool shrinks back to PoolSize once demand
// falls, and an idle pool is still drained after PoolIdle.
//
// All pools share one memory budget, PoolMemory: a refill that would make
// the pooled sandboxes (ready or starting) of all versions cost more is
// not started. A sandbox costs what it reports (memoryReporter: e.g. its
// cgroup's usage once it said hello), averaged, or SandboxMemory when the
// backend cannot tell.

// memoryReporter is implemented by sandboxes that can say how much memory
// they use now, in bytes (0: unknown).
type memoryReporter interface{ MemoryBytes() int64 }

// ewmaWeight is the weight of a new sample in the moving averages of
// start time and memory.
const ewmaWeight = 0.25

// rateLocked returns p's arrival rate as of now.
func (e *Executor) rateLocked(p *pool, now time.Time) float64 {
	dt := now.Sub(p.rateAt)
	if dt <= 0 {
		return p.rate
	}
	return p.rate * math.Exp(-dt.Seconds()/e.cfg.rateWindow.Seconds())
}

// arriveLocked counts a run arriving at p and resizes p.
func (e *Executor) arriveLocked(p *pool, now time.Time) {
	p.rate = e.rateLocked(p, now) + 1/e.cfg.rateWindow.Seconds()
	p.rateAt = now
	e.retargetLocked(p, now)
}

// retargetLocked recomputes p's target and, while it is above PoolSize
// or p holds more than it, keeps the shrink timer going.
func (e *Executor) retargetLocked(p *pool, now time.Time) {
	start := cmp.Or(p.startEst, e.startEst)
	need := int(math.Ceil(e.rateLocked(p, now) * start.Seconds() * e.cfg.PoolHeadroom))
	p.target = min(max(need, e.cfg.PoolSize), e.cfg.PoolMax)
	if (p.target > e.cfg.PoolSize || len(p.ready) > p.target) && !p.dropped && !p.scaling {
		p.scaling = true
		if p.scale == nil {
			p.scale = time.AfterFunc(e.cfg.scaleEvery, func() { e.rescale(p) })
		} else {
			p.scale.Reset(e.cfg.scaleEvery)
		}
	}
}

// rescale is p's shrink timer: it recomputes the target, destroys the
// newest ready sandboxes above it and tops p up to it.
func (e *Executor) rescale(p *pool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p.scaling = false
	if e.closed || p.dropped {
		return
	}
	e.retargetLocked(p, time.Now())
	for len(p.ready) > p.target {
		w := p.ready[len(p.ready)-1]
		p.ready = p.ready[:len(p.ready)-1]
		e.stats.trimmed++
		// Its watcher, stopped by the kill, finds it gone from the pool.
		e.destroyLocked(w)
	}
	e.refillLocked(p)
}

// observeStartLocked records that a sandbox of p took d to start and say
// hello.
func (e *Executor) observeStartLocked(p *pool, d time.Duration) {
	avg := func(old time.Duration) time.Duration {
		if old == 0 {
			return d
		}
		return old + time.Duration(ewmaWeight*float64(d-old))
	}
	p.startEst = avg(p.startEst)
	e.startEst = avg(e.startEst)
}

// observeMemoryLocked records what a ready sandbox reported it uses (0:
// it cannot tell).
func (e *Executor) observeMemoryLocked(n int64) {
	if n <= 0 {
		return
	}
	if e.memEst == 0 {
		e.memEst = n
		return
	}
	e.memEst += int64(ewmaWeight * float64(n-e.memEst))
}

// sandboxMemoryLocked is what one pooled sandbox is taken to cost.
func (e *Executor) sandboxMemoryLocked() int64 {
	return cmp.Or(e.memEst, e.cfg.SandboxMemory)
}

// budgetLocked is how many pooled sandboxes PoolMemory allows (at least
// one, so that a pool can always serve).
func (e *Executor) budgetLocked() int {
	return int(max(e.cfg.PoolMemory/e.sandboxMemoryLocked(), 1))
}

// pooledLocked counts the pooled sandboxes, ready or starting.
func (e *Executor) pooledLocked() int {
	n := 0
	for _, p := range e.pools {
		n += len(p.ready) + p.starting
	}
	return n
}
