package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// APIKey describes a key; its secret is shown only by CreateKey and
// RotateKey, in NewKey.Key.
type APIKey struct {
	ID          string     `json:"key_id"`
	PrincipalID string     `json:"principal_id"`
	ProjectID   string     `json:"project_id,omitempty"`
	Name        string     `json:"name"`
	Role        string     `json:"role,omitempty"`
	Scopes      []string   `json:"scopes,omitempty"`
	Agents      []string   `json:"agents,omitempty"`
	Users       []string   `json:"users,omitempty"` // end users it may act for; none: nobody
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt  *time.Time `json:"last_used_at,omitempty"`
	LastUsedIP  string     `json:"last_used_ip,omitempty"`
	ReplacedBy  string     `json:"replaced_by,omitempty"`
	RateLimit   *RateLimit `json:"rate_limit,omitempty"`
}

// NewKey is a key just created or rotated: Key is its secret, shown this
// once.
type NewKey struct {
	Key     string `json:"key"`
	Details APIKey `json:"details"`
}

// KeyRequest asks for a key for a new principal.
type KeyRequest struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind,omitempty"`   // "service" (default) or "user"
	Role   string   `json:"role,omitempty"`   // default "user"
	Scopes []string `json:"scopes,omitempty"` // default: all of the role's
	Agents []string `json:"agents,omitempty"` // default: every agent of the project
	// Users are the end users (a run's user_id) the key may act for when
	// a run opens their persistent memory: exact ids, prefixes ending in
	// *, or * for every user. Default: none.
	Users         []string `json:"users,omitempty"`
	ExpiresInDays int      `json:"expires_in_days,omitempty"`
	ProjectID     string   `json:"project_id,omitempty"` // owners only
	// RateLimit overrides the server's limit for this key.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// RateLimit is Requests per PeriodSeconds.
type RateLimit struct {
	Requests      int `json:"requests"`
	PeriodSeconds int `json:"period_seconds"`
}

