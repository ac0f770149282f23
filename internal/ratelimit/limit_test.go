package ratelimit

import (
	"errors"
	"fmt"
	"github.com/runagent/runagent/internal/ratelimit/redistest"
	"sync"
	"testing"
	"time"
)

// fakeClock is an injectable clock, microsecond-aligned so that the
// memory (nanosecond) and Redis (microsecond) backends see the same times.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// backend makes a Limiter on a fake clock; every decision test runs
// against each.
type backend struct {
	name string
	new  func(t testing.TB, clk *fakeClock) Limiter
}

var backends = []backend{
	{"memory", func(t testing.TB, clk *fakeClock) Limiter {
		return NewMemory(MemoryOptions{Now: clk.Now})
	}},
	{"redis", func(t testing.TB, clk *fakeClock) Limiter {
		return newTestRedis(t, redistest.Client(t, redistest.Start(t)), clk)
	}},
}

// want is the part of a Result a step checks.
type want struct {
	allowed    bool
	remaining  int
	retryAfter time.Duration
	resetAfter time.Duration
}

func (w want) String() string {
	return fmt.Sprintf("allowed=%v remaining=%d retry=%v reset=%v", w.allowed, w.remaining, w.retryAfter, w.resetAfter)
}

func got(r Result) want { return want{r.Allowed, r.Remaining, r.RetryAfter, r.ResetAfter} }

// step: at offset from the start, send n requests (1 if n is 0) under key
// and expect the last to give want; all but the last must be allowed.
type step struct {
	at   time.Duration
	key  string
	n    int
	want want
}

var ms = time.Millisecond

