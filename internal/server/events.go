package server

import (
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/events"
)

// relay forwards security events to the emitter once it exists: the
// sandbox backend (and its egress proxy) is opened before the store the
// emitter writes to.
type relay struct {
	to atomic.Pointer[events.Emitter]
}

func (r *relay) Emit(ev core.SecurityEvent) {
	if e := r.to.Load(); e != nil {
		e.Emit(ev)
	}
}

// openEvents starts the security event emitter: JSON lines to
// cfg.SecurityLog, the store, and alerts to the log and, if configured, a
// signed webhook.
func (s *Server) openEvents(cfg Config) (*events.Emitter, error) {
	f, err := events.OpenLogFile(cfg.SecurityLog)
	if err != nil {
		return nil, fmt.Errorf("--security-log: %w", err)
	}
	s.closers = append(s.closers, func() { f.Close() })
	var rules []events.Rule
	if len(cfg.AlertRules) > 0 {
		if rules, err = events.ParseRules(cfg.AlertRules); err != nil {
			return nil, fmt.Errorf("--alert-rule: %w", err)
		}
	}
	sinks := []events.Sink{events.NewLogSink(s.log.With("log", "alerts"))}
	if cfg.AlertWebhookURL != "" {
		if cfg.AlertWebhookSecretFile == "" {
			return nil, fmt.Errorf("--alert-webhook needs --alert-webhook-secret-file: alerts are signed so the receiver can trust them")
		}
		secret, err := os.ReadFile(cfg.AlertWebhookSecretFile)
		if err != nil {
			return nil, fmt.Errorf("--alert-webhook-secret-file: %w", err)
		}
		wh, err := events.NewWebhook(events.WebhookConfig{URL: cfg.AlertWebhookURL, Secret: []byte(strings.TrimSpace(string(secret)))})
		if err != nil {
			return nil, fmt.Errorf("--alert-webhook: %w", err)
		}
		sinks = append(sinks, wh)
	}
	return events.New(events.Config{Store: s.store, Log: f, Logger: s.log, Rules: rules, Cooldown: cfg.AlertCooldown, Sinks: sinks})
}
