package api

import (
	"sync"
	"time"
)

// ttlCache remembers values read from the store for a short while, so a
// hot path costs no store read per request. A change made through this
// node forgets its entry at once; one made on another node is seen within
// the TTL. It holds at most maxEntries (then starts over).
type ttlCache[V any] struct {
	ttl        time.Duration
	maxEntries int
	mu         sync.Mutex
	m          map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v  V
	at time.Time
}

// cacheTTL is how long the API's caches trust what they read.
const cacheTTL = 2 * time.Second

func newTTLCache[V any]() *ttlCache[V] { return &ttlCache[V]{ttl: cacheTTL, maxEntries: 10000} }

// get returns key's value if it was put less than the TTL before now.
func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if !ok || now.Before(e.at) || now.Sub(e.at) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= c.maxEntries {
		c.m = map[string]ttlEntry[V]{}
	}
	c.m[key] = ttlEntry[V]{v, now}
}

func (c *ttlCache[V]) forget(key string) {
	c.mu.Lock()
	delete(c.m, key)
	c.mu.Unlock()
}
