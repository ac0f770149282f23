package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/runagent/runagent/internal/core"
	"github.com/runagent/runagent/internal/schema"
	"github.com/runagent/runagent/internal/value"
	"github.com/runagent/runagent/internal/webhook"
)

// InputLimits bound what a request body may contain. They are checked
// before anything is decoded into Go values and before any agent starts.
// New fills the zero ones.
type InputLimits struct {
	MaxBody     int64 // bytes; default DefaultMaxBody (4 MiB)
	MaxDepth    int   // nesting of arrays/objects; default 64
	MaxElements int   // values in the whole document; default 100,000
}

// checkShape scans JSON text once, without decoding it, and refuses
// documents nested deeper than MaxDepth or holding more than MaxElements
// values. It does not check validity; the decoder does.
func (l InputLimits) checkShape(b []byte) error {
	depth, elems := 0, 1
	inString, escaped := false, false
	for _, c := range b {
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '[', '{':
			depth++
			if depth > l.MaxDepth {
				return core.Errorf(core.CodeValidation, "request JSON is nested deeper than %d levels", l.MaxDepth)
			}
		case ']', '}':
			depth--
		case ',':
			elems++
			if elems > l.MaxElements {
				return core.Errorf(core.CodeValidation, "request JSON has more than %d elements", l.MaxElements)
			}
		}
	}
	return nil
}

// runRequest is the body of /run and /run-stream, and the first WebSocket
// message. RunAgent clients send extra fields; unknown ones are ignored.
type runRequest struct {
	EntrypointTag    string          `json:"entrypoint_tag"`
	InputArgs        json.RawMessage `json:"input_args"`
	InputKwargs      json.RawMessage `json:"input_kwargs"`
	TimeoutSeconds   *float64        `json:"timeout_seconds"`
	AsyncExecution   *bool           `json:"async_execution"`
	UserID           *string         `json:"user_id"`
	PersistentMemory *bool           `json:"persistent_memory"`
	Action           *string         `json:"action"`
	// OnDisconnect is what a stream's run does when its client goes:
	// "cancel" (the default) or "continue" (it finishes, and its events
	// can be rejoined).
	OnDisconnect *string `json:"on_disconnect"`
	// Webhook names a completion webhook for this run: a URL, or
	// {"url": …}; webhook is it parsed.
	Webhook json.RawMessage `json:"webhook"`
	webhook *webhook.Target
	// InputData is the wrapper some RunAgent SDK versions send on the
	// WebSocket: {"input_data": {"input_args": [...], "input_kwargs": {...}}}.
	InputData *struct {
		InputArgs   json.RawMessage `json:"input_args"`
		InputKwargs json.RawMessage `json:"input_kwargs"`
	} `json:"input_data"`
}

const maxUserID = 256

// decodeRunRequest decodes and validates a run body. Errors are
// VALIDATION_ERROR naming the field.
func (l InputLimits) decodeRunRequest(body []byte) (*runRequest, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, &core.Error{Code: core.CodeValidation, Message: "request body is empty; send a JSON object with entrypoint_tag, input_args and input_kwargs"}
	}
	if err := l.checkShape(body); err != nil {
		return nil, err
	}
	if err := checkText(body); err != nil {
		return nil, err
	}
	var req runRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return nil, jsonError(err)
	}
	if dec.More() {
		return nil, &core.Error{Code: core.CodeValidation, Message: "request body has data after the JSON object"}
	}
	if req.InputData != nil {
		if req.InputArgs == nil {
			req.InputArgs = req.InputData.InputArgs
		}
		if req.InputKwargs == nil {
			req.InputKwargs = req.InputData.InputKwargs
		}
	}
	req.InputArgs = normalizeJSON(req.InputArgs, "[]")
	req.InputKwargs = normalizeJSON(req.InputKwargs, "{}")
	if req.InputArgs[0] != '[' {
		return nil, fieldError("input_args", "input_args must be a JSON array")
	}
	if req.InputKwargs[0] != '{' {
		return nil, fieldError("input_kwargs", "input_kwargs must be a JSON object")
	}
	if req.EntrypointTag == "" {
		return nil, fieldError("entrypoint_tag", "entrypoint_tag is required")
	}
	if len(req.EntrypointTag) > 128 || !utf8.ValidString(req.EntrypointTag) {
		return nil, fieldError("entrypoint_tag", "entrypoint_tag is not a valid tag")
	}
	if t := req.TimeoutSeconds; t != nil && (math.IsNaN(*t) || *t <= 0 || *t > 86400) {
		return nil, fieldError("timeout_seconds", "timeout_seconds must be a positive number of seconds (at most 86400)")
	}
	if u := req.UserID; u != nil && (len(*u) > maxUserID || !utf8.ValidString(*u) || strings.ContainsFunc(*u, isControl)) {
		return nil, fieldError("user_id", fmt.Sprintf("user_id must be printable text of at most %d bytes", maxUserID))
	}
	if len(req.Webhook) > 0 && !bytes.Equal(bytes.TrimSpace(req.Webhook), []byte("null")) {
		t, err := webhook.ParseTarget(req.Webhook)
		if err != nil {
			return nil, err
		}
		req.webhook = &t
	}
	if o := req.OnDisconnect; o != nil && *o != "cancel" && *o != "continue" {
		return nil, fieldError("on_disconnect", `on_disconnect must be "cancel" (the default: the run stops when its client goes) or "continue" (it finishes; rejoin it with GET /api/v1/invocations/{id}/stream)`)
	}
	return &req, nil
}

