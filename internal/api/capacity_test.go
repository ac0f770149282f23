package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
	"github.com/runagent/runagent/internal/sandbox"
	"github.com/runagent/runagent/internal/sandbox/sandboxtest"
)

// TestAtCapacityRetryAfter: a run the executor refuses because every slot
// stayed taken while it waited in the queue is answered 503 with
// Retry-After, like the other overload answers.
func TestAtCapacityRetryAfter(t *testing.T) {
	ex, err := executor.New(executor.Config{Backend: hangBackend{}, Interpreters: []executor.Interpreter{{Python: "python3", ShimPath: "/unused"}},
		MaxConcurrent: 1, QueueWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Shutdown(context.Background())
	req := executor.Request{InvocationID: "inv", AgentDir: "/agent", Config: &core.AgentConfig{AgentID: "a"},
		Entrypoint: core.Entrypoint{Tag: "x", Kind: core.KindPython, File: "a.py", Module: "f"}}
	run, err := ex.Start(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	defer run.Close()
	_, err = ex.Start(t.Context(), req)
	if err == nil {
		t.Fatal("second Start with the only slot taken succeeded")
	}
	b := &base{log: slog.New(slog.DiscardHandler), now: time.Now}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/api/v1/agents/a/run", nil)
	b.writeError(w, r, &invocationError{id: "inv", err: err})
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "1" {
		t.Errorf("at capacity: %d, Retry-After %q; want 503 with Retry-After 1 (%v)", w.Code, w.Header().Get("Retry-After"), err)
	}
}

// hangBackend starts guests that say hello and never answer the invoke.
type hangBackend struct{ sandboxtest.EchoBackend }

func (hangBackend) Start(context.Context, sandbox.Spec) (sandbox.Sandbox, error) {
	return sandboxtest.Hang(), nil
}
