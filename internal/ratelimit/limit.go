package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Limit is a rate: Rate requests per Period sustained, with up to Burst of
// them at once from a bucket that has been idle. A zero Burst means Rate.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// DefaultLimit is the reference policy: 100 requests per minute per key,
// all of which may come at once.
var DefaultLimit = Limit{Rate: 100, Period: time.Minute, Burst: 100}

// PerMinute returns a limit of n requests a minute with a burst of n.
func PerMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute, Burst: n} }

// PerSecond returns a limit of n requests a second with a burst of n.
func PerSecond(n int) Limit { return Limit{Rate: n, Period: time.Second, Burst: n} }

// ParseLimit reads a limit written as <requests>/<period>, such as
// "100/1m", "10/1s" or "100/90s": from 1 to 1,000,000 requests per a whole
// number of seconds from 1s to 24h, all of which may come at once (the
// burst equals the count). It is how flags and the CLI take rate limits.
func ParseLimit(s string) (Limit, error) {
	n, per, ok := strings.Cut(s, "/")
	if !ok {
		return Limit{}, fmt.Errorf("rate %q: want <requests>/<period>, e.g. 100/1m", s)
	}
	count, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || count <= 0 || count > 1_000_000 {
		return Limit{}, fmt.Errorf("rate %q: the request count must be a whole number from 1 to 1000000", s)
	}
	d, err := time.ParseDuration(strings.TrimSpace(per))
	if err != nil || d < time.Second || d > 24*time.Hour || d%time.Second != 0 {
		return Limit{}, fmt.Errorf("rate %q: the period must be a whole number of seconds from 1s to 24h, e.g. 1m or 90s", s)
	}
	return Limit{Rate: count, Period: d, Burst: count}, nil
}

// FormatLimit writes l as ParseLimit reads it, "100/1m" (the burst is
// left out: ParseLimit makes it the count).
func FormatLimit(l Limit) string {
	per := l.Period.String() // 10s, 1m30s, 1m0s, 1h0m0s
	if p, ok := strings.CutSuffix(per, "m0s"); ok {
		per = p + "m"
		if p, ok := strings.CutSuffix(per, "h0m"); ok {
			per = p + "h"
		}
	}
	return strconv.Itoa(l.Rate) + "/" + per
}

// ErrInvalidLimit is returned (wrapped) for a Limit that cannot be
// enforced: a Rate or Period that is not positive, a negative Burst, or a
// Burst so large that its span overflows.
var ErrInvalidLimit = errors.New("invalid rate limit")

// burst returns the effective burst: Burst, or Rate when Burst is zero.
func (l Limit) burst() int {
	if l.Burst == 0 {
		return l.Rate
	}
	return l.Burst
}

// params returns the emission interval (Period/Rate, at least one unit)
// and the burst, both in units of unit, or an error for an invalid limit.
func (l Limit) params(unit time.Duration) (interval, burst int64, err error) {
	if l.Rate <= 0 || l.Period <= 0 || l.Burst < 0 {
		return 0, 0, fmt.Errorf("%d per %v, burst %d: %w", l.Rate, l.Period, l.Burst, ErrInvalidLimit)
	}
	burst = int64(l.burst())
	// The Redis script does its arithmetic in float64, exact to 2^53, on
	// microseconds since 1970 (about 2^51 today): keep the span of a full
	// bucket below 2^52 microseconds (142 years) whatever the unit.
	if us := max(1, l.Period.Microseconds()/int64(l.Rate)); burst > (1<<52)/us {
		return 0, 0, fmt.Errorf("%d per %v, burst %d: span too long: %w", l.Rate, l.Period, l.Burst, ErrInvalidLimit)
	}
	interval = max(1, int64(l.Period/unit)/int64(l.Rate))
	return interval, burst, nil
}

// Policy renders l as an RFC-draft RateLimit-Policy item, "100;w=60",
// with ";burst=N" added when the burst differs from the rate. The window
// is in whole seconds, rounded up.
func (l Limit) Policy() string {
	b := make([]byte, 0, 32)
	b = strconv.AppendInt(b, int64(l.Rate), 10)
	b = append(b, ";w="...)
	b = strconv.AppendInt(b, max(1, ceilSeconds(l.Period)), 10)
	if l.Burst != 0 && l.Burst != l.Rate {
		b = append(b, ";burst="...)
		b = strconv.AppendInt(b, int64(l.Burst), 10)
	}
	return string(b)
}

func (l Limit) String() string {
	return fmt.Sprintf("%d per %v (burst %d)", l.Rate, l.Period, l.burst())
}

// Result is one decision.
type Result struct {
	Allowed bool
	Limit   Limit // the limit the decision was made under
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// ResetAfter is the time until the bucket is full again, that is
	// until Remaining would be the burst.
	ResetAfter time.Duration
	// RetryAfter is the time until a request would be allowed; zero when
	// this one was.
	RetryAfter time.Duration
}

// Limiter decides whether a request under key may go ahead. Memory and
// Redis implement it.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (Result, error)
}

var (
	_ Limiter = (*Memory)(nil)
	_ Limiter = (*Redis)(nil)
)

// gcra is the generic cell rate algorithm for one request. tat is the
// key's theoretical arrival time (known is false for a key without
// state), now the current time, interval the emission interval and burst
// the bucket size; all times in one unit. It returns the new tat to store
// (only meaningful when allowed) and the decision in that unit.
//
// A request is allowed when the bucket, after taking it, would hold no
// more than burst intervals of debt: newTat - now <= interval*burst.
// redisAllowScript is the same arithmetic in Lua; keep them in step.
func gcra(tat int64, known bool, now, interval, burst int64) (newTat int64, allowed bool, remaining, retryAfter, resetAfter int64) {
	if !known || tat < now {
		tat = now
	}
	newTat = tat + interval
	allowAt := newTat - interval*burst
	if now < allowAt {
		return tat, false, 0, allowAt - now, tat - now
	}
	return newTat, true, (now - allowAt) / interval, 0, newTat - now
}

// ceilSeconds returns d in whole seconds, rounded up; 0 for d <= 0.
func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 && s < math.MaxInt64 {
		s++
	}
	return s
}
