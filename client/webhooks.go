package client

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// WebhookDelivery is one completion webhook of an invocation: where it
// went (the URL without its query), how it went, and every attempt.
type WebhookDelivery struct {
	ID           string `json:"delivery_id"`
	InvocationID string `json:"invocation_id"`
	AgentID      string `json:"agent_id"`
	ProjectID    string `json:"project_id"`
	// Source is "config" (the agent's runagent.config.json) or "request"
	// (the run's webhook field).
	Source     string `json:"source"`
	URL        string `json:"url"`
	WithOutput bool   `json:"with_output"`
	// Status is "pending", "delivered" or "failed".
	Status        string           `json:"status"`
	Attempts      int              `json:"attempts"`
	NextAttemptAt time.Time        `json:"next_attempt_at"`
	LastError     string           `json:"last_error,omitempty"`
	CreatedAt     time.Time        `json:"created_at"`
	UpdatedAt     time.Time        `json:"updated_at"`
	DeliveredAt   *time.Time       `json:"delivered_at,omitempty"`
	AttemptLog    []WebhookAttempt `json:"attempt_log,omitempty"`
}

// WebhookAttempt is one POST of a delivery.
type WebhookAttempt struct {
	N          int       `json:"attempt"`
	At         time.Time `json:"at"`
	DurationMS int64     `json:"duration_ms"`
	StatusCode int       `json:"status_code,omitempty"` // 0: no answer
	Error      string    `json:"error,omitempty"`
}

// InvocationWebhooks lists an invocation's completion webhook deliveries,
// oldest first (runagent servers only).
func (c *Client) InvocationWebhooks(ctx context.Context, invocationID string) ([]WebhookDelivery, error) {
	op := "webhooks of invocation " + strconv.Quote(invocationID)
	if invocationID == "" {
		return nil, c.fail(op, errors.New("invocation id is empty"))
	}
	var data struct {
		Deliveries []WebhookDelivery `json:"deliveries"`
	}
	if _, err := c.call(ctx, op, http.MethodGet, c.endpoint("invocations", invocationID, "webhooks"), nil, "", &data); err != nil {
		return nil, err
	}
	if data.Deliveries == nil {
		data.Deliveries = []WebhookDelivery{}
	}
	return data.Deliveries, nil
}
