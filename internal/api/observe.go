package api

import (
	"net/http"
)

// statusWriter remembers the status a handler sent, for metrics. Unwrap
// lets http.ResponseController (SSE flushes, write deadlines) and the
// WebSocket library (hijacking) reach the connection underneath.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (h *opsHandlers) metricsHandler(w http.ResponseWriter, r *http.Request) error {
	h.metrics.Handler().ServeHTTP(w, r)
	return nil
}

func (h *opsHandlers) health(w http.ResponseWriter, r *http.Request) error {
	now := h.now()
	status, code := "healthy", http.StatusOK
	if err := h.store.Ping(r.Context()); err != nil {
		h.log.Error("health: store unreachable", "err", err)
		status, code = "unhealthy", http.StatusServiceUnavailable
	}
	if h.draining.Load() {
		status, code = "draining", http.StatusServiceUnavailable
	}
	h.writeJSON(w, code, map[string]any{
		"status":         status,
		"server":         "runagent",
		"timestamp":      timestamp(now),
		"uptime_seconds": int64(now.Sub(h.started).Seconds()),
		"version":        h.version,
		"agents":         h.reg.Count(),
		"active_runs":    h.exec.Active(),
	})
	return nil
}