func TestAllowDecisions(t *testing.T) {
	tenPerSecBurst3 := Limit{Rate: 10, Period: time.Second, Burst: 3}
	cases := []struct {
		name  string
		limit Limit
		steps []step
	}{{
		name:  "default policy: burst of 100 then one per 600ms",
		limit: DefaultLimit,
		steps: []step{
			{at: 0, key: "k", want: want{true, 99, 0, 600 * ms}},
			{at: 0, key: "k", n: 99, want: want{true, 0, 0, time.Minute}},
			{at: 0, key: "k", want: want{false, 0, 600 * ms, time.Minute}},
			{at: 599 * ms, key: "k", want: want{false, 0, 1 * ms, time.Minute - 599*ms}},
			{at: 600 * ms, key: "k", want: want{true, 0, 0, time.Minute}},
			{at: 600 * ms, key: "k", want: want{false, 0, 600 * ms, time.Minute}},
			// A full minute after the last request the bucket is full.
			{at: 600*ms + time.Minute, key: "k", want: want{true, 99, 0, 600 * ms}},
		},
	}, {
		name:  "no double burst across a window edge",
		limit: DefaultLimit,
		steps: []step{
			{at: 0, key: "k", want: want{true, 99, 0, 600 * ms}},
			// Idle until the very end of the first minute: full again.
			{at: time.Minute - ms, key: "k", n: 100, want: want{true, 0, 0, time.Minute}},
			// A fixed window would start afresh here; GCRA does not.
			{at: time.Minute, key: "k", want: want{false, 0, 599 * ms, time.Minute - ms}},
			{at: time.Minute + 599*ms, key: "k", want: want{true, 0, 0, time.Minute}},
		},
	}, {
		name:  "burst smaller than rate",
		limit: tenPerSecBurst3,
		steps: []step{
			{at: 0, key: "k", want: want{true, 2, 0, 100 * ms}},
			{at: 0, key: "k", want: want{true, 1, 0, 200 * ms}},
			{at: 0, key: "k", want: want{true, 0, 0, 300 * ms}},
			{at: 0, key: "k", want: want{false, 0, 100 * ms, 300 * ms}},
			{at: 250 * ms, key: "k", want: want{true, 1, 0, 150 * ms}},
			{at: 250 * ms, key: "k", want: want{true, 0, 0, 250 * ms}},
			{at: 250 * ms, key: "k", want: want{false, 0, 50 * ms, 250 * ms}},
			{at: 500 * ms, key: "k", want: want{true, 2, 0, 100 * ms}},
		},
	}, {
		name:  "burst larger than rate",
		limit: Limit{Rate: 1, Period: time.Second, Burst: 5},
		steps: []step{
			{at: 0, key: "k", n: 5, want: want{true, 0, 0, 5 * time.Second}},
			{at: 0, key: "k", want: want{false, 0, time.Second, 5 * time.Second}},
			{at: time.Second, key: "k", want: want{true, 0, 0, 5 * time.Second}},
			{at: 3 * time.Second, key: "k", n: 2, want: want{true, 0, 0, 5 * time.Second}},
			{at: 3 * time.Second, key: "k", want: want{false, 0, time.Second, 5 * time.Second}},
		},
	}, {
		name:  "keys are independent",
		limit: tenPerSecBurst3,
		steps: []step{
			{at: 0, key: "key:a", n: 3, want: want{true, 0, 0, 300 * ms}},
			{at: 0, key: "key:a", want: want{false, 0, 100 * ms, 300 * ms}},
			{at: 0, key: "key:b", want: want{true, 2, 0, 100 * ms}},
			{at: 0, key: "ip:192.0.2.1", n: 3, want: want{true, 0, 0, 300 * ms}},
			{at: 0, key: "key:a", want: want{false, 0, 100 * ms, 300 * ms}},
			{at: 0, key: "key:b", want: want{true, 1, 0, 200 * ms}},
		},
	}}
	for _, b := range backends {
		for _, tc := range cases {
			t.Run(b.name+"/"+tc.name, func(t *testing.T) {
				clk := newFakeClock()
				start := clk.Now()
				l := b.new(t, clk)
				for i, s := range tc.steps {
					clk.Advance(start.Add(s.at).Sub(clk.Now()))
					for j := range max(1, s.n) {
						r, err := l.Allow(t.Context(), s.key, tc.limit)
						if err != nil {
							t.Fatalf("step %d: %v", i, err)
						}
						if r.Limit != tc.limit {
							t.Fatalf("step %d: Result.Limit = %v, want %v", i, r.Limit, tc.limit)
						}
						if j < max(1, s.n)-1 {
							if !r.Allowed {
								t.Fatalf("step %d: request %d of %d at %v denied: %v", i, j+1, s.n, s.at, got(r))
							}
							continue
						}
						if got(r) != s.want {
							t.Errorf("step %d: %d request(s) on %q at %v: got %v, want %v", i, max(1, s.n), s.key, s.at, got(r), s.want)
						}
					}
				}
			})
		}
	}
}

// TestSteadyRateAfterBurst: once the burst is spent, a client asking
// every 10ms gets exactly one request per emission interval.
func TestSteadyRateAfterBurst(t *testing.T) {
	lim := Limit{Rate: 10, Period: time.Second, Burst: 5}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			clk := newFakeClock()
			l := b.new(t, clk)
			allowed := 0
			for range 20 {
				r, err := l.Allow(t.Context(), "k", lim)
				if err != nil {
					t.Fatal(err)
				}
				if r.Allowed {
					allowed++
				}
			}
			if allowed != 5 {
				t.Fatalf("burst: got %d allowed, want 5", allowed)
			}
			var at []time.Duration
			for i := 1; i <= 300; i++ { // 3 seconds in 10ms ticks
				clk.Advance(10 * ms)
				r, err := l.Allow(t.Context(), "k", lim)
				if err != nil {
					t.Fatal(err)
				}
				if r.Allowed {
					at = append(at, time.Duration(i)*10*ms)
				}
			}
			if len(at) != 30 {
				t.Fatalf("got %d allowed in 3s after the burst, want 30 (at %v)", len(at), at)
			}
			for i, d := range at {
				if want := time.Duration(i+1) * 100 * ms; d != want {
					t.Fatalf("allowed request %d at %v, want %v", i, d, want)
				}
			}
		})
	}
}

