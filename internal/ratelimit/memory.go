package ratelimit

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxKeys bounds a Memory limiter whose options leave MaxKeys zero.
// Each key costs roughly its length plus 50 bytes, so the default is a
// few MiB.
const DefaultMaxKeys = 100_000

// evictSample is how many keys a full shard looks at to choose one to
// evict when none is idle.
const evictSample = 8

// MemoryOptions configure a Memory limiter.
type MemoryOptions struct {
	// MaxKeys bounds the number of keys held; zero means DefaultMaxKeys.
	MaxKeys int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Memory is a Limiter for one process. It holds one number per key (the
// GCRA theoretical arrival time), in shards each under its own mutex, and
// never more than MaxKeys of them: when a shard is full, keys whose bucket
// has refilled are dropped first (they carry no information: a missing
// key is a full bucket), and only if none has is the key closest to full
// among a small sample evicted, which forgives that key's remaining debt.
// Evictions counts those. Safe for concurrent use.
type Memory struct {
	now       func() time.Time
	base      time.Time // times are stored as nanoseconds since base
	seed      maphash.Seed
	shards    []memShard
	mask      uint64
	evictions atomic.Uint64
}

type memShard struct {
	mu  sync.Mutex
	tat map[string]int64
	max int
	// sweepAt is a lower bound on every tat in the shard: before then a
	// sweep for idle keys would find none.
	sweepAt int64
	_       [32]byte // 64 bytes: hot mutexes on separate cache lines
}

// NewMemory returns a Memory limiter.
func NewMemory(o MemoryOptions) *Memory {
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Shards of at least 256 keys, at most 64 of them: contention is
	// spread, and a sweep of one shard stays short.
	n := 1
	for n < 64 && o.MaxKeys/(n*2) >= 256 {
		n *= 2
	}
	m := &Memory{
		now:    o.Now,
		base:   o.Now(),
		seed:   maphash.MakeSeed(),
		shards: make([]memShard, n),
		mask:   uint64(n - 1),
	}
	for i := range m.shards {
		m.shards[i] = memShard{tat: map[string]int64{}, max: o.MaxKeys / n, sweepAt: math.MinInt64}
	}
	return m
}

// Allow takes one request from key's bucket under l, if it holds one. The
// error is non-nil only for an invalid l. ctx is not used.
func (m *Memory) Allow(_ context.Context, key string, l Limit) (Result, error) {
	interval, burst, err := l.params(time.Nanosecond)
	if err != nil {
		return Result{Limit: l}, err
	}
	now := int64(m.now().Sub(m.base))
	s := &m.shards[maphash.String(m.seed, key)&m.mask]

	s.mu.Lock()
	tat, known := s.tat[key]
	newTat, allowed, remaining, retry, reset := gcra(tat, known, now, interval, burst)
	if allowed {
		if !known {
			if len(s.tat) >= s.max {
				m.makeRoom(s, now)
			}
			s.sweepAt = min(s.sweepAt, newTat)
		}
		s.tat[key] = newTat
	}
	s.mu.Unlock()

	return Result{
		Allowed:    allowed,
		Limit:      l,
		Remaining:  int(remaining),
		ResetAfter: time.Duration(reset),
		RetryAfter: time.Duration(retry),
	}, nil
}

// makeRoom frees at least one place in the full shard s.
//
// Preconditions: s.mu is held.
func (m *Memory) makeRoom(s *memShard, now int64) {
	if now >= s.sweepAt {
		next := int64(math.MaxInt64)
		for k, t := range s.tat {
			if t <= now {
				delete(s.tat, k)
			} else {
				next = min(next, t)
			}
		}
		s.sweepAt = next
	}
	for len(s.tat) >= s.max {
		victim, vt, seen := "", int64(math.MaxInt64), 0
		for k, t := range s.tat {
			if t < vt {
				victim, vt = k, t
			}
			if seen++; seen == evictSample {
				break
			}
		}
		delete(s.tat, victim)
		m.evictions.Add(1)
	}
}

// Len returns the number of keys held.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}

// Evictions returns how many keys were dropped while their bucket was
// not yet full, because their shard was full of such keys. A steadily
// rising count means MaxKeys is too small for the traffic (or an attack
// is spreading over many keys).
func (m *Memory) Evictions() uint64 { return m.evictions.Load() }
