package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// pending is an ask or relay this node awaits: the answers to the ask,
// and the relay's messages in a bounded queue.
type pending struct {
	// answers holds the nodes' answers. One per node; beyond its room
	// an answer is dropped, and the ask waits for its timeout instead.
	answers  chan *message
	ch       chan *message // relay messages
	once     sync.Once
	overflow chan struct{} // closed when a relay message found ch full, or the bus closed
}

// maxAnswers is the room for answers of one ask: the nodes of a cluster.
const maxAnswers = 256

func newPending(size int) *pending {
	return &pending{answers: make(chan *message, maxAnswers), ch: make(chan *message, size), overflow: make(chan struct{})}
}

// deliver queues m without blocking the bus. A relay message that finds
// the queue full (the relaying node broke the window) fails the request
// rather than be lost silently.
func (p *pending) deliver(m *message) {
	switch m.Op {
	case opNone, opHeld, opGone, opBusy:
		select {
		case p.answers <- m:
		default:
		}
		return
	}
	select {
	case p.ch <- m:
	default:
		p.fail()
	}
}

func (p *pending) fail() { p.once.Do(func() { close(p.overflow) }) }

func (b *Bus) register(size int) (string, *pending) {
	q := randomID()
	p := newPending(size)
	b.mu.Lock()
	b.pending[q] = p
	b.mu.Unlock()
	return q, p
}

func (b *Bus) unregister(q string) {
	b.mu.Lock()
	delete(b.pending, q)
	b.mu.Unlock()
}

// ask asks every node about m and waits for the one that holds it (the
// answer is returned) or for every node that heard it to say it does not
// (ErrNotHeld).
func (b *Bus) ask(ctx context.Context, q string, p *pending, m *message) (*message, error) {
	m.Q = q
	heard, err := b.publish(ctx, b.all, m)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(b.opt.AskTimeout)
	defer t.Stop()
	nones := map[string]bool{}
	for int64(len(nones)) < heard {
		select {
		case a := <-p.answers:
			switch a.Op {
			case opNone:
				nones[a.From] = true
			case opHeld, opGone, opBusy:
				return a, nil
			}
		case <-p.overflow:
			return nil, ErrClosed
		case <-t.C:
			b.opt.Log.Warn("cluster bus: not every node answered", "op", m.Op, "heard", heard, "answered", len(nones))
			return nil, ErrNotHeld
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, ErrNotHeld
}

// Cancel asks the node holding run id to cancel it on behalf of who, as
// a cancel on that node would. It returns ErrNotHeld when no node holds
// it; otherwise the run is stopped, or had ended already: the store
// tells which once the run's end is announced (WatchEnded).
func (b *Bus) Cancel(ctx context.Context, id, who string) error {
	if !validID(id) || len(who) > maxWho {
		return ErrNotHeld
	}
	q, p := b.register(0)
	defer b.unregister(q)
	a, err := b.ask(ctx, q, p, &message{Op: opCancel, Inv: id, Who: who})
	if err != nil {
		return err
	}
	if a.Op == opBusy {
		return ErrBusy
	}
	return nil
}

// Rejoin asks the node keeping stream id's events to relay those after
// after (all of them for -1). ErrNotHeld: no node keeps them; ErrGone:
// the node keeps only later ones. The Relay must be closed.
func (b *Bus) Rejoin(ctx context.Context, id string, after int) (*Relay, error) {
	if !validID(id) || after < -1 {
		return nil, ErrNotHeld
	}
	// Room for the window, the end and a few pings.
	q, p := b.register(b.opt.Window + 8)
	a, err := b.ask(ctx, q, p, &message{Op: opRejoin, Inv: id, After: after})
	if err == nil {
		switch a.Op {
		case opGone:
			err = ErrGone
		case opBusy:
			err = ErrBusy
		}
	}
	if err != nil {
		b.unregister(q)
		return nil, err
	}
	return &Relay{b: b, q: q, p: p, owner: a.From, after: after, next: 1}, nil
}

// Relay is a stream relayed from the node that keeps it.
type Relay struct {
	b     *Bus
	q     string
	p     *pending
	owner string
	after int // the last event delivered

	next          uint64 // the relay message expected next
	consumed      uint64
	acked         uint64
	bytesSinceAck int
	done          bool // Next returns no more
	ended         bool // the end frame came: the relaying node has stopped
}

// Errors that end a relay early. Either way the client can rejoin from
// the last event it has.
var (
	ErrLost    = errors.New("events were lost between the nodes")
	ErrSilent  = errors.New("the node relaying the stream stopped answering")
	ErrStopped = errors.New("the node relaying the stream ended the relay")
)

// Next returns the next event, or the end frame (end non-nil), waiting
// for them. Consuming acknowledges: a caller that stops calling Next
// makes the relaying node wait, and in the end give up.
func (r *Relay) Next(ctx context.Context) (ev Event, end *End, err error) {
	if r.done {
		return Event{}, nil, ErrStopped
	}
	if r.consumed > r.acked && (len(r.p.ch) == 0 || r.consumed-r.acked >= uint64(r.b.opt.Window/4) || r.bytesSinceAck >= r.b.opt.WindowBytes/4) {
		if _, err := r.b.publish(ctx, r.b.inboxOf(r.owner), &message{Op: opAck, Q: r.q, N: r.consumed}); err != nil {
			return r.fail(err)
		}
		r.acked, r.bytesSinceAck = r.consumed, 0
	}
	silent := time.NewTimer(3 * r.b.opt.Ping)
	defer silent.Stop()
	for {
		select {
		case m := <-r.p.ch:
			switch m.Op {
			case opPing:
				silent.Reset(3 * r.b.opt.Ping)
				continue
			case opFail:
				r.ended = true
				return r.fail(fmt.Errorf("%w: %s", ErrStopped, m.Data))
			case opEvent, opEnd:
			default:
				continue
			}
			if m.From != r.owner {
				continue
			}
			if m.N != r.next {
				return r.fail(fmt.Errorf("%w (message %d came after %d)", ErrLost, m.N, r.next-1))
			}
			r.next++
			r.consumed++
			r.bytesSinceAck += len(m.Data)
			if m.Op == opEnd {
				r.done, r.ended = true, true
				return Event{}, &End{Frame: []byte(m.Data), Error: m.Err}, nil
			}
			if m.Seq <= r.after {
				continue // already delivered: never repeat
			}
			r.after = m.Seq
			return Event{Seq: m.Seq, Content: m.Data}, nil, nil
		case <-r.p.overflow:
			if r.b.closed.Load() {
				return r.fail(ErrClosed)
			}
			return r.fail(fmt.Errorf("%w: the relaying node sent more than the window", ErrLost))
		case <-silent.C:
			return r.fail(ErrSilent)
		case <-ctx.Done():
			return Event{}, nil, ctx.Err()
		}
	}
}

func (r *Relay) fail(err error) (Event, *End, error) {
	r.done = true
	return Event{}, nil, err
}

// Close ends the relay; if it has not ended, the relaying node is told
// to stop.
func (r *Relay) Close() {
	r.b.unregister(r.q)
	r.done = true
	if !r.ended {
		r.ended = true
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, _ = r.b.publish(ctx, r.b.inboxOf(r.owner), &message{Op: opStop, Q: r.q})
	}
}
