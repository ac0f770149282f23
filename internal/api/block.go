package api

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/ratelimit"
)

// Temporary blocks. A client — an address (IPv6: its /64) that fails
// authentication, or a principal that keeps running into its rate limit
// — with After strikes within Window is refused for For: every request
// from it gets 429 with Retry-After before anything else runs. Owners
// list blocks and lift them early (/api/v1/blocks). Deps.Blocks keeps
// them: in memory on one node (ratelimit.MemoryBlocks, the default), or
// in Redis for every node sharing it (ratelimit.RedisBlocks).

// BlockPolicy configures temporary blocks; zero fields take
// DefaultBlock's.
type BlockPolicy = ratelimit.BlockPolicy

// Block is one blocked client (ratelimit.Block).
type Block = ratelimit.Block

// Blocks keeps strikes and blocks of client keys. An error means the
// state could not be read or written (Redis unreachable): the gateway
// then refuses the request with 503 (fail closed, as for the rate
// limiter), and a strike that cannot be recorded is logged.
type Blocks interface {
	// Check reports how long client stays blocked (0: it is not).
	Check(ctx context.Context, client string) (time.Duration, error)
	// Strike counts a strike against client and reports whether that
	// blocked it.
	Strike(ctx context.Context, client string) (bool, error)
	// List returns the blocks in force, soonest to end first: those
	// after after (nil: from the first), at most limit (0: all, as far as
	// the implementation lists them).
	List(ctx context.Context, after *Block, limit int) ([]Block, error)
	// Lift ends client's block and forgets its strikes; it reports
	// whether there was a block.
	Lift(ctx context.Context, client string) (bool, error)
}

// errBlocksUnavailable answers a request whose block cannot be checked.
func errBlocksUnavailable(err error) error {
	return &core.Error{Code: core.CodeUnavailable, Message: "client blocking is unavailable; retry shortly", Err: err}
}

// checkBlock refuses a blocked client (429), or any client when its
// block cannot be checked (503).
func (g *gateway) checkBlock(w http.ResponseWriter, r *http.Request, client string) error {
	left, err := g.block.Check(r.Context(), client)
	if err != nil {
		g.log.Error("cannot check client blocks; refusing the request", "err", err)
		return errBlocksUnavailable(err)
	}
	if left > 0 {
		return blockedError(w, left)
	}
	return nil
}

// strike counts a strike against client, and reports a block it causes.
func (g *gateway) strike(r *http.Request, client, reason string) {
	blocked, err := g.block.Strike(r.Context(), client)
	if err != nil {
		g.log.Error("cannot record a strike towards a client block", "client", client, "reason", reason, "err", err)
		return
	}
	if blocked {
		g.blocked(r, client, reason)
	}
}

// blockedError is the answer to a blocked client.
func blockedError(w http.ResponseWriter, left time.Duration) error {
	secs := int(math.Ceil(left.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	return core.Errorf(core.CodeRateLimited, "you are blocked for %d s after repeated authentication failures or rate-limit violations", secs)
}

// listBlocks lists one page of the blocks in force, soonest to end
// first (cursorParams).
func (h *opsHandlers) listBlocks(w http.ResponseWriter, r *http.Request) error {
	limit, c, err := cursorParams(r.URL.Query())
	if err != nil {
		return err
	}
	var after *Block
	if c != "" {
		if after, err = decodeBlockCursor(c); err != nil {
			return err
		}
	}
	blocks, err := h.block.List(r.Context(), after, limit+1)
	if err != nil {
		return errBlocksUnavailable(err)
	}
	body := map[string]any{}
	body["blocks"] = pageOf(body, blocks, limit, encodeBlockCursor)
	h.writeData(w, r, http.StatusOK, body)
	return nil
}

func (h *opsHandlers) liftBlock(w http.ResponseWriter, r *http.Request) error {
	client := r.PathValue("client")
	if !validClient(client) {
		return core.Errorf(core.CodeNotFound, "no block for that client")
	}
	lifted, err := h.block.Lift(r.Context(), client)
	if err != nil {
		return errBlocksUnavailable(err)
	}
	if !lifted {
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
