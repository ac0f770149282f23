package api

import (
	"math"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/runagent/runagent/internal/connlimit"
	"github.com/runagent/runagent/internal/core"
)

// Temporary blocks. A client address (IPv6: its /64) that fails
// authentication blockAfter times within blockWindow is refused for
// blockFor: every request gets 429 with Retry-After before anything else
// runs. Owners list blocks and lift them early (/api/v1/blocks). State is
// in memory, bounded, and per node.

// BlockPolicy configures temporary blocks; zero fields take the defaults.
type BlockPolicy struct {
	After  int           // failures that block; default 10; negative disables blocking
	Window time.Duration // in which they count; default 1 minute
	For    time.Duration // how long a block lasts; default 5 minutes
}

// maxTracked bounds the addresses the blocker remembers.
const maxTracked = 100000

type blocker struct {
	pol BlockPolicy
	now func() time.Time

	mu      sync.Mutex
	strikes map[netip.Addr][]time.Time // failure times within the window
	blocked map[netip.Addr]time.Time   // until
}

func newBlocker(p BlockPolicy, now func() time.Time) *blocker {
	if p.After == 0 {
		p.After = 10
	}
	if p.Window <= 0 {
		p.Window = time.Minute
	}
	if p.For <= 0 {
		p.For = 5 * time.Minute
	}
	return &blocker{pol: p, now: now, strikes: map[netip.Addr][]time.Time{}, blocked: map[netip.Addr]time.Time{}}
}

func clientAddr(r *http.Request) netip.Addr {
	ip, _ := netip.ParseAddr(clientIP(r))
	return connlimit.Group(ip)
}

// check reports how long r's client stays blocked (0: not blocked).
func (b *blocker) check(r *http.Request) time.Duration {
	if b.pol.After < 0 {
		return 0
	}
	ip := clientAddr(r)
	b.mu.Lock()
	defer b.mu.Unlock()
	until, ok := b.blocked[ip]
	if !ok {
		return 0
	}
	left := until.Sub(b.now())
	if left <= 0 {
		delete(b.blocked, ip)
		return 0
	}
	return left
}

// strike records a failure by r's client and reports whether it is now
// blocked.
func (b *blocker) strike(r *http.Request) bool {
	if b.pol.After < 0 {
		return false
	}
	ip := clientAddr(r)
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.strikes) >= maxTracked {
		b.pruneLocked(now)
	}
	s := b.strikes[ip]
	for len(s) > 0 && now.Sub(s[0]) >= b.pol.Window {
		s = s[1:]
	}
	s = append(s, now)
	if len(s) < b.pol.After {
		b.strikes[ip] = s
		return false
	}
	delete(b.strikes, ip)
	b.blocked[ip] = now.Add(b.pol.For)
	if len(b.blocked) > maxTracked {
		b.pruneLocked(now)
	}
	return true
}

// pruneLocked forgets expired strikes and blocks; if that is not enough,
// all strikes (never blocks: they are what protects the server).
func (b *blocker) pruneLocked(now time.Time) {
	for ip, s := range b.strikes {
		if len(s) == 0 || now.Sub(s[len(s)-1]) >= b.pol.Window {
			delete(b.strikes, ip)
		}
	}
	for ip, until := range b.blocked {
		if !now.Before(until) {
			delete(b.blocked, ip)
		}
	}
	if len(b.strikes) >= maxTracked {
		clear(b.strikes)
	}
}

// Block is one blocked client address.
type Block struct {
	Addr  string    `json:"addr"`
	Until time.Time `json:"until"`
}

func (b *blocker) list() []Block {
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []Block{}
	for ip, until := range b.blocked {
		if now.Before(until) {
			out = append(out, Block{Addr: ip.String(), Until: until.UTC()})
		}
	}
	slices.SortFunc(out, func(x, y Block) int { return x.Until.Compare(y.Until) })
	return out
}

func (b *blocker) lift(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = connlimit.Group(ip)
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.blocked[ip]
	delete(b.blocked, ip)
	delete(b.strikes, ip)
	return ok
}

// blockedError is the answer to a blocked client.
func blockedError(w http.ResponseWriter, left time.Duration) error {
	secs := int(math.Ceil(left.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return core.Errorf(core.CodeRateLimited, "your address is blocked for %d s after repeated authentication failures", secs)
}

func (a *API) listBlocks(w http.ResponseWriter, r *http.Request) error {
	a.writeData(w, r, http.StatusOK, map[string]any{"blocks": a.block.list()})
	return nil
}

func (a *API) liftBlock(w http.ResponseWriter, r *http.Request) error {
	addr := r.PathValue("addr")
	if !a.block.lift(addr) {
		return core.Errorf(core.CodeNotFound, "no block for %s", quoteAddr(addr))
	}
	a.log.Info("client block lifted", "event", "config_changed", "addr", addr, "by", callerOf(r))
	a.writeData(w, r, http.StatusOK, map[string]any{"addr": addr, "lifted": true})
	return nil
}

// quoteAddr quotes an address from a path if it parses, and stands in
// for it otherwise: nothing arbitrary is reflected.
func quoteAddr(s string) string {
	if _, err := netip.ParseAddr(s); err == nil {
		return strconv.Quote(s)
	}
	return "(malformed address)"
}
