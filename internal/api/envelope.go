package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/executor"
)

// envelope is RunAgent's response shape.
type envelope struct {
	Success      bool       `json:"success"`
	Data         any        `json:"data"`
	Message      *string    `json:"message"`
	Error        *errorBody `json:"error"`
	Timestamp    string     `json:"timestamp"`
	RequestID    string     `json:"request_id"`
	InvocationID string     `json:"invocation_id,omitempty"`
}

type errorBody struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Details any     `json:"details"`
	Field   *string `json:"field"`
}

func timestamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00") }

// wireStatus is the HTTP status a failure with code is answered with
// (docs/api.md). A failure inside the agent is HTTP 200 with success
// false, as RunAgent answers it: its SDKs discard the body of a 5xx, so
// the error's code and details reach the caller only this way.
func wireStatus(code string) int {
	if agentFailure(code) {
		return http.StatusOK
	}
	return statusOf(code)
}

// agentFailure reports whether code is a failure inside the agent, not
// the gateway's refusal.
func agentFailure(code string) bool {
	return code == core.CodeAgentError || code == core.CodeAgentTimeout
}

// statusOf maps an error code to the HTTP status its outcome stands for:
// the audit and the NDJSON progress lines use it. Agent failures are 502
// and 504 here; on the wire they are 200 (wireStatus).
func statusOf(code string) int {
	switch code {
	case core.CodeValidation:
		return http.StatusBadRequest
	case core.CodeUnauthorized:
		return http.StatusUnauthorized
	case core.CodeForbidden:
		return http.StatusForbidden
	case core.CodeNotFound:
		return http.StatusNotFound
	case core.CodeMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case core.CodeNotAcceptable:
		return http.StatusNotAcceptable
	case core.CodeConflict:
		return http.StatusConflict
	case core.CodeGone:
		return http.StatusGone
	case core.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case core.CodeUnsupportedMedia:
		return http.StatusUnsupportedMediaType
	case core.CodeRateLimited:
		return http.StatusTooManyRequests
	case core.CodeAgentError:
		return http.StatusBadGateway
	case core.CodeAgentTimeout:
		return http.StatusGatewayTimeout
	case core.CodeUnavailable:
		return http.StatusServiceUnavailable
	case core.CodeCancelled:
		return 499 // client closed request; nobody reads it
	}
	return http.StatusInternalServerError
}

// errorBodyOf returns the client-safe form of err.
func errorBodyOf(err error) *errorBody {
	e, ok := errors.AsType[*core.Error](err)
	if !ok {
		return &errorBody{Code: core.CodeInternal, Message: "internal error"}
	}
	b := &errorBody{Code: e.Code, Message: e.Message, Details: e.Details}
	if e.Code == core.CodeInternal {
		b.Message = "internal error"
		b.Details = nil
	}
	if e.Field != "" {
		f := e.Field
		b.Field = &f
	}
	return b
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return "req_" + hex.EncodeToString(b[:])
}

func (b *base) writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	if err := enc.Encode(v); err != nil {
		b.log.Debug("write response", "err", err)
	}
}

func (b *base) writeData(w http.ResponseWriter, r *http.Request, status int, data any) {
	b.writeJSON(w, status, envelope{
		Success: true, Data: data,
		Timestamp: timestamp(b.now()), RequestID: requestID(r),
	})
}

// writeError answers with the error envelope. Internal errors are logged
// with their detail; the client sees only the code and safe message.
func (b *base) writeError(w http.ResponseWriter, r *http.Request, err error) {
	body := errorBodyOf(err)
	status := wireStatus(body.Code)
	if status >= 500 && body.Code == core.CodeInternal {
		b.log.Error("request failed", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		b.log.Debug("request refused", "request_id", requestID(r), "code", body.Code, "err", err)
	}
	b.inputRejected(r, body.Code, body.Message)
	if re, ok := errors.AsType[*retryError](err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(max(re.secs, 1)))
	} else if errors.Is(err, executor.ErrAtCapacity) {
		// Every slot was taken for as long as the run could wait: a slot
		// frees as soon as any run ends.
		w.Header().Set("Retry-After", "1")
	}
	if body.Code == core.CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="runagent"`)
	}
	if body.Code == core.CodeMethodNotAllowed {
		if e, ok := errors.AsType[*core.Error](err); ok {
			if allow, ok := e.Details.(allowDetails); ok {
				w.Header().Set("Allow", allow.Allow)
			}
		}
	}
	msg := body.Message
	b.writeJSON(w, status, envelope{
		Success: false, Error: body, Message: &msg,
		Timestamp: timestamp(b.now()), RequestID: requestID(r),
		InvocationID: invocationIDOf(err),
	})
}

type allowDetails struct {
	Allow string `json:"allow"`
}

// invocationError carries the invocation id with an error so the envelope
// can name the failed invocation.
type invocationError struct {
	id  string
	err error
}

func (e *invocationError) Error() string { return e.err.Error() }
func (e *invocationError) Unwrap() error { return e.err }

func invocationIDOf(err error) string {
	if e, ok := errors.AsType[*invocationError](err); ok {
		return e.id
	}
	return ""
}

type ctxKey int

const requestIDKey ctxKey = iota

func requestID(r *http.Request) string {
	if id, ok := r.Context().Value(requestIDKey).(string); ok {
		return id
	}
	return ""
}
