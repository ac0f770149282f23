package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Version is one stored version of an agent, as [Client.Versions] lists
// it.
type Version struct {
	// Version is the package's content hash, "sha256:…".
	Version   string    `json:"version"`
	Size      int64     `json:"size"`
	CreatedAt time.Time `json:"created_at"`
	Current   bool      `json:"current"`
}

// RollbackResult is the outcome of [Client.Rollback].
type RollbackResult struct {
	AgentID         string `json:"agent_id"`
	AgentName       string `json:"agent_name"`
	Version         string `json:"version"`
	PreviousVersion string `json:"previous_version"`
}

// Versions lists an agent's versions, newest first: every page the
// server answers.
func (c *Client) Versions(ctx context.Context, agentID string) ([]Version, error) {
	return pages(ctx, c, "list versions", c.endpoint("agents", agentID, "versions"), url.Values{}, func(d *struct {
		Versions []Version `json:"versions"`
	}) []Version {
		return d.Versions
	})
}

// Rollback makes a stored version ("sha256:…") the agent's current one
// (admins of its project).
func (c *Client) Rollback(ctx context.Context, agentID, version string) (*RollbackResult, error) {
	var res RollbackResult
	in := map[string]string{"version": version}
	if err := c.callJSON(ctx, "roll back agent", http.MethodPost, c.endpoint("agents", agentID, "rollback"), in, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// DeleteAgent deletes an agent: it is no longer served, its versions and
// secrets are removed, its invocation records kept (admins of its
// project).
func (c *Client) DeleteAgent(ctx context.Context, agentID string) error {
	return c.callJSON(ctx, "delete agent", http.MethodDelete, c.endpoint("agents", agentID), nil, nil)
}
