package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/runagent/runagent/internal/ratelimit/redistest"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

// openBus joins a bus on addr for the test's length.
func openBus(t *testing.T, addr string, opt Options) *Bus {
	t.Helper()
	rc := redistest.Client(t, addr)
	b, err := Open(t.Context(), rc, testKey, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// fakeRuns is a node's runs: cancelled records cancels; streams are
// event lists that a test can extend and end.
type fakeRuns struct {
	mu        sync.Mutex
	held      map[string]bool
	cancelled map[string]string
	streams   map[string]*fakeStream
}

type fakeStream struct {
	mu     sync.Mutex
	events []Event
	end    *End
	wake   chan struct{}
	// followers counts relays following it now.
	followers int
}

func newFakeRuns() *fakeRuns {
	return &fakeRuns{held: map[string]bool{}, cancelled: map[string]string{}, streams: map[string]*fakeStream{}}
}

func (f *fakeRuns) CancelRun(id, who string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.held[id] {
		return false
	}
	f.cancelled[id] = who
	return true
}

func (f *fakeRuns) stream(id string) *fakeStream {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.streams[id]
	if s == nil {
		s = &fakeStream{wake: make(chan struct{})}
		f.streams[id] = s
	}
	return s
}

func (s *fakeStream) add(seq int, content string) {
	s.mu.Lock()
	s.events = append(s.events, Event{Seq: seq, Content: content})
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

func (s *fakeStream) finish() {
	s.mu.Lock()
	end, _ := EndFrame(map[string]string{"type": "status", "status": "stream_completed"}, false)
	s.end = &end
	close(s.wake)
	s.wake = make(chan struct{})
	s.mu.Unlock()
}

func (s *fakeStream) following() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.followers
}

func (f *fakeRuns) Stream(id string, after int) (func(context.Context, func(Event) error) (End, error), error) {
	f.mu.Lock()
	s := f.streams[id]
	f.mu.Unlock()
	if s == nil {
		return nil, ErrNotHeld
	}
	s.mu.Lock()
	first := 0
	if len(s.events) > 0 {
		first = s.events[0].Seq
	}
	s.mu.Unlock()
	if after < first-1 {
		return nil, ErrGone
	}
	return func(ctx context.Context, ev func(Event) error) (End, error) {
		s.mu.Lock()
		s.followers++
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			s.followers--
			s.mu.Unlock()
		}()
		for {
			s.mu.Lock()
			var due []Event
			for _, e := range s.events {
				if e.Seq > after {
					due = append(due, e)
				}
			}
			end, wake := s.end, s.wake
			s.mu.Unlock()
			for _, e := range due {
				if err := ev(e); err != nil {
					return End{}, err
				}
				after = e.Seq
			}
			if end != nil {
				return *end, nil
			}
			select {
			case <-wake:
			case <-ctx.Done():
				return End{}, ctx.Err()
			}
		}
	}, nil
}

// waitFor polls cond (state changed by other goroutines) until it holds
// or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBusCancel: a cancel asked on one node reaches the node holding the
// run, with who asked; a run nobody holds is known as such once every
// node has answered, well before the ask's timeout.
func TestBusCancel(t *testing.T) {
	addr := redistest.Start(t)
	a := openBus(t, addr, Options{Node: "a"})
	b := openBus(t, addr, Options{Node: "b", AskTimeout: 10 * time.Second})
	openBus(t, addr, Options{Node: "c"}) // a third that holds nothing
	runs := newFakeRuns()
	runs.held["run-1"] = true
	a.Attach(runs)

	if err := b.Cancel(t.Context(), "run-1", "key:alice"); err != nil {
		t.Fatalf("Cancel of a run on a: %v", err)
	}
	runs.mu.Lock()
	who := runs.cancelled["run-1"]
	runs.mu.Unlock()
	if who != "key:alice" {
		t.Errorf("a cancelled run-1 for %q, want key:alice", who)
	}

	start := time.Now()
	if err := b.Cancel(t.Context(), "run-2", "key:alice"); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Cancel of a run nobody holds = %v, want ErrNotHeld", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("knowing nobody holds it took %v; every node answers, so it should not wait for the 10 s timeout", d)
	}
}

