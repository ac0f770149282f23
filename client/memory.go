package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Memory is one user's persistent memory of an agent, as admins see it:
// its size, never its contents.
type Memory struct {
	UserID     string    `json:"user_id"`
	UsedBytes  int64     `json:"used_bytes"`
	Files      int64     `json:"files"`
	CapBytes   int64     `json:"cap_bytes"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
}

// Memories lists the users an agent keeps persistent memory for (admins
// of its project), by user id: every page the server answers.
func (c *Client) Memories(ctx context.Context, agentID string) ([]Memory, error) {
	return pages(ctx, c, "list memory", c.endpoint("agents", agentID, "memory"), url.Values{}, func(d *struct {
		Memories []Memory `json:"memories"`
	}) []Memory {
		return d.Memories
	})
}

// ExportMemory writes one user's persistent memory of an agent to w as a
// tar archive and returns how many bytes it wrote.
func (c *Client) ExportMemory(ctx context.Context, agentID, userID string, w io.Writer) (int64, error) {
	const what = "export memory"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("agents", agentID, "memory", userID, "export"), nil)
	if err != nil {
		return 0, c.fail(what, err)
	}
	c.setHeaders(req.Header)
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return 0, c.fail(what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_, err := decodeEnvelope(resp.StatusCode, resp.Header, b)
		if err == nil {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return 0, c.fail(what, err)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, c.fail(what, err)
	}
	return n, nil
}

// DeleteMemory erases one user's persistent memory of an agent.
func (c *Client) DeleteMemory(ctx context.Context, agentID, userID string) error {
	return c.callJSON(ctx, "delete memory", http.MethodDelete, c.endpoint("agents", agentID, "memory", userID), nil, nil)
}
