package api

import (
	"bytes"
	"context"
	"maps"
	"net/http"
	"strconv"
	"sync"

	"github.com/runagent/runagent/internal/audit"
	"github.com/runagent/runagent/internal/auth"
	"github.com/runagent/runagent/internal/core"
)

// The audit trail: every state change and every read of protected data
// is recorded (who, what, which resource, outcome, from where), durably,
// before the caller gets the result. If the record cannot be written the
// caller gets 503 and no result (fail closed):
//
//   - a change (keys, projects, principals, secrets, deploys, block lifts) is
//     recorded as "started" before it runs — it does not run if that
//     fails — and with its outcome after;
//   - a read or a plain run is recorded once, after it, with its
//     response held back until the record is committed;
//   - a stream is recorded as "started" before its first byte (refused
//     if that fails) and with its outcome when it ends.
//
// Requests refused before their identity is known (401, 429) are
// security events, not audit records.

// Auditor appends audit records; Append returns once the record is
// durable. *audit.Log is one.
type Auditor interface {
	Append(ctx context.Context, rec audit.Record) (audit.Record, error)
}

type auditKind int

const (
	auditRead auditKind = iota + 1
	auditChange
	auditRun
	auditStream
)

// auditSpec is how one route is audited: an action of a kind on a
// resource, or (why set) not at all, and why not.
type auditSpec struct {
	action   string
	kind     auditKind
	resource func(r *http.Request) string
	why      string
}

// audited is the audit of a route: action, of kind, on resource.
func audited(action string, kind auditKind, resource func(*http.Request) string) auditSpec {
	return auditSpec{action: action, kind: kind, resource: resource}
}

// notAudited says a route is not audited, and why: it changes nothing
// and reads nothing protected.
func notAudited(why string) auditSpec { return auditSpec{why: why} }

func pathRes(prefix, param string) func(*http.Request) string {
	return func(r *http.Request) string { return prefix + r.PathValue(param) }
}

func fixedRes(s string) func(*http.Request) string {
	return func(*http.Request) string { return s }
}

func secretRes(r *http.Request) string {
	return "agent/" + r.PathValue("agent_id") + "/secret/" + r.PathValue("name")
}

// auditNote is what a handler adds to its request's audit record.
type auditNote struct {
	mu        sync.Mutex
	details   map[string]string
	sensitive map[string]string
	status    int // a stream's outcome, when no HTTP status tells it
}

type auditNoteKey struct{}

// noteAudit adds a detail to r's audit record (if it has one).
func noteAudit(r *http.Request, key, value string) {
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		n.mu.Lock()
		if n.details == nil {
			n.details = map[string]string{}
		}
		n.details[key] = value
		n.mu.Unlock()
	}
}

// noteSensitive adds a detail that the trail keeps only as an HMAC: it
// can be matched against a known value, not read.
func noteSensitive(r *http.Request, key, value string) {
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		n.mu.Lock()
		if n.sensitive == nil {
			n.sensitive = map[string]string{}
		}
		n.sensitive[key] = value
		n.mu.Unlock()
	}
}

// noteStatus records a stream's outcome as the HTTP status it stands for.
func noteStatus(r *http.Request, status int) {
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		n.mu.Lock()
		n.status = status
		n.mu.Unlock()
	}
}

// outcomeOf names the outcome of a request answered with status.
func outcomeOf(status int) string {
	switch {
	case status < 400:
		return audit.OutcomeSuccess
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return audit.OutcomeDenied
	case status == http.StatusNotFound:
		return "not_found"
	case status == http.StatusTooManyRequests:
		return "limited"
	case status < 500:
		return "rejected"
	}
	return audit.OutcomeError
}

// auditRecord builds r's audit record.
func (g *gateway) auditRecord(r *http.Request, spec auditSpec, outcome string, status int) audit.Record {
	id := identity(r)
	rec := audit.Record{
		Time: g.now().UTC(), PrincipalID: id.PrincipalID, KeyID: id.KeyID, Subject: id.Subject,
		Action: spec.action, Resource: spec.resource(r), Outcome: outcome,
		IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r),
		Details: map[string]string{"method": r.Method},
	}
	if id.Method != "" && id.Method != auth.MethodAPIKey {
		rec.Details["auth"] = id.Method
	}
	if status != 0 {
		rec.Details["status"] = strconv.Itoa(status)
	}
	if n, ok := r.Context().Value(auditNoteKey{}).(*auditNote); ok {
		n.mu.Lock()
		maps.Copy(rec.Details, n.details)
		if len(n.sensitive) > 0 {
			rec.SensitiveDetails = maps.Clone(n.sensitive)
		}
		n.mu.Unlock()
	}
	return rec
}

func (g *gateway) appendAudit(r *http.Request, spec auditSpec, outcome string, status int) error {
	_, err := g.audit.Append(context.WithoutCancel(r.Context()), g.auditRecord(r, spec, outcome, status))
	if err != nil {
		g.log.Error("audit record not written; the request fails", "action", spec.action, "request_id", requestID(r), "err", err)
	}
	return err
}

func auditUnavailable(err error) error {
	return &core.Error{Code: core.CodeUnavailable, Message: "the audit trail cannot be written, so the request was not served; retry shortly", Err: err}
}

// auditRecords wraps h, a route's handler behind its access check, with
// its audit records (see the top of this file).
func (g *gateway) auditRecords(spec auditSpec, h handlerFunc) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if g.audit == nil {
			return h(w, r)
		}
		r = r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, &auditNote{}))
		if spec.kind == auditChange || spec.kind == auditStream {
			if err := g.appendAudit(r, spec, "started", 0); err != nil {
				return auditUnavailable(err)
			}
		}
		if spec.kind == auditStream {
			sw := &statusWriter{ResponseWriter: w}
			err := h(sw, r)
			status := sw.status
			if err != nil {
				status = statusOf(errorBodyOf(err).Code)
			} else if n := r.Context().Value(auditNoteKey{}).(*auditNote); n.status != 0 {
				status = n.status
			}
			// The stream has been answered: a failure here can only be logged.
			g.appendAudit(r, spec, outcomeOf(status), status)
			return err
		}
		// The answer waits for the durable append of the record below,
		// which starts after the handler's writes have returned: the
		// store may commit the run's invocation record lazily
		// (core.WithDurableCommitFollows).
		r = r.WithContext(core.WithDurableCommitFollows(r.Context()))
		bw := &bufferedWriter{header: http.Header{}}
		outcome := 0 // the status the outcome stands for, when not the one sent
		if err := h(bw, r); err != nil {
			g.writeError(bw, r, err)
			outcome = statusOf(errorBodyOf(err).Code)
		}
		if bw.status == 0 {
			bw.status = http.StatusOK
		}
		if outcome == 0 {
			outcome = bw.status
		}
		// An agent failure is answered 200 (success false) but is an error.
		if err := g.appendAudit(r, spec, outcomeOf(outcome), bw.status); err != nil {
			return auditUnavailable(err)
		}
		bw.flushTo(w)
		return nil
	}
}

// auditDenied records that r was refused an audited route by its
// permissions. The request is refused either way.
func (g *gateway) auditDenied(r *http.Request, spec auditSpec) {
	if g.audit != nil && spec.action != "" {
		g.appendAudit(r, spec, audit.OutcomeDenied, http.StatusForbidden)
	}
}

// bufferedWriter holds a response until its audit record is committed.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }

func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

func (b *bufferedWriter) flushTo(w http.ResponseWriter) {
	maps.Copy(w.Header(), b.header)
	w.WriteHeader(b.status)
	w.Write(b.body.Bytes())
}
