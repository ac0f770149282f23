package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultBlockPrefix is prepended to every block key in Redis. The braces
// are a Redis Cluster hash tag: a client's strikes, its block and the
// index of blocks are in one slot, so one script can change them together.
const DefaultBlockPrefix = "{runagent:blk}:"

// maxListed bounds how many blocks List returns.
const maxListed = 10000

// A client's strikes are a sorted set (member: a unique id, score: the
// strike's time in µs) that expires a window after the last strike; its
// block is a key holding the end of the block in µs that expires with
// it; the index is a sorted set of blocked clients scored by the end of
// their block, for List, pruned of ended ones as it is read or added to.
//
//	strike: KEYS = strikes, block, index
//	        ARGV = after, window µs, for µs, now µs or "" (Redis clock),
//	               minimum key lifetime ms, strike id, client
//	check:  KEYS = block; ARGV = now µs or ""        → µs left, 0: none
//	list:   KEYS = index; ARGV = now µs or "", limit, after's until µs
//	        or "" (from the first), after's client   → {client, until µs, ...}
//	lift:   KEYS = strikes, block, index; ARGV = now µs or "", client
//	                                                 → 1 if it was blocked
const redisNow = `
local now = tonumber(ARGV[%d])
if not now then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
`

var (
	redisStrikeScript = redis.NewScript(fmt.Sprintf(redisNow, 4) + `
local after, window, dur = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local minttl = tonumber(ARGV[5])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", string.format("%d", now - window))
redis.call("ZADD", KEYS[1], string.format("%d", now), ARGV[6])
if redis.call("ZCARD", KEYS[1]) < after then
  redis.call("PEXPIRE", KEYS[1], string.format("%d", math.max(math.ceil(window / 1000), minttl)))
  return 0
end
redis.call("DEL", KEYS[1])
local untl = now + dur
redis.call("SET", KEYS[2], string.format("%d", untl), "PX", string.format("%d", math.max(math.ceil(dur / 1000), minttl)))
redis.call("ZREMRANGEBYSCORE", KEYS[3], "-inf", string.format("%d", now))
redis.call("ZADD", KEYS[3], string.format("%d", untl), ARGV[7])
return 1
`)
	redisCheckScript = redis.NewScript(fmt.Sprintf(redisNow, 1) + `
local untl = tonumber(redis.call("GET", KEYS[1]) or "")
if not untl or untl <= now then
  return 0
end
return untl - now
`)
	redisListScript = redis.NewScript(fmt.Sprintf(redisNow, 1) + `
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", string.format("%d", now))
local limit = tonumber(ARGV[2])
local out = {}
local function add(client, score)
  out[#out + 1] = client
  out[#out + 1] = string.format("%d", score)
end
if ARGV[3] == "" then
  local r = redis.call("ZRANGE", KEYS[1], 0, limit - 1, "WITHSCORES")
  for i = 1, #r, 2 do
    add(r[i], tonumber(r[i + 1]))
  end
  return out
end
-- After a cursor (end in µs, client): the clients of later ends, and
-- those of the cursor's own end that sort after its client. Members of
-- one score are in byte order (Redis's order), compared here byte by
-- byte so that no locale decides.
local s, c = tonumber(ARGV[3]), ARGV[4]
local function later(a)
  for i = 1, math.min(#a, #c) do
    local x, y = string.byte(a, i), string.byte(c, i)
    if x ~= y then
      return x > y
    end
  end
  return #a > #c
end
local off = 0
while #out < 2 * limit do
  local r = redis.call("ZRANGEBYSCORE", KEYS[1], string.format("%d", s), "+inf", "WITHSCORES", "LIMIT", off, limit)
  if #r == 0 then
    break
  end
  for i = 1, #r, 2 do
    local score = tonumber(r[i + 1])
    if #out < 2 * limit and (score > s or later(r[i])) then
      add(r[i], score)
    end
  end
  off = off + limit
end
return out
`)
	redisLiftScript = redis.NewScript(fmt.Sprintf(redisNow, 1) + `
local untl = tonumber(redis.call("GET", KEYS[2]) or "")
redis.call("DEL", KEYS[1], KEYS[2])
redis.call("ZREM", KEYS[3], ARGV[2])
if untl and untl > now then
  return 1
end
return 0
`)
)

// RedisBlocksOptions configure RedisBlocks.
type RedisBlocksOptions struct {
	// Prefix is prepended to keys; empty means DefaultBlockPrefix.
	Prefix string
	// Now, if set, is the clock. Leave it nil in production: the scripts
	// then read the Redis server's clock, which every node shares.
	Now func() time.Time
	// minTTL (ms) keeps keys for at least this long (tests on a fake
	// clock), as Redis.minTTL.
	minTTL int64
}

