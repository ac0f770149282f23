package ratelimit

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// Temporary blocks. A client key with After strikes within Window is
// blocked For: the caller refuses everything from it until then, or until
// an owner lifts the block. MemoryBlocks keeps them for one node,
// RedisBlocks for every node sharing a Redis.

// BlockPolicy configures temporary blocks; WithDefaults gives zero fields
// DefaultBlock's.
type BlockPolicy struct {
	After  int           // strikes that block; negative disables blocking
	Window time.Duration // in which they count
	For    time.Duration // how long a block lasts
}

// DefaultBlock is what a zero BlockPolicy stands for: 10 strikes within a
// minute block a client for 5 minutes.
var DefaultBlock = BlockPolicy{After: 10, Window: time.Minute, For: 5 * time.Minute}

// WithDefaults fills what p leaves zero (Window and For also when
// negative) from DefaultBlock. A negative After stays: never block.
func (p BlockPolicy) WithDefaults() BlockPolicy {
	if p.After == 0 {
		p.After = DefaultBlock.After
	}
	if p.Window <= 0 {
		p.Window = DefaultBlock.Window
	}
	if p.For <= 0 {
		p.For = DefaultBlock.For
	}
	return p
}

// Block is one blocked client: "ip:<address or /64>" or a principal
// ("key:<key id>", "oidc:<issuer>#<subject>").
type Block struct {
	Client string    `json:"client"`
	Until  time.Time `json:"until"`
}

// maxTracked bounds the clients MemoryBlocks remembers.
const maxTracked = 100000

// MemoryBlocks keeps strikes and blocks in this process: bounded, per
// node. Its methods never fail.
type MemoryBlocks struct {
	pol BlockPolicy
	now func() time.Time

	mu      sync.Mutex
	strikes map[string][]time.Time // by client key: strike times within the window
	blocked map[string]time.Time   // by client key: until
}

// NewMemoryBlocks returns blocks under p (see WithDefaults) on clock now
// (nil: time.Now).
func NewMemoryBlocks(p BlockPolicy, now func() time.Time) *MemoryBlocks {
	if now == nil {
		now = time.Now
	}
	return &MemoryBlocks{pol: p.WithDefaults(), now: now, strikes: map[string][]time.Time{}, blocked: map[string]time.Time{}}
}

// Check reports how long client stays blocked (0: it is not).
func (b *MemoryBlocks) Check(_ context.Context, client string) (time.Duration, error) {
	if b.pol.After < 0 {
		return 0, nil
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.blocked[client]
	if !ok {
		return 0, nil
	}
	if left := until.Sub(now); left > 0 {
		return left, nil
	}
	delete(b.blocked, client)
	return 0, nil
}

// Strike records a strike against client and reports whether it is now
// blocked.
func (b *MemoryBlocks) Strike(_ context.Context, client string) (bool, error) {
	if b.pol.After < 0 {
		return false, nil
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.strikes) >= maxTracked {
		b.pruneLocked(now)
	}
	s := b.strikes[client]
	for len(s) > 0 && now.Sub(s[0]) >= b.pol.Window {
		s = s[1:]
	}
	s = append(s, now)
	if len(s) < b.pol.After {
		b.strikes[client] = s
		return false, nil
	}
	delete(b.strikes, client)
	b.blocked[client] = now.Add(b.pol.For)
	if len(b.blocked) > maxTracked {
		b.pruneLocked(now)
	}
	return true, nil
}

// pruneLocked forgets expired strikes and blocks; if that is not enough,
// all strikes (never blocks: they are what protects the server).
func (b *MemoryBlocks) pruneLocked(now time.Time) {
	for c, s := range b.strikes {
		if len(s) == 0 || now.Sub(s[len(s)-1]) >= b.pol.Window {
			delete(b.strikes, c)
		}
	}
	for c, until := range b.blocked {
		if !now.Before(until) {
			delete(b.blocked, c)
		}
	}
	if len(b.strikes) >= maxTracked {
		clear(b.strikes)
	}
}

// List returns the blocks in force, soonest to end first: those after
// after (nil: from the first), at most limit of them (0: all). It keeps
// no more than limit blocks while it looks through the clients.
func (b *MemoryBlocks) List(_ context.Context, after *Block, limit int) ([]Block, error) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []Block{}
	for c, until := range b.blocked {
		bl := Block{Client: c, Until: until.UTC()}
		if !now.Before(until) || after != nil && compareBlocks(bl, *after) <= 0 {
			continue
		}
		if limit <= 0 {
			out = append(out, bl)
			continue
		}
		// Keep out sorted and at most limit long: insert in place, and
		// drop the last when it is full.
		i, _ := slices.BinarySearchFunc(out, bl, compareBlocks)
		if i == limit {
			continue
		}
		if len(out) == limit {
			out = out[:limit-1]
		}
		out = slices.Insert(out, i, bl)
	}
	if limit <= 0 {
		sortBlocks(out)
	}
	return out, nil
}

// Lift ends client's block and forgets its strikes; it reports whether
// there was a block.
func (b *MemoryBlocks) Lift(_ context.Context, client string) (bool, error) {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.blocked[client]
	delete(b.blocked, client)
	delete(b.strikes, client)
	return ok && now.Before(until), nil
}

// compareBlocks orders blocks soonest to end first, then by client
// (bytewise, as Redis orders the members of one score).
func compareBlocks(x, y Block) int {
	if c := x.Until.Compare(y.Until); c != 0 {
		return c
	}
	return strings.Compare(x.Client, y.Client)
}

func sortBlocks(bs []Block) { slices.SortFunc(bs, compareBlocks) }
