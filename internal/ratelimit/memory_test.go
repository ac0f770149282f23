package ratelimit

import (
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// has reports whether m holds state for key.
func (m *Memory) has(key string) bool {
	s := &m.shards[maphash.String(m.seed, key)&m.mask]
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.tat[key]
	return ok
}

// TestMemoryEvictsIdleKeysFirst: a full limiter makes room by dropping
// keys whose bucket has refilled, and keeps the state of keys still in
// debt.
func TestMemoryEvictsIdleKeysFirst(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryOptions{MaxKeys: 256, Now: clk.Now})
	for i := range 256 {
		n := 1
		if i%2 == 0 {
			n = 100 // deep in debt: full again only after a minute
		}
		for range n {
			if r, _ := m.Allow(t.Context(), "old"+strconv.Itoa(i), DefaultLimit); !r.Allowed {
				t.Fatalf("old%d denied while filling", i)
			}
		}
	}
	if got := m.Len(); got != 256 {
		t.Fatalf("Len = %d after 256 keys, want 256", got)
	}
	clk.Advance(600 * ms) // odd keys are full again, even ones are not
	for i := range 128 {
		r, _ := m.Allow(t.Context(), "new"+strconv.Itoa(i), DefaultLimit)
		if !r.Allowed || r.Remaining != 99 {
			t.Fatalf("new%d: got %v, want allowed with 99 remaining", i, got(r))
		}
		if got := m.Len(); got > 256 {
			t.Fatalf("Len = %d after new%d, want <= 256", got, i)
		}
	}
	if got := m.Evictions(); got != 0 {
		t.Errorf("Evictions = %d, want 0: there were idle keys to drop", got)
	}
	for i := 0; i < 256; i += 2 {
		key := "old" + strconv.Itoa(i)
		if !m.has(key) {
			t.Fatalf("%s, still in debt, was dropped", key)
		}
		// 600ms refilled one of the 100 it took: a fresh bucket would
		// have 99 left and be full again in 600ms.
		if r, _ := m.Allow(t.Context(), key, DefaultLimit); !r.Allowed || r.Remaining != 0 || r.ResetAfter != time.Minute {
			t.Fatalf("%s: got %v, want allowed with 0 remaining, full in 1m", key, got(r))
		}
	}
}

// TestMemoryBoundUnderManyKeys: however many keys arrive, Len never
// exceeds MaxKeys, and a key that was evicted starts afresh.
func TestMemoryBoundUnderManyKeys(t *testing.T) {
	clk := newFakeClock() // frozen: no key ever becomes idle
	const max = 1000
	m := NewMemory(MemoryOptions{MaxKeys: max, Now: clk.Now})
	lim := Limit{Rate: 2, Period: time.Minute, Burst: 2}
	const keys = 20_000
	for i := range keys {
		if r, _ := m.Allow(t.Context(), "ip:"+strconv.Itoa(i), lim); !r.Allowed || r.Remaining != 1 {
			t.Fatalf("key %d first request: got %v, want allowed with 1 remaining", i, got(r))
		}
		if i%97 == 0 {
			if n := m.Len(); n > max {
				t.Fatalf("Len = %d after %d keys, want <= %d", n, i+1, max)
			}
		}
	}
	if n := m.Len(); n > max || n < max/2 {
		t.Fatalf("Len = %d, want in [%d, %d]", n, max/2, max)
	}
	if m.Evictions() < keys-max {
		t.Errorf("Evictions = %d, want >= %d", m.Evictions(), keys-max)
	}
	// Present keys first: a request on an evicted key inserts it, which
	// may evict a key not yet checked.
	var kept, evicted []string
	for i := range keys {
		if key := "ip:" + strconv.Itoa(i); m.has(key) {
			kept = append(kept, key)
		} else {
			evicted = append(evicted, key)
		}
	}
	if len(kept) == 0 || len(evicted) == 0 {
		t.Fatalf("kept %d, evicted %d: want some of each", len(kept), len(evicted))
	}
	for _, key := range kept {
		if r, _ := m.Allow(t.Context(), key, lim); !r.Allowed || r.Remaining != 0 {
			t.Fatalf("%s (state kept): got %v, want allowed with 0 remaining", key, got(r))
		}
	}
	for _, key := range evicted {
		if r, _ := m.Allow(t.Context(), key, lim); !r.Allowed || r.Remaining != 1 {
			t.Fatalf("%s (evicted): got %v, want a fresh bucket: allowed with 1 remaining", key, got(r))
		}
	}
	if n := m.Len(); n > max {
		t.Fatalf("Len = %d at the end, want <= %d", n, max)
	}
}

