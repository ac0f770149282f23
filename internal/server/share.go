package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/runagent/runagent/internal/api"
	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/keyring"
	"github.com/runagent/runagent/internal/ratelimit"
)

// Several nodes sharing one store (PostgreSQL, --store) and one Redis
// (--redis-url) agree on three things besides rate limits and caps
// (limits.go):
//
//   - Temporary blocks live in Redis (ratelimit.RedisBlocks): a client
//     blocked on one node is blocked on all, and a lift anywhere lifts it
//     everywhere. Without Redis they are per node.
//   - An agent's current version. With a shared store the registry reads
//     the agent's row for every run (registry.Shared: one read by primary
//     key) and loads the version the store names, so once a deploy or
//     rollback has answered on any node no node starts a run of the
//     version it replaced, and a deleted agent stops everywhere. The
//     deploying node also publishes a notice on Redis, and the others
//     unpack the new version and build its environment in the background,
//     so that their first run of it does not wait for that.
//   - Data keys. A rotation is published on Redis, and every node reloads
//     its keyring; a node that missed the notice reloads when it meets a
//     value sealed with a key it does not know (at most once a second) and
//     every keyringPoll in any case. So every node seals with the new key
//     within keyringPoll of the rotation, in practice within a Redis
//     round trip.
//
// Notices are hints: a lost one (Redis down, a node restarting) costs
// only the background preparation, never correctness, which rests on the
// store.

// shareChannel is the Redis pub/sub channel of notices between nodes.
const shareChannel = "runagent:share"

// keyringPoll is how often a node on a shared store reloads its keyring
// without a notice: the bound on how long it may seal with a data key
// another node has replaced.
const keyringPoll = 10 * time.Second

// unknownKeyReload is the least time between two keyring reloads for
// values sealed with an unknown data key.
const unknownKeyReload = time.Second

// maxNotice bounds a notice's size on the wire.
const maxNotice = 1024

// notice is one message on shareChannel.
type notice struct {
	// Node is the sender's node id; a node ignores its own notices.
	Node string `json:"node"`
	// Kind is noticeAgent or noticeKeyring.
	Kind string `json:"kind"`
	// AgentID and Version: the version that became current.
	AgentID string `json:"agent_id,omitempty"`
	Version string `json:"version,omitempty"`
}

const (
	noticeAgent   = "agent"   // an agent's current version changed
	noticeKeyring = "keyring" // a data key was rotated
)

// decodeNotice parses and checks a notice from Redis, which any client
// of it can publish to: a notice of another shape is an error.
func decodeNotice(b []byte) (notice, error) {
	var n notice
	if len(b) > maxNotice {
		return n, fmt.Errorf("notice of %d bytes is longer than %d", len(b), maxNotice)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&n); err != nil {
		return notice{}, errors.New("notice is not a JSON object of the known fields")
	}
	if d.More() {
		return notice{}, errors.New("notice has data after its object")
	}
	if !validToken(n.Node, 32) {
		return notice{}, errors.New("notice has no valid node id")
	}
	switch n.Kind {
	case noticeAgent:
		if !validToken(n.AgentID, 64) || !validHash(n.Version) {
			return notice{}, errors.New("agent notice without a valid agent id and version")
		}
	case noticeKeyring:
		if n.AgentID != "" || n.Version != "" {
			return notice{}, errors.New("keyring notice with agent fields")
		}
	default:
		return notice{}, errors.New("notice of an unknown kind")
	}
	return n, nil
}

// validToken accepts 1 to max letters, digits, '-' and '_' (agent ids,
// node ids).
func validToken(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	return !strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
	})
}

