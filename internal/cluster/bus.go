package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of asks.
var (
	// ErrNotHeld: no node that answered holds the run (or keeps the
	// stream).
	ErrNotHeld = errors.New("no node holds the invocation")
	// ErrGone: the node keeping the stream no longer has the events after
	// the point asked for.
	ErrGone = errors.New("the events after that point are no longer kept")
	// ErrBusy: the node holding it has as many relays as it serves.
	ErrBusy = errors.New("the node holding the invocation is too busy to relay it")
	// ErrClosed: the bus is closed.
	ErrClosed = errors.New("the cluster bus is closed")
)

// Event is one event of a stream.
type Event struct {
	Seq     int
	Content string
}

// End is a stream's terminal frame as JSON; Error tells an error frame
// from a status frame.
type End struct {
	Frame json.RawMessage
	Error bool
}

// Local is what the bus asks of this node's runs when another node asks.
type Local interface {
	// CancelRun stops run id on behalf of who, as a cancel on this node
	// does, and reports whether this node holds it (running or ended).
	CancelRun(id, who string) (held bool)
	// Stream checks that this node keeps stream id's events after after
	// (ErrNotHeld, ErrGone) and returns a function that sends them, as
	// they come, to ev and returns the end frame, until ctx ends or ev
	// fails.
	Stream(id string, after int) (follow func(ctx context.Context, ev func(Event) error) (End, error), err error)
}