// collect reads a relay to its end.
func collect(t *testing.T, r *Relay) ([]int, *End, error) {
	t.Helper()
	var seqs []int
	for {
		ev, end, err := r.Next(t.Context())
		if err != nil || end != nil {
			return seqs, end, err
		}
		seqs = append(seqs, ev.Seq)
	}
}

func span(from, to int) []int {
	var out []int
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// TestBusRejoin: the node keeping a stream relays its events from the
// point asked, in order, each once, through a window much smaller than
// the stream, while new ones keep coming; then its end frame.
func TestBusRejoin(t *testing.T) {
	addr := redistest.Start(t)
	a := openBus(t, addr, Options{Node: "a", Window: 4, WindowBytes: 64 << 10})
	b := openBus(t, addr, Options{Node: "b", Window: 4})
	runs := newFakeRuns()
	a.Attach(runs)
	s := runs.stream("inv-1")
	for i := range 50 {
		s.add(i, fmt.Sprintf(`"chunk %d"`, i))
	}
	r, err := b.Rejoin(t.Context(), "inv-1", 9)
	if err != nil {
		t.Fatalf("Rejoin: %v", err)
	}
	defer r.Close()
	go func() {
		for i := 50; i < 200; i++ {
			s.add(i, fmt.Sprintf(`"chunk %d"`, i))
		}
		s.finish()
	}()
	seqs, end, err := collect(t, r)
	if err != nil {
		t.Fatalf("relay ended with %v after %d events", err, len(seqs))
	}
	if want := span(10, 199); fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Errorf("relayed events %v\nwant 10 to 199 in order, each once", seqs)
	}
	if end == nil || end.Error || !strings.Contains(string(end.Frame), "stream_completed") {
		t.Errorf("end = %+v, want the completed status frame", end)
	}

	if _, err := b.Rejoin(t.Context(), "inv-unknown", -1); !errors.Is(err, ErrNotHeld) {
		t.Errorf("Rejoin of a stream nobody keeps = %v, want ErrNotHeld", err)
	}
	old := runs.stream("inv-2")
	old.add(100, "x")
	if _, err := b.Rejoin(t.Context(), "inv-2", 5); !errors.Is(err, ErrGone) {
		t.Errorf("Rejoin from before the events kept = %v, want ErrGone", err)
	}
}

