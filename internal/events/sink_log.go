package events

import (
	"context"
	"log/slog"

	"github.com/runagent/runagent/internal/core"
)

// LogSink writes alerts to a logger at level Error, for operators who
// watch the server's log.
type LogSink struct {
	logger *slog.Logger
}

var _ Sink = (*LogSink)(nil)

// NewLogSink returns a sink writing to logger (slog.Default() if nil).
func NewLogSink(logger *slog.Logger) *LogSink {
	if logger == nil {
		logger = slog.Default()
	}
	return &LogSink{logger: logger}
}

// Name implements Sink.
func (s *LogSink) Name() string { return "log" }

// Send implements Sink; it never fails.
func (s *LogSink) Send(ctx context.Context, a Alert) error {
	s.logger.LogAttrs(ctx, slog.LevelError, "security alert: "+a.Message,
		slog.String("event", string(core.EventAlertFired)),
		slog.String("alert_id", a.ID),
		slog.String("rule", a.Rule),
		slog.String("source", a.Source),
		slog.Int("count", a.Count),
		slog.Duration("window", a.Window),
		slog.Time("first_event_at", a.FirstAt),
		slog.Time("last_event_at", a.LastAt),
		slog.Time("fired_at", a.FiredAt),
	)
	return nil
}
