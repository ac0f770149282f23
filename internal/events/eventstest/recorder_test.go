package eventstest

import (
	"sync"
	"testing"

	"github.com/runagent/runagent/internal/core"
)

func TestRecorder(t *testing.T) {
	var r Recorder
	details := map[string]string{"k": "v"}
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { r.Emit(core.SecurityEvent{Type: core.EventAuthFailure, Details: details}) })
	}
	r.Emit(core.SecurityEvent{Type: core.EventKeyCreated})
	wg.Wait()
	details["k"] = "changed"

	if got := len(r.Events()); got != 11 {
		t.Errorf("len(Events()) = %d, want 11", got)
	}
	failures := r.OfType(core.EventAuthFailure)
	if len(failures) != 10 {
		t.Fatalf("len(OfType(auth_failure)) = %d, want 10", len(failures))
	}
	if got := failures[0].Details["k"]; got != "v" {
		t.Errorf("recorded detail = %q after the caller changed its map, want %q", got, "v")
	}
	r.Reset()
	if got := r.Events(); len(got) != 0 {
		t.Errorf("Events() after Reset = %v, want none", got)
	}
}