// TestMemoryConcurrentAllow: many goroutines on one key, on a frozen clock
// and on a moving one, never get more than the limit allows.
func TestMemoryConcurrentAllow(t *testing.T) {
	lim := Limit{Rate: 100, Period: time.Second, Burst: 50} // 10ms interval
	t.Run("frozen clock", func(t *testing.T) {
		m := NewMemory(MemoryOptions{Now: newFakeClock().Now})
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 200 {
					if r, _ := m.Allow(t.Context(), "k", lim); r.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if got := allowed.Load(); got != 50 {
			t.Fatalf("allowed %d of 3200 at one instant, want exactly the burst, 50", got)
		}
	})
	t.Run("moving clock", func(t *testing.T) {
		clk := newFakeClock()
		start := clk.Now()
		m := NewMemory(MemoryOptions{Now: clk.Now})
		var allowed atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				for range 200 {
					clk.Advance(time.Millisecond)
					if r, _ := m.Allow(t.Context(), "k", lim); r.Allowed {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		elapsed := clk.Now().Sub(start) // 3.2s
		bound := int64(50 + elapsed/(10*ms))
		if got := allowed.Load(); got > bound || got < bound-16 {
			t.Fatalf("allowed %d over %v, want at most burst + elapsed/interval = %d (and not far below)", got, elapsed, bound)
		}
	})
}

// TestMemoryNoWindowExceedsLimit: with requests at random times, no
// window of one Period holds more than burst + rate allowed requests, and
// none of Period less an interval holds more than the burst plus what
// refilled.
func TestMemoryNoWindowExceedsLimit(t *testing.T) {
	clk := newFakeClock()
	start := clk.Now()
	lim := Limit{Rate: 20, Period: time.Second, Burst: 10} // 50ms interval
	m := NewMemory(MemoryOptions{Now: clk.Now})
	rng := rand.New(rand.NewPCG(1, 2))
	var at []time.Duration
	for range 5000 {
		clk.Advance(time.Duration(rng.IntN(20_000)) * time.Microsecond)
		if r, _ := m.Allow(t.Context(), "k", lim); r.Allowed {
			at = append(at, clk.Now().Sub(start))
		}
	}
	// GCRA: n requests fit in a closed window of length w only if
	// (n-1)*interval <= w + (burst-1)*interval.
	for _, w := range []time.Duration{0, 10 * ms, 50 * ms, 500 * ms, time.Second, 3 * time.Second} {
		bound := 10 + int(w/(50*ms))
		j := 0
		for i := range at {
			for at[i]-at[j] > w {
				j++
			}
			if n := i - j + 1; n > bound {
				t.Fatalf("%d requests allowed within %v (from %v to %v), want at most %d", n, w, at[j], at[i], bound)
			}
		}
	}
	if len(at) < 1000 {
		t.Errorf("only %d allowed over %v: the limiter is stricter than its rate", len(at), clk.Now().Sub(start))
	}
}

// TestMemoryDefaultClock runs on the real time.Now inside a synctest
// bubble, where time moves only when every goroutine is blocked.
func TestMemoryDefaultClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := NewMemory(MemoryOptions{})
		for range 100 {
			if r, _ := m.Allow(t.Context(), "k", DefaultLimit); !r.Allowed {
				t.Fatal("denied within the burst")
			}
		}
		if r, _ := m.Allow(t.Context(), "k", DefaultLimit); r.Allowed || r.RetryAfter != 600*ms {
			t.Fatalf("101st request: got %v, want denied, retry after 600ms", got(r))
		}
		time.Sleep(600 * ms)
		if r, _ := m.Allow(t.Context(), "k", DefaultLimit); !r.Allowed {
			t.Fatalf("after 600ms: got %v, want allowed", got(r))
		}
	})
}

func TestMemoryShardsRespectMaxKeys(t *testing.T) {
	for _, max := range []int{1, 2, 255, 256, 511, 512, 1000, 4096, 100_000, 1 << 20} {
		m := NewMemory(MemoryOptions{MaxKeys: max})
		total := 0
		for i := range m.shards {
			total += m.shards[i].max
			if m.shards[i].max < 1 {
				t.Errorf("MaxKeys %d: shard %d holds %d keys", max, i, m.shards[i].max)
			}
		}
		if total > max {
			t.Errorf("MaxKeys %d: shards hold %d in total", max, total)
		}
		if len(m.shards)&(len(m.shards)-1) != 0 {
			t.Errorf("MaxKeys %d: %d shards, not a power of two", max, len(m.shards))
		}
	}
	if n := len(NewMemory(MemoryOptions{}).shards); n != 64 {
		t.Errorf("default: %d shards, want 64", n)
	}
}
