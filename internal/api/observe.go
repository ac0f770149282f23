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

// health is readiness: 200 while the store answers and the node is not
// draining, else 503, so that a load balancer sends this node nothing it
// cannot serve. With ?probe=live it is liveness: 200 whenever the
// process serves HTTP, asking nothing of the store, so that an
// orchestrator restarts a wedged node but not every node while the
// shared database is down (restarting cannot mend that), nor one that is
// draining its runs.
func (h *opsHandlers) health(w http.ResponseWriter, r *http.Request) error {
	now := h.now()
	if r.URL.Query().Get("probe") == "live" {
		h.writeJSON(w, http.StatusOK, map[string]any{
			"status":    "alive",
			"server":    "runagent",
			"timestamp": timestamp(now),
			"version":   h.version,
		})
		return nil
	}
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
