package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Error codes the runagent server sends (docs/api.md). A server may send
// others; compare with [IsCode].
const (
	CodeValidation       = "VALIDATION_ERROR"
	CodeNotFound         = "NOT_FOUND"
	CodeConflict         = "CONFLICT"
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"
	CodeNotAcceptable    = "NOT_ACCEPTABLE"
	CodeTooLarge         = "PAYLOAD_TOO_LARGE"
	CodeUnsupportedMedia = "UNSUPPORTED_MEDIA_TYPE"
	CodeAgentError       = "AGENT_ERROR"
	CodeAgentTimeout     = "AGENT_TIMEOUT"
	CodeUnavailable      = "UNAVAILABLE"
	CodeInternal         = "INTERNAL_ERROR"
	// CodeGone: a stream's events are no longer kept to rejoin it (410).
	CodeGone = "GONE"
	// CodeCancelled: the run was cancelled, by its client leaving or by
	// [Client.CancelInvocation]; an invocation record's ErrorCode.
	CodeCancelled = "CANCELLED"
)

// Error is a failure reported by the server: the error envelope of a
// non-2xx or success:false response, an error frame of a stream, or a
// non-2xx response that carried no envelope at all (a proxy's error page;
// then Code is empty and Message describes the body).
type Error struct {
	// Status is the HTTP status, or 0 for a failure reported inside a
	// stream that had already started. A failure inside the agent
	// (AGENT_ERROR, AGENT_TIMEOUT) comes with 200 and success false.
	Status int
	// Code is the server's error code, such as "NOT_FOUND" or
	// "AGENT_ERROR"; empty when the server sent none.
	Code string
	// Message is the server's human-readable message.
	Message string
	// Field names the offending request field, when there is one.
	Field string
	// Details is the error's structured detail as sent; for AGENT_ERROR
	// it is {"type", "traceback", "exit_code"}. Nil when absent or null.
	Details json.RawMessage
	// RequestID identifies the request in the server's logs.
	RequestID string
	// InvocationID names the failed invocation, when the server sent one.
	InvocationID string
}

// Error returns "CODE (HTTP n): message (field f)", leaving out what is
// unknown and a 2xx status.
func (e *Error) Error() string {
	var b strings.Builder
	// A failure inside the agent comes as HTTP 200 with success false
	// (RunAgent's wire contract): its status says nothing worth printing.
	ok := e.Status >= 200 && e.Status <= 299
	switch {
	case e.Code != "" && e.Status != 0 && !ok:
		fmt.Fprintf(&b, "%s (HTTP %d)", e.Code, e.Status)
	case e.Code != "":
		b.WriteString(e.Code)
	case e.Status != 0:
		fmt.Fprintf(&b, "HTTP %d %s", e.Status, http.StatusText(e.Status))
	default:
		b.WriteString("server error")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Field != "" {
		fmt.Fprintf(&b, " (field %s)", e.Field)
	}
	return b.String()
}

// IsNotFound reports whether err is an [*Error] for a missing agent, tag,
// invocation or route: code NOT_FOUND, or HTTP 404 without a code.
func IsNotFound(err error) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && (e.Code == CodeNotFound || e.Code == "" && e.Status == http.StatusNotFound)
}

// IsCode reports whether err is an [*Error] with the given code.
func IsCode(err error, code string) bool {
	e, ok := errors.AsType[*Error](err)
	return ok && e.Code == code
}

// envelope is the response shape of every REST route but health.
type envelope struct {
	Success      *bool           `json:"success"`
	Data         json.RawMessage `json:"data"`
	Message      *string         `json:"message"`
	Error        json.RawMessage `json:"error"`
	RequestID    string          `json:"request_id"`
	InvocationID string          `json:"invocation_id"`
}

// errorBody is the envelope's error object, also used by stream frames.
type errorBody struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Details json.RawMessage `json:"details"`
	Field   *string         `json:"field"`
}

