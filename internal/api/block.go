package api

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/core"
)

// Temporary blocks. A client — an address (IPv6: its /64) that fails
// authentication, or a principal that keeps running into its rate limit
// — with After strikes within Window is refused for For: every request
// from it gets 429 with Retry-After before anything else runs. Owners
// list blocks and lift them early (/api/v1/blocks). State is in memory,
// bounded, and per node.

// BlockPolicy configures temporary blocks; New gives zero fields
// DefaultBlock's.
type BlockPolicy struct {
	After  int           // strikes that block; negative disables blocking
	Window time.Duration // in which they count
	For    time.Duration // how long a block lasts
}

// maxTracked bounds the clients the blocker remembers.
const maxTracked = 100000

type blocker struct {
	pol BlockPolicy
	now func() time.Time

	mu      sync.Mutex
	strikes map[string][]time.Time // by client key: strike times within the window
	blocked map[string]time.Time   // by client key: until
}

func newBlocker(p BlockPolicy, now func() time.Time) *blocker {
	return &blocker{pol: p, now: now, strikes: map[string][]time.Time{}, blocked: map[string]time.Time{}}
}

// check reports how long the first blocked of clients stays blocked (0:
// none is).
func (b *blocker) check(clients ...string) time.Duration {
	if b.pol.After < 0 {
		return 0
	}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, c := range clients {
		until, ok := b.blocked[c]
		if !ok {
			continue
		}
		if left := until.Sub(now); left > 0 {
			return left
		}
		delete(b.blocked, c)
	}
	return 0
}

// strike records a strike against client and reports whether it is now
// blocked.
func (b *blocker) strike(client string) bool {
	if b.pol.After < 0 {
		return false
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
		return false
	}
	delete(b.strikes, client)
	b.blocked[client] = now.Add(b.pol.For)
	if len(b.blocked) > maxTracked {
		b.pruneLocked(now)
	}
	return true
}

// pruneLocked forgets expired strikes and blocks; if that is not enough,
// all strikes (never blocks: they are what protects the server).
func (b *blocker) pruneLocked(now time.Time) {
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

// Block is one blocked client: "ip:<address or /64>" or a principal
// ("key:<key id>", "oidc:<issuer>#<subject>").
type Block struct {
	Client string    `json:"client"`
	Until  time.Time `json:"until"`
}

func (b *blocker) list() []Block {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []Block{}
	for c, until := range b.blocked {
		if now.Before(until) {
			out = append(out, Block{Client: c, Until: until.UTC()})
		}
	}
	slices.SortFunc(out, func(x, y Block) int { return x.Until.Compare(y.Until) })
	return out
}

func (b *blocker) lift(client string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.blocked[client]
	delete(b.blocked, client)
	delete(b.strikes, client)
	return ok
}

// blockedError is the answer to a blocked client.
func blockedError(w http.ResponseWriter, left time.Duration) error {
	secs := int(math.Ceil(left.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return core.Errorf(core.CodeRateLimited, "you are blocked for %d s after repeated authentication failures or rate-limit violations", secs)
}

func (h *opsHandlers) listBlocks(w http.ResponseWriter, r *http.Request) error {
	h.writeData(w, r, http.StatusOK, map[string]any{"blocks": h.block.list()})
	return nil
}

func (h *opsHandlers) liftBlock(w http.ResponseWriter, r *http.Request) error {
	client := r.PathValue("client")
	if !validClient(client) || !h.block.lift(client) {
		return core.Errorf(core.CodeNotFound, "no block for that client")
	}
	h.emit(r, core.SecurityEvent{Type: core.EventConfigChanged, Message: "client block lifted", Details: map[string]string{"client": client}})
	h.writeData(w, r, http.StatusOK, map[string]any{"client": client, "lifted": true})
	return nil
}

// validClient accepts the client keys blocks use.
func validClient(s string) bool {
	if len(s) > 300 || !strings.ContainsRune(s, ':') {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool { return r < 0x21 || r == 0x7f })
}
