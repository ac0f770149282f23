package api

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
)

// emit records a security event about request r (its address, request id
// and, when known, principal are filled in) and counts it in the metrics.
func (b *base) emit(r *http.Request, ev core.SecurityEvent) {
	if r != nil {
		if ev.IP == "" {
			ev.IP = clientIP(r)
		}
		if ev.RequestID == "" {
			ev.RequestID = requestID(r)
		}
		if id, ok := auth.FromContext(r.Context()); ok && ev.Principal == "" && id.Method != auth.MethodAnonymous {
			ev.Principal = id.Caller()
		}
	}
	b.metrics.SecurityEvent(string(ev.Type))
	if b.events != nil {
		b.events.Emit(ev)
	}
}

// inputRejected records a run request refused for its input (bad JSON,
// schema violation, too large, wrong media type) as input_rejected.
func (b *base) inputRejected(r *http.Request, code, msg string) {
	p := r.URL.Path
	if !strings.HasPrefix(p, "/api/v1/agents/") || !(strings.HasSuffix(p, "/run") || strings.HasSuffix(p, "/run-stream")) {
		return
	}
	switch code {
	case core.CodeValidation, core.CodeTooLarge, core.CodeUnsupportedMedia:
	default:
		return
	}
	b.emit(r, core.SecurityEvent{Type: core.EventInputRejected, AgentID: r.PathValue("agent_id"), Message: msg,
		Details: map[string]string{"code": code, "path": p}})
}

// listEvents serves the security events, newest first, filtered by type,
// severity, principal, ip, agent_id, since and until (RFC 3339), with
// limit and offset.
func (h *opsHandlers) listEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := eventFilter(q)
	if err != nil {
		return err
	}
	if f.Limit, err = intParam(q.Get("limit"), "limit", 50, 1, 1000); err != nil {
		return err
	}
	if f.Offset, err = intParam(q.Get("offset"), "offset", 0, 0, 1<<30); err != nil {
		return err
	}
	evs, err := h.store.Events(r.Context(), f)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []core.SecurityEvent{}
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"events": evs, "count": len(evs), "limit": f.Limit, "offset": f.Offset})
	return nil
}

// countEvents serves how many security events of each type happened per
// time bucket (the console's chart), with the filters of listEvents but
// limit and offset: until defaults to now, since to a day before until,
// and bucket (seconds) to a 24th of the time, rounded up to a second.
func (h *opsHandlers) countEvents(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f, err := eventFilter(q)
	if err != nil {
		return err
	}
	if f.Until.IsZero() {
		f.Until = h.now().UTC().Truncate(time.Second).Add(time.Second)
	}
	if f.Since.IsZero() {
		f.Since = f.Until.Add(-24 * time.Hour)
	}
	if !f.Until.After(f.Since) {
		return fieldError("until", "until must be after since")
	}
	span := f.Until.Sub(f.Since)
	def := int((span + 24*time.Second - 1) / (24 * time.Second))
	secs, err := intParam(q.Get("bucket"), "bucket", max(def, 1), 1, 1<<30)
	if err != nil {
		return err
	}
	bucket := time.Duration(secs) * time.Second
	if n := (span + bucket - 1) / bucket; n > core.MaxEventBuckets {
		return fieldError("bucket", fmt.Sprintf("bucket must be at least %d seconds for this time (at most %d buckets)",
			int((span+core.MaxEventBuckets*time.Second-1)/(core.MaxEventBuckets*time.Second)), core.MaxEventBuckets))
	}
	counts, err := h.store.CountEvents(r.Context(), f, bucket)
	if err != nil {
		return err
	}
	h.writeData(w, r, http.StatusOK, map[string]any{"since": f.Since, "until": f.Until, "bucket_seconds": secs, "counts": counts})
	return nil
}

// eventFilter reads the security event filters of q but limit and
// offset.
func eventFilter(q url.Values) (core.EventFilter, error) {
	f := core.EventFilter{
		Type: core.EventType(q.Get("type")), Severity: core.Severity(q.Get("severity")),
		Principal: q.Get("principal"), IP: q.Get("ip"), AgentID: q.Get("agent_id"),
	}
	if f.Type != "" && !f.Type.Valid() {
		return f, fieldError("type", "type is not a security event type")
	}
	if f.Severity != "" && !f.Severity.Valid() {
		return f, fieldError("severity", "severity must be info, warning or critical")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, fieldError(p.name, p.name+" must be an RFC 3339 time, e.g. 2026-11-24T20:00:00Z")
			}
			*p.dst = t
		}
	}
	return f, nil
}