// decodeEnvelope interprets a response of a route that answers with the
// envelope. It returns the envelope on success; otherwise an *Error for a
// non-2xx status or success:false, or a plain error for a 2xx body that
// is not an envelope.
func decodeEnvelope(status int, h http.Header, body []byte) (*envelope, error) {
	var env envelope
	err := json.Unmarshal(body, &env)
	if err != nil || env.Success == nil {
		if status < 200 || status > 299 {
			return nil, nonEnvelopeError(status, h, body)
		}
		if err == nil {
			err = errors.New(`no "success" field`)
		}
		return nil, fmt.Errorf("response is not a RunAgent envelope (%s): %w", describeBody(h, body), err)
	}
	if env.RequestID == "" {
		env.RequestID = h.Get("X-Request-ID")
	}
	if status < 200 || status > 299 || !*env.Success {
		return nil, envelopeError(status, &env)
	}
	return &env, nil
}

// envelopeError builds the *Error of a failed envelope.
func envelopeError(status int, env *envelope) *Error {
	e := errorFromJSON(env.Error)
	e.Status = status
	e.RequestID = env.RequestID
	e.InvocationID = env.InvocationID
	if e.Message == "" && env.Message != nil {
		e.Message = *env.Message
	}
	if e.Message == "" && e.Code == "" {
		e.Message = "request failed"
	}
	return e
}

// errorFromJSON reads an error value: RunAgent's error object, or a plain
// string as some servers send.
func errorFromJSON(raw json.RawMessage) *Error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return &Error{}
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return &Error{Message: s}
	}
	var b errorBody
	if json.Unmarshal(raw, &b) != nil {
		return &Error{Message: "unreadable error detail: " + snippet(raw)}
	}
	e := &Error{Code: b.Code, Message: b.Message}
	if b.Field != nil {
		e.Field = *b.Field
	}
	if d := bytes.TrimSpace(b.Details); len(d) > 0 && string(d) != "null" {
		e.Details = append(json.RawMessage(nil), d...)
	}
	return e
}

// nonEnvelopeError describes a non-2xx response without an envelope, such
// as a reverse proxy's HTML error page.
func nonEnvelopeError(status int, h http.Header, body []byte) *Error {
	return &Error{
		Status:    status,
		Message:   "response is not a RunAgent envelope (" + describeBody(h, body) + "); is a proxy in the way?",
		RequestID: h.Get("X-Request-ID"),
	}
}

// describeBody names a body's media type and quotes its start.
func describeBody(h http.Header, body []byte) string {
	mt, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt == "" {
		mt = "no content type"
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return mt + ", empty body"
	}
	return mt + ": " + snippet(body)
}

// snippet quotes the start of b, at most 120 runes, as safe one-line text.
func snippet(b []byte) string {
	const max = 120
	var out strings.Builder
	n := 0
	for len(b) > 0 && n < max {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
			r = '?'
		case unicode.IsSpace(r):
			r = ' '
		case !unicode.IsPrint(r):
			r = '?'
		}
		out.WriteRune(r)
		n++
	}
	s := strings.Join(strings.Fields(out.String()), " ")
	if len(b) > 0 {
		s += "…"
	}
	return strconv.Quote(s)
}

// redactedError is an error whose text had the API key removed. Unwrap
// still reaches the original, so errors.Is and errors.As work.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redacted is what an API key is replaced with in error text.
const redacted = "[REDACTED]"

// redact returns err with every form of key that could appear in its text
// (raw, query- and path-escaped) replaced, or err itself if none does.
func redact(err error, key string) error {
	if err == nil || key == "" {
		return err
	}
	msg := err.Error()
	clean := redactString(msg, key)
	if clean == msg {
		return err
	}
	return &redactedError{msg: clean, err: err}
}

func redactString(s, key string) string {
	if key == "" {
		return s
	}
	for _, k := range [...]string{key, url.QueryEscape(key), url.PathEscape(key)} {
		s = strings.ReplaceAll(s, k, redacted)
	}
	return s
}