// RedisBlocks keeps strikes and blocks in Redis, so that a client
// blocked on one node is blocked on every node sharing the Redis, and an
// owner lists and lifts blocks from any of them. Each call is one script
// (EVALSHA), atomic in Redis.
//
// On a Redis error every method returns it: Check does not say "not
// blocked", Strike does not say "blocked". As for the rate limiter
// (package doc), failing closed or open is the caller's decision; the API
// gateway fails closed: a request whose block cannot be checked is
// refused with 503, like one whose rate limit cannot be checked, and a
// strike that cannot be recorded is logged (the request it counts against
// is being refused anyway).
type RedisBlocks struct {
	client redis.Scripter
	pol    BlockPolicy
	prefix string
	now    func() time.Time
	minTTL int64
}

// NewRedisBlocks returns blocks under p (see WithDefaults) kept in Redis
// through client.
func NewRedisBlocks(client redis.Scripter, p BlockPolicy, o RedisBlocksOptions) *RedisBlocks {
	if o.Prefix == "" {
		o.Prefix = DefaultBlockPrefix
	}
	return &RedisBlocks{client: client, pol: p.WithDefaults(), prefix: o.Prefix, now: o.Now, minTTL: o.minTTL}
}

func (b *RedisBlocks) keys(client string) []string {
	return []string{b.prefix + "s:" + client, b.prefix + "b:" + client, b.prefix + "index"}
}

func (b *RedisBlocks) nowArg() string {
	if b.now == nil {
		return ""
	}
	return strconv.FormatInt(b.now().UnixMicro(), 10)
}

// Check reports how long client stays blocked (0: it is not).
func (b *RedisBlocks) Check(ctx context.Context, client string) (time.Duration, error) {
	if b.pol.After < 0 {
		return 0, nil
	}
	left, err := redisCheckScript.Run(ctx, b.client, b.keys(client)[1:2], b.nowArg()).Int64()
	if err != nil {
		return 0, fmt.Errorf("redis blocks: check: %w", err)
	}
	return time.Duration(max(left, 0)) * time.Microsecond, nil
}

// Strike records a strike against client and reports whether it is now
// blocked.
func (b *RedisBlocks) Strike(ctx context.Context, client string) (bool, error) {
	if b.pol.After < 0 {
		return false, nil
	}
	var id [8]byte
	rand.Read(id[:])
	v, err := redisStrikeScript.Run(ctx, b.client, b.keys(client),
		b.pol.After, b.pol.Window.Microseconds(), b.pol.For.Microseconds(), b.nowArg(), b.minTTL,
		hex.EncodeToString(id[:]), client).Int64()
	if err != nil {
		return false, fmt.Errorf("redis blocks: strike: %w", err)
	}
	return v == 1, nil
}

// List returns the blocks in force, soonest to end first: those after
// after (nil: from the first), at most limit (0, or above 10,000:
// 10,000). Redis reads the page from its index; only the blocks that end
// at after's very microsecond are looked through beyond it.
func (b *RedisBlocks) List(ctx context.Context, after *Block, limit int) ([]Block, error) {
	if limit <= 0 || limit > maxListed {
		limit = maxListed
	}
	afterUs, afterClient := "", ""
	if after != nil {
		afterUs, afterClient = strconv.FormatInt(after.Until.UnixMicro(), 10), after.Client
	}
	v, err := redisListScript.Run(ctx, b.client, []string{b.prefix + "index"}, b.nowArg(), limit, afterUs, afterClient).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis blocks: list: %w", err)
	}
	out, err := decodeBlocks(v)
	if err != nil {
		return nil, fmt.Errorf("redis blocks: list: %w", err)
	}
	sortBlocks(out)
	return out, nil
}

// Lift ends client's block on every node and forgets its strikes; it
// reports whether there was a block.
func (b *RedisBlocks) Lift(ctx context.Context, client string) (bool, error) {
	v, err := redisLiftScript.Run(ctx, b.client, b.keys(client), b.nowArg(), client).Int64()
	if err != nil {
		return false, fmt.Errorf("redis blocks: lift: %w", err)
	}
	return v == 1, nil
}

// errBadList: the list script's reply is not client/until pairs.
var errBadList = errors.New("the reply is not pairs of client and end time in µs")

// decodeBlocks reads the list script's reply: client, until (µs since
// 1970, decimal), client, until, ... Redis is trusted less than the
// process: a reply of another shape is an error, not a panic.
func decodeBlocks(v []string) ([]Block, error) {
	if len(v)%2 != 0 {
		return nil, errBadList
	}
	out := make([]Block, 0, len(v)/2)
	for i := 0; i < len(v); i += 2 {
		us, err := strconv.ParseInt(v[i+1], 10, 64)
		if err != nil || v[i] == "" {
			return nil, errBadList
		}
		out = append(out, Block{Client: v[i], Until: time.UnixMicro(us).UTC()})
	}
	return out, nil
}
