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

func (a *API) metricsHandler(w http.ResponseWriter, r *http.Request) error {
	a.metrics.Handler().ServeHTTP(w, r)
	return nil
}
