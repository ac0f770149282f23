package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultConcurrencyPrefix is prepended to every concurrency key in Redis.
const DefaultConcurrencyPrefix = "runagent:cc:"

// DefaultSlotTTL is how long a slot outlives the last refresh of the node
// holding it, when RedisConcurrencyOptions leave TTL zero.
const DefaultSlotTTL = 15 * time.Second

// A key is a sorted set of slots: member = holder's slot id, score = the
// slot's expiry in µs. Expired slots (of a node that died or lost Redis
// for longer than the TTL) are dropped before counting. The key itself
// expires a TTL after the last acquire or refresh, when every slot in it
// has expired too.
//
//	acquire: ARGV = limit, ttl µs, now µs or "" (Redis clock), slot id
//	refresh: ARGV = ttl µs, now µs or "", slot ids...  (XX: never re-adds)
//	release: ARGV = slot id
var (
	redisAcquireScript = redis.NewScript(`
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local ttl = tonumber(ARGV[2])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", string.format("%d", now))
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call("ZADD", KEYS[1], string.format("%d", now + ttl), ARGV[4])
redis.call("PEXPIRE", KEYS[1], string.format("%d", math.ceil(ttl / 1000)))
return 1
`)
	redisRefreshScript = redis.NewScript(`
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call("TIME")
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local ttl = tonumber(ARGV[1])
local score = string.format("%d", now + ttl)
local n = 0
for i = 3, #ARGV do
  n = n + redis.call("ZADD", KEYS[1], "XX", "CH", score, ARGV[i])
end
redis.call("PEXPIRE", KEYS[1], string.format("%d", math.ceil(ttl / 1000)))
return n
`)
	redisReleaseScript = redis.NewScript(`return redis.call("ZREM", KEYS[1], ARGV[1])`)
)

// RedisConcurrencyOptions configure a RedisConcurrency.
type RedisConcurrencyOptions struct {
	// Prefix is prepended to keys; empty means DefaultConcurrencyPrefix.
	Prefix string
	// TTL is how long a slot lives without a refresh; zero means
	// DefaultSlotTTL. Slots held are refreshed every TTL/3 until released,
	// so an operation may run longer than TTL; a node that crashes frees
	// its slots within TTL.
	TTL time.Duration
	// Now, if set, is the clock; nil means the Redis server's clock (see
	// RedisOptions.Now).
	Now func() time.Time
	// OnError, if set, is called with errors that have no caller to return
	// to: a failed release (the slot then expires after TTL) or refresh.
	OnError func(error)
}

// RedisConcurrency caps how many operations run at once per key across
// every node sharing one Redis. Close it to stop its refresh loop.
type RedisConcurrency struct {
	client  redis.Scripter
	prefix  string
	ttl     time.Duration
	now     func() time.Time
	onError func(error)
	node    string // random: slot ids are node + ":" + sequence
	seq     atomic.Uint64

	mu   sync.Mutex
	held map[string]map[string]struct{} // Redis key → slot ids held here

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// NewRedisConcurrency returns a RedisConcurrency using client and starts
// its refresh loop.
func NewRedisConcurrency(client redis.Scripter, o RedisConcurrencyOptions) *RedisConcurrency {
	if o.Prefix == "" {
		o.Prefix = DefaultConcurrencyPrefix
	}
	if o.TTL <= 0 {
		o.TTL = DefaultSlotTTL
	}
	var id [8]byte
	rand.Read(id[:])
	c := &RedisConcurrency{
		client:  client,
		prefix:  o.Prefix,
		ttl:     o.TTL,
		now:     o.Now,
		onError: o.OnError,
		node:    hex.EncodeToString(id[:]),
		held:    map[string]map[string]struct{}{},
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go c.refreshLoop()
	return c
}

// Acquire takes one of n slots for key. If all n are taken (or n <= 0) it
// returns ok false. Otherwise release gives the slot back; calling it more
// than once is harmless. On a Redis error it returns the error with ok
// false: refusing the operation (fail closed) or running it anyway (fail
// open) is the caller's choice.
func (c *RedisConcurrency) Acquire(ctx context.Context, key string, n int) (release func(), ok bool, err error) {
	if n <= 0 {
		return nil, false, nil
	}
	rkey := c.prefix + key
	slot := c.node + ":" + strconv.FormatUint(c.seq.Add(1), 36)

	// Count the slot as held before it exists, so that a refresh racing
	// with this acquire cannot miss it; XX keeps refresh from creating it.
	c.mu.Lock()
	slots := c.held[rkey]
	if slots == nil {
		slots = map[string]struct{}{}
		c.held[rkey] = slots
	}
	slots[slot] = struct{}{}
	c.mu.Unlock()

	got, err := redisAcquireScript.Run(ctx, c.client, []string{rkey}, n, c.ttl.Microseconds(), c.nowArg(), slot).Int64()
	if err != nil || got != 1 {
		c.forget(rkey, slot)
		if err != nil {
			return nil, false, fmt.Errorf("redis concurrency limit: %w", err)
		}
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			c.forget(rkey, slot)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := redisReleaseScript.Run(ctx, c.client, []string{rkey}, slot).Err(); err != nil {
				c.report(fmt.Errorf("redis concurrency release (slot expires after %v): %w", c.ttl, err))
			}
		})
	}, true, nil
}

func (c *RedisConcurrency) forget(rkey, slot string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.held[rkey], slot)
	if len(c.held[rkey]) == 0 {
		delete(c.held, rkey)
	}
}

func (c *RedisConcurrency) nowArg() string {
	if c.now == nil {
		return ""
	}
	return strconv.FormatInt(c.now().UnixMicro(), 10)
}

func (c *RedisConcurrency) report(err error) {
	if c.onError != nil {
		c.onError(err)
	}
}

func (c *RedisConcurrency) refreshLoop() {
	defer close(c.done)
	t := time.NewTicker(c.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.ttl/3)
			if err := c.refresh(ctx); err != nil {
				c.report(err)
			}
			cancel()
		}
	}
}

// refresh pushes back the expiry of every slot held here, one script
// call per key. A slot already expired and removed (this node could not
// reach Redis for longer than TTL) is not re-added: its operation then
// runs uncounted rather than risk a ghost slot outliving its release.
func (c *RedisConcurrency) refresh(ctx context.Context) error {
	c.mu.Lock()
	batches := make(map[string][]any, len(c.held))
	for rkey, slots := range c.held {
		args := make([]any, 0, 2+len(slots))
		args = append(args, c.ttl.Microseconds(), c.nowArg())
		for s := range slots {
			args = append(args, s)
		}
		batches[rkey] = args
	}
	c.mu.Unlock()
	var first error
	for rkey, args := range batches {
		if err := redisRefreshScript.Run(ctx, c.client, []string{rkey}, args...).Err(); err != nil && first == nil {
			first = fmt.Errorf("redis concurrency refresh: %w", err)
		}
	}
	return first
}

// Close stops refreshing. Slots still held are not released: like a
// crashed node's, they expire within TTL.
func (c *RedisConcurrency) Close() error {
	c.closeOnce.Do(func() { close(c.stop) })
	<-c.done
	return nil
}
