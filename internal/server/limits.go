package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/runagent/runagent/internal/ratelimit"
)

// ParsePrefixes parses trusted proxy addresses or CIDR prefixes.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range ss {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want an address or a CIDR prefix such as 10.0.0.0/8", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// openRedis returns the Redis client cfg.RedisURL names, or nil without
// one. An unreachable Redis refuses to start: limits and the cluster bus
// shared between nodes need it.
func openRedis(ctx context.Context, cfg Config) (*redis.Client, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("--redis-url: %w (want redis://[user:password@]host:port/db or rediss:// for TLS)", redactURLError(err))
	}
	c := redis.NewClient(opt)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		c.Close()
		return nil, fmt.Errorf("--redis-url: Redis at %s does not answer (%v); rate limits shared between nodes need it: start Redis, fix the URL, or leave --redis-url out to limit per node", opt.Addr, err)
	}
	return c, nil
}

// openLimiter returns the rate limiter and the running-invocation counter
// for the server's Redis client c: in Redis when there is one (several
// nodes share limits and caps), else in memory (this node only). The
// closer releases them (not c).
func openLimiter(c *redis.Client, log *slog.Logger) (ratelimit.Limiter, ratelimit.Slots, func()) {
	if c == nil {
		return ratelimit.NewMemory(ratelimit.MemoryOptions{}), nil, func() {}
	}
	runs := ratelimit.NewRedisConcurrency(c, ratelimit.RedisConcurrencyOptions{
		OnError: func(err error) { log.Warn("running-invocation counts in Redis", "err", err) },
	})
	return ratelimit.NewRedis(c, ratelimit.RedisOptions{}), runs, func() { runs.Close() }
}

// redactURLError keeps a URL parse error from repeating the URL, which
// may hold a password.
func redactURLError(err error) error {
	return fmt.Errorf("cannot parse the URL: %s", strings.SplitN(err.Error(), ":", 2)[0])
}
