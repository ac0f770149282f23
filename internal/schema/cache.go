package schema

import (
	"container/list"
	"crypto/sha256"
	"sync"
)

// Cache keeps compiled input schemas, keyed by the SHA-256 of their
// bytes, so that validating a request does not recompile its schema.
// A compiled schema takes some 30 times the memory of its JSON, so the
// cache is bounded by the total size of the JSON it holds and forgets the
// least recently used schemas first. Concurrent requests for the same new
// schema compile it once. A Cache is safe for concurrent use.
type Cache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	lru      *list.List // of *cacheEntry, most recently used first
	entries  map[[sha256.Size]byte]*list.Element
	misses   int // compilations started; for tests
}

type cacheEntry struct {
	key  [sha256.Size]byte
	size int
	once sync.Once
	in   *Input
	err  error
}

// NewCache returns a cache holding compiled schemas whose JSON adds up to
// at most maxBytes (it always keeps the latest one).
func NewCache(maxBytes int) *Cache {
	return &Cache{maxBytes: maxBytes, lru: list.New(), entries: map[[sha256.Size]byte]*list.Element{}}
}

// Compile returns Compile(raw), from the cache when raw was compiled
// before. Errors are cached too.
func (c *Cache) Compile(raw []byte) (*Input, error) {
	key := sha256.Sum256(raw)
	c.mu.Lock()
	var e *cacheEntry
	if el, ok := c.entries[key]; ok {
		c.lru.MoveToFront(el)
		e = el.Value.(*cacheEntry)
	} else {
		e = &cacheEntry{key: key, size: len(raw)}
		c.entries[key] = c.lru.PushFront(e)
		c.bytes += e.size
		c.misses++
		for c.bytes > c.maxBytes && c.lru.Len() > 1 {
			old := c.lru.Remove(c.lru.Back()).(*cacheEntry)
			delete(c.entries, old.key)
			c.bytes -= old.size
		}
	}
	c.mu.Unlock()
	e.once.Do(func() { e.in, e.err = Compile(raw) })
	return e.in, e.err
}

// Len returns how many schemas the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