// Project is a tenant.
type Project struct {
	ID        string    `json:"project_id"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// RateLimit is the default rate limit of the project's keys (a key's
	// own wins); nil: the server's.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

// ProjectRequest creates a project.
type ProjectRequest struct {
	ID        string     `json:"project_id"`
	Name      string     `json:"name,omitempty"`
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
}

func (c *Client) callJSON(ctx context.Context, op, method, u string, in, out any) error {
	var body *bytes.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return c.fail(op, fmt.Errorf("encode request: %w", err))
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	var err error
	if body != nil {
		_, err = c.call(ctx, op, method, u, body, ct, out)
	} else {
		_, err = c.call(ctx, op, method, u, nil, "", out)
	}
	return err
}

// CreateKey creates a service principal and an API key for it.
func (c *Client) CreateKey(ctx context.Context, req KeyRequest) (*NewKey, error) {
	var k NewKey
	if err := c.callJSON(ctx, "create key", http.MethodPost, c.endpoint("keys"), req, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// Keys lists the keys of the caller's project (owners: of projectID, or
// all when it is empty), newest first: every page the server answers.
func (c *Client) Keys(ctx context.Context, projectID string) ([]APIKey, error) {
	q := url.Values{}
	if projectID != "" {
		q.Set("project_id", projectID)
	}
	return pages(ctx, c, "list keys", c.endpoint("keys"), q, func(d *struct {
		Keys []APIKey `json:"keys"`
	}) []APIKey {
		return d.Keys
	})
}

// maxPages bounds the pages a listing follows.
const maxPages = 100000

// pages GETs u?q and then every next page, following the server's
// next_cursor (lists the server pages by cursor), and returns the rows
// of them all; rows picks them out of a page's data D. A server that
// does not page answers one page with them all.
func pages[D, T any](ctx context.Context, c *Client, what, u string, q url.Values, rows func(*D) []T) ([]T, error) {
	out := []T{}
	seen := map[string]bool{}
	for range maxPages {
		target := u
		if len(q) > 0 {
			target += "?" + q.Encode()
		}
		var raw json.RawMessage
		if err := c.callJSON(ctx, what, http.MethodGet, target, nil, &raw); err != nil {
			return nil, err
		}
		var page D
		var next struct {
			Cursor string `json:"next_cursor"`
		}
		if err := json.Unmarshal(raw, &page); err != nil {
			return nil, c.fail(what, fmt.Errorf("decode the answer: %w", err))
		}
		if err := json.Unmarshal(raw, &next); err != nil {
			return nil, c.fail(what, fmt.Errorf("decode the answer: %w", err))
		}
		out = append(out, rows(&page)...)
		if next.Cursor == "" {
			return out, nil
		}
		if seen[next.Cursor] {
			return nil, c.fail(what, errors.New("the server answered the same page twice"))
		}
		seen[next.Cursor] = true
		q.Set("cursor", next.Cursor)
	}
	return nil, c.fail(what, fmt.Errorf("more than %d pages", maxPages))
}

// RevokeKey revokes a key at once.
func (c *Client) RevokeKey(ctx context.Context, keyID string) error {
	return c.callJSON(ctx, "revoke key", http.MethodPost, c.endpoint("keys", keyID, "revoke"), nil, nil)
}

// RotateKey issues a successor of a key; the old one keeps working for
// overlap (the server's default, 24 h, when negative).
func (c *Client) RotateKey(ctx context.Context, keyID string, overlap time.Duration) (*NewKey, error) {
	var in any
	if overlap >= 0 {
		in = map[string]float64{"overlap_hours": overlap.Hours()}
	}
	var k NewKey
	if err := c.callJSON(ctx, "rotate key", http.MethodPost, c.endpoint("keys", keyID, "rotate"), in, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// CreateProject creates a project (owners only).
func (c *Client) CreateProject(ctx context.Context, req ProjectRequest) (*Project, error) {
	var p Project
	if err := c.callJSON(ctx, "create project", http.MethodPost, c.endpoint("projects"), req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// SetProjectRateLimit sets a project's rate limit; nil restores the
// server's default (owners only).
func (c *Client) SetProjectRateLimit(ctx context.Context, projectID string, rl *RateLimit) (*Project, error) {
	var p Project
	in := map[string]*RateLimit{"rate_limit": rl}
	if err := c.callJSON(ctx, "set project rate limit", http.MethodPatch, c.endpoint("projects", projectID), in, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Projects lists the projects (owners only).
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var data struct {
		Projects []Project `json:"projects"`
	}
	if err := c.callJSON(ctx, "list projects", http.MethodGet, c.endpoint("projects"), nil, &data); err != nil {
		return nil, err
	}
	return data.Projects, nil
}

// SecurityEvent is one recorded security event.
type SecurityEvent struct {
	ID           string            `json:"event_id"`
	Time         time.Time         `json:"time"`
	Type         string            `json:"type"`
	Severity     string            `json:"severity"`
	Principal    string            `json:"principal,omitempty"`
	IP           string            `json:"ip,omitempty"`
	AgentID      string            `json:"agent_id,omitempty"`
	InvocationID string            `json:"invocation_id,omitempty"`
	RequestID    string            `json:"request_id,omitempty"`
	Message      string            `json:"message,omitempty"`
	Details      map[string]string `json:"details,omitempty"`
}

// EventQuery filters security events; zero fields match everything.
type EventQuery struct {
	Type, Severity, Principal, IP, AgentID string
	Since, Until                           time.Time
	Limit, Offset                          int
}

// Events lists security events, newest first (owners only).
func (c *Client) Events(ctx context.Context, q EventQuery) ([]SecurityEvent, error) {
	v := url.Values{}
	for k, s := range map[string]string{"type": q.Type, "severity": q.Severity, "principal": q.Principal, "ip": q.IP, "agent_id": q.AgentID} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339))
	}
	if q.Limit > 0 {
		v.Set("limit", fmt.Sprint(q.Limit))
	}
	if q.Offset > 0 {
		v.Set("offset", fmt.Sprint(q.Offset))
	}
	u := c.endpoint("events")
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	var data struct {
		Events []SecurityEvent `json:"events"`
	}
	if err := c.callJSON(ctx, "list events", http.MethodGet, u, nil, &data); err != nil {
		return nil, err
	}
	return data.Events, nil
}