// Options tune a Bus; zero fields take the defaults.
type Options struct {
	// Node names this node in messages; default a random id.
	Node string
	Log  *slog.Logger
	// MaxAge is the accepted clock difference: older (or later)
	// messages are replays. Default 30 s.
	MaxAge time.Duration
	// AskTimeout is how long an ask waits for the answers of the nodes
	// that heard it. Default 3 s.
	AskTimeout time.Duration
	// Window and WindowBytes bound a relay's unacknowledged messages.
	// Defaults 64 and 1 MiB.
	Window      int
	WindowBytes int
	// AckTimeout is how long a relay waits with a full window before it
	// ends for a requester that fell behind. Default 30 s.
	AckTimeout time.Duration
	// Ping is how often an idle relay says it is alive; a requester that
	// hears nothing for 3 pings ends it. Default 10 s.
	Ping time.Duration
	// MaxRelays caps the relays and cancels this node serves at once.
	// Default 1024.
	MaxRelays int
	// Now is the clock (tests inject one).
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Node == "" {
		o.Node = randomID()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * time.Second
	}
	if o.AskTimeout <= 0 {
		o.AskTimeout = 3 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 64
	}
	if o.WindowBytes <= 0 {
		o.WindowBytes = 1 << 20
	}
	if o.AckTimeout <= 0 {
		o.AckTimeout = 30 * time.Second
	}
	if o.Ping <= 0 {
		o.Ping = 10 * time.Second
	}
	if o.MaxRelays <= 0 {
		o.MaxRelays = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Stats counts what the bus refused.
type Stats struct {
	// Rejected counts messages dropped unread: forged, replayed, stale or
	// malformed.
	Rejected uint64
	// EndedDropped counts end announcements not sent (Redis down or too
	// many at once); waiters on other nodes learn of those ends by
	// polling the store.
	EndedDropped uint64
}

// Bus is this node's end of the bus.
type Bus struct {
	rc    *redis.Client
	key   []byte
	opt   Options
	all   string // every node listens
	inbox string // this node's channel
	pfx   string

	ps    *redis.PubSub
	ctr   atomic.Uint64
	guard replayGuard
	local atomic.Pointer[Local]
	up    atomic.Bool
	slots chan struct{} // relays and cancels served at once

	mu       sync.Mutex
	pending  map[string]*pending  // asks and relays this node awaits, by request
	relays   map[string]*outRelay // relays this node sends, by request
	watchers map[string]map[*watcher]struct{}

	ended    chan string
	rejected atomic.Uint64
	dropped  atomic.Uint64
	lastLog  atomic.Int64 // when a rejection was last logged (Unix ns)

	cancel context.CancelFunc
	quit   chan struct{} // closed by Close: relays end
	wg     sync.WaitGroup
	closed atomic.Bool
}

// Open joins the bus of the nodes that share key over rc, and returns
// once this node hears it. Close leaves it.
func Open(ctx context.Context, rc *redis.Client, key []byte, opt Options) (*Bus, error) {
	if len(key) < 16 {
		return nil, errors.New("cluster: the bus key is too short")
	}
	opt = opt.withDefaults()
	if !validID(opt.Node) {
		return nil, fmt.Errorf("cluster: node name %q: use letters, digits, '-', '_', '.' or ':' (at most %d)", opt.Node, maxID)
	}
	// Channel names come from the key: stores that share a Redis have
	// buses of their own, and the names give nothing of the key away.
	tag := hmac.New(sha256.New, key)
	tag.Write([]byte("runagent cluster channel"))
	pfx := "runagent:cluster:" + hex.EncodeToString(tag.Sum(nil)[:8]) + ":"
	b := &Bus{
		rc: rc, key: append([]byte(nil), key...), opt: opt, pfx: pfx,
		all: pfx + "all", inbox: pfx + "node:" + opt.Node,
		guard:    replayGuard{maxAge: opt.MaxAge},
		slots:    make(chan struct{}, opt.MaxRelays),
		pending:  map[string]*pending{},
		relays:   map[string]*outRelay{},
		watchers: map[string]map[*watcher]struct{}{},
		ended:    make(chan string, 4096),
		quit:     make(chan struct{}),
	}
	b.ps = rc.Subscribe(ctx, b.all, b.inbox)
	// Both subscriptions are confirmed before Open returns, so an ask
	// made right after is heard.
	for confirmed := 0; confirmed < 2; {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := b.ps.Receive(sctx)
		cancel()
		if err != nil {
			b.ps.Close()
			return nil, fmt.Errorf("cluster: subscribe in Redis: %w", err)
		}
		if _, ok := msg.(*redis.Subscription); ok {
			confirmed++
		}
	}
	b.up.Store(true)
	lctx, cancel := context.WithCancel(context.Background())
	b.cancel = cancel
	b.wg.Add(2)
	go b.receive(lctx)
	go b.announce(lctx)
	return b, nil
}

// Node is this node's name on the bus.
func (b *Bus) Node() string { return b.opt.Node }

// Attach makes the bus answer other nodes' asks about this node's runs
// from l. Until then it answers that it holds nothing.
func (b *Bus) Attach(l Local) { b.local.Store(&l) }

// Connected reports whether the bus currently hears Redis.
func (b *Bus) Connected() bool { return b.up.Load() }

// Stats returns what the bus has refused.
func (b *Bus) Stats() Stats {
	return Stats{Rejected: b.rejected.Load(), EndedDropped: b.dropped.Load()}
}

// Close leaves the bus: asks and relays in progress end.
func (b *Bus) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.cancel()
	close(b.quit)
	b.mu.Lock()
	for _, p := range b.pending {
		p.fail()
	}
	b.mu.Unlock()
	err := b.ps.Close()
	b.wg.Wait()
	return err
}

// receive reads the subscription until the bus closes. go-redis
// re-subscribes after a lost connection; what was published meanwhile is
// lost, which relays detect by their numbers and waiters cover by
// polling the store.
func (b *Bus) receive(ctx context.Context) {
	defer b.wg.Done()
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		msg, err := b.ps.ReceiveTimeout(ctx, b.opt.Ping)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				// Quiet: check the connection is still there.
				if err := b.ps.Ping(ctx); err != nil {
					b.setUp(false, err)
				}
				continue
			}
			b.setUp(false, err)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		b.setUp(true, nil)
		if m, ok := msg.(*redis.Message); ok {
			b.handle(m.Channel, []byte(m.Payload))
		}
	}
}

func (b *Bus) setUp(up bool, err error) {
	if b.up.Swap(up) != up {
		if up {
			b.opt.Log.Info("cluster bus: connected to Redis again")
		} else {
			b.opt.Log.Warn("cluster bus: lost Redis; waiters poll the store until it is back", "err", err)
		}
	}
}

