package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is prepended to every rate-limit key in Redis.
const DefaultRedisPrefix = "runagent:rl:"

// redisAllowScript is gcra in Lua, on integer microseconds (exact in
// Lua's doubles up to 2^53). KEYS[1] holds the tat as a decimal integer
// and expires when the bucket is full again, so idle keys cost nothing.
//
//	ARGV[1] emission interval, µs
//	ARGV[2] burst
//	ARGV[3] now, µs since 1970; "" to use the Redis server's clock
//	ARGV[4] minimum key lifetime, ms (tests with a fake clock; else 0)
//
// It returns {allowed (0/1), remaining, retry after µs, reset after µs}.
var redisAllowScript = redis.NewScript(`
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local tat = tonumber(redis.call("GET", KEYS[1]) or "")
if not tat or tat < now then
  tat = now
end
local newtat = tat + interval
local allowat = newtat - interval * burst
if now < allowat then
  return {0, 0, allowat - now, tat - now}
end
local reset = newtat - now
local ttl = math.max(math.ceil(reset / 1000), tonumber(ARGV[4]))
redis.call("SET", KEYS[1], string.format("%d", newtat), "PX", string.format("%d", ttl))
return {1, math.floor((now - allowat) / interval), 0, reset}
`)

// RedisOptions configure a Redis limiter.
type RedisOptions struct {
	// Prefix is prepended to keys; empty means DefaultRedisPrefix.
	Prefix string
	// Now, if set, is the clock. Leave it nil in production: the script
	// then reads the Redis server's clock, the one clock every node
	// shares, so skew between nodes cannot loosen a limit.
	Now func() time.Time
}

// Redis is a Limiter whose state lives in Redis, so that every server
// node using the same Redis enforces one shared limit per key. Each
// decision is one script call (EVALSHA), atomic in Redis.
//
// On any Redis error Allow returns the error and a Result with Allowed
// false: whether to refuse the request (fail closed) or let it through,
// perhaps under a local Memory limiter (fail open), is the caller's
// choice.
type Redis struct {
	client redis.Scripter
	prefix string
	now    func() time.Time
	minTTL int64 // ms; see redisAllowScript
}

// NewRedis returns a Redis limiter using client, typically a
// *redis.Client or *redis.ClusterClient (one key per script call, so
// Cluster works).
func NewRedis(client redis.Scripter, o RedisOptions) *Redis {
	if o.Prefix == "" {
		o.Prefix = DefaultRedisPrefix
	}
	return &Redis{client: client, prefix: o.Prefix, now: o.Now}
}

// Allow takes one request from key's bucket under l, if it holds one.
func (r *Redis) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	interval, burst, err := l.params(time.Microsecond)
	if err != nil {
		return Result{Limit: l}, err
	}
	now := ""
	if r.now != nil {
		now = strconv.FormatInt(r.now().UnixMicro(), 10)
	}
	v, err := redisAllowScript.Run(ctx, r.client, []string{r.prefix + key}, interval, burst, now, r.minTTL).Int64Slice()
	if err == nil && len(v) != 4 {
		err = fmt.Errorf("script returned %d values, want 4", len(v))
	}
	if err != nil {
		return Result{Limit: l}, fmt.Errorf("redis rate limit: %w", err)
	}
	return Result{
		Allowed:    v[0] == 1,
		Limit:      l,
		Remaining:  int(v[1]),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		ResetAfter: time.Duration(v[3]) * time.Microsecond,
	}, nil
}
