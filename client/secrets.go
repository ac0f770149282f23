package client

import (
	"context"
	"net/http"
	"time"
)

// Secret is an agent secret's metadata; the API never returns values.
type Secret struct {
	AgentID   string    `json:"agent_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// SetSecret creates or replaces an agent's secret (admins of its project).
func (c *Client) SetSecret(ctx context.Context, agentID, name, value string) (*Secret, error) {
	var s Secret
	in := map[string]string{"value": value}
	if err := c.callJSON(ctx, "set secret", http.MethodPut, c.endpoint("agents", agentID, "secrets", name), in, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// Secrets lists an agent's secrets, without values.
func (c *Client) Secrets(ctx context.Context, agentID string) ([]Secret, error) {
	var data struct {
		Secrets []Secret `json:"secrets"`
	}
	if err := c.callJSON(ctx, "list secrets", http.MethodGet, c.endpoint("agents", agentID, "secrets"), nil, &data); err != nil {
		return nil, err
	}
	return data.Secrets, nil
}

// DeleteSecret deletes an agent's secret.
func (c *Client) DeleteSecret(ctx context.Context, agentID, name string) error {
	return c.callJSON(ctx, "delete secret", http.MethodDelete, c.endpoint("agents", agentID, "secrets", name), nil, nil)
}

// KeyringStatus names the keys that encrypt the server's data at rest.
type KeyringStatus struct {
	MasterKeyID     string `json:"master_key_id"`
	ActiveDataKeyID uint32 `json:"active_data_key_id"`
}

// RotateDataKey makes a new data key the active one (owners).
func (c *Client) RotateDataKey(ctx context.Context) (*KeyringStatus, error) {
	var s KeyringStatus
	if err := c.callJSON(ctx, "rotate data key", http.MethodPost, c.endpoint("keyring", "rotate"), nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
