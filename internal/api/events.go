package api

import (
	"net/http"
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
	f := core.EventFilter{
		Type: core.EventType(q.Get("type")), Severity: core.Severity(q.Get("severity")),
		Principal: q.Get("principal"), IP: q.Get("ip"), AgentID: q.Get("agent_id"),
	}
	if f.Type != "" && !f.Type.Valid() {
		return fieldError("type", "type is not a security event type")
	}
	if f.Severity != "" && !f.Severity.Valid() {
		return fieldError("severity", "severity must be info, warning or critical")
	}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if s := q.Get(p.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return fieldError(p.name, p.name+" must be an RFC 3339 time, e.g. 2026-11-24T20:00:00Z")
			}
			*p.dst = t
		}
	}
	var err error
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
