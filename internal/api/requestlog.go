package api

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// requestLog is what a request's log line (metered) learns from the
// handler: the invocation it started, if any.
type requestLog struct {
	mu         sync.Mutex
	invocation string
}

type requestLogKey struct{}

// noteInvocation names the invocation r started, for its log line.
func noteInvocation(r *http.Request, id string) {
	if l, ok := r.Context().Value(requestLogKey{}).(*requestLog); ok {
		l.mu.Lock()
		l.invocation = id
		l.mu.Unlock()
	}
}

func withRequestLog(r *http.Request) (*http.Request, *requestLog) {
	l := &requestLog{}
	return r.WithContext(context.WithValue(r.Context(), requestLogKey{}, l)), l
}

// logRequest writes one line per request: method and route pattern (never
// the raw path or query, which may carry a ?token=), status, duration,
// request id and the invocation when there is one.
func (g *gateway) logRequest(r *http.Request, l *requestLog, pattern string, status int, took time.Duration) {
	attrs := []slog.Attr{
		slog.String("route", pattern), slog.Int("status", status),
		slog.Duration("duration", took.Round(time.Microsecond)), slog.String("request_id", requestID(r)),
	}
	l.mu.Lock()
	if l.invocation != "" {
		attrs = append(attrs, slog.String("invocation_id", l.invocation))
	}
	l.mu.Unlock()
	g.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}
