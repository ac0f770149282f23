package client

import (
	"context"
	"net/http"
	"time"
)

// Node is one server sharing the store, as GET /api/v1/nodes shows it.
type Node struct {
	ID string `json:"node_id"`
	// State is "alive", "stopped" (shut down gracefully) or "dead" (its
	// heartbeat stopped; its runs were failed).
	State   string `json:"state"`
	Version string `json:"version"`
	// Addr is where the node listens, as it sees it.
	Addr        string    `json:"addr"`
	StartedAt   time.Time `json:"started_at"`
	HeartbeatAt time.Time `json:"heartbeat_at"`
	// HeartbeatAge is how long ago its last heartbeat was, in seconds,
	// by the clock of the node that answered.
	HeartbeatAge       float64    `json:"heartbeat_age_seconds"`
	StoppedAt          *time.Time `json:"stopped_at,omitempty"`
	DeadAt             *time.Time `json:"dead_at,omitempty"`
	RunningInvocations int64      `json:"running_invocations"`
}

// Nodes lists the nodes that have served from the server's store, by id
// (owners only).
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var data struct {
		Nodes []Node `json:"nodes"`
	}
	if err := c.callJSON(ctx, "list nodes", http.MethodGet, c.endpoint("nodes"), nil, &data); err != nil {
		return nil, err
	}
	return data.Nodes, nil
}
