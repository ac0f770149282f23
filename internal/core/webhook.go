package core

import (
	"context"
	"time"
)

// WebhookSecretName is the agent secret that signs its completion
// webhooks. It is the one RUNAGENT_ name an admin may set (CheckSecretName
// lets it through), and it is never handed to the agent's runs.
const WebhookSecretName = "RUNAGENT_WEBHOOK_SECRET"

// DeliveryStatus is the state of a completion webhook delivery.
type DeliveryStatus string

// Delivery states. Pending is the only non-terminal state.
const (
	DeliveryPending   DeliveryStatus = "pending"
	DeliveryDelivered DeliveryStatus = "delivered"
	DeliveryFailed    DeliveryStatus = "failed"
)

// Valid reports whether s is a known delivery state.
func (s DeliveryStatus) Valid() bool {
	return s == DeliveryPending || s == DeliveryDelivered || s == DeliveryFailed
}

// Where a delivery's target came from.
const (
	WebhookFromConfig  = "config"  // the agent's runagent.config.json
	WebhookFromRequest = "request" // the run request's webhook field
)

// WebhookDelivery is the record of one completion webhook of one
// invocation: where it goes, how it went, and each attempt.
type WebhookDelivery struct {
	ID           string `json:"delivery_id"`
	InvocationID string `json:"invocation_id"`
	AgentID      string `json:"agent_id"`
	ProjectID    string `json:"project_id"`
	// Source is WebhookFromConfig or WebhookFromRequest.
	Source string `json:"source"`
	// URL is the target as configured, query included (it may hold a
	// token): stores keep it sealed, and the API shows it without its
	// query.
	URL string `json:"url"`
	// WithOutput says whether the body carries the invocation's output
	// (the agent keeps payloads).
	WithOutput bool           `json:"with_output"`
	Status     DeliveryStatus `json:"status"`
	// Attempts is how many POSTs were made.
	Attempts int `json:"attempts"`
	// NextAttemptAt is when a pending delivery is tried next.
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// LastError says why the last attempt failed ("" after success).
	LastError   string     `json:"last_error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
	// AttemptLog is every attempt, first first (WebhookDeliveries fills
	// it in).
	AttemptLog []WebhookAttempt `json:"attempt_log,omitempty"`
}

// WebhookAttempt is one POST of a delivery.
type WebhookAttempt struct {
	N          int       `json:"attempt"`
	At         time.Time `json:"at"`
	DurationMS int64     `json:"duration_ms"`
	// StatusCode is the receiver's HTTP status; 0 when none came.
	StatusCode int `json:"status_code,omitempty"`
	// Error says why the attempt failed; "" for a 2xx answer.
	Error string `json:"error,omitempty"`
}

// WebhookStore keeps completion webhook deliveries. A delivery goes with
// its invocation: DeleteInvocationsBefore deletes both.
type WebhookStore interface {
	// CreateWebhookDelivery inserts d. d.ID, InvocationID, AgentID and
	// URL must be set and Status valid; a zero CreatedAt is now, and a
	// zero NextAttemptAt is CreatedAt. A duplicate id is CodeConflict.
	CreateWebhookDelivery(ctx context.Context, d *WebhookDelivery) error
	// RecordWebhookAttempt appends a to delivery id (a.N must be the
	// delivery's Attempts + 1, else CodeConflict) and sets its status:
	// pending with the next attempt at next, or a terminal one. An
	// unknown id wraps ErrNotFound; a delivery no longer pending is
	// CodeConflict.
	RecordWebhookAttempt(ctx context.Context, id string, a WebhookAttempt, status DeliveryStatus, next time.Time) error
	// FailWebhookDelivery ends a pending delivery as failed without an
	// attempt (no signing secret, a refused target), saying why. Unknown
	// ids wrap ErrNotFound; a delivery no longer pending is CodeConflict.
	FailWebhookDelivery(ctx context.Context, id, reason string) error
	// WebhookDelivery returns one delivery without its attempt log, or
	// wraps ErrNotFound.
	WebhookDelivery(ctx context.Context, id string) (*WebhookDelivery, error)
	// WebhookDeliveries lists an invocation's deliveries, oldest first,
	// each with its attempt log; none is an empty list.
	WebhookDeliveries(ctx context.Context, invocationID string) ([]*WebhookDelivery, error)
	// PendingWebhookDeliveries lists pending deliveries, the soonest due
	// first, without attempt logs: at most limit (0: 1000).
	PendingWebhookDeliveries(ctx context.Context, limit int) ([]*WebhookDelivery, error)
}