func TestInvalidLimit(t *testing.T) {
	bad := []Limit{
		{},
		{Rate: 0, Period: time.Second},
		{Rate: 1, Period: 0},
		{Rate: -1, Period: time.Second},
		{Rate: 1, Period: time.Second, Burst: -1},
		{Rate: 1, Period: 24 * time.Hour, Burst: 1 << 40},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			l := b.new(t, newFakeClock())
			for _, lim := range bad {
				r, err := l.Allow(t.Context(), "k", lim)
				if !errors.Is(err, ErrInvalidLimit) {
					t.Errorf("Allow(%+v): got error %v, want ErrInvalidLimit", lim, err)
				}
				if r.Allowed {
					t.Errorf("Allow(%+v): allowed with an invalid limit", lim)
				}
			}
		})
	}
}

func TestLimitPolicy(t *testing.T) {
	for _, tc := range []struct {
		l    Limit
		want string
	}{
		{DefaultLimit, "100;w=60"},
		{Limit{Rate: 100, Period: time.Minute}, "100;w=60"},
		{PerSecond(5), "5;w=1"},
		{Limit{Rate: 10, Period: time.Second, Burst: 3}, "10;w=1;burst=3"},
		{Limit{Rate: 3, Period: 1500 * ms}, "3;w=2"},
		{Limit{Rate: 3, Period: ms}, "3;w=1"},
		{PerMinute(7), "7;w=60"},
	} {
		if got := tc.l.Policy(); got != tc.want {
			t.Errorf("%+v.Policy() = %q, want %q", tc.l, got, tc.want)
		}
	}
}

func TestParseLimit(t *testing.T) {
	for in, want := range map[string]Limit{
		"100/1m":    {Rate: 100, Period: time.Minute, Burst: 100},
		"10/1s":     {Rate: 10, Period: time.Second, Burst: 10},
		" 5 / 90s ": {Rate: 5, Period: 90 * time.Second, Burst: 5},
		"1/24h":     {Rate: 1, Period: 24 * time.Hour, Burst: 1},
	} {
		if got, err := ParseLimit(in); err != nil || got != want {
			t.Errorf("ParseLimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "100", "0/1m", "-1/1m", "x/1m", "100/0s", "100/10ms", "100/1.5s", "100/48h", "2000000/1s"} {
		if l, err := ParseLimit(bad); err == nil {
			t.Errorf("ParseLimit(%q) = %+v, want an error", bad, l)
		}
	}
}

func TestFormatLimit(t *testing.T) {
	for _, tt := range []struct {
		l    Limit
		want string
	}{
		{DefaultLimit, "100/1m"},
		{PerSecond(10), "10/1s"},
		{Limit{Rate: 5, Period: 90 * time.Second}, "5/1m30s"},
		{Limit{Rate: 1, Period: 2 * time.Hour}, "1/2h"},
		{Limit{Rate: 1, Period: 90 * time.Minute}, "1/1h30m"},
		{Limit{Rate: 1, Period: time.Hour + time.Second}, "1/1h0m1s"},
	} {
		if got := FormatLimit(tt.l); got != tt.want {
			t.Errorf("FormatLimit(%+v) = %q, want %q", tt.l, got, tt.want)
		}
	}
}

// FuzzParseLimit: whatever ParseLimit accepts is in range, whole seconds,
// and reads back the same from its canonical form and from FormatLimit's.
func FuzzParseLimit(f *testing.F) {
	for _, s := range []string{"100/1m", "10/1.5s", "1/24h", "9/0s", "1e3/1m", "/", "1//1s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseLimit(s)
		if err != nil {
			return
		}
		if l.Rate < 1 || l.Rate > 1_000_000 || l.Burst != l.Rate || l.Period < time.Second || l.Period > 24*time.Hour || l.Period%time.Second != 0 {
			t.Fatalf("ParseLimit(%q) = %+v", s, l)
		}
		for _, text := range []string{fmt.Sprintf("%d/%ds", l.Rate, l.Period/time.Second), FormatLimit(l)} {
			again, err := ParseLimit(text)
			if err != nil || again != l {
				t.Fatalf("ParseLimit(%q) = %+v does not round-trip through %q: %+v, %v", s, l, text, again, err)
			}
		}
	})
}