// validHash accepts a version hash: "sha256:" and 64 lower-case hex
// digits.
func validHash(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// sharing is this node's part in the above.
type sharing struct {
	node string
	log  *slog.Logger
	rdb  *redis.Client // nil: no Redis

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// openSharing sets up what cfg's shared store and Redis (rc, nil
// without) call for (see above) and changes deps to use it; the closer
// stops it. With neither, it changes nothing.
func (s *Server) openSharing(ctx context.Context, cfg Config, rc *redis.Client, deps *api.Deps) (func(), error) {
	shared := cfg.StoreURL != ""
	if !shared && rc == nil {
		return func() {}, nil
	}
	id := make([]byte, 8)
	rand.Read(id)
	sh := &sharing{node: hex.EncodeToString(id), log: s.log.With("component", "sharing"), rdb: rc}
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	sh.cancel = cancel
	closer := func() {
		cancel()
		sh.wg.Wait()
	}
	if rc != nil {
		deps.Blocks = ratelimit.NewRedisBlocks(rc, cfg.Block, ratelimit.RedisBlocksOptions{})
	}
	if !shared {
		return closer, nil
	}
	s.reg.Shared = true
	if s.keyring != nil {
		s.keyring.ReloadOnUnknown(unknownKeyReload)
		sh.wg.Go(func() { sh.pollKeyring(bctx, s.keyring) })
	}
	if sh.rdb == nil {
		return closer, nil
	}
	// Subscribe before the first deploy can be announced: a notice
	// published meanwhile by another node is not lost.
	sub := sh.rdb.Subscribe(ctx, shareChannel)
	if _, err := sub.Receive(ctx); err != nil {
		sub.Close()
		closer()
		return nil, fmt.Errorf("--redis-url: subscribe to %s: %w", shareChannel, err)
	}
	refresh := make(chan string, 64)
	sh.wg.Go(func() { sh.listen(bctx, sub, refresh, s.keyring) })
	sh.wg.Go(func() { s.refreshAgents(bctx, sh, refresh) })
	s.reg.Changed = func(agentID, hash string) {
		sh.publish(bctx, notice{Kind: noticeAgent, AgentID: agentID, Version: hash})
	}
	if s.keyring != nil {
		deps.Keyring = announcingKeyring{Keyring: s.keyring, announce: func() { sh.publish(bctx, notice{Kind: noticeKeyring}) }}
	}
	return closer, nil
}

// publish sends n to the other nodes, in the background (its callers
// have answered or are answering a request); a failure is logged: the
// others find the change in the store anyway.
func (sh *sharing) publish(ctx context.Context, n notice) {
	n.Node = sh.node
	b, err := json.Marshal(n)
	if err != nil {
		sh.log.Error("encode a notice", "err", err)
		return
	}
	sh.wg.Go(func() {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := sh.rdb.Publish(pctx, shareChannel, b).Err(); err != nil {
			sh.log.Warn("cannot tell the other nodes of a change (they find it in the store at their next run)", "kind", n.Kind, "err", err)
		}
	})
}

// listen handles the other nodes' notices until ctx ends: agents to
// refresh go to refresh (dropped when it is full: the next run loads
// them anyway), keyring notices reload kr.
func (sh *sharing) listen(ctx context.Context, sub *redis.PubSub, refresh chan<- string, kr *keyring.Keyring) {
	defer sub.Close()
	ch := sub.Channel()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			n, err := decodeNotice([]byte(m.Payload))
			if err != nil {
				sh.log.Warn("ignored a malformed notice on Redis", "channel", shareChannel, "err", err)
				continue
			}
			if n.Node == sh.node {
				continue
			}
			switch n.Kind {
			case noticeAgent:
				select {
				case refresh <- n.AgentID:
				default:
				}
			case noticeKeyring:
				if kr != nil {
					sh.reloadKeyring(ctx, kr)
				}
			}
		}
	}
}

// refreshAgents gets the agents another node changed ready on this one
// (code unpacked, environment built), one at a time, and stops serving
// the ones that are gone.
func (s *Server) refreshAgents(ctx context.Context, sh *sharing, refresh <-chan string) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-refresh:
			d, err := s.reg.Refresh(ctx, id)
			switch {
			case errors.Is(err, core.ErrNotFound):
				if d != nil {
					s.exec.Evict(d.Dir)
				}
			case err != nil:
				sh.log.Warn("cannot prepare an agent version deployed on another node (its first run here will try again)", "agent_id", id, "err", err)
			default:
				sh.log.Info("agent version deployed on another node is ready", "agent_id", id, "version", d.Hash)
			}
		}
	}
}

// pollKeyring reloads kr every keyringPoll until ctx ends.
func (sh *sharing) pollKeyring(ctx context.Context, kr *keyring.Keyring) {
	t := time.NewTicker(keyringPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sh.reloadKeyring(ctx, kr)
		}
	}
}

// reloadKeyring reloads kr and says what became of it. A master key
// rotated elsewhere is an error this node cannot mend: it keeps the keys
// it has (nothing it seals is lost) and asks, loudly, to be restarted
// with the new master key.
func (sh *sharing) reloadKeyring(ctx context.Context, kr *keyring.Keyring) {
	before := kr.ActiveKeyID()
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := kr.Reload(rctx)
	switch {
	case errors.Is(err, keyring.ErrWrongMasterKey):
		sh.log.Error("the master key was rotated on another node: restart this node with the new master key; until then it cannot open data sealed with the new data keys nor rotate keys", "err", err)
	case err != nil && ctx.Err() == nil:
		sh.log.Warn("cannot reload the keyring", "err", err)
	case err == nil && kr.ActiveKeyID() != before:
		sh.log.Info("data key rotated on another node; sealing with the new one", "active_data_key_id", kr.ActiveKeyID())
	}
}

// announcingKeyring tells the other nodes of a data key rotation made
// through this node's API.
type announcingKeyring struct {
	*keyring.Keyring
	announce func()
}

func (k announcingKeyring) RotateDataKey(ctx context.Context) (uint32, error) {
	id, err := k.Keyring.RotateDataKey(ctx)
	if err == nil {
		k.announce()
	}
	return id, err
}
