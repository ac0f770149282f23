package ratelimit

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSetHeaders(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Result
		want http.Header
	}{{
		name: "allowed",
		r:    Result{Allowed: true, Limit: DefaultLimit, Remaining: 99, ResetAfter: 600 * ms},
		want: http.Header{
			"Ratelimit-Limit":     {"100"},
			"Ratelimit-Remaining": {"99"},
			"Ratelimit-Reset":     {"1"},
			"Ratelimit-Policy":    {"100;w=60"},
		},
	}, {
		name: "denied: retry rounded up",
		r:    Result{Limit: DefaultLimit, RetryAfter: 600 * ms, ResetAfter: time.Minute},
		want: http.Header{
			"Ratelimit-Limit":     {"100"},
			"Ratelimit-Remaining": {"0"},
			"Ratelimit-Reset":     {"60"},
			"Ratelimit-Policy":    {"100;w=60"},
			"Retry-After":         {"1"},
		},
	}, {
		name: "denied: just over a second is two",
		r:    Result{Limit: Limit{Rate: 10, Period: time.Second, Burst: 3}, RetryAfter: time.Second + time.Microsecond, ResetAfter: 2500 * ms},
		want: http.Header{
			"Ratelimit-Limit":     {"3"},
			"Ratelimit-Remaining": {"0"},
			"Ratelimit-Reset":     {"3"},
			"Ratelimit-Policy":    {"10;w=1;burst=3"},
			"Retry-After":         {"2"},
		},
	}, {
		name: "denied with no wait still says at least 1",
		r:    Result{Limit: PerMinute(5)},
		want: http.Header{
			"Ratelimit-Limit":     {"5"},
			"Ratelimit-Remaining": {"0"},
			"Ratelimit-Reset":     {"0"},
			"Ratelimit-Policy":    {"5;w=60"},
			"Retry-After":         {"1"},
		},
	}, {
		name: "exactly whole seconds",
		r:    Result{Limit: PerMinute(5), RetryAfter: 12 * time.Second, ResetAfter: time.Minute},
		want: http.Header{
			"Ratelimit-Limit":     {"5"},
			"Ratelimit-Remaining": {"0"},
			"Ratelimit-Reset":     {"60"},
			"Ratelimit-Policy":    {"5;w=60"},
			"Retry-After":         {"12"},
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			SetHeaders(h, tc.r)
			if d := cmp.Diff(h, tc.want); d != "" {
				t.Errorf("SetHeaders(%+v) (-got +want):\n%s", tc.r, d)
			}
		})
	}
}

// TestSetHeadersFromDecisions: the headers of a real sequence of
// decisions read as a client would read them.
func TestSetHeadersFromDecisions(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(MemoryOptions{Now: clk.Now})
	lim := PerMinute(2)
	var h http.Header
	for range 3 {
		r, err := m.Allow(t.Context(), "k", lim)
		if err != nil {
			t.Fatal(err)
		}
		h = http.Header{}
		SetHeaders(h, r)
	}
	if got := h.Get("Retry-After"); got != "30" {
		t.Errorf("third request at 2/min: Retry-After %q, want 30", got)
	}
	if got := h.Get("RateLimit-Remaining"); got != "0" {
		t.Errorf("RateLimit-Remaining %q, want 0", got)
	}
	if got := h.Get("RateLimit-Reset"); got != "60" {
		t.Errorf("RateLimit-Reset %q, want 60", got)
	}
}