// TestBusRelaySlowRequester: a requester that stops reading holds at
// most the window in flight, and the relay then ends with an error that
// says so instead of dropping events.
func TestBusRelaySlowRequester(t *testing.T) {
	addr := redistest.Start(t)
	a := openBus(t, addr, Options{Node: "a", Window: 4, AckTimeout: 300 * time.Millisecond})
	b := openBus(t, addr, Options{Node: "b", Window: 4})
	runs := newFakeRuns()
	a.Attach(runs)
	s := runs.stream("inv")
	for i := range 100 {
		s.add(i, "c")
	}
	r, err := b.Rejoin(t.Context(), "inv", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, _, err := r.Next(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Stalled: the relay fills the window, waits for an ack, gives up.
	waitFor(t, "the relay to give up", func() bool { return s.following() == 0 })
	if n := len(r.p.ch); n > 4+1 {
		t.Errorf("%d messages queued for a stalled requester; the window is 4 (and the failure)", n)
	}
	seqs, end, err := collect(t, r)
	if !errors.Is(err, ErrStopped) || !strings.Contains(err.Error(), "fell behind") || end != nil {
		t.Errorf("a stalled requester's relay ended with %v (end %v), want ErrStopped saying it fell behind", err, end)
	}
	if want := span(1, len(seqs)); fmt.Sprint(seqs) != fmt.Sprint(want) {
		t.Errorf("events before the failure %v, want 1.. in order", seqs)
	}
}

// TestBusRelayRequesterGone: a requester that closes the relay stops the
// sending node's follow at once.
func TestBusRelayRequesterGone(t *testing.T) {
	addr := redistest.Start(t)
	a := openBus(t, addr, Options{Node: "a"})
	b := openBus(t, addr, Options{Node: "b"})
	runs := newFakeRuns()
	a.Attach(runs)
	s := runs.stream("inv")
	s.add(0, "c")
	r, err := b.Rejoin(t.Context(), "inv", -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Next(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay to follow", func() bool { return s.following() == 1 })
	r.Close()
	waitFor(t, "the relay to stop after its requester closed", func() bool { return s.following() == 0 })
}

// TestBusEnded: an end announced on one node wakes the waiters of that
// run on the others, and only them.
func TestBusEnded(t *testing.T) {
	addr := redistest.Start(t)
	a := openBus(t, addr, Options{Node: "a"})
	b := openBus(t, addr, Options{Node: "b"})
	ended, stop := b.WatchEnded("inv-1")
	defer stop()
	other, stop2 := b.WatchEnded("inv-2")
	defer stop2()
	a.Ended("inv-1")
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the end announced on a did not reach b's waiter")
	}
	select {
	case <-other:
		t.Error("the end of inv-1 woke the waiter of inv-2")
	default:
	}
}

// capture subscribes to every bus channel of addr and returns what is
// published there.
func capture(t *testing.T, addr string) <-chan *redis.Message {
	t.Helper()
	ps := redistest.Client(t, addr).PSubscribe(t.Context(), "runagent:cluster:*")
	if _, err := ps.Receive(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	return ps.Channel()
}

// TestBusRefusesForgedAndReplayed: a message signed with another key, a
// captured message sent again, and one whose timestamp is stale are each
// dropped and counted, and never acted on.
func TestBusRefusesForgedAndReplayed(t *testing.T) {
	addr := redistest.Start(t)
	msgs := capture(t, addr)
	a := openBus(t, addr, Options{Node: "a"})
	b := openBus(t, addr, Options{Node: "b"})
	runs := newFakeRuns()
	runs.held["run-1"] = true
	a.Attach(runs)
	rc := redistest.Client(t, addr)
	cancels := func() int {
		runs.mu.Lock()
		defer runs.mu.Unlock()
		return len(runs.cancelled)
	}

	// A genuine cancel, captured on its way.
	if err := b.Cancel(t.Context(), "run-1", "key:alice"); err != nil {
		t.Fatal(err)
	}
	var ask *redis.Message
	for ask == nil {
		select {
		case m := <-msgs:
			if strings.HasSuffix(m.Channel, ":all") {
				ask = m
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the cancel was not seen on the bus")
		}
	}
	runs.mu.Lock()
	delete(runs.cancelled, "run-1")
	runs.mu.Unlock()
	before := a.Stats().Rejected

	// Replayed as is.
	rc.Publish(t.Context(), ask.Channel, ask.Payload)
	// Its body re-signed with another key.
	body := []byte(ask.Payload)[macSize:]
	rc.Publish(t.Context(), ask.Channel, seal([]byte("another store's key, 32 bytes.."), ask.Channel, body))
	// Its body altered (who) under the old signature.
	altered := strings.Replace(ask.Payload, "key:alice", "key:mallet", 1)
	rc.Publish(t.Context(), ask.Channel, altered)
	// Signed properly but sent a minute ago.
	stale := openBus(t, addr, Options{Node: "stale", Now: func() time.Time { return time.Now().Add(-time.Minute) }})
	stale.publish(t.Context(), stale.all, &message{Op: opCancel, Q: "q1", Inv: "run-1", Who: "key:old"})

	waitFor(t, "a to reject the four messages", func() bool { return a.Stats().Rejected >= before+4 })
	time.Sleep(100 * time.Millisecond) // nothing more may come of them
	if n := cancels(); n != 0 {
		t.Errorf("a acted on %d forged or replayed cancels", n)
	}
	if got := a.Stats().Rejected - before; got != 4 {
		t.Errorf("a rejected %d messages, want the 4", got)
	}
}

// TestOpenRefusesShortKey: the bus needs a real key.
func TestOpenRefusesShortKey(t *testing.T) {
	if _, err := Open(t.Context(), nil, []byte("short"), Options{}); err == nil {
		t.Error("Open with a 5-byte key succeeded")
	}
}

// TestEndFrame keeps the frame's JSON as it is.
func TestEndFrame(t *testing.T) {
	end, err := EndFrame(map[string]any{"type": "error", "code": "GONE"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]string
	if err := json.Unmarshal(end.Frame, &back); err != nil || back["code"] != "GONE" || !end.Error {
		t.Errorf("EndFrame = %s (error %v), %v", end.Frame, end.Error, err)
	}
}

// TestBusRelayIdleStream: a stream that sends nothing for many ping
// intervals stays relayed (the pings keep it alive), and its later
// events arrive.
func TestBusRelayIdleStream(t *testing.T) {
	addr := redistest.Start(t)
	a := openBus(t, addr, Options{Node: "a", Ping: 50 * time.Millisecond})
	b := openBus(t, addr, Options{Node: "b", Ping: 50 * time.Millisecond})
	runs := newFakeRuns()
	a.Attach(runs)
	s := runs.stream("inv")
	s.add(0, "c")
	r, err := b.Rejoin(t.Context(), "inv", -1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		time.Sleep(600 * time.Millisecond) // 12 ping intervals of silence
		s.add(1, "c")
		s.finish()
	}()
	seqs, end, err := collect(t, r)
	if err != nil || end == nil || fmt.Sprint(seqs) != "[0 1]" {
		t.Errorf("relay of a stream idle for 12 pings: events %v, end %v, err %v; want [0 1] and the end", seqs, end, err)
	}
}

// TestBusRelayRequesterNodeGone: when the requesting node leaves the bus
// without a word, the relaying node notices (nobody hears its pings) and
// stops following the stream.
func TestBusRelayRequesterNodeGone(t *testing.T) {
	addr := redistest.Start(t)
	a := openBus(t, addr, Options{Node: "a", Ping: 50 * time.Millisecond})
	b := openBus(t, addr, Options{Node: "b"})
	runs := newFakeRuns()
	a.Attach(runs)
	s := runs.stream("inv")
	s.add(0, "c")
	if _, err := b.Rejoin(t.Context(), "inv", -1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay to follow", func() bool { return s.following() == 1 })
	b.ps.Close() // the node is gone: no unsubscribe message, no stop
	waitFor(t, "the relay to stop after its requesting node left", func() bool { return s.following() == 0 })
}

// TestRelayRefusesGapsAndRepeats: a relay message missing (lost in a
// Redis reconnect) ends the relay with ErrLost; an event already
// delivered is not delivered again.
func TestRelayRefusesGapsAndRepeats(t *testing.T) {
	b := openBus(t, redistest.Start(t), Options{Node: "b"})
	q, p := b.register(8)
	r := &Relay{b: b, q: q, p: p, owner: "a", after: -1, next: 1}
	defer r.Close()
	for _, m := range []*message{
		{From: "a", Op: opEvent, N: 1, Seq: 0, Data: "x"},
		{From: "a", Op: opEvent, N: 2, Seq: 0, Data: "x"}, // the same event again
		{From: "a", Op: opEvent, N: 3, Seq: 1, Data: "y"},
		{From: "a", Op: opEvent, N: 5, Seq: 2, Data: "z"}, // 4 lost
	} {
		p.deliver(m)
	}
	var seqs []int
	var err error
	for err == nil {
		var ev Event
		ev, _, err = r.Next(t.Context())
		if err == nil {
			seqs = append(seqs, ev.Seq)
		}
	}
	if fmt.Sprint(seqs) != "[0 1]" || !errors.Is(err, ErrLost) {
		t.Errorf("events %v then %v; want [0 1] then ErrLost", seqs, err)
	}
}