// detached reports whether the run outlives its request: a run asked for
// in the background, or a stream asked to continue without its client.
func (req *runRequest) detached(stream bool) bool {
	if !stream {
		return req.AsyncExecution != nil && *req.AsyncExecution
	}
	return req.OnDisconnect != nil && *req.OnDisconnect == "continue"
}

// checkText refuses a body with a string that is not valid Unicode:
// bytes that are not UTF-8, or an escaped lone surrogate ("\ud800"). Go
// would quietly decode either as U+FFFD and Python would get a str it
// cannot encode. The error names the field, never the bad text.
func checkText(body []byte) error {
	te := value.CheckText(body)
	if te == nil {
		return nil
	}
	field := te.Path
	what := "a string"
	if te.Key {
		what = "a key"
	}
	if field == "" {
		return &core.Error{Code: core.CodeValidation, Err: te,
			Message: "request body is not valid Unicode text: " + what + " holds " + te.Problem()}
	}
	return &core.Error{Code: core.CodeValidation, Field: field, Err: te,
		Message: fmt.Sprintf("%s of %s is not valid Unicode text: it holds %s; send UTF-8 text", what, field, te.Problem())}
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// normalizeJSON trims raw and replaces an absent or null value with def.
func normalizeJSON(raw json.RawMessage, def string) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage(def)
	}
	return raw
}

func fieldError(field, msg string) *core.Error {
	return &core.Error{Code: core.CodeValidation, Message: msg, Field: field}
}

// jsonError turns a decoding error into a client-safe validation error.
func jsonError(err error) *core.Error {
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			return &core.Error{Code: core.CodeValidation, Message: fmt.Sprintf("request body must be a JSON object, not %s", te.Value), Err: err}
		}
		return &core.Error{Code: core.CodeValidation, Field: field, Err: err,
			Message: fmt.Sprintf("%s must not be %s", field, te.Value)}
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return &core.Error{Code: core.CodeValidation, Err: err,
			Message: fmt.Sprintf("request body is not valid JSON (at byte %d): %s", se.Offset, se.Error())}
	}
	return &core.Error{Code: core.CodeValidation, Message: "request body is not valid JSON: " + err.Error(), Err: err}
}

// inputSchemas holds the compiled input_schema of the entrypoints called
// recently, keyed by the schema's bytes (agents and versions that share a
// schema share its compilation). 2 MiB of schema JSON compiles to some
// 60 MiB at most; typical schemas are far smaller.
var inputSchemas = schema.NewCache(2 << 20)

// schemaDetails is the error detail of an input that breaks its schema.
type schemaDetails struct {
	Violations []schema.Violation `json:"violations"`
	Total      int                `json:"total"`
}

// checkInput validates a run's input_args and input_kwargs against the
// entrypoint's input_schema, if it has one. A violation is a
// VALIDATION_ERROR whose field is the first offending location and whose
// message names the rule, never the value; details lists up to
// schema.MaxViolations of them. The input is not changed.
func checkInput(ep core.Entrypoint, body *runRequest) error {
	if len(ep.InputSchema) == 0 {
		return nil
	}
	in, err := inputSchemas.Compile(ep.InputSchema)
	if err != nil {
		// Deployment compiles the schema, so this is a version stored
		// before that check existed; it is never run unchecked.
		return fmt.Errorf("compile input_schema of entrypoint %q: %w", ep.Tag, err)
	}
	err = in.Validate(body.InputArgs, body.InputKwargs)
	if ve, ok := errors.AsType[*schema.ValidationError](err); ok && len(ve.Violations) > 0 {
		v := ve.Violations[0]
		msg := fmt.Sprintf("input does not match the input_schema of entrypoint %q: %s: %s", ep.Tag, v.Field, v.Rule)
		if ve.Total > 1 {
			msg += fmt.Sprintf(" (and %d more; see details)", ve.Total-1)
		}
		return &core.Error{Code: core.CodeValidation, Field: v.Field, Message: msg,
			Details: schemaDetails{Violations: ve.Violations, Total: ve.Total}, Err: err}
	}
	if err != nil {
		return fmt.Errorf("validate input of entrypoint %q: %w", ep.Tag, err)
	}
	return nil
}
