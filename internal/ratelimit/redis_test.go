package ratelimit

import (
	"github.com/runagent/runagent/internal/ratelimit/redistest"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// newTestRedis returns a Redis limiter on clk. Keys live at least an hour
// of real time, so that a slow test run cannot see them expire between
// two steps of fake time.
func newTestRedis(tb testing.TB, c redis.Scripter, clk *fakeClock) *Redis {
	r := NewRedis(c, RedisOptions{Now: clk.Now})
	r.minTTL = time.Hour.Milliseconds()
	return r
}

// TestRedisTwoNodesShareLimit: two limiters with their own clients, as on
// two server nodes, hammer one key; together they allow exactly the burst.
func TestRedisTwoNodesShareLimit(t *testing.T) {
	addr := redistest.Start(t)
	lim := Limit{Rate: 50, Period: time.Hour} // no refill during the test
	for _, tc := range []struct {
		name string
		now  func() time.Time
	}{
		{"redis clock", nil},
		{"injected clock", newFakeClock().Now},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes := []*Redis{
				NewRedis(redistest.Client(t, addr), RedisOptions{Now: tc.now, Prefix: tc.name + ":"}),
				NewRedis(redistest.Client(t, addr), RedisOptions{Now: tc.now, Prefix: tc.name + ":"}),
			}
			// Taking turns, each sees what the other took.
			for i := range 10 {
				r, err := nodes[i%2].Allow(t.Context(), "turns", lim)
				if err != nil {
					t.Fatal(err)
				}
				if want := 49 - i; !r.Allowed || r.Remaining != want {
					t.Fatalf("request %d on node %d: got %v, want allowed with %d remaining", i, i%2, got(r), want)
				}
			}

			// All at once: exactly the burst gets through.
			var allowed, perNode [2]atomic.Int64
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i, n := range nodes {
				for range 8 {
					wg.Go(func() {
						<-start
						for range 20 {
							r, err := n.Allow(t.Context(), "agent:a1", lim)
							if err != nil {
								t.Error(err)
								return
							}
							if r.Allowed {
								allowed[0].Add(1)
								perNode[i].Add(1)
							}
						}
					})
				}
			}
			close(start)
			wg.Wait()
			if got := allowed[0].Load(); got != 50 {
				t.Fatalf("two nodes allowed %d requests together, want exactly 50", got)
			}
			if perNode[0].Load() == 0 || perNode[1].Load() == 0 {
				t.Logf("one node took every slot (%d/%d); still within the limit", perNode[0].Load(), perNode[1].Load())
			}
		})
	}
}

// TestRedisErrorIsReturned: when Redis cannot be reached Allow neither
// allows nor hides the failure; the caller picks fail open or closed.
func TestRedisErrorIsReturned(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens here now
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	r, err := NewRedis(c, RedisOptions{}).Allow(t.Context(), "k", DefaultLimit)
	if err == nil {
		t.Fatal("Allow against a dead Redis: got no error")
	}
	if r.Allowed {
		t.Errorf("Allow against a dead Redis: Allowed = true with error %v", err)
	}
	if r.Limit != DefaultLimit {
		t.Errorf("Result.Limit = %v, want %v", r.Limit, DefaultLimit)
	}
}

// TestRedisKeyExpiresWhenFull: a key lives only until its bucket is full
// again, so idle clients cost Redis nothing.
func TestRedisKeyExpiresWhenFull(t *testing.T) {
	c := redistest.Client(t, redistest.Start(t))
	l := NewRedis(c, RedisOptions{}) // Redis clock, real expiry
	for range 3 {
		if _, err := l.Allow(t.Context(), "k", DefaultLimit); err != nil {
			t.Fatal(err)
		}
	}
	ttl, err := c.PTTL(t.Context(), DefaultRedisPrefix+"k").Result()
	if err != nil {
		t.Fatal(err)
	}
	// Three requests of 600ms each: full again within 1.8s.
	if ttl <= 0 || ttl > 1800*ms {
		t.Errorf("PTTL after 3 requests = %v, want in (0, 1.8s]", ttl)
	}
	// Denied requests write nothing.
	for range 200 {
		if _, err := l.Allow(t.Context(), "d", PerMinute(1)); err != nil {
			t.Fatal(err)
		}
	}
	ttl, err = c.PTTL(t.Context(), DefaultRedisPrefix+"d").Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > time.Minute {
		t.Errorf("PTTL after 200 requests at 1/min = %v, want in (0, 1m]", ttl)
	}
}
