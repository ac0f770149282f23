package ratelimit

import (
	"context"
	"sync"
)

// Slots caps how many operations run at once per key: a Concurrency
// (Local) on one node, a RedisConcurrency across nodes.
type Slots interface {
	// Acquire takes one of n slots for key: ok false when all are taken;
	// an error when the count cannot be had (the caller refuses: fail
	// closed). release gives the slot back and is idempotent.
	Acquire(ctx context.Context, key string, n int) (release func(), ok bool, err error)
}

// Local returns c as Slots.
func (c *Concurrency) Local() Slots { return localSlots{c} }

type localSlots struct{ c *Concurrency }

func (l localSlots) Acquire(_ context.Context, key string, n int) (func(), bool, error) {
	release, ok := l.c.Acquire(key, n)
	return release, ok, nil
}

// Concurrency caps how many operations run at once per key in one
// process: running invocations per principal, say, and per agent. It holds
// a count only for keys with something in flight, so its size is bounded
// by what is running. The zero value is ready to use and safe for
// concurrent use.
type Concurrency struct {
	mu       sync.Mutex
	inflight map[string]int
}

// Acquire takes one of n slots for key. If all n are taken (or n <= 0) it
// returns ok false and a nil release. Otherwise release gives the slot
// back; calling it more than once is harmless.
func (c *Concurrency) Acquire(key string, n int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[key] >= n {
		return nil, false
	}
	if c.inflight == nil {
		c.inflight = map[string]int{}
	}
	c.inflight[key]++
	var once sync.Once
	return func() { once.Do(func() { c.release(key) }) }, true
}

func (c *Concurrency) release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight[key] <= 1 {
		delete(c.inflight, key)
		return
	}
	c.inflight[key]--
}

// InFlight returns how many slots key holds now.
func (c *Concurrency) InFlight(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.inflight[key]
}
