// Package ratelimit decides whether a request may go ahead: per-key rate
// limits, per-key caps on operations in flight, and the client keys and
// response headers that go with them. Keys are opaque strings the caller
// chooses ("key:<id>", "ip:<addr or /64>", "agent:<id>"); use one Limit
// per key, e.g. by putting the policy's name in the key. Flags and the CLI
// write a Limit as <requests>/<period>, "100/1m": ParseLimit reads that,
// FormatLimit writes it.
//
// # Algorithm
//
// Rate limits use GCRA, the generic cell rate algorithm: a Limit of Rate
// requests per Period with a Burst is a bucket of Burst requests that
// refills one request every Period/Rate. GCRA keeps one number per key
// (the theoretical arrival time, TAT), has no window edges at which a
// client can send two windows' worth at once, and gives exact Remaining,
// ResetAfter and RetryAfter values. The default policy is the reference
// one, 100 requests per minute, all of which may come at once.
//
// # Backends
//
// Memory is for one node. Its state is bounded (MaxKeys, default 100,000,
// a few MiB): a key whose bucket has refilled carries no information (a
// missing key is a full bucket), so a full shard first drops those; only
// when every key in it is still in debt does it evict the one closest to
// full among a small sample, which forgives that key's debt. Evictions
// counts the latter, so an operator can see MaxKeys is too small or the
// key space is being flooded. The clock is injectable.
//
// Redis shares limits between nodes. A Lua script does the same GCRA on
// integer microseconds, atomically, one key per call (so Redis Cluster
// works), reading the Redis server's clock so that skew between nodes
// cannot loosen a limit; a key expires when its bucket is full again.
// github.com/go-redis/redis_rate was the candidate and was not used: it
// reads only the Redis clock (so tests of exact edges would have to sleep
// instead of sharing one table of decisions with Memory), stores the TAT
// as float seconds (decisions exactly at an edge can flip with rounding),
// and would be one more dependency for forty lines of Lua.
//
// On a Redis error, Allow (and RedisConcurrency.Acquire) return the error
// and do not allow: failing closed (answer 503 or 429) or open (let the
// request through, perhaps under a per-node Memory limiter) is the
// caller's decision, made once in the gateway, not hidden here.
//
// # Concurrency
//
// Concurrency caps operations in flight per key in one process (running
// invocations per principal and per agent); RedisConcurrency does it
// across nodes with a sorted set of slots per key scored by expiry. A
// node refreshes the slots it holds every TTL/3, so an operation may run
// for longer than the TTL, and a node that crashes stops refreshing: its
// slots expire within the TTL (default 15s) and are dropped by the next
// Acquire. Release is idempotent in both.
//
// # Temporary blocks
//
// MemoryBlocks and RedisBlocks count strikes against a client key (failed
// authentications, rate-limit violations) and block it for a while after
// BlockPolicy.After of them within Window. RedisBlocks keeps them in Redis
// (a sorted set of strikes per client, a key per block that expires with
// it, an index of blocks for listing), one Lua script per call under one
// Cluster hash tag, so every node sees the same blocks and a lift on one
// lifts them on all. Its errors are returned, never taken as "not
// blocked": the gateway fails closed on them, as on the limiter's.
//
// # Client keys and headers
//
// ClientKey keys a request by its client address: IPv4 as is, IPv6 by
// /64 (one host usually has a whole /64). X-Forwarded-For is believed
// only from trusted proxies, read from the right, so a client cannot
// choose its own key by sending the header. SetHeaders writes the IETF
// draft RateLimit-Limit, -Remaining, -Reset and -Policy fields and, on a
// denial, Retry-After.
package ratelimit
