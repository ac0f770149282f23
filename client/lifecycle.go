package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// Principal is someone or something that acts: a user or a service,
// holding API keys. An owner has no project.
type Principal struct {
	ID         string     `json:"principal_id"`
	ProjectID  string     `json:"project_id,omitempty"`
	Name       string     `json:"name"`
	Kind       string     `json:"kind"`
	Role       string     `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	DisabledAt *time.Time `json:"disabled_at,omitempty"`
	DeletedAt  *time.Time `json:"deleted_at,omitempty"`
}

// ProjectContents is what deleting a project removes (or would): its
// agents, its principals and their keys not yet revoked, by id.
type ProjectContents struct {
	Agents     []string `json:"agents"`
	Principals []string `json:"principals"`
	Keys       []string `json:"keys"`
}

// DeleteProject deletes a project: its principals (their keys revoked)
// and, with force, its agents (owners only). It returns what was removed.
// A project with agents is refused without force: the error is an
// [*Error] with code CONFLICT; [WouldRemove] reads what it would remove.
func (c *Client) DeleteProject(ctx context.Context, projectID string, force bool) (*ProjectContents, error) {
	u := c.endpoint("projects", projectID)
	if force {
		u += "?force=true"
	}
	var data struct {
		Removed ProjectContents `json:"removed"`
	}
	if err := c.callJSON(ctx, "delete project", http.MethodDelete, u, nil, &data); err != nil {
		return nil, err
	}
	return &data.Removed, nil
}

// WouldRemove returns what a DeleteProject refused for want of force
// would have removed, or nil if err is not that refusal.
func WouldRemove(err error) *ProjectContents {
	e, ok := errors.AsType[*Error](err)
	if !ok || e.Code != CodeConflict || len(e.Details) == 0 {
		return nil
	}
	var c ProjectContents
	if json.Unmarshal(e.Details, &c) != nil || c.Agents == nil {
		return nil
	}
	return &c
}

// Principals lists principals, deleted ones included (owners only):
// those of projectID and with role, where empty matches all; role
// "owner" lists the owners.
func (c *Client) Principals(ctx context.Context, projectID, role string) ([]Principal, error) {
	u := c.endpoint("principals")
	v := url.Values{}
	if projectID != "" {
		v.Set("project_id", projectID)
	}
	if role != "" {
		v.Set("role", role)
	}
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	var data struct {
		Principals []Principal `json:"principals"`
	}
	if err := c.callJSON(ctx, "list principals", http.MethodGet, u, nil, &data); err != nil {
		return nil, err
	}
	return data.Principals, nil
}

// DisablePrincipal refuses a principal's keys until EnablePrincipal
// (owners only). The last enabled owner cannot be disabled.
func (c *Client) DisablePrincipal(ctx context.Context, principalID string) (*Principal, error) {
	var p Principal
	if err := c.callJSON(ctx, "disable principal", http.MethodPost, c.endpoint("principals", principalID, "disable"), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// EnablePrincipal lets a disabled principal's keys work again (owners
// only).
func (c *Client) EnablePrincipal(ctx context.Context, principalID string) (*Principal, error) {
	var p Principal
	if err := c.callJSON(ctx, "enable principal", http.MethodPost, c.endpoint("principals", principalID, "enable"), nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DeletePrincipal deletes a principal and revokes its keys (owners
// only), returning the ids of the keys it revoked. The last enabled owner
// cannot be deleted.
func (c *Client) DeletePrincipal(ctx context.Context, principalID string) (revokedKeys []string, err error) {
	var data struct {
		RevokedKeys []string `json:"revoked_keys"`
	}
	if err := c.callJSON(ctx, "delete principal", http.MethodDelete, c.endpoint("principals", principalID), nil, &data); err != nil {
		return nil, err
	}
	return data.RevokedKeys, nil
}
