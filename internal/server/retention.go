package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/audit"
)

// Retention is how long each class of data is kept; 0 keeps it forever.
type Retention struct {
	// Invocations: invocation records with their payloads (inputs,
	// outputs, logs).
	Invocations time.Duration
	// Events: security events.
	Events time.Duration
	// Audit: audit records (a purge leaves a signed checkpoint, so the
	// rest of the trail still verifies).
	Audit time.Duration
	// Memory: agents' persistent memory of a user that nobody used for
	// this long (the server purges it; `runagent db cleanup` does not,
	// as it would need the stores unmounted). Off by default: memory is
	// what users asked to keep.
	Memory time.Duration
}

// DefaultRetention keeps invocations and security events 90 days and the
// audit trail 365.
var DefaultRetention = Retention{Invocations: 90 * 24 * time.Hour, Events: 90 * 24 * time.Hour, Audit: 365 * 24 * time.Hour}

// ParseRetention parses a retention period: days ("90d"), a Go duration
// ("36h"), or "off" (keep forever, 0).
func ParseRetention(s string) (time.Duration, error) {
	if s == "off" || s == "forever" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 1 || n > 100*365 {
			return 0, fmt.Errorf("%q: want a whole number of days from 1 to 36500, like 90d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Hour || d > 100*365*24*time.Hour {
		return 0, fmt.Errorf("%q: want days (90d), a duration of at least 1h (36h), or off", s)
	}
	return d, nil
}

// PurgeReport says what a retention run deleted (or, dry, would delete).
type PurgeReport struct {
	Invocations, Events, Audit int64
	// Cutoffs are the times before which each class went (zero: kept).
	InvocationsBefore, EventsBefore, AuditBefore time.Time
}

// Purge deletes what is older than r allows, class by class, in batches
// (requests go on meanwhile), and records a retention.purge audit record
// with the counts. trail may be nil only for a dry run.
func Purge(ctx context.Context, db Store, trail *audit.Log, r Retention, now time.Time, dryRun bool) (PurgeReport, error) {
	var rep PurgeReport
	var errs []error
	if r.Invocations > 0 {
		rep.InvocationsBefore = now.Add(-r.Invocations)
		n, err := db.DeleteInvocationsBefore(ctx, rep.InvocationsBefore, dryRun)
		rep.Invocations = n
		errs = append(errs, wrapErr("invocations", err))
	}
	if r.Events > 0 {
		rep.EventsBefore = now.Add(-r.Events)
		n, err := db.DeleteEventsBefore(ctx, rep.EventsBefore, dryRun)
		rep.Events = n
		errs = append(errs, wrapErr("security events", err))
	}
	if r.Audit > 0 && trail != nil {
		rep.AuditBefore = now.Add(-r.Audit)
		n, err := trail.Purge(ctx, rep.AuditBefore, dryRun)
		rep.Audit = n
		errs = append(errs, wrapErr("audit records", err))
	}
	err := errors.Join(errs...)
	if dryRun || trail == nil {
		return rep, err
	}
	rec := audit.Record{Action: "retention.purge", Resource: "store", Outcome: audit.OutcomeSuccess, Details: map[string]string{
		"invocations": strconv.FormatInt(rep.Invocations, 10), "events": strconv.FormatInt(rep.Events, 10), "audit": strconv.FormatInt(rep.Audit, 10),
		"retain_invocations": r.Invocations.String(), "retain_events": r.Events.String(), "retain_audit": r.Audit.String(),
	}}
	if err != nil {
		rec.Outcome = audit.OutcomeError
	}
	if _, aerr := trail.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		err = errors.Join(err, fmt.Errorf("record the purge in the audit trail: %w", aerr))
	}
	return rep, err
}

func wrapErr(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("purge %s: %w", what, err)
}

// retentionEvery is how often the server applies its retention.
const retentionEvery = time.Hour

// retain applies s's retention every retentionEvery (the first time a
// minute after start) until ctx ends.
func (s *Server) retain(ctx context.Context, first time.Duration) {
	r := s.cfg.Retention
	if r == (Retention{}) {
		return
	}
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		rep, err := Purge(ctx, s.store, s.audit, r, start, false)
		lvl := slog.LevelInfo
		if err != nil {
			lvl = slog.LevelError
		}
		nmem, merr := s.purgeMemory(ctx, start)
		if merr != nil {
			lvl, err = slog.LevelError, errors.Join(err, merr)
		}
		if err != nil || rep.Invocations+rep.Events+rep.Audit+int64(nmem) > 0 {
			s.log.Log(ctx, lvl, "retention", "invocations", rep.Invocations, "events", rep.Events, "audit", rep.Audit, "memory", nmem,
				"took", time.Since(start).Round(time.Millisecond), "err", err)
		}
		t.Reset(retentionEvery)
	}
}
