package api

import (
	"encoding/json"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/runagent/runagent/internal/registry"
)

// A deploy's progress, streamed as newline-delimited JSON to a client that
// asks for it (Accept: application/x-ndjson): {"type": "progress", ...}
// lines as the steps happen, then one {"type": "result", "status", "data"}
// or {"type": "error", "status", "error"} line.

const ndjsonType = "application/x-ndjson"

func acceptsNDJSON(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == ndjsonType {
			return true
		}
	}
	return false
}

type ndjson struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	enc     *json.Encoder
	started bool
}

func newNDJSON(w http.ResponseWriter) *ndjson {
	return &ndjson{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w)}
}

func (s *ndjson) line(v any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		h := s.w.Header()
		h.Set("Content-Type", ndjsonType)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	if s.enc.Encode(v) == nil {
		s.rc.Flush()
	}
}

func (s *ndjson) progress(p registry.Progress) {
	s.line(map[string]any{"type": "progress", "step": p.Step, "message": p.Message, "elapsed_ms": p.Elapsed.Milliseconds()})
}

func (s *ndjson) result(status int, data any) {
	s.line(map[string]any{"type": "result", "status": status, "data": data})
}

func (s *ndjson) fail(err error) {
	body := errorBodyOf(err)
	s.line(map[string]any{"type": "error", "status": statusOf(body.Code), "error": body})
}
