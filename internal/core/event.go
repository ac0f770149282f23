package core

import (
	"context"
	"slices"
	"time"
)

// EventType names what a security event records.
type EventType string

// Security event types.
const (
	EventAuthFailure       EventType = "auth_failure"        // a credential was missing, malformed, unknown, expired or revoked
	EventRateLimitExceeded EventType = "rate_limit_exceeded" // a request was refused by a rate limit
	EventClientBlocked     EventType = "client_blocked"      // a client address was blocked for repeated failures
	EventInputRejected     EventType = "input_rejected"      // a request failed validation in a way worth noting (schema, size, encoding)
	EventSandboxViolation  EventType = "sandbox_violation"   // an agent hit a sandbox limit or a denied system call
	EventEgressDenied      EventType = "egress_denied"       // an agent tried to reach a host its policy does not allow
	EventKeyCreated        EventType = "key_created"         // an API key was issued
	EventKeyRotated        EventType = "key_rotated"         // an API key was rotated
	EventKeyRevoked        EventType = "key_revoked"         // an API key was revoked
	EventConfigChanged     EventType = "config_changed"      // security-relevant configuration changed
	EventPrivilegeRefused  EventType = "privilege_refused"   // a credential asked to hand out, change or remove more than it holds
	EventAlertFired        EventType = "alert_fired"         // an alert rule's threshold was crossed
	EventUserDenied        EventType = "user_denied"         // a run asked to reach the state of an end user its credential may not act for
)

// AllEventTypes lists every event type.
var AllEventTypes = []EventType{
	EventAuthFailure, EventRateLimitExceeded, EventClientBlocked, EventInputRejected,
	EventSandboxViolation, EventEgressDenied, EventKeyCreated, EventKeyRotated,
	EventKeyRevoked, EventConfigChanged, EventPrivilegeRefused, EventAlertFired,
	EventUserDenied,
}

// Valid reports whether t is a known event type.
func (t EventType) Valid() bool { return slices.Contains(AllEventTypes, t) }

// DefaultSeverity is the severity of an event of type t that does not set
// one.
func (t EventType) DefaultSeverity() Severity {
	switch t {
	case EventSandboxViolation, EventAlertFired:
		return SeverityCritical
	case EventAuthFailure, EventRateLimitExceeded, EventClientBlocked, EventInputRejected, EventEgressDenied, EventPrivilegeRefused, EventUserDenied:
		return SeverityWarning
	}
	return SeverityInfo
}

// Severity says how urgently a security event needs attention.
type Severity string

// Severities, least severe first.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// AllSeverities lists every severity, least severe first.
var AllSeverities = []Severity{SeverityInfo, SeverityWarning, SeverityCritical}

// Valid reports whether s is a known severity.
func (s Severity) Valid() bool { return slices.Contains(AllSeverities, s) }

// SecurityEvent is one entry of the security log: something an operator
// may need to see or be alerted about. It never holds a credential; the
// emitter removes anything that looks like one before it is written.
type SecurityEvent struct {
	ID       string    `json:"event_id"`
	Time     time.Time `json:"time"`
	Type     EventType `json:"type"`
	Severity Severity  `json:"severity"`

	// Who and what it concerns; empty when unknown or not applicable.
	// Principal is a principal id, or for a failed authentication the
	// key id or subject the credential named.
	Principal    string `json:"principal,omitempty"`
	IP           string `json:"ip,omitempty"`
	AgentID      string `json:"agent_id,omitempty"`
	InvocationID string `json:"invocation_id,omitempty"`
	RequestID    string `json:"request_id,omitempty"`

	Message string            `json:"message"`
	Details map[string]string `json:"details,omitempty"`
}

// EventFilter selects security events. Zero values mean "any".
type EventFilter struct {
	Type      EventType
	Severity  Severity // exactly this severity
	Principal string
	IP        string
	AgentID   string
	Since     time.Time // events at or after Since
	Until     time.Time // events before Until
	Limit     int       // capped by the store at 1000; 0 means the default (50)
	Offset    int
}

// MaxEventBuckets is how many time buckets CountEvents counts at most.
const MaxEventBuckets = 1000

// EventCount is how many events of one type happened in one time bucket
// (from Start, for the bucket's width).
type EventCount struct {
	Start time.Time `json:"start"`
	Type  EventType `json:"type"`
	Count int64     `json:"count"`
}

// EventStore keeps the security log.
type EventStore interface {
	// AppendEvents stores a batch of events in one transaction: all of
	// them or, on error, none. Each needs a unique ID, a known Type and a
	// known Severity.
	AppendEvents(ctx context.Context, evs []SecurityEvent) error
	// Events lists events matching f, newest first.
	Events(ctx context.Context, f EventFilter) ([]SecurityEvent, error)
	// CountEvents counts the events matching f (its Limit and Offset
	// aside) per type in buckets of width bucket from f.Since to
	// f.Until, both required, at most MaxEventBuckets of them; buckets
	// and types without events are left out. Ordered by bucket, then
	// type.
	CountEvents(ctx context.Context, f EventFilter, bucket time.Duration) ([]EventCount, error)
	// DeleteEventsBefore deletes events that happened before t, in
	// batches, and returns how many it deleted. With dryRun it only
	// counts them.
	DeleteEventsBefore(ctx context.Context, t time.Time, dryRun bool) (int64, error)
}

// EventEmitter records security events. Emit never blocks and never
// fails: an event it cannot record is counted and dropped, since a
// request must not wait for, or fail because of, the security log.
type EventEmitter interface {
	Emit(ev SecurityEvent)
}
