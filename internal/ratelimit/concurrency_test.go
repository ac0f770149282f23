package ratelimit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/ratelimit/redistest"
)

type slots = Slots

var _ Slots = (*RedisConcurrency)(nil)

// slotBackend returns two limiters sharing state, as on two nodes: the
// same Concurrency twice for memory, two clients of one Redis for Redis.
var slotBackends = []struct {
	name string
	new  func(t *testing.T, clk *fakeClock) (a, b slots)
}{
	{"memory", func(t *testing.T, _ *fakeClock) (slots, slots) {
		c := (&Concurrency{}).Local()
		return c, c
	}},
	{"redis", func(t *testing.T, clk *fakeClock) (slots, slots) {
		addr := redistest.Start(t)
		return newTestRedisConcurrency(t, addr, clk), newTestRedisConcurrency(t, addr, clk)
	}},
}

func newTestRedisConcurrency(t *testing.T, addr string, clk *fakeClock) *RedisConcurrency {
	c := NewRedisConcurrency(redistest.Client(t, addr), RedisConcurrencyOptions{
		Now:     clk.Now,
		TTL:     time.Minute, // the refresh loop does not run during a test
		OnError: func(err error) { t.Error(err) },
	})
	t.Cleanup(func() { c.Close() })
	return c
}

func mustAcquire(t *testing.T, s slots, key string, n int) func() {
	t.Helper()
	release, ok, err := s.Acquire(t.Context(), key, n)
	if err != nil {
		t.Fatal(err)
	}
	if !ok || release == nil {
		t.Fatalf("Acquire(%q, %d) refused, want a slot", key, n)
	}
	return release
}

func mustRefuse(t *testing.T, s slots, key string, n int) {
	t.Helper()
	release, ok, err := s.Acquire(t.Context(), key, n)
	if err != nil {
		t.Fatal(err)
	}
	if ok || release != nil {
		t.Fatalf("Acquire(%q, %d) = ok %v, release %v; want refused", key, n, ok, release != nil)
	}
}

func TestConcurrencyAcquireRelease(t *testing.T) {
	for _, b := range slotBackends {
		t.Run(b.name, func(t *testing.T) {
			a, other := b.new(t, newFakeClock())
			r1 := mustAcquire(t, a, "principal:p1", 3)
			r2 := mustAcquire(t, other, "principal:p1", 3)
			r3 := mustAcquire(t, a, "principal:p1", 3)
			mustRefuse(t, other, "principal:p1", 3)
			mustRefuse(t, a, "principal:p1", 3)

			// Other keys are independent.
			ra := mustAcquire(t, other, "agent:a1", 1)
			mustRefuse(t, a, "agent:a1", 1)

			// Releasing twice frees one slot, not two.
			r2()
			r2()
			r4 := mustAcquire(t, a, "principal:p1", 3)
			mustRefuse(t, other, "principal:p1", 3)

			for _, r := range []func(){r1, r3, r4, ra} {
				r()
			}
			for range 3 {
				defer mustAcquire(t, other, "principal:p1", 3)()
			}
			mustRefuse(t, a, "principal:p1", 3)
			mustAcquire(t, a, "agent:a1", 1)()

			// No slots at all.
			mustRefuse(t, a, "k", 0)
			mustRefuse(t, a, "k", -1)
		})
	}
}

// TestConcurrencyNeverExceeds: goroutines on two nodes taking and giving
// back slots never hold more than n at once.
func TestConcurrencyNeverExceeds(t *testing.T) {
	const n = 3
	for _, b := range slotBackends {
		t.Run(b.name, func(t *testing.T) {
			nodes := [2]slots{}
			nodes[0], nodes[1] = b.new(t, newFakeClock())
			var inflight, peak, granted atomic.Int64
			var wg sync.WaitGroup
			for g := range 12 {
				wg.Go(func() {
					for range 40 {
						release, ok, err := nodes[g%2].Acquire(t.Context(), "agent:x", n)
						if err != nil {
							t.Error(err)
							return
						}
						if !ok {
							continue
						}
						granted.Add(1)
						cur := inflight.Add(1)
						for p := peak.Load(); cur > p && !peak.CompareAndSwap(p, cur); p = peak.Load() {
						}
						inflight.Add(-1)
						release()
					}
				})
			}
			wg.Wait()
			if p := peak.Load(); p > n {
				t.Fatalf("peak in flight %d, want at most %d", p, n)
			}
			if granted.Load() == 0 {
				t.Fatal("no slot was ever granted")
			}
		})
	}
}

func TestConcurrencyMemoryForgetsIdleKeys(t *testing.T) {
	var c Concurrency
	var releases []func()
	for i := range 100 {
		r, ok := c.Acquire("k"+string(rune('a'+i%26)), 10)
		if !ok {
			t.Fatalf("acquire %d refused", i)
		}
		releases = append(releases, r)
	}
	if got := c.InFlight("ka"); got != 4 {
		t.Errorf("InFlight(ka) = %d, want 4", got)
	}
	for _, r := range releases {
		r()
	}
	if len(c.inflight) != 0 {
		t.Errorf("%d keys held after every release, want 0", len(c.inflight))
	}
}

// TestRedisConcurrencyCrashedNodeSlotsExpire: a node that dies holding
// slots stops refreshing them; after TTL they are free again. A live node
// keeps its slots past TTL by refreshing.
func TestRedisConcurrencyCrashedNodeSlotsExpire(t *testing.T) {
	addr := redistest.Start(t)
	clk := newFakeClock()
	crashed := newTestRedisConcurrency(t, addr, clk)
	live := newTestRedisConcurrency(t, addr, clk)
	other := newTestRedisConcurrency(t, addr, clk)

	mustAcquire(t, crashed, "agent:a", 2) // never released
	mustAcquire(t, live, "agent:a", 2)    // refreshed once, at 40s
	crashed.Close()
	mustRefuse(t, other, "agent:a", 2)

	clk.Advance(40 * time.Second)
	if err := live.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	mustRefuse(t, other, "agent:a", 2) // both within TTL

	clk.Advance(40 * time.Second) // 80s: the crashed node's slot is gone
	release := mustAcquire(t, other, "agent:a", 2)
	mustRefuse(t, other, "agent:a", 2) // the live node's slot still counts
	release()

	clk.Advance(61 * time.Second) // live stopped refreshing: gone too
	mustAcquire(t, other, "agent:a", 2)
	mustAcquire(t, other, "agent:a", 2)
}

func TestRedisConcurrencyKeyExpires(t *testing.T) {
	addr := redistest.Start(t)
	c := NewRedisConcurrency(redistest.Client(t, addr), RedisConcurrencyOptions{TTL: 3 * time.Second})
	t.Cleanup(func() { c.Close() })
	release := mustAcquire(t, c, "k", 1)
	defer release()
	ttl, err := redistest.Client(t, addr).PTTL(t.Context(), DefaultConcurrencyPrefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 3*time.Second {
		t.Errorf("PTTL = %v, want in (0, 3s]: a key no one refreshes must go away", ttl)
	}
}
