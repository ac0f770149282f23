package core

import (
	"errors"
	"fmt"
)

// Error codes sent to clients in the error envelope. They are the only
// error detail that crosses the API boundary together with Error.Message.
const (
	CodeValidation       = "VALIDATION_ERROR"       // 400: bad input
	CodeUnauthorized     = "UNAUTHORIZED"           // 401: no valid credential
	CodeForbidden        = "FORBIDDEN"              // 403
	CodeNotFound         = "NOT_FOUND"              // 404
	CodeMethodNotAllowed = "METHOD_NOT_ALLOWED"     // 405
	CodeNotAcceptable    = "NOT_ACCEPTABLE"         // 406
	CodeConflict         = "CONFLICT"               // 409
	CodeGone             = "GONE"                   // 410: existed, no longer kept
	CodeTooLarge         = "PAYLOAD_TOO_LARGE"      // 413
	CodeUnsupportedMedia = "UNSUPPORTED_MEDIA_TYPE" // 415
	CodeRateLimited      = "RATE_LIMITED"           // 429: slow down (Retry-After)
	CodeAgentError       = "AGENT_ERROR"            // 502: the agent raised or misbehaved
	CodeAgentTimeout     = "AGENT_TIMEOUT"          // 504: the agent ran past its deadline
	CodeUnavailable      = "UNAVAILABLE"            // 503: shutting down or overloaded
	CodeCancelled        = "CANCELLED"              // 499: the caller went away
	CodeInternal         = "INTERNAL_ERROR"         // 500: a bug in runagent
)

// Error is runagent's error type. Code and Message are safe to show to
// clients; Err holds detail that is only logged.
type Error struct {
	Code    string
	Message string
	// Field names the offending input field, when there is one.
	Field string
	// Details is client-safe structured detail (for agent errors: the
	// exception type and traceback).
	Details any
	// Err is the wrapped cause; it is never sent to clients.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil && e.Err.Error() != e.Message {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a formatted, client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the *Error in err's chain, or CodeInternal.
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of err: the *Error's
// message, or a generic one for anything else (which is never shown).
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "internal error"
}

// ErrNotFound is returned by stores for a missing object.
var ErrNotFound = &Error{Code: CodeNotFound, Message: "not found"}