// handle acts on one message from channel.
func (b *Bus) handle(channel string, wire []byte) {
	m, err := b.open(channel, wire)
	if err != nil {
		b.reject(channel, err)
		return
	}
	switch {
	case channel == b.all && (m.Op == opCancel || m.Op == opRejoin):
		if m.Q == "" || m.Inv == "" {
			b.reject(channel, errors.New("an ask without its request or invocation"))
			return
		}
		b.serve(m)
	case channel == b.all && m.Op == opEnded:
		b.notifyEnded(m.Inv)
	case channel == b.inbox && (m.Op == opAck || m.Op == opStop):
		b.mu.Lock()
		r := b.relays[m.Q]
		b.mu.Unlock()
		if r == nil || r.to != m.From {
			return // ended already, or not the requester's
		}
		if m.Op == opStop {
			r.halt()
		} else {
			r.ack(m.N)
		}
	case channel == b.inbox:
		b.mu.Lock()
		p := b.pending[m.Q]
		b.mu.Unlock()
		if p != nil {
			p.deliver(m)
		}
	default:
		b.reject(channel, fmt.Errorf("operation %q on the wrong channel", m.Op))
	}
}

// open checks a message's signature, form, age and novelty.
func (b *Bus) open(channel string, wire []byte) (*message, error) {
	body, err := unseal(b.key, channel, wire)
	if err != nil {
		return nil, err
	}
	m, err := parseMessage(body)
	if err != nil {
		return nil, err
	}
	if err := b.guard.check(m, b.opt.Now()); err != nil {
		return nil, err
	}
	return m, nil
}

// reject counts a refused message and logs it, at most once a second
// (the count says how many).
func (b *Bus) reject(channel string, err error) {
	n := b.rejected.Add(1)
	now := time.Now().UnixNano()
	last := b.lastLog.Load()
	if now-last < int64(time.Second) || !b.lastLog.CompareAndSwap(last, now) {
		return
	}
	b.opt.Log.Warn("cluster bus: dropped a message that is forged, replayed, stale or malformed; check that only this store's nodes share the Redis",
		"channel", channel, "reason", err.Error(), "rejected_total", n)
}

// publish signs m as this node's next message and publishes it on
// channel; it returns how many subscribers heard it.
func (b *Bus) publish(ctx context.Context, channel string, m *message) (int64, error) {
	if b.closed.Load() {
		return 0, ErrClosed
	}
	m.V, m.From, m.Ctr, m.T = 1, b.opt.Node, b.ctr.Add(1), b.opt.Now().UnixNano()
	body, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	n, err := b.rc.Publish(ctx, channel, seal(b.key, channel, body)).Result()
	if err != nil {
		return 0, fmt.Errorf("publish to the cluster bus: %w", err)
	}
	return n, nil
}

// inboxOf is node's channel.
func (b *Bus) inboxOf(node string) string { return b.pfx + "node:" + node }

// reply answers ask m.
func (b *Bus) reply(ctx context.Context, m *message, op string) {
	if _, err := b.publish(ctx, b.inboxOf(m.From), &message{Op: op, Q: m.Q}); err != nil {
		b.opt.Log.Warn("cluster bus: answering a node", "op", m.Op, "err", err)
	}
}

// serve answers another node's ask (or this node's own: it answers
// "none", as it holds nothing the asker did not find itself).
func (b *Bus) serve(m *message) {
	select {
	case b.slots <- struct{}{}:
	default:
		go b.reply(context.Background(), m, opBusy)
		return
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), b.opt.AskTimeout)
		defer cancel()
		lp := b.local.Load()
		if lp == nil {
			b.reply(ctx, m, opNone)
			return
		}
		local := *lp
		switch m.Op {
		case opCancel:
			if local.CancelRun(m.Inv, m.Who) {
				b.reply(ctx, m, opHeld)
			} else {
				b.reply(ctx, m, opNone)
			}
		case opRejoin:
			follow, err := local.Stream(m.Inv, m.After)
			switch {
			case errors.Is(err, ErrGone):
				b.reply(ctx, m, opGone)
			case err != nil:
				b.reply(ctx, m, opNone)
			default:
				b.relay(m, follow)
			}
		}
	}()
}

// randomID is 16 random bytes in hex.
func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
