package eventstest

import (
	"maps"
	"slices"
	"sync"

	"github.com/runagent/runagent/internal/core"
)

// Recorder is a core.EventEmitter that keeps every event, in order. It is
// safe for concurrent use; the zero value is ready.
type Recorder struct {
	mu     sync.Mutex
	events []core.SecurityEvent
}

var _ core.EventEmitter = (*Recorder)(nil)

// Emit records a copy of ev.
func (r *Recorder) Emit(ev core.SecurityEvent) {
	ev.Details = maps.Clone(ev.Details)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

// Events returns the events recorded so far.
func (r *Recorder) Events() []core.SecurityEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// OfType returns the events of type t recorded so far.
func (r *Recorder) OfType(t core.EventType) []core.SecurityEvent {
	var out []core.SecurityEvent
	for _, ev := range r.Events() {
		if ev.Type == t {
			out = append(out, ev)
		}
	}
	return out
}

// Reset forgets the recorded events.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}
