package api

import (
	"context"
	"sync"
	"time"
)

// Live runs: every run this node has accepted and not yet finished, and,
// for a while after its end, a stream's events. They let a run outlive its
// request (async_execution, on_disconnect "continue"), be cancelled from
// another request, be waited for (GET /invocations/{id}?wait=), and let a
// stream's client rejoin it from any event (GET /invocations/{id}/stream).

// Defaults of what is kept for resumption.
const (
	// DefaultStreamKeep is how long a finished stream's events are kept.
	DefaultStreamKeep = 10 * time.Minute
	// DefaultStreamKeepBytes bounds the events kept of one stream; beyond
	// it the oldest are dropped and a rejoin from before them is refused.
	DefaultStreamKeepBytes = 1 << 20
	// DefaultStreamKeepTotal bounds the events kept of all streams; beyond
	// it the longest-finished streams are forgotten first.
	DefaultStreamKeepTotal = 64 << 20
)

// StreamKeep configures what is kept of streams for resumption. Zero
// fields take the defaults; Keep < 0 keeps no events at all (no stream can
// be rejoined).
type StreamKeep struct {
	Keep       time.Duration
	MaxBytes   int // per stream
	TotalBytes int // all streams
}

func (k StreamKeep) withDefaults() StreamKeep {
	if k.Keep == 0 {
		k.Keep = DefaultStreamKeep
	}
	if k.MaxBytes <= 0 {
		k.MaxBytes = DefaultStreamKeepBytes
	}
	if k.TotalBytes <= 0 {
		k.TotalBytes = DefaultStreamKeepTotal
	}
	return k
}

// liveRuns holds the live runs of this node.
type liveRuns struct {
	cfg StreamKeep
	now func() time.Time

	mu     sync.Mutex
	runs   map[string]*liveRun
	ended  []*liveRun // finished streams still kept, oldest end first
	bytes  int        // events kept by all streams
	swept  time.Time
	closed bool
}

func newLiveRuns(cfg StreamKeep, now func() time.Time) *liveRuns {
	return &liveRuns{cfg: cfg.withDefaults(), now: now, runs: map[string]*liveRun{}}
}

// liveEvent is one chunk of a stream, as sent to its clients.
type liveEvent struct {
	seq     int
	content string
}

// liveRun is one run: how to stop it and, for a stream, its events.
type liveRun struct {
	id, project, agent string
	stream             bool
	started            time.Time
	cancel             context.CancelFunc

	mu        sync.Mutex
	events    []liveEvent
	dropped   int // events dropped from the front to stay within MaxBytes
	size      int
	end       any // the terminal frame (statusFrame or errorFrame); nil while running
	ended     time.Time
	cancelled string
	wake      chan struct{} // closed when an event or the end arrives
	done      chan struct{} // closed at the end
}

// add registers a run. cancel stops it.
func (l *liveRuns) add(id, project, agent string, stream bool, cancel context.CancelFunc) *liveRun {
	lr := &liveRun{id: id, project: project, agent: agent, stream: stream, started: l.now(), cancel: cancel,
		wake: make(chan struct{}), done: make(chan struct{})}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked()
	l.runs[id] = lr
	return lr
}

// get returns the run with id, live or finished within the keep time.
func (l *liveRuns) get(id string) *liveRun {
	l.mu.Lock()
	defer l.mu.Unlock()
	lr := l.runs[id]
	if lr == nil {
		return nil
	}
	lr.mu.Lock()
	expired := lr.end != nil && l.now().Sub(lr.ended) >= l.cfg.Keep
	lr.mu.Unlock()
	if expired {
		return nil
	}
	return lr
}

// append adds a stream's event and wakes its followers.
func (l *liveRuns) append(lr *liveRun, seq int, content string) {
	if l.cfg.Keep < 0 {
		return
	}
	n := len(content) + 16
	lr.mu.Lock()
	lr.events = append(lr.events, liveEvent{seq: seq, content: content})
	lr.size += n
	for lr.size > l.cfg.MaxBytes && len(lr.events) > 1 {
		lr.size -= len(lr.events[0].content) + 16
		lr.events[0] = liveEvent{}
		lr.events = lr.events[1:]
		lr.dropped++
	}
	if lr.wake != nil {
		close(lr.wake)
		lr.wake = nil
	}
	lr.mu.Unlock()
}

// finish records a run's end. A stream's events stay for the keep time;
// anything else is forgotten now.
func (l *liveRuns) finish(lr *liveRun, end any) {
	lr.mu.Lock()
	lr.end = end
	lr.ended = l.now()
	if lr.wake != nil {
		close(lr.wake)
		lr.wake = nil
	}
	close(lr.done)
	size := lr.size
	lr.mu.Unlock()

	l.mu.Lock()
	defer l.mu.Unlock()
	if !lr.stream || l.cfg.Keep < 0 || l.closed {
		delete(l.runs, lr.id)
		return
	}
	l.ended = append(l.ended, lr)
	l.bytes += size
	for l.bytes > l.cfg.TotalBytes && len(l.ended) > 0 {
		l.forgetOldestLocked()
	}
}

func (l *liveRuns) forgetOldestLocked() {
	old := l.ended[0]
	l.ended[0] = nil
	l.ended = l.ended[1:]
	old.mu.Lock()
	l.bytes -= old.size
	old.mu.Unlock()
	if l.runs[old.id] == old {
		delete(l.runs, old.id)
	}
}

// sweepLocked forgets streams finished longer ago than the keep time, at
// most once a second.
func (l *liveRuns) sweepLocked() {
	now := l.now()
	if now.Sub(l.swept) < time.Second {
		return
	}
	l.swept = now
	for len(l.ended) > 0 {
		old := l.ended[0]
		old.mu.Lock()
		ended := old.ended
		old.mu.Unlock()
		if now.Sub(ended) < l.cfg.Keep {
			return
		}
		l.forgetOldestLocked()
	}
}

// cancelAll stops every live run (shutdown) and keeps nothing more.
func (l *liveRuns) cancelAll() {
	l.mu.Lock()
	l.closed = true
	runs := make([]*liveRun, 0, len(l.runs))
	for _, lr := range l.runs {
		runs = append(runs, lr)
	}
	l.mu.Unlock()
	for _, lr := range runs {
		lr.cancel()
	}
}

// stop cancels the run on behalf of who, unless it has ended. It reports
// whether the run was still going.
func (lr *liveRun) stop(who string) bool {
	lr.mu.Lock()
	running := lr.end == nil
	if running && lr.cancelled == "" {
		lr.cancelled = who
	}
	lr.mu.Unlock()
	if running {
		lr.cancel()
	}
	return running
}

// cancelledBy is who cancelled the run through the API, or "".
func (lr *liveRun) cancelledBy() string {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.cancelled
}

// since returns the events after seq after (all of them for after < 0),
// the terminal frame if the run has ended, and a channel closed when there
// is more. gone is set when events after after were dropped for size.
func (lr *liveRun) since(after int) (evs []liveEvent, end any, more <-chan struct{}, gone bool) {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	if lr.dropped > 0 && (len(lr.events) == 0 || after < lr.events[0].seq-1) {
		gone = true
		return
	}
	i := 0
	for i < len(lr.events) && lr.events[i].seq <= after {
		i++
	}
	evs = append(evs, lr.events[i:]...)
	end = lr.end
	if end == nil {
		if lr.wake == nil {
			lr.wake = make(chan struct{})
		}
		more = lr.wake
	}
	return
}
