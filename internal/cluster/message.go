package cluster

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Operations carried by messages.
const (
	// Asks, to every node.
	opCancel = "cancel" // stop run Inv on behalf of Who
	opRejoin = "rejoin" // relay stream Inv's events after After
	// Announcements, to every node.
	opEnded = "ended" // run Inv has ended (its record is final)
	// Answers, to the asker's channel.
	opNone = "none" // not here
	opHeld = "held" // here: cancelled, or the relay follows
	opGone = "gone" // here, but the events after After are no longer kept
	opBusy = "busy" // here or not, this node cannot serve more now
	// A relay, to the asker's channel.
	opEvent = "ev"   // one event: Seq, Data
	opEnd   = "end"  // the end frame: Data, Err
	opFail  = "fail" // the relay stopped: Data says why
	opPing  = "ping" // the relay is alive, nothing new
	// Back to the relaying node.
	opAck  = "ack"  // the requester has consumed N messages
	opStop = "stop" // the requester has gone
)

// Bounds of what a message may hold.
const (
	macSize    = sha256.Size
	maxID      = 128     // node, request and invocation ids
	maxWho     = 512     // who cancelled
	maxData    = 8 << 20 // one event, or an end frame
	maxMessage = maxData + 4096
)

// message is one signed message on the bus. Fields not used by an Op are
// empty.
type message struct {
	V    int    `json:"v"`
	From string `json:"from"` // sending node
	Ctr  uint64 `json:"ctr"`  // the sender's counter: never repeats
	T    int64  `json:"t"`    // sent at, Unix nanoseconds
	Op   string `json:"op"`

	Q     string `json:"q,omitempty"` // the request an answer or relay belongs to
	Inv   string `json:"inv,omitempty"`
	Who   string `json:"who,omitempty"`
	After int    `json:"after,omitempty"`
	N     uint64 `json:"n,omitempty"` // relay message number, from 1; acks: consumed
	Seq   int    `json:"seq,omitempty"`
	Data  string `json:"data,omitempty"`
	Err   bool   `json:"err,omitempty"` // an end frame that is an error frame
}

var knownOps = map[string]bool{
	opCancel: true, opRejoin: true, opEnded: true, opNone: true, opHeld: true, opGone: true, opBusy: true,
	opEvent: true, opEnd: true, opFail: true, opPing: true, opAck: true, opStop: true,
}

// Why a message is refused.
var (
	errShort    = errors.New("shorter than a signature")
	errBadMAC   = errors.New("bad signature")
	errStale    = errors.New("timestamp outside the accepted window")
	errReplayed = errors.New("replayed")
)

// macOf signs body as published on channel.
func macOf(key []byte, channel string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("runagent cluster bus v1\n"))
	m.Write([]byte(channel))
	m.Write([]byte{'\n'})
	m.Write(body)
	return m.Sum(nil)
}

// seal returns the wire form of body published on channel: its MAC, then
// the body.
func seal(key []byte, channel string, body []byte) []byte {
	out := make([]byte, 0, macSize+len(body))
	out = append(out, macOf(key, channel, body)...)
	return append(out, body...)
}

// unseal checks wire's signature for channel and returns the body.
func unseal(key []byte, channel string, wire []byte) ([]byte, error) {
	if len(wire) < macSize {
		return nil, errShort
	}
	body := wire[macSize:]
	if !hmac.Equal(wire[:macSize], macOf(key, channel, body)) {
		return nil, errBadMAC
	}
	return body, nil
}

// parseMessage decodes and checks a signed body. It trusts nothing of it
// beyond the signature: sizes, ids and the operation are checked here.
func parseMessage(body []byte) (*message, error) {
	if len(body) > maxMessage {
		return nil, fmt.Errorf("message of %d bytes is over the limit of %d", len(body), maxMessage)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	var m message
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("malformed message: %w", err)
	}
	if d.More() {
		return nil, errors.New("malformed message: data after the object")
	}
	switch {
	case m.V != 1:
		return nil, fmt.Errorf("message version %d is not 1", m.V)
	case !knownOps[m.Op]:
		return nil, errors.New("unknown operation")
	case !validID(m.From):
		return nil, errors.New("bad sender id")
	case m.Ctr == 0:
		return nil, errors.New("counter 0")
	case m.Q != "" && !validID(m.Q), m.Inv != "" && !validID(m.Inv):
		return nil, errors.New("bad request or invocation id")
	case len(m.Who) > maxWho || len(m.Data) > maxData:
		return nil, errors.New("field over its size limit")
	case m.After < -1 || m.Seq < 0:
		return nil, errors.New("negative event number")
	}
	return &m, nil
}

// validID accepts the ids the bus uses: 1 to maxID letters, digits, '-',
// '_', '.' and ':'.
func validID(s string) bool {
	if s == "" || len(s) > maxID {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// replayWindow is how many recent counters of one sender are remembered;
// an older counter is refused. Messages of one sender may arrive out of
// order (it publishes on several connections), but not by this many.
const replayWindow = 4096

// replayGuard refuses messages outside the time window and counters seen
// before. Its memory is one window per sender heard within 3×maxAge.
type replayGuard struct {
	maxAge time.Duration

	mu      sync.Mutex
	senders map[string]*counterWindow
	swept   time.Time
}

type counterWindow struct {
	high uint64 // the highest counter seen
	bits [replayWindow / 64]uint64
	seen time.Time
}

// check accepts m at now once: it refuses a timestamp more than maxAge
// away from now, and a counter seen before or too far behind the
// sender's newest.
func (g *replayGuard) check(m *message, now time.Time) error {
	t := time.Unix(0, m.T)
	if d := now.Sub(t); d > g.maxAge || d < -g.maxAge {
		return errStale
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.senders == nil {
		g.senders = map[string]*counterWindow{}
	}
	if now.Sub(g.swept) > g.maxAge {
		// A sender silent this long can replay nothing still fresh.
		for k, w := range g.senders {
			if now.Sub(w.seen) > 3*g.maxAge {
				delete(g.senders, k)
			}
		}
		g.swept = now
	}
	w := g.senders[m.From]
	if w == nil {
		w = &counterWindow{}
		g.senders[m.From] = w
	}
	if !w.accept(m.Ctr) {
		return errReplayed
	}
	w.seen = now
	return nil
}

// accept marks ctr as seen, or reports false if it was, or is too old to
// tell.
func (w *counterWindow) accept(ctr uint64) bool {
	if ctr > w.high {
		if ctr-w.high >= replayWindow {
			w.bits = [replayWindow / 64]uint64{}
		} else {
			for c := w.high + 1; c < ctr; c++ {
				w.clear(c)
			}
		}
		w.high = ctr
		w.set(ctr)
		return true
	}
	if w.high-ctr >= replayWindow || w.has(ctr) {
		return false
	}
	w.set(ctr)
	return true
}

func (w *counterWindow) set(c uint64)      { w.bits[(c/64)%(replayWindow/64)] |= 1 << (c % 64) }
func (w *counterWindow) clear(c uint64)    { w.bits[(c/64)%(replayWindow/64)] &^= 1 << (c % 64) }
func (w *counterWindow) has(c uint64) bool { return w.bits[(c/64)%(replayWindow/64)]&(1<<(c%64)) != 0 }
