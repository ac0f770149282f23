package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// outRelay is a relay this node sends: its requester's acknowledgements
// and stop.
type outRelay struct {
	to     string // the requesting node
	acked  atomic.Uint64
	acks   chan struct{} // signalled on each ack (capacity 1)
	stop   chan struct{}
	stopMu sync.Once
}

func (r *outRelay) ack(n uint64) {
	for {
		old := r.acked.Load()
		if n <= old || r.acked.CompareAndSwap(old, n) {
			break
		}
	}
	select {
	case r.acks <- struct{}{}:
	default:
	}
}

func (r *outRelay) halt() { r.stopMu.Do(func() { close(r.stop) }) }

// errRequesterGone: nobody listens on the requester's channel any more.
var errRequesterGone = errors.New("the requesting node has gone")

// errTooLarge: an event is larger than a message may carry.
var errTooLarge = fmt.Errorf("an event of the stream is over the %d bytes the cluster bus carries", maxData)

// errFellBehind: the requester did not acknowledge within AckTimeout.
var errFellBehind = errors.New("the client fell behind the stream relayed from another node")

// relay answers ask m (held) and sends the stream follow gives, flow
// controlled, until its end, the requester stops or goes, or the bus
// closes.
func (b *Bus) relay(m *message, follow func(context.Context, func(Event) error) (End, error)) {
	out := &outRelay{to: m.From, acks: make(chan struct{}, 1), stop: make(chan struct{})}
	b.mu.Lock()
	b.relays[m.Q] = out
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.relays, m.Q)
		b.mu.Unlock()
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-out.stop:
			cancel()
		case <-b.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	to := b.inboxOf(m.From)

	var (
		mu       sync.Mutex // orders numbered sends
		n        uint64     // messages sent
		sizes    []int      // sizes of the unacknowledged ones, oldest first
		inFlight int
		lastSent atomic.Int64
	)
	// send publishes one numbered message once the window has room.
	send := func(rm *message) error {
		mu.Lock()
		defer mu.Unlock()
		var timer *time.Timer
		for {
			acked := min(out.acked.Load(), n)
			for uint64(len(sizes)) > n-acked { // drop what was acknowledged
				inFlight -= sizes[0]
				sizes = sizes[1:]
			}
			room := len(sizes) == 0 || (len(sizes) < b.opt.Window && inFlight+len(rm.Data) <= b.opt.WindowBytes)
			if room {
				break
			}
			if timer == nil {
				timer = time.NewTimer(b.opt.AckTimeout)
				defer timer.Stop()
			}
			select {
			case <-out.acks:
			case <-timer.C:
				return errFellBehind
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		n++
		rm.Q, rm.N = m.Q, n
		heard, err := b.publish(ctx, to, rm)
		if err != nil {
			return err
		}
		if heard == 0 {
			return errRequesterGone
		}
		sizes = append(sizes, len(rm.Data))
		inFlight += len(rm.Data)
		lastSent.Store(time.Now().UnixNano())
		return nil
	}

	// The answer goes first: the requester waits for it.
	heard, err := b.publish(ctx, to, &message{Op: opHeld, Q: m.Q})
	if err != nil || heard == 0 {
		return
	}
	lastSent.Store(time.Now().UnixNano())
	// Pings while idle: the requester knows the relay is alive, and this
	// side learns when the requesting node has gone.
	go func() {
		t := time.NewTicker(b.opt.Ping)
		defer t.Stop()
		for {
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
			if time.Since(time.Unix(0, lastSent.Load())) < b.opt.Ping {
				continue
			}
			heard, err := b.publish(ctx, to, &message{Op: opPing, Q: m.Q})
			if err == nil && heard == 0 {
				cancel()
				return
			}
		}
	}()
	end, err := follow(ctx, func(ev Event) error {
		if len(ev.Content) > maxData {
			return errTooLarge
		}
		return send(&message{Op: opEvent, Seq: ev.Seq, Data: ev.Content})
	})
	switch {
	case err == nil:
		err = send(&message{Op: opEnd, Data: string(end.Frame), Err: end.Error})
		if err == nil {
			return
		}
	case ctx.Err() != nil, errors.Is(err, errRequesterGone):
		return // the requester stopped or went: nobody to tell
	}
	b.opt.Log.Info("cluster bus: a stream relay ended early", "invocation_id", m.Inv, "err", err)
	fctx, fcancel := context.WithTimeout(context.Background(), time.Second)
	defer fcancel()
	_, _ = b.publish(fctx, to, &message{Op: opFail, Q: m.Q, Data: failText(err)})
}

// failText is what a requester is told of a relay that stopped.
func failText(err error) string {
	if errors.Is(err, errFellBehind) || errors.Is(err, errTooLarge) {
		return err.Error()
	}
	return "the relaying node could not go on"
}

// EndFrame returns v (a stream's terminal frame) as an End.
func EndFrame(v any, isError bool) (End, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return End{}, fmt.Errorf("cluster: encode an end frame: %w", err)
	}
	return End{Frame: b, Error: isError}, nil
}

// Ended announces to every node that run id has ended (its record in the
// store is final). It does not wait: the announcement is dropped if Redis
// is down or too many are queued, and waiters fall back on the store.
func (b *Bus) Ended(id string) {
	if !validID(id) || b.closed.Load() {
		return
	}
	select {
	case b.ended <- id:
	default:
		b.dropped.Add(1)
	}
}

func (b *Bus) announce(ctx context.Context) {
	defer b.wg.Done()
	for {
		select {
		case id := <-b.ended:
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			if _, err := b.publish(pctx, b.all, &message{Op: opEnded, Inv: id}); err != nil {
				b.dropped.Add(1)
			}
			cancel()
		case <-ctx.Done():
			return
		}
	}
}

type watcher struct{ ch chan struct{} }

// WatchEnded returns a channel closed when some node announces that run
// id has ended. Announcements can be lost (Redis down): a waiter also
// reads the store now and then. stop must be called.
func (b *Bus) WatchEnded(id string) (ended <-chan struct{}, stop func()) {
	w := &watcher{ch: make(chan struct{})}
	b.mu.Lock()
	ws := b.watchers[id]
	if ws == nil {
		ws = map[*watcher]struct{}{}
		b.watchers[id] = ws
	}
	ws[w] = struct{}{}
	b.mu.Unlock()
	return w.ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if ws := b.watchers[id]; ws != nil {
			delete(ws, w)
			if len(ws) == 0 {
				delete(b.watchers, id)
			}
		}
	}
}

func (b *Bus) notifyEnded(id string) {
	b.mu.Lock()
	ws := b.watchers[id]
	delete(b.watchers, id)
	b.mu.Unlock()
	for w := range ws {
		close(w.ch)
	}
}
